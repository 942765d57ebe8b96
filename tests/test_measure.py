"""Measurements against dense references (analytic) and sampling statistics (shots).

Analytic: expval/var of every observable type against ``<psi|O|psi>`` with O built by Kronecker
products, probabilities of wire subsets in any order and reduced density matrices by explicit sums,
PennyLane as a second oracle, batching equal to a loop. Shots (fixed seeds): estimates within 5
standard errors of the exact values (standard errors computed from the exact outcome distribution),
Bell/GHZ correlations between measurements of one execution, seeded reproducibility.
"""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pennylane as qml
import pytest
import scipy.sparse as sp
from circuits import OBSERVABLE_KINDS, pennylane_run, random_circuit, random_observable
from conftest import KERNEL_MODES, embed, kernel_mode, marginal_probs, pauli_dense, random_hermitian, reduced_density

import qdiff
from qdiff import (
    Circuit,
    Counts,
    DensityMatrix,
    Expval,
    Hermitian,
    Identity,
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
from qdiff.observables import observable_matrix


def _exact(psi: np.ndarray, dense: np.ndarray) -> tuple[float, float]:
    e = np.vdot(psi, dense @ psi)
    e2 = np.vdot(dense @ psi, dense @ psi)
    assert abs(e.imag) < 1e-10
    return float(e.real), float(e2.real - e.real**2)


def _circuit(seed: int, n: int | tuple[int, int] = (1, 5)):
    rng = np.random.default_rng(seed)
    rc = random_circuit(rng, num_wires=n, depth=(3, 12))
    return rc, rng


# ------------------------------------------------------------------------------------------------
# analytic


@pytest.mark.parametrize("mode", KERNEL_MODES)
@pytest.mark.parametrize("seed", range(12))
def test_analytic_measurements_match_dense(seed, mode):
    rc, rng = _circuit(seed)
    n = rc.num_wires
    with kernel_mode(mode):
        psi = qdiff.state(rc.circuit, rc.theta)
        obs = [random_observable(rng, n, kind) for kind in OBSERVABLE_KINDS]
        pw = list(rng.permutation(n)[: rng.integers(1, n + 1)])
        dw = list(rng.permutation(n)[: rng.integers(1, min(n, 3) + 1)])
        ms = [Expval(o) for o, _, _ in obs] + [Var(o) for o, _, _ in obs]
        ms += [Probs(tuple(int(w) for w in pw)), Probs(), DensityMatrix(tuple(int(w) for w in dw)), State()]
        res = qdiff.execute(rc.circuit, ms, rc.theta)
    assert isinstance(res, list) and len(res) == len(ms)
    for i, (o, dense, _) in enumerate(obs):
        e, v = _exact(psi, dense)
        assert res[i] == pytest.approx(e, abs=1e-10), (type(o).__name__, o)
        assert res[len(obs) + i] == pytest.approx(v, abs=1e-10), (type(o).__name__, o)
        np.testing.assert_allclose(observable_matrix(o, list(range(n))), dense, atol=1e-12)
    p, pall, rho, st = res[2 * len(obs):]
    np.testing.assert_allclose(p, marginal_probs(psi, pw, n), atol=1e-12)
    np.testing.assert_allclose(pall, np.abs(psi) ** 2, atol=1e-12)
    np.testing.assert_allclose(rho, reduced_density(psi, dw, n), atol=1e-12)
    np.testing.assert_allclose(st, psi, atol=1e-15)


@pytest.mark.parametrize("seed", range(6))
def test_analytic_measurements_match_pennylane(seed):
    rc, rng = _circuit(100 + seed, n=(2, 5))
    n = rc.num_wires
    kinds = ["pauli", "hermitian", "product", "sum", "nested", "sparse"]
    obs = [random_observable(rng, n, k) for k in kinds]
    pw = [int(w) for w in rng.permutation(n)[:2]]
    ms = [Expval(o) for o, _, _ in obs] + [Var(o) for o, _, _ in obs[:3]] + [Probs(tuple(pw)), DensityMatrix(tuple(pw))]
    ours = qdiff.execute(rc.circuit, ms, rc.theta)
    pl_ms = [qml.expval(p) for _, _, p in obs] + [qml.var(p) for _, _, p in obs[:3]]
    pl_ms += [qml.probs(wires=pw), qml.density_matrix(wires=pw)]
    ref = pennylane_run(rc.qfunc, n, pl_ms, rc.theta)
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-10)


