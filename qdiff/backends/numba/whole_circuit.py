"""Whole-circuit CPU executor for small states: forward pass and adjoint sweep in one compiled call.

For a few qubits a gate costs nanoseconds and Python's per-gate dispatch dominates (microseconds).
Here a circuit whose gates act on at most two targets (any controls), or are excitations rotating two
basis states of more targets (DoubleExcitation and its Plus/Minus forms, run as a 2 x 2 block and a
phase), is packed into arrays once (:class:`PackedProgram`), and numba runs the whole forward pass or
the whole adjoint backward sweep (un-apply, reduced outer product, derivative contraction, un-apply)
without returning to Python.
Serial on purpose: threads cost more than they save at this size.
"""

from __future__ import annotations

import cmath
import os
from typing import Any

import numpy as np
from numba import njit

from ...ir.bits import local_offsets
from ...ir.kinds import Kind
from ...observables import pauli_group_tables
from ...program import exec_kind, kernel_matrix
from ...spectral import block4, compressed_basis, spectral_plan
from .jit import CACHE

MAX_QUBITS = 12
"""States up to this many qubits use the whole-circuit executor (larger ones: per-gate kernels)."""

DENSE, DIAGONAL, SUBSPACE = 0, 1, 2
KIND, K, B0, B1, CMASK, CVAL, TMASK, OFF0, OFF1 = range(9)
"""Columns of a packed gate's geometry row: kind, targets, bit of the first and last target, control
mask and values, and for SUBSPACE gates the mask of all target bits and the offsets of the two rotated
basis states."""


@njit(cache=CACHE)
def _apply(psi, geo, m):  # pragma: no cover - compiled
    """Apply one packed gate (geometry row ``geo``, padded matrix ``m``) in place.

    DENSE and DIAGONAL gates act on one or two targets; a SUBSPACE gate's ``m`` is its compressed
    matrix: the 2 x 2 block on the basis states at offsets OFF0, OFF1 of each block of the targets,
    and the phase ``m[2, 2]`` on every other basis state.
    """
    n_amp = psi.shape[0]
    kind, k, b0, b1, cmask, cval = geo[KIND], geo[K], geo[B0], geo[B1], geo[CMASK], geo[CVAL]
    if kind == SUBSPACE:
        tmask, o0, o1 = geo[TMASK], geo[OFF0], geo[OFF1]
        u00, u01, u10, u11, ph = m[0, 0], m[0, 1], m[1, 0], m[1, 1], m[2, 2]
        phased = ph != 1
        for i in range(n_amp):
            if (i & cmask) != cval:
                continue
            t = i & tmask
            if t == 0:
                a0, a1 = psi[i + o0], psi[i + o1]
                psi[i + o0] = u00 * a0 + u01 * a1
                psi[i + o1] = u10 * a0 + u11 * a1
            if phased and t != o0 and t != o1:
                psi[i] *= ph
        return
    if kind == DIAGONAL:
        d0, d1, d2, d3 = m[0, 0], m[1, 1], m[2, 2], m[3, 3]
        for i in range(n_amp):
            if (i & cmask) != cval:
                continue
            if k == 1:
                psi[i] *= d1 if (i >> b0) & 1 else d0
            else:
                a = (((i >> b0) & 1) << 1) | ((i >> b1) & 1)
                psi[i] *= d0 if a == 0 else (d1 if a == 1 else (d2 if a == 2 else d3))
        return
    if k == 1:
        s0 = 1 << b0
        u00, u01, u10, u11 = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
        for i in range(n_amp):
            if (i & s0) or (i & cmask) != cval:
                continue
            j = i | s0
            a0, a1 = psi[i], psi[j]
            psi[i] = u00 * a0 + u01 * a1
            psi[j] = u10 * a0 + u11 * a1
        return
    s0, s1 = 1 << b0, 1 << b1
    m00, m01, m02, m03, m10, m11, m12, m13 = m[0, 0], m[0, 1], m[0, 2], m[0, 3], m[1, 0], m[1, 1], m[1, 2], m[1, 3]
    m20, m21, m22, m23, m30, m31, m32, m33 = m[2, 0], m[2, 1], m[2, 2], m[2, 3], m[3, 0], m[3, 1], m[3, 2], m[3, 3]
    for i in range(n_amp):
        if (i & s0) or (i & s1) or (i & cmask) != cval:
            continue
        i1, i2, i3 = i | s1, i | s0, i | s0 | s1
        a0, a1, a2, a3 = psi[i], psi[i1], psi[i2], psi[i3]
        psi[i] = m00 * a0 + m01 * a1 + m02 * a2 + m03 * a3
        psi[i1] = m10 * a0 + m11 * a1 + m12 * a2 + m13 * a3
        psi[i2] = m20 * a0 + m21 * a1 + m22 * a2 + m23 * a3
        psi[i3] = m30 * a0 + m31 * a1 + m32 * a2 + m33 * a3


