"""Cache-blocked passes on the CPU: many gates per sweep over a large state.

One gate at a time, a 20-qubit state (16 MiB) is streamed through memory once per gate. Here the
gates are grouped into passes (:mod:`qdiff.schedule`); for each pass the state is walked in blocks of
``2**m`` amplitudes that differ only in the pass's wires (plus a few spectator wires on the lowest
bits, so every inner loop runs over >= 16 contiguous doubles and vectorises). A block is gathered into
a thread-private buffer with real and imaginary parts split (L2-resident), every gate of the pass is
applied to it, and it is scattered back in place: one read and one write of the state per pass, no
extra statevector. In the forward pass, consecutive one-qubit gates on a wire are multiplied together
and each controlled one-target gate (CNOT, CRX, CZ, ...) absorbs the one-qubit gate next to it on its
target (``csel``: one matrix where the control is 0, another where it is 1), so CNOTs cost no sweep.

The adjoint sweep uses the same blocks for the bra and the ket: per gate (last first) un-apply it from
the ket, accumulate the reduced outer product ``R`` on its targets, un-apply it from the bra; R is
summed per thread and contracted with the derivative matrices afterwards.

Gates handled in blocks: one-target gates with at most one control, two-target gates without
controls, CNOT-like and SWAP permutations, and uncontrolled excitations on more targets
(DoubleExcitation and its Plus/Minus forms: two amplitudes rotated per 2^k-block, a phase on the
others; R and the derivatives in that compressed basis); anything else runs alone through the
per-gate kernels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit, prange

from ...cache import StructureCache
from ...fusion import (
    CSEL,
    CU1,
    SUB,
    SWAP_SUB,
    U1,
    U2,
    BlockOp,
    block_sequence,
    blocks_generator_ops,
    dense_matrices,
    op_matrices,
)
from ...ir.bits import local_offsets
from ...program import contract_derivatives
from ...schedule import GateWires, plan_passes
from ...spectral import block4
from . import whole_circuit
from .intrinsics import popcount
from .jit import CACHE

MIN_QUBITS = 13
"""States from this many qubits run in blocked passes (smaller ones: the whole-circuit executor)."""

BLOCK_BITS = 16
"""log2 of the amplitudes per block in the forward pass (re + im: 1 MiB per thread, in L2)."""

ADJOINT_BLOCK_BITS = 15
"""The same for the adjoint sweep, which holds a block of the bra and of the ket (1 MiB per thread)."""

SPECTATOR_BITS = 4
"""Lowest state bits kept in every block although no gate of the pass acts on them (vector width)."""

MAX_RUN = 64
"""Longest run of contiguous amplitudes copied at once when gathering a block."""

_JIT = {"cache": CACHE, "fastmath": True, "boundscheck": False, "error_model": "numpy", "nogil": True}



# ------------------------------------------------------------------------------------------------
# kernels on a block buffer (split re/im, local bit positions); matrix entries are hoisted into
# scalars and inner loops run over contiguous slices, which is what LLVM vectorises


@njit(inline="always", **_JIT)
def _is_real(u):  # pragma: no cover - compiled
    """Whether a 2x2 matrix given as 8 floats ((re, im) pairs) has no imaginary part (RY, CZ, ...)."""
    return u[1] == 0.0 and u[3] == 0.0 and u[5] == 0.0 and u[7] == 0.0


@njit(inline="always", **_JIT)
def _k_pair(xr, xi, yr, yi, u, real):  # pragma: no cover - compiled
    """``(x, y) <- u (x, y)`` elementwise over equal-length runs; ``u`` is a 2x2 matrix as 8 floats.

    ``real`` (``_is_real(u)``, decided once per op by the caller) takes the loop with half the
    multiplications: real rotations (RY) and the CZ-absorbing halves of ansatzes built from them."""
    ar, ai, br, bi, cr, ci, dr, di = u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7]
    if real:
        for k in range(xr.shape[0]):
            a, b, c, d = xr[k], xi[k], yr[k], yi[k]
            xr[k] = ar * a + br * c
            xi[k] = ar * b + br * d
            yr[k] = cr * a + dr * c
            yi[k] = cr * b + dr * d
        return
    for k in range(xr.shape[0]):
        a, b, c, d = xr[k], xi[k], yr[k], yi[k]
        xr[k] = ar * a - ai * b + br * c - bi * d
        xi[k] = ar * b + ai * a + br * d + bi * c
        yr[k] = cr * a - ci * b + dr * c - di * d
        yi[k] = cr * b + ci * a + dr * d + di * c


@njit(inline="always", **_JIT)
def _k_u1(re, im, q, u):  # pragma: no cover - compiled
    """2x2 matrix on local bit ``q``."""
    s = 1 << q
    real = _is_real(u)
    for b0 in range(0, re.shape[0], 2 * s):
        _k_pair(re[b0:b0 + s], im[b0:b0 + s], re[b0 + s:b0 + 2 * s], im[b0 + s:b0 + 2 * s], u, real)


@njit(inline="always", **_JIT)
def _k_cu1(re, im, c, q, u, half):  # pragma: no cover - compiled
    """2x2 matrix on local bit ``q`` where local bit ``c`` is ``half``."""
    sl, sh, sq, off = 1 << min(c, q), 1 << max(c, q), 1 << q, half << c
    real = _is_real(u)
    for b0 in range(0, re.shape[0], 2 * sh):
        for b1 in range(b0 + off, b0 + off + sh, 2 * sl):
            _k_pair(re[b1:b1 + sl], im[b1:b1 + sl], re[b1 + sq:b1 + sq + sl], im[b1 + sq:b1 + sq + sl], u, real)


@njit(inline="always", **_JIT)
def _k_swap_sub(re, im, qa, qb, offa, offb):  # pragma: no cover - compiled
    """For every index with local bits ``qa``, ``qb`` clear, swap the amplitudes at ``+offa`` and ``+offb``."""
    sl, sh = 1 << min(qa, qb), 1 << max(qa, qb)
    for b0 in range(0, re.shape[0], 2 * sh):
        for b1 in range(b0, b0 + sh, 2 * sl):
            ra, ia = re[b1 + offa:b1 + offa + sl], im[b1 + offa:b1 + offa + sl]
            rb, ib = re[b1 + offb:b1 + offb + sl], im[b1 + offb:b1 + offb + sl]
            for k in range(sl):
                t = ra[k]
                ra[k] = rb[k]
                rb[k] = t
                t = ia[k]
                ia[k] = ib[k]
                ib[k] = t


@njit(inline="always", **_JIT)
def _k_u2(re, im, qa, qb, u):  # pragma: no cover - compiled
    """Dense 4x4 (32 floats) on local bits ``(qa, qb)``; ``qa`` is the matrix's more significant target."""
    u0, u1, u2, u3, u4, u5, u6, u7 = u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7]
    u8, u9, u10, u11, u12, u13, u14, u15 = u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]
    u16, u17, u18, u19, u20, u21, u22, u23 = u[16], u[17], u[18], u[19], u[20], u[21], u[22], u[23]
    u24, u25, u26, u27, u28, u29, u30, u31 = u[24], u[25], u[26], u[27], u[28], u[29], u[30], u[31]
    sl, sh, sa, sb = 1 << min(qa, qb), 1 << max(qa, qb), 1 << qa, 1 << qb
    for b0 in range(0, re.shape[0], 2 * sh):
        for b1 in range(b0, b0 + sh, 2 * sl):
            r0, i0 = re[b1:b1 + sl], im[b1:b1 + sl]
            r1, i1 = re[b1 + sb:b1 + sb + sl], im[b1 + sb:b1 + sb + sl]
            r2, i2 = re[b1 + sa:b1 + sa + sl], im[b1 + sa:b1 + sa + sl]
            r3, i3 = re[b1 + sa + sb:b1 + sa + sb + sl], im[b1 + sa + sb:b1 + sa + sb + sl]
            for k in range(sl):
                x0r, x0i, x1r, x1i = r0[k], i0[k], r1[k], i1[k]
                x2r, x2i, x3r, x3i = r2[k], i2[k], r3[k], i3[k]
                y0r = (u0 * x0r - u1 * x0i + u2 * x1r - u3 * x1i) + (u4 * x2r - u5 * x2i + u6 * x3r - u7 * x3i)
                y0i = (u0 * x0i + u1 * x0r + u2 * x1i + u3 * x1r) + (u4 * x2i + u5 * x2r + u6 * x3i + u7 * x3r)
                y1r = (u8 * x0r - u9 * x0i + u10 * x1r - u11 * x1i) + (u12 * x2r - u13 * x2i + u14 * x3r - u15 * x3i)
                y1i = (u8 * x0i + u9 * x0r + u10 * x1i + u11 * x1r) + (u12 * x2i + u13 * x2r + u14 * x3i + u15 * x3r)
                y2r = (u16 * x0r - u17 * x0i + u18 * x1r - u19 * x1i) + (u20 * x2r - u21 * x2i + u22 * x3r - u23 * x3i)
                y2i = (u16 * x0i + u17 * x0r + u18 * x1i + u19 * x1r) + (u20 * x2i + u21 * x2r + u22 * x3i + u23 * x3r)
                y3r = (u24 * x0r - u25 * x0i + u26 * x1r - u27 * x1i) + (u28 * x2r - u29 * x2i + u30 * x3r - u31 * x3i)
                y3i = (u24 * x0i + u25 * x0r + u26 * x1i + u27 * x1r) + (u28 * x2i + u29 * x2r + u30 * x3i + u31 * x3r)
                r0[k], i0[k], r1[k], i1[k] = y0r, y0i, y1r, y1i
                r2[k], i2[k], r3[k], i3[k] = y2r, y2i, y3r, y3i


