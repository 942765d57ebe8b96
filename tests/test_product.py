"""The product-state prefix: a program's leading one-qubit gates written as ``kron`` of per-wire columns.

Checked against the per-gate reference executor (every gate applied to |0...0> or a basis state) and
against dense matrix products, on the numba kernels and the numpy reference path, for batched
parameters, complex64, basis-state preparations, circuits that are all prefix, and large states
(multi-threaded outer product, blocked passes for the rest).
"""

from __future__ import annotations

import numpy as np
import pytest
from circuits import random_circuit
from conftest import KERNEL_MODES, dense_circuit_state, kernel_mode

from qdiff.backends import get_backend
from qdiff.circuit import Circuit, ParamRef
from qdiff.engine import run_forward
from qdiff.program import program_of
from qdiff.simulate import checked_final_state, initial_state

BE = get_backend("numpy")
ONE_QUBIT = [("RX", 1), ("RY", 1), ("RZ", 1), ("PhaseShift", 1), ("Rot", 3), ("U3", 3), ("Hadamard", 0), ("S", 0),
             ("T", 0), ("PauliX", 0), ("PauliY", 0), ("SX", 0), ("Identity", 0)]


def _circuit(rng: np.random.Generator, n: int, prefix: int, rest: int, bits: list[int] | None = None) -> Circuit:
    """``prefix`` random one-qubit gates (wires repeat, some inverted, some constant), then ``rest`` CNOT/RY."""
    c = Circuit(n, 4 * prefix + rest + 1)
    if bits is not None:
        c.basis_state(bits)
    p = 0
    for _ in range(prefix):
        name, k = ONE_QUBIT[rng.integers(len(ONE_QUBIT))]
        params = []
        for _ in range(k):
            params.append(ParamRef(p, float(rng.uniform(-2, 2)), 0.3) if rng.random() < 0.8 else float(rng.normal()))
            p += 1
        c.add(name, *params, wires=int(rng.integers(n)), inverse=bool(rng.random() < 0.3))
    for j in range(rest):
        a, b = rng.choice(n, 2, replace=False) if n > 1 else (0, 0)
        c.add("CNOT", wires=[int(a), int(b)]) if j % 2 and n > 1 else c.add("RY", ParamRef(p), wires=int(a))
        p += 1
    return c


def _reference(c: Circuit, theta: np.ndarray, batch: int, dtype: str = "complex128") -> np.ndarray:
    state = initial_state(BE, c, batch, np.dtype(dtype))
    run_forward(BE, program_of(c), theta, state, executor="reference")
    return state


@pytest.mark.parametrize("mode", KERNEL_MODES)
@pytest.mark.parametrize("n", [1, 3, 7, 15])
def test_prefix_state_equals_gates_applied_one_by_one(mode, n):
    rng = np.random.default_rng(n)
    for trial in range(4):
        bits = [int(b) for b in rng.integers(0, 2, n)] if trial % 2 else None
        c = _circuit(rng, n, prefix=int(rng.integers(1, 3 * n + 2)), rest=int(rng.integers(0, 6)), bits=bits)
        assert program_of(c).product_prefix > 0
        theta = rng.uniform(-3, 3, c.num_params)
        with kernel_mode(mode):
            state, batched = checked_final_state(c, theta, None, BE, np.dtype(complex))
        assert not batched and state.shape == (1, 2**n)
        np.testing.assert_allclose(state, _reference(c, theta, 1), atol=1e-12)
        if n <= 7:
            psi0 = np.zeros(2**n, complex)
            psi0[int("".join(map(str, bits)), 2) if bits else 0] = 1
            np.testing.assert_allclose(state[0], dense_circuit_state(c, theta, psi0), atol=1e-12)


@pytest.mark.parametrize("mode", KERNEL_MODES)
def test_prefix_with_batched_parameters_and_complex64(mode):
    rng = np.random.default_rng(3)
    c = _circuit(rng, 9, prefix=20, rest=8)
    thetas = rng.uniform(-3, 3, (5, c.num_params))
    with kernel_mode(mode):
        state, batched = checked_final_state(c, thetas, 5, BE, np.dtype(complex))
        state64, _ = checked_final_state(c, thetas, 5, BE, np.dtype("complex64"))
    assert batched and state.shape == (5, 2**9)
    np.testing.assert_allclose(state, _reference(c, thetas, 5), atol=1e-12)
    for b in range(5):
        np.testing.assert_allclose(state[b], _reference(c, thetas[b], 1)[0], atol=1e-12)
    assert state64.dtype == np.complex64
    np.testing.assert_allclose(state64, state, atol=2e-6)


def test_circuit_of_only_one_qubit_gates_has_an_empty_tail():
    rng = np.random.default_rng(4)
    for n in (2, 18):
        c = _circuit(rng, n, prefix=2 * n, rest=0)
        program = program_of(c)
        assert program.product_prefix == len(program.operations) and not program.tail.operations
        theta = rng.uniform(-3, 3, c.num_params)
        state, _ = checked_final_state(c, theta, None, BE, np.dtype(complex))
        np.testing.assert_allclose(state, _reference(c, theta, 1), atol=1e-12)


def test_large_random_circuits_with_a_prefix_match_the_reference():
    """18 qubits: the threaded outer product, then the blocked passes run the tail."""
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        c = _circuit(rng, 18, prefix=30, rest=0)
        rc = random_circuit(rng, num_wires=18, depth=25, state_prep=False)
        for op in rc.circuit.operations:
            c.append(op)
        c.num_params = max(c.num_params, rc.circuit.num_params)
        theta = rng.uniform(-3, 3, c.num_params)
        state, _ = checked_final_state(c, theta, None, BE, np.dtype(complex))
        np.testing.assert_allclose(state, _reference(c, theta, 1), atol=1e-11)


def test_prefix_length_stops_at_the_first_gate_that_is_not_an_uncontrolled_one_qubit_gate():
    c = Circuit(3, 3)
    c.add("RY", ParamRef(0), wires=0).add("Hadamard", wires=1).add("RX", ParamRef(1), wires=0)
    c.add("CNOT", wires=[0, 1]).add("RZ", ParamRef(2), wires=2)
    assert program_of(c).product_prefix == 3
    d = Circuit(2, 1)
    d.add("RY", ParamRef(0), wires=1, controls=[0]).add("Hadamard", wires=1)
    assert program_of(d).product_prefix == 0
    e = Circuit(2, 1)
    e.add("PauliRot", ParamRef(0), wires=[0], hyper="X")
    assert program_of(e).product_prefix == 0
    f = Circuit(2, 1)
    f.state_vector(np.array([0.6, 0, 0, 0.8]), [0, 1])
    f.add("RY", ParamRef(0), wires=0)
    assert program_of(f).product_prefix == 0  # an amplitude preparation is not a product of basis states


def test_product_state_kernel_matches_numpy_outer_product():
    rng = np.random.default_rng(7)
    cols = rng.normal(size=(3, 16, 2)) + 1j * rng.normal(size=(3, 16, 2))
    expect = np.ones((3, 1), complex)
    for w in range(16):
        expect = np.einsum("bi,bj->bij", expect, cols[:, w]).reshape(3, -1)
    for mode in KERNEL_MODES:
        with kernel_mode(mode):
            got = BE.product_state(cols, np.complex128)
        np.testing.assert_allclose(got, expect, rtol=1e-12, atol=1e-14)
