"""Where each logical wire lives: a permutation onto physical qubits, the top ones global (rank bits).

Physical qubit ``q < G`` is global: rank bit ``G-1-q``; physical qubit ``q >= G`` is local position
``q - G`` (wire ``q - G`` of the rank's local ``(B, 2**(n-G))`` state, position 0 the most significant
bit). The canonical layout is the identity, where rank ``r`` holds basis indices
``r * 2**(n-G) ... (r+1) * 2**(n-G) - 1``, the single-process order. Pure bookkeeping, no MPI.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


class Lookahead:
    """The wires each operation of a sweep needs local, in execution order, and where the sweep is.

    With a lookahead, the local wire moved out for a global one is the one needed again furthest in
    the future (Belady's rule), so a wire that comes back soon stays local. The executor sets
    ``position`` to the index of the operation it is running.
    """

    def __init__(self, needs: Sequence[Iterable[int]]):
        self.uses: dict[int, list[int]] = defaultdict(list)
        for i, wires in enumerate(needs):
            for w in wires:
                self.uses[w].append(i)
        self.length = len(needs)
        self.position = 0

    def next_use(self, wire: int) -> int:
        """Index of the next operation after the current one needing ``wire`` local (``length`` if none)."""
        uses = self.uses.get(wire, ())
        j = bisect_right(uses, self.position)
        return uses[j] if j < len(uses) else self.length


@dataclass
class Layout:
    """A logical-to-physical wire permutation with a use clock for choosing which local wire to evict."""

    num_wires: int
    num_global: int
    where: list[int] = field(default_factory=list)  # logical wire -> physical qubit
    last_use: list[int] = field(default_factory=list)  # logical wire -> clock of its last gate
    clock: int = 0
    lookahead: Lookahead | None = None  # the running sweep's future, shared by copies

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
        return Layout(self.num_wires, self.num_global, list(self.where), list(self.last_use), self.clock,
                      self.lookahead)

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
        """The local logical wire to move out for a global one, not in ``keep``.

        With a lookahead: the one needed again furthest ahead; otherwise (and on ties) the least
        recently used; then the highest local position (least significant bit). Deterministic, so
        every rank makes the same choice.
        """
        keep = set(keep)
        ahead = self.lookahead
        best = None
        for w in range(self.num_wires):
            if w in keep or self.is_global(w):
                continue
            rank = (-ahead.next_use(w) if ahead is not None else 0, self.last_use[w], -self.where[w])
            if best is None or rank < best[0]:
                best = (rank, w)
        if best is None:
            raise ValueError("no local wire is free")
        return best[1]

    def globals_to_fetch(self, wires: Iterable[int]) -> list[int]:
        """The global wires among ``wires`` (each needs one swap), after checking they fit on one rank."""
        wires = list(dict.fromkeys(wires))
        if len(wires) > self.num_local:
            raise ValueError(
                f"an operation on {len(wires)} wires needs them all on one rank, but each of the "
                f"{2**self.num_global} ranks holds {self.num_local} wires; use fewer ranks"
            )
        return [w for w in wires if self.is_global(w)]

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


SWAP_POLICIES = ("per-gate", "lru", "lookahead")


def count_swaps(needs: Sequence[Iterable[int]], num_wires: int, num_global: int, policy: str = "lookahead") -> int:
    """Half-state exchanges a sweep needs when operation ``i`` needs the wires ``needs[i]`` local.

    Runs the same bookkeeping as the MPI backend, without a state. Policies: ``"lookahead"`` (what
    the executors do), ``"lru"`` (no knowledge of the future) and ``"per-gate"`` (a gate-by-gate
    swapper: each global wire swapped in for its gate and back after it, the layout never changes).
    """
    if policy not in SWAP_POLICIES:
        raise ValueError(f"policy must be one of {SWAP_POLICIES}, got {policy!r}")
    needs = [tuple(n) for n in needs]
    lay = Layout(num_wires, num_global, lookahead=Lookahead(needs) if policy == "lookahead" else None)
    swaps = 0
    for i, wires in enumerate(needs):
        if lay.lookahead is not None:
            lay.lookahead.position = i
        fetch = lay.globals_to_fetch(wires)
        swaps += len(fetch) * (2 if policy == "per-gate" else 1)
        if policy != "per-gate":
            for w in fetch:
                lay.exchange(w, lay.victim(wires))
        lay.touch(wires)
    return swaps
