"""The executor interface and the one conformance suite for every CPU executor.

Every registered CPU executor ("compiled-program", "blocked", "reference") runs the same circuit
families (random circuits over the whole gate set with controls, inverses and state preparation;
StronglyEntanglingLayers; a QAOA ring) forward and in the adjoint sweep, wherever it accepts them,
against the reference executor on the per-gate numpy primitives (``QDIFF_KERNELS=numpy``: no numba, no
fusion); so do jacobians, vjps and states of a mixed circuit through the public API. Selection is a
pure function of backend, size, dtype and request, and naming an executor that cannot run a request is
an error. Then, per executor, against the same reference:

- compiled-program (small states): the one-call expval gradient over random circuits with Pauli-sum
  observables (Z terms folded into a diagonal, X/Y words, constants), and that this executor is the one
  chosen; a closed form.
- blocked (states of at least ``MIN_QUBITS``, 13, qubits): random 13-14 qubit circuits over the whole
  gate set (controls, adjoints, shared parameters, wide gates that run alone between blocked passes),
  forward and adjoint to 1e-12; StronglyEntanglingLayers fused into blocked passes; results independent
  of the thread count; the blocked path taken for large states, complex64 included.
- reference sweep: the one-pass adjoint step against its three separate steps.

The MPI executor runs the same comparison under ``mpiexec`` (``tests/mpi/checks.py``). The pass
scheduler is tested in ``test_schedule.py``, programs and spectral forms in ``test_program.py``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import circuits
import numpy as np
import pytest
from conftest import kernel_mode
from hypothesis import given, settings
from hypothesis import strategies as st

import qdiff as qd
from qdiff.backends import get_backend
from qdiff.backends.numba import blocked as cpu_blocked
from qdiff.engine import REFERENCE, Purpose, Request, executors, run_expval_grad, run_forward, select
from qdiff.errors import BackendError
from qdiff.gradients.adjoint import backward_sweep
from qdiff.program import program_of
from qdiff.simulate import initial_state
from qdiff.spectral import compressed_basis

_BENCH = Path(__file__).parents[1] / "benchmarks" / "circuits.py"
_spec = importlib.util.spec_from_file_location("bench_circuits", _BENCH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

CPU_EXECUTORS = ("compiled-program", "blocked", "reference")


# -- every executor against the per-gate reference -------------------------------------------------


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


def _mixed_circuit(n: int) -> qd.Circuit:
    c = qd.Circuit(n)
    p = c.params(3 * n + 3)
    for w in range(n):
        c.rot(p[3 * w], p[3 * w + 1], p[3 * w + 2], wires=w)
    for w in range(n):
        c.cnot(w, (w + 1) % n)
    k = 3 * n
    c.add("CRY", p[k], wires=[0, n - 1]).add("RZ", p[k + 1], wires=2, controls=[0, n - 2], control_values=[0, 1])
    c.add("IsingZZ", 2 * p[k + 2] + 0.1, wires=[1, 3]).add("U3", p[k], p[k + 1], p[k + 2], wires=3, inverse=True)
    c.add("PhaseShift", p[k + 1], wires=n - 1, inverse=True).add("IsingXY", p[k + 2], wires=[n - 1, 1], controls=[2])
    c.add("RX", -p[0], wires=1, controls=[3]).add("SWAP", wires=[0, n - 1]).add("S", wires=1, inverse=True)
    return c


def _public_api_results(n: int) -> list[np.ndarray]:
    c = _mixed_circuit(n)
    h = sum((qd.Z(i) for i in range(n)), 0) + 0.3 * qd.X(0) @ qd.Y(2)
    rng = np.random.default_rng(n)
    theta, batch = rng.normal(size=c.num_params), rng.normal(size=(3, c.num_params))
    ms = [qd.Expval(h), qd.Probs((1, 3))]
    out = [*qd.jacobian(c, ms, theta), *qd.jacobian(c, ms, batch), qd.state(c, theta), qd.state(c, batch)]
    out.append(qd.vjp(c, ms, batch, [np.ones(3), np.ones((3, 4))]))
    return [np.asarray(x) for x in out]


@pytest.mark.parametrize("n", [5, 14])  # 5: compiled-program; 14: blocked (forward and sweep)
def test_compiled_paths_match_numpy_reference(n: int) -> None:
    fast = _public_api_results(n)
    with kernel_mode("numpy"):
        reference = _public_api_results(n)
    for a, b in zip(fast, reference, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12, rtol=0)


# -- selection -------------------------------------------------------------------------------------


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


# -- compiled-program ------------------------------------------------------------------------------


def _pauli_sum(src: circuits.Source, n: int) -> qd.Observable:
    obs = src.real(-1, 1) * qd.Identity()
    for _ in range(src.integer(1, 4)):
        k = src.integer(1, n)
        word = {w: src.choice("XYZ" if src.coin() else "Z") for w in src.ordered_subset(range(n), k)}
        obs = obs + src.real(-2, 2) * qd.PauliWord(word)
    return obs


@st.composite
def small_cases(draw):
    rc = circuits.random_circuit(draw, num_wires=(1, 6), depth=(1, 14), num_params=(1, 5))
    obs = _pauli_sum(circuits.Source(draw), rc.num_wires)
    batch = draw(st.sampled_from([None, 3]))
    return rc, obs, batch


def _adjoint_value_and_grad(rc: circuits.RandomCircuit, obs: qd.Observable, theta: np.ndarray) -> tuple:
    return qd.value_and_grad(rc.circuit, obs, theta, method="adjoint")


@settings(max_examples=120, deadline=None)
@given(small_cases())
def test_one_call_gradient_matches_numpy_reference(case) -> None:
    rc, obs, batch = case
    theta = rc.theta if batch is None else rc.theta + np.linspace(0, 1, batch)[:, None]
    value, grad = _adjoint_value_and_grad(rc, obs, theta)
    with kernel_mode("numpy"):
        ref_value, ref_grad = _adjoint_value_and_grad(rc, obs, theta)
    np.testing.assert_allclose(value, ref_value, atol=1e-10)
    np.testing.assert_allclose(grad, ref_grad, atol=1e-10)
    names = {op.gate.name for op in rc.circuit.operations}
    wide = any((len(op.wires) > 2 and compressed_basis(op.gate.name, len(op.wires)) is None)
               or op.gate.hyper is not None for op in rc.circuit.operations)
    if not wide and not names & {"PauliRot", "GlobalPhase"}:
        state = np.zeros((1 if batch is None else batch, 2**rc.num_wires), dtype=np.complex128)
        request = Request(get_backend("numpy"), program_of(rc.circuit), (state,), Purpose.EXPVAL_GRAD,
                          observable=obs)
        assert select(request).name == "compiled-program", "the compiled one-call path was not chosen"


def _reuploading(n: int, x: np.ndarray) -> qd.Circuit:
    """A re-uploading classifier: broadcast inputs (batched constants) between trainable rotations."""
    c = qd.Circuit(n)
    p = c.params(3 * n + 1)
    for layer in range(2):
        for w in range(n):
            c.rx(x[:, w], wires=w)
            c.rot(p[3 * w], p[3 * w + 1] if layer else x[:, w] + 0.2, p[3 * w + 2], wires=w)
        for w in range(n - 1):
            c.cnot(w, w + 1)
    c.add("CRY", p[3 * n], wires=[0, n - 1]).add("IsingXX", 0.4, wires=[1, 2])
    return c


@pytest.mark.parametrize("rows", [1, 5])  # one theta for the whole batch, or one theta row per input
def test_broadcast_inputs_bind_in_the_one_call_gradient(rows: int) -> None:
    rng = np.random.default_rng(rows)
    n, batch = 4, 5
    c = _reuploading(n, rng.uniform(-1, 1, (batch, n)))
    theta = rng.uniform(-np.pi, np.pi, (rows, c.num_params))[0 if rows == 1 else slice(None)]
    obs = qd.Z(0) - 0.5 * qd.X(1) @ qd.Y(3)
    state = np.zeros((batch, 2**n), dtype=np.complex128)
    request = Request(get_backend("numpy"), program_of(c), (state,), Purpose.EXPVAL_GRAD, observable=obs)
    assert select(request).name == "compiled-program"
    value, grad = qd.value_and_grad(c, obs, theta, method="adjoint")
    states = qd.state(c, theta)
    with kernel_mode("numpy"):
        ref_value, ref_grad = qd.value_and_grad(c, obs, theta, method="adjoint")
        ref_states = qd.state(c, theta)
    np.testing.assert_allclose(value, ref_value, atol=1e-10)
    np.testing.assert_allclose(grad, ref_grad, atol=1e-10)
    np.testing.assert_allclose(states, ref_states, atol=1e-12)


def _excitation_circuit(n: int, rng: np.random.Generator) -> qd.Circuit:
    """A UCC-style ansatz: basis state, single and double excitations (plain, Plus/Minus, inverted,
    controlled, on wires in any order), shared and offset parameters."""
    c = qd.Circuit(n)
    p = c.params(6)
    c.basis_state([1, 1, 0, 0] + [0] * (n - 4), range(n))
    c.add("RY", p[5], wires=n - 1)
    for j, name in enumerate(["DoubleExcitation", "DoubleExcitationPlus", "DoubleExcitationMinus"] * 2):
        wires = [int(w) for w in rng.permutation(n)[:4]]
        ctrl = [w for w in range(n) if w not in wires][:1] if j == 4 else []
        c.add(name, 0.5 * p[j % 5] + 0.1 * j, wires=wires, controls=ctrl, inverse=j == 3)
        c.add("SingleExcitation", p[(j + 1) % 5], wires=[int(w) for w in rng.permutation(n)[:2]])
    c.add("DoubleExcitation", 0.37, wires=[0, 2, 1, 3])  # a constant one
    return c


@pytest.mark.parametrize("n", [4, 6, 9, 13])
def test_excitations_run_in_the_compiled_program_and_blocked_passes(n: int) -> None:
    rng = np.random.default_rng(n)
    c = _excitation_circuit(n, rng)
    obs = _observable(n)
    be = get_backend("numpy")
    expected = "compiled-program" if n < cpu_blocked.MIN_QUBITS else "blocked"
    if n >= cpu_blocked.MIN_QUBITS:  # the uncontrolled wide excitations run inside the blocked passes
        for adjoint in (False, True):
            plan = cpu_blocked.plan_of(program_of(c), adjoint)
            blocked = [bop for bp in plan.passes if bp.blocked for bop in bp.items]
            alone = [c.operations[bp.items[0]] for bp in plan.passes if not bp.blocked]
            assert sum(bop.code == cpu_blocked.SUB for bop in blocked) == 6
            assert all(op.controls for op in alone if op.gate.name.startswith("DoubleExcitation"))
    for theta in (rng.uniform(-np.pi, np.pi, 6), rng.uniform(-np.pi, np.pi, (3, 6))):
        state = initial_state(be, c, theta.shape[0] if theta.ndim == 2 else 1, np.complex128)
        for purpose, states in ((Purpose.FORWARD, (state,)), (Purpose.SWEEP, (state, state)),
                                (Purpose.EXPVAL_GRAD, (state,))):
            request = Request(be, program_of(c), states, purpose, observable=obs)
            if purpose != Purpose.EXPVAL_GRAD or expected == "compiled-program":
                assert select(request).name == expected, purpose
        fast = [qd.state(c, theta), *qd.value_and_grad(c, obs, theta, method="adjoint"),
                qd.jacobian(c, [qd.Expval(obs), qd.Probs((0, 1))], theta)]
        with kernel_mode("numpy"):
            ref = [qd.state(c, theta), *qd.value_and_grad(c, obs, theta, method="adjoint"),
                   qd.jacobian(c, [qd.Expval(obs), qd.Probs((0, 1))], theta)]
        for a, b in zip(fast[:3], ref[:3], strict=True):
            np.testing.assert_allclose(a, b, atol=1e-12)
        for a, b in zip(fast[3], ref[3], strict=True):
            np.testing.assert_allclose(a, b, atol=1e-12)


def test_one_call_gradient_closed_form() -> None:
    # <Z0 + 0.5 X1> after RX(a) on 0 and RY(b) on 1: cos a + 0.5 sin b
    c = qd.Circuit(2)
    p = c.params(2)
    c.rx(p[0], wires=0).ry(p[1], wires=1)
    a, b = 0.7, -1.3
    value, grad = qd.value_and_grad(c, qd.Z(0) + 0.5 * qd.X(1), [a, b])
    assert value == pytest.approx(np.cos(a) + 0.5 * np.sin(b), abs=1e-14)
    np.testing.assert_allclose(grad, [-np.sin(a), 0.5 * np.cos(b)], atol=1e-14)


# -- blocked ---------------------------------------------------------------------------------------
# States need at least ``MIN_QUBITS`` (13) qubits to take the blocked path, so the circuits here are
# 13-14 qubits wide, drawn over the whole gate set (controls, adjoints, shared parameters, wide gates
# that run alone between blocked passes).


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
    with kernel_mode("numpy"):
        ref_state = np.asarray(qd.state(c, batch))
        ref_value, ref_grad = qd.value_and_grad(c, obs, theta)
        ref_var_grad = qd.grad(c, qd.Var(obs), theta)
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
    with kernel_mode("numpy"):
        ref = (np.asarray(qd.state(c, batch)), qd.grad(c, h, batch))
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


def test_blocked_passes_called_from_several_threads_at_once_give_each_its_own_result() -> None:
    """Blocked passes run on shared worker threads: concurrent callers must not see each other's blocks."""
    from concurrent.futures import ThreadPoolExecutor

    c, h = bench.native_sel(13, 2), bench.native_hamiltonian(13)
    ws = [np.random.default_rng(s).uniform(0, 2 * np.pi, c.num_params) for s in range(4)]
    alone = [qd.value_and_grad(c, h, w) for w in ws]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda w: qd.value_and_grad(c, h, w), ws))
    for a, t in zip(alone, together, strict=True):
        np.testing.assert_allclose(t[0], a[0], atol=1e-12)
        np.testing.assert_allclose(t[1], a[1], atol=1e-12)
    assert not np.allclose(alone[0][1], alone[1][1])


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


