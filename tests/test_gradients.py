"""Gradient engine tests: adjoint, parameter-shift and finite differences against independent oracles.

Oracles: closed forms, PennyLane ``default.qubit`` backprop (autograd ``qml.jacobian``) on the same circuit
built with PennyLane's own classes, finite differences of qdiff's forward simulation, a dense numpy
simulation (matrix VJPs), and each method against the others. Every parameterised gate is covered with
controls (control values 0 and 1), ``inverse=True``, shared/scaled/offset parameters, fixed gates and
QubitUnitary matrices interleaved; outputs are expval, var and probs, alone, together and batched.
"""

from __future__ import annotations

import dataclasses
import zlib

import circuits
import numpy as np
import pytest
from gradient_helpers import (
    FIXED_GATES,
    GRADIENT_MIX,
    PARAM_GATES,
    MeasSpec,
    ObsSpec,
    build,
    entangling_layer,
    forced_record,
    pl_hessian,
    pl_value_and_jacobian,
    pl_values_and_jacobians,
    random_measurements,
    random_obs,
    random_records,
)

import qdiff
from qdiff import (
    Circuit,
    Counts,
    DensityMatrix,
    Expval,
    Hermitian,
    Probs,
    Sample,
    State,
    Var,
    X,
    Y,
    Z,
)
from qdiff.errors import DifferentiationError, ParameterError, QDiffError
from qdiff.gates import GATES, resolve_gate_name, shift_rule

METHODS = ("adjoint", "parameter-shift", "finite-diff")
TOL = {"parameter-shift": 1e-9, "finite-diff": 1e-5}
"""Agreement with the adjoint Jacobian: exact rules to 1e-9, central differences (h = 1e-6) to 1e-5."""
PL_TOL = 1e-9


def jacobians(circuit: Circuit, ms: list, theta: np.ndarray, **kw) -> dict[str, list[np.ndarray]]:
    return {m: qdiff.jacobian(circuit, ms, theta, m, **kw) for m in METHODS}


def assert_methods_agree(circuit: Circuit, specs: list[MeasSpec], theta: np.ndarray, context: str = "") -> list:
    """All three methods on all measurements at once; returns the adjoint Jacobians."""
    ms = [s.qdiff() for s in specs]
    jac = jacobians(circuit, ms, theta)
    for method, tol in TOL.items():
        for k, (a, o) in enumerate(zip(jac["adjoint"], jac[method], strict=True)):
            assert a.shape == o.shape, (context, method, k)
            np.testing.assert_allclose(o, a, rtol=0, atol=tol, err_msg=f"{context} {method} vs adjoint, output {k}")
    return jac["adjoint"]


def assert_matches_pennylane(rc: circuits.RandomCircuit, specs: list[MeasSpec], jac_adjoint: list,
                             context: str = "") -> None:
    values = qdiff.execute(rc.circuit, [s.qdiff() for s in specs], rc.theta)
    pl = pl_values_and_jacobians(rc, specs)
    for k, (spec, ja, (value, jp)) in enumerate(zip(specs, jac_adjoint, pl, strict=True)):
        np.testing.assert_allclose(values[k], value, rtol=0, atol=1e-9, err_msg=f"{context} value {k} ({spec.kind})")
        np.testing.assert_allclose(ja, jp, rtol=0, atol=PL_TOL, err_msg=f"{context} PennyLane jacobian {k}")


# ------------------------------------------------------------------------------------------------
# closed forms


THETAS = np.array([-2.7, -1.1, -0.3, 0.0, 0.4, 1.3, np.pi / 2, 2.9])


@pytest.mark.parametrize("method", METHODS)
def test_closed_form_rx_z(method):
    """<Z> after RX(t) is cos t: derivative -sin t (every theta of a batch)."""
    c = Circuit(1)
    c.rx(c.params(1)[0], 0)
    g = qdiff.jacobian(c, Z(0), THETAS[:, None], method)
    assert g.shape == (len(THETAS), 1)
    np.testing.assert_allclose(g[:, 0], -np.sin(THETAS), atol=TOL.get(method, 1e-12))
    for t in THETAS[:3]:
        np.testing.assert_allclose(qdiff.grad(c, Z(0), [t], method), [-np.sin(t)], atol=TOL.get(method, 1e-12))


@pytest.mark.parametrize("method", METHODS)
def test_closed_form_ry_x(method):
    """<X> after RY(t) is sin t: derivative cos t."""
    c = Circuit(1)
    c.ry(c.params(1)[0], 0)
    g = qdiff.jacobian(c, X(0), THETAS[:, None], method)
    np.testing.assert_allclose(g[:, 0], np.cos(THETAS), atol=TOL.get(method, 1e-12))


