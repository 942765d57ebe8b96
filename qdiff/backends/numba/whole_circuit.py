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

from ...ir.kinds import Kind
from ...observables import pauli_sum_arrays
from ...program import exec_kind, kernel_matrix
from ...spectral import spectral_plan
from .jit import CACHE

MAX_QUBITS = 12
"""States up to this many qubits use the whole-circuit executor (larger ones: per-gate kernels)."""

DENSE, DIAGONAL = 0, 1


@njit(cache=CACHE, inline="always")
def _entry(m: np.ndarray, i: int, j: int, dagger: bool) -> complex:
    return np.conj(m[j, i]) if dagger else m[i, j]


@njit(cache=CACHE)
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


@njit(cache=CACHE)
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


@njit(cache=CACHE)
def run_forward(states, kinds, ks, b0s, b1s, cmasks, cvals, mats):  # pragma: no cover - compiled
    """Apply every gate to each state of the batch; ``mats`` is ``(Bm, L, 4, 4)`` with Bm 1 or B."""
    for b in range(states.shape[0]):
        mb = min(b, mats.shape[0] - 1)
        for g in range(kinds.shape[0]):
            _apply(states[b], kinds[g], ks[g], b0s[g], b1s[g], cmasks[g], cvals[g], mats[mb, g], False)


@njit(cache=CACHE)
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


@njit(cache=CACHE)
def _spectral_factor(v, lam, projs, nev, base, derivative, tmp, out):  # pragma: no cover - compiled
    """``out = sum_j exp(i v l_j) P_j U(0)`` (times ``i l_j`` for the derivative), on padded 4 x 4 blocks."""
    tmp[:] = 0
    for j in range(nev):
        w = np.exp(1j * v * lam[j])
        if derivative:
            w = w * 1j * lam[j]
        for r in range(4):
            for c in range(4):
                tmp[r, c] += w * projs[j, r, c]
    _mul(tmp, base, out)


@njit(cache=CACHE)
def _mul(a, b, out):  # pragma: no cover - compiled
    """``out = a @ b`` for 4 x 4 blocks (``out`` distinct from both)."""
    out[:] = 0
    for r in range(4):
        for m in range(4):
            x = a[r, m]
            if x != 0:
                for c in range(4):
                    out[r, c] += x * b[m, c]


@njit(cache=CACHE)
def _store(out, u, dagger):  # pragma: no cover - compiled
    """``out = u`` (or its adjoint) for 4 x 4 blocks; explicit loops compile faster than slice copies."""
    for r in range(4):
        for c in range(4):
            out[r, c] = np.conj(u[c, r]) if dagger else u[r, c]


@njit(cache=CACHE)
def bind_spectral(theta, fstart, f_pidx, f_coeff, f_offset, f_nev, f_evals, f_projs, f_base, const, inverse,
                  occ_gate, occ_factor, mats, dmats):  # pragma: no cover - compiled
    """Gate matrices ``mats (B, L, 4, 4)`` and derivative matrices ``dmats (B, Q, 4, 4)`` for ``theta (B, P)``."""
    n_gates = fstart.shape[0] - 1
    n_factors = fstart[n_gates]
    fm = np.zeros((max(n_factors, 1), 4, 4), dtype=np.complex128)
    vals = np.zeros(max(n_factors, 1))
    u = np.zeros((4, 4), dtype=np.complex128)
    tmp = np.zeros((4, 4), dtype=np.complex128)
    dfac = np.zeros((4, 4), dtype=np.complex128)
    for b in range(theta.shape[0]):
        for f in range(n_factors):
            p = f_pidx[f]
            vals[f] = f_offset[f] + (f_coeff[f] * theta[b, p] if p >= 0 else 0.0)
            _spectral_factor(vals[f], f_evals[f], f_projs[f], f_nev[f], f_base[f], False, tmp, fm[f])
        for g in range(n_gates):
            if fstart[g] == fstart[g + 1]:
                _store(mats[b, g], const[g], False)
                continue
            for f in range(fstart[g], fstart[g + 1]):
                if f == fstart[g]:
                    _store(u, fm[f], False)
                else:
                    _mul(fm[f], u, tmp)
                    _store(u, tmp, False)
            _store(mats[b, g], u, inverse[g])
        for q in range(occ_gate.shape[0]):
            g, fq = occ_gate[q], occ_factor[q]
            _spectral_factor(vals[fq], f_evals[fq], f_projs[fq], f_nev[fq], f_base[fq], True, tmp, dfac)
            for f in range(fstart[g], fstart[g + 1]):
                if f == fstart[g]:
                    _store(u, dfac if f == fq else fm[f], False)
                else:
                    _mul(dfac if f == fq else fm[f], u, tmp)
                    _store(u, tmp, False)
            _store(dmats[b, q], u, inverse[g])


