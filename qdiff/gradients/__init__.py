"""Public gradient API: jacobian, grad, vjp, jvp, value-and-gradient, Hessian, QubitUnitary VJPs.

Every function takes a circuit, measurement(s) (``Expval``/``Var``/``Probs``; a bare observable means
its expval), parameters ``(P,)`` or a batch ``(B, P)``, and ``method``:

- ``"adjoint"``: exact, one backward sweep per output component (one in total for a VJP), a constant
  number of statevectors; refuses shots.
- ``"parameter-shift"``: exact analytically, unbiased with shots; all shifted circuits in one batch.
- ``"finite-diff"``: central (default) or forward differences; a reference.

Results are numpy arrays shaped like the outputs followed by the parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..circuit import Circuit, check_theta
from ..errors import DifferentiationError
from ..measure import Expval, Measurement, Var
from ..observables import Observable
from .adjoint import adjoint_jacobian, adjoint_vjp
from .common import as_list, check_differentiable, output_shape, real_cotangent, select_params
from .finite_diff import finite_diff_jacobian
from .param_shift import param_shift_hessian, param_shift_jacobian

METHODS = ("adjoint", "parameter-shift", "finite-diff")


def _measurements(measurements: Any) -> tuple[list[Measurement], bool]:
    ms, single = as_list(measurements)
    return [Expval(m) if isinstance(m, Observable) else m for m in ms], single


def _strip(arrays: list[np.ndarray], batched: bool, single: bool) -> Any:
    out = [a if batched else a[0] for a in arrays]
    return out[0] if single else out


_OPTIONS_DOC = """
    Options (keyword-only, shared by every function here):

    - ``method``: ``"adjoint"`` (default; exact, refuses shots), ``"parameter-shift"`` (exact, or
      unbiased with shots) or ``"finite-diff"`` (a reference; ``h`` and ``fd_mode`` set the step).
    - ``shots``/``seed``: sample the measurements with ``shots`` shots (parameter-shift and finite-diff).
    - ``backend``: ``"numpy"`` (CPU), ``"cupy"`` (NVIDIA GPU) or a backend object; ``dtype``:
      ``complex128`` (default) or ``complex64``.
    - ``argnum``: differentiate only these parameter indices (in that order).
    - ``memory``: ``"refuse"`` (default) predicts the peak memory and raises
      :class:`~qdiff.errors.MemoryLimitError` before allocating anything if it would not fit;
      ``"fit"`` runs a request that does not fit in chunks that do (a parameter batch, stacked
      adjoint sweeps, shifted circuits).

    ``params`` is ``(P,)`` or a batch ``(B, P)`` (every result then gains a leading ``B`` axis); it
    may be omitted for a circuit without parameters.
