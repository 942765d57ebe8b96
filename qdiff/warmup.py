"""Fill numba's kernel cache ahead of time: ``qdiff warmup`` (or :func:`warmup`).

A fresh install compiles its CPU kernels on first use (seconds per kernel family; see
:mod:`qdiff.backends.numba.jit`). ``warmup`` runs every gate of the gate table (each with an extra
control and inverted too), the measurements and the gradient methods through each CPU executor
(the whole-circuit program for small states, per-gate kernels, the cache-blocked passes for large
ones) in both precisions, so that every later process on this machine (or on a machine image or
shared software folder built with it) loads compiled kernels instead of compiling them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .backends.numba.blocked import MIN_QUBITS
from .backends.numba.jit import CACHE, CACHE_DIR
from .circuit import Circuit
from .gates import GATES
from .ir.kinds import Kind
from .program import exec_kind

_PROGRAM_KINDS = (Kind.DENSE, Kind.DIAGONAL, Kind.PERMUTATION)

SIZES = (4, MIN_QUBITS + 1)
"""State sizes that reach every CPU executor: the whole-circuit program and the blocked passes."""


def _hyper(name: str, k: int, rng: np.random.Generator) -> Any:
    if name == "PauliRot":
        return "XYZ"[:k] if k <= 3 else "XYZ" + "Z" * (k - 3)
    if name == "QubitUnitary":
        q, _ = np.linalg.qr(rng.normal(size=(2**k, 2**k)) + 1j * rng.normal(size=(2**k, 2**k)))
        return q
    if name == "DiagonalQubitUnitary":
        return np.exp(1j * rng.uniform(-np.pi, np.pi, 2**k))
    return None


def gate_zoo(num_wires: int, seed: int = 0, max_targets: int | None = None, controlled: bool = True,
             spectral_only: bool = False) -> Circuit:
    """A circuit with every gate of the table on ``num_wires`` wires: plain, then controlled (where a wire
    is free) and inverted. ``max_targets`` keeps gates on at most that many wires; ``spectral_only``
    keeps dense, diagonal and permutation gates without extra data (what the compiled whole-circuit
    program binds itself)."""
    rng = np.random.default_rng(seed)
    c = Circuit(num_wires)
    for w in range(num_wires):
        c.add("Hadamard", wires=w)
    per_gate = [spec for spec in GATES.values() if not spec.identity
                and (max_targets is None or (spec.num_wires or spec.min_wires) <= max_targets)
                and (not spectral_only or (spec.hyper is None and exec_kind(spec) in _PROGRAM_KINDS
                                           and (spec.num_wires or spec.min_wires) >= 1))]
    p = c.params(sum(spec.num_params for spec in per_gate))
    k_param = 0
    for i, spec in enumerate(per_gate):
        k = spec.num_wires or (max(spec.min_wires, 2) if max_targets is None else spec.min_wires)
        wires = [(i + j) % num_wires for j in range(k)]
        spare = [w for w in range(num_wires) if w not in wires]
        params = [p[k_param + j] for j in range(spec.num_params)]
        k_param += spec.num_params
        hyper = _hyper(spec.name, k, rng)
        c.add(spec.name, *params, wires=wires, hyper=hyper)
        c.add(spec.name, *params, wires=wires, controls=spare[:1] if controlled else [], hyper=hyper,
              inverse=True)
    for w in range(num_wires - 1):
        c.add("CNOT", wires=[w, w + 1])
    return c


def _jobs(num_wires: int, dtype: Any) -> list[tuple[str, Callable[[], Any]]]:
    from . import execute, grad, jacobian, vjp
    from .measure import Counts, Expval, Probs, Sample, State, Var
    from .observables import X, Y, Z

    c = gate_zoo(num_wires)
    small = gate_zoo(num_wires, max_targets=2, controlled=False, spectral_only=True)  # the compiled program
    t_small = np.linspace(0.1, 1.0, small.num_params)
    theta = np.linspace(0.1, 1.0, c.num_params)
    batch = np.stack([theta, -theta])
    h = 0.5 * Z(0) @ Z(1) + 0.25 * Z(2) + X(0) @ Y(1) + 0.1 * X(num_wires - 1)
    ms = [Expval(h), Var(h), Probs((0, 1)), Expval(Z(0))]
    return [
        ("one- and two-qubit gates: forward", lambda: execute(small, ms, t_small, dtype=dtype)),
        ("one- and two-qubit gates: adjoint gradient", lambda: grad(small, h, t_small, dtype=dtype)),
        ("one- and two-qubit gates: a parameter batch", lambda: grad(small, h, np.stack([t_small, -t_small]),
                                                                     dtype=dtype)),
        ("forward: expval, var, probs, state", lambda: execute(c, ms + [State()], theta, dtype=dtype)),
        ("forward: a parameter batch", lambda: execute(c, ms, batch, dtype=dtype)),
        ("shots: sample, counts, expval", lambda: execute(c, [Sample(), Counts(), Expval(h)], theta, shots=20,
                                                          seed=0, dtype=dtype)),
        ("adjoint gradient", lambda: grad(c, h, theta, dtype=dtype)),
        ("adjoint jacobian of several outputs", lambda: jacobian(c, ms, batch, dtype=dtype)),
        ("adjoint vjp", lambda: vjp(c, ms[:2], theta, [1.0, 0.5], dtype=dtype)),
        ("parameter-shift gradient", lambda: grad(c, Z(0), theta, method="parameter-shift", dtype=dtype)),
    ]


def warmup(verbose: bool = True, sizes: tuple[int, ...] = SIZES) -> list[tuple[str, float]]:
    """Compile (or load) every CPU kernel once; return ``(what, seconds)`` per step.

    ``verbose`` prints each step as it finishes. Safe to run in several processes at once.
    """
    done: list[tuple[str, float]] = []
    if verbose:
        where = CACHE_DIR if CACHE else "nowhere: no writable cache folder (set NUMBA_CACHE_DIR)"
        print(f"qdiff warmup: compiling CPU kernels, cached in {where}")
    for n in sizes:
        for dtype in (np.complex128, np.complex64):
            for what, job in _jobs(n, dtype):
                t0 = time.perf_counter()
                job()
                label = f"{n:2d} qubits {np.dtype(dtype).name:10s} {what}"
                done.append((label, time.perf_counter() - t0))
                if verbose:
                    print(f"  {done[-1][1]:7.2f} s  {label}", flush=True)
    if verbose:
        print(f"qdiff warmup: done in {sum(t for _, t in done):.1f} s")
    return done


__all__ = ["warmup", "gate_zoo", "SIZES"]
