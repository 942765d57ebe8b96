"""Parameter-shift gradients and Hessians, with general shift rules and shots.

Each trainable occurrence of a parameter in a gate gets its own exact shift rule from the spectrum of
the generator acting on it (two terms for Pauli rotations, four for controlled rotations, 2R terms for
R frequencies; see :func:`qdiff.gates.shift_rule`). Shared parameters add up by the chain rule. All
shifted circuits of one gradient run as one batch through the state's batch axis (in memory-bounded
chunks), not as separate simulations; with shots, every row is sampled independently.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..circuit import Circuit, ParamRef, check_theta
from ..errors import DifferentiationError
from ..gates import GATES, shift_rule
from ..measure import Expval, Measurement, Var
from ..simulate import batch_size
from .common import evaluate_rows, output_shape


@dataclass(frozen=True)
class Occurrence:
    """One trainable gate parameter: where it is, which circuit parameter feeds it, its shift rule."""

    op_index: int
    position: int
    ref: ParamRef
    coeffs: np.ndarray
    shifts: np.ndarray


def occurrence_spectrum(op: Any, position: int) -> np.ndarray:
    """Eigenvalues of the generator acting on gate parameter ``position`` (0 added for controls)."""
    gate = op.gate
    if gate.factors:
        factor = next(f for f in gate.factors if f.param == position)
        ev = GATES[factor.gate].generator(None, len(factor.targets)).eigenvalues()
    elif gate.has_generator:
        ev = gate.generator(op.hyper, len(op.wires)).eigenvalues()
    else:
        raise DifferentiationError(f"{op.name or gate.name} has no generator to differentiate")
    if op.controls:
        ev = np.append(ev, 0.0)
    return ev


def occurrences(circuit: Circuit) -> list[Occurrence]:
    """Every trainable gate parameter of ``circuit`` with its shift rule."""
    out = []
    cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    for i, op in enumerate(circuit.operations):
        for pos, ref in op.trainable_refs:
            key = (op.gate.name, pos, bool(op.controls), op.hyper if isinstance(op.hyper, str) else None,
                   len(op.wires))
            if key not in cache:
                cache[key] = shift_rule(occurrence_spectrum(op, pos))
            c, s = cache[key]
            out.append(Occurrence(i, pos, ref, c, s))
    return out


def expanded(circuit: Circuit, occ: list[Occurrence]) -> Circuit:
    """Copy of ``circuit`` where occurrence ``q`` reads its own parameter ``q`` (no coefficient)."""
    c = circuit.copy()
    ops = list(c.operations)
    for q, o in enumerate(occ):
        op = ops[o.op_index]
        params = list(op.params)
        params[o.position] = ParamRef(q)
        ops[o.op_index] = replace(op, params=tuple(params))
    c.operations = ops
    c.num_params = len(occ)
    return c


def base_values(occ: list[Occurrence], theta: np.ndarray, circuit: Circuit | None = None) -> np.ndarray:
    """Values ``(B, Q)`` of the occurrences at ``theta`` (B = 1 when not batched)."""
    if circuit is not None and batch_size(circuit, None) is not None:
        raise DifferentiationError(
            "parameter-shift batches its shifted circuits on the batch axis, so the circuit's own gate data "
            "or state preparation cannot be batched; use method='adjoint' or differentiate entries one by one"
        )
    t = theta if theta.ndim == 2 else theta[None, :]
    if not occ:
        return np.zeros((t.shape[0], 0))
    return np.stack([o.ref.value(t) for o in occ], axis=1)


def _with_moments(measurements: list[Measurement]) -> tuple[list[Measurement], list[int | None]]:
    """Add an Expval next to each Var, so shifted second moments can be formed: <O^2> = Var + <O>^2."""
    extra: list[Measurement] = []
    index: list[int | None] = []
    for m in measurements:
        if isinstance(m, Var):
            index.append(len(measurements) + len(extra))
            extra.append(Expval(m.obs))
        else:
            index.append(None)
    return measurements + extra, index


def _chain(jac_q: np.ndarray, occ: list[Occurrence], num_params: int) -> np.ndarray:
    """``(..., Q) -> (..., P)``: add the occurrences of each parameter, times their coefficients."""
    out = np.zeros(jac_q.shape[:-1] + (num_params,))
    for q, o in enumerate(occ):
        out[..., o.ref.index] += o.ref.coeff * jac_q[..., q]
    return out


def param_shift_jacobian(
    circuit: Circuit, measurements: list[Measurement], params: Any, *, shots: int | None = None,
    seed: Any = None, backend: Any = "numpy", dtype: Any = None, memory: str = "refuse",
) -> tuple[list[np.ndarray], list[np.ndarray], bool]:
    """Values and Jacobians ``(B,) + output_shape + (P,)`` by parameter shifts, all shifts in one batch.

    The shifted circuits run in memory-bounded batches (see :func:`~qdiff.gradients.common.evaluate_rows`).
    """
    theta, tb = check_theta(circuit, params)
    occ = occurrences(circuit)
    circ = expanded(circuit, occ)
    base = base_values(occ, theta, circuit)
    b, q_count = base.shape
    rows = [base]
    for q, o in enumerate(occ):
        for s in o.shifts:
            r = base.copy()
            r[:, q] += s
            rows.append(r)
    all_rows = np.concatenate(rows, axis=0)
    ms, var_index = _with_moments(measurements)
    results = evaluate_rows(circ, ms, all_rows, shots=shots, seed=seed, backend=backend, dtype=dtype,
                            memory=memory)
    # results[i]: (S*B, ...) with row blocks of size B: block 0 unshifted, then each shift in order
    values, jacs = [], []
    for i, m in enumerate(measurements):
        res = results[i].reshape((-1, b) + results[i].shape[1:])
        if var_index[i] is not None:
            e = results[var_index[i]].reshape(-1, b)
            res = res + e**2  # second moments
        jq = np.zeros((b,) + output_shape(m, circuit.num_wires) + (q_count,))
        block = 1
        for q, o in enumerate(occ):
            for c in o.coeffs:
                jq[..., q] += c * res[block]
                block += 1
        if var_index[i] is not None:
            e = results[var_index[i]].reshape(-1, b)
            de = np.zeros((b, q_count))
            block = 1
            for q, o in enumerate(occ):
                for c in o.coeffs:
                    de[:, q] += c * e[block]
                    block += 1
            jq = jq - 2 * e[0][:, None] * de
            values.append(res[0] - e[0] ** 2)
        else:
            values.append(res[0])
        jacs.append(_chain(jq, occ, circuit.num_params))
    return values, jacs, tb is not None or b > 1


def param_shift_hessian(
    circuit: Circuit, measurement: Measurement, params: Any, *, shots: int | None = None,
    seed: Any = None, backend: Any = "numpy", dtype: Any = None, memory: str = "refuse",
) -> np.ndarray:
    """Hessian ``(B,) + output_shape + (P, P)`` of an expval or probs by applying shift rules twice."""
    if isinstance(measurement, Var):
        raise DifferentiationError("the parameter-shift Hessian supports expval and probs, not var")
    theta, tb = check_theta(circuit, params)
    occ = occurrences(circuit)
    circ = expanded(circuit, occ)
    base = base_values(occ, theta, circuit)
    b, q_count = base.shape
    rows, plan = [], []
    for a in range(q_count):
        for c in range(a, q_count):
            for ca, sa in zip(occ[a].coeffs, occ[a].shifts, strict=True):
                for cc, sc in zip(occ[c].coeffs, occ[c].shifts, strict=True):
                    r = base.copy()
                    r[:, a] += sa
                    r[:, c] += sc
                    rows.append(r)
                    plan.append((a, c, ca * cc))
    shape = (b,) + output_shape(measurement, circuit.num_wires)
    hq = np.zeros(shape + (q_count, q_count))
    if rows:
        res = evaluate_rows(circ, [measurement], np.concatenate(rows, axis=0), shots=shots, seed=seed,
                            backend=backend, dtype=dtype, memory=memory)[0]
        res = res.reshape((-1, b) + shape[1:])
        for k, (a, c, w) in enumerate(plan):
            hq[..., a, c] += w * res[k]
        for a in range(q_count):
            for c in range(a + 1, q_count):
                hq[..., c, a] = hq[..., a, c]
    h = np.zeros(shape + (circuit.num_params, circuit.num_params))
    for a, oa in enumerate(occ):
        for c, oc in enumerate(occ):
            h[..., oa.ref.index, oc.ref.index] += oa.ref.coeff * oc.ref.coeff * hq[..., a, c]
    return h if (tb is not None or b > 1) else h[0]


__all__ = ["param_shift_jacobian", "param_shift_hessian", "occurrences", "Occurrence"]