def test_crx_four_term_rule_is_exact():
    """CRX's generator spectrum {-1/2, 0, 1/2} gives PennyLane's four-term rule, exact at every angle."""
    coeffs, shifts = shift_rule(np.array([-0.5, 0.5, 0.0]))
    order = np.argsort(shifts)
    c_plus = (np.sqrt(2) + 1) / (4 * np.sqrt(2))
    c_minus = (np.sqrt(2) - 1) / (4 * np.sqrt(2))
    np.testing.assert_allclose(shifts[order], [-3 * np.pi / 2, -np.pi / 2, np.pi / 2, 3 * np.pi / 2], atol=1e-14)
    np.testing.assert_allclose(coeffs[order], [c_minus, -c_plus, c_plus, -c_minus], atol=1e-14)
    # the rule differentiates every trigonometric polynomial of frequencies 1/2 and 1 exactly
    rng = np.random.default_rng(0)
    a = rng.normal(size=5)

    def f(t):
        return a[0] + a[1] * np.cos(t / 2) + a[2] * np.sin(t / 2) + a[3] * np.cos(t) + a[4] * np.sin(t)

    def df(t):
        return -a[1] / 2 * np.sin(t / 2) + a[2] / 2 * np.cos(t / 2) - a[3] * np.sin(t) + a[4] * np.cos(t)

    for t in THETAS:
        assert abs(sum(ci * f(t + si) for ci, si in zip(coeffs, shifts, strict=True)) - df(t)) < 1e-13
    # and in a circuit: H on the control, CRX(t) -> <Z_1> = (1 + cos t) / 2, plus <Y_1> = -sin(t) / 2
    c = Circuit(2)
    c.h(0).crx(c.params(1)[0], wires=[0, 1])
    for method in METHODS:
        jz, jy = qdiff.jacobian(c, [Z(1), Y(1)], THETAS[:, None], method)
        np.testing.assert_allclose(jz[:, 0], -np.sin(THETAS) / 2, atol=TOL.get(method, 1e-12))
        np.testing.assert_allclose(jy[:, 0], -np.cos(THETAS) / 2, atol=TOL.get(method, 1e-12))


@pytest.mark.parametrize("method", METHODS)
def test_closed_form_phase_shift_ramsey(method):
    """H, PhaseShift(phi), H: <Z> = cos phi, p(0) = (1 + cos phi) / 2."""
    c = Circuit(1)
    c.h(0).phase_shift(c.params(1)[0], 0).h(0)
    jz, jp = qdiff.jacobian(c, [Z(0), Probs((0,))], THETAS[:, None], method)
    tol = TOL.get(method, 1e-12)
    np.testing.assert_allclose(jz[:, 0], -np.sin(THETAS), atol=tol)
    np.testing.assert_allclose(jp[:, :, 0], np.stack([-np.sin(THETAS) / 2, np.sin(THETAS) / 2], axis=1), atol=tol)


@pytest.mark.parametrize("method", METHODS)
def test_closed_form_var_after_rx(method):
    """Var(Z) after RX(t) is 1 - cos^2 t: derivative 2 sin t cos t."""
    c = Circuit(1)
    c.rx(c.params(1)[0], 0)
    values, g = qdiff.value_and_grad(c, Var(Z(0)), THETAS[:, None], method)
    np.testing.assert_allclose(values, 1 - np.cos(THETAS) ** 2, atol=1e-12)
    np.testing.assert_allclose(g[:, 0], 2 * np.sin(THETAS) * np.cos(THETAS), atol=TOL.get(method, 1e-12))


@pytest.mark.parametrize("method", METHODS)
def test_param_ref_coefficient_and_offset(method):
    """RX(2 p0 + 0.1): <Z> = cos(2 t + 0.1), derivative -2 sin(2 t + 0.1); a shared second use adds up."""
    c = Circuit(1)
    p = c.params(1)
    c.rx(2 * p[0] + 0.1, 0)
    np.testing.assert_allclose(qdiff.jacobian(c, Z(0), THETAS[:, None], method)[:, 0],
                               -2 * np.sin(2 * THETAS + 0.1), atol=TOL.get(method, 1e-12))
    c.rx(-0.5 * p[0] + 0.3, 0)  # total angle 1.5 t + 0.4
    np.testing.assert_allclose(qdiff.jacobian(c, Z(0), THETAS[:, None], method)[:, 0],
                               -1.5 * np.sin(1.5 * THETAS + 0.4), atol=TOL.get(method, 1e-12))


# ------------------------------------------------------------------------------------------------
# every parameterised gate, with controls, control values 0/1 and inverse, against PennyLane


def test_gate_lists_cover_the_gate_table():
    """PARAM_GATES is exactly the set of gate names with parameters (so the coverage below is complete)."""
    from qdiff.gates import GATE_NAMES

    with_params = {name for name in GATE_NAMES if resolve_gate_name(name)[0].num_params > 0}
    assert set(PARAM_GATES) == with_params
    assert set(PARAM_GATES) | set(FIXED_GATES) == set(GATE_NAMES)
    assert {"QubitUnitary", "DiagonalQubitUnitary", "CNOT", "Toffoli", "MultiControlledX"} <= set(FIXED_GATES)


CONTROL_VARIANTS = [(0, "1"), (1, "0"), (2, "mixed")]
"""(extra control wires, control values on all controls); aliases with controls (CRX, ...) also get (0, "0")."""


