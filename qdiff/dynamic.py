"""Circuits with mid-circuit measurements, resets, postselection and classically conditioned gates.

A :class:`DynamicCircuit` is one unitary :class:`~qdiff.circuit.Circuit` (every gate, one parameter
vector) and a schedule of steps over its operations:

- :class:`Gates` ``(start, stop)``: operations ``[start, stop)``, run as one program through the executor
  :func:`qdiff.engine.run_forward` selects (compiled, cache-blocked or per gate), like any circuit;
- :class:`Measure`: the wire measured in the computational basis in every batch row (each row is one
  trajectory), the row collapsed onto its outcome and renormalised, and with ``reset`` returned to
  ``|0>``; outcomes are kept under the step's ``key``;
- :class:`Postselect`: every row projected onto the given basis values of some wires and renormalised
  (deferred postselection; a branch of probability zero gives NaN, as PennyLane's default.qubit does);
- :class:`Conditional` ``(start, stop, condition)``: operations ``[start, stop)`` applied only to the rows
  where ``condition(outcomes)`` holds.

:func:`run` executes it. Collapse, reset and projection are batched backend primitives (one batched
2x2 matrix or one diagonal per step), so no full-size mask is built and every backend with the
primitives runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backends import get_backend
from .circuit import Circuit, check_theta
from .engine import run_forward
from .errors import BackendError, ParameterError, WireError
from .program import program_of
from .simulate import batch_size, initial_state, resolve_dtype


@dataclass(frozen=True)
class Gates:
    """Operations ``[start, stop)`` of the circuit, unconditionally."""

    start: int
    stop: int


@dataclass(frozen=True)
class Measure:
    """Measure ``wire`` in every row (sampled), collapse onto the outcome; ``reset`` returns it to |0>."""

    wire: int
    key: Hashable
    reset: bool = False


@dataclass(frozen=True)
class Postselect:
    """Project every row onto ``bits`` on ``wires`` and renormalise."""

    wires: tuple[int, ...]
    bits: tuple[int, ...]


@dataclass(frozen=True)
class Conditional:
    """Operations ``[start, stop)`` on the rows where ``condition(outcomes)`` (a ``(B,)`` bool array) holds."""

    start: int
    stop: int
    condition: Callable[[dict[Hashable, np.ndarray]], np.ndarray]


Step = Gates | Measure | Postselect | Conditional


class DynamicCircuit:
    """A circuit and the schedule of gates, measurements, postselections and conditionals over it.

    Every step is checked here (ranges inside the circuit and in order, wires on the circuit, bits 0/1,
    unique measurement keys), so :func:`run` never stops half way on bad input.
    """

    def __init__(self, circuit: Circuit, steps: list[Step]):
        n, count = circuit.num_wires, len(circuit.operations)
        covered, keys = 0, set()
        for step in steps:
            if isinstance(step, (Gates, Conditional)):
                if not (covered <= step.start <= step.stop <= count):
                    raise ParameterError(f"step {step} is outside operations [{covered}, {count}) or out of order")
                covered = step.stop
            elif isinstance(step, Measure):
                if not 0 <= step.wire < n:
                    raise WireError(f"measured wire {step.wire} is not on the circuit's {n} wires")
                if step.key in keys:
                    raise ParameterError(f"measurement key {step.key!r} is used twice")
                keys.add(step.key)
            elif isinstance(step, Postselect):
                if len(step.wires) != len(step.bits) or not all(0 <= w < n for w in step.wires):
                    raise WireError(f"postselection on wires {step.wires} with bits {step.bits} does not fit "
                                    f"the circuit's {n} wires")
                if any(b not in (0, 1) for b in step.bits):
                    raise ParameterError(f"postselected bits must be 0 or 1, got {step.bits}")
            else:
                raise ParameterError(f"unknown step {step!r}")
        self.circuit = circuit
        self.steps = list(steps)
        self._segments: dict[tuple[int, int], Circuit] = {}

    @property
    def samples(self) -> bool:
        """Whether a run draws random outcomes (it has measurements that are not postselections)."""
        return any(isinstance(s, Measure) for s in self.steps)

    def segment(self, start: int, stop: int) -> Circuit:
        """Operations ``[start, stop)`` as a circuit with the same parameters (built once per range)."""
        seg = self._segments.get((start, stop))
        if seg is None:
            seg = self.circuit.segment(start, stop)
            self._segments[(start, stop)] = seg
        return seg


def _collapse(backend: Any, state: Any, wire: int, reset: bool, rng: np.random.Generator) -> np.ndarray:
    """Sample ``wire`` in every row, collapse (and reset) with one batched 2x2 matrix; the outcomes ``(B,)``."""
    p = backend.to_numpy(backend.probs(state, (wire,))).astype(float)
    total = np.maximum(p.sum(axis=1), 1e-300)
    p1 = p[:, 1] / total
    out = (rng.random(state.shape[0]) < p1).astype(np.int64)
    scale = 1.0 / np.sqrt(np.maximum(np.where(out == 1, p1, 1.0 - p1) * total, 1e-300))
    m = np.zeros((state.shape[0], 2, 2), dtype=state.dtype)
    m[out == 0, 0, 0] = scale[out == 0]
    m[out == 1, 0 if reset else 1, 1] = scale[out == 1]  # |1> -> |0> when reset
    backend.apply_matrix(state, backend.asarray(m), (wire,))
    return out


def _project(backend: Any, state: Any, wires: tuple[int, ...], bits: tuple[int, ...]) -> None:
    """Project every row onto ``bits`` on ``wires`` and renormalise (NaN where the branch has probability 0)."""
    index = int("".join(map(str, bits)), 2)
    diag = np.zeros(2 ** len(wires), dtype=state.dtype)
    diag[index] = 1.0
    backend.apply_diagonal(state, backend.asarray(diag), wires)
    norm2 = backend.to_numpy(backend.probs(state, wires)).astype(float).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = (1.0 / np.sqrt(norm2)).astype(state.real.dtype)
        state *= backend.asarray(scale)[:, None]


def run(dc: DynamicCircuit, theta: Any = None, *, batch: int | None = None, backend: Any = "numpy",
        dtype: Any = None, rng: np.random.Generator | None = None) -> tuple[Any, dict[Hashable, np.ndarray]]:
    """Run ``dc``: ``(state (B, 2**n), outcomes)`` with ``outcomes[key]`` the ``(B,)`` results of each Measure.

    ``batch`` rows are simulated (each its own trajectory); a parameter batch sets it. ``rng`` draws
    the measurement outcomes (required when ``dc`` measures).
    """
    circuit = dc.circuit
    be = get_backend(backend, circuit.num_wires)
    if getattr(be, "name", "") == "mpi":
        raise BackendError("mid-circuit measurements and postselection are not supported on the MPI backend")
    dt = resolve_dtype(dtype)
    theta_arr, tb = check_theta(circuit, theta)
    implied = batch_size(circuit, tb)
    if batch is not None and implied not in (None, batch):
        raise ParameterError(f"batch {batch} does not match the parameters' or circuit data's batch {implied}")
    rows = batch or implied or 1
    if any(isinstance(s, Conditional) for s in dc.steps) and program_of(circuit).data_batch is not None:
        raise ParameterError("conditional gates need the same gate data in every row (no batched circuit data)")
    if dc.samples and rng is None:
        raise ParameterError("a circuit with mid-circuit measurements needs an rng to draw their outcomes")
    state = initial_state(be, circuit, rows, dt)
    outcomes: dict[Hashable, np.ndarray] = {}
    for step in dc.steps:
        if isinstance(step, Gates):
            if step.stop > step.start:
                run_forward(be, program_of(dc.segment(step.start, step.stop)), theta_arr, state)
        elif isinstance(step, Measure):
            outcomes[step.key] = _collapse(be, state, step.wire, step.reset, rng)  # type: ignore[arg-type]
        elif isinstance(step, Postselect):
            _project(be, state, step.wires, step.bits)
        else:
            mask = np.asarray(step.condition(outcomes), dtype=bool).reshape(-1)
            if mask.shape != (rows,):
                raise ParameterError(f"a condition must give one bool per row ({rows}), got shape {mask.shape}")
            if mask.any() and step.stop > step.start:
                picked = np.nonzero(mask)[0]
                sub = state[be.asarray(picked)]
                th = theta_arr[picked] if theta_arr.ndim == 2 else theta_arr
                run_forward(be, program_of(dc.segment(step.start, step.stop)), th, sub)
                state[be.asarray(picked)] = sub
    return state, outcomes


__all__ = ["DynamicCircuit", "Gates", "Measure", "Postselect", "Conditional", "run"]
