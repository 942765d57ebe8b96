"""Numba kernels for the CPU backend: in-place gate application and one-pass reductions on ``(B, 2**n)`` states.

Every kernel works on a C-contiguous complex64/complex128 state, viewed flat (batch entry ``b`` occupies
indices ``b << n ...``), with no temporary of state size. A gate with target/control bit positions
``fixed`` (wire ``w`` is bit ``n-1-w``) enumerates the ``B * 2**(n - len(fixed))`` "outer" indices and
turns each into a basis index by inserting zero bits at ``fixed`` and or-ing in the control values;
``offsets[l]`` adds the target bits of local index ``l`` (``targets[0]`` most significant, as in the
numpy path). The outer indices are walked in runs: a ``prange`` over run starts, then a plain inner loop
over a run of consecutive indices (stride 1 below the lowest fixed bit, stride 2 when that bit is bit 0)
that LLVM vectorises. Index arithmetic is unsigned (no negative-index wraparound in the loops).
Reductions sum fixed segments into per-segment partials (complex128/float64) combined in a fixed order,
so results do not depend on the thread count. Small states run on one thread.

The wrappers at the bottom take the NumpyBackend arguments and return ``None`` for cases they do not
handle; the numpy backend then runs its reference code.
"""

from __future__ import annotations

import functools
import os
import types

import numba
import numpy as np
from numba import njit, prange

from ... import buffers
from ...ir.bits import local_offsets
from ...ir.pauli import pauli_masks
from .intrinsics import popcount
from .jit import CACHE

MAX_DENSE_QUBITS = 5
"""Largest number of targets of the dense (gather/multiply/scatter), reduced-outer and matrix-element kernels."""

RUN_BITS = 10
"""log2 of the longest run of consecutive indices one work item walks."""

PARALLEL_MIN_BITS = 15
"""States (batch included) with fewer than ``2**PARALLEL_MIN_BITS`` amplitudes run on one thread."""

_SEG_TARGET = 64
"""Number of segments a reduction is split into (bounded by the problem size)."""

