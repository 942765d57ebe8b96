"""Instruction kinds of the intermediate form and how each kind stores its data.

A unitary instruction acts on ``k`` target wires (within the subspace where its controls have their
control values) as ``U = sum_e data[e] * B_e`` over a fixed basis of operators ``B_e`` per kind:

========================  ==========  ==================================================================
kind                      entries D   basis ``B_e`` (``d = 2**k``; local index: first target most significant)
========================  ==========  ==================================================================
``DENSE``                 ``d * d``   matrix units ``|i><j|``, row-major
``DIAGONAL``              ``d``       ``|i><i|`` (``k = 0``: the identity, a phase on the controlled subspace)
``PERMUTATION``           0           none: ``new[i] = old[perm[i]]``, a fixed gate
``PAULI_ROTATION``        2           ``I`` and the Pauli word ``P`` on the targets
``SUBSPACE``              5           ``|a><a|, |a><b|, |b><a|, |b><b|`` and ``I - |a><a| - |b><b|``
========================  ==========  ==================================================================

The same view serves every part of the pipeline:

- executors apply ``data`` and un-apply ``U^dagger``, whose data is ``conj(data[dagger_index])``;
- the binder writes parameterised data as spectral sums in this basis;
- gradients: an executor's backward sweep returns ``R[e] = <bra|B_e|ket>`` per differentiated
  instruction (bra and ket taken where the instruction acts), and ``d/dv <...> = 2 Re sum_e dData[e] R[e]``.

Nothing here imports the rest of qdiff.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Kind(IntEnum):
    """How an instruction acts on its targets; the values are the codes compiled executors switch on."""

    DENSE = 0
    DIAGONAL = 1
    PERMUTATION = 2
    PAULI_ROTATION = 3
    SUBSPACE = 4


SUBSPACE_SIZE = 5
"""Data entries of a SUBSPACE instruction: the 2x2 block on (a, b), row-major, then the complement scalar."""


def data_size(kind: Kind, k: int) -> int:
    """Number of complex data entries of an instruction of ``kind`` on ``k`` targets."""
    if kind == Kind.DENSE:
        return 4**k
    if kind == Kind.DIAGONAL:
        return 2**k
    if kind == Kind.PERMUTATION:
        return 0
    if kind == Kind.PAULI_ROTATION:
        return 2
    return SUBSPACE_SIZE


def dagger_index(kind: Kind, k: int) -> np.ndarray:
    """Entry permutation of the adjoint: ``data(U^dagger) = conj(data(U)[dagger_index])``."""
    if kind == Kind.DENSE:
        d = 2**k
        return np.arange(d * d).reshape(d, d).T.ravel()
    if kind == Kind.SUBSPACE:
        return np.array([0, 2, 1, 3, 4])
    return np.arange(data_size(kind, k))


def pauli_matrix(word: str) -> np.ndarray:
    """Dense matrix of a Pauli word such as ``"XIZ"`` (first letter = most significant target)."""
    mats = {
        "I": np.eye(2, dtype=complex),
        "X": np.array([[0, 1], [1, 0]], dtype=complex),
        "Y": np.array([[0, -1j], [1j, 0]], dtype=complex),
        "Z": np.array([[1, 0], [0, -1]], dtype=complex),
    }
    out = np.eye(1, dtype=complex)
    for letter in word:
        out = np.kron(out, mats[letter])
    return out


def basis(kind: Kind, k: int, word: str | None = None, subspace: tuple[int, int] | None = None) -> np.ndarray:
    """The basis operators ``B_e`` as dense ``(D, d, d)`` matrices (tests and small checks only)."""
    d = 2**k
    if kind == Kind.DENSE:
        return np.eye(d * d, dtype=complex).reshape(d * d, d, d)
    if kind == Kind.DIAGONAL:
        out = np.zeros((d, d, d), dtype=complex)
        out[np.arange(d), np.arange(d), np.arange(d)] = 1
        return out
    if kind == Kind.PERMUTATION:
        return np.zeros((0, d, d), dtype=complex)
    if kind == Kind.PAULI_ROTATION:
        return np.stack([np.eye(d, dtype=complex), pauli_matrix(word)])
    a, b = subspace
    out = np.zeros((SUBSPACE_SIZE, d, d), dtype=complex)
    out[0, a, a] = out[1, a, b] = out[2, b, a] = out[3, b, b] = 1
    out[4] = np.eye(d)
    out[4, a, a] = out[4, b, b] = 0
    return out


def encode(kind: Kind, k: int, matrix: np.ndarray, word: str | None = None,
           subspace: tuple[int, int] | None = None, atol: float = 1e-12) -> np.ndarray:
    """The data of a dense ``(d, d)`` matrix in the basis of ``kind``; ValueError if it does not fit that basis."""
    m = np.asarray(matrix, dtype=complex)
    d = 2**k
    if kind == Kind.DENSE:
        data = m.ravel().copy()
    elif kind == Kind.DIAGONAL:
        data = np.diag(m).copy()
    elif kind == Kind.PAULI_ROTATION:
        p = pauli_matrix(word)
        data = np.array([np.trace(m) / d, np.trace(p @ m) / d])
    elif kind == Kind.SUBSPACE:
        a, b = subspace
        rest = [i for i in range(d) if i not in (a, b)]
        c = m[rest[0], rest[0]] if rest else 1.0
        data = np.array([m[a, a], m[a, b], m[b, a], m[b, b], c])
    else:
        raise ValueError("a permutation carries no data")
    if np.abs(decode(kind, k, data, word, subspace) - m).max(initial=0.0) > atol:
        raise ValueError(f"matrix is not of the {kind.name} form")
    return data


def decode(kind: Kind, k: int, data: np.ndarray, word: str | None = None,
           subspace: tuple[int, int] | None = None) -> np.ndarray:
    """The dense ``(..., d, d)`` matrix of data ``(..., D)`` (tests and the reference executor's small cases)."""
    data = np.asarray(data, dtype=complex)
    return np.einsum("...e,eij->...ij", data, basis(kind, k, word, subspace))


__all__ = ["Kind", "SUBSPACE_SIZE", "data_size", "dagger_index", "basis", "encode", "decode", "pauli_matrix"]