@njit(cache=CACHE)
def run_expval_grad(kets, kinds, ks, b0s, b1s, cmasks, cvals, mats, occ_start, occ_param, occ_coeff, dmats,
                    diag, xmasks, zmasks, tcoeffs, values, grad):  # pragma: no cover - compiled
    """Forward pass, ``<O>`` of a Pauli sum (diagonal part + X/Y words), bra ``O|psi>``, backward sweep."""
    run_forward(kets, kinds, ks, b0s, b1s, cmasks, cvals, mats)
    bras = np.empty_like(kets)
    n_amp = kets.shape[1]
    for b in range(kets.shape[0]):
        ket, bra = kets[b], bras[b]
        for i in range(n_amp):
            bra[i] = diag[i] * ket[i]
        for t in range(xmasks.shape[0]):
            x, z, c = xmasks[t], zmasks[t], tcoeffs[t]
            for i in range(n_amp):
                bra[i ^ x] += (-c if _parity_odd(i & z) else c) * ket[i]
        s = 0.0
        for i in range(n_amp):
            s += (np.conj(ket[i]) * bra[i]).real
        values[b] = s
    run_adjoint(bras, kets, kinds, ks, b0s, b1s, cmasks, cvals, mats, occ_start, occ_param, occ_coeff, dmats, grad)


@njit(cache=CACHE, inline="always")
def _parity_odd(v):  # pragma: no cover - compiled
    odd = False
    while v:
        v &= v - 1
        odd = not odd
    return odd


def _constant_matrix(kern: Any) -> np.ndarray | None:
    """A parameter-free kernel as a padded 4 x 4 matrix on its targets (None when its data is batched)."""
    m = kernel_matrix(kern)
    if m.ndim != 2:
        return None
    out = np.zeros((4, 4), dtype=complex)
    out[: m.shape[0], : m.shape[1]] = m
    return out