@pytest.mark.parametrize("mode", KERNEL_MODES)
def test_batched_measurements_equal_loop(mode):
    rc, rng = _circuit(7, n=4)
    thetas = rng.uniform(-3, 3, (3, rc.circuit.num_params))
    obs = [random_observable(rng, 4, k)[0] for k in OBSERVABLE_KINDS]
    ms = [Expval(o) for o in obs] + [Var(o) for o in obs] + [Probs((2, 0)), DensityMatrix((3, 1)), State()]
    with kernel_mode(mode):
        batched = qdiff.execute(rc.circuit, ms, thetas)
        singles = [qdiff.execute(rc.circuit, ms, t) for t in thetas]
    for j, r in enumerate(batched):
        assert np.shape(r)[0] == 3
        for b in range(3):
            np.testing.assert_allclose(r[b], singles[b][j], atol=1e-12)


def test_convenience_functions(rng):
    rc, _ = _circuit(11, n=3)
    c, t = rc.circuit, rc.theta
    psi = qdiff.state(c, t)
    h = random_hermitian(4, rng)
    obs = Hermitian(h, [2, 0])
    e, v = _exact(psi, embed(h, [2, 0], 3))
    assert qdiff.expval(c, obs, t) == pytest.approx(e, abs=1e-12)
    assert qdiff.var(c, obs, t) == pytest.approx(v, abs=1e-12)
    np.testing.assert_allclose(qdiff.probs(c, [1, 2], t), marginal_probs(psi, [1, 2], 3), atol=1e-12)
    np.testing.assert_allclose(qdiff.probs(c, params=t), np.abs(psi) ** 2, atol=1e-12)
    assert isinstance(qdiff.expval(c, Z(0), t), (float, np.floating, np.ndarray))
    assert np.ndim(qdiff.expval(c, Z(0), t)) == 0


def test_identity_pauli_and_constant_observables():
    rc, _ = _circuit(3, n=3)
    c, t = rc.circuit, rc.theta
    psi = qdiff.state(c, t)
    assert qdiff.expval(c, Identity(), t) == pytest.approx(1.0)
    assert qdiff.var(c, Identity(), t) == pytest.approx(0.0, abs=1e-12)
    assert qdiff.expval(c, 2.5 * Identity() + Z(1), t) == pytest.approx(2.5 + _exact(psi, pauli_dense({1: "Z"}, 3))[0])
    for word in ({0: "X"}, {0: "Y", 2: "Z"}, {0: "Z", 1: "Z", 2: "Z"}, {1: "X", 2: "Y"}):
        e, v = _exact(psi, pauli_dense(word, 3))
        assert qdiff.expval(c, PauliWord(word), t) == pytest.approx(e, abs=1e-12)
        assert qdiff.var(c, PauliWord(word), t) == pytest.approx(v, abs=1e-12)
    assert PauliWord.from_string("XIZ").word == {0: "X", 2: "Z"}
    assert PauliWord.from_string("XZ", wires=[2, 0]).word == {2: "X", 0: "Z"}


def test_diagonal_folding_of_z_terms_matches_dense():
    """Several Z-only terms, zero coefficients and a constant (the folded-diagonal path)."""
    rc, _ = _circuit(5, n=4)
    psi = qdiff.state(rc.circuit, rc.theta)
    obs = 0.3 * Z(0) @ Z(2) - 1.2 * Z(1) + 0.0 * X(3) + 0.7 + 2.0 * Z(3) + 0.4 * X(0) @ Z(1)
    dense = (0.3 * pauli_dense({0: "Z", 2: "Z"}, 4) - 1.2 * pauli_dense({1: "Z"}, 4) + 0.7 * np.eye(16)
             + 2.0 * pauli_dense({3: "Z"}, 4) + 0.4 * pauli_dense({0: "X", 1: "Z"}, 4))
    e, v = _exact(psi, dense)
    assert qdiff.expval(rc.circuit, obs, rc.theta) == pytest.approx(e, abs=1e-12)
    assert qdiff.var(rc.circuit, obs, rc.theta) == pytest.approx(v, abs=1e-12)