@njit(cache=CACHE)
def _reduced(bra, ket, geo, r):  # pragma: no cover - compiled
    """``r[a, c] = sum conj(bra[a, rest]) ket[c, rest]`` on the gate's (controlled) targets, into ``r (4, 4)``.

    For a SUBSPACE gate in its compressed basis: a, c over the two rotated states, and ``r[2, 2]``
    summed over every other basis state of the targets.
    """
    for a in range(4):
        for c in range(4):
            r[a, c] = 0
    k, b0, b1, cmask, cval = geo[K], geo[B0], geo[B1], geo[CMASK], geo[CVAL]
    if geo[KIND] == SUBSPACE:
        tmask, o0, o1 = geo[TMASK], geo[OFF0], geo[OFF1]
        for i in range(bra.shape[0]):
            if (i & cmask) != cval:
                continue
            t = i & tmask
            if t == 0:
                j0, j1 = i + o0, i + o1
                c0, c1 = bra[j0].conjugate(), bra[j1].conjugate()
                r[0, 0] += c0 * ket[j0]
                r[0, 1] += c0 * ket[j1]
                r[1, 0] += c1 * ket[j0]
                r[1, 1] += c1 * ket[j1]
            if t != o0 and t != o1:
                r[2, 2] += bra[i].conjugate() * ket[i]
        return
    d = 2 if k == 1 else 4
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
            cb = bra[idx[a]].conjugate()
            for c in range(d):
                r[a, c] += cb * ket[idx[c]]


@njit(cache=CACHE)
def run_forward(states, geo, mats):  # pragma: no cover - compiled
    """Apply every gate to each state of the batch; ``mats`` is ``(Bm, L, 4, 4)`` with Bm 1 or B."""
    for b in range(states.shape[0]):
        mb = min(b, mats.shape[0] - 1)
        for g in range(geo.shape[0]):
            _apply(states[b], geo[g], mats[mb, g])


@njit(cache=CACHE)
def run_adjoint(bras, kets, geo, mats, occ_start, occ_param, occ_coeff, dmats, grad,
                work):  # pragma: no cover - compiled
    """Backward sweep: for each gate (last first) un-apply from ket, contract derivatives, un-apply from bra.

    ``work[0]`` and ``work[1]`` are complex 4 x 4 scratch: the reduced outer product and the gate's adjoint.
    """
    r, adj = work[0], work[1]
    for b in range(bras.shape[0]):
        mb = min(b, mats.shape[0] - 1)
        db = min(b, dmats.shape[0] - 1)
        for g in range(geo.shape[0] - 1, -1, -1):
            _dagger(adj, mats[mb, g])
            _apply(kets[b], geo[g], adj)
            if occ_start[g + 1] > occ_start[g]:
                _reduced(bras[b], kets[b], geo[g], r)
                for q in range(occ_start[g], occ_start[g + 1]):
                    s = 0.0
                    for a in range(4):
                        for c in range(4):
                            s += (dmats[db, q, a, c] * r[a, c]).real
                    grad[b, occ_param[q]] += 2.0 * occ_coeff[q] * s
            _apply(bras[b], geo[g], adj)


@njit(cache=CACHE)
def _spectral_factor(v, lam, projs, nev, base, tmp, out):  # pragma: no cover - compiled
    """``out = sum_j exp(i v l_j) P_j U(0)`` on padded 4 x 4 blocks (``projs`` P_j, or i l_j P_j for the
    derivative)."""
    for r in range(4):
        for c in range(4):
            tmp[r, c] = 0
    for j in range(nev):
        w = cmath.exp(1j * v * lam[j])
        for r in range(4):
            for c in range(4):
                tmp[r, c] += w * projs[j, r, c]
    _mul(tmp, base, out)


