"""Shape qdiff measurement values the PennyLane way.

One tape's result nests, outer to inner: shot-vector entry (only with partitioned shots),
measurement (only with several), broadcast axis, array axes. Counts are dicts (a list of dicts when
broadcast). Measurements the core evaluates exactly as PennyLane defines them (expval, var, probs,
state, density matrix, samples, counts) use qdiff's own analytic and shot code; anything else
(purity, entropies, mid-circuit measurement values, probs of an observable, custom measurements) goes
through the measurement's own ``process_state``/``process_samples`` on the qdiff state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pennylane.wires import Wires

import qdiff.measure as qm
from qdiff import buffers
from qdiff.errors import UnsupportedOperationError
from qdiff.observables import LinearCombination
from qdiff.simulate import apply_operation

from .convert import MeasPlan, convert_operations


def rotated_state(backend: Any, state: Any, mp: Any, wire_map: dict[Any, int]) -> Any:
    """A copy of ``state`` with ``mp``'s diagonalizing gates applied, or ``state`` if it has none."""
    gates = mp.diagonalizing_gates()
    if not gates:
        return state
    circ = convert_operations(gates, wire_map, int(state.shape[-1]).bit_length() - 1)
    out = state.copy()
    for op in circ.operations:
        apply_operation(backend, out, op, None)
    return out


def _row(value: Any, batched: bool) -> Any:
    return value if batched else value[0]


def _pl_analytic(backend: Any, state: Any, batched: bool, plan: MeasPlan, wire_order: Wires,
                 wire_map: dict[Any, int]) -> Any:
    rot = backend.to_numpy(rotated_state(backend, state, plan.mp, wire_map))
    return plan.mp.process_state(rot if batched else rot[0], wire_order)


def analytic_results(backend: Any, state: Any, batched: bool, plans: Sequence[MeasPlan], wire_order: Wires,
                     wire_map: dict[Any, int]) -> list[Any]:
    """Exact values of every planned measurement (batch axis kept only when ``batched``)."""
    out = []
    for p in plans:
        if p.core is None:
            out.append(_pl_analytic(backend, state, batched, p, wire_order, wire_map))
        else:
            out.append(_row(backend.to_numpy(qm.analytic(backend, state, p.core)), batched))
    return out


def counts_from_values(values: np.ndarray, mp: Any) -> dict:
    """Counts of observable eigenvalues, keyed like PennyLane (np.float64 -> np.int64)."""
    uniq, cnt = np.unique(values, return_counts=True)
    if not mp.all_outcomes:
        return {np.float64(k): np.int64(c) for k, c in zip(uniq, cnt, strict=True)}
    eig = np.asarray(mp.eigvals(), dtype=float)
    out = {np.float64(k): np.int64(0) for k in eig}
    keys = list(out)
    for k, c in zip(uniq, cnt, strict=True):
        out[keys[int(np.argmin(np.abs(eig - k)))]] += np.int64(c)
    return out


def _pl_samples(backend: Any, sampler: qm.ShotSampler, plan: MeasPlan, batched: bool, wire_order: Wires,
                wire_map: dict[Any, int], rng: np.random.Generator) -> Any:
    rot = rotated_state(backend, sampler.state, plan.mp, wire_map)
    bits = sampler.bits(None) if rot is sampler.state else qm.ShotSampler(backend, rot, sampler.shots, rng).bits(None)
    rows = [plan.mp.process_samples(bits[b], wire_order) for b in range(bits.shape[0])]
    if not batched:
        return rows[0]
    if isinstance(rows[0], dict):
        return rows
    return np.stack([np.asarray(r) for r in rows])


def _plan_terms(obs: Any) -> list[Any]:
    """What to register with the sampler: a sum whose terms do not commute qubit-wise is estimated
    term by term, so its terms are registered one by one (and share shots where compatible)."""
    if isinstance(obs, LinearCombination) and not qm._qubitwise_commuting(obs):
        return list(obs.terms)
    return [obs]


def shot_results(backend: Any, state: Any, batched: bool, plans: Sequence[MeasPlan], shots: int,
                 rng: np.random.Generator, wire_order: Wires, wire_map: dict[Any, int]) -> list[Any]:
    """Values of every planned measurement estimated from ``shots`` samples (shared where compatible)."""
    sampler = qm.ShotSampler(backend, state, shots, rng)
    if hasattr(sampler, "plan"):  # share samples among measurements diagonal in compatible bases
        for p in plans:
            if p.core is not None:
                for obs in _plan_terms(getattr(p.core, "obs", None)):
                    sampler.plan(obs)
            elif not p.mp.diagonalizing_gates():
                sampler.plan(None)
    out = []
    for p in plans:
        kind = p.kind
        if p.core is not None:
            try:
                value = qm.with_shots(sampler, p.core)
            except UnsupportedOperationError:
                out.append(_pl_samples(backend, sampler, p, batched, wire_order, wire_map, rng))
                continue
            if kind == "counts":
                bits = sampler.bits(None)
                rows = [p.mp.process_samples(bits[b], wire_order) for b in range(bits.shape[0])]
                out.append(rows if batched else rows[0])
            elif kind == "counts_obs":
                rows = [counts_from_values(v, p.mp) for v in np.asarray(value)]
                out.append(rows if batched else rows[0])
            else:
                out.append(_row(np.asarray(value), batched))
        else:
            out.append(_pl_samples(backend, sampler, p, batched, wire_order, wire_map, rng))
    return out


def pack(values: list[Any]) -> Any:
    """One measurement's value alone, several as a tuple."""
    return values[0] if len(values) == 1 else tuple(values)


def tape_results(backend: Any, state: Any, batched: bool, plans: Sequence[MeasPlan], shots: Any,
                 rng: np.random.Generator, wire_order: Sequence[Any], wire_map: dict[Any, int]) -> Any:
    """All results of one tape, nested the PennyLane way (shot-vector entries outermost)."""
    if not plans:
        return ()
    wo = Wires(wire_order)
    if not shots:
        return pack(analytic_results(backend, state, batched, plans, wo, wire_map))
    entries = [pack(shot_results(backend, state, batched, plans, s, rng, wo, wire_map)) for s in shots]
    buffers.give_back(state)  # every shot result is computed from samples, none refers to the state
    return tuple(entries) if shots.has_partitioned_shots else entries[0]


__all__ = ["analytic_results", "shot_results", "tape_results", "pack", "counts_from_values", "rotated_state"]
