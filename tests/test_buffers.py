"""The reused host buffers of :mod:`qdiff.buffers`: what is kept, and that results never depend on it."""

from __future__ import annotations

import numpy as np
import pytest

import qdiff as qd
from qdiff import buffers
from qdiff.gradients import value_and_jacobian


@pytest.fixture(autouse=True)
def _empty_pool():
    buffers.clear()
    yield
    buffers.clear()


def test_a_returned_array_is_lent_again_and_only_once():
    a = np.empty((1, 1 << 17), dtype=np.complex128)
    buffers.give_back(a, a)
    assert buffers.held_bytes() == a.nbytes
    assert buffers.empty((1, 1 << 17), np.complex128) is a
    assert buffers.empty((1, 1 << 17), np.complex128) is not a
    assert buffers.held_bytes() == 0


def test_zeros_clears_a_lent_array():
    a = np.full((2, 1 << 16), np.nan + 1j, dtype=np.complex128)
    buffers.give_back(a)
    z = buffers.zeros((2, 1 << 16), np.complex128)
    assert z is a and not np.any(z)


@pytest.mark.parametrize("make", [
    lambda: np.empty(1 << 10, dtype=np.complex128),                  # small: the allocator's job
    lambda: np.empty((2, 1 << 17), dtype=np.complex128)[:, ::2],     # not contiguous
    lambda: np.empty(1 << 18, dtype=np.complex128).reshape(2, -1),   # a view: does not own its data
    lambda: np.empty(1 << 17, dtype=np.complex128).view(np.float64),  # a view of another dtype
    lambda: np.broadcast_to(np.empty(1 << 17, dtype=np.complex128), (2, 1 << 17)),  # read-only
])
def test_arrays_that_are_not_kept(make):
    buffers.give_back(make())
    assert buffers.held_bytes() == 0


def test_kept_arrays_are_bounded_per_shape_and_in_total(monkeypatch):
    arrays = [np.empty(1 << 17, dtype=np.complex128) for _ in range(4)]
    buffers.give_back(*arrays)
    assert buffers.held_bytes() == buffers.PER_KEY * arrays[0].nbytes
    buffers.clear()
    monkeypatch.setattr(buffers, "MAX_TOTAL_BYTES", arrays[0].nbytes)
    buffers.give_back(arrays[0], np.empty(1 << 18, dtype=np.complex128))
    assert buffers.held_bytes() == arrays[0].nbytes


def _rycz(n: int, layers: int) -> qd.Circuit:
    c = qd.Circuit(n)
    p = c.params(layers * n)
    for layer in range(layers):
        for w in range(n):
            c.ry(p[layer * n + w], w)
        for w in range(n - 1):
            c.cz(w, w + 1)
    return c


def test_gradients_do_not_depend_on_what_the_pool_held():
    """A gradient large enough to use the pool (2**16 amplitudes), after the pool was filled with NaN."""
    n = 16
    c = _rycz(n, 2)
    theta = np.random.default_rng(0).uniform(0, np.pi, c.num_params)
    h = qd.LinearCombination((0.5, -1.2, 0.7), (qd.X(0) @ qd.X(1), qd.Z(3), qd.Y(5) @ qd.Y(9)))
    want_state = qd.state(c, theta)
    buffers.clear()
    want_v, want_g = value_and_jacobian(c, [qd.Expval(h)], theta)
    assert buffers.held_bytes() > 0  # the state and the bra came back
    for _ in range(buffers.PER_KEY):
        buffers.give_back(np.full((1, 2**n), np.nan, dtype=np.complex128))
    for _ in range(2):
        got_v, got_g = value_and_jacobian(c, [qd.Expval(h)], theta)
        np.testing.assert_array_equal(got_v[0], want_v[0])
        np.testing.assert_array_equal(got_g[0], want_g[0])
    buffers.give_back(np.full((1, 2**n), np.nan, dtype=np.complex128))
    np.testing.assert_array_equal(qd.state(c, theta), want_state)


def test_device_samples_do_not_depend_on_what_the_pool_held():
    """The device gives a shot execution's state back (its results are all drawn from samples)."""
    import pennylane as qml
    import qdiff.devices  # noqa: F401

    n = 16
    w = np.random.default_rng(1).uniform(0, np.pi, n)

    def draw():
        @qml.set_shots(200)
        @qml.qnode(qml.device("qdiff.qubit", wires=n, seed=5))
        def circuit(w):
            for q in range(n):
                qml.RY(w[q], wires=q)
            for q in range(n - 1):
                qml.CZ(wires=[q, q + 1])
            return qml.sample(wires=range(n)), qml.expval(qml.Z(0))

        return circuit(w)

    want = draw()
    assert buffers.held_bytes() > 0
    buffers.clear()
    buffers.give_back(np.full((1, 2**n), np.nan, dtype=np.complex128))
    for _ in range(2):
        got = draw()
        np.testing.assert_array_equal(got[0], want[0])
        assert got[1] == want[1]
