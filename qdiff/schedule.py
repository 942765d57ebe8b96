"""Scheduling gates into cache-sized passes: which gates one sweep over the state can apply together.

A pass has a set of *local* wires (at most ``max_local``); every wire of every gate in it (targets and
controls) is local. A backend then walks the state once per pass, in blocks of ``2**local``
amplitudes that differ only in the local wires, and applies all of the pass's gates to each block
while it sits in cache, instead of one sweep over the whole state per gate.

Gates keep their order on every wire; gates on disjoint wires commute, so a pass may take gates from
several layers of a circuit. Gates that cannot be blocked (too wide, or of a kind the blocked
kernel does not handle) run alone, as one-gate passes. Independent of any backend: it sees wires only.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class GateWires:
    """What scheduling needs of a gate: its targets, controls, and whether a blocked pass can run it."""

    targets: tuple[int, ...]
    controls: tuple[int, ...] = ()
    blockable: bool = True


@dataclass(frozen=True)
class Pass:
    """Gates (indices into the scheduled list, in application order) sharing one sweep over the state.

    ``local`` is the sorted tuple of local wires; it is empty for a one-gate pass of a gate that
    cannot be blocked.
    """

    gates: tuple[int, ...]
    local: tuple[int, ...]

    @property
    def blocked(self) -> bool:
        """True when the pass runs in cache-sized blocks (False: one unblockable gate, applied as usual)."""
        return bool(self.local)


def plan_passes(gates: Sequence[GateWires], max_local: int) -> list[Pass]:
    """Group ``gates`` into passes of at most ``max_local`` wires each, preserving the order on every wire.

    Greedy over the dependency graph: a gate is *ready* when it is first in line on every wire it
    touches; a pass keeps taking the ready gate that adds the fewest new wires (ties: program order)
    until none fits. This packs gates of different layers together (e.g. 400 gates of a 10-layer,
    20-qubit StronglyEntanglingLayers circuit in 15 passes of 12 wires, against 23 in program order).
    When no blockable gate is ready, the earliest ready unblockable gate runs alone. Gates on no wires
    (global phases) commute with everything and come last, alone.
    """
    lines: dict[int, deque[int]] = defaultdict(deque)
    wires_of = []
    for i, g in enumerate(gates):
        ws = tuple(dict.fromkeys(g.controls + g.targets))
        wires_of.append(ws)
        for w in ws:
            lines[w].append(i)
    wireless = [i for i, ws in enumerate(wires_of) if not ws]  # global phases: they commute with everything
    remaining = len(gates) - len(wireless)
    passes: list[Pass] = []

    def ready(i: int) -> bool:
        return all(lines[w][0] == i for w in wires_of[i])

    while remaining:
        local: set[int] = set()
        taken: list[int] = []
        while True:
            best: tuple[int, int] | None = None
            for line in lines.values():
                if not line:
                    continue
                i = line[0]
                if not gates[i].blockable or not ready(i):
                    continue
                new = sum(1 for w in wires_of[i] if w not in local)
                if len(local) + new <= max_local and (best is None or (new, i) < best):
                    best = (new, i)
            if best is None:
                break
            i = best[1]
            for w in wires_of[i]:
                lines[w].popleft()
                local.add(w)
            taken.append(i)
        if not taken:
            heads = [line[0] for line in lines.values() if line and ready(line[0])]
            i = min(heads)
            for w in wires_of[i]:
                lines[w].popleft()
            passes.append(Pass((i,), ()))
            remaining -= 1
            continue
        passes.append(Pass(tuple(taken), tuple(sorted(local))))
        remaining -= len(taken)
    return passes + [Pass((i,), ()) for i in wireless]


__all__ = ["GateWires", "Pass", "plan_passes"]
