"""Measurements on a final state: analytic (expval, var, probs, state, density matrix) and with shots.

Measurements are small data classes; :func:`measure` evaluates a list of them on a ``(B, 2**n)``
backend state. With shots, measurements that are diagonal in the same basis share one set of samples
(so ``sample(wires=0)`` and ``sample(wires=1)`` of a Bell state agree), drawn from a seeded generator.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ShotsError, UnsupportedOperationError, WireError
from .gates import PAULI, SQ2
from .observables import (
    Hermitian,
    LinearCombination,
    Observable,
    PauliWord,
    Product,
    apply_observable,
    check_observable,
    expectation,
)


@dataclass(frozen=True)
class Expval:
    """Expectation value ``<O>``."""

    obs: Observable


@dataclass(frozen=True)
class Var:
    """Variance ``<O^2> - <O>^2``."""

    obs: Observable


@dataclass(frozen=True)
class Probs:
    """Probabilities of the computational basis states of ``wires`` (all wires when None)."""

    wires: tuple[int, ...] | None = None


@dataclass(frozen=True)
class State:
    """The state vector (analytic only)."""


@dataclass(frozen=True)
class DensityMatrix:
    """Reduced density matrix of ``wires`` (analytic only)."""

    wires: tuple[int, ...]


@dataclass(frozen=True)
class Sample:
    """Samples of the bits of ``wires`` (shape ``(shots, k)``), or of an observable's eigenvalues."""

    wires: tuple[int, ...] | None = None
    obs: Observable | None = None


@dataclass(frozen=True)
class Counts:
    """Counts of outcomes: bit strings of ``wires`` or eigenvalues of ``obs``."""

    wires: tuple[int, ...] | None = None
    obs: Observable | None = None


Measurement = Expval | Var | Probs | State | DensityMatrix | Sample | Counts
DIFFERENTIABLE = (Expval, Var, Probs)


def check_shots(shots: Any) -> int | None:
    """None (analytic) or a positive integer number of shots."""
    if shots is None:
        return None
    if (isinstance(shots, bool) or not isinstance(shots, (int, float, np.integer, np.floating))
            or not np.isfinite(shots) or int(shots) != shots or int(shots) <= 0):
        raise ShotsError(f"shots must be a positive integer or None, got {shots!r}")
    return int(shots)


def check_measurement(m: Measurement, num_wires: int, shots: int | None) -> None:
    """Validate wires, observables and analytic/shot requirements of one measurement."""
    if not isinstance(m, (Expval, Var, Probs, State, DensityMatrix, Sample, Counts)):
        raise UnsupportedOperationError(f"unsupported measurement {m!r}")
    wires = getattr(m, "wires", None)
    if wires is None and isinstance(m, DensityMatrix):
        raise WireError("DensityMatrix needs the wires to keep")
    if wires is not None:
        if not isinstance(wires, (tuple, list, np.ndarray)) or any(
                isinstance(w, bool) or not isinstance(w, (int, np.integer)) for w in wires):
            raise WireError(f"{type(m).__name__} wires must be a sequence of integers, got {wires!r}")
        for w in wires:
            if not 0 <= w < num_wires:
                raise WireError(f"{type(m).__name__} on wire {w}, outside the {num_wires}-wire circuit")
        if len(set(wires)) != len(wires):
            raise WireError(f"{type(m).__name__} wires {wires} repeat a wire")
    obs = getattr(m, "obs", None)
    if obs is None and isinstance(m, (Expval, Var)) or obs is not None and not isinstance(obs, Observable):
        raise UnsupportedOperationError(f"{type(m).__name__} needs a qdiff observable, got {obs!r}")
    if obs is not None:
        check_observable(obs, num_wires)
    if isinstance(m, (State, DensityMatrix)) and shots is not None:
        raise ShotsError(f"{type(m).__name__} is analytic only; it cannot be estimated from shots")
    if isinstance(m, (Sample, Counts)) and shots is None:
        raise ShotsError(f"{type(m).__name__} needs finite shots")


# ------------------------------------------------------------------------------------------------
# analytic


