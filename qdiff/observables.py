"""Observables kept structured: Pauli words, small Hermitian matrices, products, sums, sparse matrices.

Nothing here builds a ``2^n x 2^n`` dense matrix. ``apply_observable`` computes ``O|psi>`` term by term
with backend primitives, ``expectation`` computes ``<psi|O|psi>`` (Pauli words and diagonal terms from
probabilities, without an extra state where possible).

Build them like ``0.5 * Z(0) @ Z(1) + X(2)`` or ``Hermitian(m, wires=[0, 1])``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import NotHermitianError, ParameterError, UnsupportedOperationError, WireError
from .ir.pauli import pauli_masks

ZDIAG_CACHE_MAX_QUBITS = 20
"""Sums of Z words keep their diagonal (8 MiB at 20 qubits) for reuse up to this size."""

HERMITIAN_ATOL = 1e-8
"""Tolerance for ``M = M^dagger`` in observables."""


class Observable:
    """Base class: a Hermitian operator on some wires, with operator algebra."""

    wires: tuple[int, ...]

    def __matmul__(self, other: Observable) -> Observable:
        return product(self, other)

    def __add__(self, other: Observable | float) -> LinearCombination:
        if isinstance(other, (int, float)) and other == 0:
            return as_linear_combination(self)
        return as_linear_combination(self).plus(as_linear_combination(other))

    __radd__ = __add__

    def __sub__(self, other: Observable) -> LinearCombination:
        return self + (-1.0) * other

    def __mul__(self, c: float) -> LinearCombination:
        return as_linear_combination(self).scaled(c)

    __rmul__ = __mul__

    def __neg__(self) -> LinearCombination:
        return self * -1.0


@dataclass(frozen=True, eq=False)
class PauliWord(Observable):
    """Tensor product of Pauli operators, e.g. ``{0: 'Z', 3: 'X'}``; the empty word is the identity."""

    paulis: tuple[tuple[int, str], ...]

    def __init__(self, paulis: dict[int, str] | Iterable[tuple[int, str]] | None = None):
        if isinstance(paulis, str):
            raise ParameterError(f"PauliWord takes {{wire: letter}}; use PauliWord.from_string({paulis!r})")
        items = dict(paulis or {}).items() if not isinstance(paulis, dict) else paulis.items()
        clean = []
        for w, p in items:
            p = str(p).upper()
            if p not in "IXYZ" or len(p) != 1:
                raise ParameterError(f"unknown Pauli {p!r}; use I, X, Y or Z")
            if p != "I":
                clean.append((int(w), p))
        object.__setattr__(self, "paulis", tuple(sorted(clean)))

    @classmethod
    def from_string(cls, word: str, wires: Sequence[int] | None = None) -> PauliWord:
        """``PauliWord.from_string("XZI")``: one letter per wire (wires 0.. by default)."""
        wires = range(len(word)) if wires is None else wires
        if len(word) != len(wires):
            raise WireError(f"Pauli word {word!r} has {len(word)} letters for {len(wires)} wires")
        return cls(dict(zip(wires, word, strict=True)))

    @property
    def word(self) -> dict[int, str]:
        """The word as ``{wire: letter}``."""
        return dict(self.paulis)

    @property
    def wires(self) -> tuple[int, ...]:  # type: ignore[override]
        return tuple(w for w, _ in self.paulis)

    def __repr__(self) -> str:
        return " @ ".join(f"{p}({w})" for w, p in self.paulis) or "I"


@dataclass(frozen=True, eq=False)
class Hermitian(Observable):
    """A Hermitian matrix on a few wires (checked on construction)."""

    matrix: np.ndarray
    wires: tuple[int, ...]

    def __init__(self, matrix: Any, wires: int | Iterable[int], atol: float = HERMITIAN_ATOL):
        wires_t = (int(wires),) if isinstance(wires, (int, np.integer)) else tuple(int(w) for w in wires)
        try:
            m = np.array(matrix, dtype=complex)  # a copy: later changes to the caller's array change nothing
        except (TypeError, ValueError):
            raise ParameterError(f"Hermitian needs a numeric matrix, got {matrix!r}") from None
        m.flags.writeable = False
        d = 2 ** len(wires_t)
        if m.shape != (d, d):
            raise ParameterError(f"Hermitian on {len(wires_t)} wire(s) needs a {d}x{d} matrix, got {m.shape}")
        if not np.all(np.isfinite(m)):
            raise ParameterError("Hermitian matrix has NaN or inf entries")
        err = np.abs(m - m.conj().T).max()
        if err > atol:
            raise NotHermitianError(f"observable matrix is not Hermitian: max |M - M^dagger| = {err:.3g}")
        if len(set(wires_t)) != len(wires_t):
            raise WireError(f"Hermitian wires {wires_t} repeat a wire")
        object.__setattr__(self, "matrix", m)
        object.__setattr__(self, "wires", wires_t)

    def __repr__(self) -> str:
        return f"Hermitian(wires={self.wires})"


@dataclass(frozen=True, eq=False)
class Product(Observable):
    """Tensor product of observables on disjoint wires (non-Pauli factors stay separate)."""

    factors: tuple[Observable, ...]

    @property
    def wires(self) -> tuple[int, ...]:  # type: ignore[override]
        return tuple(w for f in self.factors for w in f.wires)

    def __repr__(self) -> str:
        return " @ ".join(repr(f) for f in self.factors)


@dataclass(frozen=True, eq=False)
class SparseHermitian(Observable):
    """A scipy.sparse Hermitian matrix on ``wires`` (all wires of the circuit when used whole)."""

    matrix: Any
    wires: tuple[int, ...]

    def __init__(self, matrix: Any, wires: Iterable[int], atol: float = HERMITIAN_ATOL):
        import scipy.sparse as sp

        wires_t = tuple(int(w) for w in wires)
        m = sp.csr_matrix(matrix, dtype=complex, copy=True)  # a copy, frozen below
        d = 2 ** len(wires_t)
        if m.shape != (d, d):
            raise ParameterError(f"sparse observable on {len(wires_t)} wires needs shape ({d}, {d}), got {m.shape}")
        if not np.all(np.isfinite(m.data)):
            raise ParameterError("sparse observable has NaN or inf entries")
        if len(set(wires_t)) != len(wires_t):
            raise WireError(f"sparse observable wires {wires_t} repeat a wire")
        diff = m - m.conj().T
        if diff.nnz and np.abs(diff.data).max() > atol:
            raise NotHermitianError("sparse observable is not Hermitian")
        for part in (m.data, m.indices, m.indptr):
            part.flags.writeable = False
        object.__setattr__(self, "matrix", m)
        object.__setattr__(self, "wires", wires_t)

    def __repr__(self) -> str:
        return f"SparseHermitian(nnz={self.matrix.nnz}, wires={self.wires})"


@dataclass(frozen=True, eq=False)
class LinearCombination(Observable):
    """``sum_k c_k O_k`` with real coefficients; evaluated term by term, never densified."""

    coeffs: tuple[float, ...]
    terms: tuple[Observable, ...]

    @property
    def wires(self) -> tuple[int, ...]:  # type: ignore[override]
        seen: dict[int, None] = {}
        for t in self.terms:
            seen.update(dict.fromkeys(t.wires))
        return tuple(seen)

    def plus(self, other: LinearCombination) -> LinearCombination:
        return LinearCombination(self.coeffs + other.coeffs, self.terms + other.terms)

    def scaled(self, c: float) -> LinearCombination:
        if np.iscomplexobj(c) and np.imag(c) != 0:
            raise NotHermitianError(f"observable coefficients must be real, got {c}")
        if not np.isfinite(c):
            raise ParameterError(f"observable coefficients must be finite, got {c}")
        return LinearCombination(tuple(float(np.real(c)) * x for x in self.coeffs), self.terms)

    def __repr__(self) -> str:
        return " + ".join(f"{c:g}*{t!r}" for c, t in zip(self.coeffs, self.terms, strict=True))


def as_linear_combination(obs: Observable | float) -> LinearCombination:
    """Wrap any observable (or a constant, as a multiple of the identity) as a LinearCombination."""
    if isinstance(obs, LinearCombination):
        return obs
    if isinstance(obs, (int, float, np.floating)):
        return LinearCombination((float(obs),), (PauliWord({}),))
    if isinstance(obs, Observable):
        return LinearCombination((1.0,), (obs,))
    raise UnsupportedOperationError(f"not an observable: {obs!r}")


def product(a: Observable, b: Observable) -> Observable:
    """Tensor product; Pauli words merge, sums distribute."""
    if isinstance(a, LinearCombination) or isinstance(b, LinearCombination):
        la, lb = as_linear_combination(a), as_linear_combination(b)
        coeffs, terms = [], []
        for ca, ta in zip(la.coeffs, la.terms, strict=True):
            for cb, tb in zip(lb.coeffs, lb.terms, strict=True):
                coeffs.append(ca * cb)
                terms.append(product(ta, tb))
        return LinearCombination(tuple(coeffs), tuple(terms))
    if set(a.wires) & set(b.wires):
        raise WireError(f"tensor product of observables on overlapping wires {a.wires} and {b.wires}")
    if isinstance(a, PauliWord) and isinstance(b, PauliWord):
        return PauliWord(dict(a.paulis + b.paulis))
    fa = a.factors if isinstance(a, Product) else (a,)
    fb = b.factors if isinstance(b, Product) else (b,)
    return Product(fa + fb)


def X(wire: int) -> PauliWord:
    """Pauli X on ``wire``."""
    return PauliWord({wire: "X"})


def Y(wire: int) -> PauliWord:
    """Pauli Y on ``wire``."""
    return PauliWord({wire: "Y"})


def Z(wire: int) -> PauliWord:
    """Pauli Z on ``wire``."""
    return PauliWord({wire: "Z"})


def Identity(wire: int | None = None) -> PauliWord:
    """The identity (expectation 1)."""
    return PauliWord({})


# ------------------------------------------------------------------------------------------------
# evaluation on backend states


_MISSING = object()


def derived(obs: Observable, name: str, build: Any) -> Any:
    """``build()``, computed once per observable and kept on it under ``name`` (observables are immutable)."""
    value = obs.__dict__.get(name, _MISSING)
    if value is _MISSING:
        value = obs.__dict__[name] = build()
    return value


def _span(wires: tuple) -> tuple[int, int]:
    return (min(wires), max(wires)) if wires else (0, -1)


def check_observable(obs: Observable, num_wires: int) -> None:
    """Raise :class:`WireError` when ``obs`` acts on wires outside ``range(num_wires)``."""
    span = derived(obs, "_wire_span", lambda: _span(obs.wires))  # a sum's wires include every term's
    if span[0] >= 0 and span[1] < num_wires:
        return
    for w in obs.wires:
        if not 0 <= w < num_wires:
            raise WireError(f"observable {obs!r} acts on wire {w}, outside the {num_wires}-wire circuit")
    if isinstance(obs, LinearCombination):
        for t in obs.terms:
            check_observable(t, num_wires)


@functools.singledispatch
def apply_observable(backend: Any, state: Any, obs: Observable) -> Any:
    """Return a new state ``O|state>`` (structured: one pass per term, no dense 2^n matrix).

    Dispatches on the backend type: a distributed backend registers its own (``qdiff.distributed``)."""
    if isinstance(obs, PauliWord):
        return backend.apply_pauli(state, obs.word)
    if isinstance(obs, Hermitian):
        return backend.apply_matrix(state.copy(), obs.matrix, obs.wires)
    if isinstance(obs, Product):
        out = state.copy()
        for f in obs.factors:
            out = apply_observable(backend, out, f)
        return out
    if isinstance(obs, SparseHermitian):
        return _apply_sparse(backend, state, obs)
    if isinstance(obs, LinearCombination):
        diag, rest = split_diagonal_terms(backend, state, obs)
        words, others = _split_words(rest)
        if words:
            out = backend.apply_pauli_groups(state, _word_groups(obs, words, num_qubits_of(state)), diag)
        else:
            out = diag * state if diag is not None else backend.xp.zeros_like(state)
        for c, t in others:
            out += c * apply_observable(backend, state, t)
        return out
    raise UnsupportedOperationError(f"unsupported observable {type(obs).__name__}")


def z_diagonal(xp: Any, num_wires: int, terms: list[tuple[float, PauliWord]]) -> Any:
    """Real diagonal ``sum_k c_k Z...Z`` over all basis states, shape ``(2**n,)``, built by broadcasting."""
    shape = (2,) * num_wires
    diag = xp.zeros(shape, dtype=float)
    for c, t in terms:
        part = xp.full((1,) * num_wires, c, dtype=float)
        for w in t.wires:
            s = [1] * num_wires
            s[w] = 2
            part = part * xp.asarray([1.0, -1.0]).reshape(s)
        diag += part
    return diag.reshape(-1)


def word_masks(word: PauliWord, num_wires: int) -> tuple[int, int, complex]:
    """``(flip mask, sign mask, i**(number of Y))`` of a Pauli word: wire ``w`` is bit ``n-1-w``; X and Y
    flip it, Y and Z sign it, so ``(P psi)[i ^ x] = phase (-1)**popcount(i & z) psi[i]`` (:mod:`qdiff.ir.pauli`)."""
    return pauli_masks(word.paulis, num_wires)


@dataclass(frozen=True)
class PauliGroups:
    """Pauli words grouped by the bits they flip, as arrays for one-pass kernels.

    Group ``g`` holds the terms ``starts[g]:starts[g+1]``, all flipping ``xmasks[g]`` (wire ``w`` is
    bit ``n-1-w``); term ``t`` has sign mask ``zmasks[t]`` (its Y and Z letters) and coefficient
    ``coeffs[t]`` (times ``i**(number of Y)``), so that
    ``(sum_t P_t psi)[i] = sum_g psi[j] sum_t coeffs[t] (-1)**popcount(j & zmasks[t])`` with
    ``j = i ^ xmasks[g]``. Molecular Hamiltonians have several terms per flip mask (LiH: 631 terms,
    far fewer masks), so a sum costs one pass over the state instead of one pass per term.
    """

    num_wires: int
    xmasks: np.ndarray  # (G,) int64
    starts: np.ndarray  # (G + 1,) int64
    zmasks: np.ndarray  # (T,) int64
    coeffs: np.ndarray  # (T,) complex128

    @classmethod
    def of(cls, terms: Sequence[tuple[float, PauliWord]], num_wires: int) -> PauliGroups:
        """Group ``(coefficient, word)`` pairs by flip mask, in increasing mask order: groups flipping the
        same high bits read the same part of the state one after another (it stays in cache)."""
        by_mask: dict[int, list[tuple[int, complex]]] = {}
        for c, t in terms:
            x, z, phase = word_masks(t, num_wires)
            by_mask.setdefault(x, []).append((z, complex(c) * phase))
        groups = dict(sorted(by_mask.items()))
        starts = np.zeros(len(groups) + 1, dtype=np.int64)
        starts[1:] = np.cumsum([len(v) for v in groups.values()])
        arrays = (np.array(list(groups), dtype=np.int64), starts,
                  np.array([z for v in groups.values() for z, _ in v], dtype=np.int64),
                  np.array([c for v in groups.values() for _, c in v], dtype=np.complex128))
        for a in arrays:
            a.flags.writeable = False
        return cls(num_wires, *arrays)


def _word_groups(obs: LinearCombination, words: list[tuple[float, PauliWord]], num_wires: int) -> PauliGroups:
    """``PauliGroups`` of an observable's non-diagonal Pauli terms, built once per observable and size."""
    cache = obs.__dict__.setdefault("_pauli_groups", {})
    if num_wires not in cache:
        cache[num_wires] = PauliGroups.of(words, num_wires)
    return cache[num_wires]


