"""Whole-circuit CPU executor for small states: forward pass and adjoint sweep in one compiled call.

For a few qubits a gate costs nanoseconds and Python's per-gate dispatch dominates (microseconds).
Here a circuit whose gates act on at most two targets (any controls) is packed into arrays once
(:class:`PackedProgram`), and numba runs the whole forward pass or the whole adjoint backward sweep
(un-apply, reduced outer product, derivative contraction, un-apply) without returning to Python.
Serial on purpose: threads cost more than they save at this size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

MAX_QUBITS = 12
"""States up to this many qubits use the whole-circuit executor (larger ones: per-gate kernels)."""

DENSE, DIAGONAL = 0, 1


@njit(cache=True, inline="always")
def _entry(m: np.ndarray, i: int, j: int, dagger: bool) -> complex:
    return np.conj(m[j, i]) if dagger else m[i, j]


@njit(cache=True)
def _apply(psi, kind, k, b0, b1, cmask, cval, m, dagger):  # pragma: no cover - compiled
    """Apply one (controlled) 1- or 2-target gate, or its adjoint, to one state vector in place."""
    n_amp = psi.shape[0]
    if kind == DIAGONAL:
        for i in range(n_amp):
            if (i & cmask) != cval:
                continue
            if k == 1:
                a = (i >> b0) & 1
            else:
                a = (((i >> b0) & 1) << 1) | ((i >> b1) & 1)
            d = m[a, a]
            psi[i] *= np.conj(d) if dagger else d
        return
    if k == 1:
        s0 = 1 << b0
        u00, u01 = _entry(m, 0, 0, dagger), _entry(m, 0, 1, dagger)
        u10, u11 = _entry(m, 1, 0, dagger), _entry(m, 1, 1, dagger)
        for i in range(n_amp):
            if (i & s0) or (i & cmask) != cval:
                continue
            j = i | s0
            a0, a1 = psi[i], psi[j]
            psi[i] = u00 * a0 + u01 * a1
            psi[j] = u10 * a0 + u11 * a1
        return
    s0, s1 = 1 << b0, 1 << b1
    u = np.empty((4, 4), dtype=psi.dtype)
    for r in range(4):
        for c in range(4):
            u[r, c] = _entry(m, r, c, dagger)
    a = np.empty(4, dtype=psi.dtype)
    for i in range(n_amp):
        if (i & s0) or (i & s1) or (i & cmask) != cval:
            continue
        idx = (i, i | s1, i | s0, i | s0 | s1)
        for r in range(4):
            a[r] = psi[idx[r]]
        for r in range(4):
            psi[idx[r]] = u[r, 0] * a[0] + u[r, 1] * a[1] + u[r, 2] * a[2] + u[r, 3] * a[3]


@njit(cache=True)
def _reduced(bra, ket, k, b0, b1, cmask, cval):  # pragma: no cover - compiled
    """``R[a, c] = sum conj(bra[a, rest]) ket[c, rest]`` on the gate's (controlled) targets."""
    d = 2 if k == 1 else 4
    r = np.zeros((d, d), dtype=np.complex128)
    s0 = 1 << b0
    s1 = (1 << b1) if k == 2 else 0
    for i in range(bra.shape[0]):
        if (i & s0) or (i & s1) or (i & cmask) != cval:
            continue
        if k == 1:
            idx = (i, i | s0, 0, 0)
        else:
            idx = (i, i | s1, i | s0, i | s0 | s1)
        for a in range(d):
            cb = np.conj(bra[idx[a]])
            for c in range(d):
                r[a, c] += cb * ket[idx[c]]
    return r


@njit(cache=True)
def run_forward(states, kinds, ks, b0s, b1s, cmasks, cvals, mats):  # pragma: no cover - compiled
    """Apply every gate to each state of the batch; ``mats`` is ``(Bm, L, 4, 4)`` with Bm 1 or B."""
    for b in range(states.shape[0]):
        mb = min(b, mats.shape[0] - 1)
        for g in range(kinds.shape[0]):
            _apply(states[b], kinds[g], ks[g], b0s[g], b1s[g], cmasks[g], cvals[g], mats[mb, g], False)