@pytest.mark.parametrize(("n", "batch"), [(1, 1), (3, 2), (9, 1), (13, 3), (16, 1)])
def test_diagonal_expectation_matches_numpy(n: int, batch: int) -> None:
    rng = np.random.default_rng(n)
    state = rng.normal(size=(batch, 2**n)) + 1j * rng.normal(size=(batch, 2**n))
    diag = rng.normal(size=2**n)
    be = qdiff.get_backend("numpy")
    got = be.expval_diagonal(state, diag)
    np.testing.assert_allclose(got, (np.abs(state) ** 2) @ diag, rtol=1e-12)


@pytest.mark.parametrize("n", [3, 13])
def test_array_coefficients_in_z_sums(n: int) -> None:
    c = Circuit(n)
    p = c.params(1)
    c.rx(p[0], wires=0)
    obs = qdiff.LinearCombination((np.array(0.5), np.array(1.0)), (Z(0), Z(1)))
    assert qdiff.expval(c, obs, [0.3]) == pytest.approx(0.5 * np.cos(0.3) + 1.0, abs=1e-12)
    value, grad = qdiff.value_and_grad(c, obs, [0.3])
    assert grad[0] == pytest.approx(-0.5 * np.sin(0.3), abs=1e-12)


def test_product_distributes_over_sums():
    rc, rng = _circuit(9, n=3)
    psi = qdiff.state(rc.circuit, rc.theta)
    h = random_hermitian(2, rng)
    obs = (Z(0) + 0.5 * X(1)) @ (Hermitian(h, 2) - Y(2) * 0.0 + 1.5 * Y(2))
    a = pauli_dense({0: "Z"}, 3) + 0.5 * pauli_dense({1: "X"}, 3)
    b = embed(h, [2], 3) + 1.5 * pauli_dense({2: "Y"}, 3)
    e, v = _exact(psi, a @ b)
    assert qdiff.expval(rc.circuit, obs, rc.theta) == pytest.approx(e, abs=1e-12)
    assert qdiff.var(rc.circuit, obs, rc.theta) == pytest.approx(v, abs=1e-12)


def test_sparse_hermitian_on_all_wires_and_on_permuted_subsets(rng):
    rc, _ = _circuit(13, n=4)
    psi = qdiff.state(rc.circuit, rc.theta)
    for wires in ([0, 1, 2, 3], [3, 1], [2], [1, 3, 0]):
        d = 2 ** len(wires)
        m = sp.random(d, d, density=0.3, random_state=1, dtype=complex)
        m = m + m.conj().T
        obs = SparseHermitian(m, wires)
        e, v = _exact(psi, embed(m.toarray(), wires, 4))
        assert qdiff.expval(rc.circuit, obs, rc.theta) == pytest.approx(e, abs=1e-12)
        assert qdiff.var(rc.circuit, obs, rc.theta) == pytest.approx(v, abs=1e-12)


def test_probs_all_wire_orders():
    rc, _ = _circuit(21, n=4)
    psi = qdiff.state(rc.circuit, rc.theta)
    subsets = [w for k in (1, 2, 3, 4) for w in itertools.permutations(range(4), k)]
    res = qdiff.execute(rc.circuit, [Probs(w) for w in subsets] + [DensityMatrix(w) for w in subsets], rc.theta)
    for i, wires in enumerate(subsets):
        np.testing.assert_allclose(res[i], marginal_probs(psi, wires, 4), atol=1e-12)
        assert res[i].sum() == pytest.approx(1.0)
        np.testing.assert_allclose(res[len(subsets) + i], reduced_density(psi, wires, 4), atol=1e-12)


