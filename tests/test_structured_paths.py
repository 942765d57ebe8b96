"""Pauli sums grouped by flip mask and subspace gates applied as two-level rotations, against dense oracles.

The oracles here are dense matrices built another way (Kronecker products of 2x2 Paulis, the gate
table's full matrix embedded on its wires), on the default kernels and on the numpy reference path.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import KERNEL_MODES, PAULIS, controlled, embed, kernel_mode, kron, random_state
from hypothesis import given, settings
from hypothesis import strategies as st

import qdiff as qd
from qdiff.backends import get_backend
from qdiff.gates import GATES
from qdiff.ir.kinds import Kind
from qdiff.observables import LinearCombination, PauliGroups, PauliWord, apply_observable, expectation

SUBSPACE_GATES = sorted(name for name, g in GATES.items() if g.kind == Kind.SUBSPACE)


def _dense_word(word: dict[int, str], n: int) -> np.ndarray:
    return kron(*[PAULIS[word.get(w, "I")] for w in range(n)])


def _random_sum(rng: np.random.Generator, n: int, terms: int) -> LinearCombination:
    words = [PauliWord({w: rng.choice(list("IXYZ")) for w in range(n)}) for _ in range(terms)]
    return LinearCombination(tuple(rng.normal(size=terms)), tuple(words))


@pytest.mark.parametrize("mode", KERNEL_MODES)
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 7), terms=st.integers(1, 40), batch=st.integers(1, 3))
@settings(max_examples=25, deadline=None)
def test_pauli_sum_matches_dense_matrix(mode: str, dtype: type, seed: int, n: int, terms: int, batch: int) -> None:
    rng = np.random.default_rng(seed)
    h = _random_sum(rng, n, terms)
    dense = sum(c * _dense_word(t.word, n) for c, t in zip(h.coeffs, h.terms, strict=True))
    psi = random_state(n, rng, batch).reshape(batch, -1).astype(dtype)
    tol = 1e-10 if dtype == np.complex128 else 2e-5
    with kernel_mode(mode):
        be = get_backend("numpy", n)
        got = apply_observable(be, psi, h)
        want = psi.astype(complex) @ dense.T
        np.testing.assert_allclose(got, want, atol=tol * max(1, terms))
        np.testing.assert_allclose(expectation(be, psi, h), np.einsum("bi,bi->b", psi.conj(), want).real,
                                   atol=tol * max(1, terms))


def _word_by_axes(psi: np.ndarray, word: dict[int, str], n: int) -> np.ndarray:
    """``P psi`` for a ``(B, 2**n)`` state, one 2x2 Pauli per wire applied on its own tensor axis."""
    out = psi.reshape((psi.shape[0],) + (2,) * n)
    for w, p in word.items():
        out = np.moveaxis(np.tensordot(PAULIS[p], out, axes=([1], [1 + w])), 0, 1 + w)
    return out.reshape(psi.shape)


@pytest.mark.parametrize("mode", KERNEL_MODES)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(12, 14), locality=st.integers(1, 5))
@settings(max_examples=8, deadline=None)
def test_pauli_sum_over_several_segments_matches_per_wire_paulis(mode: str, seed: int, n: int, locality: int) -> None:
    """States of several cache segments (the grouped kernel walks 2**11 amplitudes at a time): flips above,
    inside and across a segment, sign bits below a term's lowest flip, many terms per flip mask."""
    rng = np.random.default_rng(seed)
    words = [PauliWord({int(w): str(rng.choice(list("XYZ"))) for w in rng.choice(n, locality, replace=False)})
             for _ in range(40)]
    words += [PauliWord({**t.word, int(w): "Z"}) for t in words[:10] for w in range(n) if w not in t.word][:20]
    h = LinearCombination(tuple(rng.normal(size=len(words))), tuple(words))
    psi = random_state(n, rng, 2).reshape(2, -1)
    want = sum(c * _word_by_axes(psi, t.word, n) for c, t in zip(h.coeffs, h.terms, strict=True))
    with kernel_mode(mode):
        be = get_backend("numpy", n)
        np.testing.assert_allclose(apply_observable(be, psi, h), want, atol=1e-10)
        np.testing.assert_allclose(expectation(be, psi, h), np.einsum("bi,bi->b", psi.conj(), want).real, atol=1e-10)