def test_complex64_states_take_the_blocked_path_and_stay_close() -> None:
    c, h = bench.native_sel(13, 2), bench.native_hamiltonian(13)
    w = np.random.default_rng(7).uniform(0, 2 * np.pi, c.num_params)
    state = qd.state(c, w, dtype="complex64")
    assert state.dtype == np.complex64
    value, grad = qd.value_and_grad(c, h, w, dtype="complex64")
    with kernel_mode("numpy"):
        ref_state = np.asarray(qd.state(c, w))
        ref_value, ref_grad = qd.value_and_grad(c, h, w)
    np.testing.assert_allclose(state, ref_state, atol=2e-6)
    np.testing.assert_allclose(value, ref_value, atol=1e-4)
    np.testing.assert_allclose(grad, ref_grad, atol=1e-4)
    assert cpu_blocked.enabled(qd.get_backend("numpy"), np.zeros((1, 2**13), np.complex64))


# -- reference sweep: one-pass adjoint step --------------------------------------------------------


def test_fused_step_is_used_and_matches_three_steps() -> None:
    from qdiff.backends.numba.fused import adjoint_step

    be = qd.get_backend("numpy")
    rng = np.random.default_rng(0)
    n = 16
    bra = rng.normal(size=(2, 2**n)) + 1j * rng.normal(size=(2, 2**n))
    ket = rng.normal(size=(2, 2**n)) + 1j * rng.normal(size=(2, 2**n))
    u = np.linalg.qr(rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2)))[0]
    b2, k2 = bra.copy(), ket.copy()
    r = adjoint_step(bra, ket, u, 5, (2, 9), (1, 0))
    assert r is not None
    with kernel_mode("numpy"):
        be.apply_matrix(k2, u, (5,), (2, 9), (1, 0))
        r2 = be.reduced_outer(b2, k2, (5,), (2, 9), (1, 0))
        be.apply_matrix(b2, u, (5,), (2, 9), (1, 0))
    np.testing.assert_allclose(r, r2, atol=1e-9)
    np.testing.assert_allclose(ket, k2, atol=1e-13)
    np.testing.assert_allclose(bra, b2, atol=1e-13)
