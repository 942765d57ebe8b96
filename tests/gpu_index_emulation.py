"""A numpy model of the GPU kernels' launches, for the tests: every thread's amplitude indices.

:func:`emulate` runs a :class:`~qdiff.backends.cuda.index_model.KernelCall` on numpy arrays with the same
arithmetic as the CUDA code (bit insertion, pdep/pext, Pauli masks, grid-stride loops over the launch
grid, shared-memory chunks, per-block partial sums), and reports every amplitude index each kernel
writes, so tests can check coverage and that no two threads write the same amplitude.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qdiff.backends.cuda.index_model import Buf, KernelCall, insert_zero_bits, parity, pdep, pext, set_bits


@dataclass
class Emulation:
    """What :func:`emulate` did: the written amplitude indices, per batch entry, one row per write."""

    writes: dict[int, list[np.ndarray]] = field(default_factory=dict)

    def record(self, b: int, idx: np.ndarray) -> None:
        self.writes.setdefault(int(b), []).append(np.asarray(idx, dtype=np.int64).ravel())

    def written(self, b: int) -> np.ndarray:
        """All indices written for batch entry ``b`` (with repetitions, if any)."""
        parts = self.writes.get(int(b), [])
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def grid_stride_ids(grid: tuple[int, int], block: int, nthreads: int) -> tuple[np.ndarray, np.ndarray]:
    """(global thread number, id) for every iteration ``t = bx*bd + tx + k*gx*bd < nthreads``."""
    gx = grid[0]
    first = np.arange(gx * block, dtype=np.int64)
    stride = gx * block
    iters = max(1, -(-int(nthreads) // stride))
    t = first[None, :] + stride * np.arange(iters, dtype=np.int64)[:, None]
    thread = np.broadcast_to(first, t.shape)
    keep = t < nthreads
    return thread[keep], t[keep].astype(np.uint64)


def batch_ids(grid: tuple[int, int], batch: int) -> list[int]:
    """Batch entries in the order the blockIdx.y loops visit them (each exactly once)."""
    gy = grid[1]
    return [b for by in range(gy) for b in range(by, batch, gy)]


def _arg(call: KernelCall, bound: dict[str, np.ndarray], i: int) -> Any:
    a = call.args[i]
    return bound[a.name] if isinstance(a, Buf) else a


def _gate_rows(ptr: Any, stride: int, scal: tuple, b: int, size: int) -> np.ndarray:
    if stride < 0:
        return np.array(scal[:size])
    return np.asarray(ptr).reshape(-1)[b * stride: b * stride + size]


def emulate(call: KernelCall, bound: dict[str, np.ndarray]) -> Emulation:
    """Run ``call`` on numpy arrays (``bound`` maps placeholder names to arrays; outputs are created).

    Arrays are ``(B, ...)``; the state is updated in place exactly as the kernel would, reductions fill
    ``bound['partial']`` with the same per-block partial sums.
    """
    for name, (shape, dt) in call.outputs.items():
        bound.setdefault(name, np.zeros(shape, dtype=dt))
    em = Emulation()
    kind = call.kernel
    a = [_arg(call, bound, i) for i in range(len(call.args))]
    if kind in ("qd_apply_1q", "qd_apply_2q", "qd_apply_diag", "qd_swap", "qd_pauli_rot"):
        _emulate_gate(call, kind, a, em)
    elif kind in ("qd_apply_kq", "qd_perm"):
        _emulate_smem(call, kind, a, em)
    elif kind == "qd_pauli_apply":
        src, dst, dim, batch, xmask, pmask, g = a
        _, t = grid_stride_ids(call.grid, call.block, int(dim))
        for b in batch_ids(call.grid, int(batch)):
            v = g * src[b, (t ^ xmask).astype(np.int64)]
            dst[b, t.astype(np.int64)] = np.where(parity(t & pmask) == 1, -v, v)
            em.record(b, t)
    elif kind == "qd_pauli_expval":
        st, dim, batch, xmask, pmask, g, partial = a
        thread, t = grid_stride_ids(call.grid, call.block, int(dim))
        for b in batch_ids(call.grid, int(batch)):
            psi = st[b].astype(np.complex128)
            v = (complex(g) * np.conj(psi[t.astype(np.int64)]) * psi[(t ^ xmask).astype(np.int64)]).real
            v = np.where(parity(t & pmask) == 1, -v, v)
            partial[b] = np.bincount(thread // call.block, weights=v, minlength=call.grid[0])
    elif kind == "qd_matel":
        bra, ket, dim, ngroups, batch, fixed, cset, tmask, d, ptr, stride, partial = a
        thread, g = grid_stride_ids(call.grid, call.block, int(ngroups))
        base = insert_zero_bits(g, int(fixed)) | cset
        rows = [(base | pdep(r, int(tmask))).astype(np.int64) for r in range(int(d))]
        for b in batch_ids(call.grid, int(batch)):
            m = _gate_rows(ptr, int(stride), (), b, int(d) ** 2).reshape(int(d), int(d)).astype(np.complex128)
            kv = np.stack([ket[b, r] for r in rows], axis=1).astype(np.complex128)
            bv = np.stack([bra[b, r] for r in rows], axis=1).astype(np.complex128)
            v = np.einsum("ti,ij,tj->t", np.conj(bv), m, kv)
            blk = thread // call.block
            partial[b, :, 0] = np.bincount(blk, weights=v.real, minlength=call.grid[0])
            partial[b, :, 1] = np.bincount(blk, weights=v.imag, minlength=call.grid[0])
    elif kind == "qd_outer":
        bra, ket, dim, ngroups, batch, fixed, cset, tmask, partial = a
        D = int(call.template.split(",")[1])
        thread, g = grid_stride_ids(call.grid, call.block, int(ngroups))
        base = insert_zero_bits(g, int(fixed)) | cset
        rows = [(base | pdep(r, int(tmask))).astype(np.int64) for r in range(D)]
        blk = thread // call.block
        for b in batch_ids(call.grid, int(batch)):
            kv = np.stack([ket[b, r] for r in rows], axis=1).astype(np.complex128)
            bv = np.stack([bra[b, r] for r in rows], axis=1).astype(np.complex128)
            v = np.conj(bv)[:, :, None] * kv[:, None, :]
            for e in range(D * D):
                partial[b, :, e, 0] = np.bincount(blk, weights=v[:, e // D, e % D].real, minlength=call.grid[0])
                partial[b, :, e, 1] = np.bincount(blk, weights=v[:, e // D, e % D].imag, minlength=call.grid[0])
    elif kind == "qd_search_cdf":
        cdf, K, u, shots, batch, out = a
        _, s = grid_stride_ids(call.grid, call.block, int(shots))
        si = s.astype(np.int64)
        for b in batch_ids(call.grid, int(batch)):
            idx = np.searchsorted(cdf[b], u[b, si], side="right")
            out[b, si] = np.minimum(idx, int(K) - 1)
    else:
        raise ValueError(f"no model for kernel {kind}")
    return em


def _emulate_gate(call: KernelCall, kind: str, a: list, em: Emulation) -> None:
    state, nthreads, batch = a[0], a[2], int(a[3])
    _, t = grid_stride_ids(call.grid, call.block, int(nthreads))
    for b in batch_ids(call.grid, batch):
        psi = state[b]
        if kind == "qd_apply_1q":
            fixed, cset, tbit, ptr, stride = a[4:9]
            m = _gate_rows(ptr, int(stride), a[9:13], b, 4)
            i0 = (insert_zero_bits(t, int(fixed)) | cset).astype(np.int64)
            i1 = i0 | int(tbit)
            a0, a1 = psi[i0].copy(), psi[i1].copy()
            psi[i0] = m[0] * a0 + m[1] * a1
            psi[i1] = m[2] * a0 + m[3] * a1
            em.record(b, np.stack([i0, i1], axis=1))
        elif kind == "qd_apply_2q":
            fixed, cset, hi, lo, ptr, stride = a[4:10]
            m = _gate_rows(ptr, int(stride), a[10:26], b, 16).reshape(4, 4)
            i0 = (insert_zero_bits(t, int(fixed)) | cset).astype(np.int64)
            idx = np.stack([i0, i0 | int(lo), i0 | int(hi), i0 | int(hi) | int(lo)], axis=1)
            amps = psi[idx].copy()
            psi[idx] = amps @ m.T
            em.record(b, idx)
        elif kind == "qd_apply_diag":
            cmask, cset, tmask, ptr, stride = a[4:9]
            dg = _gate_rows(ptr, int(stride), a[9:13], b, 4 if int(stride) < 0 else 2 ** len(set_bits(int(tmask))))
            i = insert_zero_bits(t, int(cmask)) | cset
            psi[i.astype(np.int64)] *= dg[pext(i, int(tmask)).astype(np.int64)]
            em.record(b, i)
        elif kind == "qd_swap":
            fixed, cset, tbit = a[4:7]
            i0 = (insert_zero_bits(t, int(fixed)) | cset).astype(np.int64)
            i1 = i0 | int(tbit)
            psi[i0], psi[i1] = psi[i1].copy(), psi[i0].copy()
            em.record(b, np.stack([i0, i1], axis=1))
        elif kind == "qd_pauli_rot":
            fixed, cset, xmask, pmask, g, cs, stride, c, s = a[4:13]
            if int(stride) >= 0:
                c, s = np.asarray(cs).reshape(-1)[b * int(stride): b * int(stride) + 2]
            f = -1j * s * g
            i = insert_zero_bits(t, int(fixed)) | cset
            fi = np.where(parity(i & pmask) == 1, -f, f)
            ii = i.astype(np.int64)
            if int(xmask) == 0:
                psi[ii] = c * psi[ii] + fi * psi[ii]
                em.record(b, ii)
            else:
                j = i ^ xmask
                fj = np.where(parity(j & pmask) == 1, -f, f)
                jj = j.astype(np.int64)
                x, z = psi[ii].copy(), psi[jj].copy()
                psi[ii] = c * x + fi * z
                psi[jj] = c * z + fj * x
                em.record(b, np.stack([ii, jj], axis=1))


def _emulate_smem(call: KernelCall, kind: str, a: list, em: Emulation) -> None:
    state, dim, ngroups, batch, fixed, cset, tmask, d = a[:8]
    ngroups, d = int(ngroups), int(d)
    gpb = max(1, call.block // d) if call.block >= d else 1
    span = gpb * d
    if call.shared_mem and call.shared_mem // np.dtype(state.dtype).itemsize != span:
        raise AssertionError("shared memory size does not match the chunk span")
    nchunks = -(-ngroups // gpb)
    gx = call.grid[0]
    chunks = np.array([c for bx in range(gx) for c in range(bx, nchunks, gx)], dtype=np.int64)
    l_all = np.arange(span, dtype=np.int64)
    g = (chunks[:, None] * gpb + l_all[None, :] // d).ravel()
    r = np.broadcast_to(l_all % d, (len(chunks), span)).ravel()
    keep = g < ngroups
    g, r = g[keep].astype(np.uint64), r[keep]
    idx = (insert_zero_bits(g, int(fixed)) | cset | pdep(r, int(tmask))).astype(np.int64)
    idx_groups = idx.reshape(-1, d)  # chunks never split a group: rows r = 0..d-1 of one group
    for b in batch_ids(call.grid, int(batch)):
        psi = state[b]
        buf = psi[idx_groups].copy()
        if kind == "qd_apply_kq":
            ptr, stride = a[8], int(a[9])
            m = _gate_rows(ptr, stride, (), b, d * d).reshape(d, d)
            psi[idx_groups] = buf @ m.T
        else:
            ptr, packed = a[8], int(a[9])
            src = [(packed >> (4 * rr)) & 15 for rr in range(d)] if d <= 16 else list(np.asarray(ptr))
            psi[idx_groups] = buf[:, src]
        em.record(b, idx_groups)


__all__ = ["Emulation", "emulate", "grid_stride_ids", "batch_ids"]
