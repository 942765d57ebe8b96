"""Statevector simulation against PennyLane's default.qubit and against dense matrix products.

Random circuits (tests/circuits.py) use the whole gate set with controls, control values, inverses,
shared ParamRefs and state preparations. Checked: equality with PennyLane to 1e-10, with a naive
dense simulation, norm preservation, ``circuit + circuit.adjoint() = identity``, batching (parameters,
gate data, initial states) equal to a loop, complex64 close to complex128, and each gate kernel alone.
"""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
from circuits import (
    ALL_GATE_NAMES,
    PL_ALIAS_BASE,
    GateRecord,
    ParamSpec,
    add_record,
    pennylane_op,
    pennylane_run,
    random_circuit,
)
from conftest import KERNEL_MODES, dense_circuit_state, embed, kernel_mode, random_circuits, random_state
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import unitary_group

import qdiff
from qdiff.backends import get_backend
from qdiff.circuit import Circuit, ParamRef
from qdiff.gates import GATES
from qdiff.simulate import apply_operation, final_state, initial_state

BE = get_backend("numpy")


@pytest.mark.parametrize("mode", KERNEL_MODES)
@settings(max_examples=250)
@given(rc=random_circuits(depth=(0, 20)))
def test_random_circuits_match_pennylane(rc, mode):
    with kernel_mode(mode):
        psi = qdiff.state(rc.circuit, rc.theta)
    assert psi.shape == (2**rc.num_wires,) and psi.dtype == np.complex128
    np.testing.assert_allclose(psi, rc.pennylane_state(), atol=1e-10)
    assert np.linalg.norm(psi) == pytest.approx(1.0, abs=1e-12)


# gates on one or two targets (any controls): circuits of only these run in the whole-circuit CPU executor
TWO_TARGET_NAMES = [n for n in ALL_GATE_NAMES if n not in ("PauliRot", "MultiRZ", "GlobalPhase", "Identity", "I",
                                                          "QubitUnitary", "DiagonalQubitUnitary", "DoubleExcitation")]


