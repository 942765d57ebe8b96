"""Finite-difference Jacobians (central or forward): a reference and a fallback."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..circuit import Circuit, check_theta
from ..errors import DifferentiationError
from ..measure import Measurement
from ..simulate import batch_size
from .common import evaluate_rows

DEFAULT_STEP = {"central": 1e-6, "forward": 1e-7}


def finite_diff_jacobian(
    circuit: Circuit, measurements: list[Measurement], params: Any, *, h: float | None = None,
    mode: str = "central", shots: int | None = None, seed: Any = None, backend: Any = "numpy",
    dtype: Any = None, memory: str = "refuse",
) -> tuple[list[np.ndarray], list[np.ndarray], bool]:
    """Values and Jacobians ``(B,) + output_shape + (P,)`` from shifted parameter rows in one batch."""
    if mode not in DEFAULT_STEP:
        raise DifferentiationError(f"finite-difference mode must be 'central' or 'forward', got {mode!r}")
    if batch_size(circuit, None) is not None:
        raise DifferentiationError("finite differences need unbatched gate data; use method='adjoint'")
    step = DEFAULT_STEP[mode] if h is None else float(h)
    if not np.isfinite(step) or step <= 0:
        raise DifferentiationError(f"finite-difference step must be positive, got {h!r}")
    theta, tb = check_theta(circuit, params)
    t = theta if theta.ndim == 2 else theta[None, :]
    b, p = t.shape
    eye = np.eye(p) * step
    if mode == "central":
        rows = [t] + [t + eye[j] for j in range(p)] + [t - eye[j] for j in range(p)]
    else:
        rows = [t] + [t + eye[j] for j in range(p)]
    res = evaluate_rows(circuit, measurements, np.concatenate(rows, axis=0), shots=shots, seed=seed,
                        backend=backend, dtype=dtype, memory=memory)
    values, jacs = [], []
    for r in res:
        r = r.reshape((-1, b) + r.shape[1:])
        values.append(r[0])
        if mode == "central":
            d = (r[1 : p + 1] - r[p + 1 :]) / (2 * step)
        else:
            d = (r[1 : p + 1] - r[0]) / step
        jacs.append(np.moveaxis(d, 0, -1))
    return values, jacs, tb is not None