@pytest.mark.parametrize("inverse", [False, True], ids=["plain", "inverse"])
@pytest.mark.parametrize("name", PARAM_GATES)
def test_each_parameterised_gate(name, inverse):
    """The gate (trainable, shared, scaled and offset parameters) between random layers of the whole gate
    set: three methods agree, and match PennyLane backprop, for expval of a Hamiltonian, var and probs."""
    rng = np.random.default_rng(zlib.crc32(f"{name}-{inverse}".encode()))  # stable across processes
    n, num_params = (6 if name == "DoubleExcitation" else 4), 3
    biggest = 0.0
    variants = CONTROL_VARIANTS + ([(0, "0")] if circuits.pl_base(name)[1] else [])
    for extra, cvals in variants:
        records = (entangling_layer(n, rng, num_params) + random_records(rng, n, num_params, 2)
                   + [forced_record(rng, name, n, num_params, extra, cvals, inverse)]
                   + random_records(rng, n, num_params, 2) + entangling_layer(n, rng, num_params))
        theta = rng.uniform(-np.pi, np.pi, num_params)
        rc = build(n, records, num_params, theta)
        specs = [MeasSpec("expval", random_obs(rng, n, "sum")), MeasSpec("var", random_obs(rng, n)),
                 MeasSpec("probs", wires=tuple(rng.permutation(n)[:2].tolist()))]
        context = f"{name} inverse={inverse} extra_controls={extra} cvals={cvals}: {rc.circuit!r}"
        jac = assert_methods_agree(rc.circuit, specs, theta, context)
        assert_matches_pennylane(rc, specs, jac, context)
        biggest = max(biggest, max(np.abs(j).max() for j in jac))
    assert biggest > 1e-3  # the comparisons above were not all between zeros


@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("controls", [(), (0,), (0, 2)])
def test_global_phase_controlled_and_not(controls, inverse):
    """GlobalPhase: no gradient alone, a relative phase when controlled (control value 0 and 1)."""
    for cvals in ([1] * len(controls), [0] * len(controls)):
        rec = circuits.GateRecord("GlobalPhase", [circuits.ParamSpec(0, 2.0, 0.1)], (), tuple(controls),
                                  tuple(cvals) if controls else None, inverse)
        h = [circuits.GateRecord("Hadamard", [], (w,)) for w in range(3)]
        rc = build(3, h + [rec] + h, 1, np.array([0.37]))
        specs = [MeasSpec("expval", ObsSpec(((1.0, (((0,), "Z"),)),), True)), MeasSpec("probs")]
        jac = assert_methods_agree(rc.circuit, specs, rc.theta)
        assert_matches_pennylane(rc, specs, jac)
        assert (np.abs(jac[1]).max() > 1e-3) == bool(controls)


@pytest.mark.parametrize("name", ["MultiRZ", "PauliRot"])
def test_wide_rotations(name):
    """MultiRZ/PauliRot on 5-6 targets (differentiated through their generators, not dense derivative
    matrices), plain, inverse and controlled with control values 0/1, against PennyLane."""
    rng = np.random.default_rng(len(name))
    n, num_params = 7, 2
    for targets, controls, cvals, inverse in [(5, (), None, False), (6, (), None, True), (5, (6,), (1,), False),
                                              (5, (5, 6), (0, 1), True), (6, (6,), (0,), False)]:
        wires = tuple(int(w) for w in rng.permutation([w for w in range(n) if w not in controls])[:targets])
        word = "".join(rng.choice(list("IXYZ"), targets)) if name == "PauliRot" else None
        if word is not None and set(word) == {"I"}:
            word = "X" + word[1:]
        rec = circuits.GateRecord(name, [circuits.ParamSpec(0, -1.5, 0.2)], wires, controls, cvals, inverse, word)
        records = (entangling_layer(n, rng, num_params) + [rec] + random_records(rng, n, num_params, 2)
                   + entangling_layer(n, rng, num_params))
        rc = build(n, records, num_params, rng.uniform(-np.pi, np.pi, num_params))
        specs = [MeasSpec("expval", random_obs(rng, n, "sum")), MeasSpec("var", random_obs(rng, n, "product")),
                 MeasSpec("probs", wires=(int(wires[0]), int(wires[1])))]
        context = f"{name} targets={targets} controls={controls} cvals={cvals} inverse={inverse}"
        jac = assert_methods_agree(rc.circuit, specs, rc.theta, context)
        assert_matches_pennylane(rc, specs, jac, context)
        # the wide gate's own contribution: the same circuit with the gate's parameter frozen differs
        fixed = dataclasses.replace(rec, params=[circuits.ParamSpec(value=-1.5 * rc.theta[0] + 0.2)])
        frozen = build(n, [fixed if r is rec else r for r in records], num_params, rc.theta)
        jf = qdiff.jacobian(frozen.circuit, [s.qdiff() for s in specs], rc.theta)
        assert max(np.abs(a[..., 0] - f[..., 0]).max() for a, f in zip(jac, jf, strict=True)) > 1e-4, context


# ------------------------------------------------------------------------------------------------
# random circuits over the whole gate set, 1..8 qubits, several measurements at once