def _split_words(rest: list) -> tuple[list, list]:
    words = [(c, t) for c, t in rest if isinstance(t, PauliWord) and t.paulis]
    others = [(c, t) for c, t in rest if not (isinstance(t, PauliWord) and t.paulis)]
    return words, others


def num_qubits_of(state: Any) -> int:
    """Number of qubits of a ``(B, 2**n)`` state."""
    return int(state.shape[-1]).bit_length() - 1


def _diagonal_split(obs: LinearCombination) -> tuple[tuple, tuple]:
    """``(Z-only terms, other terms)`` of a sum as ``(c, term)`` pairs, zero coefficients dropped (once per
    observable)."""
    def build() -> tuple[tuple, tuple]:
        zterms, rest = [], []
        for c, t in zip(obs.coeffs, obs.terms, strict=True):
            if c != 0:
                (zterms if _is_diagonal_pauli(t) else rest).append((c, t))
        return tuple(zterms), tuple(rest)

    return derived(obs, "_diagonal_split", build)


def split_diagonal_terms(backend: Any, state: Any, obs: LinearCombination) -> tuple[Any, tuple]:
    """Fold the Z-only Pauli terms of a sum into one diagonal (None if there are none); return the rest."""
    zterms, rest = _diagonal_split(obs)
    if len(zterms) < 2:
        return None, rest + zterms
    n = int(state.shape[-1]).bit_length() - 1
    if n > ZDIAG_CACHE_MAX_QUBITS:
        return z_diagonal(backend.xp, n, zterms), rest
    from .backends import placement

    where = placement(backend)
    key = (where, n)
    cache = obs.__dict__.setdefault("_zdiag", {})  # per observable: the diagonal only depends on n
    if key not in cache:
        cache.clear()
        # and across observables with the same terms (the PennyLane device converts one per call)
        cache[key] = _shared_z_diagonal(backend.xp, where, n, tuple((float(c), t.wires) for c, t in zterms))
    return cache[key], rest


