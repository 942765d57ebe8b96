"""Shared pieces of the gradient methods: output shapes, cotangent bras, batched evaluation, checks."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backends import get_backend
from ..circuit import Circuit
from ..errors import DifferentiationError, ParameterError
from ..measure import DIFFERENTIABLE, Expval, Measurement, Probs, Var, check_measurement, check_shots, measure
from ..memory import check_policy, largest_that_fits, require, rows_footprint
from ..observables import apply_observable, expectation
from ..simulate import final_state, resolve_dtype

ROW_BATCH_BYTES = 256 * 2**20
"""Memory budget for stacking several bras/shifted circuits into one batched sweep."""


def rows_per_batch(num_wires: int, batch: int, itemsize: int, rows: int) -> int:
    """How many rows (outputs or shifted circuits, two states each) are stacked per batched sweep:
    as many as fit in ``ROW_BATCH_BYTES`` at ``batch`` parameter sets, at least one, at most ``rows``."""
    per_row = 2 * batch * 2**num_wires * itemsize
    return max(1, min(rows, int(ROW_BATCH_BYTES // per_row)))


def as_list(measurements: Measurement | Sequence[Measurement]) -> tuple[list[Measurement], bool]:
    """(list of measurements, whether a single one was given)."""
    if isinstance(measurements, (list, tuple)):
        return list(measurements), False
    return [measurements], True


def check_differentiable(circuit: Circuit, measurements: list[Measurement], shots: Any) -> int | None:
    """Validate measurements and refuse non-differentiable ones with a clear error."""
    shots = check_shots(shots)
    for m in measurements:
        if not isinstance(m, DIFFERENTIABLE):  # before the shot checks: Sample/Counts/State never differentiate
            raise DifferentiationError(
                f"{type(m).__name__} is not differentiable; differentiate expval, var or probs instead"
            )
        check_measurement(m, circuit.num_wires, shots)
    return shots


def real_cotangent(cot: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A cotangent as a real array of ``shape`` (batch + output shape); error if complex or the wrong size."""
    if np.iscomplexobj(cot):
        raise DifferentiationError("cotangents of real-valued outputs must be real")
    c = np.asarray(cot, dtype=float)
    if c.size != int(np.prod(shape)):
        raise DifferentiationError(f"cotangent of shape {c.shape} does not match the output shape {shape}")
    return c.reshape(shape)


def output_shape(m: Measurement, num_wires: int) -> tuple[int, ...]:
    """Shape of one (unbatched) measurement result."""
    if isinstance(m, Probs):
        k = num_wires if m.wires is None else len(m.wires)
        return (2**k,)
    return ()


def select_params(num_params: int, argnum: Sequence[int] | int | None) -> np.ndarray:
    """Indices of the parameters to differentiate (all by default); error for ones that do not exist."""
    if argnum is None:
        return np.arange(num_params)
    idx = np.atleast_1d(np.asarray(argnum))
    if idx.dtype.kind not in "iu":
        raise ParameterError(f"argnum must be integer parameter indices, got {argnum!r}")
    bad = [int(i) for i in idx if not 0 <= i < num_params]
    if bad:
        raise DifferentiationError(
            f"parameter(s) {bad} do not exist: the circuit has {num_params} trainable parameter(s)"
        )
    return idx.astype(int)


def cotangent_bra(backend: Any, state: Any, m: Measurement, cot: Any) -> Any:
    """``|lambda>`` with ``d(sum cot * m)/dtheta = 2 Re <lambda| dpsi/dtheta>`` for one measurement.

    ``state`` is ``(B, N)``; ``cot`` is ``(B,) + output_shape``. expval: ``c O|psi>``; var:
    ``c (O^2 - 2<O>O)|psi>``; probs: ``psi`` times the cotangent of its basis state's outcome.
    """
    xp = backend.xp
    cot = xp.asarray(cot)
    if isinstance(m, Expval):
        return cot.reshape(-1, 1) * apply_observable(backend, state, m.obs)
    if isinstance(m, Var):
        o_psi = apply_observable(backend, state, m.obs)
        mean = xp.real(backend.inner(state, o_psi))
        oo_psi = apply_observable(backend, o_psi, m.obs)
        return cot.reshape(-1, 1) * (oo_psi - 2 * mean.reshape(-1, 1) * o_psi)
    if isinstance(m, Probs):
        n = int(state.shape[-1]).bit_length() - 1
        return probs_bra(backend, state, tuple(range(n)) if m.wires is None else m.wires, cot)
    raise DifferentiationError(f"{type(m).__name__} is not differentiable")


@functools.singledispatch
def probs_bra(backend: Any, state: Any, wires: tuple[int, ...], cot: Any) -> Any:
    """``state`` times the cotangent ``cot (B, 2**k)`` of each basis state's outcome on ``wires``."""
    xp = backend.xp
    n = int(state.shape[-1]).bit_length() - 1
    idx = xp.arange(state.shape[-1])
    outcome = xp.zeros(state.shape[-1], dtype=xp.int64)
    for w in wires:
        outcome = (outcome << 1) | ((idx >> (n - 1 - w)) & 1)
    return cot.reshape(state.shape[0], -1)[:, outcome] * state


def expectation_values(backend: Any, state: Any, measurements: list[Measurement]) -> list[Any]:
    """Analytic values of differentiable measurements on a batched state (host arrays)."""
    return [backend.to_numpy(v) for v in measure(backend, state, measurements)]


def evaluate_rows(
    circuit: Circuit,
    measurements: list[Measurement],
    rows: np.ndarray,
    *,
    shots: int | None,
    seed: Any,
    backend: Any,
    dtype: Any,
    memory: str = "refuse",
) -> list[np.ndarray]:
    """Run ``circuit`` for every parameter row ``(S, P)`` in memory-bounded batches; stack results.

    Rows are stacked up to ``ROW_BATCH_BYTES`` per batch (``memory="fit"``: fewer when memory is short);
    a batch whose predicted peak does not fit raises :class:`~qdiff.errors.MemoryLimitError` first.
    """
    check_policy(memory)
    be = get_backend(backend, circuit.num_wires)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    dt = resolve_dtype(dtype)
    n = circuit.num_wires
    chunk = rows_per_batch(n, 1, dt.itemsize, rows.shape[0])
    if memory == "fit":
        chunk = largest_that_fits(lambda k: rows_footprint(n, k, dt, measurements), chunk, be)
    require(rows_footprint(n, chunk, dt, measurements), "fewer circuit parameters, or memory='fit'"
            if memory != "fit" and chunk > 1 else "", be)
    outs: list[list[np.ndarray]] = [[] for _ in measurements]
    for start in range(0, rows.shape[0], chunk):
        state, _ = final_state(circuit, rows[start : start + chunk], backend=be, dtype=dtype)
        for i, r in enumerate(measure(be, state, measurements, shots=shots, rng=rng)):
            outs[i].append(be.to_numpy(r))
        del state
    return [np.concatenate(o, axis=0) for o in outs]


__all__ = [
    "as_list", "check_differentiable", "real_cotangent", "output_shape", "select_params", "cotangent_bra",
    "expectation_values", "evaluate_rows", "expectation",
]