@njit(cache=CACHE, inline="always")
def _mul(a, b, out):  # pragma: no cover - compiled
    """``out = a @ b`` for 4 x 4 blocks (``out`` distinct from both)."""
    for r in range(4):
        for c in range(4):
            out[r, c] = 0
    for r in range(4):
        for m in range(4):
            x = a[r, m]
            if x != 0:
                for c in range(4):
                    out[r, c] += x * b[m, c]


@njit(cache=CACHE, inline="always")
def _copy(out, u):  # pragma: no cover - compiled
    """``out = u`` for 4 x 4 blocks (explicit loops compile faster than slice copies)."""
    for r in range(4):
        for c in range(4):
            out[r, c] = u[r, c]


@njit(cache=CACHE, inline="always")
def _dagger(out, u):  # pragma: no cover - compiled
    """``out = u^dagger`` for 4 x 4 blocks."""
    for r in range(4):
        for c in range(4):
            out[r, c] = u[c, r].conjugate()


@njit(cache=CACHE)
def bind_spectral(theta, fstart, f_pidx, f_coeff, f_offset, f_nev, f_evals, f_projs, f_base, const, inverse,
                  occ_gate, occ_factor, mats, dmats, scratch):  # pragma: no cover - compiled
    """Gate matrices ``mats (B, L, 4, 4)`` and derivative matrices ``dmats (B, Q, 4, 4)`` for ``theta (B, P)``.

    ``scratch`` is ``(3 + F, 4, 4)`` complex: three work blocks, then the F factor matrices.
    """
    n_gates = fstart.shape[0] - 1
    n_factors = fstart[n_gates]
    u, tmp, dfac, fm = scratch[0], scratch[1], scratch[2], scratch[3:]
    for b in range(theta.shape[0]):
        for f in range(n_factors):
            p = f_pidx[f]
            v = f_offset[f] + (f_coeff[f] * theta[b, p] if p >= 0 else 0.0)
            _spectral_factor(v, f_evals[f], f_projs[f, 0], f_nev[f], f_base[f], tmp, fm[f])
        # gates (q < 0), then derivative occurrences, in one loop so that the factor product below is
        # compiled once (two loops, or an inlined helper for it, add about a second of numba compile time)
        for q in range(-n_gates, occ_gate.shape[0]):
            if q < 0:
                g, fq, out = q + n_gates, -1, mats[b, q + n_gates]
                if fstart[g] == fstart[g + 1]:
                    _copy(out, const[g])
                    continue
            else:
                g, fq, out = occ_gate[q], occ_factor[q], dmats[b, q]
                p = f_pidx[fq]
                v = f_offset[fq] + (f_coeff[fq] * theta[b, p] if p >= 0 else 0.0)
                _spectral_factor(v, f_evals[fq], f_projs[fq, 1], f_nev[fq], f_base[fq], tmp, dfac)
            for f in range(fstart[g], fstart[g + 1]):
                if f == fstart[g]:
                    _copy(u, dfac if f == fq else fm[f])
                else:
                    _mul(dfac if f == fq else fm[f], u, tmp)
                    _copy(u, tmp)
            if inverse[g]:
                _dagger(out, u)
            else:
                _copy(out, u)


@njit(cache=CACHE)
def run_expval_grad(kets, bras, geo, mats, occ_start, occ_param, occ_coeff, dmats, diag, xmasks, tables, values,
                    grad, work):  # pragma: no cover - compiled
    """Forward pass, ``<O>`` of a Pauli sum (diagonal part + grouped sign tables, see
    :func:`qdiff.observables.pauli_group_tables`), bra ``O|psi>`` (into ``bras``), backward sweep."""
    run_forward(kets, geo, mats)
    n_amp = kets.shape[1]
    for b in range(kets.shape[0]):
        ket, bra = kets[b], bras[b]
        for i in range(n_amp):
            bra[i] = diag[i] * ket[i]
        for g in range(xmasks.shape[0]):
            x = xmasks[g]
            w = tables[g]
            for i in range(n_amp):
                j = i ^ x
                bra[i] += w[j] * ket[j]
        s = 0.0
        for i in range(n_amp):
            s += (ket[i].conjugate() * bra[i]).real
        values[b] = s
    run_adjoint(bras, kets, geo, mats, occ_start, occ_param, occ_coeff, dmats, grad, work)