@functools.lru_cache(maxsize=4)
def _shared_z_diagonal(xp: Any, where: tuple, num_wires: int, terms: tuple[tuple[float, tuple[int, ...]], ...]) -> Any:
    """The Z diagonal of ``terms``, shared by observables with the same terms on the same device ``where``."""
    diag = z_diagonal(xp, num_wires, [(c, PauliWord({w: "Z" for w in wires})) for c, wires in terms])
    if xp is np:
        diag.flags.writeable = False  # shared between observables with the same terms
    return diag


PAULI_TABLE_MAX_ENTRIES = 1 << 19
"""Per-group sign tables are built while groups x 2**n stays within this (8 MiB of complex128)."""


def _parity(v: np.ndarray) -> np.ndarray:
    """Parity of the set bits of each entry of a non-negative int64 array."""
    for shift in (32, 16, 8, 4, 2, 1):
        v = v ^ (v >> shift)
    return v & 1


def pauli_group_tables(obs: Observable, num_wires: int) -> tuple | None:
    """A Pauli sum as arrays for compiled code: ``(diag, xmasks, tables)``, or None.

    ``diag (2**n,)`` is the real diagonal of all Z-only terms; the other words are grouped by the bits
    they flip (``xmasks (G,)``, wire ``w`` is bit ``n-1-w``) and group ``g``'s terms summed into one
    table ``tables[g, j] = sum_t c_t i**(#Y_t) (-1)**popcount(j & z_t)``, so that
    ``(O psi)[i] = diag[i] psi[i] + sum_g tables[g, j] psi[j]`` with ``j = i ^ xmasks[g]``: one pass
    per flip mask, whatever the number of terms. None when ``obs`` is not a sum of Pauli words or the
    tables would exceed ``PAULI_TABLE_MAX_ENTRIES``. Built once and cached on the (immutable) observable.
    """
    cache = derived(obs, "_pauli_tables", dict)
    if num_wires not in cache:
        cache[num_wires] = _group_tables(as_linear_combination(obs), num_wires)
    return cache[num_wires]


