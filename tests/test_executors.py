"""The executor interface: selection as a pure function, and one conformance suite for every executor.

Every registered CPU executor runs the same circuit families (random circuits over the whole gate set
with controls, inverses and state preparation; StronglyEntanglingLayers; a QAOA ring) forward and in
the adjoint sweep, wherever it accepts them, against the reference executor on the per-gate numpy
primitives (``QDIFF_KERNELS=numpy``: no numba, no fusion). The MPI executor runs the same comparison
under ``mpiexec`` (``tests/mpi/checks.py``).
"""

from __future__ import annotations

from types import SimpleNamespace

import circuits
import numpy as np
import pytest
from conftest import kernel_mode

import qdiff as qd
from qdiff.backends import get_backend
from qdiff.engine import REFERENCE, Purpose, Request, executors, run_expval_grad, run_forward, select
from qdiff.errors import BackendError
from qdiff.gradients.adjoint import backward_sweep
from qdiff.program import program_of
from qdiff.simulate import initial_state

CPU_EXECUTORS = ("compiled-program", "blocked", "reference")


def _families(rng: np.random.Generator, n: int) -> list[tuple[str, qd.Circuit, np.ndarray]]:
    out = []
    for k in range(3):
        rc = circuits.random_circuit(rng, num_wires=n, depth=(8, 24), num_params=(1, 5))
        out.append((f"random-{k}", rc.circuit, rc.theta))
    two = circuits.random_circuit(rng, num_wires=n, depth=(8, 24), num_params=(1, 5), state_prep=False,
                                  names=[g for g in circuits.ALL_GATE_NAMES if g in TWO_QUBIT_OR_LESS])
    out.append(("random-two-qubit", two.circuit, two.theta))
    sel = qd.Circuit(n)
    p = sel.params(6 * n)
    for layer in range(2):
        for w in range(n):
            sel.rot(p[3 * (layer * n + w)], p[3 * (layer * n + w) + 1], p[3 * (layer * n + w) + 2], w)
        for w in range(n):
            sel.cnot(w, (w + layer + 1) % n)
    out.append(("sel-2", sel, rng.uniform(-np.pi, np.pi, 6 * n)))
    qaoa = qd.Circuit(n)
    g = qaoa.params(2)
    for w in range(n):
        qaoa.hadamard(w)
    for w in range(n):
        qaoa.ising_zz(g[0], w, (w + 1) % n)
    for w in range(n):
        qaoa.rx(g[1], w)
    out.append(("qaoa", qaoa, rng.uniform(-np.pi, np.pi, 2)))
    return out


TWO_QUBIT_OR_LESS = {"RX", "RY", "RZ", "PhaseShift", "Rot", "U3", "Hadamard", "PauliX", "PauliY", "PauliZ", "S", "T",
                     "SX", "CNOT", "CZ", "CY", "SWAP", "CRX", "CRY", "CRZ", "CRot", "IsingXX", "IsingYY", "IsingZZ",
                     "IsingXY", "ControlledPhaseShift", "ISWAP", "SingleExcitation"}


def _forward(name: str, circuit: qd.Circuit, theta: np.ndarray) -> np.ndarray | None:
    be = get_backend("numpy")
    program = program_of(circuit)
    state = initial_state(be, circuit, 1, np.complex128)
    if not executors()[name].runs(Request(be, program, (state,), Purpose.FORWARD)):
        return None
    run_forward(be, program, theta, state, executor=name)
    return state


def _sweep(name: str, circuit: qd.Circuit, theta: np.ndarray, ket: np.ndarray) -> np.ndarray | None:
    be = get_backend("numpy")
    bra = be.apply_pauli(ket, {0: "Z", circuit.num_wires - 1: "X"})  # <Z_0 X_last>
    if not executors()[name].runs(Request(be, program_of(circuit), (bra, ket), Purpose.SWEEP)):
        return None
    grad, _ = backward_sweep(be, circuit, theta, bra, ket.copy(), executor=name)
    return grad


def _observable(n: int) -> qd.Observable:
    return qd.Z(0) @ qd.X(n - 1) + 0.5 * qd.Y(1) - 0.25 * qd.Z(1) @ qd.Z(2)


def _expval_grad(name: str, circuit: qd.Circuit, theta: np.ndarray) -> tuple | None:
    be = get_backend("numpy")
    program, obs = program_of(circuit), _observable(circuit.num_wires)
    state = initial_state(be, circuit, 1, np.complex128)
    if not executors()[name].runs(Request(be, program, (state,), Purpose.EXPVAL_GRAD, observable=obs)):
        return None
    return run_expval_grad(be, program, theta, state, obs, executor=name)


