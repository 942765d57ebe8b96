"""Run circuits on a backend: initial state, then each operation through one dispatch on gate kind.

Operations are compiled to kernels (``qdiff.program``), the one place that maps gate data onto
backend primitives; the simulator and both gradient methods use them, for every backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backends import get_backend
from .circuit import Circuit, Operation, check_theta
from .engine import run_forward
from .errors import ParameterError, StateError
from .product import prefix_state
from .program import apply_kernel, compile_operation, factor_operations, program_of


def resolve_dtype(dtype: Any) -> np.dtype:
    """complex128 (default) or complex64."""
    try:
        dt = np.dtype(dtype if dtype is not None else np.complex128)
    except TypeError:
        raise ParameterError(f"dtype must be complex128 or complex64, got {dtype!r}") from None
    if dt not in (np.dtype(np.complex128), np.dtype(np.complex64)):
        raise ParameterError(f"dtype must be complex128 or complex64, got {dt}")
    return dt


def batch_size(circuit: Circuit, theta_batch: int | None) -> int | None:
    """Batch size implied by the parameters, batched gate data and a batched initial state."""
    data = program_of(circuit).data_batch
    sizes = {s for s in (theta_batch, data) if s is not None}
    if len(sizes) > 1:
        sizes.discard(1)
    if len(sizes) > 1:
        raise ParameterError(f"inconsistent batch sizes: parameters {theta_batch}, circuit data {data}")
    return sizes.pop() if sizes else None


def initial_state(backend: Any, circuit: Circuit, batch: int, dtype: Any) -> Any:
    """The circuit's starting state, shape ``(batch, 2**n)``: |0...0> or its state preparation."""
    n = circuit.num_wires
    prep = circuit.state_prep
    if prep is None:
        return backend.zero_state(n, batch, dtype)
    if prep.bits is not None:
        index = 0
        for w, b in zip(prep.wires, prep.bits, strict=True):
            index |= b << (n - 1 - w)
        return backend.basis_state(n, batch, dtype, index)
    backend.check_memory(n, batch, dtype)
    amp = np.asarray(prep.amplitudes, dtype=dtype)
    amp = np.broadcast_to(amp, (batch, amp.shape[-1])) if amp.ndim == 2 or batch > 1 else amp[None, :]
    k = len(prep.wires)
    if amp.shape[-1] != 2**k:
        raise StateError("state preparation has the wrong length")
    # |amp> on prep wires, |0> on the rest, then transpose wires into place
    rest = [w for w in range(n) if w not in prep.wires]
    full = np.zeros((batch, 2**k, 2 ** len(rest)), dtype=dtype)
    full[:, :, 0] = amp
    order = list(prep.wires) + rest
    tensor = full.reshape((batch,) + (2,) * n)
    tensor = np.transpose(tensor, [0] + [1 + order.index(w) for w in range(n)])
    return backend.state_from_array(np.ascontiguousarray(tensor).reshape(batch, 2**n))


def apply_operation(backend: Any, state: Any, op: Operation, theta: Any, inverse: bool = False) -> Any:
    """Apply ``op`` (or its inverse when ``inverse``) to ``state`` in place; returns the state."""
    return apply_kernel(backend, state, compile_operation(op, theta, inverse))


def final_state(
    circuit: Circuit, theta: Any = None, *, backend: Any = "numpy", dtype: Any = None
) -> tuple[Any, bool]:
    """Simulate ``circuit`` at parameters ``theta``; returns ``(state (B, 2**n), batched)``.

    All validation happens before the state is allocated.
    """
    theta_arr, tb = check_theta(circuit, theta)
    return checked_final_state(circuit, theta_arr, tb, get_backend(backend, circuit.num_wires), resolve_dtype(dtype))


def checked_final_state(circuit: Circuit, theta: np.ndarray, theta_batch: int | None, backend: Any,
                        dtype: np.dtype) -> tuple[Any, bool]:
    """:func:`final_state` for parameters already checked (``check_theta``) and a resolved backend and dtype."""
    batch = batch_size(circuit, theta_batch)
    program = program_of(circuit)
    if program.product_prefix:  # the leading one-qubit gates written as a product state, then the rest
        state = prefix_state(backend, program, theta, batch or 1, dtype)
        program = program.tail
    else:
        state = initial_state(backend, circuit, batch or 1, dtype)
    run_forward(backend, program, theta, state)
    return state, batch is not None


__all__ = ["resolve_dtype", "batch_size", "initial_state", "apply_operation", "final_state", "checked_final_state",
           "factor_operations"]
