"""Adjoint differentiation (Jones & Gacon, arXiv:2009.02823): one forward pass, one backward sweep.

Every differentiable output is reduced to a cotangent bra ``|lambda>`` with
``d(output . cotangent)/dtheta = 2 Re <lambda| dpsi/dtheta>``. The sweep walks the circuit backwards
with ``bra = lambda`` and ``ket = psi``, un-applying each operation from both; a one-parameter factor
``U = exp(i t H)`` contributes ``-2 Im <bra|H|ket>`` (ket taken after the factor). Multi-parameter
gates are walked factor by factor (Rot = RZ RY RZ, ...), so each generator acts in its own frame, and
controls restrict generators to the controlled subspace. Memory: the bra, the ket and the kept final
state (only while more Jacobian rows remain), whatever the depth or parameter count.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backends import get_backend
from ..circuit import Circuit, check_theta
from ..engine import run_expval_grad, run_sweep
from ..errors import DifferentiationError
from ..measure import Expval, Measurement
from ..memory import (
    FORWARD_STATES_BOUND,
    adjoint_footprint,
    check_policy,
    largest_that_fits,
    negligible,
    require,
    split_batch,
    vjp_footprint,
)
from ..program import program_of
from ..simulate import batch_size, checked_final_state, initial_state, resolve_dtype
from .common import cotangent_bra, output_shape, real_cotangent, rows_per_batch

SHOTS_MESSAGE = (
    "the adjoint method computes exact (analytic) gradients and cannot use finite shots; "
    "use method='parameter-shift' (or diff_method='parameter-shift') for shot-based gradients"
)


def backward_sweep(
    backend: Any,
    circuit: Circuit,
    theta: np.ndarray,
    bra: Any,
    ket: Any,
    matrix_ops: tuple[int, ...] = (),
    executor: str | None = None,
) -> tuple[Any, dict[int, Any]]:
    """Walk ``circuit`` backwards from ``bra``/``ket`` (both destroyed); return ``(dtheta (R, P), dU)``.

    Per gate: un-apply it from the ket, form the reduced outer product ``R = tr_rest |ket><bra|`` on
    its (controlled) targets, read every parameter derivative as ``2 Re sum(dU * R)``, un-apply it
    from the bra (:class:`qdiff.engine.reference.SweepStep`): three passes over the state whatever the
    number of parameters. Wide gates (PauliRot/MultiRZ on many wires) use their generator directly.
    ``dU[i]`` is the gradient w.r.t. the matrix of QubitUnitary op ``i`` (for ``i`` in ``matrix_ops``)
    in PyTorch's convention ``dL/dRe U + i dL/dIm U``. The sweep runs through the executor
    :func:`qdiff.engine.select` picks, or the one named by ``executor``.
    """
    grad = backend.xp.zeros((bra.shape[0], circuit.num_params), dtype=float)
    mgrads = run_sweep(backend, program_of(circuit), theta, bra, ket, grad, matrix_ops, executor)
    return grad, mgrads


def _expval_jacobian(circuit: Circuit, m: Expval, theta: np.ndarray, batch: int | None, be: Any, dt: np.dtype
                     ) -> tuple:
    """One expectation's value and gradient from the initial state (:func:`qdiff.engine.run_expval_grad`);
    ``theta`` is checked, ``batch`` the batch it implies."""
    state = initial_state(be, circuit, batch or 1, dt)
    values, grad = run_expval_grad(be, program_of(circuit), theta, state, m.obs)
    values = np.real(be.to_numpy(values)).astype(np.finfo(dt).dtype)
    return [values], [be.to_numpy(grad)], batch is not None


def _split_batch(run: Any, circuit: Circuit, params: Any, shots: Any, fp_of: Any, be: Any) -> Any:
    """With ``memory="fit"``: ``run`` on chunks of a parameter batch too big for one sweep, or None.

    ``fp_of(batch)`` predicts one call's footprint; None when the whole batch fits or cannot be split
    (no parameter batch, or batched circuit data).
    """
    theta, tb = check_theta(circuit, params)
    if shots is not None or tb is None or tb < 2 or batch_size(circuit, None) is not None:
        return None
    return split_batch(run, theta, tb, fp_of, be)


def adjoint_jacobian(
    circuit: Circuit, measurements: list[Measurement], params: Any, *, backend: Any = "numpy",
    dtype: Any = None, shots: Any = None, memory: str = "refuse",
) -> tuple[list[np.ndarray], list[np.ndarray], bool]:
    """Values and Jacobians of ``measurements``: each Jacobian ``(B,) + output_shape + (P,)``.

    One backward sweep per output component (expval/var: one; probs: one per outcome). Components
    are stacked along the batch axis, several per sweep when they fit in ``ROW_BATCH_BYTES``. The
    peak memory is predicted first and a request that does not fit is refused
    (:class:`~qdiff.errors.MemoryLimitError`); with ``memory="fit"`` fewer components are stacked
    per sweep, and a parameter batch runs in chunks, until it fits.
    """
    check_policy(memory)
    if shots is not None:
        raise DifferentiationError(SHOTS_MESSAGE)
    n, dt = circuit.num_wires, resolve_dtype(dtype)
    be = get_backend(backend, n)
    theta, tb = check_theta(circuit, params)
    implied = batch_size(circuit, tb)
    b = implied or 1
    fixed_batch = batch_size(circuit, None) is not None
    hint = "memory='fit' runs the parameter sets in chunks" if b > 1 and not fixed_batch else ""
    lone_expval = len(measurements) == 1 and type(measurements[0]) is Expval
    if lone_expval and memory != "fit":  # the common case first: nothing to stack or split
        if not negligible(n, FORWARD_STATES_BOUND * b, dt):
            require(adjoint_footprint(n, b, dt, measurements, 1, 1), hint, be)
        return _expval_jacobian(circuit, measurements[0], theta, implied, be, dt)
    rows: list[tuple[int, int]] = []
    for mi, m in enumerate(measurements):
        size = int(np.prod(output_shape(m, n)))
        rows += [(mi, c) for c in range(size)]
    if memory == "fit":
        parts = _split_batch(lambda th: adjoint_jacobian(circuit, measurements, th, backend=backend, dtype=dt,
                                                         memory="fit"),
                             circuit, params, shots,
                             lambda r: adjoint_footprint(n, r, dt, measurements, 1, len(rows)), be)
        if parts is not None:
            return ([np.concatenate([q[0][i] for q in parts]) for i in range(len(measurements))],
                    [np.concatenate([q[1][i] for q in parts]) for i in range(len(measurements))], True)
    chunk = 1 if fixed_batch else rows_per_batch(n, b, dt.itemsize, len(rows))
    if memory == "fit":
        chunk = largest_that_fits(lambda c: adjoint_footprint(n, b, dt, measurements, c, len(rows)), chunk,
                                   be)
    require(adjoint_footprint(n, b, dt, measurements, chunk, len(rows)), hint, be)
    if lone_expval:
        return _expval_jacobian(circuit, measurements[0], theta, implied, be, dt)
    state, batched = checked_final_state(circuit, theta, tb, be, dt)
    from ..measure import measure

    # an expectation's value is read from its bra O|psi> (one inner product, not another pass over the state)
    from_bra = {mi for mi, m in enumerate(measurements) if type(m) is Expval}
    values: list[Any] = [None] * len(measurements)
    others = [mi for mi in range(len(measurements)) if mi not in from_bra]
    for mi, v in zip(others, measure(be, state, [measurements[mi] for mi in others]), strict=True):
        values[mi] = be.to_numpy(v)
    p = circuit.num_params
    jacs = [np.zeros((b, int(np.prod(output_shape(m, n))), p)) for m in measurements]
    theta_rows = theta if theta.ndim == 2 else np.broadcast_to(theta, (b, p))
    for start in range(0, len(rows), chunk):
        block = rows[start : start + chunk]
        bras = []
        for mi, c in block:
            cot = np.zeros((b, jacs[mi].shape[1]))
            cot[:, c] = 1.0
            bras.append(cotangent_bra(be, state, measurements[mi], be.asarray(cot)))
            if mi in from_bra:  # cot = 1: the bra is O|psi>
                values[mi] = np.real(be.to_numpy(be.inner(state, bras[-1]))).astype(np.finfo(dt).dtype)
        last = start + chunk >= len(rows)
        if len(block) == 1:
            bra = bras[0]
            ket = state if last else state.copy()
            th = theta
        else:
            bra = be.xp.concatenate(bras, axis=0)
            ket = be.xp.concatenate([state] * len(block), axis=0)
            th = np.concatenate([theta_rows] * len(block), axis=0)
        del bras
        g, _ = backward_sweep(be, circuit, th, bra, ket)
        g = be.to_numpy(g).reshape(len(block), b, p)
        for k, (mi, c) in enumerate(block):
            jacs[mi][:, c, :] = g[k]
        del bra, ket
    out = []
    for m, j in zip(measurements, jacs, strict=True):
        out.append(j.reshape((b,) + output_shape(m, circuit.num_wires) + (p,)))
    return values, out, batched


def adjoint_vjp(
    circuit: Circuit, measurements: list[Measurement], params: Any, cotangents: list[Any], *,
    backend: Any = "numpy", dtype: Any = None, shots: Any = None, matrix_ops: tuple[int, ...] = (),
    memory: str = "refuse",
) -> tuple[list[np.ndarray], np.ndarray, dict[int, np.ndarray], bool]:
    """Values, ``sum_m cot_m . d m / dtheta`` ``(B, P)`` and QubitUnitary matrix gradients: one sweep.

    The peak memory is predicted and checked first, as in :func:`adjoint_jacobian`.
    """
    check_policy(memory)
    if shots is not None:
        raise DifferentiationError(SHOTS_MESSAGE)
    n, dt = circuit.num_wires, resolve_dtype(dtype)
    be = get_backend(backend, n)
    if memory == "fit" and not matrix_ops:
        th_all, _ = check_theta(circuit, params)
        offsets: list[int] = []

        def run(th: np.ndarray) -> Any:
            start = sum(offsets)
            offsets.append(th.shape[0])
            cots = [np.asarray(c)[start : start + th.shape[0]] if np.ndim(c) > len(output_shape(m, n)) else c
                    for m, c in zip(measurements, cotangents, strict=True)]
            return adjoint_vjp(circuit, measurements, th, cots, backend=backend, dtype=dt, memory="fit")

        parts = _split_batch(run, circuit, th_all, shots, lambda r: vjp_footprint(n, r, dt, measurements), be)
        if parts is not None:
            return ([np.concatenate([q[0][i] for q in parts]) for i in range(len(measurements))],
                    np.concatenate([q[1] for q in parts]), {}, True)
    theta, tb = check_theta(circuit, params)
    b = batch_size(circuit, tb) or 1
    require(vjp_footprint(n, b, dt, measurements), "fewer parameter sets per call" if b > 1 else "", be)
    state, batched = checked_final_state(circuit, theta, tb, be, dt)
    from ..measure import measure

    values = [be.to_numpy(v) for v in measure(be, state, measurements)]
    b = state.shape[0]
    bra = None
    for m, cot in zip(measurements, cotangents, strict=True):
        c = real_cotangent(cot, (b,) + output_shape(m, circuit.num_wires))
        term = cotangent_bra(be, state, m, be.asarray(c))
        if bra is None:
            bra = term
        else:
            bra += term  # in place: term and bra are fresh arrays
    g, mg = backward_sweep(be, circuit, theta, bra, state, matrix_ops)
    return values, be.to_numpy(g), {k: be.to_numpy(v) for k, v in mg.items()}, batched


__all__ = ["adjoint_jacobian", "adjoint_vjp", "backward_sweep", "SHOTS_MESSAGE"]
