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
from ..measure import Expval, Measurement
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
) -> tuple[Any, Any]:
    """Values and Jacobians, reusing one forward pass; Jacobians are ``output_shape + (P,)``.

    ``argnum`` restricts the Jacobian to some parameters (in that order).
    """
    ms, single = _measurements(measurements)
    shots = check_differentiable(circuit, ms, shots)
    idx = select_params(circuit.num_params, argnum)
    kw = dict(backend=backend, dtype=dtype)
    if method == "adjoint":
        values, jacs, batched = adjoint_jacobian(circuit, ms, params, shots=shots, **kw)
    elif method == "parameter-shift":
        values, jacs, batched = param_shift_jacobian(circuit, ms, params, shots=shots, seed=seed, **kw)
    elif method == "finite-diff":
        values, jacs, batched = finite_diff_jacobian(circuit, ms, params, h=h, mode=fd_mode, shots=shots,
                                                     seed=seed, **kw)
    else:
        raise DifferentiationError(f"unknown differentiation method {method!r}; choose one of {METHODS}")
    jacs = [j[..., idx] for j in jacs]
    return _strip(values, batched, single), _strip(jacs, batched, single)


def jacobian(circuit: Circuit, measurements: Any, params: Any = None, method: str = "adjoint", **kwargs: Any) -> Any:
    """Jacobian of the measurements w.r.t. the circuit parameters: ``output_shape + (P,)`` each."""
    return value_and_jacobian(circuit, measurements, params, method, **kwargs)[1]


def value_and_grad(
    circuit: Circuit, measurement: Measurement | Observable, params: Any = None, method: str = "adjoint",
    **kwargs: Any,
) -> tuple[Any, Any]:
    """Value and gradient ``(P,)`` of one scalar output (expval or var)."""
    ms, single = _measurements(measurement)
    if not single:
        raise DifferentiationError("grad needs one scalar measurement; use jacobian for several")
    if not isinstance(ms[0], Expval) and type(ms[0]).__name__ != "Var":
        raise DifferentiationError(f"grad needs a scalar output (expval or var), got {type(ms[0]).__name__}")
    return value_and_jacobian(circuit, ms[0], params, method, **kwargs)


def grad(circuit: Circuit, measurement: Measurement | Observable, params: Any = None, method: str = "adjoint",
         **kwargs: Any) -> Any:
    """Gradient ``(P,)`` (or ``(B, P)``) of one scalar output (expval or var)."""
    return value_and_grad(circuit, measurement, params, method, **kwargs)[1]


def vjp(
    circuit: Circuit, measurements: Any, params: Any, cotangents: Any, method: str = "adjoint", *,
    shots: int | None = None, seed: Any = None, backend: Any = "numpy", dtype: Any = None,
) -> np.ndarray:
    """``sum_m cotangent_m . d output_m / d params``: ``(P,)`` or ``(B, P)``.

    With the adjoint method this is one backward sweep in total, whatever the number of outputs.
    """
    ms, single = _measurements(measurements)
    cots = [cotangents] if single else list(cotangents)
    if len(cots) != len(ms):
        raise DifferentiationError(f"got {len(cots)} cotangent(s) for {len(ms)} measurement(s)")
    shots = check_differentiable(circuit, ms, shots)
    if method == "adjoint":
        _, g, _, batched = adjoint_vjp(circuit, ms, params, cots, shots=shots, backend=backend, dtype=dtype)
        return g if batched else g[0]
    _, tb = check_theta(circuit, params)
    batch = (1,) if tb is None else (tb,)
    cots = [real_cotangent(c, batch + output_shape(m, circuit.num_wires)) for m, c in zip(ms, cots, strict=True)]
    _, jacs = value_and_jacobian(circuit, ms, params, method, shots=shots, seed=seed, backend=backend,
                                 dtype=dtype)
    total: Any = 0.0
    for m, c, j in zip(ms, cots, jacs, strict=True):
        out_ndim = len(output_shape(m, circuit.num_wires))
        batch = j.shape[: j.ndim - 1 - out_ndim]
        c = c.reshape(batch + (-1,))
        total = total + np.einsum("...k,...kp->...p", c, j.reshape(batch + (-1, j.shape[-1])))
    return np.asarray(total)


def jvp(circuit: Circuit, measurements: Any, params: Any, tangent: Any, method: str = "adjoint",
        **kwargs: Any) -> Any:
    """Jacobian-vector products ``d output / d params . tangent`` shaped like the outputs."""
    ms, single = _measurements(measurements)
    _, jacs = value_and_jacobian(circuit, ms, params, method, **kwargs)
    t = np.asarray(tangent, dtype=float)
    out = [np.tensordot(j, t, axes=([-1], [-1])) if t.ndim == 1 else np.einsum("b...p,bp->b...", j, t)
           for j in jacs]
    return out[0] if single else out


def hessian(circuit: Circuit, measurement: Measurement | Observable, params: Any = None, **kwargs: Any) -> Any:
    """Second derivatives ``output_shape + (P, P)`` by parameter-shift (expval or probs)."""
    ms, single = _measurements(measurement)
    if not single:
        raise DifferentiationError("hessian takes one measurement")
    shots = check_differentiable(circuit, ms, kwargs.pop("shots", None))
    return param_shift_hessian(circuit, ms[0], params, shots=shots, **kwargs)


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