@njit(inline="always", **_JIT)
def _sub_base(r, tmask, qlo):  # pragma: no cover - compiled
    """The ``r``-th block index with every bit of ``tmask`` clear, counting runs of ``2**qlo`` (``qlo``:
    the lowest bit of ``tmask``): a zero bit inserted at each set bit of ``tmask``, lowest first."""
    o = r << qlo
    p = qlo
    while (tmask >> p) != 0:
        if (tmask >> p) & 1:
            o = ((o >> p) << (p + 1)) | (o & ((1 << p) - 1))
        p += 1
    return o


@njit(inline="always", **_JIT)
def _k_sub(re, im, tmask, qlo, offa, offb, u):  # pragma: no cover - compiled
    """Two-level rotation ``u[0:8]`` of the local states at ``+offa``, ``+offb`` of every index with the
    target bits ``tmask`` clear, and the phase ``u[8] + i u[9]`` on the other states of the targets."""
    run = 1 << qlo
    pr, pi = u[8], u[9]
    phased = pr != 1.0 or pi != 0.0
    real = _is_real(u)
    for r in range(re.shape[0] >> (popcount(tmask) + qlo)):
        o = _sub_base(r, tmask, qlo)
        _k_pair(re[o + offa:o + offa + run], im[o + offa:o + offa + run], re[o + offb:o + offb + run],
                im[o + offb:o + offb + run], u, real)
        if phased:
            sm = tmask
            while True:  # every submask of tmask is the offset of one local state
                if sm != offa and sm != offb:
                    x = o + sm
                    for j in range(x, x + run):
                        a, b = re[j], im[j]
                        re[j] = pr * a - pi * b
                        im[j] = pr * b + pi * a
                if sm == 0:
                    break
                sm = (sm - 1) & tmask