@pytest.mark.parametrize("seed", range(32))
def test_random_circuits_whole_gate_set(seed):
    rng = np.random.default_rng(1000 + seed)
    n = 1 + seed % 8
    num_params = int(rng.integers(1, 6))
    rc = circuits.random_circuit(rng, num_wires=n, depth=(3, 14), num_params=num_params, names=GRADIENT_MIX,
                                 control_prob=0.3, inverse_prob=0.3)
    records = rc.records + entangling_layer(n, rng, num_params) + random_records(rng, n, num_params, 3)
    rc = build(n, records, num_params, rc.theta, rc.prep)
    specs = random_measurements(rng, n, count=int(rng.integers(1, 4)))
    context = f"seed {seed}: {rc.circuit!r} {specs}"
    jac = assert_methods_agree(rc.circuit, specs, rc.theta, context)
    assert_matches_pennylane(rc, specs, jac, context)


def _mixed_circuit(seed: int, n: int = 4, num_params: int = 4) -> tuple[circuits.RandomCircuit, list[MeasSpec]]:
    rng = np.random.default_rng(seed)
    records = (entangling_layer(n, rng, num_params) + random_records(rng, n, num_params, 8)
               + entangling_layer(n, rng, num_params))
    rc = build(n, records, num_params, rng.uniform(-np.pi, np.pi, num_params))
    specs = [MeasSpec("expval", random_obs(rng, n, "sum")), MeasSpec("var", random_obs(rng, n, "product")),
             MeasSpec("probs", wires=(2, 0)), MeasSpec("probs")]
    return rc, specs


@pytest.mark.parametrize("method", METHODS)
def test_batched_parameters_equal_a_loop(method):
    rc, specs = _mixed_circuit(7)
    ms = [s.qdiff() for s in specs]
    thetas = np.random.default_rng(3).uniform(-np.pi, np.pi, (3, rc.circuit.num_params))
    values, jacs = qdiff.value_and_jacobian(rc.circuit, ms, thetas, method)
    for b, t in enumerate(thetas):
        v1, j1 = qdiff.value_and_jacobian(rc.circuit, ms, t, method)
        for k in range(len(ms)):
            assert jacs[k].shape == (3,) + j1[k].shape
            np.testing.assert_allclose(jacs[k][b], j1[k], rtol=0, atol=1e-12)
            np.testing.assert_allclose(values[k][b], v1[k], rtol=0, atol=1e-12)
    # and the batch is right, not only consistent: row 1 against PennyLane
    for k, (_, jp) in enumerate(pl_values_and_jacobians(rc, specs, thetas[1])):
        np.testing.assert_allclose(jacs[k][1], jp, atol=TOL.get(method, PL_TOL))


def test_batched_gate_data_and_state_prep():
    """Batched QubitUnitary matrices and StatePrep amplitudes: the adjoint Jacobian row b is parameter-shift
    on entry b alone; parameter-shift and finite differences refuse the batched circuit clearly."""
    from scipy.stats import unitary_group

    rng = np.random.default_rng(8)
    us = np.stack([unitary_group.rvs(2, random_state=i) for i in range(3)])
    amps = rng.normal(size=(3, 4)) + 1j * rng.normal(size=(3, 4))
    amps /= np.linalg.norm(amps, axis=1, keepdims=True)

    def make(u, amp):
        c = Circuit(2)
        p = c.params(2)
        c.state_vector(amp)
        c.rx(p[0], 0).add("QubitUnitary", wires=0, hyper=u)
        c.crz(2 * p[1] - 0.3, wires=[0, 1]).ry(p[0], 1)
        return c

    ms = [Z(1), Var(X(0) @ Y(1)), Probs((1,))]
    theta = np.array([0.3, -0.5])
    batched = make(us, amps)
    jb = qdiff.jacobian(batched, ms, theta)
    vb = qdiff.vjp(batched, ms, theta, [np.ones(3), np.ones(3), np.ones((3, 2))])
    for b in range(3):
        single = make(us[b], amps[b])
        js = qdiff.jacobian(single, ms, theta, "parameter-shift")
        for x, y in zip(jb, js, strict=True):
            np.testing.assert_allclose(x[b], y, atol=1e-9)
        np.testing.assert_allclose(vb[b], js[0] + js[1] + js[2].sum(axis=0), atol=1e-9)
    for method in ("parameter-shift", "finite-diff"):
        with pytest.raises(DifferentiationError, match="adjoint"):
            qdiff.jacobian(batched, ms, theta, method)


