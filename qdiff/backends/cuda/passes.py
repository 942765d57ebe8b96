"""Planning of fused passes on the GPU (``qd_fused_pass`` / ``qd_fused_adjoint`` of ``kernels.cu``); no GPU needed.

A program's operations are fused (:func:`qdiff.fusion.fuse`, forward only) and scheduled into passes
(:func:`qdiff.schedule.plan_passes`), as the CPU's cache-blocked executor does, with the pass width set
by the shared memory a CUDA block has. A blocked pass runs as one kernel launch: each CUDA block owns
chunks of ``2**m`` amplitudes that differ only in the pass's *local bits* (the bits of its wires plus the
lowest other bits, so that loads and stores touch runs of contiguous amplitudes), loads a chunk into
shared memory, applies every op of the pass, and writes it back; chunks are strided over ``gridDim.x``,
batch entries over ``gridDim.y``. In the adjoint sweep a chunk of the bra and of the ket sit side by
side; per op (last gate first) the ket is un-applied, the reduced outer product ``R`` accumulated into
per-CUDA-block partial sums, and the bra un-applied.

Ops are ``OP_FIELDS`` int32 each: fusion code, local bits ``a``, ``b``, ``c``/``d`` (CU1: control value in
``c``; SWAP_SUB: the two swapped offsets), the offset of the op's matrices in a batch entry's row of the
packed matrix array, and the op's row of the pass's R partial sums (-1: none). The matrices of every
pass are packed per call into one array (one host-to-device copy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import ParameterError
from ...fusion import CSEL, CU1, SWAP_SUB, U1, U2, BlockOp, block_sequence, op_matrices
from ...schedule import GateWires, plan_passes
from .. import placement
from . import index_model as gim

SHARED_BYTES = 32 * 1024
"""Dynamic shared memory a fused pass may use per CUDA block (the adjoint also has 8 KiB static)."""
MAX_BLOCK_BITS = 10
"""Largest ``m`` (log2 amplitudes per chunk)."""
SPECTATOR_BITS = 3
"""Local bits kept for the lowest non-gate bits when the state is larger than a chunk."""
FUSED_BLOCK = 256
"""Threads per CUDA block of a fused pass (fewer for small chunks, never under one warp)."""
ADJOINT_GRID_X = 1024
"""Most CUDA blocks along x in the adjoint (each writes its own rows of R partial sums)."""
OP_FIELDS = 7
"""int32 fields per op descriptor (``QD_OP_FIELDS`` in kernels.cu)."""
MATRIX_SIZE = {U1: 4, CU1: 4, CSEL: 8, U2: 16, SWAP_SUB: 0}
"""Complex entries of packed matrix data per op code."""


def block_bits(num_wires: int, itemsize: int, buffers: int, shared_bytes: int | None = None,
               max_bits: int | None = None) -> int:
    """``m`` for a state of ``num_wires``: the most bits whose ``buffers`` chunks fit the shared memory."""
    shared_bytes = SHARED_BYTES if shared_bytes is None else shared_bytes
    max_bits = MAX_BLOCK_BITS if max_bits is None else max_bits
    fit = (shared_bytes // (buffers * itemsize)).bit_length() - 1
    if fit < 1:
        raise ValueError(f"{shared_bytes} bytes of shared memory hold no {buffers} x 2 amplitudes")
    return max(1, min(num_wires, max_bits, fit))


def pass_width(num_wires: int, m: int) -> int:
    """Most wires a pass may act on: all of them when the state is one chunk, else ``m - SPECTATOR_BITS``."""
    if m >= num_wires:
        return num_wires
    return min(m, max(2, m - SPECTATOR_BITS))


@dataclass
class FusedPass:
    """One pass: its items (BlockOp, or the index of an operation run alone) and, when blocked, its layout."""

    items: list[Any]
    lmask: int = 0
    first_op: int = 0
    slot_ops: list[int] = field(default_factory=list)  # operation index of each R row (adjoint)

    @property
    def blocked(self) -> bool:
        """Whether the pass runs as one fused kernel launch (else: one operation, per-gate primitives)."""
        return bool(self.lmask)


class FusedPlan:
    """A program's GPU passes for a state of ``n`` wires in chunks of ``2**m`` amplitudes."""

    def __init__(self, program: Any, adjoint: bool, m: int):
        n = program.circuit.num_wires
        if not 1 <= m <= n:
            raise ValueError(f"chunk bits m={m} must lie in 1..{n} for a {n}-wire state")
        self.n, self.m, self.adjoint = n, m, adjoint
        self.width = pass_width(n, m)
        ops = program.operations
        seq = block_sequence(ops, adjoint, self.width)
        wires = [GateWires(tuple(s.wires)) if isinstance(s, BlockOp) else
                 GateWires(tuple(ops[s].wires), tuple(ops[s].controls), blockable=False) for s in seq]
        trainable = set(program.trainable)
        rows: list[list[int]] = []
        self.passes: list[FusedPass] = []
        self.matrix_size = 0
        for ps in plan_passes(wires, self.width):
            fp = FusedPass([seq[g] for g in ps.gates])
            if ps.blocked:
                fp.first_op = len(rows)
                rows += self._layout(fp, list(ps.local), trainable if adjoint else set())
            self.passes.append(fp)
        self.ops = np.array(rows, dtype=np.int32).reshape(-1, OP_FIELDS)
        self._device: tuple[Any, Any] | None = None

    def _layout(self, fp: FusedPass, local_wires: list[int], trainable: set[int]) -> list[list[int]]:
        """Local bits of a pass (its wires' bits and the lowest others, m in all) and its op descriptors."""
        n, m = self.n, self.m
        gated = sorted(n - 1 - w for w in local_wires)
        others = [q for q in range(n) if q not in set(gated)]
        lbits = sorted(gated + others[: m - len(gated)])
        local_of = {q: j for j, q in enumerate(lbits)}
        fp.lmask = sum(1 << q for q in lbits)
        rows = []
        for bop in fp.items:
            lb = [local_of[n - 1 - w] for w in bop.wires]
            row = [bop.code, lb[0] if len(lb) > 1 else -1, lb[-1], 0, 0, self.matrix_size, -1]
            if bop.code == CU1:
                row[3] = bop.value
            elif bop.code == SWAP_SUB:
                a, b = lb
                if bop.value >= 0:  # CNOT: control a with value v, target b
                    row[3], row[4] = bop.value << a, (bop.value << a) | (1 << b)
                else:
                    row[3], row[4] = 1 << a, 1 << b
            i = bop.parts[0][0] if bop.parts else -1
            if i in trainable and bop.code != SWAP_SUB:
                row[6] = len(fp.slot_ops)
                fp.slot_ops.append(i)
            self.matrix_size += MATRIX_SIZE[bop.code]
            rows.append(row)
        return rows

    def items(self) -> list[Any]:
        """Every pass's items (blocked ops and lone operation indices), in order."""
        return [item for fp in self.passes for item in fp.items]

    def device_ops(self, backend: Any) -> Any:
        """The op descriptors of every pass as one int32 array on ``backend``'s device (copied once per plan and
        device: keyed by :func:`qdiff.backends.placement`)."""
        where = (backend.xp, placement(backend))
        if self._device is None or self._device[0] != where:
            self._device = (where, backend.xp.asarray(np.ascontiguousarray(self.ops.reshape(-1))))
        return self._device[1]

    def op_view(self, device_ops: Any, fp: FusedPass) -> Any:
        """The descriptors of pass ``fp`` within :meth:`device_ops` (a contiguous view)."""
        return device_ops[fp.first_op * OP_FIELDS:(fp.first_op + len(fp.items)) * OP_FIELDS]

    def pack(self, dense: dict[int, Any], batch: int, dtype: Any) -> np.ndarray:
        """``(Bm, matrix_size)`` matrices of every blocked pass in the state's dtype (Bm: 1 or ``batch``).

        ``dense[i]`` is operation ``i``'s matrix ``(d, d)`` or ``(B, d, d)`` (None: CNOT's X in a CSEL,
        or no data for a SWAP_SUB); fused ops are multiplied as the CPU's blocked passes do.
        """
        sizes = {int(np.shape(u)[0]) for u in dense.values() if u is not None and np.ndim(u) == 3}
        if sizes - {1, batch}:
            raise ParameterError(f"gate data has batch sizes {sorted(sizes)} for a state batch of {batch}")
        bm = batch if batch in sizes and batch > 1 else 1
        out = np.zeros((bm, max(1, self.matrix_size)), dtype=np.dtype(dtype))
        for fp in self.passes:
            if not fp.blocked:
                continue
            mats = op_matrices(fp.items, dense, bm)
            for g in range(len(fp.items)):
                row = self.ops[fp.first_op + g]
                size = MATRIX_SIZE[int(row[0])]
                out[:, row[5]:row[5] + size] = mats[:, g, :size]
        return out

    def _geometry(self, fp: FusedPass, batch: int, buffers: int, itemsize: int, max_blocks: int,
                  block: int | None) -> tuple[tuple[int, int], int, int, int]:
        nchunks = 1 << (self.n - self.m)
        if block is None:
            block = min(FUSED_BLOCK, max(32, gim.next_pow2(1 << (self.m - 1))))
        if block % 32 or not 32 <= block <= 1024:
            raise ValueError(f"a fused pass needs a multiple of 32 threads per block (at most 1024), got {block}")
        grid = (max(1, min(nchunks, max_blocks)), max(1, min(int(batch), gim.MAX_GRID_Y)))
        return grid, block, nchunks, buffers * (1 << self.m) * itemsize

    def forward_call(self, fp: FusedPass, batch: int, dtype: Any, mstride: int, max_blocks: int | None = None,
                     block: int | None = None) -> gim.KernelCall:
        """The ``qd_fused_pass`` launch of a blocked pass (binds ``state``, ``ops``, ``mats``)."""
        if not fp.blocked:
            raise ValueError("a pass of one unblocked operation has no fused launch")
        grid, blk, nchunks, shared = self._geometry(fp, batch, 1, np.dtype(dtype).itemsize,
                                                    gim.MAX_GRID_X if max_blocks is None else max_blocks, block)
        args = (gim.Buf("state"), np.uint64(1 << self.n), np.int32(batch), np.uint64(nchunks), np.uint64(fp.lmask),
                np.int32(self.m), np.int32(len(fp.items)), gim.Buf("ops"), gim.Buf("mats"), np.int64(mstride))
        return gim.KernelCall("qd_fused_pass", gim.real_name(dtype), grid, blk, args, shared)

    def adjoint_call(self, fp: FusedPass, batch: int, dtype: Any, mstride: int, max_blocks: int | None = None,
                     block: int | None = None) -> gim.KernelCall:
        """The ``qd_fused_adjoint`` launch of a blocked pass (binds ``bra``, ``ket``, ``ops``, ``mats`` and a
        zeroed ``partial`` of :meth:`partial_shape`)."""
        if not fp.blocked:
            raise ValueError("a pass of one unblocked operation has no fused launch")
        grid, blk, nchunks, shared = self._geometry(fp, batch, 2, np.dtype(dtype).itemsize,
                                                    ADJOINT_GRID_X if max_blocks is None else max_blocks, block)
        args = (gim.Buf("bra"), gim.Buf("ket"), np.uint64(1 << self.n), np.int32(batch), np.uint64(nchunks),
                np.uint64(fp.lmask), np.int32(self.m), np.int32(len(fp.items)), gim.Buf("ops"), gim.Buf("mats"),
                np.int64(mstride), np.int32(max(1, len(fp.slot_ops))), gim.Buf("partial"))
        return gim.KernelCall("qd_fused_adjoint", gim.real_name(dtype), grid, blk, args, shared)

    @staticmethod
    def partial_shape(call: gim.KernelCall, batch: int) -> tuple[int, int, int, int]:
        """``(B, gridDim.x, R rows, 32)``: the float64 partial sums an adjoint launch accumulates into."""
        return (int(batch), call.grid[0], int(call.args[11]), 32)

    @staticmethod
    def finish(partial: Any) -> Any:
        """``(B, rows, 4, 4)`` complex R from the partial sums (one-target ops fill the 2x2 corner)."""
        s = partial.sum(axis=1)
        return (s[..., 0::2] + 1j * s[..., 1::2]).reshape(s.shape[0], s.shape[1], 4, 4)


def plan_of(program: Any, adjoint: bool, m: int) -> FusedPlan:
    """The program's fused GPU plan for chunks of ``2**m`` amplitudes, cached on the program."""
    cache = program.__dict__.setdefault("_cupy_fused_plans", {})
    key = (adjoint, m, pass_width(program.circuit.num_wires, m), SPECTATOR_BITS)
    plan = cache.get(key)
    if plan is None:
        plan = cache[key] = FusedPlan(program, adjoint, m)
    return plan


__all__ = ["FusedPass", "FusedPlan", "plan_of", "block_bits", "pass_width", "OP_FIELDS", "MATRIX_SIZE"]