def _group_tables(lc: LinearCombination, num_wires: int) -> tuple | None:
    if not all(isinstance(t, PauliWord) for t in lc.terms):
        return None
    zterms, words = _diagonal_split(lc)
    groups = PauliGroups.of(words, num_wires)
    if len(groups.xmasks) * 2**num_wires > PAULI_TABLE_MAX_ENTRIES:
        return None
    j = np.arange(2**num_wires, dtype=np.int64)
    tables = np.zeros((len(groups.xmasks), 2**num_wires), dtype=np.complex128)
    for g in range(len(groups.xmasks)):
        for t in range(groups.starts[g], groups.starts[g + 1]):
            tables[g] += groups.coeffs[t] * (1 - 2 * _parity(j & groups.zmasks[t]))
    diag = np.ascontiguousarray(z_diagonal(np, num_wires, list(zterms)), dtype=np.float64)
    for a in (diag, tables):
        a.flags.writeable = False
    return diag, groups.xmasks, tables


def _apply_sparse(backend: Any, state: Any, obs: SparseHermitian) -> Any:
    n = int(state.shape[-1]).bit_length() - 1
    m = obs.matrix
    host = backend.to_numpy(state)
    if obs.wires == tuple(range(n)):
        out = (m @ host.T).T
    else:
        k = len(obs.wires)
        b = host.shape[0]
        psi = host.reshape((b,) + (2,) * n)
        axes = [1 + w for w in obs.wires]
        moved = np.moveaxis(psi, axes, list(range(n + 1 - k, n + 1)))
        shape = moved.shape
        flat = moved.reshape(-1, 2**k)
        res = (m @ flat.T).T.reshape(shape)
        out = np.moveaxis(res, list(range(n + 1 - k, n + 1)), axes).reshape(b, -1)
    return backend.asarray(np.ascontiguousarray(out), dtype=state.dtype)


