"""A program's leading one-qubit gates as a product state, written directly instead of applied.

Most variational circuits open with a layer of one-qubit gates on a fresh register (RY or Rot layers,
Hadamards before QAOA, angle encodings of data). Applied gate by gate, each sweeps the whole state;
their result is a product state, ``kron`` of one column per wire, written in one pass.
:attr:`Program.product_prefix <qdiff.program.Program.product_prefix>` says how many leading operations
qualify; :func:`prefix_columns` evaluates the per-wire columns at the parameters and
:func:`prefix_state` has the backend write their product (``backend.product_state``), after which
:attr:`Program.tail <qdiff.program.Program.tail>` runs the rest.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .program import Program, kernel_matrix


def prefix_columns(program: Program, theta: np.ndarray, batch: int) -> np.ndarray:
    """``(batch, n, 2)`` complex128: wire ``w``'s one-qubit state after the program's product prefix,
    starting from its bit of the start state (|0>, or the basis-state preparation's bit)."""
    n = len(program.start_bits)
    cols = np.zeros((batch, n, 2), dtype=complex)
    cols[:, np.arange(n), program.start_bits] = 1.0
    for kern in program.head.kernels(theta):
        w = kern.wires[0]
        m = np.broadcast_to(kernel_matrix(kern), (batch, 2, 2))
        cols[:, w] = np.einsum("bij,bj->bi", m, cols[:, w])
    return cols


def prefix_state(backend: Any, program: Program, theta: np.ndarray, batch: int, dtype: Any) -> Any:
    """A new state: the start state with the program's product prefix applied, ``(batch, 2**n)`` of
    ``dtype``; run :attr:`Program.tail` on it for the whole program."""
    return backend.product_state(prefix_columns(program, theta, batch), dtype)


__all__ = ["prefix_columns", "prefix_state"]