def test_no_parameters_and_complex64():
    c = Circuit(2)
    c.h(0).cnot(0, 1)
    for method in METHODS:
        j = qdiff.jacobian(c, [Z(0), Probs()], None, method)
        assert j[0].shape == (0,) and j[1].shape == (4, 0)
    assert qdiff.hessian(c, Z(0), np.zeros(0)).shape == (0, 0)
    c = Circuit(3)
    p = c.params(3)
    c.rot(p[0], p[0], p[0], wires=0).crot(p[1], 2 * p[0], p[2], wires=[0, 2]).cnot(2, 1)
    c.u3(p[2], p[1], p[0], wires=1)
    theta = np.array([0.3, 1.2, -0.4])
    exact = qdiff.jacobian(c, [Z(1), Probs()], theta, "parameter-shift")
    for x, y in zip(qdiff.jacobian(c, [Z(1), Probs()], theta, dtype=np.complex64), exact, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_value_and_jacobian_values_equal_execute(method):
    rc, specs = _mixed_circuit(11)
    ms = [s.qdiff() for s in specs]
    values, _ = qdiff.value_and_jacobian(rc.circuit, ms, rc.theta, method)
    expected = qdiff.execute(rc.circuit, ms, rc.theta)
    for v, e in zip(values, expected, strict=True):
        assert np.shape(v) == np.shape(e)
        np.testing.assert_allclose(v, e, rtol=0, atol=1e-12)
    v, g = qdiff.value_and_grad(rc.circuit, ms[1], rc.theta, method)
    np.testing.assert_allclose(v, expected[1], atol=1e-12)
    np.testing.assert_allclose(g, pl_value_and_jacobian(rc, specs[1])[1], atol=TOL.get(method, PL_TOL))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("batched", [False, True])
def test_vjp_and_jvp(method, batched):
    """vjp = sum_m cot_m . J_m and jvp = J . t, with J from PennyLane backprop (and from the same method)."""
    rc, specs = _mixed_circuit(5)
    ms = [s.qdiff() for s in specs]
    rng = np.random.default_rng(2)
    p = rc.circuit.num_params
    theta = rng.uniform(-np.pi, np.pi, (2, p)) if batched else rc.theta
    rows = theta if batched else theta[None]
    pl_jacs = [[j for _, j in pl_values_and_jacobians(rc, specs, t)] for t in rows]
    own = qdiff.jacobian(rc.circuit, ms, theta, method)
    lead = (2,) if batched else ()
    cots = [rng.normal(size=lead + j.shape[:-1]) for j in pl_jacs[0]]
    tangent = rng.normal(size=lead + (p,))
    got = qdiff.vjp(rc.circuit, ms, theta, cots, method)
    assert got.shape == lead + (p,)
    tol = TOL.get(method, 1e-9) * 20
    for b in range(len(rows)):
        cb = [c[b] if batched else c for c in cots]
        expected = sum(np.tensordot(c, j, axes=c.ndim) for c, j in zip(cb, pl_jacs[b], strict=True))
        own_b = sum(np.tensordot(c, j[b] if batched else j, axes=c.ndim) for c, j in zip(cb, own, strict=True))
        np.testing.assert_allclose(got[b] if batched else got, expected, atol=tol)
        np.testing.assert_allclose(got[b] if batched else got, own_b, atol=1e-12)
    jv = qdiff.jvp(rc.circuit, ms, theta, tangent, method)
    for k, out in enumerate(jv):
        for b in range(len(rows)):
            t = tangent[b] if batched else tangent
            np.testing.assert_allclose(out[b] if batched else out, pl_jacs[b][k] @ t, atol=tol)
    # a single measurement with a single cotangent
    g1 = qdiff.vjp(rc.circuit, ms[0], theta, cots[0], method)
    np.testing.assert_allclose(g1, qdiff.vjp(rc.circuit, [ms[0]], theta, [cots[0]], method), atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_argnum_selects_parameters(method):
    rc, specs = _mixed_circuit(13)
    ms = [s.qdiff() for s in specs]
    full = qdiff.jacobian(rc.circuit, ms, rc.theta, method)
    for argnum in ([2, 0], 3, (1,)):
        part = qdiff.jacobian(rc.circuit, ms, rc.theta, method, argnum=argnum)
        for f, q in zip(full, part, strict=True):
            np.testing.assert_array_equal(q, f[..., np.atleast_1d(argnum)])


# ------------------------------------------------------------------------------------------------
# Hessians


def _hessian_circuit(seed: int) -> tuple[circuits.RandomCircuit, ObsSpec]:
    """Controlled rotations (four-term rules), Rot/U3 factors, shared scaled parameters, a QubitUnitary."""
    rng = np.random.default_rng(seed)
    n, p = 3, 3
    names = ("CRX", "CRY", "CRot", "Rot", "U3", "IsingXY", "RX", "PhaseShift", "ControlledPhaseShift",
             "QubitUnitary", "CNOT")
    records = entangling_layer(n, rng, p) + random_records(rng, n, p, 4, names)
    return build(n, records, p, rng.uniform(-np.pi, np.pi, p)), random_obs(rng, n, "sum")


@pytest.mark.parametrize("seed", range(3))
def test_hessian_param_shift_vs_fd_and_pennylane(seed):
    rc, obs = _hessian_circuit(seed)
    c, theta = rc.circuit, rc.theta
    h = qdiff.hessian(c, obs.qdiff(), theta)
    p = c.num_params
    assert h.shape == (p, p)
    np.testing.assert_allclose(h, h.T, atol=1e-12)
    # finite differences of the adjoint gradient
    eps = 1e-5
    fd = np.stack([(qdiff.grad(c, obs.qdiff(), theta + eps * e) - qdiff.grad(c, obs.qdiff(), theta - eps * e))
                   / (2 * eps) for e in np.eye(p)], axis=1)
    np.testing.assert_allclose(h, fd, atol=1e-6)
    np.testing.assert_allclose(h, pl_hessian(rc, obs), atol=1e-9)
    assert np.abs(h).max() > 1e-2


def test_hessian_of_probs_and_batched():
    rc, _ = _hessian_circuit(5)
    c = rc.circuit
    thetas = np.random.default_rng(1).uniform(-np.pi, np.pi, (2, c.num_params))
    h = qdiff.hessian(c, Probs((1, 0)), thetas)
    assert h.shape == (2, 4, c.num_params, c.num_params)
    eps = 1e-5
    for b, t in enumerate(thetas):
        np.testing.assert_allclose(h[b], qdiff.hessian(c, Probs((1, 0)), t), atol=1e-12)
        fd = np.stack([(qdiff.jacobian(c, Probs((1, 0)), t + eps * e) - qdiff.jacobian(c, Probs((1, 0)), t - eps * e))
                       / (2 * eps) for e in np.eye(c.num_params)], axis=-1)
        np.testing.assert_allclose(h[b], fd, atol=1e-6)
        np.testing.assert_allclose(h[b].sum(axis=0), 0, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# QubitUnitary matrix VJPs against complex finite differences of a dense simulation


def _embed(matrix: np.ndarray, wires: tuple[int, ...], n: int) -> np.ndarray:
    """Dense operator of ``matrix`` on ``wires`` by explicit index arithmetic."""
    k = len(wires)
    dim = 2**n
    out = np.zeros((dim, dim), dtype=complex)
    for col in range(dim):
        bits = [(col >> (n - 1 - w)) & 1 for w in range(n)]
        j = int("".join(str(bits[w]) for w in wires), 2) if k else 0
        for i in range(2**k):
            new = list(bits)
            for pos, w in enumerate(wires):
                new[w] = (i >> (k - 1 - pos)) & 1
            out[int("".join(map(str, new)), 2), col] += matrix[i, j]
    return out


def _dense_state(circuit: Circuit, theta: np.ndarray) -> np.ndarray:
    n = circuit.num_wires
    psi = np.zeros(2**n, dtype=complex)
    psi[0] = 1
    for op in circuit.operations:
        psi = _embed(op.matrix(theta), op.all_wires, n) @ psi
    return psi


def _replaced(ops: tuple, index: int, op: object) -> tuple:
    """``ops`` with entry ``index`` replaced (a circuit's operations are a tuple)."""
    return ops[:index] + (op,) + ops[index + 1:]


def _dense_loss(circuit: Circuit, theta: np.ndarray, parts: list) -> float:
    """``sum_m cot_m . output_m`` for an unnormalised dense state (the polynomial extension in U, U*)."""
    n = circuit.num_wires
    psi = _dense_state(circuit, theta)
    total = 0.0
    for kind, data, cot in parts:
        if kind == "expval":
            total += cot * np.real(np.vdot(psi, data @ psi))
        elif kind == "var":
            e = np.real(np.vdot(psi, data @ psi))
            total += cot * (np.real(np.vdot(psi, data @ (data @ psi))) - e**2)
        else:
            probs = np.abs(psi) ** 2
            marg = np.zeros(2 ** len(data))
            for i, pr in enumerate(probs):
                bits = [(i >> (n - 1 - w)) & 1 for w in range(n)]
                marg[int("".join(str(bits[w]) for w in data), 2)] += pr
            total += float(np.dot(cot, marg))
    return total


MATRIX_CASES = {
    "plain": dict(wires=(1,), controls=(), cvals=None, inverse=False),
    "two_wires_inverse": dict(wires=(2, 0), controls=(), cvals=None, inverse=True),
    "controlled_cv1": dict(wires=(0,), controls=(2,), cvals=(1,), inverse=False),
    "controlled_cv0_inverse": dict(wires=(1, 2), controls=(0,), cvals=(0,), inverse=True),
    "two_controls_mixed_inverse": dict(wires=(1,), controls=(0, 2), cvals=(1, 0), inverse=True),
}


@pytest.mark.parametrize("case", list(MATRIX_CASES))
def test_matrix_vjp_equals_complex_finite_differences(case):
    from scipy.stats import unitary_group

    spec = MATRIX_CASES[case]
    rng = np.random.default_rng(len(case))
    n = 3
    c = Circuit(n)
    p = c.params(2)
    for w in range(n):
        c.ry(rng.uniform(-2, 2), w)
    c.crx(p[0], wires=[0, 1]).cnot(1, 2)
    u = unitary_group.rvs(2 ** len(spec["wires"]), random_state=int(rng.integers(2**31)))
    kw = {"controls": spec["controls"]} if spec["controls"] else {}
    if spec["cvals"] is not None:
        kw["control_values"] = spec["cvals"]
    c.add("QubitUnitary", wires=spec["wires"], hyper=u, inverse=spec["inverse"], **kw)
    index = len(c.operations) - 1
    c.rot(p[1], 0.3, -0.7, wires=2).cnot(2, 0)
    theta = rng.uniform(-np.pi, np.pi, 2)
    herm = np.array([[0.7, 0.2 - 0.4j], [0.2 + 0.4j, -0.3]])
    obs_e = 0.5 * Z(0) @ X(2) + Hermitian(herm, 1)
    obs_v = Y(1) @ Z(2)
    cot_e, cot_v, cot_p = 0.8, -1.3, rng.normal(size=4)
    ms = [Expval(obs_e), Var(obs_v), Probs((2, 0))]
    got = qdiff.matrix_vjp(c, ms, theta, [cot_e, cot_v, cot_p])
    assert set(got) == {index} and got[index].shape == u.shape
    # dense observables written out by hand (Kronecker products), not from qdiff
    dense_e = 0.5 * _embed(np.kron(np.diag([1, -1]), np.array([[0, 1], [1, 0]])), (0, 2), n) + _embed(herm, (1,), n)
    dense_v = _embed(np.kron(np.array([[0, -1j], [1j, 0]]), np.diag([1, -1])), (1, 2), n)
    parts = [("expval", dense_e, cot_e), ("var", dense_v, cot_v), ("probs", (2, 0), cot_p)]
    eps = 1e-6
    fd = np.zeros_like(u)
    op = c.operations[index]
    for i in range(u.shape[0]):
        for j in range(u.shape[1]):
            vals = []
            for delta in (eps, -eps, 1j * eps, -1j * eps):
                pert = u.copy()
                pert[i, j] += delta
                c.operations = _replaced(c.operations, index, dataclasses.replace(op, hyper=pert))
                vals.append(_dense_loss(c, theta, parts))
            fd[i, j] = (vals[0] - vals[1]) / (2 * eps) + 1j * (vals[2] - vals[3]) / (2 * eps)
    c.operations = _replaced(c.operations, index, op)
    np.testing.assert_allclose(got[index], fd, atol=1e-7)
    assert np.abs(fd).max() > 1e-3
    # the parameter gradient of the same sweep is the VJP
    np.testing.assert_allclose(qdiff.vjp(c, ms, theta, [cot_e, cot_v, cot_p]),
                               qdiff.vjp(c, ms, theta, [cot_e, cot_v, cot_p], "parameter-shift"), atol=1e-9)
    # batched parameters: each row as its own call
    thetas = np.stack([theta, theta + 0.4])
    batched = qdiff.matrix_vjp(c, ms, thetas, [np.full(2, cot_e), np.full(2, cot_v), np.stack([cot_p] * 2)])
    assert batched[index].shape == (2,) + u.shape
    for b, t in enumerate(thetas):
        np.testing.assert_allclose(batched[index][b], qdiff.matrix_vjp(c, ms, t, [cot_e, cot_v, cot_p])[index],
                                   atol=1e-12)


def test_matrix_vjp_rejects_non_unitary_ops():
    c = Circuit(1)
    c.rx(c.params(1)[0], 0)
    with pytest.raises(DifferentiationError, match="not a QubitUnitary"):
        qdiff.matrix_vjp(c, Z(0), [0.1], 1.0, ops=[0])


# ------------------------------------------------------------------------------------------------
# shots: parameter-shift estimates are unbiased


def test_shot_parameter_shift_is_unbiased():
    """Mean over 30 seeded repeats within 5 standard errors (estimated from the repeats) of the exact
    Jacobian, for expval of a sum of non-commuting terms, var, and probs; repeats really vary."""
    c = Circuit(2)
    p = c.params(3)
    c.rx(p[0], 0).cry(p[1], wires=[0, 1]).rot(p[2], 0.4, 2 * p[0] - 0.3, wires=1).cnot(1, 0)
    theta = np.array([0.7, -1.1, 0.5])
    ms = [Expval(Z(0) @ X(1) + 0.5 * Y(0)), Var(Z(1)), Var(Hermitian(np.array([[1.0, 0.5], [0.5, -0.2]]), 0)),
          Probs((1, 0))]
    exact = qdiff.jacobian(c, ms, theta)
    reps = 30
    runs = [qdiff.jacobian(c, ms, theta, "parameter-shift", shots=1000, seed=s) for s in range(reps)]
    for k, e in enumerate(exact):
        est = np.stack([r[k] for r in runs])
        mean, se = est.mean(axis=0), est.std(axis=0, ddof=1) / np.sqrt(reps)
        assert np.all(se[np.abs(e) > 1e-3] > 0), k  # shots were used
        assert np.all(np.abs(mean - e) <= 5 * se + 1e-12), (k, mean, e, se)
    # seeded runs repeat, different seeds differ
    again = qdiff.jacobian(c, ms, theta, "parameter-shift", shots=1000, seed=3)
    for a, b in zip(again, runs[3], strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(runs[0][0], runs[1][0])


def test_shot_vjp_matches_its_jacobian():
    c = Circuit(2)
    p = c.params(2)
    c.h(0).crx(p[0], wires=[0, 1]).ry(p[1], 1)
    ms = [Z(1), Probs((0, 1))]
    cots = [1.5, np.array([0.1, -0.2, 0.3, 0.4])]
    j = qdiff.jacobian(c, ms, [0.3, 0.8], "parameter-shift", shots=500, seed=9)
    v = qdiff.vjp(c, ms, [0.3, 0.8], cots, "parameter-shift", shots=500, seed=9)
    np.testing.assert_allclose(v, cots[0] * j[0] + cots[1] @ j[1], atol=1e-12)


# ------------------------------------------------------------------------------------------------
# bad input


def _small() -> Circuit:
    c = Circuit(2)
    p = c.params(2)
    c.rx(p[0], 0).cnot(0, 1).ry(p[1], 1)
    return c


@pytest.mark.parametrize("m", [Sample(), Sample(wires=(0,)), Counts(), State(), DensityMatrix((0,))],
                         ids=["sample", "sample_w", "counts", "state", "dm"])
@pytest.mark.parametrize("method, shots", [("adjoint", None), ("parameter-shift", None),
                                           ("parameter-shift", 100), ("finite-diff", None)])
def test_non_differentiable_measurements(m, method, shots):
    with pytest.raises(DifferentiationError, match="not differentiable"):
        qdiff.jacobian(_small(), m, [0.1, 0.2], method, shots=shots)
    with pytest.raises(DifferentiationError, match="not differentiable"):
        qdiff.jacobian(_small(), [Z(0), m], [0.1, 0.2], method, shots=shots)
    with pytest.raises(DifferentiationError):
        qdiff.vjp(_small(), m, [0.1, 0.2], 1.0, method, shots=shots)


@pytest.mark.parametrize("method", METHODS)
def test_argnum_for_missing_parameter(method):
    with pytest.raises(DifferentiationError, match=r"\[5\] do not exist"):
        qdiff.jacobian(_small(), Z(0), [0.1, 0.2], method, argnum=5)
    with pytest.raises(DifferentiationError, match="do not exist"):
        qdiff.jacobian(_small(), Z(0), [0.1, 0.2], method, argnum=[0, -1])
    with pytest.raises(ParameterError):
        qdiff.jacobian(_small(), Z(0), [0.1, 0.2], method, argnum=0.5)


def test_adjoint_refuses_shots():
    for call in (lambda: qdiff.jacobian(_small(), Z(0), [0.1, 0.2], shots=100),
                 lambda: qdiff.grad(_small(), Z(0), [0.1, 0.2], "adjoint", shots=10),
                 lambda: qdiff.vjp(_small(), Z(0), [0.1, 0.2], 1.0, "adjoint", shots=10)):
        with pytest.raises(DifferentiationError, match="parameter-shift"):
            call()


def test_unknown_method():
    with pytest.raises(DifferentiationError, match="unknown differentiation method 'backprop'"):
        qdiff.jacobian(_small(), Z(0), [0.1, 0.2], "backprop")
    with pytest.raises(DifferentiationError, match="unknown"):
        qdiff.vjp(_small(), Z(0), [0.1, 0.2], 1.0, "spsa")


@pytest.mark.parametrize("method", METHODS)
def test_bad_cotangents(method):
    c, t = _small(), [0.1, 0.2]
    for bad in (np.ones(2), np.ones(3)):
        with pytest.raises(DifferentiationError, match="does not match the output shape"):
            qdiff.vjp(c, Z(0), t, bad, method)
    for bad in (np.ones(3), np.ones(8)):
        with pytest.raises(DifferentiationError, match="does not match the output shape"):
            qdiff.vjp(c, Probs((0, 1)), t, bad, method)
    with pytest.raises(DifferentiationError, match="does not match the output shape"):
        qdiff.vjp(c, Z(0), [t, t], 1.0, method)  # batched parameters need one cotangent per row
    with pytest.raises(DifferentiationError, match="must be real"):
        qdiff.vjp(c, Z(0), t, 1.0 + 0.5j, method)
    with pytest.raises(DifferentiationError, match="must be real"):
        qdiff.vjp(c, [Z(0), Probs((0,))], t, [1.0, np.array([1, 1j])], method)
    with pytest.raises(DifferentiationError, match="cotangent"):
        qdiff.vjp(c, [Z(0), Z(1)], t, [1.0], method)


def test_other_bad_input():
    c = _small()
    with pytest.raises(DifferentiationError, match="one scalar"):
        qdiff.grad(c, [Z(0), Z(1)], [0.1, 0.2])
    with pytest.raises(DifferentiationError, match="scalar output"):
        qdiff.grad(c, Probs((0,)), [0.1, 0.2])
    with pytest.raises(DifferentiationError, match="not var"):
        qdiff.hessian(c, Var(Z(0)), [0.1, 0.2])
    with pytest.raises(DifferentiationError, match="one measurement"):
        qdiff.hessian(c, [Z(0), Z(1)], [0.1, 0.2])
    with pytest.raises(DifferentiationError, match="step"):
        qdiff.jacobian(c, Z(0), [0.1, 0.2], "finite-diff", h=-1.0)
    with pytest.raises(DifferentiationError, match="central"):
        qdiff.jacobian(c, Z(0), [0.1, 0.2], "finite-diff", fd_mode="backward")
    with pytest.raises(ParameterError):
        qdiff.jacobian(c, Z(0), [0.1, 0.2, 0.3])
    with pytest.raises(QDiffError):
        qdiff.jacobian(c, Z(5), [0.1, 0.2])


def test_forward_differences_and_custom_step():
    c = _small()
    exact = qdiff.jacobian(c, Z(1), [0.4, -0.3])
    np.testing.assert_allclose(qdiff.jacobian(c, Z(1), [0.4, -0.3], "finite-diff", fd_mode="forward"), exact,
                               atol=1e-6)
    np.testing.assert_allclose(qdiff.jacobian(c, Z(1), [0.4, -0.3], "finite-diff", h=1e-4), exact, atol=1e-8)


def test_all_gates_are_in_the_table():
    """Sanity for the generator: every base gate appears in GRADIENT_MIX."""
    bases = {circuits.pl_base(name)[0] for name in GRADIENT_MIX}
    assert bases == set(GATES)
