"""Regression tests: results never depend on a cache, on which path ran, or on arrays changed later.

Each test reproduces a bug that was once observable: a compiled program that kept a caller's array,
a per-circuit program cache that ignored the state preparation, and the device's operation-template
cache that skipped the validation of gate parameters.
"""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
from pennylane.exceptions import DeviceError

import qdiff as qd
from qdiff.errors import ParameterError

X = np.array([[0, 1], [1, 0]], dtype=complex)


def _both_paths(fn, monkeypatch: pytest.MonkeyPatch) -> tuple:
    """``fn()`` with the compiled kernels and with the per-gate numpy reference (QDIFF_KERNELS=numpy)."""
    fast = fn()
    with monkeypatch.context() as mp:
        mp.setenv("QDIFF_KERNELS", "numpy")
        reference = fn()
    return fast, reference


@pytest.mark.parametrize("inverse", [False, True])
def test_mutating_a_unitary_after_adding_it_changes_nothing(inverse: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    u = np.eye(2, dtype=complex)
    c = qd.Circuit(1)
    c.add("QubitUnitary", wires=(0,), hyper=u, inverse=inverse)
    first = qd.expval(c, qd.Z(0))
    u[:] = X  # the caller's array changes; the circuit holds its own frozen copy
    fast, reference = _both_paths(lambda: qd.expval(c, qd.Z(0)), monkeypatch)
    assert first == pytest.approx(1.0) and fast == pytest.approx(1.0) and reference == pytest.approx(1.0)
    with pytest.raises(ValueError):
        c.operations[0].hyper[0, 0] = 5  # and that copy is read-only


def test_mutating_state_prep_amplitudes_and_hermitian_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    amp = np.array([1, 0], dtype=complex)
    h = np.diag([1.0, -1.0]).astype(complex)
    c = qd.Circuit(1)
    c.state_vector(amp)
    obs = qd.Hermitian(h, 0)
    first = qd.expval(c, obs)
    amp[:] = [0, 1]
    h[:] = -h
    fast, reference = _both_paths(lambda: qd.expval(c, obs), monkeypatch)
    assert first == pytest.approx(1.0) and fast == pytest.approx(1.0) and reference == pytest.approx(1.0)


def test_setting_a_batched_state_prep_after_simulating_matches_a_fresh_circuit() -> None:
    amps = np.array([[1, 0], [0, 1], [np.sqrt(0.5), np.sqrt(0.5)]], dtype=complex)
    c = qd.Circuit(1)
    qd.state(c)  # compiles (and caches) the program of the empty circuit
    c.state_vector(amps)
    fresh = qd.Circuit(1)
    fresh.state_vector(amps)
    np.testing.assert_allclose(qd.state(c), qd.state(fresh), atol=1e-15)
    assert qd.state(c).shape == (3, 2)


def test_version_changes_with_every_change() -> None:
    c = qd.Circuit(2)
    seen = {c.version}
    for change in (lambda: c.basis_state([1], [0]), lambda: c.rx(0.1, 0), lambda: c.params(1),
                   lambda: setattr(c, "operations", c.operations[::-1])):
        change()
        assert c.version not in seen
        seen.add(c.version)


@pytest.mark.parametrize("bad", [np.nan, np.inf, np.array([[0.1, 0.2]])])
def test_device_template_cache_still_validates_parameters(bad) -> None:
    dev = qml.device("qdiff.qubit", wires=2)

    @qml.qnode(dev)
    def circuit(x):
        qml.RX(x, wires=0)
        return qml.expval(qml.PauliZ(0))

    assert circuit(0.3) == pytest.approx(np.cos(0.3))  # fills the template cache for RX on wire 0
    with pytest.raises((DeviceError, ParameterError, ValueError)):
        circuit(bad)


def test_appending_an_operation_validates_its_parameters() -> None:
    good = qd.Circuit(1).rx(0.2, 0).operations[0]
    from dataclasses import replace

    c = qd.Circuit(1)
    with pytest.raises(ParameterError):
        c.append(replace(good, params=(np.nan,)))
    with pytest.raises(ParameterError):
        c.append(replace(good, params=(0.1, 0.2)))
    assert c.operations == ()  # nothing half-applied