@njit(cache=True)
def run_adjoint(bras, kets, kinds, ks, b0s, b1s, cmasks, cvals, mats, occ_start, occ_param, occ_coeff,
                dmats, grad):  # pragma: no cover - compiled
    """Backward sweep: for each gate (last first) un-apply from ket, contract derivatives, un-apply from bra."""
    for b in range(bras.shape[0]):
        mb = min(b, mats.shape[0] - 1)
        db = min(b, dmats.shape[0] - 1)
        for g in range(kinds.shape[0] - 1, -1, -1):
            _apply(kets[b], kinds[g], ks[g], b0s[g], b1s[g], cmasks[g], cvals[g], mats[mb, g], True)
            if occ_start[g + 1] > occ_start[g]:
                r = _reduced(bras[b], kets[b], ks[g], b0s[g], b1s[g], cmasks[g], cvals[g])
                d = r.shape[0]
                for q in range(occ_start[g], occ_start[g + 1]):
                    s = 0.0
                    for a in range(d):
                        for c in range(d):
                            s += (dmats[db, q, a, c] * r[a, c]).real
                    grad[b, occ_param[q]] += 2.0 * occ_coeff[q] * s
            _apply(bras[b], kinds[g], ks[g], b0s[g], b1s[g], cmasks[g], cvals[g], mats[mb, g], True)


class PackedProgram:
    """A program's gates as flat arrays for the compiled executor (structure only; data per call)."""

    def __init__(self, num_wires: int, kernels: list[Any], derivs: dict[int, list] | None):
        n = num_wires
        keep = [i for i, kern in enumerate(kernels) if kern.kind != "identity"]
        self.keep = keep
        self.shared: dict[str, Any] = {}  # memo shared by the packings of one program (same gate layout)
        L = len(keep)
        self.kinds = np.array([DIAGONAL if kernels[i].kind == "diagonal" else DENSE for i in keep], dtype=np.int64)
        self.ks = np.array([len(kernels[i].wires) for i in keep], dtype=np.int64)
        self.b0s = np.array([n - 1 - kernels[i].wires[0] for i in keep], dtype=np.int64)
        self.b1s = np.array([n - 1 - kernels[i].wires[-1] for i in keep], dtype=np.int64)
        self.cmasks = np.zeros(L, dtype=np.int64)
        self.cvals = np.zeros(L, dtype=np.int64)
        for g, i in enumerate(keep):
            for c, v in zip(kernels[i].controls, kernels[i].control_values, strict=True):
                self.cmasks[g] |= 1 << (n - 1 - c)
                self.cvals[g] |= v << (n - 1 - c)
        self.occ_start = np.zeros(L + 1, dtype=np.int64)
        params, coeffs = [], []
        if derivs is not None:
            for g, i in enumerate(keep):
                entries = derivs.get(i, [])
                self.occ_start[g + 1] = self.occ_start[g] + len(entries)
                params += [ref.index for ref, _ in entries]
                coeffs += [ref.coeff for ref, _ in entries]
        self.occ_param = np.array(params, dtype=np.int64)
        self.occ_coeff = np.array(coeffs, dtype=float)

    def matrices(self, kernels: list[Any], batch: int) -> np.ndarray:
        """Gate data padded to ``(Bm, L, 4, 4)`` (diagonals on the diagonal; permutations as matrices)."""
        last = self.shared.get("matrices")
        if last is not None and last[0] is kernels and last[1] == batch:
            return last[2]
        per_op = [kernels[i] for i in self.keep]
        bm = batch  # unbatched gate data broadcasts over the batch
        mats = np.zeros((bm, len(per_op), 4, 4), dtype=np.complex128)
        for g, kern in enumerate(per_op):
            d = 2 ** len(kern.wires)
            if kern.kind == "diagonal":
                diag = np.asarray(kern.data)
                idx = np.arange(d)
                mats[:, g, idx, idx] = diag if diag.ndim == 1 else diag.reshape(-1, d)
            elif kern.kind == "permutation":
                mats[:, g, :d, :d] = np.eye(d)[list(kern.data)]
            else:
                mats[:, g, :d, :d] = kern.data
        self.shared["matrices"] = (kernels, batch, mats)
        return mats

    def derivative_matrices(self, derivs: dict[int, list], batch: int) -> np.ndarray:
        """Derivative matrices padded to ``(Bd, Q, 4, 4)``."""
        entries = [d for i in self.keep for _, d in derivs.get(i, [])]
        bd = batch
        out = np.zeros((bd, max(1, len(entries)), 4, 4), dtype=np.complex128)
        for q, d in enumerate(entries):
            size = d.shape[-1]
            out[:, q, :size, :size] = d
        return out


