"""Observables on a distributed state: Pauli sums by partner exchange, the rest on localized wires.

A Pauli word ``P = P_global x P_local`` maps rank ``r``'s slice to rank ``r ^ m`` (``m`` its X/Y
letters on global wires) times a phase from the source rank's bits, so ``H|psi>`` for a sum is one
partner copy per distinct global flip mask, and a rank-local Pauli sum (complex coefficients, through
the local backend's grouped kernel) per mask. Never a dense matrix. Hermitian, sparse and mixed
products move their wires onto the rank first.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import measure as core_measure
from .. import observables as core
from ..gradients import common
from ..observables import LinearCombination, Observable, PauliGroups, PauliWord, Product
from .backend import MPIBackend
from .layout import split_pauli_word
from .state import DistState

_GROUP_CACHE_SIZE = 16


def pauli_terms(obs: Observable) -> list[tuple[complex, PauliWord]] | None:
    """``obs`` as ``[(coefficient, word)]`` when it is a sum or product of Pauli words, else None."""
    if isinstance(obs, PauliWord):
        return [(1.0, obs)]
    if isinstance(obs, Product):
        word: dict[int, str] = {}
        for f in obs.factors:
            if not isinstance(f, PauliWord) or set(f.word) & set(word):
                return None
            word.update(f.word)
        return [(1.0, PauliWord(word))]
    if isinstance(obs, LinearCombination):
        out = []
        for c, t in zip(obs.coeffs, obs.terms, strict=True):
            sub = pauli_terms(t)
            if sub is None:
                return None
            out += [(c * s, w) for s, w in sub]
        return out
    return None


def _local_groups(backend: MPIBackend, state: DistState, obs: Observable,
                  terms: list[tuple[complex, PauliWord]]) -> list[tuple[int, PauliGroups]]:
    """Per global flip mask, the rank-local Pauli sum it multiplies the partner's slice by (cached)."""
    lay = state.layout
    key = (lay.key(), backend.rank, backend.size)
    cache = obs.__dict__.setdefault("_mpi_groups", {})
    if key in cache:
        return cache[key]
    by_mask: dict[int, list[tuple[complex, PauliWord]]] = {}
    for c, word in terms:
        mask, factor, local = split_pauli_word(lay, backend.rank, word.word)
        by_mask.setdefault(mask, []).append((complex(c) * factor, PauliWord(local)))
    out = [(m, PauliGroups.of(t, lay.num_local)) for m, t in sorted(by_mask.items())]
    if len(cache) >= _GROUP_CACHE_SIZE:
        cache.clear()
    cache[key] = out
    return out


def _localized(backend: MPIBackend, state: DistState, obs: Observable) -> Observable:
    """Move ``obs``'s wires onto the rank; the same observable on local positions."""
    state.localize(obs.wires)
    return core.relabel_observable(obs, {w: state.layout.local_position(w) for w in obs.wires})


def apply_observable(backend: MPIBackend, state: DistState, obs: Observable) -> DistState:
    """A new distributed state ``O|state>``."""
    terms = pauli_terms(obs)
    if terms is not None:
        out = None
        for mask, groups in _local_groups(backend, state, obs, terms):
            src = state.local if mask == 0 else backend.exchanger.partner_copy(state.local, backend.rank ^ mask)
            part = backend.local_backend.apply_pauli_groups(src, groups, None)
            del src
            if out is None:
                out = part
            else:
                out += part
        return state.like(out if out is not None else backend.local_backend.xp.zeros_like(state.local))
    if isinstance(obs, LinearCombination):
        total = None
        for c, t in zip(obs.coeffs, obs.terms, strict=True):
            part = c * apply_observable(backend, state, t)
            total = part if total is None else total.__iadd__(part)
        return total if total is not None else state.like(backend.local_backend.xp.zeros_like(state.local))
    local = _localized(backend, state, obs)
    return state.like(core.apply_observable(backend.local_backend, state.local, local))


def expectation(backend: MPIBackend, state: DistState, obs: Observable) -> Any:
    """``<state|O|state>`` per batch entry, on every rank."""
    terms = pauli_terms(obs)
    if terms is None:
        return backend.xp.real(backend.inner(state, apply_observable(backend, state, obs)))
    lb = backend.local_backend
    total = np.zeros(state.shape[0], dtype=complex)
    for mask, groups in _local_groups(backend, state, obs, terms):
        if mask == 0:
            total += lb.to_numpy(lb.expval_pauli_groups(state.local, groups, None))
        else:
            src = backend.exchanger.partner_copy(state.local, backend.rank ^ mask)
            total += lb.to_numpy(lb.inner(state.local, lb.apply_pauli_groups(src, groups, None)))
            del src
    return np.real(backend.exchanger.allreduce(total))


def density_matrix(backend: MPIBackend, state: DistState, wires: Any) -> Any:
    """Reduced density matrix of ``wires``, summed over ranks."""
    state.localize(tuple(wires))
    local = [state.layout.local_position(w) for w in wires]
    part = core_measure.density_matrix(backend.local_backend, state.local, local)
    return backend.exchanger.allreduce(part)


def probs_bra(backend: MPIBackend, state: DistState, wires: tuple[int, ...], cot: Any) -> DistState:
    """``state`` times the cotangent of each local amplitude's outcome (global bits fixed by the rank)."""
    lay, lb = state.layout, backend.local_backend
    n_loc = lay.num_local
    idx = lb.xp.arange(2**n_loc)
    outcome = lb.xp.zeros(2**n_loc, dtype=lb.xp.int64)
    for w in wires:
        bit = lay.rank_bit(w, backend.rank) if lay.is_global(w) else (idx >> (n_loc - 1 - lay.local_position(w))) & 1
        outcome = (outcome << 1) | bit
    weights = lb.asarray(cot).reshape(state.shape[0], -1)[:, outcome]
    return state.like(weights * state.local)


core.apply_observable.register(MPIBackend, apply_observable)
core.expectation.register(MPIBackend, expectation)
core_measure.density_matrix.register(MPIBackend, density_matrix)
common.probs_bra.register(MPIBackend, probs_bra)
