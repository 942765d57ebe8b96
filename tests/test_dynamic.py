"""Mid-circuit measurements, resets, postselection and conditionals in the core (``qdiff.dynamic``).

Oracles: closed forms (Born probabilities, collapsed states written out by hand), the same circuit
without dynamic steps, the per-gate numpy reference for the unitary segments, and PennyLane's
default.qubit through the device for one-shot and deferred circuits (``test_device.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import kernel_mode

import qdiff as qd
from qdiff.dynamic import Conditional, DynamicCircuit, Gates, Measure, Postselect, run
from qdiff.errors import BackendError, ParameterError, WireError
from qdiff.simulate import final_state


def _bell_measured(reset: bool = False) -> DynamicCircuit:
    c = qd.Circuit(2)
    p = c.params(1)
    c.ry(p[0], 0).cnot(0, 1)
    return DynamicCircuit(c, [Gates(0, 2), Measure(0, "m0", reset)])


def test_measurement_outcomes_follow_born_and_collapse_each_row() -> None:
    theta = np.array([1.1])
    state, out = run(_bell_measured(), theta, batch=4000, rng=np.random.default_rng(5))
    p1 = np.sin(theta[0] / 2) ** 2
    assert abs(out["m0"].mean() - p1) < 4 * np.sqrt(p1 * (1 - p1) / 4000)
    expected = np.zeros((4000, 4), dtype=complex)
    expected[out["m0"] == 0, 0] = 1.0  # |00>
    expected[out["m0"] == 1, 3] = 1.0  # |11>
    np.testing.assert_allclose(np.abs(state), np.abs(expected), atol=1e-12)


def test_reset_returns_the_measured_wire_to_zero() -> None:
    state, out = run(_bell_measured(reset=True), [1.1], batch=200, rng=np.random.default_rng(1))
    assert 0 < out["m0"].sum() < 200
    ones = out["m0"] == 1
    np.testing.assert_allclose(np.abs(state[ones, 1]), 1.0, atol=1e-12)  # |11> -> |01>
    np.testing.assert_allclose(np.abs(state[~ones, 0]), 1.0, atol=1e-12)


def test_conditional_gates_run_only_on_the_rows_whose_condition_holds() -> None:
    # measure a |+> qubit, flip wire 1 where the outcome was 1: wire 1 then always equals the outcome
    c = qd.Circuit(2)
    c.h(0).x(1)
    dc = DynamicCircuit(c, [Gates(0, 1), Measure(0, "m"), Conditional(1, 2, lambda o: o["m"] == 1)])
    state, out = run(dc, batch=300, rng=np.random.default_rng(2))
    probs = np.abs(state) ** 2
    np.testing.assert_allclose(probs[out["m"] == 1, 3], 1.0, atol=1e-12)
    np.testing.assert_allclose(probs[out["m"] == 0, 0], 1.0, atol=1e-12)


def test_postselection_projects_and_renormalises_and_gives_nan_for_an_impossible_branch() -> None:
    c = qd.Circuit(3)
    p = c.params(2)
    c.ry(p[0], 0).cnot(0, 1).ry(p[1], 2)
    theta = np.array([0.7, 1.9])
    state, _ = run(DynamicCircuit(c, [Gates(0, 3), Postselect((1,), (1,))]), theta)
    full, _ = final_state(c, theta)
    keep = ((np.arange(8) >> 1) & 1) == 1
    expected = np.where(keep, full[0], 0) / np.linalg.norm(full[0][keep])
    np.testing.assert_allclose(state[0], expected, atol=1e-12)
    c0 = qd.Circuit(1)
    nan_state, _ = run(DynamicCircuit(c0, [Postselect((0,), (1,))]))
    assert np.isnan(nan_state).all()


def test_unitary_segments_run_through_the_executors_and_match_the_per_gate_reference() -> None:
    rng = np.random.default_rng(7)
    n = 6
    c = qd.Circuit(n)
    p = c.params(3 * n)
    for w in range(n):
        c.rot(p[3 * w], p[3 * w + 1], p[3 * w + 2], w)
    for w in range(n):
        c.cnot(w, (w + 1) % n)
    theta = rng.uniform(-np.pi, np.pi, 3 * n)
    steps = [Gates(0, n), Postselect((2, 4), (0, 1)), Gates(n, 2 * n)]
    fast, _ = run(DynamicCircuit(c, steps), theta)
    with kernel_mode("numpy"):
        ref, _ = run(DynamicCircuit(c, steps), theta)
    np.testing.assert_allclose(fast, ref, atol=1e-12)


def test_complex64_and_parameter_batches() -> None:
    theta = np.array([[0.3], [2.0], [1.1]])
    state, out = run(_bell_measured(), theta, dtype=np.complex64, rng=np.random.default_rng(0))
    assert state.dtype == np.complex64 and out["m0"].shape == (3,)
    np.testing.assert_allclose(np.linalg.norm(state, axis=1), 1.0, atol=1e-6)


def test_bad_schedules_and_calls_are_refused_before_running() -> None:
    c = qd.Circuit(2)
    c.h(0).cnot(0, 1)
    with pytest.raises(ParameterError, match="out of order"):
        DynamicCircuit(c, [Gates(1, 2), Gates(0, 1)])
    with pytest.raises(ParameterError, match="outside"):
        DynamicCircuit(c, [Gates(0, 3)])
    with pytest.raises(WireError):
        DynamicCircuit(c, [Measure(2, "m")])
    with pytest.raises(ParameterError, match="twice"):
        DynamicCircuit(c, [Measure(0, "m"), Measure(1, "m")])
    with pytest.raises(ParameterError, match="0 or 1"):
        DynamicCircuit(c, [Postselect((0,), (2,))])
    with pytest.raises(ParameterError, match="rng"):
        run(DynamicCircuit(c, [Gates(0, 2), Measure(0, "m")]))
    with pytest.raises(ParameterError, match="one bool per row"):
        run(DynamicCircuit(c, [Gates(0, 1), Conditional(1, 2, lambda o: np.ones(5, bool))]), batch=2)
    with pytest.raises(ParameterError, match="does not match"):
        run(_bell_measured(), np.zeros((3, 1)), batch=2, rng=np.random.default_rng(0))


def test_the_mpi_backend_is_refused_with_a_clear_error() -> None:
    class Fake:
        name = "mpi"

    with pytest.raises(BackendError, match="not supported on the MPI backend"):
        run(DynamicCircuit(qd.Circuit(1), []), backend=Fake())