@settings(max_examples=100)
@given(rc=random_circuits(num_wires=(1, 13), depth=(1, 25), names=TWO_TARGET_NAMES, state_prep=False))
def test_one_and_two_target_circuits_match_pennylane(rc):
    np.testing.assert_allclose(qdiff.state(rc.circuit, rc.theta), rc.pennylane_state(), atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_large_states_match_reference_path_and_pennylane(seed):
    """16 qubits: the multi-threaded kernels against the numpy reference path and PennyLane."""
    rc = random_circuit(np.random.default_rng(seed), num_wires=16, depth=40, control_prob=0.4)
    psi = qdiff.state(rc.circuit, rc.theta)
    with kernel_mode("numpy"):
        np.testing.assert_allclose(psi, qdiff.state(rc.circuit, rc.theta), atol=1e-11)
    np.testing.assert_allclose(psi, rc.pennylane_state(), atol=1e-10)
    psi64 = qdiff.state(rc.circuit, rc.theta, dtype="complex64")
    np.testing.assert_allclose(psi64, psi, atol=1e-4)


def test_large_batches_equal_loop():
    """A batch of 64 on 10 qubits (2**16 amplitudes) takes the multi-threaded batched kernels."""
    rc = random_circuit(np.random.default_rng(5), num_wires=10, depth=30)
    thetas = np.random.default_rng(6).uniform(-3, 3, (64, rc.circuit.num_params))
    psi = qdiff.state(rc.circuit, thetas)
    for b in (0, 17, 63):
        np.testing.assert_allclose(psi[b], qdiff.state(rc.circuit, thetas[b]), atol=1e-12)
    with kernel_mode("numpy"):
        np.testing.assert_allclose(psi, qdiff.state(rc.circuit, thetas), atol=1e-11)


@pytest.mark.parametrize("mode", KERNEL_MODES)
@settings(max_examples=40)
@given(rc=random_circuits(num_wires=(1, 5), depth=(1, 10)))
def test_random_circuits_match_dense_reference(rc, mode):
    with kernel_mode(mode):
        psi = qdiff.state(rc.circuit, rc.theta)
    np.testing.assert_allclose(psi, dense_circuit_state(rc.circuit, rc.theta, rc.initial_state()), atol=1e-10)


@settings(max_examples=100)
@given(random_circuits(depth=(1, 15)))
def test_circuit_then_adjoint_is_identity(rc):
    c = rc.circuit.copy()
    c.extend(rc.circuit.adjoint().operations)
    np.testing.assert_allclose(qdiff.state(c, rc.theta), rc.initial_state(), atol=1e-10)
    # the state preparation alone gives the same initial state
    prep_only = Circuit(rc.num_wires, rc.circuit.num_params)
    prep_only.state_prep = rc.circuit.state_prep
    np.testing.assert_allclose(qdiff.state(prep_only, rc.theta), rc.initial_state(), atol=1e-12)


@pytest.mark.parametrize("mode", KERNEL_MODES)
@settings(max_examples=40)
@given(rc=random_circuits(num_wires=(1, 8)), batch=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
def test_batched_parameters_equal_loop(rc, batch, seed, mode):
    thetas = np.random.default_rng(seed).uniform(-np.pi, np.pi, (batch, rc.circuit.num_params))
    with kernel_mode(mode):
        psi = qdiff.state(rc.circuit, thetas)
        singles = [qdiff.state(rc.circuit, t) for t in thetas]
    assert psi.shape == (batch, 2**rc.num_wires)
    for b in range(batch):
        np.testing.assert_allclose(psi[b], singles[b], atol=1e-12)
    state, batched = final_state(rc.circuit, thetas)
    assert batched and state.shape == (batch, 2**rc.num_wires)


def test_batched_parameters_match_pennylane_broadcasting():
    rc = random_circuit(np.random.default_rng(3), num_wires=4, depth=20,
                        names=[n for n in ALL_GATE_NAMES if n not in ("QubitUnitary", "DiagonalQubitUnitary")])
    thetas = np.random.default_rng(4).uniform(-3, 3, (3, rc.circuit.num_params))
    np.testing.assert_allclose(qdiff.state(rc.circuit, thetas), rc.pennylane_state(thetas), atol=1e-10)


@pytest.mark.parametrize("mode", KERNEL_MODES)
@settings(max_examples=40)
@given(rc=random_circuits(num_wires=(1, 8)))
def test_complex64_agrees(rc, mode):
    with kernel_mode(mode):
        psi64 = qdiff.state(rc.circuit, rc.theta, dtype="complex64")
    assert psi64.dtype == np.complex64
    np.testing.assert_allclose(psi64, qdiff.state(rc.circuit, rc.theta), atol=2e-5)
    state, _ = final_state(rc.circuit, rc.theta, dtype=np.complex64)
    assert state.dtype == np.complex64


# ------------------------------------------------------------------------------------------------
# every gate kernel alone, on scattered wires, with controls, batched and inverted


def _record_on(name: str, rng: np.random.Generator, n: int, batch: int | None, inverse: bool, n_extra: int):
    base, nc = PL_ALIAS_BASE.get(name, (name, 0))
    spec = GATES[base]
    k = spec.num_wires if spec.num_wires is not None else int(rng.integers(0 if base == "GlobalPhase" else 1, 4))
    nc = 2 if nc == -1 else nc
    picked = [int(w) for w in rng.permutation(n)[: n_extra + nc + k]]
    controls, wires = tuple(picked[:n_extra]), tuple(picked[n_extra:])
    cvals = tuple(int(v) for v in rng.integers(0, 2, n_extra + nc)) if n_extra + nc else None
    params = [ParamSpec(index=i, coeff=float(rng.choice([-1.5, 1.0, 2.0])), offset=float(rng.uniform(-1, 1)))
              for i in range(spec.num_params)]
    hyper = None
    if base == "PauliRot":
        hyper = "".join(rng.choice(list("IXYZ"), k))
    elif base == "QubitUnitary":
        hyper = unitary_group.rvs(2**k, random_state=int(rng.integers(1 << 30)))
    elif base == "DiagonalQubitUnitary":
        hyper = np.exp(1j * rng.uniform(-3, 3, 2**k))
    theta = rng.uniform(-3, 3, (batch, 3) if batch else 3)
    return GateRecord(name, params, wires, controls, cvals, inverse, hyper), theta


@pytest.mark.parametrize("mode", KERNEL_MODES)
@pytest.mark.parametrize("name", ALL_GATE_NAMES)
@pytest.mark.parametrize("batch", [None, 3])
def test_each_gate_kernel_matches_dense_and_pennylane(name, batch, mode, rng):
    with kernel_mode(mode):
        _check_gate_kernel(name, batch, rng)


def _check_gate_kernel(name, batch, rng):
    n = 6
    for trial in range(6):
        rec, theta = _record_on(name, rng, n, batch, inverse=trial % 2 == 1, n_extra=trial % 3)
        c = Circuit(n, 3)
        add_record(c, [ParamRef(i) for i in range(3)], rec, trial)
        op = c.operations[0]
        psi = random_state(n, rng, batch=batch or 1)
        out = apply_operation(BE, psi.copy(), op, theta)
        m = op.matrix(theta)
        expected = np.einsum("...ij,...j->...i", embed_batched(m, op.all_wires, n), psi)
        np.testing.assert_allclose(out, expected, atol=1e-12)
        # apply_operation(inverse=True) applies the adjoint, and undoes the gate
        back = apply_operation(BE, out.copy(), op, theta, inverse=True)
        np.testing.assert_allclose(back, psi, atol=1e-12)
        np.testing.assert_allclose(apply_operation(BE, psi.copy(), op.adjoint(), theta),
                                   apply_operation(BE, psi.copy(), op, theta, inverse=True), atol=1e-13)
    # the last one through PennyLane too, from the |0..0> + Hadamard start
    c = Circuit(n, 3)
    for w in range(n):
        c.add("Hadamard", wires=w)
    add_record(c, [ParamRef(i) for i in range(3)], rec, 0)

    def qfunc(th):
        for w in range(n):
            qml.Hadamard(w)
        pennylane_op(rec, th)

    theta1 = theta[-1] if batch else theta
    ref = pennylane_run(qfunc, n, [qml.state()], theta1)[0]
    np.testing.assert_allclose(qdiff.state(c, theta1), ref, atol=1e-10)


def embed_batched(m: np.ndarray, wires, n: int) -> np.ndarray:
    if m.ndim == 2:
        return embed(m, wires, n)
    return np.stack([embed(mb, wires, n) for mb in m])


# ------------------------------------------------------------------------------------------------
# batched gate data and initial states


def test_batched_qubit_unitary_and_constants_equal_loop(rng):
    us = np.stack([unitary_group.rvs(4, random_state=s) for s in range(3)])
    diag = np.exp(1j * rng.uniform(-3, 3, (3, 2)))
    angles = rng.uniform(-3, 3, 3)
    amps = random_state(2, rng, batch=3)

    def build(i=None):
        pick = (lambda a: a) if i is None else (lambda a: a[i])
        c = Circuit(3)
        c.state_vector(pick(amps), wires=[2, 0])
        c.add("QubitUnitary", wires=[1, 2], hyper=pick(us))
        c.add("RX", pick(angles), wires=0, controls=[1], control_values=[0])
        c.add("DiagonalQubitUnitary", wires=[0], hyper=pick(diag), inverse=True)
        return c

    psi = qdiff.state(build())
    assert psi.shape == (3, 8)
    for i in range(3):
        single = qdiff.state(build(i))
        np.testing.assert_allclose(psi[i], single, atol=1e-12)
        rho0 = np.zeros(8, complex)
        ref = dense_circuit_state(build(i), np.zeros(0), _prep_dense(amps[i], [2, 0], 3, rho0))
        np.testing.assert_allclose(single, ref, atol=1e-12)


def _prep_dense(amp, wires, n, out):
    for j, a in enumerate(amp):
        bits = [0] * n
        for pos, w in enumerate(wires):
            bits[w] = (j >> (len(wires) - 1 - pos)) & 1
        out[int("".join(map(str, bits)), 2)] = a
    return out


def test_batch_of_one_keeps_the_batch_axis(rng):
    c = Circuit(2)
    p = c.params(1)
    c.rx(p[0], 0).cnot(0, 1)
    assert qdiff.state(c, np.array([[0.3]])).shape == (1, 4)
    assert qdiff.state(c, np.array([0.3])).shape == (4,)


def test_state_preparations_match_pennylane(rng):
    amp = random_state(2, rng)
    c = Circuit(4).state_vector(amp, wires=[3, 1])
    ref = circuits_run(lambda _: qml.StatePrep(amp, wires=[3, 1]), 4)
    np.testing.assert_allclose(qdiff.state(c), ref, atol=1e-12)
    c = Circuit(4).basis_state([1, 0, 1], wires=[2, 0, 3])
    ref = circuits_run(lambda _: qml.BasisState(np.array([1, 0, 1]), wires=[2, 0, 3]), 4)
    np.testing.assert_allclose(qdiff.state(c), ref, atol=1e-12)
    c = Circuit(3).basis_state([0, 1, 1])
    assert qdiff.state(c)[0b011] == 1
    full = random_state(3, rng)
    np.testing.assert_allclose(qdiff.state(Circuit(3).state_vector(full)), full, atol=1e-15)
    np.testing.assert_allclose(qdiff.state(Circuit(3).state_vector(3 * full, normalize=True)), full, atol=1e-15)


def circuits_run(qfunc, n):
    return pennylane_run(qfunc, n, [qml.state()])[0]


def test_initial_state_is_fresh_per_batch(rng):
    c = Circuit(2).basis_state([1, 0])
    st0 = initial_state(BE, c, 3, np.complex128)
    assert st0.shape == (3, 4)
    np.testing.assert_array_equal(st0, np.tile([0, 0, 1, 0], (3, 1)))


# ------------------------------------------------------------------------------------------------
# circuit building API


def test_param_ref_arithmetic():
    theta = np.array([0.3, -1.2])
    p = Circuit(1).params(2)
    cases = [
        (2 * p[1] + 0.5, 2 * -1.2 + 0.5),
        (p[1] * 2 - 0.5, 2 * -1.2 - 0.5),
        (0.5 - p[0], 0.5 - 0.3),
        (-(p[0] + 1) * 3, -(0.3 + 1) * 3),
        ((p[0] + 1) / 4, (0.3 + 1) / 4),
        (1 + p[0], 1.3),
        (p[-1], -1.2),
    ]
    for ref, value in cases:
        assert isinstance(ref, ParamRef)
        assert ref.value(theta) == pytest.approx(value)
        assert ref.value(np.stack([theta, theta]))[1] == pytest.approx(value)
    assert [r.index for r in p[0:2]] == [0, 1]
    with pytest.raises(IndexError):
        p[2]


def test_shared_parameters_and_doc_example_match_pennylane():
    c = Circuit(2)
    p = c.params(3)
    c.h(0).rx(p[0], 0).cnot(0, 1).rot(p[0], p[1], p[2], wires=1)
    c.crz(2 * p[2] - 0.3, 1, 0).pauli_rot(p[1], "XY", wires=[0, 1]).qubit_unitary(
        unitary_group.rvs(2, random_state=1), wires=[1])
    u = c.operations[-1].hyper
    theta = np.array([0.4, -1.1, 2.3])

    def qfunc(t):
        qml.Hadamard(0)
        qml.RX(t[0], 0)
        qml.CNOT([0, 1])
        qml.Rot(t[0], t[1], t[2], wires=1)
        qml.CRZ(2 * t[2] - 0.3, wires=[1, 0])
        qml.PauliRot(t[1], "XY", wires=[0, 1])
        qml.QubitUnitary(u, wires=[1])

    np.testing.assert_allclose(qdiff.state(c, theta), pennylane_run(qfunc, 2, [qml.state()], theta)[0],
                               atol=1e-12)
    assert c.num_params == 3 and len(c) == 7


def test_param_refs_beyond_reserved_grow_num_params():
    c = Circuit(1)
    c.rx(ParamRef(4), 0)
    assert c.num_params == 5
    c2 = c.adjoint()
    assert c2.num_params == 5 and c2.operations[0].inverse


def test_copy_is_independent():
    c = Circuit(2).h(0)
    d = c.copy().cnot(0, 1)
    assert len(c) == 1 and len(d) == 2


def test_ten_qubit_ghz_state():
    c = Circuit(10).h(0)
    for w in range(9):
        c.cnot(w, w + 1)
    psi = qdiff.state(c)
    expected = np.zeros(2**10)
    expected[0] = expected[-1] = 1 / np.sqrt(2)
    np.testing.assert_allclose(psi, expected, atol=1e-14)


def test_backend_argument_accepts_object(rng):
    rc = random_circuit(rng, num_wires=3, depth=8)
    np.testing.assert_allclose(qdiff.state(rc.circuit, rc.theta, backend=BE), qdiff.state(rc.circuit, rc.theta))


def _rebuilt(c: Circuit) -> Circuit:
    """A fresh circuit with the same content (no cached compiled program)."""
    fresh = Circuit(c.num_wires, c.num_params)
    fresh.state_prep = c.state_prep
    fresh.operations = list(c.operations)
    return fresh


@pytest.mark.parametrize("mode", KERNEL_MODES)
def test_compiled_program_follows_circuit_changes(mode, rng):
    """Simulating, then changing the circuit (add, replace, pop, new parameters, state prep), re-simulates."""
    rc = random_circuit(rng, num_wires=4, depth=12)
    c, theta = rc.circuit, rc.theta
    with kernel_mode(mode):
        def check(t=theta):
            for dtype in (None, "complex64", None):
                for th in (t, np.stack([t, t[::-1]])):
                    got = qdiff.state(c, th, dtype=dtype)
                    np.testing.assert_allclose(got, qdiff.state(_rebuilt(c), th, dtype=dtype), atol=1e-6)

        check()
        c.add("RY", 0.3, wires=2, controls=[0], control_values=[0])
        check()
        c.operations = (Circuit(4).add("CRX", 1.1, wires=[3, 1]).operations[0],) + c.operations[1:]
        check()
        c.operations = c.operations[:-1]
        check()
        p = c.params(1)
        c.rz(2 * p[0], 1)
        check(np.append(theta, 0.7))
        c.operations = c.operations[::-1]
        check(np.append(theta, 0.7))