def eligible(num_wires: int, kernels: list[Any], dtype: Any) -> bool:
    """Whether the whole-circuit executor can run these kernels (small state, <= 2 targets, complex128)."""
    if num_wires > MAX_QUBITS or np.dtype(dtype) != np.complex128:
        return False
    for kern in kernels:
        if kern.kind == "identity":
            continue
        if kern.kind not in ("dense", "diagonal", "permutation") or not 1 <= len(kern.wires) <= 2:
            return False
    return True


def enabled(backend: Any) -> bool:
    """The executor serves the numpy backend unless compiled kernels are switched off (QDIFF_KERNELS=numpy)."""
    import os

    return getattr(backend, "name", "") == "numpy" and os.environ.get("QDIFF_KERNELS", "").lower() != "numpy"


def _packed(program: Any, kernels: list[Any], derivs: dict | None) -> PackedProgram:
    """The program's cached packing (one with derivative bookkeeping, one without)."""
    attr = "_packed_adjoint" if derivs is not None else "_packed_forward"
    packed = getattr(program, attr, None)
    if packed is None:
        packed = PackedProgram(program.circuit.num_wires, kernels, derivs)
        other = getattr(program, "_packed_forward" if derivs is not None else "_packed_adjoint", None)
        if other is not None:
            packed.shared = other.shared  # the forward pass and the sweep of one gradient bind the same theta
        setattr(program, attr, packed)
    return packed


def try_forward(backend: Any, program: Any, kernels: list[Any], state: np.ndarray) -> bool:
    """Run the whole forward pass compiled if eligible; False leaves the state untouched."""
    n = program.circuit.num_wires
    if not enabled(backend) or not eligible(n, kernels, state.dtype) or not state.flags.c_contiguous:
        return False
    p = _packed(program, kernels, None)
    run_forward(state, p.kinds, p.ks, p.b0s, p.b1s, p.cmasks, p.cvals, p.matrices(kernels, state.shape[0]))
    return True


def try_adjoint(backend: Any, program: Any, theta: np.ndarray, bra: np.ndarray, ket: np.ndarray) -> Any:
    """Run the whole backward sweep compiled if eligible: the gradient ``(B, P)``, or None."""
    n = program.circuit.num_wires
    if not enabled(backend) or bra.dtype != np.complex128 or not (bra.flags.c_contiguous and ket.flags.c_contiguous):
        return None
    kernels = program.kernels(theta)
    if not eligible(n, kernels, bra.dtype):
        return None
    derivs = program.derivatives(theta)
    if any(d is None for d in derivs.values()):
        return None
    p = _packed(program, kernels, derivs)
    b = bra.shape[0]
    grad = np.zeros((b, program.circuit.num_params))
    run_adjoint(bra, ket, p.kinds, p.ks, p.b0s, p.b1s, p.cmasks, p.cvals, p.matrices(kernels, b), p.occ_start,
                p.occ_param, p.occ_coeff, p.derivative_matrices(derivs, b), grad)
    return grad