def variance(backend: Any, state: Any, obs: Observable) -> Any:
    """``||O psi||^2 - <psi|O|psi>^2`` per batch entry (one extra state, no O^2 matrix)."""
    if isinstance(obs, PauliWord):
        e = expectation(backend, state, obs)
        return 1.0 - e**2
    o_psi = apply_observable(backend, state, obs)
    xp = backend.xp
    e = xp.real(backend.inner(state, o_psi))
    return xp.real(backend.inner(o_psi, o_psi)) - e**2


@functools.singledispatch
def density_matrix(backend: Any, state: Any, wires: Sequence[int]) -> Any:
    """Reduced density matrix ``(B, 2^k, 2^k)`` of ``wires`` (in the order given); dispatches on the backend."""
    xp = backend.xp
    n = int(state.shape[-1]).bit_length() - 1
    k = len(wires)
    psi = state.reshape((state.shape[0],) + (2,) * n)
    rest = [w for w in range(n) if w not in wires]
    moved = xp.transpose(psi, [0] + [1 + w for w in wires] + [1 + w for w in rest])
    a = moved.reshape(state.shape[0], 2**k, 2 ** (n - k))
    return xp.einsum("bim,bjm->bij", a, xp.conj(a))


def analytic(backend: Any, state: Any, m: Measurement) -> Any:
    """Value of one measurement on the exact state, with the batch axis first."""
    n = int(state.shape[-1]).bit_length() - 1
    if isinstance(m, Expval):
        return expectation(backend, state, m.obs)
    if isinstance(m, Var):
        return variance(backend, state, m.obs)
    if isinstance(m, Probs):
        return backend.probs(state, m.wires if m.wires is not None else tuple(range(n)))
    if isinstance(m, State):
        return state.copy()
    if isinstance(m, DensityMatrix):
        return density_matrix(backend, state, m.wires)
    raise UnsupportedOperationError(f"{type(m).__name__} needs shots")


# ------------------------------------------------------------------------------------------------
# shots

_HS = SQ2 * np.array([[1, 1], [1, -1]], dtype=complex)
_DIAG_ROT = {"X": _HS, "Y": _HS @ np.diag([1, -1j]), "Z": None}


def _diagonalization(obs: Observable) -> tuple[list[tuple[np.ndarray | None, tuple[int, ...]]], tuple, np.ndarray]:
    """Rotations that diagonalise ``obs``, the wires it is read on, and eigenvalues per basis index."""
    if isinstance(obs, PauliWord):
        wires = obs.wires
        rots = [(_DIAG_ROT[p], (w,)) for w, p in obs.paulis]
        eig = np.ones(1)
        for _ in wires:
            eig = np.kron(eig, np.array([1.0, -1.0]))
        return rots, wires, eig
    if isinstance(obs, Hermitian):
        vals, vecs = np.linalg.eigh(obs.matrix)
        return [(vecs.conj().T, obs.wires)], obs.wires, vals
    if isinstance(obs, Product):
        rots, wires, eig = [], (), np.ones(1)
        for f in obs.factors:
            r, w, e = _diagonalization(f)
            rots += r
            wires += w
            eig = np.kron(eig, e)
        return rots, wires, eig
    raise UnsupportedOperationError(
        f"{type(obs).__name__} cannot be sampled as one observable; estimate its terms separately"
    )


def _basis_signature(obs: Observable | None) -> dict[int, Any]:
    """Per-wire measurement basis an observable needs ('Z' for the computational basis).

    For a sum (only sampled when its terms commute qubit-wise) it is the union of its terms' bases.
    """
    if obs is None:
        return {}
    if isinstance(obs, PauliWord):
        return {w: p for w, p in obs.paulis}
    if isinstance(obs, (Product, LinearCombination)):
        sig: dict[int, Any] = {}
        for f in obs.factors if isinstance(obs, Product) else obs.terms:
            sig.update(_basis_signature(f))
        return sig
    return {w: ("H", id(obs)) for w in obs.wires}


def _rotations(obs: Observable) -> list[tuple[np.ndarray | None, tuple[int, ...]]]:
    """Basis rotations that diagonalise ``obs`` (every term of a qubit-wise commuting sum)."""
    if isinstance(obs, LinearCombination):
        return [r for t in obs.terms for r in _rotations(t)]
    return _diagonalization(obs)[0]


def _compatible(a: dict, b: dict) -> bool:
    return all(a[w] == b[w] for w in set(a) & set(b))


