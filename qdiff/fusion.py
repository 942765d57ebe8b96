"""Fusion for blocked passes: which operations become which blocked op, and which merge (no backend code).

Every operation on one target with at most one control, two targets without controls, CNOT-like or
SWAP permutation becomes a :class:`BlockOp`; anything else runs alone. In the forward pass
(:func:`fuse`), one-qubit gates merge into the previous op on their wire (a one-qubit gate, or a CSEL
on that target), and a controlled one-target gate, CNOT included, absorbs the one-qubit gate just
before it on its target into a CSEL (one matrix per control half). Moving a one-qubit gate is legal
because nothing touched its wire in between. Matrices are multiplied per call, from ``parts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .ir.kinds import Kind
from .program import exec_kind

U1, CU1, CSEL, U2, SWAP_SUB = 0, 1, 2, 3, 4
"""Op codes: one-target matrix; one-target matrix on the half where the control has value ``v``;
one-target matrices per control half; two-target matrix; swap of two sub-blocks (CNOT, SWAP)."""


@dataclass
class BlockOp:
    """One op of a blocked pass: ``code``, global wires, and the source operations it multiplies.

    ``parts`` lists ``(operation index, half)`` in application order; ``half`` is -1 for a one-qubit
    part acting on both control halves of a CSEL, else the control value the part acts under.
    U1 ``wires = (t,)``; CU1/CSEL ``(c, t)``; U2 ``(a, b)``; SWAP_SUB ``(a, b)`` with ``value`` the
    control value of a CNOT (-1 for SWAP).
    """

    code: int
    wires: tuple[int, ...]
    parts: list[tuple[int, int]]
    value: int = -1


def classify(op: Any) -> BlockOp | None:
    """The blocked form of one operation, or None when it must run alone."""
    kind, t, c = exec_kind(op.gate), op.wires, op.controls
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
        bop.parts = [(i, -1 if bop.code in (U1, U2) else bop.value)]
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


__all__ = ["BlockOp", "classify", "fuse", "U1", "CU1", "CSEL", "U2", "SWAP_SUB"]