@njit(**_JIT)
def _apply_op(re, im, ops, mats, g):  # pragma: no cover - compiled
    code = ops[g, 0]
    if code == U1:
        _k_u1(re, im, ops[g, 2], mats[g, 0:8])
    elif code == CU1:
        _k_cu1(re, im, ops[g, 1], ops[g, 2], mats[g, 0:8], ops[g, 3])
    elif code == CSEL:
        _k_cu1(re, im, ops[g, 1], ops[g, 2], mats[g, 0:8], 0)
        _k_cu1(re, im, ops[g, 1], ops[g, 2], mats[g, 8:16], 1)
    elif code == U2:
        _k_u2(re, im, ops[g, 1], ops[g, 2], mats[g])
    elif code == SWAP_SUB:
        _k_swap_sub(re, im, ops[g, 1], ops[g, 2], ops[g, 3], ops[g, 4])
    else:
        _k_sub(re, im, ops[g, 1], ops[g, 2], ops[g, 3], ops[g, 4], mats[g])


@njit(**_JIT)
def _reduce_op(bre, bim, kre, kim, ops, g, acc):  # pragma: no cover - compiled
    """Accumulate ``R[a, c] = sum conj(bra_a) ket_c`` on op ``g``'s targets (controlled half only) into ``acc``.

    ``acc`` holds a 4x4 complex matrix as 32 floats (row-major, (re, im) pairs); 2x2 ops fill its corner.
    """
    code = ops[g, 0]
    M = bre.shape[0]
    if code == U2:
        qa, qb = ops[g, 1], ops[g, 2]
        sl, sh, sa, sb = 1 << min(qa, qb), 1 << max(qa, qb), 1 << qa, 1 << qb
        offs = (0, sb, sa, sa + sb)
        for b0 in range(0, M, 2 * sh):
            for b1 in range(b0, b0 + sh, 2 * sl):
                for a in range(4):
                    xa = b1 + offs[a]
                    ba_r, ba_i = bre[xa:xa + sl], bim[xa:xa + sl]
                    for c in range(4):
                        xc = b1 + offs[c]
                        kc_r, kc_i = kre[xc:xc + sl], kim[xc:xc + sl]
                        sr = 0.0
                        si = 0.0
                        for k in range(sl):
                            sr += ba_r[k] * kc_r[k] + ba_i[k] * kc_i[k]
                            si += ba_r[k] * kc_i[k] - ba_i[k] * kc_r[k]
                        acc[8 * a + 2 * c] += sr
                        acc[8 * a + 2 * c + 1] += si
        return
    if code == SUB:
        tmask, qlo, offa, offb = ops[g, 1], ops[g, 2], ops[g, 3], ops[g, 4]
        run = 1 << qlo
        tot = _ZERO8
        rr = ri = 0.0
        for r in range(M >> (popcount(tmask) + qlo)):
            o = _sub_base(r, tmask, qlo)
            xa, xb = o + offa, o + offb
            tot = _add8(tot, _pair_outer(bre[xa:xa + run], bim[xa:xa + run], bre[xb:xb + run], bim[xb:xb + run],
                                         kre[xa:xa + run], kim[xa:xa + run], kre[xb:xb + run], kim[xb:xb + run]))
            if ops[g, 5]:  # the derivative has a part on the other states: sum conj(bra) ket there
                sm = tmask
                while True:
                    if sm != offa and sm != offb:
                        for j in range(o + sm, o + sm + run):
                            rr += bre[j] * kre[j] + bim[j] * kim[j]
                            ri += bre[j] * kim[j] - bim[j] * kre[j]
                    if sm == 0:
                        break
                    sm = (sm - 1) & tmask
        acc[20] += rr  # R[2, 2]: the other states
        acc[21] += ri
    else:
        q = ops[g, 2]
        sq = 1 << q
        if code == CU1:
            c_bit, half = ops[g, 1], ops[g, 3]
            sl, sh, off = 1 << min(c_bit, q), 1 << max(c_bit, q), half << c_bit
        else:
            sl, sh, off = sq, sq, 0
        tot = _ZERO8
        for b0 in range(0, M, 2 * sh):
            for b1 in range(b0 + off, b0 + off + sh, 2 * sl):
                x1 = b1 + sq
                tot = _add8(tot, _pair_outer(bre[b1:b1 + sl], bim[b1:b1 + sl], bre[x1:x1 + sl], bim[x1:x1 + sl],
                                             kre[b1:b1 + sl], kim[b1:b1 + sl], kre[x1:x1 + sl], kim[x1:x1 + sl]))
    for e in range(8):  # the 2x2 corner: entries (0,0) (0,1) (1,0) (1,1), (re, im) pairs
        acc[e + 4 * (e // 4)] += tot[e]


_ZERO8 = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@njit(inline="always", **_JIT)
def _add8(a, b):  # pragma: no cover - compiled
    """Elementwise sum of two 8-tuples of floats (running 2x2 complex sums kept in registers)."""
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4], a[5] + b[5], a[6] + b[6],
            a[7] + b[7])