"""


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise DifferentiationError(f"unknown differentiation method {method!r}; choose one of {METHODS}")


def value_and_jacobian(
    circuit: Circuit,
    measurements: Measurement | Observable | Sequence[Measurement | Observable],
    params: Any = None,
    method: str = "adjoint",
    *,
    argnum: Sequence[int] | int | None = None,
    shots: int | None = None,
    seed: Any = None,
    backend: Any = "numpy",
    dtype: Any = None,
    h: float | None = None,
    fd_mode: str = "central",
    memory: str = "refuse",
) -> tuple[Any, Any]:
    """Values and Jacobians of the measurements, reusing one forward pass.

    Returns ``(values, jacobians)``: for each measurement its value (``output_shape``) and Jacobian
    ``output_shape + (P,)`` (one of each for a single measurement, lists for a list).

    Example::

        >>> c = qd.Circuit(1); p = c.params(1); c.rx(p[0], 0)
        >>> qd.value_and_jacobian(c, qd.Expval(qd.Z(0)), [0.5])
        (0.877..., array([-0.479...]))
    """
    _check_method(method)
    ms, single = _measurements(measurements)
    shots = check_differentiable(circuit, ms, shots)
    idx = select_params(circuit.num_params, argnum)
    kw = dict(backend=backend, dtype=dtype, memory=memory)
    if method == "adjoint":
        values, jacs, batched = adjoint_jacobian(circuit, ms, params, shots=shots, **kw)
    elif method == "parameter-shift":
        values, jacs, batched = param_shift_jacobian(circuit, ms, params, shots=shots, seed=seed, **kw)
    else:
        values, jacs, batched = finite_diff_jacobian(circuit, ms, params, h=h, mode=fd_mode, shots=shots,
                                                     seed=seed, **kw)
    jacs = [j[..., idx] for j in jacs]
    return _strip(values, batched, single), _strip(jacs, batched, single)


def jacobian(
    circuit: Circuit,
    measurements: Measurement | Observable | Sequence[Measurement | Observable],
    params: Any = None,
    method: str = "adjoint",
    *,
    argnum: Sequence[int] | int | None = None,
    shots: int | None = None,
    seed: Any = None,
    backend: Any = "numpy",
    dtype: Any = None,
    h: float | None = None,
    fd_mode: str = "central",
    memory: str = "refuse",
) -> Any:
    """Jacobian ``output_shape + (P,)`` of each measurement w.r.t. the circuit parameters.

    Example::

        >>> qd.jacobian(c, [qd.Expval(qd.Z(0)), qd.Probs([0])], [0.5])
        [array([-0.479...]), array([[-0.239...], [0.239...]])]
    """
    return value_and_jacobian(circuit, measurements, params, method, argnum=argnum, shots=shots, seed=seed,
                              backend=backend, dtype=dtype, h=h, fd_mode=fd_mode, memory=memory)[1]


def value_and_grad(
    circuit: Circuit,
    measurement: Measurement | Observable,
    params: Any = None,
    method: str = "adjoint",
    *,
    argnum: Sequence[int] | int | None = None,
    shots: int | None = None,
    seed: Any = None,
    backend: Any = "numpy",
    dtype: Any = None,
    h: float | None = None,
    fd_mode: str = "central",
    memory: str = "refuse",
) -> tuple[Any, Any]:
    """Value and gradient ``(P,)`` (``(B, P)`` for a batch) of one scalar output (expval or var).

    Example::

        >>> qd.value_and_grad(c, qd.Z(0), [0.5])
        (0.877..., array([-0.479...]))
    """
    ms, single = _measurements(measurement)
    if not single:
        raise DifferentiationError("grad needs one scalar measurement; use jacobian for several")
    if not isinstance(ms[0], (Expval, Var)):
        raise DifferentiationError(f"grad needs a scalar output (expval or var), got {type(ms[0]).__name__}")
    return value_and_jacobian(circuit, ms[0], params, method, argnum=argnum, shots=shots, seed=seed,
                              backend=backend, dtype=dtype, h=h, fd_mode=fd_mode, memory=memory)


def grad(
    circuit: Circuit,
    measurement: Measurement | Observable,
    params: Any = None,
    method: str = "adjoint",
    *,
    argnum: Sequence[int] | int | None = None,
    shots: int | None = None,
    seed: Any = None,
    backend: Any = "numpy",
    dtype: Any = None,
    h: float | None = None,
    fd_mode: str = "central",
    memory: str = "refuse",
) -> Any:
    """Gradient ``(P,)`` (``(B, P)`` for a batch) of one scalar output (expval or var).

    Example::

        >>> qd.grad(c, qd.Z(0), [0.5])
        array([-0.479...])
    """
    return value_and_grad(circuit, measurement, params, method, argnum=argnum, shots=shots, seed=seed,
                          backend=backend, dtype=dtype, h=h, fd_mode=fd_mode, memory=memory)[1]


def vjp(
    circuit: Circuit,
    measurements: Measurement | Observable | Sequence[Measurement | Observable],
    params: Any,
    cotangents: Any,
    method: str = "adjoint",
    *,
    shots: int | None = None,
    seed: Any = None,
    backend: Any = "numpy",
    dtype: Any = None,
    memory: str = "refuse",
) -> np.ndarray:
    """Vector-Jacobian product ``sum_m cotangent_m . d output_m / d params``: ``(P,)`` or ``(B, P)``.

    ``cotangents`` has one real array per measurement, shaped like its output (with the batch axis for
    a batch). With the adjoint method this is one backward sweep in total, whatever the number of
    outputs; the other methods contract their Jacobians.

    Example::

        >>> qd.vjp(c, [qd.Expval(qd.Z(0))], [0.5], [2.0])
        array([-0.958...])
    """
    _check_method(method)
    ms, single = _measurements(measurements)
    cots = [cotangents] if single else list(cotangents)
    if len(cots) != len(ms):
        raise DifferentiationError(f"got {len(cots)} cotangent(s) for {len(ms)} measurement(s)")
    shots = check_differentiable(circuit, ms, shots)
    if method == "adjoint":
        _, g, _, batched = adjoint_vjp(circuit, ms, params, cots, shots=shots, backend=backend, dtype=dtype,
                                       memory=memory)
        return g if batched else g[0]
    _, tb = check_theta(circuit, params)
    batch = (1,) if tb is None else (tb,)
    cots = [real_cotangent(c, batch + output_shape(m, circuit.num_wires)) for m, c in zip(ms, cots, strict=True)]
    _, jacs = value_and_jacobian(circuit, ms, params, method, shots=shots, seed=seed, backend=backend,
                                 dtype=dtype, memory=memory)
    total: Any = 0.0
    for m, c, j in zip(ms, cots, jacs, strict=True):
        out_ndim = len(output_shape(m, circuit.num_wires))
        batch = j.shape[: j.ndim - 1 - out_ndim]
        c = c.reshape(batch + (-1,))
        total = total + np.einsum("...k,...kp->...p", c, j.reshape(batch + (-1, j.shape[-1])))
    return np.asarray(total)


def jvp(
    circuit: Circuit,
    measurements: Measurement | Observable | Sequence[Measurement | Observable],
    params: Any,
    tangent: Any,
    method: str = "adjoint",
    *,
    shots: int | None = None,
    seed: Any = None,
    backend: Any = "numpy",
    dtype: Any = None,
    memory: str = "refuse",
) -> Any:
    """Jacobian-vector products ``d output / d params . tangent``, shaped like the outputs.

    ``tangent`` is ``(P,)``, or ``(B, P)`` for a batch of parameters.

    Example::

        >>> qd.jvp(c, qd.Z(0), [0.5], [1.0])
        -0.479...
    """
    ms, single = _measurements(measurements)
    _, jacs = value_and_jacobian(circuit, ms, params, method, shots=shots, seed=seed, backend=backend,
                                 dtype=dtype, memory=memory)
    t = np.asarray(tangent, dtype=float)
    if t.shape[-1:] != (circuit.num_params,):
        raise DifferentiationError(f"tangent of shape {t.shape} does not match the {circuit.num_params} parameters")
    out = [np.tensordot(j, t, axes=([-1], [-1])) if t.ndim == 1 else np.einsum("b...p,bp->b...", j, t)
           for j in jacs]
    return out[0] if single else out


def hessian(
    circuit: Circuit,
    measurement: Measurement | Observable,
    params: Any = None,
    *,
    shots: int | None = None,
    seed: Any = None,
    backend: Any = "numpy",
    dtype: Any = None,
    memory: str = "refuse",
) -> Any:
    """Second derivatives ``output_shape + (P, P)`` of one expval or probs, by parameter-shift twice.

    Example::

        >>> qd.hessian(c, qd.Z(0), [0.5])
        array([[-0.877...]])
    """
    ms, single = _measurements(measurement)
    if not single:
        raise DifferentiationError("hessian takes one measurement")
    shots = check_differentiable(circuit, ms, shots)
    return param_shift_hessian(circuit, ms[0], params, shots=shots, seed=seed, backend=backend, dtype=dtype,
                               memory=memory)


for _f in (value_and_jacobian, jacobian, value_and_grad, grad, vjp, jvp, hessian):
    _f.__doc__ = (_f.__doc__ or "") + _OPTIONS_DOC


def matrix_vjp(
    circuit: Circuit, measurements: Any, params: Any, cotangents: Any, *, ops: Sequence[int] | None = None,
    backend: Any = "numpy", dtype: Any = None,
) -> dict[int, np.ndarray]:
    """Gradients w.r.t. the matrices of QubitUnitary operations, by one adjoint sweep.

    Returns ``{op_index: dL/dRe U + i dL/dIm U}`` (PyTorch's convention; JAX uses the conjugate) for
    ``L = sum_m cotangent_m . output_m``, for every QubitUnitary (or the op indices in ``ops``).
    """
    ms, single = _measurements(measurements)
    cots = [cotangents] if single else list(cotangents)
    check_differentiable(circuit, ms, None)
    if ops is None:
        ops = [i for i, op in enumerate(circuit.operations) if op.gate.name == "QubitUnitary"]
    for i in ops:
        if not 0 <= i < len(circuit.operations) or circuit.operations[i].gate.name != "QubitUnitary":
            raise DifferentiationError(f"operation {i} is not a QubitUnitary of this circuit")
    _, _, mg, batched = adjoint_vjp(circuit, ms, params, cots, backend=backend, dtype=dtype, matrix_ops=tuple(ops))
    return {k: (v if batched else v[0]) for k, v in mg.items()}


__all__ = [
    "jacobian", "value_and_jacobian", "grad", "value_and_grad", "vjp", "jvp", "hessian", "matrix_vjp", "METHODS",
]