def test_groups_share_flip_masks() -> None:
    terms = [(1.0, PauliWord({0: "X", 1: "Z"})), (2.0, PauliWord({0: "Y", 1: "I"})), (0.5, PauliWord({1: "X"})),
             (0.25, PauliWord({0: "X"}))]
    g = PauliGroups.of(terms, 2)
    assert list(g.xmasks) == [0b01, 0b10]  # in mask order: X1 flips wire 1; X0Z1, Y0 and X0 flip wire 0
    assert list(g.starts) == [0, 1, 4]
    assert list(g.zmasks) == [0b00, 0b01, 0b10, 0b00]
    np.testing.assert_allclose(g.coeffs, [0.5, 1.0, 2.0j, 0.25])
    assert not g.coeffs.flags.writeable


def test_molecular_hamiltonian_gradient_matches_dense(rng: np.random.Generator) -> None:
    # a sum with many terms per flip mask (like a molecule's), through the adjoint gradient
    n = 6
    h = _random_sum(rng, n, 80)
    c = qd.Circuit(n)
    p = c.params(2 * n)
    for w in range(n):
        c.ry(p[w], w)
    c.double_excitation(p[n], 0, 1, 2, 3).single_excitation(p[n + 1], 4, 5)
    for w in range(n - 2):
        c.crx(p[n + 2 + w], w, w + 1)
    theta = rng.uniform(-1, 1, c.num_params)
    for mode in KERNEL_MODES:
        with kernel_mode(mode):
            g = qd.grad(c, h, theta)
            fd = qd.grad(c, h, theta, method="finite-diff")
            ps = qd.grad(c, h, theta, method="parameter-shift")
        np.testing.assert_allclose(g, ps, atol=1e-10)
        np.testing.assert_allclose(g, fd, atol=1e-6)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12)


@pytest.mark.parametrize("name", SUBSPACE_GATES)
@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("mode", KERNEL_MODES)
def test_subspace_gates_match_their_dense_matrix(name: str, inverse: bool, mode: str,
                                                 rng: np.random.Generator) -> None:
    spec = GATES[name]
    k = spec.num_wires
    n = k + 2
    for batch in (None, 3) if spec.num_params else (None,):
        params = [rng.uniform(-2, 2, batch) if batch else float(rng.uniform(-2, 2)) for _ in range(spec.num_params)]
        wires = [int(w) for w in rng.permutation(n)[: k + 1]]
        targets, ctrl = wires[:k], wires[k:]
        cval = int(rng.integers(0, 2))
        c = qd.Circuit(n)
        c.add(name, *params, wires=targets, controls=ctrl, control_values=[cval], inverse=inverse)
        psi0 = random_state(n, rng)
        with kernel_mode(mode):
            got = qd.state(qd.Circuit(n).state_vector(psi0).extend(c.operations))
        m = spec.matrix(tuple(params), None, k)
        m = np.conj(np.swapaxes(m, -1, -2)) if inverse else m
        for b in range(batch or 1):
            mb = m[b] if batch else m
            want = embed(controlled(mb, [cval]), ctrl + targets, n) @ psi0
            np.testing.assert_allclose(got[b] if batch else got, want, atol=1e-12)


def test_subspace_kernel_refuses_a_matrix_without_that_structure() -> None:
    from qdiff.backends.numba import kernels as cpu_kernels

    m = np.eye(16, dtype=complex)
    m[0, 5] = m[5, 0] = 0.0
    m[1, 2] = 1e-3  # outside the rotated pair
    state = np.ones((1, 32), dtype=complex)
    assert cpu_kernels.apply_subspace(state, m, (3, 12), (0, 1, 2, 3)) is None
    assert np.all(state == 1)


@pytest.mark.parametrize("controls", [(), (5,)])
def test_reduced_outer_entries_match_the_full_product(controls: tuple, rng: np.random.Generator) -> None:
    from qdiff.backends.numba import kernels as cpu_kernels

    n = 6
    bra, ket = random_state(n, rng, 2), random_state(n, rng, 2)
    targets = (4, 0, 2, 1)
    cvals = (1,) * len(controls)
    full = cpu_kernels.reduced_outer(bra, ket, targets, controls, cvals)
    entries = np.array([[3, 3], [3, 12], [12, 3], [12, 12], [0, 0], [7, 7]])
    part = cpu_kernels.reduced_outer(bra, ket, targets, controls, cvals, entries)
    mask = np.zeros((16, 16), dtype=bool)
    mask[entries[:, 0], entries[:, 1]] = True
    np.testing.assert_allclose(part[:, mask], full[:, mask], atol=1e-13)
    assert np.all(part[:, ~mask] == 0)
    assert cpu_kernels.reduced_outer(bra, ket, targets, controls, cvals, np.array([[0, 16]])) is None