def test_density_matrix_properties():
    rc, _ = _circuit(17, n=4)
    for wires in ((0,), (3, 1), (2, 0, 3), (0, 1, 2, 3)):
        rho = qdiff.execute(rc.circuit, DensityMatrix(wires), rc.theta)
        np.testing.assert_allclose(rho, rho.conj().T, atol=1e-14)
        assert np.trace(rho) == pytest.approx(1.0)
        assert np.linalg.eigvalsh(rho).min() > -1e-12
    psi = qdiff.state(rc.circuit, rc.theta)
    np.testing.assert_allclose(qdiff.execute(rc.circuit, DensityMatrix((0, 1, 2, 3)), rc.theta),
                               np.outer(psi, psi.conj()), atol=1e-14)


# ------------------------------------------------------------------------------------------------
# shots


def _distribution(psi: np.ndarray, dense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and their probabilities when measuring ``dense`` on ``psi``."""
    vals, vecs = np.linalg.eigh(dense)
    return vals, np.abs(vecs.conj().T @ psi) ** 2


def _moments(vals: np.ndarray, probs: np.ndarray) -> tuple[float, float, float]:
    mu = float(probs @ vals)
    var = float(probs @ (vals - mu) ** 2)
    mu4 = float(probs @ (vals - mu) ** 4)
    return mu, var, mu4


SHOTS = 20_000


@pytest.mark.parametrize("mode", KERNEL_MODES)
@pytest.mark.parametrize("seed", range(4))
def test_shot_estimates_within_five_standard_errors(seed, mode):
    rc, rng = _circuit(200 + seed, n=(2, 4))
    n = rc.num_wires
    psi = qdiff.state(rc.circuit, rc.theta)
    cases = [random_observable(rng, n, k)[:2] for k in ("pauli", "hermitian", "product")]
    cases.append((0.5 * Z(0) - 1.5 * Z(0) @ X(n - 1) + 0.7 * X(n - 1) + 0.25,  # qubit-wise commuting
                  0.5 * pauli_dense({0: "Z"}, n) - 1.5 * pauli_dense({0: "Z", n - 1: "X"}, n)
                  + 0.7 * pauli_dense({n - 1: "X"}, n) + 0.25 * np.eye(2**n)))
    ms = [Expval(o) for o, _ in cases] + [Var(o) for o, _ in cases]
    with kernel_mode(mode):
        res = qdiff.execute(rc.circuit, ms, rc.theta, shots=SHOTS, seed=seed)
    for i, (_, dense) in enumerate(cases):
        mu, var, mu4 = _moments(*_distribution(psi, dense))
        se_mean = np.sqrt(var / SHOTS)
        se_var = np.sqrt(max(mu4 - var**2, 0) / SHOTS)
        assert abs(res[i] - mu) <= 5 * se_mean + 1e-12, (i, res[i], mu, se_mean)
        # the estimated variance also moves by (mean error)^2, second order but the only term when the
        # fourth central moment equals var^2 (two outcomes of probability 1/2)
        bound_var = 5 * se_var + (5 * se_mean) ** 2 + 1e-12
        assert abs(res[len(cases) + i] - var) <= bound_var, (i, res[len(cases) + i], var, se_var)


def test_non_commuting_sum_with_shots():
    rc, _ = _circuit(31, n=3)
    psi = qdiff.state(rc.circuit, rc.theta)
    terms = [(0.7, {0: "X"}), (-1.1, {0: "Z", 1: "Y"}), (0.4, {2: "Y"}), (0.9, {0: "Y"})]
    obs = sum((c * PauliWord(w) for c, w in terms), 0)
    exact = sum(c * _exact(psi, pauli_dense(w, 3))[0] for c, w in terms)
    bound = sum(abs(c) * np.sqrt(_exact(psi, pauli_dense(w, 3))[1] / SHOTS) for c, w in terms)
    est = qdiff.expval(rc.circuit, obs, rc.theta, shots=SHOTS, seed=3)
    assert abs(est - exact) <= 5 * bound


@pytest.mark.parametrize("mode", KERNEL_MODES)
def test_probs_sample_counts_statistics(mode):
    rc, rng = _circuit(41, n=3)
    psi = qdiff.state(rc.circuit, rc.theta)
    wires = (2, 0)
    p = marginal_probs(psi, wires, 3)
    with kernel_mode(mode):
        est, samples, counts = qdiff.execute(rc.circuit, [Probs(wires), Sample(wires), Counts(wires)], rc.theta,
                                             shots=SHOTS, seed=12)
    assert est.sum() == pytest.approx(1.0)
    assert np.all(np.abs(est - p) <= 5 * np.sqrt(p * (1 - p) / SHOTS) + 1e-12)
    assert samples.shape == (SHOTS, 2) and np.issubdtype(samples.dtype, np.integer)
    assert set(np.unique(samples)) <= {0, 1}
    # samples, counts and probs of one execution come from the same shots
    idx = samples[:, 0] * 2 + samples[:, 1]
    np.testing.assert_allclose(np.bincount(idx, minlength=4) / SHOTS, est)
    assert sum(counts.values()) == SHOTS
    assert counts == {f"{a}{b}": int(c) for (a, b), c in Counter(map(tuple, samples.tolist())).items()}
    assert all(len(k) == 2 and set(k) <= {"0", "1"} for k in counts)


def test_sample_and_counts_of_observables():
    rc, rng = _circuit(43, n=3)
    psi = qdiff.state(rc.circuit, rc.theta)
    h = random_hermitian(4, rng)
    obs = Hermitian(h, [1, 2])
    vals, probs = _distribution(psi, embed(h, [1, 2], 3))
    s, cnt = qdiff.execute(rc.circuit, [Sample(obs=obs), Counts(obs=obs)], rc.theta, shots=SHOTS, seed=4)
    assert s.shape == (SHOTS,)
    assert np.all(np.min(np.abs(s[:, None] - vals[None, :]), axis=1) < 1e-12)
    mu, var, _ = _moments(vals, probs)
    assert abs(s.mean() - mu) <= 5 * np.sqrt(var / SHOTS)
    assert sum(cnt.values()) == SHOTS
    vals_s, counts_s = np.unique(s, return_counts=True)
    assert {float(k): v for k, v in cnt.items()} == {float(k): int(v) for k, v in zip(vals_s, counts_s, strict=True)}
    pw = qdiff.sample(rc.circuit, 500, params=rc.theta, obs=X(0) @ Y(2), seed=1)
    assert set(np.unique(pw)) <= {-1.0, 1.0}


def test_seeded_reproducibility():
    rc, _ = _circuit(51, n=3)
    c, t = rc.circuit, rc.theta
    a = qdiff.sample(c, 1000, params=t, seed=7)
    np.testing.assert_array_equal(a, qdiff.sample(c, 1000, params=t, seed=7))
    np.testing.assert_array_equal(a, qdiff.sample(c, 1000, params=t, seed=np.random.default_rng(7)))
    assert not np.array_equal(a, qdiff.sample(c, 1000, params=t, seed=8))
    assert qdiff.counts(c, 1000, params=t, seed=7) == {
        "".join(map(str, k)): v for k, v in Counter(map(tuple, a.tolist())).items()}
    e1 = qdiff.expval(c, X(0) @ Z(1), t, shots=100, seed=3)
    assert e1 == qdiff.expval(c, X(0) @ Z(1), t, shots=100, seed=3)
    gen = np.random.default_rng(0)
    first, second = qdiff.sample(c, 50, params=t, seed=gen), qdiff.sample(c, 50, params=t, seed=gen)
    assert not np.array_equal(first, second)  # a Generator is advanced, not reset


def test_batched_shots():
    rc, rng = _circuit(61, n=3)
    thetas = rng.uniform(-3, 3, (2, rc.circuit.num_params))
    s, p, e, cnt = qdiff.execute(rc.circuit, [Sample((0, 2)), Probs((1,)), Expval(Z(1)), Counts()], thetas,
                                 shots=4000, seed=2)
    assert s.shape == (2, 4000, 2) and p.shape == (2, 2) and e.shape == (2,) and len(cnt) == 2
    for b in range(2):
        psi = qdiff.state(rc.circuit, thetas[b])
        p1 = np.clip(marginal_probs(psi, [1], 3), 0.0, 1.0)  # rounding may leave 1 + 4e-16
        assert np.all(np.abs(p[b] - p1) <= 5 * np.sqrt(p1 * (1 - p1) / 4000) + 1e-12)
        mu, var = _exact(psi, pauli_dense({1: "Z"}, 3))
        assert abs(e[b] - mu) <= 5 * np.sqrt(var / 4000) + 1e-12
        assert sum(cnt[b].values()) == 4000 and all(len(k) == 3 for k in cnt[b])


def _bell() -> Circuit:
    return Circuit(2).h(0).cnot(0, 1)


@pytest.mark.parametrize("mode", KERNEL_MODES)
def test_bell_state_correlations(mode):
    c = _bell()
    with kernel_mode(mode):
        s0, s1, z0, both, cnt, zz = qdiff.execute(
            c, [Sample((0,)), Sample((1,)), Sample(obs=Z(0)), Sample((0, 1)), Counts(), Expval(Z(0) @ Z(1))],
            shots=SHOTS, seed=5)
    np.testing.assert_array_equal(s0, s1)
    np.testing.assert_array_equal(z0, 1 - 2 * s0[:, 0])
    assert set(map(tuple, both.tolist())) <= {(0, 0), (1, 1)}
    assert set(cnt) <= {"00", "11"}
    assert abs(cnt.get("00", 0) - SHOTS / 2) <= 5 * np.sqrt(SHOTS / 4)
    assert zz == 1.0
    assert qdiff.expval(c, X(0) @ X(1), shots=100, seed=1) == 1.0
    assert qdiff.expval(c, Y(0) @ Y(1), shots=100, seed=1) == -1.0
    assert qdiff.var(c, X(0) @ X(1), shots=100, seed=1) == 0.0


@pytest.mark.parametrize("basis,sign", [("X", 1), ("Y", -1)])
def test_bell_state_correlations_in_rotated_bases(basis, sign):
    """X(0) and X(1) measured in one execution come from the same shots: their product is <XX> = +1."""
    c = _bell()
    p = {"X": X, "Y": Y}[basis]
    a, b = qdiff.execute(c, [Sample(obs=p(0)), Sample(obs=p(1))], shots=2000, seed=9)
    np.testing.assert_array_equal(a * b, sign * np.ones(2000))
    assert abs(a.mean()) <= 5 / np.sqrt(2000)
    ea, eb, eab = qdiff.execute(c, [Expval(p(0)), Expval(p(1)), Expval(p(0) @ p(1))], shots=2000, seed=9)
    assert eab == sign and ea == pytest.approx(sign * eb)


def test_ghz_samples_agree_across_measurements():
    c = Circuit(4).h(0).cnot(0, 1).cnot(1, 2).cnot(2, 3)
    s = qdiff.execute(c, [Sample((w,)) for w in range(4)] + [Sample((3, 1))], shots=1000, seed=3)
    for w in range(1, 4):
        np.testing.assert_array_equal(s[0], s[w])
    np.testing.assert_array_equal(s[4][:, 0], s[0][:, 0])


@pytest.mark.parametrize("mode", ["default", "numpy"])
@pytest.mark.parametrize("n", [1, 3, 20, 33, 63])
def test_index_bits_match_shifts(n, mode):
    """The CPU kernel and the numpy reference (unpacked bytes) both give the bits shifts give."""
    rng = np.random.default_rng(n)
    idx = rng.integers(0, 2**n, size=(2, 50), dtype=np.int64)
    idx[0, 0], idx[1, 0] = 0, 2**n - 1
    want = (idx[..., None] >> np.arange(n - 1, -1, -1)) & 1
    with kernel_mode(mode):
        got = qdiff.measure.index_bits(idx, n)
    assert got.dtype == np.int64 and got.shape == (2, 50, n)
    np.testing.assert_array_equal(got, want)


def test_samples_of_all_wires_returned_twice_do_not_share_memory():
    c = Circuit(3).h(0).cnot(0, 1).rx(0.4, 2)
    a, b, part = qdiff.execute(c, [Sample(), Sample(), Sample((2, 0))], shots=500, seed=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(part, a[:, [2, 0]])
    assert not np.shares_memory(a, b) and not np.shares_memory(part, a)
    a[:] = 7
    assert not np.any(b == 7)
