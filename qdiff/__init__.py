"""qdiff: a differentiable statevector simulator with adjoint and parameter-shift gradients.

Build a :class:`Circuit`, measure it with :func:`expval` / :func:`execute`, differentiate with
:func:`grad` / :func:`jacobian` / :func:`vjp` / :func:`jvp`. Backends: numpy (CPU) and cupy (GPU).
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import errors, gates
from .backends import get_backend
from .circuit import Circuit, Operation, ParamRef
from .execute import counts, execute, expval, probs, sample, state, var
from .gradients import grad, hessian, jacobian, jvp, matrix_vjp, value_and_grad, value_and_jacobian, vjp
from .measure import Counts, DensityMatrix, Expval, Probs, Sample, State, Var
from .observables import Hermitian, Identity, LinearCombination, PauliWord, Product, SparseHermitian, X, Y, Z
from .threads import get_num_threads, num_threads, set_num_threads

__all__ = [
    "__version__", "errors", "gates", "get_backend",
    "Circuit", "Operation", "ParamRef",
    "grad", "hessian", "jacobian", "jvp", "matrix_vjp", "value_and_grad", "value_and_jacobian", "vjp",
    "execute", "expval", "var", "probs", "state", "sample", "counts",
    "Expval", "Var", "Probs", "State", "DensityMatrix", "Sample", "Counts",
    "PauliWord", "Hermitian", "Product", "LinearCombination", "SparseHermitian", "X", "Y", "Z", "Identity",
    "get_num_threads", "set_num_threads", "num_threads",
]