@njit(inline="always", **_JIT)
def _pair_outer(b0r, b0i, b1r, b1i, k0r, k0i, k1r, k1i):  # pragma: no cover - compiled
    """``R[a, c] = sum conj(bra_a) ket_c`` of two runs of amplitude pairs (bra runs ``b0``, ``b1``, ket runs
    ``k0``, ``k1``): (r00, r01, r10, r11) as (re, im) pairs."""
    r00r = r00i = r01r = r01i = r10r = r10i = r11r = r11i = 0.0
    for k in range(b0r.shape[0]):
        xr, xi, yr, yi = b0r[k], b0i[k], b1r[k], b1i[k]
        ur, ui, vr, vi = k0r[k], k0i[k], k1r[k], k1i[k]
        r00r += xr * ur + xi * ui
        r00i += xr * ui - xi * ur
        r01r += xr * vr + xi * vi
        r01i += xr * vi - xi * vr
        r10r += yr * ur + yi * ui
        r10i += yr * ui - yi * ur
        r11r += yr * vr + yi * vi
        r11i += yr * vi - yi * vr
    return r00r, r00i, r01r, r01i, r10r, r10i, r11r, r11i


# ------------------------------------------------------------------------------------------------
# moving blocks between the interleaved state and the split buffers


@njit(inline="always", **_JIT)
def _move(st, re, im, base, geo, tables, scatter):  # pragma: no cover - compiled
    """Gather block ``base`` of ``st`` (float64 view) into ``re``/``im``, or scatter it back.

    The block's local index is (spectator bits | run bits | other gated bits); ``tables`` maps the
    high part of a local index to its state offset (``po``), its buffer offset (``li``) and the
    spectator tile offsets (``soff``). A contiguous block copies runs of ``R * D`` amplitudes.
    """
    hshift, r0, D, R, contig = geo[0], geo[1], geo[2], geo[3], geo[4]
    po_lo, po_hi, li_lo, li_hi, soff = tables[0], tables[1], tables[2], tables[3], tables[4]
    RD = R * D
    nout = re.shape[0] // RD
    hm = (1 << hshift) - 1
    for h in range(nout):
        sb = base + po_hi[h >> hshift] + po_lo[h & hm]
        d0 = li_hi[h >> hshift] | li_lo[h & hm]
        r = re[d0:d0 + RD]
        i = im[d0:d0 + RD]
        if contig:
            seg = st[2 * sb:2 * sb + 2 * RD]
            if scatter:
                for k in range(RD):
                    seg[2 * k] = r[k]
                    seg[2 * k + 1] = i[k]
            else:
                for k in range(RD):
                    r[k] = seg[2 * k]
                    i[k] = seg[2 * k + 1]
        else:
            for k in range(R):
                sk = sb + (k << r0)
                for s in range(D):
                    a = 2 * (sk + soff[s])
                    if scatter:
                        st[a] = r[k * D + s]
                        st[a + 1] = i[k * D + s]
                    else:
                        r[k * D + s] = st[a]
                        i[k * D + s] = st[a + 1]


