"""Where each logical wire lives: a permutation onto physical qubits, the top ones global (rank bits).

Physical qubit ``q < G`` is global: rank bit ``G-1-q``; physical qubit ``q >= G`` is local position
``q - G`` (wire ``q - G`` of the rank's local ``(B, 2**(n-G))`` state, position 0 the most significant
bit). The canonical layout is the identity, where rank ``r`` holds basis indices
``r * 2**(n-G) ... (r+1) * 2**(n-G) - 1``, the single-process order. Pure bookkeeping, no MPI.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class Layout:
    """A logical-to-physical wire permutation with a use clock for choosing which local wire to evict."""

    num_wires: int
    num_global: int
    where: list[int] = field(default_factory=list)  # logical wire -> physical qubit
    last_use: list[int] = field(default_factory=list)  # logical wire -> clock of its last gate
    clock: int = 0

    def __post_init__(self) -> None:
        if not self.where:
            self.where = list(range(self.num_wires))
        if not self.last_use:
            self.last_use = [-1] * self.num_wires

    @property
    def num_local(self) -> int:
        """Qubits held by each rank."""
        return self.num_wires - self.num_global

    def copy(self) -> Layout:
        """An independent copy (same permutation and clock)."""
        return Layout(self.num_wires, self.num_global, list(self.where), list(self.last_use), self.clock)

    def key(self) -> tuple[int, ...]:
        """The permutation as a hashable key."""
        return tuple(self.where)

    def logical_at(self, physical: int) -> int:
        """The logical wire on ``physical``."""
        return self.where.index(physical)

    def is_global(self, wire: int) -> bool:
        """Whether logical ``wire`` is a rank bit."""
        return self.where[wire] < self.num_global

    def local_position(self, wire: int) -> int:
        """Local position of a local logical ``wire``."""
        return self.where[wire] - self.num_global

    def rank_bit(self, wire: int, rank: int) -> int:
        """Value of global logical ``wire`` on ``rank``."""
        return (rank >> (self.num_global - 1 - self.where[wire])) & 1

    def rank_mask(self, wires: Iterable[int]) -> int:
        """Bit mask over rank numbers of the global ``wires``."""
        mask = 0
        for w in wires:
            mask |= 1 << (self.num_global - 1 - self.where[w])
        return mask

    def touch(self, wires: Iterable[int]) -> None:
        """Record that a gate used ``wires`` now."""
        self.clock += 1
        for w in wires:
            self.last_use[w] = self.clock

    def victim(self, keep: Iterable[int]) -> int:
        """The local logical wire to move out for a global one: least recently used, not in ``keep``.

        Ties go to the highest local position (least significant bit), deterministically on every rank.
        """
        keep = set(keep)
        best = None
        for w in range(self.num_wires):
            if w in keep or self.is_global(w):
                continue
            rank = (self.last_use[w], -self.where[w])
            if best is None or rank < best[0]:
                best = (rank, w)
        if best is None:
            raise ValueError("no local wire is free")
        return best[1]

    def exchange(self, a: int, b: int) -> None:
        """Swap the physical qubits of logical wires ``a`` and ``b``."""
        self.where[a], self.where[b] = self.where[b], self.where[a]


def split_pauli_word(layout: Layout, rank: int, word: dict[int, str]) -> tuple[int, complex, dict[int, str]]:
    """A Pauli word on ``rank`` as ``(mask, factor, local word)``: ``(P psi)_rank = factor P_local psi_(rank ^ mask)``.

    ``mask`` holds the rank bits the word's X/Y letters on global wires flip; ``factor`` the phase its
    global letters take on the source rank's bits (Y: ``i (-1)**b``, Z: ``(-1)**b``); the local word is
    on local positions.
    """
    mask = layout.rank_mask(w for w, p in word.items() if p in "XY" and layout.is_global(w))
    source = rank ^ mask
    factor: complex = 1
    local: dict[int, str] = {}
    for w, p in word.items():
        if layout.is_global(w):
            sign = 1 - 2 * layout.rank_bit(w, source)
            factor *= {"X": 1, "Y": 1j * sign, "Z": sign}[p]
        else:
            local[layout.local_position(w)] = p
    return mask, factor, local
