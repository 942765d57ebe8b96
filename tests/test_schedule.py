"""The pass scheduler (:func:`qdiff.schedule.plan_passes`) that the cache-blocked executor runs on.

Invariants over random gate lists: every gate is scheduled exactly once, program order is kept on every
wire, blocked passes stay within the local width and hold only blockable gates on their local wires,
and unblocked passes hold one gate. Packing: StronglyEntanglingLayers layers share passes.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from qdiff.schedule import GateWires, plan_passes

_BENCH = Path(__file__).parents[1] / "benchmarks" / "circuits.py"
_spec = importlib.util.spec_from_file_location("bench_circuits", _BENCH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@st.composite
def gate_lists(draw):
    n = draw(st.integers(1, 12))
    gates = []
    for _ in range(draw(st.integers(0, 40))):
        k = draw(st.integers(0, min(3, n)))
        wires = draw(st.permutations(range(n)))[:k]
        nc = draw(st.integers(0, min(1, k)))
        gates.append(GateWires(tuple(wires[nc:]), tuple(wires[:nc]), blockable=draw(st.booleans()) and k <= 2))
    return gates, draw(st.integers(2, 6))


@settings(max_examples=300, deadline=None)
@given(gate_lists())
def test_passes_keep_every_gate_once_and_the_order_on_every_wire(case) -> None:
    gates, width = case
    passes = plan_passes(gates, width)
    order = [i for p in passes for i in p.gates]
    assert sorted(order) == list(range(len(gates)))
    position = {i: k for k, i in enumerate(order)}
    last: dict[int, int] = {}
    for i, g in enumerate(gates):  # program order on each wire is kept
        for w in g.controls + g.targets:
            if w in last:
                assert position[last[w]] < position[i]
            last[w] = i
    for p in passes:
        if p.blocked:
            assert len(p.local) <= width
            for i in p.gates:
                assert gates[i].blockable and set(gates[i].controls + gates[i].targets) <= set(p.local)
        else:
            assert len(p.gates) == 1


def test_scheduler_packs_layers_together() -> None:
    seq = bench.sel_gate_sequence(10, 20)
    gates = [GateWires((w[0],)) if name == "Rot" else GateWires((w[1],), (w[0],)) for name, w, _ in seq]
    assert len(plan_passes(gates, 12)) <= 16  # 400 gates; one pass per gate would be 400
