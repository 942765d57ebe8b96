"""Shared test helpers: hypothesis profile and strategies, dense reference constructions (numpy only).

The dense helpers here are deliberately naive (Kronecker products, explicit index arithmetic) so they
serve as references that share no code with qdiff's kernels. ``tests/`` is put on ``sys.path`` so test
modules can ``import circuits`` (random circuits for qdiff and PennyLane, see ``tests/circuits.py``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(__file__))

import circuits  # noqa: E402

settings.register_profile(
    "qdiff", deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.register_profile(  # fail fast without shrinking (mutation testing, quick local runs)
    "qdiff-noshrink", parent=settings.get_profile("qdiff"),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
settings.load_profile(os.environ.get("QDIFF_HYPOTHESIS_PROFILE", "qdiff"))

KET = {0: np.array([[1, 0], [0, 0]], dtype=complex), 1: np.array([[0, 0], [0, 1]], dtype=complex)}
PAULIS = circuits.PAULIS
kron = circuits.kron
embed = circuits.embed
pauli_dense = circuits.pauli_dense


def controlled(u: np.ndarray, control_values: tuple[int, ...] | list[int]) -> np.ndarray:
    """``P_v (x) U + (I - P_v) (x) I`` on (controls, targets): a controlled gate by projectors."""
    proj = kron(*(KET[int(v)] for v in control_values))
    d = u.shape[-1]
    eye_c = np.eye(proj.shape[0], dtype=complex)
    return np.kron(proj, u) + np.kron(eye_c - proj, np.eye(d, dtype=complex))


def random_state(n: int, rng: np.random.Generator, batch: int | None = None) -> np.ndarray:
    """Random normalised state(s), shape ``(2**n,)`` or ``(batch, 2**n)``."""
    shape = (2**n,) if batch is None else (batch, 2**n)
    psi = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    return psi / np.linalg.norm(psi, axis=-1, keepdims=True)


def random_hermitian(d: int, rng: np.random.Generator) -> np.ndarray:
    """Random Hermitian ``d x d`` matrix."""
    a = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    return (a + a.conj().T) / 2


def _split_indices(wires: list[int] | tuple[int, ...], n: int) -> tuple[np.ndarray, np.ndarray]:
    """For every basis index: the code of the bits of ``wires`` (in that order) and of the other bits."""
    idx = np.arange(2**n)
    bits = (idx[:, None] >> (n - 1 - np.arange(n))[None, :]) & 1  # bits[i, w]
    rest = [w for w in range(n) if w not in wires]
    code = np.zeros(2**n, dtype=np.int64)
    for w in wires:
        code = 2 * code + bits[:, w]
    other = np.zeros(2**n, dtype=np.int64)
    for w in rest:
        other = 2 * other + bits[:, w]
    return code, other


def marginal_probs(psi: np.ndarray, wires: list[int] | tuple[int, ...], n: int) -> np.ndarray:
    """Probabilities of the bit strings of ``wires`` (in that order) by explicit bit arithmetic."""
    code, _ = _split_indices(list(wires), n)
    out = np.zeros(2 ** len(wires))
    np.add.at(out, code, np.abs(psi) ** 2)
    return out


def reduced_density(psi: np.ndarray, wires: list[int] | tuple[int, ...], n: int) -> np.ndarray:
    """Reduced density matrix of ``wires`` (in that order): ``rho = sum_rest |psi_rest><psi_rest|``."""
    code, other = _split_indices(list(wires), n)
    m = np.zeros((2 ** len(wires), 2 ** (n - len(wires))), dtype=complex)
    m[code, other] = psi
    return m @ m.conj().T


def dense_circuit_state(circuit: Any, theta: np.ndarray, psi0: np.ndarray) -> np.ndarray:
    """Final state from dense matrices ``embed(op.matrix(theta))``, one by one (no qdiff kernels)."""
    n = circuit.num_wires
    psi = psi0.astype(complex)
    for op in circuit.operations:
        psi = embed(op.matrix(theta), op.all_wires, n) @ psi
    return psi


KERNEL_MODES = ("default", "numpy")
"""CPU paths to test: the default (numba kernels when available) and the numpy reference path."""


@contextmanager
def kernel_mode(mode: str) -> Iterator[None]:
    """Run the numpy backend with its default kernels or with ``QDIFF_KERNELS=numpy``."""
    old = os.environ.get("QDIFF_KERNELS")
    if mode == "numpy":
        os.environ["QDIFF_KERNELS"] = "numpy"
    else:
        os.environ.pop("QDIFF_KERNELS", None)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("QDIFF_KERNELS", None)
        else:
            os.environ["QDIFF_KERNELS"] = old


@st.composite
def random_circuits(draw: Any, **kwargs: Any) -> circuits.RandomCircuit:
    """Hypothesis strategy of :class:`circuits.RandomCircuit` (keyword arguments as random_circuit)."""
    return circuits.random_circuit(draw, **kwargs)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator (fresh per test)."""
    return np.random.default_rng(1234)