def _work(extra: int = 0) -> np.ndarray:
    """Three (plus ``extra``) scratch 4 x 4 complex blocks for a compiled call (allocated here: array
    creation inside a kernel costs compile time)."""
    return np.empty((3 + extra, 4, 4), dtype=np.complex128)


def _constant_matrix(kern: Any, basis: tuple[int, int, int] | None) -> np.ndarray | None:
    """A parameter-free kernel as the executor's 4 x 4 block (None when its data is batched)."""
    m = kernel_matrix(kern)
    return None if m.ndim != 2 else block4(m, basis)


def _geometry(op: Any, n: int, basis: tuple[int, int, int] | None) -> list[int]:
    """One geometry row (columns KIND .. OFF1) of ``op`` on ``n`` qubits."""
    wires = op.wires
    k = len(wires)
    cmask = cval = 0
    for c, v in zip(op.controls, op.control_values, strict=True):
        cmask |= 1 << (n - 1 - c)
        cval |= v << (n - 1 - c)
    offs = local_offsets([n - 1 - w for w in wires])
    tmask, offsets = offs[-1], [0, 0]
    if basis is not None:
        offsets = [offs[basis[0]], offs[basis[1]]]
        kind = SUBSPACE
    else:
        kind = DIAGONAL if exec_kind(op.gate) == Kind.DIAGONAL else DENSE
    return [kind, k, n - 1 - wires[0], n - 1 - wires[-1], cmask, cval, tmask, *offsets]


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
        self.bases = [compressed_basis(ops[i].gate.name, len(ops[i].wires)) for i in keep]
        self.geo = np.array([_geometry(ops[i], n, basis) for i, basis in zip(keep, self.bases, strict=True)],
                            dtype=np.int64).reshape(len(keep), OFF1 + 1)
        fixed = program._constant_kernels[False]
        constants = [(_constant_matrix(fixed[i], basis) if i in fixed else None)
                     for i, basis in zip(keep, self.bases, strict=True)]
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
                      sp.f_base, sp.const, sp.inverse, occ_gate, sp.occ_factor, mats, dmats,
                      _work(sp.fstart[-1]))
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
        for g, (i, basis) in enumerate(zip(self.keep, self.bases, strict=True)):
            mats[:, g] = block4(kernel_matrix(kernels[i]), basis)
        if not derivatives:
            return mats, None
        derivs = self.program.derivatives(theta)
        entries = [block4(d, basis) for i, basis in zip(self.keep, self.bases, strict=True)
                   for _, d in derivs.get(i, [])]
        dmats = np.zeros((batch, max(1, len(entries)), 4, 4), dtype=np.complex128)
        for q, d in enumerate(entries):
            dmats[:, q] = d
        return mats, dmats


def packing(program: Any) -> PackedProgram | None:
    """The program's cached packing, or None when the executor cannot run it (wide gates, many qubits)."""
    cached = getattr(program, "_cpu_packing", None)
    if cached is None:
        ok = program.circuit.num_wires <= MAX_QUBITS and all(
            exec_kind(op.gate) is None or (exec_kind(op.gate) in (Kind.DENSE, Kind.DIAGONAL, Kind.PERMUTATION)
                                           and 1 <= len(op.wires) <= 2)
            or compressed_basis(op.gate.name, len(op.wires)) is not None
            for op in program.operations
        )
        cached = PackedProgram(program) if ok else False
        program._cpu_packing = cached
    return cached or None


def enabled(backend: Any) -> bool:
    """The executor serves the numpy backend unless compiled kernels are switched off (QDIFF_KERNELS=numpy)."""
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
    run_forward(state, p.geo, mats)


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
    run_adjoint(bra, ket, p.geo, mats, *p.occurrences(theta), dmats, part, _work())
    grad += part


def expval_grad_accepts(backend: Any, program: Any, state: np.ndarray, observable: Any) -> bool:
    """Whether :func:`expval_grad` can run: a Pauli-sum observable and a program bound from its spectral form."""
    p = _usable(backend, program, state)
    return (p is not None and p.spectral is not None
            and pauli_group_tables(observable, program.circuit.num_wires) is not None)


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
    run_expval_grad(state, np.empty_like(state), p.geo, mats, sp.occ_start, sp.occ_param, sp.occ_coeff, dmats,
                    *pauli_group_tables(observable, program.circuit.num_wires), values, grad, _work())
    return values, grad
