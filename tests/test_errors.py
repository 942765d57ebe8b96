"""Every bad input raises the documented :mod:`qdiff.errors` class, before any state is allocated, and
leaves the circuit unchanged."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import unitary_group

import qdiff
from qdiff import (
    Circuit,
    Counts,
    DensityMatrix,
    Expval,
    Hermitian,
    ParamRef,
    PauliWord,
    Probs,
    Sample,
    SparseHermitian,
    State,
    Var,
    X,
    Y,
    Z,
)
from qdiff.backends.numpy_backend import NumpyBackend
from qdiff.errors import (
    BackendError,
    DifferentiationError,
    MemoryLimitError,
    NotHermitianError,
    NotUnitaryError,
    ParameterError,
    QDiffError,
    ShotsError,
    StateError,
    UnsupportedOperationError,
    WireError,
)
from qdiff.gates import GATE_NAMES


def _base() -> Circuit:
    c = Circuit(3)
    p = c.params(2)
    c.h(0).rx(p[0], 1).cnot(0, 2).crz(2 * p[1] - 0.1, 2, 1)
    return c


def test_error_hierarchy():
    for cls, builtin in [(WireError, ValueError), (ParameterError, ValueError), (NotUnitaryError, ValueError),
                         (NotHermitianError, ValueError), (StateError, ValueError), (ShotsError, ValueError),
                         (UnsupportedOperationError, TypeError), (DifferentiationError, ValueError),
                         (BackendError, RuntimeError), (MemoryLimitError, MemoryError)]:
        assert issubclass(cls, QDiffError) and issubclass(cls, builtin)


# ------------------------------------------------------------------------------------------------
# building circuits: every bad add() raises and changes nothing

U2 = unitary_group.rvs(2, random_state=0)
BAD_ADDS = [
    # wires
    (WireError, ("RX", 0.1), {"wires": 3}),
    (WireError, ("RX", 0.1), {"wires": -1}),
    (WireError, ("RX", 0.1), {"wires": 1.5}),
    (WireError, ("RX", 0.1), {"wires": [1.0]}),
    (WireError, ("RX", 0.1), {"wires": True}),
    (WireError, ("RX", 0.1), {"wires": "a"}),
    (WireError, ("RX", 0.1), {"wires": None}),
    (WireError, ("RX", 0.1), {"wires": [0, 1]}),
    (WireError, ("CNOT",), {"wires": [0, 0]}),
    (WireError, ("CNOT",), {"wires": [0, 1, 2]}),
    (WireError, ("CNOT",), {"wires": [1]}),
    (WireError, ("Toffoli",), {"wires": [0, 1]}),
    (WireError, ("MultiControlledX",), {"wires": [0]}),
    (WireError, ("DoubleExcitation", 0.1), {"wires": [0, 1, 2]}),
    (WireError, ("Identity",), {"wires": []}),
    (WireError, ("RX", 0.1), {"wires": 0, "controls": [0]}),
    (WireError, ("RX", 0.1), {"wires": 0, "controls": [5]}),
    (WireError, ("RX", 0.1), {"wires": 0, "controls": [1, 1]}),
    (WireError, ("RX", 0.1), {"wires": 0, "controls": 1.5}),
    (WireError, ("RX", 0.1), {"wires": 0, "controls": [1], "control_values": [2]}),
    (WireError, ("RX", 0.1), {"wires": 0, "controls": [1], "control_values": [0.5]}),
    (WireError, ("RX", 0.1), {"wires": 0, "controls": [1], "control_values": [1, 0]}),
    (WireError, ("CNOT",), {"wires": [0, 1], "controls": [2], "control_values": [1, 1, 0]}),
    # parameters
    (ParameterError, ("RX",), {"wires": 0}),
    (ParameterError, ("RX", 0.1, 0.2), {"wires": 0}),
    (ParameterError, ("Rot", 0.1, 0.2), {"wires": 0}),
    (ParameterError, ("CNOT", 0.1), {"wires": [0, 1]}),
    (ParameterError, ("RX", np.nan), {"wires": 0}),
    (ParameterError, ("RX", np.inf), {"wires": 0}),
    (ParameterError, ("RX", -np.inf), {"wires": 0}),
    (ParameterError, ("RX", np.array([0.1, np.nan])), {"wires": 0}),
    (ParameterError, ("RX", 1 + 2j), {"wires": 0}),
    (ParameterError, ("RX", "0.1"), {"wires": 0}),
    (ParameterError, ("RX", None), {"wires": 0}),
    (ParameterError, ("RX", np.ones((2, 2))), {"wires": 0}),
    (ParameterError, ("RX", [[0.1], [0.2, 0.3]]), {"wires": 0}),
    (ParameterError, ("RX", ParamRef(-1)), {"wires": 0}),
    (ParameterError, ("RX", ParamRef(1.5)), {"wires": 0}),
    (ParameterError, ("RX", ParamRef(7, coeff=np.nan)), {"wires": 0}),
    (ParameterError, ("RX", ParamRef(7, offset=np.inf)), {"wires": 0}),
    (ParameterError, ("RX", ParamRef(7, coeff=1j)), {"wires": 0}),
    # gate data
    (ParameterError, ("RX", 0.1), {"wires": 0, "hyper": U2}),
    (ParameterError, ("QubitUnitary",), {"wires": 0}),
    (ParameterError, ("QubitUnitary",), {"wires": [0, 1], "hyper": U2}),
    (ParameterError, ("QubitUnitary",), {"wires": 0, "hyper": np.ones(2)}),
    (ParameterError, ("QubitUnitary",), {"wires": 0, "hyper": "abc"}),
    (ParameterError, ("QubitUnitary",), {"wires": 0, "hyper": np.array([[np.nan, 0], [0, 1]])}),
    (NotUnitaryError, ("QubitUnitary",), {"wires": 0, "hyper": 1.001 * U2}),
    (NotUnitaryError, ("QubitUnitary",), {"wires": 0, "hyper": np.array([[1, 1], [0, 1]])}),
    (NotUnitaryError, ("QubitUnitary",), {"wires": 0, "hyper": np.stack([U2, 2 * U2])}),
    (ParameterError, ("DiagonalQubitUnitary",), {"wires": 0, "hyper": [1, 1, 1, 1]}),
    (ParameterError, ("DiagonalQubitUnitary",), {"wires": 0, "hyper": [1, np.nan]}),
    (NotUnitaryError, ("DiagonalQubitUnitary",), {"wires": 0, "hyper": [1, 0.5]}),
    (ParameterError, ("PauliRot", 0.1), {"wires": [0, 1]}),
    (ParameterError, ("PauliRot", 0.1), {"wires": [0, 1], "hyper": "XQ"}),
    (ParameterError, ("PauliRot", 0.1), {"wires": [0, 1], "hyper": "XYZ"}),
    # names
    (UnsupportedOperationError, ("NotAGate", 0.1), {"wires": 0}),
]


@pytest.mark.parametrize("error,args,kwargs", BAD_ADDS, ids=[f"{e.__name__}-{a[0]}-{i}" for i, (e, a, _) in
                                                             enumerate(BAD_ADDS)])
def test_bad_add_raises_and_changes_nothing(error, args, kwargs):
    c = _base()
    theta = np.array([0.3, -0.7])
    before_ops, before_p, before_state = c.operations, c.num_params, qdiff.state(c, theta)
    with pytest.raises(error):
        c.add(*args, **kwargs)
    assert c.operations == before_ops and c.num_params == before_p and c.state_prep is None
    np.testing.assert_array_equal(qdiff.state(c, theta), before_state)


def test_unknown_gate_message_names_it_and_lists_gates():
    with pytest.raises(UnsupportedOperationError, match="'Frobnicate'") as info:
        Circuit(1).add("Frobnicate", wires=0)
    assert "RX" in str(info.value) and "CNOT" in str(info.value)
    with pytest.raises(AttributeError, match="frobnicate"):
        Circuit(1).frobnicate(0)
    for name in GATE_NAMES:  # every name resolves, in any case
        qdiff.gates.resolve_gate_name(name.upper())


def test_bad_circuit_construction_and_params():
    for bad in (0, -1, 1.5, "3", None):
        with pytest.raises(WireError):
            Circuit(bad)
    c = Circuit(2)
    for bad in (-1, 1.5, "2", None):
        with pytest.raises(ParameterError):
            c.params(bad)
    assert c.num_params == 0


def test_failed_append_and_extend_change_nothing():
    c = _base()
    ops = c.operations
    wide = Circuit(5).add("CNOT", wires=[0, 4]).operations[0]
    with pytest.raises(WireError):
        c.append(wide)
    with pytest.raises(WireError):
        c.extend([ops[0], wide])
    assert c.operations == ops


# ------------------------------------------------------------------------------------------------
# state preparation


def test_state_preparation_errors_and_normalize():
    amp = np.array([0.6, 0.8j])
    for bad, error in [([1, 0, 0], StateError), (np.ones(4) / 2, StateError), ([0.6, 0.6], StateError),
                       ([0, 0], StateError), ([np.nan, 1], ParameterError), (["a", "b"], ParameterError),
                       (np.ones((1, 1, 2)) / np.sqrt(2), StateError), ([[0.6, 0.8], [1, 1]], StateError)]:
        c = Circuit(2)
        with pytest.raises(error):
            c.state_vector(bad, wires=[1])
        assert c.state_prep is None
    with pytest.raises(StateError, match="normalize=True"):
        Circuit(1).state_vector([3, 4])
    np.testing.assert_allclose(qdiff.state(Circuit(1).state_vector([3, 4j], normalize=True)), [0.6, 0.8j])
    np.testing.assert_allclose(qdiff.state(Circuit(2).state_vector(10 * amp, wires=[0], normalize=True)),
                               [0.6, 0, 0.8j, 0], atol=1e-15)
    with pytest.raises(StateError):
        Circuit(1).state_vector([0, 0], normalize=True)
    with pytest.raises(WireError):
        Circuit(2).state_vector(amp, wires=[2])
    for bits, error in [([1, 2], StateError), ([1], StateError), ("x1", StateError), ([1.5, 0], StateError)]:
        c = Circuit(2)
        with pytest.raises(error):
            c.basis_state(bits)
        assert c.state_prep is None
    with pytest.raises(WireError):
        Circuit(2).basis_state([1], wires=[3])
    c = Circuit(2).h(0)
    with pytest.raises(StateError, match="before"):
        c.basis_state([1, 1])
    with pytest.raises(StateError):
        c.state_vector(amp, wires=[0])
    assert c.state_prep is None and len(c) == 1


# ------------------------------------------------------------------------------------------------
# parameters at execution


@pytest.mark.parametrize("theta,match", [
    (np.array([0.1, np.nan]), r"\(1,\)"),
    (np.array([np.inf, 0.1]), r"\(0,\)"),
    (np.array([[0.1, 0.2], [0.3, -np.inf]]), r"\(1, 1\)"),
    (np.array([0.1]), "2 trainable"),
    (np.array([0.1, 0.2, 0.3]), "2 trainable"),
    (np.zeros((2, 3)), "2 trainable"),
    (np.zeros((1, 1, 2)), "2 trainable"),
    (0.5, "2 trainable"),
    (np.array([0.1 + 1j, 0.2]), "real"),
    (["a", "b"], "real"),
    ([[0.1], [0.1, 0.2]], "shape"),
])
def test_bad_parameter_vectors(theta, match):
    c = _base()
    for fn in (qdiff.state, lambda c, t: qdiff.expval(c, Z(0), t), lambda c, t: qdiff.probs(c, params=t)):
        with pytest.raises(ParameterError, match=match):
            fn(c, theta)


def test_inconsistent_batch_sizes():
    c = Circuit(1)
    p = c.params(1)
    c.add("QubitUnitary", wires=0, hyper=np.stack([U2, U2]))
    c.rx(p[0], 0)
    with pytest.raises(ParameterError, match="batch"):
        qdiff.state(c, np.zeros((3, 1)))
    qdiff.state(c, np.zeros((2, 1)))
    qdiff.state(c, np.zeros((1, 1)))


@pytest.mark.parametrize("n", [3, 13])
def test_empty_parameter_batch_is_refused(n: int) -> None:
    c = Circuit(n)
    p = c.params(1)
    c.rx(p[0], wires=0)
    with pytest.raises(ParameterError, match="at least one parameter set"):
        qdiff.state(c, np.zeros((0, 1)))
    with pytest.raises(ParameterError, match="at least one parameter set"):
        qdiff.grad(c, Z(0), np.zeros((0, 1)))


def test_bad_dtype_and_backend():
    c = _base()
    for dt in (np.float64, "float32", "bogus", np.int64):
        with pytest.raises(ParameterError):
            qdiff.state(c, dtype=dt)
    with pytest.raises(BackendError):
        qdiff.state(c, backend="bogus")


# ------------------------------------------------------------------------------------------------
# observables and measurements


def test_observable_construction_errors():
    with pytest.raises(NotHermitianError):
        Hermitian(np.array([[0, 1], [0, 0]]), 0)
    with pytest.raises(NotHermitianError):
        Hermitian(np.array([[1, 1e-6j], [1e-6j, 1]]), 0)
    Hermitian(np.array([[1, 1e-12j], [-1e-12j + 1e-13, 1]]), 0)  # within tolerance
    with pytest.raises(ParameterError):
        Hermitian(np.eye(2), [0, 1])
    with pytest.raises(ParameterError):
        Hermitian(np.ones((2, 3)), 0)
    with pytest.raises(ParameterError):
        Hermitian(np.array([[np.nan, 0], [0, 1]]), 0)
    with pytest.raises(ParameterError):
        Hermitian("ab", 0)
    with pytest.raises(WireError):
        Hermitian(np.eye(4), [1, 1])
    with pytest.raises(NotHermitianError):
        SparseHermitian(sp.csr_matrix(np.array([[0, 1], [0, 0]])), [0])
    with pytest.raises(ParameterError):
        SparseHermitian(sp.eye(4), [0])
    with pytest.raises(ParameterError):
        SparseHermitian(sp.csr_matrix(np.array([[np.nan, 0], [0, 1]])), [0])
    with pytest.raises(WireError):
        SparseHermitian(sp.eye(4), [0, 0])
    with pytest.raises(NotHermitianError):
        X(0) * 1j
    with pytest.raises(NotHermitianError):
        (Z(0) + X(1)) * (2 + 1j)
    with pytest.raises(ParameterError):
        X(0) * np.nan
    with pytest.raises(ParameterError):
        PauliWord({0: "Q"})
    with pytest.raises(ParameterError):
        PauliWord("XZ")
    with pytest.raises(WireError):
        PauliWord.from_string("XZ", wires=[0])
    with pytest.raises(WireError):
        X(0) @ Y(0)
    with pytest.raises(WireError):
        Hermitian(np.eye(4), [0, 1]) @ Z(1)
    with pytest.raises(UnsupportedOperationError):
        X(0) + "a"


@pytest.mark.parametrize("measurement,error", [
    (Expval(Z(3)), WireError),
    (Expval(Hermitian(np.eye(2), -1)), WireError),
    (Var(Z(0) + X(5)), WireError),
    (Expval(SparseHermitian(sp.eye(16), [0, 1, 2, 3])), WireError),
    (Probs((0, 3)), WireError),
    (Probs((1, 1)), WireError),
    (Probs((0.5,)), WireError),
    (Probs(0), WireError),
    (DensityMatrix((2, 2)), WireError),
    (DensityMatrix((4,)), WireError),
    (DensityMatrix(None), WireError),
    (Expval(np.eye(2)), UnsupportedOperationError),
    (Expval(None), UnsupportedOperationError),
    (Var(1.0), UnsupportedOperationError),
    ("expval", UnsupportedOperationError),
    (Sample(), ShotsError),
    (Counts((0,)), ShotsError),
])
def test_bad_measurements(measurement, error):
    c = _base()
    with pytest.raises(error):
        qdiff.execute(c, measurement, np.zeros(2))
    with pytest.raises(error):  # also inside a list, after a good measurement
        qdiff.execute(c, [Expval(Z(0)), measurement], np.zeros(2))


@pytest.mark.parametrize("shots", [0, -5, 1.5, True, np.nan, np.inf, "10", [10]])
def test_bad_shots(shots):
    c = _base()
    with pytest.raises(ShotsError):
        qdiff.execute(c, Probs(), np.zeros(2), shots=shots)
    with pytest.raises(ShotsError):
        qdiff.sample(c, shots, params=np.zeros(2))


def test_analytic_only_and_unsampleable_measurements():
    c = _base()
    for m in (State(), DensityMatrix((0,))):
        with pytest.raises(ShotsError):
            qdiff.execute(c, m, np.zeros(2), shots=100)
    with pytest.raises(UnsupportedOperationError):
        qdiff.var(c, X(0) + Z(0), np.zeros(2), shots=100)
    with pytest.raises(UnsupportedOperationError):
        qdiff.expval(c, SparseHermitian(sp.eye(2), [0]), np.zeros(2), shots=100)
    with pytest.raises(ShotsError):
        qdiff.sample(c, 10, params=np.zeros(2), seed="x")
    assert qdiff.execute(c, Probs(), np.zeros(2), shots=10.0).shape == (8,)  # an integral float is fine


# ------------------------------------------------------------------------------------------------
# memory


def test_forty_qubit_state_raises_memory_limit_with_byte_count():
    c = Circuit(40).h(0).cnot(0, 39)
    for dtype, itemsize in ((None, 16), ("complex64", 8)):
        with pytest.raises(MemoryLimitError) as info:
            qdiff.state(c, dtype=dtype)
        assert f"{2**40 * itemsize:,} bytes" in str(info.value)
        assert "40 qubits" in str(info.value)
    with pytest.raises(MemoryLimitError):
        qdiff.expval(Circuit(40).basis_state([1, 0], wires=[0, 39]), Z(0))
    with pytest.raises(MemoryLimitError):
        qdiff.probs(Circuit(40).state_vector([0.6, 0.8], wires=[7]), [0])


def test_validation_comes_before_the_memory_check():
    c = Circuit(40)
    p = c.params(1)
    c.rx(p[0], 0)
    with pytest.raises(ParameterError):
        qdiff.state(c, np.array([np.nan]))
    with pytest.raises(WireError):
        qdiff.expval(c, Z(40), np.zeros(1))
    with pytest.raises(ShotsError):
        qdiff.execute(c, Probs(), np.zeros(1), shots=0)
    with pytest.raises(ShotsError):
        qdiff.execute(c, State(), np.zeros(1), shots=10)


@pytest.mark.parametrize("prep", [None, "basis", "amplitudes"])
def test_memory_limit_raised_before_allocating(monkeypatch, prep):
    limit = 2**20  # pretend only 1 MiB is free
    monkeypatch.setattr(NumpyBackend, "available_memory", lambda self: (limit, "a test's limit"))
    c = Circuit(22)  # a 64 MiB state
    if prep == "basis":
        c.basis_state([1], wires=[3])
    elif prep == "amplitudes":
        c.state_vector([0.6, 0.8], wires=[3])
    c.h(0)
    tracemalloc.start()
    try:
        with pytest.raises(MemoryLimitError) as info:
            qdiff.state(c)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < limit, peak
    text = str(info.value)
    assert f"{2**22 * 16:,} bytes" in text and f"{limit:,} bytes" in text and "a test's limit" in text


def test_batch_multiplies_the_memory_need(monkeypatch):
    monkeypatch.setattr(NumpyBackend, "available_memory", lambda self: (80 * 2**20, "a test's limit"))
    c = Circuit(21)  # 32 MiB, plus the returned copy: fits for one parameter set, not for two
    p = c.params(1)
    c.rx(p[0], 0)
    assert qdiff.state(c, np.zeros(1)).shape == (2**21,)
    with pytest.raises(MemoryLimitError, match=f"4 state vector\\(s\\) of {2**21 * 16:,} bytes"):
        qdiff.state(c, np.zeros((2, 1)))
