"""Thread control: native API and the device's ``threads`` option."""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
from pennylane.exceptions import DeviceError

import qdiff
from qdiff import threads
from qdiff.errors import ParameterError


def test_set_get_and_context_restore() -> None:
    before = qdiff.get_num_threads()
    with qdiff.num_threads(1):
        assert qdiff.get_num_threads() == 1
    assert qdiff.get_num_threads() == before
    with qdiff.num_threads(None):
        assert qdiff.get_num_threads() == before
    qdiff.set_num_threads(threads.max_threads())
    assert qdiff.get_num_threads() == threads.max_threads()
    qdiff.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "2", None])
def test_bad_thread_counts_are_refused(bad: object) -> None:
    with pytest.raises(ParameterError, match="threads"):
        qdiff.set_num_threads(bad)  # type: ignore[arg-type]


def test_more_threads_than_the_pool_is_refused_with_the_limit() -> None:
    with pytest.raises(ParameterError, match="NUMBA_NUM_THREADS"):
        qdiff.set_num_threads(threads.max_threads() + 1)


def test_device_threads_option_is_in_force_during_execution(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    original = threads.set_num_threads

    def spy(n: int) -> None:
        seen.append(n)
        original(n)

    monkeypatch.setattr(threads, "set_num_threads", spy)
    before = qdiff.get_num_threads()
    dev = qml.device("qdiff.qubit", wires=2, threads=1)
    ref = qml.device("default.qubit", wires=2)

    def circuit(x):
        qml.RX(x, wires=0)
        qml.CNOT(wires=[0, 1])
        return qml.expval(qml.Z(1))

    x = qml.numpy.array(0.4, requires_grad=True)
    value = qml.QNode(circuit, dev, diff_method="adjoint")(x)
    grad = qml.grad(qml.QNode(circuit, dev, diff_method="adjoint"))(x)
    assert value == pytest.approx(qml.QNode(circuit, ref)(x), abs=1e-12)
    assert grad == pytest.approx(-np.sin(0.4), abs=1e-12)
    assert seen and seen[0] == 1 and qdiff.get_num_threads() == before


@pytest.mark.parametrize("bad", [0, 1.5, "many"])
def test_device_bad_threads_option(bad: object) -> None:
    with pytest.raises(DeviceError, match="threads"):
        qml.device("qdiff.qubit", wires=1, threads=bad)
