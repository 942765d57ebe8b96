"""Cache-blocked passes (large states): the scheduler's invariants, and fused/blocked results against the
unfused per-gate numpy reference (``QDIFF_KERNELS=numpy``) to 1e-12, forward and adjoint.

States need at least ``MIN_QUBITS`` (13) qubits to take the blocked path, so the circuits here are
13-14 qubits wide, drawn over the whole gate set (controls, adjoints, shared parameters, wide gates
that run alone between blocked passes).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import circuits
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qdiff as qd
from qdiff.backends.numba import blocked as cpu_blocked
from qdiff.program import program_of
from qdiff.schedule import GateWires, plan_passes

_BENCH = Path(__file__).parents[1] / "benchmarks" / "circuits.py"
_spec = importlib.util.spec_from_file_location("bench_circuits", _BENCH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


# -- scheduler --------------------------------------------------------------------------------------


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


# -- forward and adjoint against the per-gate reference ---------------------------------------------


def _reference(fn):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QDIFF_KERNELS", "numpy")
        return fn()


@st.composite
def wide_cases(draw):
    rc = circuits.random_circuit(draw, num_wires=(13, 14), depth=(10, 40), num_params=(1, 5), state_prep=True)
    src = circuits.Source(draw)
    n = rc.num_wires
    obs = src.real(-1, 1) * qd.Z(src.integer(0, n - 1))
    for _ in range(src.integer(1, 3)):
        word = {w: src.choice("XYZ") for w in src.ordered_subset(range(n), src.integer(1, 3))}
        obs = obs + src.real(-2, 2) * qd.PauliWord(word)
    return rc, obs


@settings(max_examples=25, deadline=None)
@given(wide_cases())
def test_blocked_state_and_gradient_match_the_unfused_reference(case) -> None:
    rc, obs = case
    c, theta = rc.circuit, rc.theta
    batch = np.stack([theta, theta + 0.3])
    state = np.asarray(qd.state(c, batch))
    value, grad = qd.value_and_grad(c, obs, theta)
    var_grad = qd.grad(c, qd.Var(obs), theta)
    ref_state = _reference(lambda: np.asarray(qd.state(c, batch)))
    ref_value, ref_grad = _reference(lambda: qd.value_and_grad(c, obs, theta))
    ref_var_grad = _reference(lambda: qd.grad(c, qd.Var(obs), theta))
    np.testing.assert_allclose(state, ref_state, atol=1e-12, rtol=0)
    np.testing.assert_allclose(value, ref_value, atol=1e-12, rtol=0)
    np.testing.assert_allclose(grad, ref_grad, atol=1e-11, rtol=0)
    np.testing.assert_allclose(var_grad, ref_var_grad, atol=1e-10, rtol=0)


def test_sel_is_fused_blocked_and_exact() -> None:
    n, layers = 14, 3
    c, h = bench.native_sel(n, layers), bench.native_hamiltonian(n)
    w = np.random.default_rng(2).uniform(0, 2 * np.pi, c.num_params)
    batch = np.stack([w, -w])
    plan = cpu_blocked.plan_of(program_of(c), adjoint=False)
    codes = [bop.code for bp in plan.passes for bop in bp.items]
    assert all(bp.blocked for bp in plan.passes)
    assert codes.count(cpu_blocked.CSEL) >= n  # CNOTs absorbed one-qubit gates
    assert len(plan.passes) < len(c.operations) // 4
    got = (np.asarray(qd.state(c, batch)), qd.grad(c, h, batch))
    ref = _reference(lambda: (np.asarray(qd.state(c, batch)), qd.grad(c, h, batch)))
    np.testing.assert_allclose(got[0], ref[0], atol=1e-12, rtol=0)
    np.testing.assert_allclose(got[1], ref[1], atol=1e-11, rtol=0)


def test_blocked_results_do_not_depend_on_the_thread_count() -> None:
    c, h = bench.native_sel(13, 2), bench.native_hamiltonian(13)
    w = np.random.default_rng(5).uniform(0, 2 * np.pi, c.num_params)
    with qd.num_threads(1):
        one = qd.value_and_grad(c, h, w)
    two = qd.value_and_grad(c, h, w)
    np.testing.assert_allclose(one[0], two[0], atol=1e-12)
    np.testing.assert_allclose(one[1], two[1], atol=1e-12)


def test_blocked_path_is_taken_for_large_states(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = cpu_blocked.adjoint_pass

    def spy(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(cpu_blocked, "adjoint_pass", spy)
    c, h = bench.native_sel(13, 1), bench.native_hamiltonian(13)
    qd.grad(c, h, np.zeros(c.num_params))
    assert calls


@pytest.mark.parametrize(("n", "batch"), [(1, 1), (3, 2), (9, 1), (13, 3), (16, 1)])
def test_diagonal_expectation_matches_numpy(n: int, batch: int) -> None:
    rng = np.random.default_rng(n)
    state = rng.normal(size=(batch, 2**n)) + 1j * rng.normal(size=(batch, 2**n))
    diag = rng.normal(size=2**n)
    be = qd.get_backend("numpy")
    got = be.expval_diagonal(state, diag)
    np.testing.assert_allclose(got, (np.abs(state) ** 2) @ diag, rtol=1e-12)


def test_complex64_states_take_the_blocked_path_and_stay_close() -> None:
    c, h = bench.native_sel(13, 2), bench.native_hamiltonian(13)
    w = np.random.default_rng(7).uniform(0, 2 * np.pi, c.num_params)
    state = qd.state(c, w, dtype="complex64")
    assert state.dtype == np.complex64
    value, grad = qd.value_and_grad(c, h, w, dtype="complex64")
    ref_state = _reference(lambda: np.asarray(qd.state(c, w)))
    ref_value, ref_grad = _reference(lambda: qd.value_and_grad(c, h, w))
    np.testing.assert_allclose(state, ref_state, atol=2e-6)
    np.testing.assert_allclose(value, ref_value, atol=1e-4)
    np.testing.assert_allclose(grad, ref_grad, atol=1e-4)
    assert cpu_blocked.enabled(qd.get_backend("numpy"), np.zeros((1, 2**13), np.complex64))


@pytest.mark.parametrize("n", [3, 13])
def test_array_coefficients_in_z_sums(n: int) -> None:
    c = qd.Circuit(n)
    p = c.params(1)
    c.rx(p[0], wires=0)
    obs = qd.LinearCombination((np.array(0.5), np.array(1.0)), (qd.Z(0), qd.Z(1)))
    assert qd.expval(c, obs, [0.3]) == pytest.approx(0.5 * np.cos(0.3) + 1.0, abs=1e-12)
    value, grad = qd.value_and_grad(c, obs, [0.3])
    assert grad[0] == pytest.approx(-0.5 * np.sin(0.3), abs=1e-12)


@pytest.mark.parametrize("n", [3, 13])
def test_empty_parameter_batch_is_refused(n: int) -> None:
    c = qd.Circuit(n)
    p = c.params(1)
    c.rx(p[0], wires=0)
    with pytest.raises(qd.errors.ParameterError, match="at least one parameter set"):
        qd.state(c, np.zeros((0, 1)))
    with pytest.raises(qd.errors.ParameterError, match="at least one parameter set"):
        qd.grad(c, qd.Z(0), np.zeros((0, 1)))
