"""Property-based gradient tests (hypothesis): identities every correct gradient satisfies.

Circuits are drawn by the shared generator over the whole gate set (controls with values 0/1, inverse,
shared/scaled/offset parameters, QubitUnitary, state preparation); observables are Pauli words,
Hermitians, Hermitian x Pauli products and sums of them. Each property compares against an oracle that
does not share the code under test: another method, the chain rule on an expanded circuit, U U^dagger = I,
or algebraic relations between outputs (linearity, var = <O^2> - <O>^2, marginals of probabilities).
"""

from __future__ import annotations

import dataclasses

import circuits
import numpy as np
from gradient_helpers import GRADIENT_MIX, MeasSpec, ObsSpec, build, random_measurements, random_obs
from hypothesis import given, settings
from hypothesis import strategies as st

import qdiff
from qdiff import Circuit, Expval, Hermitian, Probs, Var

METHODS = ("adjoint", "parameter-shift", "finite-diff")
TOL = {"adjoint": 1e-10, "parameter-shift": 1e-9, "finite-diff": 1e-5}


@st.composite
def cases(draw, max_wires: int = 5, max_depth: int = 10, count: int | None = None):
    rc = circuits.random_circuit(draw, num_wires=(1, max_wires), depth=(1, max_depth), num_params=(1, 4),
                                 names=GRADIENT_MIX, control_prob=0.3)
    specs = random_measurements(circuits.Source(draw), rc.num_wires, count)
    return rc, specs


@settings(max_examples=80)
@given(cases())
def test_methods_agree(case):
    rc, specs = case
    ms = [s.qdiff() for s in specs]
    adj = qdiff.jacobian(rc.circuit, ms, rc.theta, "adjoint")
    for method in ("parameter-shift", "finite-diff"):
        other = qdiff.jacobian(rc.circuit, ms, rc.theta, method)
        for a, o in zip(adj, other, strict=True):
            np.testing.assert_allclose(o, a, rtol=0, atol=TOL[method], err_msg=method)


@settings(max_examples=25)
@given(cases(count=3), st.integers(0, 2**31 - 1), st.sampled_from(METHODS))
def test_vjp_and_jvp_contract_the_jacobian(case, seed, method):
    """vjp(cot) = sum_m cot_m . J_m and jvp(t) = J . t, with J from the adjoint Jacobian."""
    rc, specs = case
    ms = [s.qdiff() for s in specs]
    rng = np.random.default_rng(seed)
    jac = qdiff.jacobian(rc.circuit, ms, rc.theta, "adjoint")
    cots = [rng.normal(size=j.shape[:-1]) for j in jac]
    expected = sum(np.tensordot(c, j, axes=c.ndim) for c, j in zip(cots, jac, strict=True))
    np.testing.assert_allclose(qdiff.vjp(rc.circuit, ms, rc.theta, cots, method), expected, atol=10 * TOL[method])
    t = rng.normal(size=rc.circuit.num_params)
    for out, j in zip(qdiff.jvp(rc.circuit, ms, rc.theta, t, method), jac, strict=True):
        np.testing.assert_allclose(out, j @ t, atol=10 * TOL[method])


def _expanded(rc: circuits.RandomCircuit) -> tuple[circuits.RandomCircuit, np.ndarray]:
    """The same circuit with one plain parameter per trainable occurrence, and d(occurrence)/d(theta)."""
    records, chain, values = [], [], []
    for rec in rc.records:
        params = []
        for p in rec.params:
            if p.index is None:
                params.append(p)
                continue
            row = np.zeros(len(rc.theta))
            row[p.index] = p.coeff
            chain.append(row)
            values.append(p.coeff * rc.theta[p.index] + p.offset)
            params.append(circuits.ParamSpec(len(values) - 1))
        records.append(dataclasses.replace(rec, params=params))
    q = len(values)
    chain_m = np.array(chain).reshape(q, len(rc.theta))
    return build(rc.num_wires, records, max(q, 1), np.array(values + [0.0] * (q == 0)), rc.prep), chain_m


@settings(max_examples=50)
@given(cases(max_depth=8), st.sampled_from(("adjoint", "parameter-shift")))
def test_shared_parameters_follow_the_chain_rule(case, method):
    """Shared, scaled and offset parameters: J = J_expanded @ d(occurrences)/d(theta)."""
    rc, specs = case
    ex, chain = _expanded(rc)
    ms = [s.qdiff() for s in specs]
    jac = qdiff.jacobian(rc.circuit, ms, rc.theta, method)
    jex = qdiff.jacobian(ex.circuit, ms, ex.theta, method)
    for j, je in zip(jac, jex, strict=True):
        np.testing.assert_allclose(j, je[..., : chain.shape[0]] @ chain, atol=1e-9)


@settings(max_examples=50)
@given(cases(max_depth=8, count=1), st.sampled_from(METHODS))
def test_circuit_then_its_adjoint_has_zero_gradient(case, method):
    """U(theta) followed by U(theta)^dagger is the identity: every derivative vanishes (inverse ops, whose
    derivatives must cancel those of the forward ops exactly)."""
    rc, specs = case
    c = rc.circuit.copy()
    c.extend(rc.circuit.adjoint().operations)
    for j in qdiff.jacobian(c, [s.qdiff() for s in specs], rc.theta, method):
        np.testing.assert_allclose(j, 0, atol=TOL[method])