def index_bits(idx: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` bits of non-negative basis indices (``n <= 64``) as int64, wire 0 (most significant) first:
    shape ``idx.shape + (n,)``. The CPU kernel of the same name writes them on numba's threads; the numpy
    reference unpacks big-endian bytes (one pass) instead of shifting per wire."""
    from .backends.numpy_backend import cpu_kernels

    kern = cpu_kernels()
    if kern is not None and (bits := kern.index_bits(idx, n)) is not None:
        return bits
    octets = np.ascontiguousarray(idx, dtype=">u8").view(np.uint8).reshape(idx.shape + (8,))
    return np.unpackbits(octets, axis=-1)[..., 64 - n:].astype(np.int64)


class ShotSampler:
    """Draws shared samples for groups of measurements diagonal in the same basis.

    Measurements registered with :meth:`plan` before sampling are grouped greedily by compatible
    per-wire bases, so e.g. ``X(0)`` and ``X(1)`` of one execution come from the same shots; each group
    is sampled once, on first use, in the union of its members' bases (other wires in Z).
    """

    def __init__(self, backend: Any, state: Any, shots: int, rng: np.random.Generator):
        self.backend, self.state, self.shots, self.rng = backend, state, shots, rng
        self.n = int(state.shape[-1]).bit_length() - 1
        self._groups: list[list[Any]] = []  # [signature, member observables, samples (B, shots, n) or None]
        self._handed_out: list[np.ndarray] = []

    def hand_out(self, samples: np.ndarray) -> np.ndarray:
        """``samples`` itself the first time it is returned to a caller, a copy every later time, so that no
        two returned results share memory (nor a result and the samples kept here for other measurements,
        which only read them while this execution lasts)."""
        if any(a is samples for a in self._handed_out):
            return samples.copy()
        self._handed_out.append(samples)
        return samples

    def _signature(self, obs: Observable | None) -> dict[int, Any]:
        return _basis_signature(obs) if obs is not None else {w: "Z" for w in range(self.n)}

    def _group(self, obs: Observable | None) -> list[Any]:
        """The first group compatible with ``obs`` (joining it), or a new one."""
        sig = self._signature(obs)
        for group in self._groups:
            if _compatible(group[0], sig):
                if group[2] is None:  # not sampled yet: widen its basis
                    group[0].update(sig)
                    group[1].append(obs)
                return group
        group = [dict(sig), [obs], None]
        self._groups.append(group)
        return group

    def plan(self, obs: Observable | None) -> None:
        """Register an observable (None: computational basis) before sampling, to share samples."""
        if isinstance(obs, LinearCombination) and not _qubitwise_commuting(obs):
            for t in obs.terms:  # estimated term by term: each term joins a compatible group
                self.plan(t)
            return
        if obs is not None:
            try:
                _rotations(obs)
            except UnsupportedOperationError:
                return  # reported when it is estimated
        self._group(obs)

    def bits(self, obs: Observable | None) -> np.ndarray:
        """Samples ``(B, shots, n)`` of all bits, in a basis that diagonalises ``obs``."""
        group = self._group(obs)
        if group[2] is not None:
            return group[2]
        rotated, done = self.state, set()
        for member in group[1]:
            for r, w in _rotations(member) if member is not None else ():
                if r is None or done & set(w):  # compatible members rotate a wire identically
                    continue
                if rotated is self.state:
                    rotated = self.state.copy()
                self.backend.apply_matrix(rotated, r, w)
                done.update(w)
        bits = index_bits(self.backend.sample_basis(rotated, self.shots, self.rng), self.n)
        group[0].update({w: "Z" for w in range(self.n) if w not in group[0]})  # no later widening
        group[2] = bits
        return bits

    def eigen_samples(self, obs: Observable, bits: np.ndarray | None = None) -> np.ndarray:
        """Samples ``(B, shots)`` of the eigenvalues of ``obs`` (from ``bits`` when given)."""
        _, wires, eig = _diagonalization(obs)
        bits = self.bits(obs) if bits is None else bits
        if not wires:
            return np.ones(bits.shape[:2])
        sub = bits[..., list(wires)]
        idx = sub @ (1 << np.arange(len(wires) - 1, -1, -1))
        return eig[idx]


def _term_estimates(sampler: ShotSampler, obs: Observable) -> np.ndarray:
    """Per-shot values ``(B, shots)`` of a single-term observable or of a qubit-wise commuting sum."""
    if isinstance(obs, LinearCombination):
        bits = sampler.bits(obs)  # one set of shots for every term
        total = 0.0
        for c, t in zip(obs.coeffs, obs.terms, strict=True):
            total = total + c * sampler.eigen_samples(t, bits)
        return np.asarray(total) * np.ones((sampler.state.shape[0], sampler.shots))
    return sampler.eigen_samples(obs)


def _qubitwise_commuting(obs: LinearCombination) -> bool:
    sig: dict[int, Any] = {}
    for t in obs.terms:
        s = _basis_signature(t)
        if not _compatible(sig, s) or not isinstance(t, (PauliWord, Product, Hermitian)):
            return False
        sig.update(s)
    return True


def with_shots(sampler: ShotSampler, m: Measurement) -> Any:
    """Estimate one measurement from shots (batch axis first)."""
    n = sampler.n
    if isinstance(m, Expval):
        if isinstance(m.obs, LinearCombination) and not _qubitwise_commuting(m.obs):
            total = 0.0
            for c, t in zip(m.obs.coeffs, m.obs.terms, strict=True):
                total = total + c * with_shots(sampler, Expval(t))
            return total
        return _term_estimates(sampler, m.obs).mean(axis=1)
    if isinstance(m, Var):
        if isinstance(m.obs, LinearCombination) and not _qubitwise_commuting(m.obs):
            raise UnsupportedOperationError(
                "the variance of a sum of non-commuting terms cannot be estimated from one set of shots"
            )
        return _term_estimates(sampler, m.obs).var(axis=1)
    if isinstance(m, Probs):
        wires = m.wires if m.wires is not None else tuple(range(n))
        bits = sampler.bits(None)[..., list(wires)]
        idx = bits @ (1 << np.arange(len(wires) - 1, -1, -1))
        out = np.zeros((bits.shape[0], 2 ** len(wires)))
        for b in range(bits.shape[0]):
            out[b] = np.bincount(idx[b], minlength=2 ** len(wires)) / sampler.shots
        return out
    if isinstance(m, Sample):
        if m.obs is not None:
            return sampler.eigen_samples(m.obs)
        wires = m.wires if m.wires is not None else tuple(range(n))
        bits = sampler.bits(None)
        return sampler.hand_out(bits) if tuple(wires) == tuple(range(n)) else bits[..., list(wires)]
    if isinstance(m, Counts):
        if m.obs is not None:
            vals = sampler.eigen_samples(m.obs)
            return [dict(zip(*np.unique(v, return_counts=True), strict=True)) for v in vals]
        wires = m.wires if m.wires is not None else tuple(range(n))
        bits = sampler.bits(None)[..., list(wires)]
        out = []
        for b in range(bits.shape[0]):
            keys, counts = np.unique(bits[b], axis=0, return_counts=True)
            out.append({"".join(str(int(x)) for x in k): int(c) for k, c in zip(keys, counts, strict=True)})
        return out
    raise UnsupportedOperationError(f"{type(m).__name__} is analytic only")


def measure(
    backend: Any,
    state: Any,
    measurements: Sequence[Measurement],
    shots: int | None = None,
    rng: np.random.Generator | int | None = None,
) -> list[Any]:
    """Evaluate ``measurements`` on a ``(B, 2**n)`` state; each result keeps the batch axis first."""
    shots = check_shots(shots)
    n = int(state.shape[-1]).bit_length() - 1
    for m in measurements:
        check_measurement(m, n, shots)
    if shots is None:
        return [analytic(backend, state, m) for m in measurements]
    try:
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    except (TypeError, ValueError):
        raise ShotsError(f"seed must be None, an integer or a numpy Generator, got {rng!r}") from None
    sampler = ShotSampler(backend, state, shots, gen)
    for m in measurements:
        obs = getattr(m, "obs", None)
        if not isinstance(m, (State, DensityMatrix)):
            sampler.plan(obs)
    return [with_shots(sampler, m) for m in measurements]


__all__ = [
    "Expval", "Var", "Probs", "State", "DensityMatrix", "Sample", "Counts", "Measurement",
    "measure", "variance", "density_matrix", "PAULI",
]
