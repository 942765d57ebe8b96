"""Where a gate's local basis states sit in a basis index, shared by every executor's geometry.

A gate on ``k`` targets has local basis states ``0 .. 2**k - 1``, its first target the most significant
bit. With the targets at bit positions ``positions`` of the index (wire ``w`` of an ``n``-wire state is
bit ``n-1-w``; a blocked pass uses its block-local bits), local state ``loc`` is the offset
``sum_t bit(loc, k-1-t) << positions[t]`` from the index with all target bits clear.
"""

from __future__ import annotations

from collections.abc import Sequence


def local_offsets(positions: Sequence[int]) -> list[int]:
    """The offset of every local basis state of a gate whose targets sit at bit ``positions`` (in order);
    the last one, all targets set, is the targets' bit mask."""
    k = len(positions)
    return [sum(((loc >> (k - 1 - t)) & 1) << p for t, p in enumerate(positions)) for loc in range(2**k)]


__all__ = ["local_offsets"]