@njit(parallel=True, **_JIT)
def forward_pass(st, m, bases, geo, tables, ops, mats, nthr):  # pragma: no cover - compiled
    """Apply every op of one pass to the state ``st`` (float64 view of one row), block by block."""
    size = 1 << m
    nblk = bases.shape[0]
    for t in prange(nthr):
        re = np.empty(size)
        im = np.empty(size)
        for b in range(t, nblk, nthr):
            _move(st, re, im, bases[b], geo, tables, False)
            for g in range(ops.shape[0]):
                _apply_op(re, im, ops, mats, g)
            _move(st, re, im, bases[b], geo, tables, True)


@njit(parallel=True, **_JIT)
def adjoint_pass(bst, kst, m, bases, geo, tables, ops, mats, slots, partial, nthr):  # pragma: no cover - compiled
    """Per op (in the order given, already inverted): un-apply from ket, accumulate R, un-apply from bra.

    ``slots[g] >= 0`` selects the row of ``partial[thread]`` that op ``g``'s R accumulates into.
    """
    size = 1 << m
    nblk = bases.shape[0]
    for t in prange(nthr):
        bre = np.empty(size)
        bim = np.empty(size)
        kre = np.empty(size)
        kim = np.empty(size)
        for b in range(t, nblk, nthr):
            _move(bst, bre, bim, bases[b], geo, tables, False)
            _move(kst, kre, kim, bases[b], geo, tables, False)
            for g in range(ops.shape[0]):
                _apply_op(kre, kim, ops, mats, g)
                if slots[g] >= 0:
                    _reduce_op(bre, bim, kre, kim, ops, g, partial[t, slots[g]])
                _apply_op(bre, bim, ops, mats, g)
            _move(bst, bre, bim, bases[b], geo, tables, True)
            _move(kst, kre, kim, bases[b], geo, tables, True)