@pytest.mark.parametrize("n", [3, 7, 13, 14])
def test_every_executor_matches_the_per_gate_numpy_reference(n: int) -> None:
    rng = np.random.default_rng(100 + n)
    ran: dict[str, int] = dict.fromkeys(CPU_EXECUTORS, 0)
    for family, circuit, theta in _families(rng, n):
        with kernel_mode("numpy"):
            ref_state = _forward("reference", circuit, theta)
            ref_grad = _sweep("reference", circuit, theta, ref_state)
            ref_value, ref_obs_grad = _expval_grad("reference", circuit, theta)
        for name in CPU_EXECUTORS:
            state = _forward(name, circuit, theta)
            if state is not None:
                np.testing.assert_allclose(state, ref_state, atol=1e-10, err_msg=f"{name} forward, {family}")
                ran[name] += 1
            grad = _sweep(name, circuit, theta, ref_state)
            if grad is not None:
                np.testing.assert_allclose(grad, ref_grad, atol=1e-9, err_msg=f"{name} sweep, {family}")
                ran[name] += 1
            one_call = _expval_grad(name, circuit, theta)
            if one_call is not None:
                np.testing.assert_allclose(one_call[0], ref_value, atol=1e-10, err_msg=f"{name} value, {family}")
                np.testing.assert_allclose(one_call[1], ref_obs_grad, atol=1e-9, err_msg=f"{name} grad, {family}")
                ran[name] += 1
    expected = {"reference"} | ({"compiled-program"} if n <= 12 else {"blocked"})
    assert {name for name, count in ran.items() if count} == expected, ran


def test_selection_is_a_function_of_backend_size_dtype_and_request() -> None:
    be = get_backend("numpy")
    small, large = qd.Circuit(4), qd.Circuit(14)
    for c in (small, large):
        c.rx(0.1, 0)
        c.cnot(0, 1)

    def pick(circuit: qd.Circuit, dtype: type = np.complex128, purpose: Purpose = Purpose.FORWARD,
             matrix_ops: tuple = (), backend: object = be) -> str:
        state = np.zeros((1, 2**circuit.num_wires), dtype=dtype)
        states = (state,) if purpose == Purpose.FORWARD else (state, state.copy())
        return select(Request(backend, program_of(circuit), states, purpose, matrix_ops)).name

    assert pick(small) == "compiled-program" and pick(small, purpose=Purpose.SWEEP) == "compiled-program"
    state = np.zeros((1, 16), dtype=np.complex128)
    for obs, expected in ((qd.Z(0) + qd.X(1), "compiled-program"), (qd.Hermitian(np.eye(2), 0), "reference")):
        assert select(Request(be, program_of(small), (state,), Purpose.EXPVAL_GRAD, observable=obs)).name == expected
    assert select(Request(be, program_of(large), (np.zeros((1, 2**14), complex),), Purpose.EXPVAL_GRAD,
                          observable=qd.Z(0))).name == "reference"  # forward and sweep are then blocked
    assert pick(large) == "blocked" and pick(large, purpose=Purpose.SWEEP) == "blocked"
    assert pick(large, np.complex64) == "blocked"  # blocked passes compute complex64 in double precision
    assert pick(small, np.complex64) == "reference"
    assert pick(small, purpose=Purpose.SWEEP, matrix_ops=(0,)) == "reference"  # only the reference returns dU
    assert pick(small, backend=SimpleNamespace(name="cupy")) == "reference"
    with kernel_mode("numpy"):
        assert pick(small) == "reference" and pick(large) == "reference"
    wide = qd.Circuit(14)
    wide.pauli_rot(0.3, "XYZXY", wires=(0, 1, 2, 3, 4))  # a trainable generator-differentiated gate
    assert pick(wide) == "blocked"


def test_naming_an_executor_that_cannot_run_the_request_is_an_error() -> None:
    be = get_backend("numpy")
    c = qd.Circuit(3)
    c.multi_rz(0.3, wires=(0, 1, 2))  # three targets: not for the compiled small-state program
    state = initial_state(be, c, 1, np.complex128)
    with pytest.raises(BackendError, match="cannot run"):
        run_forward(be, program_of(c), np.zeros(0), state, executor="compiled-program")
    with pytest.raises(BackendError, match="unknown executor"):
        run_forward(be, program_of(c), np.zeros(0), state, executor="fastest")
    run_forward(be, program_of(c), np.zeros(0), state, executor=REFERENCE.name)
    np.testing.assert_allclose(state[0, 0], np.exp(-0.15j))