_JIT = {"cache": CACHE, "fastmath": False, "nogil": True}
_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U2 = np.uint64(2)


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in the kernels (at most ``NUMBA_NUM_THREADS``, fixed when numba starts)."""
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


def get_num_threads() -> int:
    """Number of threads the kernels use."""
    return numba.get_num_threads()


def _init_threads() -> None:
    """Honour OMP_NUM_THREADS when NUMBA_NUM_THREADS is not set (numba itself reads only the latter).

    Also default OMP_WAIT_POLICY to PASSIVE (unless set, and only if numba's thread pool has not started):
    with the default active spin-wait, every parallel kernel on an oversubscribed machine (more busy
    processes than cores: CI, pytest-xdist, shared servers) waits a scheduler time slice for its spinning
    workers, measured at 10-20 ms per gate on a 20-qubit state instead of 1-2 ms. Passive costs a
    futex wake-up (microseconds) per kernel, which only matters below PARALLEL_MIN_BITS.
    """
    from numba.np.ufunc import parallel

    if not getattr(parallel, "_is_initialized", False):
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if "NUMBA_NUM_THREADS" not in os.environ and omp.isdigit() and int(omp) > 0:
        set_num_threads(int(omp))


_init_threads()


def _twins(fn: types.FunctionType) -> tuple:
    """``(serial, parallel)`` compiled versions of a kernel body (index with the "run in parallel" flag).

    The serial twin is a copy of the function under another qualified name, so the two have separate
    on-disk caches; small states use it and skip the thread pool.
    """
    serial = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial", fn.__defaults__, fn.__closure__)
    serial.__qualname__ = fn.__qualname__ + "_serial"
    serial.__doc__ = fn.__doc__
    return (njit(parallel=False, **_JIT)(serial), njit(parallel=True, **_JIT)(fn))


# ------------------------------------------------------------------------------------------------
# index helpers (all uint64)


@njit(inline="always")
def _insert(o, fixed):
    """Insert a zero bit at each (ascending) position of ``fixed`` into ``o``."""
    for j in range(fixed.shape[0]):
        p = fixed[j]
        low = o & ((_U1 << p) - _U1)
        o = ((o >> p) << (p + _U1)) | low
    return o


@njit(inline="always")
def _parity(v):
    """Parity of the set bits of a uint64."""
    return popcount(v) & _U1


# ------------------------------------------------------------------------------------------------
# run-based gate kernels (1- and 2-qubit dense, diagonal, X/SWAP)
#
# Run layout of a gate (see _layout): an item is 2**ib = 2**(lob + rb) consecutive outer indices starting
# at w << ib, i.e. the amplitudes base + (m << cs) + lo for lo < 2**lob (the free bits below the lowest
# fixed bit) and m < 2**rb (the free bits above the lowest block of fixed bits). _walk visits them as
# runs ``b0 + (k << sh)``, k < count, handed to a run function: contiguous lo-runs for each m when
# lob >= 1 (modes 0, 3, 4: runtime length, constant 4, constant 2), else strided m-runs (modes 1, 5:
# constant stride 2, 4; mode 2: runtime stride). Constant strides/lengths are what LLVM vectorises.

_U4 = np.uint64(4)
_U64 = np.uint64(64)


@njit(inline="always")
def _walk(run_fn, v, base, lob, rb, cs, mode, args):
    run = _U1 << rb
    if mode == 0:
        for m in range(run):
            run_fn(v, base + (m << cs), _U1 << lob, _U0, args)
    elif mode == 3:
        for m in range(run):
            run_fn(v, base + (m << cs), _U4, _U0, args)
    elif mode == 4:
        for m in range(run):
            run_fn(v, base + (m << cs), _U2, _U0, args)
    elif mode == 1:
        run_fn(v, base, run, _U1, args)
    elif mode == 5:
        run_fn(v, base, run, _U2, args)
    else:
        for lo in range(_U1 << lob):
            run_fn(v, base + lo, run, cs, args)


# one-qubit dense gate on the float view x (2 floats per amplitude): general, RX-like (real diagonal,
# imaginary off-diagonal) and real (RY, H) forms; the last two need a quarter of the multiplications


@njit(cache=CACHE)
def _run_general(x, b0, count, sh, args):
    dj, r00, i00, r01, i01, r10, i10, r11, i11 = args
    for k in range(count):
        j0 = (b0 + (k << sh)) << _U1
        j1 = j0 + dj
        ar = x[j0]
        ai = x[j0 + _U1]
        br = x[j1]
        bi = x[j1 + _U1]
        x[j0] = r00 * ar - i00 * ai + r01 * br - i01 * bi
        x[j0 + _U1] = r00 * ai + i00 * ar + r01 * bi + i01 * br
        x[j1] = r10 * ar - i10 * ai + r11 * br - i11 * bi
        x[j1 + _U1] = r10 * ai + i10 * ar + r11 * bi + i11 * br


@njit(cache=CACHE)
def _run_rx(x, b0, count, sh, args):
    dj, r00, i01, i10, r11 = args
    for k in range(count):
        j0 = (b0 + (k << sh)) << _U1
        j1 = j0 + dj
        ar = x[j0]
        ai = x[j0 + _U1]
        br = x[j1]
        bi = x[j1 + _U1]
        x[j0] = r00 * ar - i01 * bi
        x[j0 + _U1] = r00 * ai + i01 * br
        x[j1] = r11 * br - i10 * ai
        x[j1 + _U1] = r11 * bi + i10 * ar


@njit(cache=CACHE)
def _run_real(x, b0, count, sh, args):
    dj, r00, r01, r10, r11 = args
    for k in range(count):
        j0 = (b0 + (k << sh)) << _U1
        j1 = j0 + dj
        ar = x[j0]
        ai = x[j0 + _U1]
        br = x[j1]
        bi = x[j1 + _U1]
        x[j0] = r00 * ar + r01 * br
        x[j0 + _U1] = r00 * ai + r01 * bi
        x[j1] = r10 * ar + r11 * br
        x[j1 + _U1] = r10 * ai + r11 * bi


@njit(cache=CACHE)
def _matrix_form(mr, mi):
    """1: real diagonal and imaginary off-diagonal (RX-like); 2: real (RY, H); 0: general (2x2 batches)."""
    real = True
    rx = True
    for b in range(mr.shape[0]):
        for i in range(2):
            for j in range(2):
                if mi[b, i, j] != 0:
                    real = False
                if (mi[b, i, j] != 0) if i == j else (mr[b, i, j] != 0):
                    rx = False
    return 2 if real else (1 if rx else 0)


@_twins
def _k_dense1(x, mr, mi, p, fixed, cmask, nbits, ib, lob, rb, cs, mode):
    batched = mr.shape[0] > 1
    form = _matrix_form(mr, mi)
    items = (np.uint64(x.shape[0]) >> _U1) >> (np.uint64(fixed.shape[0]) + ib)
    dj = _U2 << p  # float offset between the pair's amplitudes
    for w_ in prange(items):
        w = np.uint64(w_)
        base = _insert(w << ib, fixed) | cmask
        mb = (base >> nbits) if batched else _U0
        r00 = mr[mb, 0, 0]
        r01 = mr[mb, 0, 1]
        r10 = mr[mb, 1, 0]
        r11 = mr[mb, 1, 1]
        i00 = mi[mb, 0, 0]
        i01 = mi[mb, 0, 1]
        i10 = mi[mb, 1, 0]
        i11 = mi[mb, 1, 1]
        if form == 1:
            _walk(_run_rx, x, base, lob, rb, cs, mode, (dj, r00, i01, i10, r11))
        elif form == 2:
            _walk(_run_real, x, base, lob, rb, cs, mode, (dj, r00, r01, r10, r11))
        else:
            _walk(_run_general, x, base, lob, rb, cs, mode, (dj, r00, i00, r01, i01, r10, i10, r11, i11))


@njit(cache=CACHE)
def _run_quad(v, b0, count, sh, args):
    s0, s1, m = args
    for k in range(count):
        i0 = b0 + (k << sh)
        i1 = i0 + s1
        i2 = i0 + s0
        i3 = i2 + s1
        a0 = v[i0]
        a1 = v[i1]
        a2 = v[i2]
        a3 = v[i3]
        v[i0] = m[0, 0] * a0 + m[0, 1] * a1 + m[0, 2] * a2 + m[0, 3] * a3
        v[i1] = m[1, 0] * a0 + m[1, 1] * a1 + m[1, 2] * a2 + m[1, 3] * a3
        v[i2] = m[2, 0] * a0 + m[2, 1] * a1 + m[2, 2] * a2 + m[2, 3] * a3
        v[i3] = m[3, 0] * a0 + m[3, 1] * a1 + m[3, 2] * a2 + m[3, 3] * a3


@_twins
def _k_dense2(v, mat, p0, p1, fixed, cmask, nbits, ib, lob, rb, cs, mode):
    batched = mat.shape[0] > 1
    items = np.uint64(v.shape[0]) >> (np.uint64(fixed.shape[0]) + ib)
    s0 = _U1 << p0
    s1 = _U1 << p1
    for w_ in prange(items):
        w = np.uint64(w_)
        base = _insert(w << ib, fixed) | cmask
        m = mat[(base >> nbits) if batched else _U0]
        _walk(_run_quad, v, base, lob, rb, cs, mode, (s0, s1, m))


@njit(cache=CACHE)
def _run_pattern(v, b0, count, sh, args):
    prow, period = args
    if period == _U64:  # n >= 6: a constant trip count
        for blk in range(count >> np.uint64(6)):
            o = b0 + (blk << np.uint64(6))
            for k in range(_U64):
                v[o + k] *= prow[k]
    else:
        for blk in range(count // period):
            o = b0 + blk * period
            for k in range(period):
                v[o + k] *= prow[k]


@_twins
def _k_diag(v, diag, idx, offsets, fixed, cmask, nbits, ib, lob, rb, cs, mode):
    """Diagonal gate as pattern rows: ``pat[b, lh]`` (period L) multiplies the runs at ``offsets[lh]``.

    The bits below log2(L) (targets and controls alike) are folded into the rows, ``pat[b, lh, i] =
    diag[b, idx[lh, i]]`` (1 where idx < 0: a low control not met), so every run is contiguous whatever
    the target/control bits.
    """
    pat = np.ones((diag.shape[0], idx.shape[0], idx.shape[1]), dtype=diag.dtype)
    for b in range(diag.shape[0]):
        for lh in range(idx.shape[0]):
            for i in range(idx.shape[1]):
                if idx[lh, i] >= 0:
                    pat[b, lh, i] = diag[b, idx[lh, i]]
    batched = pat.shape[0] > 1
    dh = offsets.shape[0]
    period = np.uint64(pat.shape[2])
    items = np.uint64(v.shape[0]) >> (np.uint64(fixed.shape[0]) + ib)
    for w_ in prange(items):
        w = np.uint64(w_)
        base = _insert(w << ib, fixed) | cmask
        pb = (base >> nbits) if batched else _U0
        for lh in range(dh):
            _walk(_run_pattern, v, base + offsets[lh], lob, rb, cs, mode, (pat[pb, lh], period))


@njit(cache=CACHE)
def _run_swap(v, b0, count, sh, args):
    sa, sb = args
    for k in range(count):
        i = b0 + (k << sh)
        a = v[i + sa]
        v[i + sa] = v[i + sb]
        v[i + sb] = a


@_twins
def _k_swap(v, sa, sb, fixed, cmask, ib, lob, rb, cs, mode):
    """Swap the amplitudes at base + sa and base + sb (X: sa = 0, sb = 1 << p; SWAP: the 01/10 offsets)."""
    items = np.uint64(v.shape[0]) >> (np.uint64(fixed.shape[0]) + ib)
    for w_ in prange(items):
        w = np.uint64(w_)
        base = _insert(w << ib, fixed) | cmask
        _walk(_run_swap, v, base, lob, rb, cs, mode, (sa, sb))


# ------------------------------------------------------------------------------------------------
# gather/scatter gate kernels (general permutation, k-qubit dense) and Pauli kernels


@_twins
def _k_perm(v, perm, offsets, fixed, cmask, nchunks):
    """General permutation: gather the 2^k amplitudes of each outer index, scatter them permuted."""
    d = offsets.shape[0]
    total = np.uint64(v.shape[0]) >> np.uint64(fixed.shape[0])
    per = (total + nchunks - _U1) // nchunks
    for c_ in prange(nchunks):
        c = np.uint64(c_)
        buf = np.empty(d, dtype=v.dtype)
        start = c * per
        stop = min(total, start + per)
        for o in range(start, stop):
            base = _insert(o, fixed) | cmask
            for j in range(d):
                buf[j] = v[base + offsets[j]]
            for j in range(d):
                v[base + offsets[j]] = buf[perm[j]]


@_twins
def _k_densek(v, mrt, mit, offsets, fixed, cmask, nbits, nchunks):
    """k-qubit dense gate: gather the 2^k amplitudes of each outer index, multiply, scatter.

    ``mrt``/``mit`` are the real/imaginary parts of the transposed matrix, so the product is a sequence
    of vectorisable axpys over the output index (each output still sums over j in order).
    """
    d = offsets.shape[0]
    batched = mrt.shape[0] > 1
    total = np.uint64(v.shape[0]) >> np.uint64(fixed.shape[0])
    per = (total + nchunks - _U1) // nchunks
    for c_ in prange(nchunks):
        c = np.uint64(c_)
        inr = np.empty(d, dtype=mrt.dtype)
        ini = np.empty(d, dtype=mrt.dtype)
        outr = np.empty(d, dtype=mrt.dtype)
        outi = np.empty(d, dtype=mrt.dtype)
        start = c * per
        stop = min(total, start + per)
        for o in range(start, stop):
            base = _insert(o, fixed) | cmask
            mb = (base >> nbits) if batched else _U0
            for j in range(d):
                a = v[base + offsets[j]]
                inr[j] = a.real
                ini[j] = a.imag
            ar = inr[0]
            ai = ini[0]
            for i in range(d):
                outr[i] = mrt[mb, 0, i] * ar - mit[mb, 0, i] * ai
                outi[i] = mrt[mb, 0, i] * ai + mit[mb, 0, i] * ar
            for j in range(1, d):
                ar = inr[j]
                ai = ini[j]
                for i in range(d):
                    outr[i] += mrt[mb, j, i] * ar - mit[mb, j, i] * ai
                    outi[i] += mrt[mb, j, i] * ai + mit[mb, j, i] * ar
            for i in range(d):
                v[base + offsets[i]] = outr[i] + 1j * outi[i]


@_twins
def _k_pauli_apply(v, out, xmask, yzmask, phase):
    """out[i] = phase * (-1)^parity((i^x) & yz) * v[i^x]."""
    n_all = np.uint64(v.shape[0])
    for i_ in prange(n_all):
        i = np.uint64(i_)
        j = i ^ xmask
        a = v[j] * phase
        out[i] = -a if _parity(j & yzmask) else a


@_twins
def _k_pauli_rot(v, cs, sn, xmask, yzmask, q, fixed, cmask, nbits):
    """exp(-i theta/2 P) on the controlled subspace (q = -i * i^ny); pairs (i, i^x), or a diagonal if x == 0."""
    batched = cs.shape[0] > 1
    items = np.uint64(v.shape[0]) >> np.uint64(fixed.shape[0])
    for w_ in prange(items):
        w = np.uint64(w_)
        i = _insert(w, fixed) | cmask
        tb = (i >> nbits) if batched else _U0
        c = cs[tb]
        s = sn[tb]
        if xmask == 0:
            qi = -q if _parity(i & yzmask) else q
            v[i] *= c + s * qi
        else:
            j = i ^ xmask
            a = v[i]
            b = v[j]
            qj = -q if _parity(j & yzmask) else q
            qi = -q if _parity(i & yzmask) else q
            v[i] = c * a + s * qj * b
            v[j] = c * b + s * qi * a


# ------------------------------------------------------------------------------------------------
# reductions (per-segment partials, combined in a fixed order by the wrappers)


@_twins
def _k_pauli_sum(v, xmask, yzmask, seg_bits, partial):
    """partial[b, s] = sum over segment s of (-1)^parity((i^x) & yz) conj(v[i]) v[i^x] (batch row b)."""
    nseg = np.uint64(partial.shape[1])
    for t_ in prange(np.uint64(partial.shape[0]) * nseg):
        t = np.uint64(t_)
        start = t << seg_bits
        re = 0.0
        im = 0.0
        for i in range(start, start + (_U1 << seg_bits)):
            j = i ^ xmask
            a = v[i]
            b = v[j]
            pr = np.float64(a.real) * b.real + np.float64(a.imag) * b.imag
            pim = np.float64(a.real) * b.imag - np.float64(a.imag) * b.real
            if _parity(j & yzmask):
                re -= pr
                im -= pim
            else:
                re += pr
                im += pim
        partial[t // nseg, t % nseg] = re + 1j * im


@_twins
def _k_inner(bra, ket, seg_bits, partial):
    nseg = np.uint64(partial.shape[1])
    for t_ in prange(np.uint64(partial.shape[0]) * nseg):
        t = np.uint64(t_)
        start = t << seg_bits
        re = 0.0
        im = 0.0
        for i in range(start, start + (_U1 << seg_bits)):
            a = bra[i]
            b = ket[i]
            re += np.float64(a.real) * b.real + np.float64(a.imag) * b.imag
            im += np.float64(a.real) * b.imag - np.float64(a.imag) * b.real
        partial[t // nseg, t % nseg] = re + 1j * im


@_twins
def _k_abs2(x, out):
    """out[i] = x[2i]^2 + x[2i+1]^2 on the float view."""
    for i_ in prange(np.uint64(out.shape[0])):
        i = np.uint64(i_)
        a = x[i << _U1]
        b = x[(i << _U1) + _U1]
        out[i] = a * a + b * b


@_twins
def _k_marginal(v, offsets, fixed, nbits, seg_bits, partial):
    """partial[b, o, s] = sum of |v|^2 over segment s of the other wires' indices at output index o."""
    d = np.uint64(offsets.shape[0])
    nseg = np.uint64(partial.shape[2])
    for t_ in prange(np.uint64(partial.shape[0]) * d * nseg):
        t = np.uint64(t_)
        b = t // (d * nseg)
        r = t % (d * nseg)
        o = r // nseg
        s = r % nseg
        off = offsets[o] | (b << nbits)
        acc = 0.0
        start = s << seg_bits
        for q in range(start, start + (_U1 << seg_bits)):
            a = v[_insert(q, fixed) | off]
            acc += np.float64(a.real) * a.real + np.float64(a.imag) * a.imag
        partial[b, o, s] = acc


@_twins
def _k_reduced_outer(bra, ket, offsets, fixed, cmask, nbits, seg_bits, partial):
    """partial[b, s, i, j] = sum over segment s of conj(bra[base + off_i]) ket[base + off_j]."""
    nseg = np.uint64(partial.shape[1])
    d = offsets.shape[0]
    per_row = np.uint64(bra.shape[0] // partial.shape[0]) >> np.uint64(fixed.shape[0])
    for t_ in prange(np.uint64(partial.shape[0]) * nseg):
        t = np.uint64(t_)
        b = t // nseg
        s = t % nseg
        br = np.empty(d, dtype=np.float64)
        bi = np.empty(d, dtype=np.float64)
        kr = np.empty(d, dtype=np.float64)
        ki = np.empty(d, dtype=np.float64)
        accr = np.zeros((d, d), dtype=np.float64)
        acci = np.zeros((d, d), dtype=np.float64)
        start = b * per_row + (s << seg_bits)
        for o in range(start, start + (_U1 << seg_bits)):
            base = _insert(o, fixed) | cmask
            for j in range(d):
                a = bra[base + offsets[j]]
                br[j] = a.real
                bi[j] = a.imag
                c = ket[base + offsets[j]]
                kr[j] = c.real
                ki[j] = c.imag
            for i in range(d):
                xr = br[i]
                xi = bi[i]
                for j in range(d):
                    accr[i, j] += xr * kr[j] + xi * ki[j]
                    acci[i, j] += xr * ki[j] - xi * kr[j]
        for i in range(d):
            for j in range(d):
                partial[b, s, i, j] = accr[i, j] + 1j * acci[i, j]


@_twins
def _k_reduced_entries(bra, ket, offsets, fixed, cmask, nbits, seg_bits, ei, ej, partial):
    """partial[b, s, e] = sum over segment s of conj(bra[base + off_ei[e]]) ket[base + off_ej[e]]."""
    nseg = np.uint64(partial.shape[1])
    per_row = np.uint64(bra.shape[0] // partial.shape[0]) >> np.uint64(fixed.shape[0])
    for t_ in prange(np.uint64(partial.shape[0]) * nseg):
        t = np.uint64(t_)
        b = t // nseg
        s = t % nseg
        accr = np.zeros(ei.shape[0], dtype=np.float64)
        acci = np.zeros(ei.shape[0], dtype=np.float64)
        start = b * per_row + (s << seg_bits)
        for o in range(start, start + (_U1 << seg_bits)):
            base = _insert(o, fixed) | cmask
            for e in range(ei.shape[0]):
                x = bra[base + offsets[ei[e]]]
                y = ket[base + offsets[ej[e]]]
                accr[e] += np.float64(x.real) * y.real + np.float64(x.imag) * y.imag
                acci[e] += np.float64(x.real) * y.imag - np.float64(x.imag) * y.real
        for e in range(ei.shape[0]):
            partial[b, s, e] = accr[e] + 1j * acci[e]


# ------------------------------------------------------------------------------------------------
# wrappers: same arguments and results as the NumpyBackend methods; None = not handled here

_COMPLEX = (np.dtype(np.complex64), np.dtype(np.complex128))


def _is_state(a: object) -> bool:
    """A writeable C-contiguous complex64/complex128 array of shape (B, 2**n)."""
    return (
        type(a) is np.ndarray and a.ndim == 2 and a.dtype in _COMPLEX and a.flags.c_contiguous
        and a.flags.writeable and a.shape[1] > 0 and a.shape[1] & (a.shape[1] - 1) == 0 and a.size > 0
    )


def _nbits(state: np.ndarray) -> int:
    return int(state.shape[1]).bit_length() - 1


def _par(state: np.ndarray) -> bool:
    return state.size >= 1 << PARALLEL_MIN_BITS


@functools.lru_cache(maxsize=4096)
def _layout(n: int, targets: tuple, controls: tuple, cvals: tuple) -> tuple | None:
    """Index plan of a gate, or None if invalid: (fixed bits, control mask, target offsets, ib, lob, rb, cs, mode)."""
    wires = targets + controls
    if not all(isinstance(w, (int, np.integer)) and not isinstance(w, bool) for w in wires + cvals):
        return None
    targets, controls, cvals = (tuple(int(w) for w in ws) for ws in (targets, controls, cvals))
    wires = targets + controls
    if len(set(wires)) != len(wires) or any(not 0 <= w < n for w in wires) or len(controls) != len(cvals):
        return None
    if any(v not in (0, 1) for v in cvals):
        return None
    tpos = [n - 1 - t for t in targets]
    cpos = [n - 1 - c for c in controls]
    fixed = sorted(tpos + cpos)
    cmask = 0
    for p, v in zip(cpos, cvals, strict=True):
        if v:
            cmask |= 1 << p
    offsets = np.array(local_offsets(tpos), dtype=np.uint64)
    fs = set(fixed)
    if not fixed or fixed[0] >= RUN_BITS:  # one contiguous run per item
        lob, rb, cs = min(fixed[0] if fixed else n, RUN_BITS), 0, 0
    else:  # lo: free bits below the lowest fixed bit; m: free bits above the lowest block of fixed bits
        top = fixed[0]
        while top + 1 in fs:
            top += 1
        nxt = min([f for f in fixed if f > top], default=n)
        lob, cs = fixed[0], top + 1
        rb = min(nxt - top - 1, max(RUN_BITS - lob, 2))
    if lob >= 1:
        mode = {1: 4, 2: 3}.get(lob, 0)
    else:
        mode = {1: 1, 2: 5}.get(cs, 2)
    ib = lob + rb
    run = tuple(np.uint64(r) for r in (ib, lob, rb, cs, mode))
    return (np.array(fixed, dtype=np.uint64), np.uint64(cmask), offsets) + run


@functools.lru_cache(maxsize=1024)
def _diag_plan(n: int, targets: tuple, controls: tuple, cvals: tuple) -> tuple:
    """Layout of a diagonal's targets/controls at bits >= log2(L), L = 2**min(6, n), and the pattern index
    ``idx[lh, i]``: the diagonal entry for high local index lh and low bits i, or -1 (a low control unmet)."""
    qb = min(6, n)
    k = len(targets)
    pos = {w: n - 1 - w for w in targets + controls}
    high_t = [t for t in targets if pos[t] >= qb]
    high_c = [(c, v) for c, v in zip(controls, cvals, strict=True) if pos[c] >= qb]
    hgeo = _layout(n, tuple(high_t), tuple(c for c, _ in high_c), tuple(v for _, v in high_c))
    idx = np.full((2 ** len(high_t), 1 << qb), -1, dtype=np.int64)
    for lh in range(2 ** len(high_t)):
        hbits = {t: (lh >> (len(high_t) - 1 - j)) & 1 for j, t in enumerate(high_t)}
        for i in range(1 << qb):
            if any(pos[c] < qb and (i >> pos[c]) & 1 != v for c, v in zip(controls, cvals, strict=True)):
                continue
            loc = 0
            for j, t in enumerate(targets):
                bit = hbits[t] if pos[t] >= qb else (i >> pos[t]) & 1
                loc |= bit << (k - 1 - j)
            idx[lh, i] = loc
    return hgeo, idx


def _geometry(state: np.ndarray, targets: tuple, controls: tuple, cvals: tuple) -> tuple | None:
    """The cached _layout of a gate on ``state`` (None if the wires are invalid)."""
    try:
        return _layout(_nbits(state), tuple(targets), tuple(controls), tuple(cvals))
    except TypeError:  # unhashable wires
        return None


def _nchunks(outer: int) -> np.uint64:
    return np.uint64(max(1, min(outer, 64 * numba.get_num_threads())))


def _batched_operand(x: object, dtype: np.dtype, shape: tuple, nb: int) -> np.ndarray | None:
    """``x`` as a contiguous ``(1 | nb, *shape)`` array of ``dtype``, or None if its shape does not fit."""
    a = np.asarray(x)
    if a.shape == shape:
        a = a.reshape((1,) + shape)
    elif not (a.ndim == len(shape) + 1 and a.shape[1:] == shape and a.shape[0] in (1, nb)):
        return None
    if a.dtype.kind not in "biufc":
        return None
    return np.ascontiguousarray(a, dtype=dtype)


def apply_matrix(state: np.ndarray, matrix: object, targets: tuple, controls: tuple = (), cvals: tuple = ()):
    """Dense ``2^k x 2^k`` matrix (or batch) on ``targets`` with controls, in place (k = 1..5)."""
    k = len(targets)
    if not _is_state(state) or not 1 <= k <= MAX_DENSE_QUBITS:
        return None
    geo = _geometry(state, targets, controls, cvals)
    if geo is None:
        return None
    d = 2**k
    m = _batched_operand(matrix, state.dtype, (d, d), state.shape[0])
    if m is None:
        return None
    fixed, cmask, offsets = geo[:3]
    n = _nbits(state)
    flat = state.reshape(-1)
    rdt = state.real.dtype
    par = _par(state)
    if k == 1:
        mr = np.ascontiguousarray(m.real, dtype=rdt)
        mi = np.ascontiguousarray(m.imag, dtype=rdt)
        p0 = np.uint64(n - 1 - targets[0])
        _k_dense1[par](flat.view(rdt), mr, mi, p0, fixed, cmask, np.uint64(n), *geo[3:])
    elif k == 2:
        p0, p1 = np.uint64(n - 1 - targets[0]), np.uint64(n - 1 - targets[1])
        _k_dense2[par](flat, m, p0, p1, fixed, cmask, np.uint64(n), *geo[3:])
    else:
        mt = m.transpose(0, 2, 1)
        mrt = np.ascontiguousarray(mt.real, dtype=rdt)
        mit = np.ascontiguousarray(mt.imag, dtype=rdt)
        _k_densek[par](flat, mrt, mit, offsets, fixed, cmask, np.uint64(n), _nchunks(state.size >> len(fixed)))
    return state


@_twins
def _k_subspace(v, u, phase, has_phase, off0, off1, offsets, fixed, cmask, nbits):
    """A two-level rotation ``u`` on local states (off0, off1) of every 2**k block, ``phase`` on the others."""
    batched = u.shape[0] > 1
    items = np.uint64(v.shape[0]) >> np.uint64(fixed.shape[0])
    for w_ in prange(items):
        i = _insert(np.uint64(w_), fixed) | cmask
        b = (i >> nbits) if batched else _U0
        a0 = v[i + off0]
        a1 = v[i + off1]
        v[i + off0] = u[b, 0] * a0 + u[b, 1] * a1
        v[i + off1] = u[b, 2] * a0 + u[b, 3] * a1
        if has_phase:
            ph = phase[b]
            for loc in range(offsets.shape[0]):
                off = offsets[loc]
                if off != off0 and off != off1:
                    v[i + off] *= ph


@njit(cache=CACHE)
def _subspace_parts(m, i0, i1, u, phase):  # pragma: no cover - compiled
    """Split ``m (B, d, d)`` into its 2x2 block on (i0, i1) (``u (B, 4)``) and the common phase of the other
    basis states (``phase (B,)``); False when ``m`` has any other entry (then it is no subspace gate)."""
    d = m.shape[1]
    for b in range(m.shape[0]):
        u[b, 0], u[b, 1], u[b, 2], u[b, 3] = m[b, i0, i0], m[b, i0, i1], m[b, i1, i0], m[b, i1, i1]
        ph = 1.0 + 0j
        first = True
        for r in range(d):
            for c in range(d):
                if (r == i0 or r == i1) and (c == i0 or c == i1):
                    continue
                x = m[b, r, c]
                if r != c:
                    if x != 0:
                        return False
                elif first:
                    ph, first = x, False
                elif x != ph:
                    return False
        phase[b] = ph
    return True


def apply_subspace(state: np.ndarray, matrix: object, subspace: tuple, targets: tuple, controls: tuple = (),
                   cvals: tuple = ()):
    """A gate acting on the two local basis states ``subspace`` of its targets (a Givens rotation, with a
    common phase on the other states), in place: two amplitudes per block instead of a 2^k x 2^k product.

    ``matrix`` is the gate's full ``(d, d)`` (or batched) matrix; it is checked to have that structure
    (None otherwise, and the dense path runs).
    """
    k = len(targets)
    if not _is_state(state) or k < 1:
        return None
    geo = _geometry(state, targets, controls, cvals)
    if geo is None:
        return None
    d = 2**k
    m = _batched_operand(matrix, np.complex128, (d, d), state.shape[0])
    i0, i1 = (int(x) for x in subspace)
    if m is None or not (0 <= i0 < d and 0 <= i1 < d and i0 != i1):
        return None
    u = np.empty((m.shape[0], 4), dtype=np.complex128)
    phase = np.empty(m.shape[0], dtype=np.complex128)
    if not _subspace_parts(m, i0, i1, u, phase):
        return None
    fixed, cmask, offsets = geo[:3]
    _k_subspace[_par(state)](state.reshape(-1), u, phase, bool(d > 2 and np.any(phase != 1)), offsets[i0],
                             offsets[i1], offsets, fixed, cmask, np.uint64(_nbits(state)))
    return state


def apply_diagonal(state: np.ndarray, diag: object, targets: tuple, controls: tuple = (), cvals: tuple = ()):
    """Multiply by a diagonal ``(2^k,)`` (or ``(B, 2^k)``) on ``targets`` with controls, in place."""
    if not _is_state(state):
        return None
    geo = _geometry(state, targets, controls, cvals)
    if geo is None:
        return None
    dg = _batched_operand(diag, state.dtype, (2 ** len(targets),), state.shape[0])
    if dg is None:
        return None
    n = _nbits(state)
    hgeo, idx = _diag_plan(n, *(tuple(int(w) for w in ws) for ws in (targets, controls, cvals)))
    _k_diag[_par(state)](state.reshape(-1), dg, idx, hgeo[2], hgeo[0], hgeo[1], np.uint64(n), *hgeo[3:])
    return state


def apply_permutation(state: np.ndarray, perm: tuple, targets: tuple, controls: tuple = (), cvals: tuple = ()):
    """Permute the target basis states (new[i] = old[perm[i]]) with controls, in place; no multiplications."""
    k = len(targets)
    if not _is_state(state) or not 1 <= k <= 10:
        return None
    geo = _geometry(state, targets, controls, cvals)
    if geo is None:
        return None
    try:
        p = tuple(int(i) for i in perm)
    except (TypeError, ValueError):
        return None
    if sorted(p) != list(range(2**k)):
        return None
    if p == tuple(range(2**k)):
        return state
    fixed, cmask, offsets = geo[:3]
    flat = state.reshape(-1)
    par = _par(state)
    if k == 1:
        _k_swap[par](flat, _U0, offsets[1], fixed, cmask, *geo[3:])
    elif k == 2 and p == (0, 2, 1, 3):
        _k_swap[par](flat, offsets[1], offsets[2], fixed, cmask, *geo[3:])
    else:
        chunks = _nchunks(state.size >> len(fixed))
        _k_perm[par](flat, np.array(p, dtype=np.uint64), offsets, fixed, cmask, chunks)
    return state


_PAULI_LETTERS = frozenset("IXYZ")


def _pauli_masks(n: int, word: dict) -> tuple[int, int, complex] | None:
    """(flip mask, Y|Z mask, i^(number of Y)) of a Pauli word, or None if it is not one on ``n`` wires."""
    try:
        items = [(int(w), p) for w, p in word.items()]
    except (TypeError, ValueError, AttributeError):
        return None
    if any(p not in _PAULI_LETTERS or not 0 <= w < n for w, p in items):
        return None
    return pauli_masks(items, n)


def apply_pauli(state: np.ndarray, word: dict, out: np.ndarray | None = None):
    """``P|state>`` into ``out`` (a new array when None) in one pass; ``out`` may not overlap ``state``."""
    if not _is_state(state):
        return None
    masks = _pauli_masks(_nbits(state), word)
    if masks is None:
        return None
    if out is None:
        out = np.empty_like(state)
    elif not (_is_state(out) and out.shape == state.shape and out.dtype == state.dtype) or np.may_share_memory(
        out, state
    ):
        return None
    xmask, yzmask, phase = masks
    _k_pauli_apply[_par(state)](
        state.reshape(-1), out.reshape(-1), np.uint64(xmask), np.uint64(yzmask), state.dtype.type(phase)
    )
    return out


def apply_pauli_rotation(state: np.ndarray, theta: object, word: dict, controls: tuple = (), cvals: tuple = ()):
    """``exp(-i theta/2 P)`` in place, one pass over (i, i^x) pairs (a diagonal when P has no X/Y)."""
    if not _is_state(state):
        return None
    n = _nbits(state)
    masks = _pauli_masks(n, word)
    try:
        t = np.asarray(theta, dtype=float)
    except (TypeError, ValueError):
        return None
    if masks is None or t.ndim > 1 or (t.ndim == 1 and t.shape[0] not in (1, state.shape[0])):
        return None
    xmask, yzmask, phase = masks
    try:
        if {int(c) for c in controls} & {int(w) for w in word}:
            return None
    except (TypeError, ValueError):
        return None
    pivot = () if xmask == 0 else (n - xmask.bit_length(),)
    geo = _geometry(state, pivot, tuple(controls), tuple(cvals))
    if geo is None:
        return None
    fixed, cmask = geo[0], geo[1]
    rdt = state.real.dtype
    cs = np.ascontiguousarray(np.cos(t / 2).reshape(-1), dtype=rdt)
    sn = np.ascontiguousarray(np.sin(t / 2).reshape(-1), dtype=rdt)
    q = state.dtype.type(-1j * phase)
    _k_pauli_rot[_par(state)](
        state.reshape(-1), cs, sn, np.uint64(xmask), np.uint64(yzmask), q, fixed, cmask, np.uint64(n)
    )
    return state


def _seg_bits(total_bits: int, items: int) -> int:
    """log2 of the segment length, so that ``items`` x segments reaches about _SEG_TARGET (segments >= 256)."""
    want = 0
    while items * (1 << want) < _SEG_TARGET and want < total_bits - 8:
        want += 1
    return total_bits - want


def _same_states(bra: object, ket: object) -> bool:
    return _is_state(bra) and _is_state(ket) and bra.shape == ket.shape and bra.dtype == ket.dtype


def inner(bra: np.ndarray, ket: np.ndarray):
    """``<bra|ket>`` per batch entry (one pass, complex128 accumulation), dtype as the numpy path."""
    if not _same_states(bra, ket):
        return None
    n = _nbits(bra)
    sb = _seg_bits(n, bra.shape[0])
    partial = np.empty((bra.shape[0], 1 << (n - sb)), dtype=np.complex128)
    _k_inner[_par(bra)](bra.reshape(-1), ket.reshape(-1), np.uint64(sb), partial)
    return (partial[:, 0] if partial.shape[1] == 1 else partial.sum(axis=1)).astype(bra.dtype, copy=False)


def expval_pauli(state: np.ndarray, word: dict):
    """``<state|P|state>`` per batch entry in one pass (no P|state>), dtype as the numpy path."""
    if not _is_state(state):
        return None
    n = _nbits(state)
    masks = _pauli_masks(n, word)
    if masks is None:
        return None
    xmask, yzmask, phase = masks
    sb = _seg_bits(n, state.shape[0])
    partial = np.empty((state.shape[0], 1 << (n - sb)), dtype=np.complex128)
    _k_pauli_sum[_par(state)](state.reshape(-1), np.uint64(xmask), np.uint64(yzmask), np.uint64(sb), partial)
    val = (phase * partial.sum(axis=1)).real
    return val if all(p == "Z" for p in word.values()) else val.astype(state.real.dtype)


@_twins
def _k_diag_expval(v, diag, seg_bits, partial):
    """partial[b, s] = sum over segment s (2**seg_bits amplitudes) of row b of diag[i] |v[b, i]|^2."""
    n_amp = np.uint64(diag.shape[0])
    nseg = np.uint64(partial.shape[1])
    seg = _U1 << seg_bits
    for t_ in prange(np.uint64(partial.shape[0]) * nseg):
        t = np.uint64(t_)
        b = t // nseg
        start = (t % nseg) * seg
        row = b * n_amp
        acc = 0.0
        for i in range(start, start + seg):
            a = v[row + i]
            acc += diag[i] * (a.real * a.real + a.imag * a.imag)
        partial[b, t % nseg] = acc


@njit(inline="always")
def _add_group_terms(v, row, start, seg, dst, dst_off, xm, starts, zm, cf, signs):
    """``dst[dst_off + k] += sum_t c_t (-1)^popcount(j & z_t) v[row + j]``, ``j = (start + k) ^ x_g``, for the
    ``seg`` amplitudes from ``start`` (a multiple of ``seg``) of one row.

    Parity is linear over XOR, so the sign splits into a part fixed per segment (the bits of ``j`` above
    the segment), one fixed per run and one varying inside a run: a run is the ``2**b`` consecutive
    ``k`` (``b``: lowest flipped bit inside the segment) whose sources ``j`` are consecutive too, so
    every inner loop reads and writes contiguous amplitudes. The signs inside a run (the term's sign
    bits below ``b``) are the same for every run: they are written once per term into ``signs`` (at
    least ``seg`` floats of scratch) by doubling, so the inner loop multiplies by a stored sign.
    """
    low = seg - _U1
    for g in range(xm.shape[0]):
        x = xm[g]
        x_lo = x & low
        hi = (start ^ x) & ~low  # the source segment
        src = row + hi
        run = seg if x_lo == _U0 else (x_lo & (~x_lo + _U1))
        for t in range(starts[g], starts[g + 1]):
            z = zm[t]
            c = cf[t]
            if _parity(hi & z):
                c = -c
            z_lo = z & low
            z_in = z_lo & (run - _U1)
            if z_in != _U0:  # signs[q] = (-1)^popcount(q & z_in), q < run
                signs[0] = 1.0
                width = _U1
                while width < run:
                    f = -1.0 if z_in & width else 1.0
                    for q in range(width):
                        signs[width + q] = f * signs[q]
                    width <<= _U1
            for r0 in range(np.uint64(0), seg, run):
                j0 = r0 ^ x_lo
                cr = -c if _parity(j0 & z_lo & ~(run - _U1)) else c
                d0 = dst_off + r0
                s0 = src + j0
                if z_in == _U0:
                    for q in range(run):
                        dst[d0 + q] += cr * v[s0 + q]
                else:
                    for q in range(run):
                        dst[d0 + q] += (signs[q] * cr) * v[s0 + q]


@_twins
def _k_pauli_groups_apply(v, out, n_bits, seg_bits, diag, has_diag, xm, starts, zm, cf):
    """out = (D + sum_t c_t P_t) v for every row of v (flattened (B, 2**n)).

    Parallel over cache-sized segments of output amplitudes, each filled by ``_add_group_terms``.
    """
    nseg_row = np.uint64(1) << (n_bits - seg_bits)
    seg = _U1 << seg_bits
    for s_ in prange(np.uint64(v.shape[0]) >> seg_bits):
        s = np.uint64(s_)
        row = (s // nseg_row) << n_bits
        start = (s % nseg_row) << seg_bits
        for loc in range(start, start + seg):
            out[row + loc] = diag[loc] * v[row + loc] if has_diag else 0.0
        _add_group_terms(v, row, start, seg, out, row + start, xm, starts, zm, cf, np.empty(seg))


@_twins
def _k_pauli_groups_expval(v, n_bits, seg_bits, diag, has_diag, xm, starts, zm, cf, partial):
    """partial[b, s] = sum over segment s of row b of conj(v[i]) ((D + sum_t c_t P_t) v)[i] (real part).

    Each segment's share of ``H v`` is built in a segment-sized buffer by ``_add_group_terms`` (as in
    ``_k_pauli_groups_apply``), then contracted with ``conj(v)``.
    """
    nseg = np.uint64(partial.shape[1])
    seg = _U1 << seg_bits
    for t_ in prange(np.uint64(partial.shape[0]) * nseg):
        q = np.uint64(t_)
        b = q // nseg
        row = b << n_bits
        start = (q % nseg) << seg_bits
        buf = np.zeros(seg, dtype=np.complex128)
        _add_group_terms(v, row, start, seg, buf, _U0, xm, starts, zm, cf, np.empty(seg))
        total = 0.0
        for k in range(seg):
            a = v[row + start + k]
            h = buf[k] + diag[start + k] * a if has_diag else buf[k]
            total += np.float64(a.real) * h.real + np.float64(a.imag) * h.imag
        partial[b, q % nseg] = total


GROUP_SEGMENT_BITS = 11
"""log2 of the amplitudes a grouped Pauli-sum kernel sweeps per term (32 KiB of complex128, in L1/L2)."""


def _par_groups(state: np.ndarray, groups: object) -> bool:
    """Threads pay off by the work (amplitudes x terms), with at least two segments to share."""
    work = state.size * max(1, len(groups.coeffs))
    return work >= 1 << PARALLEL_MIN_BITS and state.size >= 1 << (GROUP_SEGMENT_BITS + 1)


def _groups_args(state: np.ndarray, groups: object, diag: object) -> tuple | None:
    """Kernel arguments of a grouped Pauli sum on ``state``, or None when they do not fit this kernel."""
    n = _nbits(state)
    if getattr(groups, "num_wires", None) != n:
        return None
    if diag is None:
        d, has = np.zeros(1), False
    elif type(diag) is np.ndarray and diag.dtype == np.float64 and diag.shape == (state.shape[1],):
        d, has = diag, True
    else:
        return None
    return (np.uint64(n), d, has, groups.xmasks.astype(np.uint64), groups.starts, groups.zmasks.astype(np.uint64),
            groups.coeffs)


def apply_pauli_groups(state: np.ndarray, groups: object, diag: object = None):
    """``(D + sum_t c_t P_t)|state>`` as a new array, in one pass (see :class:`qdiff.observables.PauliGroups`)."""
    if not _is_state(state) or (args := _groups_args(state, groups, diag)) is None:
        return None
    out = buffers.empty_like(state)
    n_bits, d, has, xm, starts, zm, cf = args
    sb = np.uint64(min(int(n_bits), GROUP_SEGMENT_BITS))
    kernel = _k_pauli_groups_apply[_par_groups(state, groups)]
    kernel(state.reshape(-1), out.reshape(-1), n_bits, sb, d, has, xm, starts, zm, cf)
    return out


def expval_pauli_groups(state: np.ndarray, groups: object, diag: object = None):
    """``<state|D + sum_t c_t P_t|state>`` per batch entry (real), in one pass without temporaries."""
    if not _is_state(state) or (args := _groups_args(state, groups, diag)) is None:
        return None
    n_bits, d, has, xm, starts, zm, cf = args
    sb = min(_seg_bits(_nbits(state), state.shape[0]), GROUP_SEGMENT_BITS)
    partial = np.empty((state.shape[0], 1 << (_nbits(state) - sb)), dtype=np.float64)
    kernel = _k_pauli_groups_expval[_par_groups(state, groups)]
    kernel(state.reshape(-1), n_bits, np.uint64(sb), d, has, xm, starts, zm, cf, partial)
    return partial.sum(axis=1)


@_twins
def _k_chunk_weights(v, chunk, sums):
    """``sums[c]`` = sum of ``|v[i]|**2`` over chunk ``c`` (``chunk`` amplitudes each) of one state row."""
    for c in prange(sums.shape[0]):
        s = 0.0
        for i in range(c * chunk, min(v.shape[0], (c + 1) * chunk)):
            x = v[i]
            s += x.real * x.real + x.imag * x.imag
        sums[c] = s


@_twins
def _k_walk_cdf(v, chunk, offsets, targets, bounds, out):
    """Inverse CDF without a CDF array: chunk ``c`` walks its amplitudes from the cumulative weight
    ``offsets[c]`` and gives each sorted target ``targets[j]``, ``bounds[c] <= j < bounds[c+1]``, the
    first index whose cumulative weight exceeds it (targets past the chunk's end, by rounding: its last
    index of nonzero weight)."""
    for c in prange(offsets.shape[0]):
        j, hi = bounds[c], bounds[c + 1]
        if j == hi:
            continue
        cum = offsets[c]
        last = c * chunk
        for i in range(c * chunk, min(v.shape[0], (c + 1) * chunk)):
            x = v[i]
            p = x.real * x.real + x.imag * x.imag
            if p > 0:
                cum += p
                last = i
                while j < hi and targets[j] < cum:
                    out[j] = i
                    j += 1
                if j == hi:
                    break
        while j < hi:
            out[j] = last
            j += 1


@njit(**_JIT)
def _k_sort_order(u, order, bucket, start):  # pragma: no cover - compiled
    """``order``: a permutation that sorts ``u`` (values in [0, 1)) ascending, equal values in drawn order.

    A counting sort into ``len(u)`` equal-width buckets (``bucket``: each value's, ``start``: the buckets'
    first positions, ``len(u) + 1`` zeros), then an insertion sort inside each bucket: linear time for
    uniform draws (about one value per bucket), where a comparison sort takes ``log2(len(u))`` passes.
    """
    n = u.shape[0]
    for i in range(n):
        b = min(int(u[i] * n), n - 1)
        bucket[i] = b
        start[b + 1] += 1
    for b in range(n):
        start[b + 1] += start[b]
    fill = start[:n].copy()
    for i in range(n):
        b = bucket[i]
        order[fill[b]] = i
        fill[b] += 1
    for b in range(n):
        lo = start[b]
        for j in range(lo + 1, start[b + 1]):
            k = order[j]
            x = u[k]
            m = j
            while m > lo and u[order[m - 1]] > x:
                order[m] = order[m - 1]
                m -= 1
            order[m] = k


def sort_order(u: np.ndarray) -> np.ndarray:
    """A stable ascending order (int64) of the 1-D float64 values ``u`` in [0, 1) (``rng.random``'s draws)."""
    n = u.shape[0]
    index = np.int32 if n < 2**31 - 1 else np.int64  # half the memory traffic of int64 where it fits
    order = np.empty(n, dtype=np.int64)
    _k_sort_order(u, order, np.empty(n, dtype=index), np.zeros(n + 1, dtype=index))
    return order


@njit(parallel=True, **_JIT)
def _k_index_bits(idx, n):  # pragma: no cover - compiled
    """``out[j, w]`` = bit ``n - 1 - w`` of ``idx[j]`` (wire 0 the most significant), a new array.

    numba allocates it (plain ``malloc``, no huge-page advice as numpy gives arrays of 4 MiB and more):
    where the OS compacts memory to serve a huge-page fault, first touching a fresh sample array of
    100,000 x 16 bits took 9.5-11.7 ms with numpy's allocation, 7.4 ms with this one (and 0.6-1 ms when
    reused memory is at hand).
    """
    out = np.empty((idx.shape[0], n), dtype=np.int64)
    for j in prange(idx.shape[0]):
        v = idx[j]
        for w in range(n):
            out[j, w] = (v >> (n - 1 - w)) & 1
    return out


def index_bits(idx: np.ndarray, n: int):
    """The ``n`` bits of the basis indices ``idx`` (int64, any shape), wire 0 first, as int64 of shape
    ``idx.shape + (n,)``, written on numba's threads; None for other arrays and for ``n > 63``."""
    if type(idx) is not np.ndarray or idx.dtype != np.int64 or not 0 <= n <= 63:
        return None
    return _k_index_bits(np.ascontiguousarray(idx).reshape(-1), n).reshape(idx.shape + (n,))


SAMPLE_CHUNK_MIN_BITS = 14
"""Sampling splits a state row into chunks of at least this many amplitudes (one per thread share)."""


def sample_basis(state: np.ndarray, shots: int, rng: np.random.Generator):
    """``shots`` basis-state indices per row of ``state`` drawn from ``|state|**2``, ``(B, shots)``.

    The draws are those of the numpy backend's ``sample_indices`` (the same uniforms from ``rng``, looked
    up in sorted order and put back in drawn order), but no probability or CDF array is built: chunk
    weights are summed in parallel, then each chunk walks its amplitudes once for the targets in its
    range. None (nothing drawn) for other arrays or a row of zero or non-finite weight.
    """
    if not _is_state(state) or state.dtype.kind != "c":
        return None
    batch, size = state.shape
    par = _par(state)
    nchunks = max(1, min(size >> SAMPLE_CHUNK_MIN_BITS, 4 * numba.get_num_threads())) if par else 1
    chunk = -(-size // nchunks)
    sums = np.empty(nchunks)
    rows = []
    for b in range(batch):  # every row's weights first: a refused row leaves the generator untouched
        _k_chunk_weights[par](state[b], chunk, sums)
        total = float(sums.sum())
        if not (np.isfinite(total) and total > 0):
            return None
        rows.append((np.concatenate(([0.0], np.cumsum(sums)[:-1])), total))
    out = np.empty((batch, shots), dtype=np.int64)
    idx = np.empty(shots, dtype=np.int64)
    for b, (offsets, total) in enumerate(rows):
        u = rng.random(shots)
        order = sort_order(u)
        targets = u[order] * total
        bounds = np.append(np.searchsorted(targets, offsets, side="left"), shots).astype(np.int64)
        _k_walk_cdf[par](state[b], chunk, offsets, targets, bounds, idx)
        out[b, order] = idx
    return out


@njit(parallel=True, **_JIT)
def _k_outer_rows(hi, lo, out):  # pragma: no cover - compiled
    """``out[b, i * L + j] = hi[b, i] * lo[b, j]`` (``L = lo.shape[1]``): a product state from its two halves."""
    h_len, l_len = hi.shape[1], lo.shape[1]
    for r in prange(hi.shape[0] * h_len):
        b = r // h_len
        i = r - b * h_len
        h = hi[b, i]
        base = i * l_len
        for j in range(l_len):
            out[b, base + j] = h * lo[b, j]


def outer_rows(hi: np.ndarray, lo: np.ndarray, out: np.ndarray) -> bool:
    """Write the row-wise outer products of ``hi (B, H)`` and ``lo (B, L)`` into the state ``out (B, H*L)``
    on numba's threads; False (nothing written) for arrays this kernel does not handle and for states
    too small to run in parallel (numpy's single-threaded product is as fast there, with nothing to compile)."""
    if not (_par(out) and _is_state(out) and type(hi) is np.ndarray and type(lo) is np.ndarray
            and hi.dtype == lo.dtype == out.dtype
            and hi.ndim == lo.ndim == 2 and hi.shape[0] == lo.shape[0] == out.shape[0]
            and hi.shape[1] * lo.shape[1] == out.shape[1]):
        return False
    _k_outer_rows(np.ascontiguousarray(hi), np.ascontiguousarray(lo), out)
    return True


def expval_diagonal(state: np.ndarray, diag: np.ndarray):
    """``sum_i diag[i] |state[b, i]|^2`` per batch entry, in one pass without temporaries."""
    if not _is_state(state) or type(diag) is not np.ndarray or diag.dtype != np.float64 or diag.ndim != 1:
        return None
    sb = _seg_bits(_nbits(state), state.shape[0])
    partial = np.empty((state.shape[0], 1 << (_nbits(state) - sb)), dtype=np.float64)
    _k_diag_expval[_par(state)](state.reshape(-1), np.ascontiguousarray(diag), np.uint64(sb), partial)
    return partial.sum(axis=1)


def probs(state: np.ndarray, wires: tuple | None = None):
    """Marginal probabilities ``(B, 2**len(wires))`` on ``wires`` in the order given."""
    if not _is_state(state):
        return None
    n = _nbits(state)
    rdt = state.real.dtype
    if wires is None or tuple(wires) == tuple(range(n)):
        out = np.empty(state.shape, dtype=rdt)
        _k_abs2[_par(state)](state.reshape(-1).view(rdt), out.reshape(-1))
        return out
    geo = _geometry(state, tuple(wires), (), ())
    if geo is None:
        return None
    fixed, _, offsets = geo[0], geo[1], geo[2]
    rest = n - len(fixed)
    d = offsets.shape[0]
    sb = _seg_bits(rest, state.shape[0] * d)
    partial = np.empty((state.shape[0], d, 1 << (rest - sb)), dtype=np.float64)
    _k_marginal[_par(state)](state.reshape(-1), offsets, fixed, np.uint64(n), np.uint64(sb), partial)
    return partial.sum(axis=2).astype(rdt)


def _reduced_outer128(bra: np.ndarray, ket: np.ndarray, geo: tuple) -> np.ndarray:
    fixed, cmask, offsets = geo[0], geo[1], geo[2]
    d = offsets.shape[0]
    outer_bits = _nbits(bra) - len(fixed)
    sb = _seg_bits(outer_bits, bra.shape[0])
    partial = np.empty((bra.shape[0], 1 << (outer_bits - sb), d, d), dtype=np.complex128)
    _k_reduced_outer[_par(bra)](
        bra.reshape(-1), ket.reshape(-1), offsets, fixed, cmask, np.uint64(_nbits(bra)), np.uint64(sb), partial
    )
    return partial.sum(axis=1)


def reduced_outer(bra: np.ndarray, ket: np.ndarray, targets: tuple, controls: tuple = (), cvals: tuple = (),
                  entries: np.ndarray | None = None):
    """``R[b,i,j] = sum_rest conj(bra[i,rest]) ket[j,rest]`` in the controlled subspace, one pass.

    ``entries`` (``(E, 2)`` index pairs): only those entries are computed, the rest of R is zero.
    """
    if not _same_states(bra, ket) or len(targets) > MAX_DENSE_QUBITS:
        return None
    geo = _geometry(bra, targets, controls, cvals)
    if geo is None:
        return None
    if entries is None:
        return _reduced_outer128(bra, ket, geo).astype(bra.dtype)
    fixed, cmask, offsets = geo[0], geo[1], geo[2]
    d = offsets.shape[0]
    ent = np.asarray(entries, dtype=np.int64).reshape(-1, 2)
    if ent.size and (ent.min() < 0 or ent.max() >= d):
        return None
    outer_bits = _nbits(bra) - len(fixed)
    sb = _seg_bits(outer_bits, bra.shape[0])
    partial = np.empty((bra.shape[0], 1 << (outer_bits - sb), len(ent)), dtype=np.complex128)
    _k_reduced_entries[_par(bra)](bra.reshape(-1), ket.reshape(-1), offsets, fixed, cmask, np.uint64(_nbits(bra)),
                                  np.uint64(sb), np.ascontiguousarray(ent[:, 0]), np.ascontiguousarray(ent[:, 1]),
                                  partial)
    r = np.zeros((bra.shape[0], d, d), dtype=bra.dtype)
    r[:, ent[:, 0], ent[:, 1]] = partial.sum(axis=1)
    return r


def matrix_element(bra: np.ndarray, ket: np.ndarray, matrix: object, targets: tuple, controls: tuple = (),
                   cvals: tuple = ()):
    """``<bra|(P_controls x M)|ket>`` per batch entry from one pass building the small reduced outer product."""
    k = len(targets)
    if not _same_states(bra, ket) or k > MAX_DENSE_QUBITS:
        return None
    d = 2**k
    m = np.asarray(matrix)
    if m.dtype.kind not in "biufc":
        return None
    if m.shape != (d, d) and not (k > 0 and m.ndim == 3 and m.shape[1:] == (d, d) and m.shape[0] in (1, bra.shape[0])):
        return None
    geo = _geometry(bra, targets, controls, cvals)
    if geo is None:
        return None
    r = _reduced_outer128(bra, ket, geo)
    mc = m.astype(bra.dtype).astype(np.complex128)
    val = np.einsum("ij,bij->b", mc, r) if mc.ndim == 2 else np.einsum("bij,bij->b", mc, r)
    return val.astype(bra.dtype)