# ------------------------------------------------------------------------------------------------
# planning (structure only, cached per program) and binding (matrices, per call)

_DTYPES = (np.dtype(np.complex128), np.dtype(np.complex64))


def _tables(values: list[int]) -> np.ndarray:
    """All subset sums of ``values`` (index bit i selects values[i])."""
    out = np.zeros(1 << len(values), dtype=np.int64)
    for i, v in enumerate(values):
        out[1 << i:2 << i] = out[: 1 << i] + v
    return out


@dataclass
class BlockedPass:
    """One pass: its ops (BlockOp, or an operation index run alone) and, when blocked, its geometry."""

    items: list[Any]
    m: int = 0
    bases: Any = None
    geo: Any = None
    tables: Any = None
    ops: Any = None  # (G, 6) int64: code, local bits, control value / swap offsets (SUB: see _geometry)

    @property
    def blocked(self) -> bool:
        return self.ops is not None


def _geometry(p: BlockedPass, n: int, m: int, local_wires: list[int]) -> None:
    """Block layout of a pass over wires ``local_wires``: spectator bits lowest, then the gated bits."""
    gated = sorted(n - 1 - w for w in local_wires)
    others = [q for q in range(n) if q not in set(gated)]
    spec, nonlocal_bits = others[: m - len(gated)], others[m - len(gated):]
    local_of = {q: i for i, q in enumerate(spec + gated)}
    r0, c = (gated[0], 1) if gated else (0, 0)
    while c and c < len(gated) and gated[c] == r0 + c and (2 << c) <= MAX_RUN:
        c += 1
    contig = spec == list(range(len(spec))) and (r0 == len(spec) or c == 0)
    rest = [q for q in gated if not r0 <= q < r0 + c]
    hshift = min(7, len(rest))
    p.m = m
    p.bases = _tables([1 << q for q in nonlocal_bits])
    p.geo = np.array([hshift, r0, 1 << len(spec), 1 << c, int(contig)], dtype=np.int64)
    po = [1 << q for q in rest]
    li = [1 << local_of[q] for q in rest]
    p.tables = (_tables(po[:hshift]), _tables(po[hshift:]), _tables(li[:hshift]), _tables(li[hshift:]),
                _tables([1 << q for q in spec]))
    ops = np.zeros((len(p.items), 6), dtype=np.int64)
    for g, bop in enumerate(p.items):
        lb = [local_of[n - 1 - w] for w in bop.wires]
        ops[g, 0] = bop.code
        if bop.code == SUB:  # target mask, its lowest bit, the rotated states' offsets, phase-derivative flag
            offs = local_offsets(lb)
            ops[g, 1:] = [offs[-1], min(lb), offs[bop.basis[0]], offs[bop.basis[1]], bop.value]
            continue
        ops[g, 1] = lb[0] if len(lb) > 1 else -1
        ops[g, 2] = lb[-1]
        if bop.code == CU1:
            ops[g, 3] = bop.value
        elif bop.code == SWAP_SUB:
            a, b = lb
            ops[g, 1], ops[g, 2] = a, b
            if bop.value >= 0:  # CNOT: control a with value v, target b
                ops[g, 3], ops[g, 4] = bop.value << a, (bop.value << a) | (1 << b)
            else:
                ops[g, 3], ops[g, 4] = 1 << a, 1 << b
    p.ops = ops