@settings(max_examples=50)
@given(cases(max_depth=8, count=1), st.integers(0, 2**31 - 1), st.sampled_from(("adjoint", "parameter-shift")))
def test_variance_gradient_identity(case, seed, method):
    """d Var(O) = d<O^2> - 2 <O> d<O>, with O^2 given as its own Hermitian observable."""
    rc, _ = case
    n = rc.num_wires
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, min(n, 2) + 1))
    wires = tuple(int(w) for w in rng.permutation(n)[:k])
    a = rng.normal(size=(2**k, 2**k)) + 1j * rng.normal(size=(2**k, 2**k))
    o = (a + a.conj().T) / 2
    ms = [Var(Hermitian(o, wires)), Expval(Hermitian(o @ o, wires)), Expval(Hermitian(o, wires))]
    (v, e2, e1), (jv, je2, je1) = qdiff.value_and_jacobian(rc.circuit, ms, rc.theta, method)
    np.testing.assert_allclose(v, e2 - e1**2, atol=1e-9)
    np.testing.assert_allclose(jv, je2 - 2 * e1 * je1, atol=1e-8)


@settings(max_examples=50)
@given(cases(max_depth=8, count=1), st.integers(0, 2**31 - 1), st.sampled_from(METHODS))
def test_linearity_in_the_observable(case, seed, method):
    """J(a A + b B) = a J(A) + b J(B) for expvals (A, B random words/Hermitians/products/sums)."""
    rc, _ = case
    rng = np.random.default_rng(seed)
    n = rc.num_wires
    oa, ob = random_obs(rng, n), random_obs(rng, n)
    a, b = rng.uniform(-2, 2, 2)
    both = ObsSpec(tuple((a * c, f) for c, f in oa.terms) + tuple((b * c, f) for c, f in ob.terms))
    ja, jb, jab = qdiff.jacobian(rc.circuit, [MeasSpec("expval", o).qdiff() for o in (oa, ob, both)], rc.theta,
                                 method)
    np.testing.assert_allclose(jab, a * ja + b * jb, atol=10 * TOL[method])


@settings(max_examples=50)
@given(cases(max_depth=8, count=1), st.integers(0, 2**31 - 1), st.sampled_from(METHODS))
def test_probability_jacobians_are_consistent(case, seed, method):
    """Probabilities sum to one (their derivatives to zero), marginals of probs(a, b) are probs(a), and
    d<Z...Z> is the signed sum of the probability derivatives."""
    rc, _ = case
    n = rc.num_wires
    rng = np.random.default_rng(seed)
    wires = tuple(int(w) for w in rng.permutation(n)[: min(n, 3)])
    word = qdiff.PauliWord({w: "Z" for w in wires})
    jp, jm, jz = qdiff.jacobian(rc.circuit, [Probs(wires), Probs(wires[:1]), Expval(word)], rc.theta, method)
    tol = 10 * TOL[method]
    np.testing.assert_allclose(jp.sum(axis=0), 0, atol=tol)
    np.testing.assert_allclose(jp.reshape(2, -1, jp.shape[-1]).sum(axis=1), jm, atol=tol)
    signs = np.array([(-1) ** bin(i).count("1") for i in range(2 ** len(wires))])
    np.testing.assert_allclose(signs @ jp, jz, atol=tol)


@settings(max_examples=20)
@given(cases(max_wires=4, max_depth=8), st.integers(1, 3), st.sampled_from(METHODS))
def test_batched_rows_equal_single_calls(case, batch, method):
    rc, specs = case
    ms = [s.qdiff() for s in specs]
    rng = np.random.default_rng(batch)
    thetas = np.vstack([rc.theta, rng.uniform(-np.pi, np.pi, (batch - 1, rc.circuit.num_params))])
    jacs = qdiff.jacobian(rc.circuit, ms, thetas, method)
    for b, t in enumerate(thetas):
        for jb, j1 in zip(jacs, qdiff.jacobian(rc.circuit, ms, t, method), strict=True):
            np.testing.assert_allclose(jb[b], j1, atol=1e-12)


@settings(max_examples=20)
@given(st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_periodicity_of_pauli_rotations(n, seed):
    """Gradients of circuits of Pauli rotations are 4 pi periodic in each parameter (and 2 pi for shared
    integer multiples): a check on ParamRef offsets and shifts, against the adjoint at the base point."""
    rng = np.random.default_rng(seed)
    c = Circuit(n)
    p = c.params(2)
    for w in range(n):
        c.rx(p[0] * 2 + float(rng.uniform(-1, 1)), w).ry(p[1] - 0.5, w)
        if w:
            c.cnot(w - 1, w)
    theta = rng.uniform(-np.pi, np.pi, 2)
    obs = qdiff.PauliWord({w: "XYZ"[w % 3] for w in range(n)})
    base = qdiff.grad(c, obs, theta)
    for method in ("parameter-shift", "adjoint"):
        np.testing.assert_allclose(qdiff.grad(c, obs, theta + [np.pi, 4 * np.pi], method), base, atol=1e-9)
