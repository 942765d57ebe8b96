"""Fused adjoint step for one-target gates: one pass over bra and ket instead of three.

The adjoint sweep does, per trainable gate ``U``: ``ket <- U^dag ket``, ``R = tr_rest |ket><bra|`` on the
target, ``bra <- U^dag bra``. Each is memory-bound, so doing all three while the amplitude pair is in
registers cuts the traffic of the backward sweep for one-target gates (Rot, RX, RY, RZ, PhaseShift, U3,
controlled or not) to one read and one write of each state.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .kernels import _U1, _insert, _layout, _nbits, _par, _seg_bits, _twins


@_twins
def _k_adjoint_step1(bra, ket, u, fixed, cmask, tbit, seg_bits, partial):
    """Un-apply ``u`` (already U^dag) from ket and bra and accumulate R per segment, in one pass."""
    nseg = np.uint64(partial.shape[1])
    per_row = np.uint64(bra.shape[0] // partial.shape[0]) >> np.uint64(fixed.shape[0])
    u00, u01, u10, u11 = u[0, 0], u[0, 1], u[1, 0], u[1, 1]
    step = _U1 << tbit
    for t_ in prange(np.uint64(partial.shape[0]) * nseg):
        t = np.uint64(t_)
        b = t // nseg
        s = t % nseg
        r00 = 0j
        r01 = 0j
        r10 = 0j
        r11 = 0j
        row = b * (per_row << np.uint64(fixed.shape[0]))
        start = s << seg_bits
        for o in range(start, start + (_U1 << seg_bits)):
            i0 = row + (_insert(o, fixed) | cmask)
            i1 = i0 + step
            k0 = ket[i0]
            k1 = ket[i1]
            n0 = u00 * k0 + u01 * k1
            n1 = u10 * k0 + u11 * k1
            ket[i0] = n0
            ket[i1] = n1
            b0 = bra[i0]
            b1 = bra[i1]
            c0 = np.conj(b0)
            c1 = np.conj(b1)
            r00 += c0 * n0
            r01 += c0 * n1
            r10 += c1 * n0
            r11 += c1 * n1
            bra[i0] = u00 * b0 + u01 * b1
            bra[i1] = u10 * b0 + u11 * b1
        partial[b, s, 0, 0] = r00
        partial[b, s, 0, 1] = r01
        partial[b, s, 1, 0] = r10
        partial[b, s, 1, 1] = r11


def adjoint_step(bra: np.ndarray, ket: np.ndarray, u_dagger: np.ndarray, target: int, controls: tuple = (),
                 cvals: tuple = ()) -> np.ndarray | None:
    """Un-apply a one-target gate from ket and bra and return ``R (B, 2, 2)``; None if not handled here.

    ``u_dagger`` is the 2x2 matrix to apply (the gate's adjoint), unbatched.
    """
    if (
        type(bra) is not np.ndarray or type(ket) is not np.ndarray or bra.shape != ket.shape or bra.ndim != 2
        or bra.dtype != np.complex128 or ket.dtype != np.complex128
        or not (bra.flags.c_contiguous and ket.flags.c_contiguous) or np.ndim(u_dagger) != 2
    ):
        return None
    n = _nbits(bra)
    plan = _layout(n, (target,), tuple(controls), tuple(cvals))
    if plan is None:
        return None
    fixed, cmask = plan[0], plan[1]
    outer_bits = n - len(fixed)
    sb = _seg_bits(outer_bits, bra.shape[0])
    partial = np.empty((bra.shape[0], 1 << (outer_bits - sb), 2, 2), dtype=np.complex128)
    _k_adjoint_step1[_par(bra)](
        bra.reshape(-1), ket.reshape(-1), np.ascontiguousarray(u_dagger, dtype=np.complex128), fixed,
        np.uint64(cmask), np.uint64(n - 1 - target), np.uint64(sb), partial,
    )
    return partial.sum(axis=1)