def threads() -> int:
    """Worker count for blocked passes (numba's current thread count)."""
    import numba

    return int(numba.get_num_threads())


class BlockedPlan:
    """A program's forward passes (fused) or adjoint passes (unfused, inverted, last gate first)."""

    def __init__(self, program: Any, adjoint: bool):
        n = program.circuit.num_wires
        ops = program.operations
        self.nthr = threads()
        bits = ADJOINT_BLOCK_BITS if adjoint else BLOCK_BITS
        self.m = m = min(bits, n - max(0, (self.nthr - 1).bit_length()))  # at least one block per thread
        width = m - SPECTATOR_BITS
        seq = block_sequence(ops, adjoint, width, subspace=True)
        wires = [GateWires(tuple(s.wires)) if isinstance(s, BlockOp) else
                 GateWires(tuple(ops[s].wires), tuple(ops[s].controls), blockable=False) for s in seq]
        self.passes: list[BlockedPass] = []
        for ps in plan_passes(wires, width):
            bp = BlockedPass([seq[g] for g in ps.gates])
            if ps.blocked:
                _geometry(bp, n, m, list(ps.local))
            self.passes.append(bp)

    def matrices(self, bp: BlockedPass, dense: dict[int, np.ndarray], batch: int) -> np.ndarray:
        """``(Bm, G, 32)`` float64 op data of a blocked pass from the operations' dense matrices."""
        return op_matrices(bp.items, dense, batch).view(np.float64)


PLAN_CACHE_SIZE = 16
"""Plans kept by circuit structure: the PennyLane device converts every tape into a new circuit."""

_PLANS: StructureCache[BlockedPlan] = StructureCache("blocked plans", PLAN_CACHE_SIZE)


def plan_of(program: Any, adjoint: bool) -> BlockedPlan:
    """The program's blocked plan: cached on it, and by circuit structure across programs (rebuilt when
    numba's thread count changed)."""
    attr = "_blocked_adjoint" if adjoint else "_blocked_forward"
    plan = getattr(program, attr, None)
    if plan is not None and plan.nthr == threads():
        return plan
    ops = program.operations
    key = (program.circuit.num_wires, adjoint, threads(),
           tuple((op.gate.name, op.wires, op.controls, op.control_values, op.inverse) for op in ops))
    plan = _PLANS.get_or_build(key, lambda: BlockedPlan(program, adjoint))
    setattr(program, attr, plan)
    return plan


