"""Public execution API: simulate a circuit and return measurement results as numpy arrays."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .backends import get_backend
from .circuit import Circuit, check_theta
from .measure import (
    Counts,
    Expval,
    Measurement,
    Probs,
    Sample,
    State,
    Var,
    check_measurement,
    check_shots,
    measure,
)
from .memory import FORWARD_STATES_BOUND, check_policy, forward_footprint, negligible, require, split_batch
from .observables import Observable
from .simulate import batch_size, checked_final_state, resolve_dtype


def _to_host(backend: Any, value: Any, batched: bool) -> Any:
    if isinstance(value, list):  # counts: one dict per batch entry
        return value if batched else value[0]
    arr = backend.to_numpy(value)
    return arr if batched else arr[0]


def execute(
    circuit: Circuit,
    measurements: Measurement | Sequence[Measurement],
    params: Any = None,
    *,
    shots: int | None = None,
    seed: int | np.random.Generator | None = None,
    backend: Any = "numpy",
    dtype: Any = None,
    memory: str = "refuse",
) -> Any:
    """Simulate ``circuit`` at ``params`` and evaluate ``measurements``.

    ``params`` has shape ``(P,)`` or ``(B, P)`` (a batch: every result then gains a leading axis).
    One measurement gives one result, a list gives a list. Everything is validated, and the peak
    memory of the whole request predicted (:mod:`qdiff.memory`), before the state is allocated: a
    request that would not fit raises :class:`~qdiff.errors.MemoryLimitError`, or with
    ``memory="fit"`` a batch of parameter sets runs in chunks that fit (analytic measurements).
    """
    single = not isinstance(measurements, (list, tuple))
    ms = [measurements] if single else list(measurements)
    shots = check_shots(shots)
    check_policy(memory)
    for m in ms:
        check_measurement(m, circuit.num_wires, shots)
    be = get_backend(backend, circuit.num_wires)
    dt = resolve_dtype(dtype)
    theta, tb = check_theta(circuit, params)
    batch = batch_size(circuit, tb)
    if not negligible(circuit.num_wires, FORWARD_STATES_BOUND * (batch or 1), dt):  # else nothing to predict
        fp = forward_footprint(circuit.num_wires, batch or 1, dt, ms)
        splittable = tb is not None and tb > 1 and batch_size(circuit, None) is None and shots is None
        if memory == "fit" and splittable and (parts := split_batch(
                lambda th: execute(circuit, ms, th, backend=be, dtype=dt), theta, tb,
                lambda rows: forward_footprint(circuit.num_wires, rows, dt, ms), be)) is not None:
            results = [np.concatenate([part[i] for part in parts], axis=0) for i in range(len(ms))]
            return results[0] if single else results
        hint = f"memory='fit' runs the {tb} parameter sets in chunks" if splittable else ""
        require(fp, hint, be)
    state, batched = checked_final_state(circuit, theta, tb, be, dt)
    results = [_to_host(be, r, batched) for r in measure(be, state, ms, shots=shots, rng=seed)]
    return results[0] if single else results


def expval(circuit: Circuit, obs: Observable, params: Any = None, **kwargs: Any) -> Any:
    """``<obs>`` after ``circuit`` (a float, or ``(B,)`` for batched parameters)."""
    return execute(circuit, Expval(obs), params, **kwargs)


def var(circuit: Circuit, obs: Observable, params: Any = None, **kwargs: Any) -> Any:
    """Variance of ``obs`` after ``circuit``."""
    return execute(circuit, Var(obs), params, **kwargs)


def probs(circuit: Circuit, wires: Sequence[int] | None = None, params: Any = None, **kwargs: Any) -> Any:
    """Probabilities of the basis states of ``wires`` (all wires by default)."""
    return execute(circuit, Probs(None if wires is None else tuple(wires)), params, **kwargs)


def state(circuit: Circuit, params: Any = None, **kwargs: Any) -> Any:
    """The final state vector, ``(2**n,)`` or ``(B, 2**n)``."""
    return execute(circuit, State(), params, **kwargs)


def sample(
    circuit: Circuit, shots: int, wires: Sequence[int] | None = None, params: Any = None,
    obs: Observable | None = None, **kwargs: Any,
) -> Any:
    """``shots`` samples of the bits of ``wires`` (or of the eigenvalues of ``obs``)."""
    m = Sample(None if wires is None else tuple(wires), obs)
    return execute(circuit, m, params, shots=shots, **kwargs)


def counts(
    circuit: Circuit, shots: int, wires: Sequence[int] | None = None, params: Any = None,
    obs: Observable | None = None, **kwargs: Any,
) -> Any:
    """Outcome counts over ``shots`` runs, as a dict (bit string or eigenvalue -> count)."""
    m = Counts(None if wires is None else tuple(wires), obs)
    return execute(circuit, m, params, shots=shots, **kwargs)


__all__ = ["execute", "expval", "var", "probs", "state", "sample", "counts", "Var"]
