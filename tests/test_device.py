"""The qdiff.qubit PennyLane device against default.qubit and lightning.qubit (numpy/autograd).

Covers registration and options, every native gate (and controlled/adjoint forms, and the matrix
fallback), every measurement analytic and with shots (formats included), shot vectors, native
broadcasting, wire labels, mid-circuit measurements, the adjoint Jacobian/VJP paths (values and
gradients, var and probs, a trainable QubitUnitary against finite differences, a 16-qubit Pauli sum)
and PennyLane-style errors. Interfaces (autograd/JAX/torch) are in test_device_interfaces.py.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pennylane as qml
import pytest
from pennylane import numpy as pnp
from pennylane.devices import ExecutionConfig
from pennylane.exceptions import DeviceError, QuantumFunctionError, WireError
from qdiff.devices import QDiffQubit
from qdiff.devices.convert import convert_observable, convert_tape
from scipy.stats import unitary_group

from qdiff.observables import LinearCombination, PauliWord, Product

warnings.filterwarnings("ignore", category=qml.exceptions.PennyLaneDeprecationWarning)

RNG = np.random.default_rng(1234)
U4 = unitary_group.rvs(4, random_state=2)
U2 = unitary_group.rvs(2, random_state=3)
H2 = (lambda a: a + a.conj().T)(RNG.normal(size=(4, 4)) + 1j * RNG.normal(size=(4, 4)))
INIT = (lambda v: v / np.linalg.norm(v))(RNG.normal(size=16) + 1j * RNG.normal(size=16))


def dev(wires=4, **kw):
    return qml.device("qdiff.qubit", wires=wires, **kw)


def dq(wires=4, **kw):
    return qml.device("default.qubit", wires=wires, **kw)


def both(fn, wires=4, **qnode_kw):
    """(qdiff result, default.qubit result) of the same quantum function."""
    return qml.QNode(fn, dev(wires), **qnode_kw), qml.QNode(fn, dq(wires), **qnode_kw)


def assert_nested_close(a, b, atol=1e-8):
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b)
        return
    if isinstance(a, (tuple, list)):
        assert isinstance(b, (tuple, list)) and len(a) == len(b), (a, b)
        for x, y in zip(a, b, strict=True):
            assert_nested_close(x, y, atol)
        return
    assert np.shape(a) == np.shape(b), (np.shape(a), np.shape(b))
    assert np.allclose(a, b, atol=atol), (a, b)


# ------------------------------------------------------------------------------------------------
# registration and options


def test_registered_through_entry_point():
    d = dev(3)
    assert isinstance(d, QDiffQubit) and d.name == "qdiff.qubit" and len(d.wires) == 3
    assert d.capabilities is not None and "RX" in d.capabilities.operations
    assert "one-shot" in d.capabilities.supported_mcm_methods


def test_options():
    d = dev(2, backend="auto", c_dtype=np.complex64, seed=7)
    assert d.backend == "auto" and d.c_dtype == np.complex64

    @qml.qnode(d)
    def c(x):
        qml.RX(x, 0)
        return qml.expval(qml.Z(0)), qml.state()

    e, s = c(0.4)
    assert np.isclose(e, np.cos(0.4), atol=1e-6) and s.dtype == np.complex64


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(foo=1), "foo"),
        (dict(backend="fortran"), "fortran"),
        (dict(c_dtype=np.float64), "c_dtype"),
        (dict(memory="swap"), "memory must be one of"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(DeviceError, match=match):
        dev(2, **kwargs)


def _rx_chain(d, n):
    @qml.qnode(d, diff_method="adjoint")
    def c(x):
        for w in range(n):
            qml.RX(x[w], w)
        return qml.expval(qml.Z(0)), qml.probs(wires=[0, 1, 2])

    return c


def test_device_refuses_what_does_not_fit_and_fits_when_allowed(monkeypatch):
    n = 20  # one complex128 state is 16 MiB
    x = pnp.array(np.linspace(0.1, 1.0, n), requires_grad=True)
    want = _rx_chain(dev(n), n)(x)
    want_jac = qml.jacobian(lambda v: qml.math.hstack(_rx_chain(dev(n), n)(v)))(x)
    monkeypatch.setenv("QDIFF_MAX_MEMORY", "70M")  # a forward fits; 9 stacked adjoint rows do not
    got = _rx_chain(dev(n), n)(np.asarray(x))  # not trainable: a plain execution, no derivatives
    np.testing.assert_allclose(np.hstack(got), np.hstack(want), atol=1e-12)
    with pytest.raises(DeviceError, match="needs about .* but only 70.0 MiB"):
        qml.jacobian(lambda v: qml.math.hstack(_rx_chain(dev(n), n)(v)))(x)
    fit = qml.jacobian(lambda v: qml.math.hstack(_rx_chain(dev(n, memory="fit"), n)(v)))(x)
    np.testing.assert_allclose(fit, want_jac, atol=1e-10)
    monkeypatch.setenv("QDIFF_MAX_MEMORY", "60M")  # below one 22-qubit state (64 MiB)
    with pytest.raises(DeviceError, match="a forward pass on 22 qubits"):
        _rx_chain(dev(22), 22)(np.linspace(0.1, 1.0, 22))


def test_seed_reproducible_and_generator():
    def run(seed):
        @qml.set_shots(50)
        @qml.qnode(dev(2, seed=seed))
        def c():
            qml.Hadamard(0)
            return qml.sample(wires=0)

        return c()

    assert np.array_equal(run(5), run(5))
    assert run(np.random.default_rng(3)).shape == (50, 1)


def test_unknown_device_option_in_config():
    with pytest.raises(DeviceError, match="bogus"):
        dev(2).setup_execution_config(ExecutionConfig(device_options={"bogus": 1}))


# ------------------------------------------------------------------------------------------------
# gates


def _gates():
    return [
        qml.Identity(0), qml.PauliX(0), qml.PauliY(1), qml.PauliZ(2), qml.Hadamard(0), qml.S(1), qml.T(2),
        qml.SX(0), qml.SWAP([0, 2]), qml.ISWAP([1, 0]), qml.SISWAP([0, 1]), qml.ECR([2, 1]),
        qml.RX(0.3, 0), qml.RY(0.4, 1), qml.RZ(0.5, 2), qml.PhaseShift(0.6, 1), qml.Rot(0.1, 0.2, 0.3, wires=2),
        qml.U1(0.3, 0), qml.U2(0.2, 0.4, wires=1), qml.U3(0.1, 0.5, 0.9, wires=2),
        qml.IsingXX(0.3, [0, 1]), qml.IsingYY(0.4, [2, 0]), qml.IsingZZ(0.5, [1, 2]), qml.IsingXY(0.6, [0, 2]),
        qml.MultiRZ(0.7, [0, 1, 3]), qml.PauliRot(0.8, "XIY", wires=[0, 1, 2]), qml.PauliRot(0.3, "ZY", wires=[3, 0]),
        qml.SingleExcitation(0.4, [0, 2]), qml.DoubleExcitation(0.5, [0, 1, 2, 3]),
        qml.GlobalPhase(0.3), qml.GlobalPhase(0.2, wires=[1]),
        qml.QubitUnitary(U4, wires=[2, 0]),
        qml.DiagonalQubitUnitary(np.exp(1j * np.array([0.1, 0.2, 0.3, 0.4])), wires=[1, 2]),
        qml.CNOT([2, 0]), qml.CY([0, 1]), qml.CZ([1, 2]), qml.CH([2, 1]), qml.CSWAP([1, 0, 2]),
        qml.Toffoli([2, 1, 0]), qml.MultiControlledX(wires=[0, 3, 1, 2], control_values=[0, 1, 1]),
        qml.ControlledPhaseShift(0.4, [1, 0]), qml.CRX(0.2, [0, 2]), qml.CRY(0.3, [2, 1]), qml.CRZ(0.4, [1, 0]),
        qml.CRot(0.1, 0.2, 0.3, wires=[0, 1]),
        qml.ControlledQubitUnitary(U2, wires=[2, 0, 1], control_values=[1, 0]),
        qml.adjoint(qml.S(0)), qml.adjoint(qml.Rot(0.1, 0.2, 0.3, wires=1)), qml.adjoint(qml.ECR([0, 1])),
        qml.ctrl(qml.SX(1), 0), qml.ctrl(qml.IsingXY(0.3, [1, 2]), [0], control_values=[0]),
        qml.ctrl(qml.GlobalPhase(0.4), 1), qml.ctrl(qml.adjoint(qml.U3(0.1, 0.2, 0.3, wires=0)), [1, 2]),
        qml.adjoint(qml.ctrl(qml.PauliRot(0.3, "XY", wires=[0, 1]), 2)),
    ]


def _fallback_gates():
    """Not qdiff gates: run from their matrix (no decomposition needed) or decomposed by PennyLane."""
    return [
        qml.PSWAP(0.3, [0, 1]), qml.PCPhase(0.4, dim=2, wires=[0, 1]), qml.SingleExcitationPlus(0.3, [0, 1]),
        qml.DoubleExcitationMinus(0.2, [0, 1, 2, 3]), qml.OrbitalRotation(0.3, wires=[0, 1, 2, 3]),
        qml.FermionicSWAP(0.3, [1, 2]), qml.QFT(wires=[0, 1, 2]),
        qml.BlockEncode(np.array([[0.1, 0.2], [0.3, 0.4]]), wires=[0, 1]),
    ]


def _state_after(device, op):
    @qml.qnode(device)
    def c():
        qml.StatePrep(INIT, wires=range(4))
        qml.apply(op)
        return qml.state()

    return c()


@pytest.mark.parametrize("op", _gates() + _fallback_gates(), ids=lambda op: op.name)
def test_gate_matches_default_qubit(op):
    assert np.allclose(_state_after(dev(), op), _state_after(dq(), op), atol=1e-10)


@pytest.mark.parametrize("op", _gates(), ids=lambda op: op.name)
def test_native_gates_are_not_decomposed(op):
    d = dev()
    program = d.preprocess_transforms(d.setup_execution_config())
    (tape,), _ = program([qml.tape.QuantumScript([op], [qml.expval(qml.Z(0))])])
    assert [o.name for o in tape.operations] == [op.name]


def test_gates_match_lightning():
    lq = qml.device("lightning.qubit", wires=4)
    for op in _gates()[:12] + [qml.CRot(0.1, 0.2, 0.3, wires=[0, 1]), qml.IsingXY(0.6, [0, 2])]:
        assert np.allclose(_state_after(dev(), op), _state_after(lq, op), atol=1e-10), op


# ------------------------------------------------------------------------------------------------
# analytic measurements


OBSERVABLES = [
    qml.Z(0), qml.X(1) @ qml.Y(2), qml.Hadamard(3), qml.Identity(1), qml.Hermitian(H2, wires=[2, 0]),
    qml.Projector([1, 0], wires=[0, 2]), qml.Projector(INIT[:4] / np.linalg.norm(INIT[:4]), wires=[1, 3]),
    qml.SparseHamiltonian(qml.Hamiltonian([0.5, -1.2], [qml.X(0) @ qml.Z(1), qml.Y(1)]).sparse_matrix(),
                          wires=[0, 1]),
    0.7 * qml.Z(0) + qml.X(1) @ qml.X(2) - 0.3 * qml.Y(3),
    qml.Hamiltonian([0.2, 0.9], [qml.Z(0) @ qml.Z(1), qml.Hermitian(H2, [2, 3])]),
    qml.prod(qml.Z(0), qml.X(1), qml.Z(0)) @ qml.Y(2) + qml.Identity(0),  # overlapping wires: Pauli algebra
    qml.s_prod(2.0, qml.Hermitian(H2, wires=[0, 1]) @ qml.Z(3)),
    qml.exp(qml.Z(0), 0.3) @ qml.X(1),  # no structure: dense Hermitian block on its 2 wires
]


def _random_circuit():
    qml.StatePrep(INIT, wires=range(4))
    qml.RX(0.4, 0)
    qml.CNOT([0, 1])
    qml.Rot(0.3, 0.2, 0.1, wires=2)
    qml.CRY(0.5, [2, 3])


@pytest.mark.parametrize("obs", OBSERVABLES, ids=lambda o: type(o).__name__)
def test_expval_var_match_default_qubit(obs):
    def c():
        _random_circuit()
        return qml.expval(obs), qml.var(obs) if not isinstance(obs, qml.SparseHamiltonian) else qml.expval(obs)

    a, b = both(c)
    assert_nested_close(a(), b())


def test_other_analytic_measurements_match_default_qubit():
    def c():
        _random_circuit()
        return (qml.probs(wires=[2, 0]), qml.probs(), qml.probs(op=qml.X(1)), qml.state(), qml.density_matrix([3, 1]),
                qml.purity([0, 1]), qml.vn_entropy([0]), qml.mutual_info([0], [2, 3]))

    a, b = both(c)
    assert_nested_close(a(), b())


def test_custom_measurement_transform():
    class Constant(qml.measurements.MeasurementTransform):
        def process(self, tape, device):
            return 1

    @qml.qnode(dev(1))
    def c():
        qml.X(0)
        return Constant(), qml.expval(qml.Z(0))

    assert c() == (1, -1.0)


def test_observables_stay_structured():
    wire_map = {w: w for w in range(20)}
    ham = qml.Hamiltonian([0.5] * 16, [qml.Z(i) for i in range(16)])
    obs = convert_observable(ham, wire_map)
    assert isinstance(obs, LinearCombination) and all(isinstance(t, PauliWord) for t in obs.terms)
    proj = convert_observable(qml.Projector([1, 0, 1], wires=[0, 5, 9]), wire_map)
    assert isinstance(proj, Product) and all(f.matrix.shape == (2, 2) for f in proj.factors)


def test_wire_labels():
    labels = ["a", 7, "q"]

    def c(x):
        qml.RX(x, "q")
        qml.CNOT(["q", "a"])
        return qml.expval(qml.Z("a")), qml.probs(wires=["a", 7]), qml.state()

    a = qml.QNode(c, qml.device("qdiff.qubit", wires=labels))
    b = qml.QNode(c, qml.device("default.qubit", wires=labels))
    assert_nested_close(a(0.7), b(0.7))


def test_device_without_wires():
    def c(x):
        qml.RX(x, 5)
        qml.CNOT([5, "b"])
        return qml.expval(qml.Z("b")), qml.probs(wires=[5, "b"])

    a = qml.QNode(c, qml.device("qdiff.qubit"))
    b = qml.QNode(c, qml.device("default.qubit"))
    assert_nested_close(a(0.7), b(0.7))


# ------------------------------------------------------------------------------------------------
# broadcasting


def test_broadcast_is_one_batched_simulation():
    x = np.array([0.1, 0.5, 0.9])

    def c(x, y):
        qml.RX(x, 0)
        qml.RY(y, 1)
        qml.CNOT([0, 1])
        qml.QubitUnitary(U4, wires=[1, 2])
        return qml.expval(qml.Z(1)), qml.probs(wires=[0, 2]), qml.state(), qml.var(qml.X(0) + qml.Z(2))

    d = dev(3)
    with qml.Tracker(d) as tracker:
        res = qml.QNode(c, d)(x, 0.3)
    assert tracker.totals["simulations"] == 1 and tracker.totals["batches"] == 1
    assert_nested_close(res, qml.QNode(c, dq(3))(x, 0.3))


def test_broadcast_state_prep_and_matrix():
    states = np.stack([INIT[:4] / np.linalg.norm(INIT[:4]), np.array([0, 1, 0, 0], complex)])

    def c(s):
        qml.StatePrep(s, wires=[0, 1])
        qml.QubitUnitary(np.stack([U4, U4.T]), wires=[0, 1])
        return qml.expval(qml.Z(0)), qml.probs(wires=[1])

    a, b = both(c, wires=2)
    assert_nested_close(a(states), b(states))


def _batch_size_case(k):
    """Operation list ``k``, built fresh (PennyLane caches an operation's batch size, even after an error)."""
    b3, b2 = np.array([0.1, 0.2, 0.3]), np.array([0.4, 0.5])
    u3 = np.stack([U4, U4.T, U4])
    return [
        [qml.RX(0.3, 0), qml.CNOT([0, 1])],
        [qml.RX(b3, 0), qml.Rot(0.1, b3, 0.2, 1)],
        [qml.adjoint(qml.Rot(b3, 0.1, 0.2, 0)), qml.ctrl(qml.RY(b3, 1), 0), qml.CRX(0.2, [0, 1])],
        [qml.StatePrep(np.stack([np.eye(4)[0], np.eye(4)[3]]).astype(complex), wires=[0, 1]),
         qml.RZ(pnp.array(b2, requires_grad=True), 1)],
        [qml.QubitUnitary(u3, wires=[0, 1]), qml.IsingXX(b3, [0, 1]), qml.PauliRot(b3, "XY", [0, 1])],
        [qml.QubitUnitary(U4, wires=[0, 1]), qml.GlobalPhase(b2), qml.Hadamard(0)],
        [qml.MultiRZ(b3, [0, 1]), qml.exp(qml.X(0) @ qml.Y(1), 0.3j)],
        [qml.RX(b3, 0), qml.RY(b2, 1)],  # mismatched: PennyLane's error
        [qml.Rot(b3, b2, 0.1, 0)],  # mismatched inside one operation
    ][k]


@pytest.mark.parametrize("k", range(9))
def test_tape_batch_size_agrees_with_pennylane(k):
    from qdiff.devices.convert import tape_batch_size

    def tape():
        return qml.tape.QuantumScript(_batch_size_case(k), [qml.expval(qml.Z(0))])

    try:
        expected = tape().batch_size
    except ValueError as exc:
        with pytest.raises(ValueError, match=str(exc).split(":")[0].split(",")[0]):
            tape_batch_size(tape())
        return
    assert tape_batch_size(tape()) == expected


# ------------------------------------------------------------------------------------------------
# shots


def test_shot_measurement_formats_match_default_qubit():
    def c():
        qml.Hadamard(0)
        qml.CNOT([0, 1])
        qml.RY(0.4, 2)
        return (qml.sample(wires=0), qml.sample(wires=[0, 1]), qml.sample(qml.X(2)), qml.sample(),
                qml.counts(wires=0), qml.counts(qml.Z(0)), qml.counts(all_outcomes=True),
                qml.counts(qml.Hermitian(np.diag([1.0, 2.0]), 0), all_outcomes=True),
                qml.expval(qml.Z(0)), qml.probs(wires=[1]), qml.var(qml.Y(2)))

    a = qml.set_shots(qml.QNode(c, dev(3, seed=1)), 40)()
    b = qml.set_shots(qml.QNode(c, dq(3, seed=1)), 40)()
    for x, y in zip(a, b, strict=True):
        if isinstance(x, dict):
            assert isinstance(y, dict) and type(next(iter(x))) is type(next(iter(y)))
            assert all(type(v) is type(next(iter(y.values()))) for v in x.values())
            assert sum(x.values()) == 40
        else:
            assert np.shape(x) == np.shape(y) and np.asarray(x).dtype == np.asarray(y).dtype
    assert np.array_equal(a[1][:, 0], a[1][:, 1]) and np.array_equal(a[0][:, 0], a[1][:, 0])


def test_shot_statistics():
    def c(x):
        qml.RX(x, 0)
        qml.CNOT([0, 1])
        qml.RY(0.3, 2)
        return (qml.expval(qml.Z(0) @ qml.Z(1)), qml.expval(0.5 * qml.X(2) + qml.Z(0)), qml.var(qml.X(2)),
                qml.probs(wires=[0, 2]), qml.expval(qml.Hermitian(H2 / np.linalg.norm(H2, 2), [1, 2])),
                qml.probs(op=qml.X(2)),
                qml.expval(qml.X(0) + qml.Z(0) @ qml.Z(1) - 0.4 * qml.Y(1) @ qml.X(2)))  # not qubit-wise commuting

    exact = qml.QNode(c, dev(3))(0.8)
    noisy = qml.set_shots(qml.QNode(c, dev(3, seed=11)), 40000)(0.8)
    for x, y in zip(noisy, exact, strict=True):
        assert np.allclose(x, y, atol=0.05)


def test_shot_vectors_and_broadcasting():
    def c(x):
        qml.RX(x, 0)
        return qml.expval(qml.Z(0)), qml.counts(wires=0), qml.sample(wires=0)

    x = np.array([0.0, np.pi])
    a = qml.set_shots(qml.QNode(c, dev(1)), [5, (3, 2)])(x)
    b = qml.set_shots(qml.QNode(c, dq(1)), [5, (3, 2)])(x)
    assert len(a) == len(b) == 3
    for ea, eb in zip(a, b, strict=True):
        assert np.allclose(ea[0], eb[0])
        assert isinstance(ea[1], list) and len(ea[1]) == 2 and ea[1][0] == eb[1][0]
        assert ea[2].shape == eb[2].shape


# ------------------------------------------------------------------------------------------------
# mid-circuit measurements


def _mcm_circuit(x):
    qml.RX(x, 0)
    qml.Hadamard(1)
    m0 = qml.measure(0)
    qml.cond(m0, qml.RY)(0.7, wires=1)
    m1 = qml.measure(1, reset=True)
    qml.cond(m0 & m1, qml.PauliX)(2)
    qml.cond(~m0, qml.RX)(0.4, wires=2)
    return qml.expval(qml.Z(2)), qml.probs(wires=[0, 2]), qml.expval(m0), qml.probs(op=[m0, m1])


def test_mcm_deferred_analytic_matches_default_qubit():
    a, b = both(_mcm_circuit, wires=5)
    assert_nested_close(a(1.1), b(1.1))


def test_mcm_one_shot_statistics():
    exact = qml.QNode(_mcm_circuit, dq(5))(1.1)
    f = qml.set_shots(qml.QNode(_mcm_circuit, dev(3, seed=2), mcm_method="one-shot"), 6000)
    for x, y in zip(f(1.1), exact, strict=True):
        assert np.allclose(x, y, atol=0.05)


def test_mcm_deferred_postselection_matches_default_qubit():
    def c(x):
        qml.RX(x, 0)
        qml.CNOT([0, 1])
        qml.RY(0.3, 1)
        qml.measure(0, postselect=1)
        return qml.expval(qml.Z(1)), qml.probs(wires=[0, 1])

    a, b = both(c, wires=3)
    assert_nested_close(a(np.array([1.1, 0.4])), b(np.array([1.1, 0.4])))
    e, _ = qml.QNode(c, dev(3))(0.0)  # postselecting a branch of probability zero
    assert np.isnan(e)
    f = qml.set_shots(qml.QNode(c, dev(3, seed=1), mcm_method="deferred", postselect_mode="fill-shots"), 5000)
    assert np.isclose(f(1.1)[0], b(1.1)[0], atol=0.05)


def test_mcm_one_shot_postselection():
    def c(x):
        qml.RX(x, 0)
        qml.CNOT([0, 1])
        qml.measure(0, postselect=1)
        return qml.expval(qml.Z(1)), qml.sample(wires=1)

    e, s = qml.set_shots(qml.QNode(c, dev(2, seed=4)), 500)(1.1)
    assert e == -1.0 and 0 < s.shape[0] < 500 and np.all(s == 1)


# ------------------------------------------------------------------------------------------------
# gradients (adjoint engine)


def _grad_ops(x, y):
    qml.RX(x[0], 0)
    qml.CNOT([0, 1])
    qml.Rot(x[1], y, x[2], wires=1)
    qml.CRY(y, wires=[1, 2])
    qml.IsingXX(x[0], wires=[0, 2])
    qml.PauliRot(x[2], "XY", wires=[0, 2])


def _grad_circuit(x, y):
    _grad_ops(x, y)
    return qml.expval(qml.Z(1)), qml.probs(wires=[0, 2]), qml.var(qml.X(0) @ qml.Y(2) + 0.3 * qml.Z(1))


def _stacked(f):
    return lambda x, y: qml.math.hstack(f(x, y))


@pytest.mark.parametrize(
    "kw",
    [
        dict(diff_method="adjoint"),
        dict(diff_method="adjoint", grad_on_execution=False),
        dict(diff_method="adjoint", device_vjp=True),
        dict(diff_method="device"),
        dict(diff_method="best"),
        dict(diff_method="parameter-shift"),
        dict(diff_method="finite-diff", gradient_kwargs={"h": 1e-7}),
    ],
    ids=lambda kw: "-".join(str(v) for v in kw.values() if not isinstance(v, dict)),
)
def test_jacobian_matches_default_qubit(kw):
    x = pnp.array([0.3, 0.5, 0.7], requires_grad=True)
    y = pnp.array(0.2, requires_grad=True)
    ours = qml.jacobian(_stacked(qml.QNode(_grad_circuit, dev(3), **kw)))(x, y)
    ref = qml.jacobian(_stacked(qml.QNode(_grad_circuit, dq(3), diff_method="backprop")))(x, y)
    atol = 1e-5 if kw["diff_method"] == "finite-diff" else 1e-8
    for a, b in zip(ours, ref, strict=True):
        assert np.allclose(a, b, atol=atol)


def test_parameter_shift_native_or_transform():
    """Analytic parameter-shift is served by qdiff (one batched run of all shifts); with gradient
    keyword arguments or shots it is PennyLane's transform. PennyLane 0.45's transform gets the
    variance of a non-involutory sum wrong (default.qubit and lightning.qubit alike); qdiff does not."""
    x = pnp.array([0.3, 0.5, 0.7], requires_grad=True)
    y = pnp.array(0.2, requires_grad=True)

    def var_only(x, y):
        _grad_ops(x, y)
        return qml.var(qml.X(0) @ qml.Y(2) + 0.3 * qml.Z(1))

    d = dev(3)
    with qml.Tracker(d) as tracker:
        ours = qml.grad(qml.QNode(var_only, d, diff_method="parameter-shift"))(x, y)
    assert tracker.totals["execute_and_derivative_batches"] == 1 and tracker.totals["executions"] == 1
    ref = qml.grad(qml.QNode(var_only, dq(3), diff_method="backprop"))(x, y)
    assert all(np.allclose(a, b) for a, b in zip(ours, ref, strict=True))
    q = qml.QNode(var_only, dev(3), diff_method="parameter-shift", gradient_kwargs={"shifts": [(np.pi / 2,)] * 4})
    cfg = qml.workflow.construct_execution_config(q)(x, y)
    assert cfg.gradient_method is qml.gradients.param_shift and not cfg.use_device_gradient


def test_jacobian_matches_lightning():
    def c(x):
        qml.RX(x[0], 0)
        qml.CNOT([0, 1])
        qml.RY(x[1], 1)
        qml.CRZ(x[2], [1, 0])
        return qml.expval(qml.Z(0) @ qml.X(1)), qml.expval(qml.Y(1))

    x = pnp.array([0.3, 0.5, 0.7], requires_grad=True)
    a = qml.jacobian(lambda x: qml.math.stack(qml.QNode(c, dev(2), diff_method="adjoint")(x)))(x)
    b = qml.jacobian(lambda x: qml.math.stack(qml.QNode(c, qml.device("lightning.qubit", wires=2),
                                                         diff_method="adjoint")(x)))(x)
    assert np.allclose(a, b, atol=1e-8)


def test_best_resolves_to_adjoint_and_shots_to_parameter_shift():
    def c(x):
        qml.RX(x, 0)
        return qml.expval(qml.Z(0))

    q = qml.QNode(c, dev(1), diff_method="best")
    cfg = qml.workflow.construct_execution_config(q)(0.3)
    assert cfg.gradient_method == "adjoint" and cfg.use_device_gradient and cfg.grad_on_execution
    cfg = qml.workflow.construct_execution_config(qml.set_shots(q, 100))(0.3)
    assert cfg.gradient_method is qml.gradients.param_shift and not cfg.use_device_gradient
    g = qml.grad(qml.set_shots(qml.QNode(c, dev(1, seed=3), diff_method="best"), 20000))(pnp.array(0.3))
    assert np.isclose(g, -np.sin(0.3), atol=0.05)


def test_jacobian_nesting_matches_default_qubit_adjoint():
    """compute_derivatives returns PennyLane's (measurement, parameter) nesting."""
    d, ref = dev(2), dq(2)
    cases = [
        ([qml.RX(0.3, 0)], [qml.expval(qml.Z(0))]),
        ([qml.RX(0.3, 0), qml.RY(0.2, 1)], [qml.expval(qml.Z(0))]),
        ([qml.RX(0.3, 0)], [qml.expval(qml.Z(0)), qml.expval(qml.Y(0))]),
        ([qml.RX(0.3, 0), qml.RY(0.2, 1)], [qml.expval(qml.Z(0)), qml.expval(qml.X(1))]),
    ]
    cfg = ExecutionConfig(gradient_method="adjoint")
    for ops, ms in cases:
        tape = qml.tape.QuantumScript(ops, ms)
        assert_nested_close(d.compute_derivatives(tape, d.setup_execution_config(cfg)),
                            ref.compute_derivatives(tape, ref.setup_execution_config(cfg)))


def test_grad_of_var_and_probs_with_adjoint():
    def c(x):
        qml.RX(x[0], 0)
        qml.CNOT([0, 1])
        qml.RY(x[1], 1)
        return qml.var(qml.X(1) + 0.5 * qml.Z(0))

    def p(x):
        qml.RX(x[0], 0)
        qml.CNOT([0, 1])
        qml.RY(x[1], 1)
        return qml.probs(wires=[1, 0])

    x = pnp.array([0.4, 1.1], requires_grad=True)
    for fn in (c,):
        assert np.allclose(qml.grad(qml.QNode(fn, dev(2), diff_method="adjoint"))(x),
                           qml.grad(qml.QNode(fn, dq(2), diff_method="backprop"))(x))
    assert np.allclose(qml.jacobian(qml.QNode(p, dev(2), diff_method="adjoint"))(x),
                       qml.jacobian(qml.QNode(p, dq(2), diff_method="backprop"))(x))
    loss = lambda q: (lambda x: q(x)[1] * 2 - q(x)[3])  # noqa: E731
    assert np.allclose(qml.grad(loss(qml.QNode(p, dev(2), diff_method="adjoint")))(x),
                       qml.grad(loss(qml.QNode(p, dq(2), diff_method="backprop")))(x))


def test_broadcast_gradients():
    def c(x, y):
        qml.RX(x, 0)
        qml.RY(y, 1)
        qml.CNOT([0, 1])
        return qml.expval(qml.Z(1))

    x = pnp.array([0.1, 0.5, 0.9], requires_grad=False)
    y = pnp.array(0.3, requires_grad=True)
    for kw in (dict(), dict(device_vjp=True)):
        d = dev(2)
        with qml.Tracker(d) as tracker:
            j = qml.jacobian(qml.QNode(c, d, diff_method="adjoint", **kw))(x, y)
        assert tracker.totals.get("simulations", 0) <= 1  # one batched forward (+ one batched sweep)
        assert np.allclose(j, qml.jacobian(qml.QNode(c, dq(2), diff_method="backprop"))(x, y))
    xt = pnp.array([0.1, 0.5, 0.9], requires_grad=True)
    loss = lambda q: (lambda x, y: qml.math.sum(q(x, y) ** 2))  # noqa: E731
    ref = qml.grad(loss(qml.QNode(c, dq(2), diff_method="backprop")))(xt, y)
    for kw in (dict(), dict(device_vjp=True)):
        got = qml.grad(loss(qml.QNode(c, dev(2), diff_method="adjoint", **kw)))(xt, y)
        assert all(np.allclose(a, b) for a, b in zip(got, ref, strict=True))


def test_trainable_qubit_unitary_matches_finite_differences():
    def c(u, x):
        qml.RX(x, 0)
        qml.Hadamard(1)
        qml.QubitUnitary(u, wires=[0, 1])
        return qml.expval(qml.Z(0) @ qml.X(1) + 0.5 * qml.Y(1))

    f = qml.QNode(c, dev(2), diff_method="adjoint")
    g_u, g_x = qml.grad(f)(pnp.array(U4, requires_grad=True), pnp.array(0.3, requires_grad=True))
    h = 1e-6
    fd = np.zeros((4, 4), complex)
    for i in range(4):
        for j in range(4):
            for step, unit in ((h, 1.0), (1j * h, 1j)):
                e = np.zeros((4, 4), complex)
                e[i, j] = step
                fd[i, j] += unit * (f(U4 + e, 0.3) - f(U4 - e, 0.3)) / (2 * h)  # dRe + i dIm
    assert np.allclose(g_u, np.conj(fd), atol=1e-6)  # autograd's convention: dRe - i dIm
    assert np.isclose(g_x, (f(U4, 0.3 + h) - f(U4, 0.3 - h)) / (2 * h), atol=1e-6)
    g_ref = qml.grad(qml.QNode(c, dq(2), diff_method="backprop"))(pnp.array(U4, requires_grad=True), 0.3)
    assert np.allclose(g_u, g_ref, atol=1e-8)


def test_sixteen_qubit_pauli_sum_adjoint():
    n = 16
    obs = qml.sum(*[qml.Z(i) for i in range(n)])

    def c(x):
        for i in range(n):
            qml.RX(x[i], i)
        for i in range(0, n - 1, 2):
            qml.CZ([i, i + 1])
        return qml.expval(obs)

    x = pnp.array(np.linspace(0.1, 1.6, n), requires_grad=True)
    f = qml.QNode(c, dev(n), diff_method="adjoint")
    assert np.isclose(f(x), np.sum(np.cos(x)))
    assert np.allclose(qml.grad(f)(x), -np.sin(x))
    tape = qml.workflow.construct_tape(f)(x)
    conv = convert_observable(tape.measurements[0].obs, {i: i for i in range(n)})
    assert isinstance(conv, LinearCombination) and len(conv.terms) == n


@pytest.mark.parametrize("n", [8, 13])  # 8: the compiled small-state program; 13: cache-blocked passes
def test_excitation_ansatz_with_a_mixed_pauli_sum_matches_default_qubit(n):
    """A UCC-style ansatz (Hartree-Fock state, single and double excitations with their Plus/Minus forms,
    shared parameters) and a random Hamiltonian of mixed X/Y/Z words: values to 1e-10, adjoint
    gradients to 1e-8 against default.qubit."""
    rng = np.random.default_rng(n)
    words = [qml.pauli.string_to_pauli_word("".join(rng.choice(list("IXYZ"), n))) for _ in range(40)]
    h = qml.dot(list(rng.normal(size=40)), words)
    wires = [[int(w) for w in rng.permutation(n)[:4]] for _ in range(6)]

    def c(x):
        qml.BasisState(np.array([1, 1, 1, 1] + [0] * (n - 4)), wires=range(n))
        for j, name in enumerate(["DoubleExcitation", "DoubleExcitationPlus", "DoubleExcitationMinus"] * 2):
            getattr(qml, name)(x[j % 4], wires=wires[j])
            qml.SingleExcitation(x[(j + 1) % 4], wires=wires[j][:2])
        return qml.expval(h)

    x = pnp.array(rng.uniform(-1, 1, 4), requires_grad=True)
    f, g = qml.QNode(c, dev(n), diff_method="adjoint"), qml.QNode(c, dq(n), diff_method="backprop")
    assert np.isclose(f(x), g(x), atol=1e-10, rtol=0)
    assert np.allclose(qml.grad(f)(x), qml.grad(g)(x), atol=1e-8, rtol=0)


def test_observable_parameters_get_zero_gradient_with_warning():
    def c(x, c0):
        qml.RX(x, 0)
        return qml.expval(qml.Hamiltonian(c0, [qml.Z(0), qml.X(0)]))

    with pytest.warns(UserWarning, match="not supported with the adjoint"):
        g = qml.grad(qml.QNode(c, dev(1), diff_method="adjoint"))(pnp.array(0.3), pnp.array([1.0, 2.0]))
    assert np.isclose(g[0], -np.sin(0.3)) and np.allclose(g[1], 0)


def _adjoint_warned(device, form, a):
    def c(x, a):
        qml.RX(x, 0)
        return qml.expval(form(a))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        qml.grad(qml.QNode(c, device, diff_method="adjoint"))(pnp.array(0.3), a)
    return any("not supported with the adjoint" in str(w.message) for w in caught)


@pytest.mark.parametrize("trainable", [True, False])
@pytest.mark.parametrize("form", [
    lambda a: qml.s_prod(a, qml.X(0)) + qml.Z(0) @ qml.Y(1),  # read from the Pauli sentence
    lambda a: qml.Hamiltonian([a, 0.5], [qml.X(0) @ qml.X(1), qml.Z(1)]),
    lambda a: qml.Hermitian(a * np.diag([1.0, -1.0]), wires=0) @ qml.Z(1),  # no Pauli sentence: its data
])
def test_trainable_observable_parameters_warn_like_default_qubit(form, trainable):
    a = pnp.array(0.7, requires_grad=trainable)
    warned = _adjoint_warned(dev(2), form, a)
    assert warned == _adjoint_warned(dq(2), form, a)
    # a product with a PennyLane tensor is trainable whatever ``a`` says, so the matrix form always warns
    assert warned == (trainable or "Hermitian" in form.__code__.co_names)


def test_convert_tape_maps_trainable_parameters():
    tape = qml.tape.QuantumScript([qml.RX(0.1, 0), qml.Rot(0.2, 0.3, 0.4, wires=1), qml.QubitUnitary(U2, 0)],
                                  [qml.expval(qml.Z(0))], trainable_params=[1, 3, 4])
    conv = convert_tape(tape, None, tape.trainable_params)
    assert conv.circuit.num_params == 2 and [s.kind for s in conv.slots] == ["const", "theta", "const", "theta",
                                                                             "matrix"]


# ------------------------------------------------------------------------------------------------
# errors


def test_wires_beyond_device():
    @qml.qnode(dev(2))
    def c():
        qml.RX(0.1, 5)
        return qml.expval(qml.Z(0))

    with pytest.raises(WireError, match="not found on the device"):
        c()


def test_adjoint_with_shots_is_refused():
    @qml.set_shots(100)
    @qml.qnode(dev(1), diff_method="adjoint")
    def c(x):
        qml.RX(x, 0)
        return qml.expval(qml.Z(0))

    with pytest.raises(QuantumFunctionError, match="adjoint"):
        qml.grad(c)(pnp.array(0.2, requires_grad=True))
    assert not dev(1).supports_derivatives(ExecutionConfig(gradient_method="adjoint"),
                                           qml.tape.QuantumScript([], [qml.expval(qml.Z(0))], shots=10))


def test_adjoint_unsupported_measurement():
    @qml.qnode(dev(1), diff_method="adjoint")
    def c(x):
        qml.RX(x, 0)
        return qml.state()

    with pytest.raises(QuantumFunctionError, match="does not support adjoint"):
        c(pnp.array(0.2, requires_grad=True))


def test_unsupported_operation_and_measurements():
    class NoMatrixOp(qml.operation.Operation):
        num_wires = 1

    @qml.qnode(dev(1))
    def c():
        NoMatrixOp(wires=0)
        return qml.expval(qml.Z(0))

    with pytest.raises(DeviceError, match="NoMatrixOp"):
        c()

    @qml.qnode(dev(1))
    def s():
        return qml.sample(wires=0)

    with pytest.raises(DeviceError, match="sample"):
        s()

    @qml.set_shots(10)
    @qml.qnode(dev(1))
    def st():
        return qml.state()

    with pytest.raises(DeviceError, match="state"):
        st()


def test_unsupported_mcm_method():
    @qml.qnode(dev(2), mcm_method="tree-traversal")
    def c():
        qml.measure(0)
        return qml.expval(qml.Z(0))

    with pytest.raises((DeviceError, QuantumFunctionError), match="tree-traversal"):
        c()


def test_capabilities_file_lists_the_gate_table():
    import tomllib
    from qdiff.devices.qubit import BASE_GATES

    from qdiff.gates import resolve_gate_name

    toml = tomllib.loads((Path(QDiffQubit.config_filepath)).read_text())["operators"]["gates"]
    assert set(toml) == set(BASE_GATES)
    for name in BASE_GATES:
        props = set(toml[name]["properties"])
        assert {"invertible", "controllable"} <= props, name
        if name in ("QubitUnitary", "ControlledQubitUnitary"):  # trainable matrices: device VJPs
            assert "differentiable" in props
            continue
        spec, _ = resolve_gate_name(name)
        assert ("differentiable" in props) == spec.parameterised, name


@pytest.mark.parametrize("name", ["FermionicSWAP", "SingleExcitationPlus", "SingleExcitationMinus",
                                  "DoubleExcitationPlus", "DoubleExcitationMinus"])
def test_new_native_gates_match_default_qubit_with_gradients(name):
    op_cls = getattr(qml, name)
    k = op_cls.num_wires

    def make(device):
        @qml.qnode(device, diff_method="adjoint" if device.name == "qdiff.qubit" else "backprop")
        def c(x):
            for w in range(k):
                qml.RY(0.3 + 0.2 * w, w)
            op_cls(x, wires=range(k))
            qml.ctrl(op_cls(0.5 * x, wires=range(k)), control=k)
            return qml.expval(qml.Z(0) @ qml.X(1) + 0.3 * qml.Y(k - 1))

        return c

    x = pnp.array(0.37, requires_grad=True)
    ours, ref = make(dev(k + 1)), make(qml.device("default.qubit", wires=k + 1))
    assert np.isclose(ours(x), ref(x), atol=1e-10)
    assert np.isclose(qml.grad(ours)(x), qml.grad(ref)(x), atol=1e-10)
    tape = qml.workflow.construct_tape(ours)(x)
    assert name in [op.name for op in tape.operations]
    program = dev(k + 1).preprocess_transforms()
    (expanded,), _ = program((tape,))
    assert name in [op.name for op in expanded.operations]  # kept native, not decomposed


@pytest.mark.parametrize("word", ["X", "Y", "Z", "IZI", "ZZ", "ZIZ", "XY", "IXI", "III"])
@pytest.mark.parametrize("wrap", ["plain", "adjoint", "ctrl"])
def test_pauli_rot_lowered_forms_match_default_qubit(word, wrap):
    k = len(word)

    def make(device):
        @qml.qnode(device, diff_method="adjoint" if device.name == "qdiff.qubit" else "backprop")
        def c(x):
            for w in range(k + 1):
                qml.Hadamard(w)
                qml.RY(0.2 + 0.3 * w, w)
            op = qml.PauliRot(x, word, wires=range(k))
            if wrap == "adjoint":
                qml.adjoint(op)
            elif wrap == "ctrl":
                qml.ctrl(op, control=k)
            return qml.expval(qml.X(0) @ qml.Y(k) + qml.Z(k - 1))

        return c

    x = pnp.array(0.61, requires_grad=True)
    ours, ref = make(dev(k + 1)), make(qml.device("default.qubit", wires=k + 1))
    assert np.isclose(ours(x), ref(x), atol=1e-10)
    assert np.isclose(qml.grad(ours)(x), qml.grad(ref)(x), atol=1e-10)


def test_qaoa_pauli_rotations_become_diagonal_and_one_qubit_gates():
    from qdiff.devices.convert import convert_tape

    tape = qml.tape.QuantumScript([qml.PauliRot(0.3, "ZZ", wires=[0, 2]), qml.PauliRot(0.4, "X", wires=[1]),
                                   qml.PauliRot(0.5, "IZ", wires=[0, 1]), qml.PauliRot(0.6, "XZ", wires=[0, 1])],
                                  [qml.expval(qml.Z(0))])
    conv = convert_tape(tape, qml.wires.Wires([0, 1, 2]))
    assert [(op.gate.name, op.wires) for op in conv.circuit.operations] == [
        ("MultiRZ", (0, 2)), ("RX", (1,)), ("RZ", (1,)), ("PauliRot", (0, 1))]


def test_decomposition_passes_large_observables_on_uncopied() -> None:
    """Decomposing a template must not copy a molecular-size Hamiltonian (PennyLane's decompose does)."""
    from pennylane.tape import QuantumScript

    h = qml.Hamiltonian([0.5, -0.2, 0.1], [qml.Z(0) @ qml.Z(1), qml.X(0) @ qml.Y(2), qml.Z(3)])
    weights = np.array([0.1, -0.2, 0.3])
    tape = QuantumScript([qml.AllSinglesDoubles(weights, wires=range(4), hf_state=np.array([1, 1, 0, 0]),
                                                singles=[[0, 2], [1, 3]], doubles=[[0, 1, 2, 3]])],
                         [qml.expval(h)])
    dev = qml.device("qdiff.qubit", wires=4)
    config = dev.setup_execution_config(ExecutionConfig(gradient_method="adjoint"))
    (new,), _ = dev.preprocess_transforms(config)((tape,))
    assert new.measurements[0] is tape.measurements[0]
    assert [op.name for op in new.operations] != [op.name for op in tape.operations]  # it was decomposed
    ref = qml.device("default.qubit", wires=4)

    def circuit(w: np.ndarray) -> object:
        qml.AllSinglesDoubles(w, wires=range(4), hf_state=np.array([1, 1, 0, 0]), singles=[[0, 2], [1, 3]],
                              doubles=[[0, 1, 2, 3]])
        return qml.expval(h)

    w = pnp.array(weights, requires_grad=True)
    got = qml.grad(qml.QNode(circuit, dev, diff_method="adjoint"))(w)
    want = qml.grad(qml.QNode(circuit, ref, diff_method="backprop"))(w)
    np.testing.assert_allclose(got, want, atol=1e-10)
