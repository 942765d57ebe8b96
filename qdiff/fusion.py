"""Fusion for blocked passes: which operations become which blocked op, and which merge (no backend code).

Every operation on one target with at most one control, two targets without controls, CNOT-like or
SWAP permutation becomes a :class:`BlockOp`, and where the executor asks for them uncontrolled
excitations on more targets (DoubleExcitation and its Plus/Minus forms: a 2x2 block on two basis
states and a phase on the others, see :func:`qdiff.spectral.compressed_basis`); anything else runs
alone. In the forward pass (:func:`fuse`), one-qubit gates merge into the previous op on their wire
(a one-qubit gate, or a CSEL on that target), and a controlled one-target gate, CNOT included, absorbs
the one-qubit gate just before it on its target into a CSEL (one matrix per control half). Moving a
one-qubit gate is legal because nothing touched its wire in between. Matrices are multiplied per call, from ``parts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .ir.kinds import Kind
from .program import exec_kind, kernel_matrix
from .spectral import compress, compressed_basis, rest_phase_varies

U1, CU1, CSEL, U2, SWAP_SUB, SUB = 0, 1, 2, 3, 4, 5
"""Op codes: one-target matrix; one-target matrix on the half where the control has value ``v``;
one-target matrices per control half; two-target matrix; swap of two sub-blocks (CNOT, SWAP); a
two-level rotation of two basis states of several targets with a phase on the others."""


@dataclass
class BlockOp:
    """One op of a blocked pass: ``code``, global wires, and the source operations it multiplies.

    ``parts`` lists ``(operation index, half)`` in application order; ``half`` is -1 for a one-qubit
    part acting on both control halves of a CSEL, else the control value the part acts under.
    U1 ``wires = (t,)``; CU1/CSEL ``(c, t)``; U2 ``(a, b)``; SWAP_SUB ``(a, b)`` with ``value`` the
    control value of a CNOT (-1 for SWAP); SUB the gate's targets, ``basis`` its compressed basis and
    ``value`` 1 when its phase on the other states depends on its parameter (else 0).
    """

    code: int
    wires: tuple[int, ...]
    parts: list[tuple[int, int]]
    value: int = -1
    basis: tuple[int, int, int] | None = None


def classify(op: Any, subspace: bool = False) -> BlockOp | None:
    """The blocked form of one operation, or None when it must run alone (wide excitations too, unless
    ``subspace``)."""
    kind, t, c = exec_kind(op.gate), op.wires, op.controls
    basis = compressed_basis(op.gate.name, len(t)) if subspace and not c else None
    if basis is not None:
        return BlockOp(SUB, t, [], int(rest_phase_varies(op.gate.name, len(t))), basis)
    if kind not in (Kind.DENSE, Kind.DIAGONAL, Kind.PERMUTATION) or len(c) > 1 or not 1 <= len(t) <= 2:
        return None
    if c and len(t) > 1:
        return None
    if kind == Kind.PERMUTATION and c:
        return BlockOp(SWAP_SUB, (c[0], t[0]), [], op.control_values[0])  # CNOT with either control value
    if kind == Kind.PERMUTATION and len(t) == 2 and tuple(op.gate.permutation) == (0, 2, 1, 3):
        return BlockOp(SWAP_SUB, t, [])
    if c:
        return BlockOp(CU1, (c[0], t[0]), [], op.control_values[0])
    return BlockOp(U1 if len(t) == 1 else U2, t, [])


def fuse(ops: list[Any], items: list[tuple[int, BlockOp]]) -> list[BlockOp | int]:
    """Forward-pass fusion: one-qubit gates merge into the previous op on their wire (a one-qubit gate, or a
    CSEL with that target), and a controlled one-target gate (CNOT included) absorbs the one-qubit gate just
    before it on its target, becoming a CSEL. Operations that run alone stay as their index."""
    out: list[BlockOp | int | None] = []
    last: dict[int, int] = {}  # wire -> position in out of the last op touching it
    for i, bop in items:
        if bop is None:
            for w in ops[i].controls + ops[i].wires:
                last[w] = len(out)
            out.append(i)
            continue
        bop.parts = [(i, -1 if bop.code in (U1, U2, SUB) else bop.value)]
        if bop.code == U1:
            j = last.get(bop.wires[0])
            prev = out[j] if j is not None else None
            if isinstance(prev, BlockOp) and (prev.code == U1 or prev.code == CSEL and prev.wires[1] == bop.wires[0]):
                prev.parts.append((i, -1))
                continue
        elif bop.code in (CU1, SWAP_SUB) and (bop.code == CU1 or bop.value >= 0):
            ctrl, tgt = bop.wires
            j = last.get(tgt)
            prev = out[j] if j is not None else None
            if isinstance(prev, BlockOp) and prev.code == U1:
                out[j] = None  # the one-qubit gate moves forward to here: nothing touched its wire since
                bop = BlockOp(CSEL, (ctrl, tgt), prev.parts + [(i, bop.value)])
            elif bop.code == CU1:  # a CSEL, so that one-qubit gates after it on the target merge into it
                bop = BlockOp(CSEL, (ctrl, tgt), [(i, bop.value)])
        for w in bop.wires:
            last[w] = len(out)
        out.append(bop)
    return [o for o in out if o is not None]


__all__ = ["BlockOp", "classify", "fuse", "U1", "CU1", "CSEL", "U2", "SWAP_SUB", "SUB"]


def block_sequence(ops: list[Any], adjoint: bool, width: int, subspace: bool = False) -> list[BlockOp | int]:
    """The operations as blocked ops and lone operation indices, in execution order.

    Forward: fused (:func:`fuse`). Adjoint: last operation first, unfused, one source operation per op.
    An operation whose wires and controls exceed ``width`` runs alone; identities are dropped; wide
    excitations become SUB ops where ``subspace`` (executors that run them).
    """
    order = range(len(ops) - 1, -1, -1) if adjoint else range(len(ops))
    items: list[tuple[int, BlockOp | None]] = []
    for i in order:
        if exec_kind(ops[i].gate) is None:
            continue
        bop = classify(ops[i], subspace)
        if bop is not None and len(set(ops[i].controls + ops[i].wires)) > width:
            bop = None
        items.append((i, bop))
    if not adjoint:
        return fuse(ops, items)
    seq: list[BlockOp | int] = []
    for i, bop in items:
        if bop is not None:
            bop.parts = [(i, -1 if bop.code in (U1, U2, SUB) else bop.value)]
        seq.append(bop if bop is not None else i)
    return seq


def blocks_generator_ops(passes: list[Any], generator_ops: Any) -> bool:
    """Whether a blocked pass of an adjoint plan holds an operation differentiated through its generators
    (those run only in the reference sweep step)."""
    return any(bop.parts[0][0] in generator_ops for p in passes if p.blocked for bop in p.items)


def dense_matrices(items: list[Any], kernels: list[Any]) -> dict[int, Any]:
    """The matrices of the source operations of blocked ops ``items`` from their bound ``kernels`` (the
    inverses in an adjoint sweep): None for a CNOT fused into a CSEL and for SWAP_SUB ops, which carry none."""
    dense: dict[int, Any] = {}
    for bop in items:
        if not isinstance(bop, BlockOp):
            continue
        for i, _ in bop.parts:
            if i not in dense:
                perm = kernels[i].kind == Kind.PERMUTATION and bop.code in (CSEL, SWAP_SUB)
                dense[i] = None if perm or bop.code == SWAP_SUB else kernel_matrix(kernels[i])
    return dense


_X = np.array([[0, 1], [1, 0]], dtype=complex)


def op_matrices(items: list[BlockOp], dense: dict[int, Any], batch: int) -> np.ndarray:
    """``(Bm, G, 16)`` complex op data of the blocked ops ``items`` from their sources' dense matrices:
    a product of parts (U1, CU1, U2, row-major), two 2x2 halves (CSEL), nothing (SWAP_SUB), the 2x2
    block on the rotated pair then the phase on the other states (SUB)."""
    out = np.zeros((batch, len(items), 16), dtype=np.complex128)
    for g, bop in enumerate(items):
        if bop.code == SWAP_SUB:
            continue
        if bop.code == SUB:
            block = compress(dense[bop.parts[0][0]], bop.basis)
            out[:, g, 0:4] = np.broadcast_to(block[..., :2, :2], (batch, 2, 2)).reshape(batch, 4)
            out[:, g, 4] = block[..., 2, 2]
            continue
        if bop.code == CSEL:
            halves = [np.eye(2, dtype=complex), np.eye(2, dtype=complex)]
            for i, half in bop.parts:
                mat = _X if dense[i] is None else dense[i]
                for h in (0, 1):
                    if half in (-1, h):
                        halves[h] = mat @ halves[h]
            out[:, g, 0:4] = np.broadcast_to(halves[0], (batch, 2, 2)).reshape(batch, 4)
            out[:, g, 4:8] = np.broadcast_to(halves[1], (batch, 2, 2)).reshape(batch, 4)
            continue
        u = None
        for i, _ in bop.parts:
            u = dense[i] if u is None else dense[i] @ u
        d = u.shape[-1]
        out[:, g, : d * d] = np.broadcast_to(u, (batch, d, d)).reshape(batch, d * d)
    return out