def _is_diagonal_pauli(t: Observable) -> bool:
    return isinstance(t, PauliWord) and all(p == "Z" for _, p in t.paulis)


@functools.singledispatch
def expectation(backend: Any, state: Any, obs: Observable) -> Any:
    """``<state|O|state>`` per batch entry (shape ``(B,)``, real); dispatches on the backend type."""
    if isinstance(obs, PauliWord):
        if not obs.paulis:
            return backend.xp.real(backend.inner(state, state))
        return backend.expval_pauli(state, obs.word)
    if isinstance(obs, LinearCombination):
        diag, rest = split_diagonal_terms(backend, state, obs)
        words, others = _split_words(rest)
        if words:
            total = backend.expval_pauli_groups(state, _word_groups(obs, words, num_qubits_of(state)), diag)
        elif diag is not None:
            total = backend.expval_diagonal(state, diag)
        else:
            total = backend.xp.zeros(state.shape[0])
        for c, t in others:
            total = total + c * expectation(backend, state, t)
        return total
    if isinstance(obs, Hermitian):
        return backend.matrix_element(state, state, obs.matrix, obs.wires).real
    return backend.xp.real(backend.inner(state, apply_observable(backend, state, obs)))


def observable_matrix(obs: Observable, wires: Sequence[int]) -> np.ndarray:
    """Dense matrix of ``obs`` on ``wires`` (tests and small checks only)."""
    k = len(wires)
    eye = np.eye(2**k, dtype=complex)
    cols = []
    from .backends import get_backend

    be = get_backend("numpy")
    relabel = {w: i for i, w in enumerate(wires)}
    mapped = relabel_observable(obs, relabel)
    for j in range(2**k):
        cols.append(apply_observable(be, eye[j][None, :].copy(), mapped)[0])
    return np.array(cols).T


def relabel_observable(obs: Observable, mapping: dict[int, int]) -> Observable:
    """The same observable on relabelled wires."""
    if isinstance(obs, PauliWord):
        return PauliWord({mapping[w]: p for w, p in obs.paulis})
    if isinstance(obs, Hermitian):
        return Hermitian(obs.matrix, [mapping[w] for w in obs.wires])
    if isinstance(obs, Product):
        return Product(tuple(relabel_observable(f, mapping) for f in obs.factors))
    if isinstance(obs, SparseHermitian):
        return SparseHermitian(obs.matrix, [mapping[w] for w in obs.wires])
    if isinstance(obs, LinearCombination):
        return LinearCombination(obs.coeffs, tuple(relabel_observable(t, mapping) for t in obs.terms))
    raise UnsupportedOperationError(f"unsupported observable {type(obs).__name__}")
