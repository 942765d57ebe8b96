"""The one bit encoding of Pauli words used by every kernel: flip mask, sign mask and phase.

Wire ``w`` of an ``n``-wire state is bit ``n-1-w`` of the basis index. X and Y flip that bit, Y and Z
sign it, so ``(P psi)[i ^ x] = phase (-1)**popcount(i & z) psi[i]`` with ``phase = i**(number of Y)``.
"""

from __future__ import annotations

from collections.abc import Iterable


def pauli_masks(letters: Iterable[tuple[int, str]], num_wires: int) -> tuple[int, int, complex]:
    """``(flip mask, sign mask, i**(number of Y))`` of the word given as ``(wire, letter)`` pairs (I allowed)."""
    x = z = ny = 0
    for w, p in letters:
        bit = 1 << (num_wires - 1 - w)
        x |= bit if p in "XY" else 0
        z |= bit if p in "YZ" else 0
        ny += p == "Y"
    return x, z, (1, 1j, -1, -1j)[ny % 4]


__all__ = ["pauli_masks"]
