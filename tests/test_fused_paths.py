"""Compiled/fused CPU paths (whole-circuit executor, fused adjoint step) agree with the numpy reference.

The reference is the per-gate numpy code (``QDIFF_KERNELS=numpy``): unfused, uncompiled, independent.
"""

from __future__ import annotations

import numpy as np
import pytest

import qdiff as qd


def _circuit(n: int) -> qd.Circuit:
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


def _results(n: int) -> list[np.ndarray]:
    c = _circuit(n)
    h = sum((qd.Z(i) for i in range(n)), 0) + 0.3 * qd.X(0) @ qd.Y(2)
    rng = np.random.default_rng(n)
    theta, batch = rng.normal(size=c.num_params), rng.normal(size=(3, c.num_params))
    ms = [qd.Expval(h), qd.Probs((1, 3))]
    out = [*qd.jacobian(c, ms, theta), *qd.jacobian(c, ms, batch), qd.state(c, theta), qd.state(c, batch)]
    out.append(qd.vjp(c, ms, batch, [np.ones(3), np.ones((3, 4))]))
    return [np.asarray(x) for x in out]


@pytest.mark.parametrize("n", [5, 14])  # 5: whole-circuit executor; 14: per-gate kernels + fused adjoint step
def test_compiled_paths_match_numpy_reference(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _results(n)
    monkeypatch.setenv("QDIFF_KERNELS", "numpy")
    reference = _results(n)
    for a, b in zip(fast, reference, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12, rtol=0)


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
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QDIFF_KERNELS", "numpy")
        be.apply_matrix(k2, u, (5,), (2, 9), (1, 0))
        r2 = be.reduced_outer(b2, k2, (5,), (2, 9), (1, 0))
        be.apply_matrix(b2, u, (5,), (2, 9), (1, 0))
    np.testing.assert_allclose(r, r2, atol=1e-9)
    np.testing.assert_allclose(ket, k2, atol=1e-13)
    np.testing.assert_allclose(bra, b2, atol=1e-13)
