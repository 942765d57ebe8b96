"""The adjoint gradient keeps a constant number of statevectors, whatever the number of parameters.

A 20-qubit circuit with 1020 trainable parameters (17 layers of Rot on every wire, CNOT rings) is
differentiated under ``tracemalloc`` (numpy and numba-allocated numpy arrays are traced); the peak of
memory allocated during the gradient must stay within 4 statevectors (16 MiB each) plus a small slack
for O(parameters) arrays. The gradient itself is checked against a directional finite difference.
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np

import qdiff
from qdiff import Circuit, X, Z

NUM_WIRES = 20
LAYERS = 17
STATE_BYTES = 16 * 2**NUM_WIRES  # complex128
SLACK_BYTES = 2**20  # O(parameters) arrays: theta, the gradient, per-gate derivative matrices


def _layered_circuit() -> Circuit:
    c = Circuit(NUM_WIRES)
    for layer in range(LAYERS):
        for w in range(NUM_WIRES):
            p = c.params(3)
            c.rot(p[0], p[1], p[2], wires=w)
        if layer % 2 == 0:
            for w in range(NUM_WIRES):
                c.cnot(w, (w + 1) % NUM_WIRES)
    return c


PRIMITIVES = ("apply_matrix", "apply_diagonal", "apply_permutation", "apply_pauli", "apply_pauli_rotation",
              "reduced_outer", "matrix_element", "inner", "expval_pauli", "probs")


def _temporaries_by_primitive(circuit: Circuit, obs, theta: np.ndarray, monkeypatch) -> dict[str, float]:
    """Largest memory (in statevectors) each backend primitive allocates beyond what is live at its call
    (for the failure message: which primitive makes state-size temporaries)."""
    backend = qdiff.get_backend("numpy")
    worst: dict[str, float] = {}

    def wrap(name):
        original = getattr(type(backend), name)

        def wrapped(self, *args, **kwargs):
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            result = original(self, *args, **kwargs)
            worst[name] = max(worst.get(name, 0.0), (tracemalloc.get_traced_memory()[1] - before) / STATE_BYTES)
            return result

        monkeypatch.setattr(type(backend), name, wrapped)

    for name in PRIMITIVES:
        if hasattr(type(backend), name):
            wrap(name)
    tracemalloc.start()
    try:
        qdiff.grad(circuit, obs, theta, "adjoint")
    finally:
        tracemalloc.stop()
        monkeypatch.undo()
    return {k: round(v, 2) for k, v in sorted(worst.items(), key=lambda kv: -kv[1])}


def test_adjoint_gradient_holds_at_most_four_statevectors(monkeypatch):
    c = _layered_circuit()
    assert c.num_params == 3 * NUM_WIRES * LAYERS >= 1000
    rng = np.random.default_rng(0)
    theta = rng.uniform(-np.pi, np.pi, c.num_params)
    obs = 0.7 * Z(0) @ Z(10) + 0.3 * X(19)
    start = time.perf_counter()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        grad = qdiff.grad(c, obs, theta, "adjoint")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - start
    assert grad.shape == (c.num_params,)
    if peak > 4 * STATE_BYTES + SLACK_BYTES:
        culprits = _temporaries_by_primitive(c, obs, theta, monkeypatch)
        raise AssertionError(
            f"adjoint gradient peaked at {peak / STATE_BYTES:.2f} statevectors ({peak:,} bytes; bound 4 + slack) "
            f"in {elapsed:.1f} s; besides the bra and ket, the primitives allocated up to (statevectors): {culprits}"
        )
    # the gradient is right: directional derivative against central finite differences (two forward passes)
    direction = rng.normal(size=c.num_params)
    direction /= np.linalg.norm(direction)
    h = 1e-4
    fd = (qdiff.expval(c, obs, theta + h * direction) - qdiff.expval(c, obs, theta - h * direction)) / (2 * h)
    assert abs(fd - grad @ direction) < 1e-6 * max(1.0, abs(fd)), (fd, grad @ direction)
    assert np.abs(grad).max() > 1e-6  # not trivially zero