def enabled(backend: Any, *states: Any) -> bool:
    """Blocked passes serve large states on the numpy backend (not with QDIFF_KERNELS=numpy).

    complex64 states are gathered into the same float64 buffers, computed in double precision and
    rounded once per pass when written back.
    """
    if not whole_circuit.enabled(backend):
        return False
    return all(type(s) is np.ndarray and s.dtype in _DTYPES and s.flags.c_contiguous and s.ndim == 2
               and s.shape[1] >= 1 << MIN_QUBITS for s in states)


def forward_accepts(backend: Any, program: Any, state: np.ndarray) -> bool:
    """Whether blocked passes can run ``program`` forward on ``state`` (large states, numpy backend)."""
    return enabled(backend, state)


def forward(backend: Any, program: Any, theta: np.ndarray, state: np.ndarray) -> None:
    """Apply the whole circuit to ``state`` in blocked passes (``forward_accepts`` must hold)."""
    from ...program import apply_kernel

    plan = plan_of(program, adjoint=False)
    kernels = program.kernels(theta)
    dense = dense_matrices([bop for bp in plan.passes for bop in bp.items], kernels)
    batch = state.shape[0]
    for bp in plan.passes:
        if not bp.blocked:
            apply_kernel(backend, state, kernels[bp.items[0]])
            continue
        mats = plan.matrices(bp, dense, batch)
        for b in range(batch):
            forward_pass(state[b].view(state.real.dtype), bp.m, bp.bases, bp.geo, bp.tables, bp.ops, mats[b], plan.nthr)


def sweep_accepts(backend: Any, program: Any, bra: np.ndarray, ket: np.ndarray) -> bool:
    """Whether blocked passes can run the backward sweep: large states, and no blocked gate
    differentiated through its generator."""
    if not enabled(backend, bra, ket):
        return False
    return not blocks_generator_ops(plan_of(program, adjoint=True).passes, program.generator_ops)


def sweep(backend: Any, program: Any, theta: np.ndarray, bra: np.ndarray, ket: np.ndarray, grad: np.ndarray,
          sweep_alone: Any) -> None:
    """The adjoint backward sweep in blocked passes, accumulating into ``grad (B, P)``.

    ``sweep_alone(index)`` runs the per-gate sweep step for an operation that cannot be blocked.
    """
    derivs = program.derivatives(theta)
    plan = plan_of(program, adjoint=True)
    inverses = program.kernels(theta, inverse=True)
    dense = dense_matrices([bop for bp in plan.passes for bop in bp.items], inverses)
    slots: dict[int, int] = {}
    bases: dict[int, Any] = {}  # SUB ops: R and the derivatives in the compressed basis
    for bp in plan.passes:
        for bop in bp.items:
            if isinstance(bop, BlockOp) and derivs.get(bop.parts[0][0]):
                slots[bop.parts[0][0]] = len(slots)
                bases[bop.parts[0][0]] = bop.basis
    batch = bra.shape[0]
    partial = np.zeros((batch, plan.nthr, max(1, len(slots)), 32))
    for bp in plan.passes:
        if not bp.blocked:
            sweep_alone(bp.items[0])
            continue
        mats = plan.matrices(bp, dense, batch)
        pslots = np.array([slots.get(bop.parts[0][0], -1) for bop in bp.items], dtype=np.int64)
        for b in range(batch):
            adjoint_pass(bra[b].view(bra.real.dtype), ket[b].view(ket.real.dtype), bp.m, bp.bases, bp.geo, bp.tables,
                         bp.ops, mats[b], pslots, partial[b], plan.nthr)
    r = partial.sum(axis=1).view(np.complex128).reshape(batch, -1, 4, 4)
    for i, q in slots.items():
        entries = derivs[i] if bases[i] is None else [(ref, block4(d, bases[i])) for ref, d in derivs[i]]
        contract_derivatives(np, grad, entries, r[:, q])