class PackedProgram:
    """A program's gates as flat arrays for the compiled executor: geometry once, data per call.

    Gate data comes from the program's :class:`~qdiff.spectral.SpectralPlan`, bound in one compiled call,
    or (for gates without a spectral form, e.g. batched constant matrices) from the program's kernels.
    """

    def __init__(self, program: Any):
        n = program.circuit.num_wires
        ops = program.operations
        self.program = program
        self.keep = keep = [i for i, op in enumerate(ops) if exec_kind(op.gate) is not None]
        L = len(keep)
        diagonal = [exec_kind(ops[i].gate) == Kind.DIAGONAL for i in keep]
        self.kinds = np.array([DIAGONAL if d else DENSE for d in diagonal], dtype=np.int64)
        self.ks = np.array([len(ops[i].wires) for i in keep], dtype=np.int64)
        self.b0s = np.array([n - 1 - ops[i].wires[0] for i in keep], dtype=np.int64)
        self.b1s = np.array([n - 1 - ops[i].wires[-1] for i in keep], dtype=np.int64)
        self.cmasks = np.zeros(L, dtype=np.int64)
        self.cvals = np.zeros(L, dtype=np.int64)
        for g, i in enumerate(keep):
            for c, v in zip(ops[i].controls, ops[i].control_values, strict=True):
                self.cmasks[g] |= 1 << (n - 1 - c)
                self.cvals[g] |= v << (n - 1 - c)
        fixed = program._constant_kernels[False]
        constants = [(_constant_matrix(fixed[i]) if i in fixed else None) for i in keep]
        batched_constant = any(c is None and i in fixed for c, i in zip(constants, keep, strict=True))
        self.spectral = (None if batched_constant
                         else spectral_plan([ops[i] for i in keep], constants, program.circuit.num_params))
        self._occurrences: tuple | None = None

    def matrices(self, theta: np.ndarray, batch: int, derivatives: bool = False) -> tuple[np.ndarray, Any]:
        """Gate matrices ``(Bm, L, 4, 4)`` (and derivative matrices ``(Bm, Q, 4, 4)``) at ``theta``."""
        sp = self.spectral
        if sp is None:
            return self._kernel_matrices(theta, batch, derivatives)
        t2 = sp.columns(theta)
        bm = t2.shape[0]
        mats = np.empty((bm, len(self.keep), 4, 4), dtype=np.complex128)
        dmats = np.empty((bm, max(1, len(sp.occ_gate)) if derivatives else 0, 4, 4), dtype=np.complex128)
        occ_gate = sp.occ_gate if derivatives else sp.occ_gate[:0]
        bind_spectral(t2, sp.fstart, sp.f_pidx, sp.f_coeff, sp.f_offset, sp.f_nev, sp.f_evals, sp.f_projs,
                      sp.f_base, sp.const, sp.inverse, occ_gate, sp.occ_factor, mats, dmats)
        return mats, dmats

    def occurrences(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(occ_start, occ_param, occ_coeff) matching the derivative matrices; None if some gate is too wide."""
        if self.spectral is not None:
            return self.spectral.occ_start, self.spectral.occ_param, self.spectral.occ_coeff
        if self._occurrences is None:
            derivs = self.program.derivatives(theta)
            if any(d is None for d in derivs.values()):
                self._occurrences = (None,)
            else:
                start = np.zeros(len(self.keep) + 1, dtype=np.int64)
                params, coeffs = [], []
                for g, i in enumerate(self.keep):
                    entries = derivs.get(i, [])
                    start[g + 1] = start[g] + len(entries)
                    params += [ref.index for ref, _ in entries]
                    coeffs += [ref.coeff for ref, _ in entries]
                self._occurrences = (start, np.array(params, dtype=np.int64), np.array(coeffs, dtype=float))
        return None if self._occurrences[0] is None else self._occurrences  # type: ignore[return-value]

    def _kernel_matrices(self, theta: np.ndarray, batch: int, derivatives: bool) -> tuple[np.ndarray, Any]:
        """Gate data from the program's kernels (and derivative dict), padded to 4 x 4 blocks."""
        kernels = self.program.kernels(theta)
        mats = np.zeros((batch, len(self.keep), 4, 4), dtype=np.complex128)
        for g, i in enumerate(self.keep):
            d = 2 ** len(kernels[i].wires)
            mats[:, g, :d, :d] = kernel_matrix(kernels[i])
        if not derivatives:
            return mats, None
        derivs = self.program.derivatives(theta)
        entries = [d for i in self.keep for _, d in derivs.get(i, [])]
        dmats = np.zeros((batch, max(1, len(entries)), 4, 4), dtype=np.complex128)
        for q, d in enumerate(entries):
            dmats[:, q, : d.shape[-1], : d.shape[-1]] = d
        return mats, dmats


def packing(program: Any) -> PackedProgram | None:
    """The program's cached packing, or None when the executor cannot run it (wide gates, many qubits)."""
    cached = getattr(program, "_cpu_packing", None)
    if cached is None:
        ok = program.circuit.num_wires <= MAX_QUBITS and all(
            exec_kind(op.gate) is None or (exec_kind(op.gate) in (Kind.DENSE, Kind.DIAGONAL, Kind.PERMUTATION)
                                           and 1 <= len(op.wires) <= 2)
            for op in program.operations
        )
        cached = PackedProgram(program) if ok else False
        program._cpu_packing = cached
    return cached or None


def enabled(backend: Any) -> bool:
    """The executor serves the numpy backend unless compiled kernels are switched off (QDIFF_KERNELS=numpy)."""
    import os

    return getattr(backend, "name", "") == "numpy" and os.environ.get("QDIFF_KERNELS", "").lower() != "numpy"


def _usable(backend: Any, program: Any, *states: np.ndarray) -> PackedProgram | None:
    if not enabled(backend) or any(s.dtype != np.complex128 or not s.flags.c_contiguous for s in states):
        return None
    return packing(program)


def forward_accepts(backend: Any, program: Any, state: np.ndarray) -> bool:
    """Whether the compiled whole-circuit executor can run ``program`` forward on ``state``."""
    return _usable(backend, program, state) is not None


def forward(backend: Any, program: Any, theta: np.ndarray, state: np.ndarray) -> None:
    """The whole forward pass in one compiled call (``forward_accepts`` must hold)."""
    p = packing(program)
    mats, _ = p.matrices(theta, state.shape[0])
    run_forward(state, p.kinds, p.ks, p.b0s, p.b1s, p.cmasks, p.cvals, mats)


def sweep_accepts(backend: Any, program: Any, bra: np.ndarray, ket: np.ndarray) -> bool:
    """Whether the compiled executor can run the backward sweep (no gate differentiated through generators)."""
    p = _usable(backend, program, bra, ket)
    return p is not None and (p.spectral is not None or not program.generator_ops)


def sweep(backend: Any, program: Any, theta: np.ndarray, bra: np.ndarray, ket: np.ndarray, grad: np.ndarray) -> None:
    """The whole backward sweep in one compiled call, adding the gradient into ``grad (B, P)``."""
    p = packing(program)
    b = bra.shape[0]
    mats, dmats = p.matrices(theta, b, derivatives=True)
    part = np.zeros((b, program.circuit.num_params))
    run_adjoint(bra, ket, p.kinds, p.ks, p.b0s, p.b1s, p.cmasks, p.cvals, mats, *p.occurrences(theta), dmats, part)
    grad += part


def expval_grad_accepts(backend: Any, program: Any, state: np.ndarray, observable: Any) -> bool:
    """Whether :func:`expval_grad` can run: a Pauli-sum observable and a program bound from its spectral form."""
    p = _usable(backend, program, state)
    return (p is not None and p.spectral is not None
            and pauli_sum_arrays(observable, program.circuit.num_wires) is not None)


def expval_grad(backend: Any, program: Any, theta: np.ndarray, state: np.ndarray, observable: Any) -> tuple:
    """``(<O> (B,), d<O>/dtheta (B, P))`` in one compiled call for a Pauli sum ``O``.

    ``state`` is the initial state (consumed); ``expval_grad_accepts`` must hold.
    """
    p = packing(program)
    sp = p.spectral
    b = state.shape[0]
    mats, dmats = p.matrices(theta, b, derivatives=True)
    values = np.zeros(b)
    grad = np.zeros((b, program.circuit.num_params))
    run_expval_grad(state, p.kinds, p.ks, p.b0s, p.b1s, p.cmasks, p.cvals, mats, sp.occ_start, sp.occ_param,
                    sp.occ_coeff, dmats, *pauli_sum_arrays(observable, program.circuit.num_wires), values, grad)
    return values, grad
