"""The MPI backend: the statevector primitives of the numpy/CuPy backends on distributed states.

Each primitive brings the wires it must read locally onto the rank (``DistState.localize``), maps
logical wires to local positions, and calls the same primitive of the rank's local backend. Controls
on global wires need no swap (a rank whose bits do not match skips the gate), nor do diagonal gates
with a local target left (the rank's bits select a slice of the diagonal). Reductions (inner
products, reduced outer products, probabilities) are summed over ranks, so every rank returns the
same numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import memory
from .comm import DistributedError, agree, global_qubits, install_abort_hook, load_mpi
from .layout import Layout, split_pauli_word
from .state import DistState, Exchanger

DEFAULT_CHUNK_BYTES = 64 * 2**20
"""Largest buffer a swap sends at once; the extra memory per rank during a swap."""


class DistXP:
    """The local array module, with a ``concatenate`` that understands :class:`DistState`."""

    def __init__(self, xp: Any):
        self._xp = xp

    def __getattr__(self, name: str) -> Any:
        return getattr(self._xp, name)

    def concatenate(self, arrays: Any, axis: int = 0) -> Any:
        """Concatenate along the batch axis (states are brought to the first one's layout)."""
        arrays = list(arrays)
        if arrays and isinstance(arrays[0], DistState):
            first = arrays[0]
            return first.like(self._xp.concatenate([first.local] + [first._other(a) for a in arrays[1:]], axis=0))
        return self._xp.concatenate(arrays, axis=axis)


class MPIBackend:
    """Statevector primitives on a state split over the ranks of an MPI communicator."""

    name = "mpi"
    distributed = True

    def __init__(self, local: str = "numpy", comm: Any = None, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                 cuda_aware: bool = False):
        from ..backends import get_backend

        mpi = load_mpi()
        self.comm = comm if comm is not None else mpi.COMM_WORLD
        self.size, self.rank = self.comm.Get_size(), self.comm.Get_rank()
        self.num_global = global_qubits(self.size)
        if not isinstance(chunk_bytes, int) or chunk_bytes < 16:
            raise DistributedError(f"chunk_bytes must be an integer >= 16, got {chunk_bytes!r}")
        self.local_backend = get_backend(local)
        self.xp = DistXP(self.local_backend.xp)
        self.exchanger = Exchanger(self.comm, chunk_bytes, self.local_backend.xp, cuda_aware)
        self._min = mpi.MIN
        self.defer_reductions = False  # True during an adjoint sweep: partial sums stay per rank
        install_abort_hook(self.comm)

    # -- memory and conversion --------------------------------------------------------------------
    def available_memory(self) -> tuple[int, str]:
        """``(ranks x the least memory free on any rank, source)``: full-state footprints divide by R."""
        local, source = self.local_backend.available_memory()
        least = self.comm.allreduce(int(local), op=self._min)
        return least * self.size, f"{source}, per rank x {self.size} MPI ranks"

    def _num_local(self, num_wires: int) -> int:
        if num_wires - self.num_global < 1:
            raise DistributedError(f"a {num_wires}-wire circuit on {self.size} MPI ranks leaves no local wire; "
                                   f"use at most {2 ** max(num_wires - 1, 0)} ranks")
        return num_wires - self.num_global

    def check_memory(self, num_wires: int, batch: int, dtype: Any, copies: float = 1.0) -> None:
        """Refuse (before allocating) ``copies * batch`` local slices that would not fit on this rank."""
        self.local_backend.check_memory(self._num_local(num_wires), batch, dtype, copies)

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """A small array (cotangents, weights) as a local backend array."""
        return self.local_backend.asarray(x, dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        """A host array; a distributed state is gathered (every rank gets the full state)."""
        if not isinstance(x, DistState):
            return self.local_backend.to_numpy(x)
        fp = memory.Footprint("gathering the full state on every rank", x.layout.num_wires, np.dtype(x.dtype),
                              x.shape[0], fixed=0)
        memory.require(fp, backend=self.local_backend)
        st = x.canonical_copy()
        host = np.ascontiguousarray(self.local_backend.to_numpy(st.local))
        out = np.empty((self.size,) + host.shape, dtype=host.dtype)
        self.comm.Allgather(host, out)
        return np.ascontiguousarray(np.moveaxis(out, 0, 1)).reshape(host.shape[0], -1)

    def basis_state(self, num_wires: int, batch: int, dtype: Any, index: int) -> DistState:
        """``|index>`` for each of ``batch`` entries, in the canonical layout."""
        n_loc = self._num_local(num_wires)
        local = self.local_backend.zero_state(n_loc, batch, dtype)
        local[:, 0] = 0
        if index >> n_loc == self.rank:
            local[:, index & (2**n_loc - 1)] = 1
        return DistState(local, Layout(num_wires, self.num_global), self.exchanger, self.rank)

    def product_state(self, columns: np.ndarray, dtype: Any) -> DistState:
        """The product state of per-wire columns ``(B, n, 2)`` in the canonical layout: this rank's slice
        is the local wires' product state times the columns' entries at the rank's bits of the global
        wires (folded into the first local column). A circuit with no local wire left is refused."""
        columns = np.asarray(columns, dtype=complex)
        self._num_local(columns.shape[1])  # at least one local wire, or a clear error
        g = self.num_global
        bits = [(self.rank >> (g - 1 - w)) & 1 for w in range(g)]
        local_cols = columns[:, g:].copy()
        local_cols[:, 0] *= np.prod(columns[:, np.arange(g), bits], axis=1)[:, None]  # 1 without global wires
        local = self.local_backend.product_state(local_cols, dtype)
        return DistState(local, Layout(columns.shape[1], g), self.exchanger, self.rank)

    def zero_state(self, num_wires: int, batch: int = 1, dtype: Any = np.complex128) -> DistState:
        """``|0...0>`` distributed over the ranks."""
        return self.basis_state(num_wires, batch, dtype, 0)

    def state_from_array(self, full: Any) -> DistState:
        """This rank's slice of a full ``(B, 2**n)`` state given on every rank."""
        full = np.asarray(full)
        n = int(full.shape[-1]).bit_length() - 1
        size = 2 ** self._num_local(n)
        local = self.local_backend.asarray(np.ascontiguousarray(full[:, self.rank * size : (self.rank + 1) * size]))
        return DistState(local, Layout(n, self.num_global), self.exchanger, self.rank)

    # -- routing ----------------------------------------------------------------------------------
    def _route(self, state: DistState, local_wires: tuple, controls: tuple, cvals: tuple,
               touched: tuple) -> tuple[tuple, tuple, tuple] | None:
        """Localize ``local_wires``; ``(their positions, local controls, values)`` or None if inactive here."""
        state.localize(local_wires)
        lay = state.layout
        lc, lv, active = [], [], True
        for c, v in zip(controls, cvals, strict=True):
            if lay.is_global(c):
                active &= lay.rank_bit(c, self.rank) == v
            else:
                lc.append(lay.local_position(c))
                lv.append(v)
        lay.touch(touched + tuple(controls))
        if not active:
            return None
        return tuple(lay.local_position(w) for w in local_wires), tuple(lc), tuple(lv)

    def _pair(self, bra: DistState, ket: DistState, targets: tuple, controls: tuple, cvals: tuple) -> Any:
        route = self._route(ket, targets, controls, cvals, targets)
        bra.align_to(ket.layout)
        return route

    # -- gates ------------------------------------------------------------------------------------
    def _on_targets(self, state: DistState, primitive: str, data: tuple, targets: tuple, controls: tuple,
                    cvals: tuple) -> DistState:
        """Localize ``targets`` and call the local backend's ``primitive(local, *data, targets, ...)``."""
        targets = tuple(targets)
        if (r := self._route(state, targets, controls, cvals, targets)) is not None:
            state.local = getattr(self.local_backend, primitive)(state.local, *data, *r)
        return state

    def apply_matrix(self, state: DistState, matrix: Any, targets: tuple, controls: tuple = (),
                     cvals: tuple = ()) -> DistState:
        """Apply a (batched) matrix on ``targets`` in place."""
        return self._on_targets(state, "apply_matrix", (matrix,), targets, controls, cvals)

    def apply_subspace(self, state: DistState, matrix: Any, subspace: tuple[int, int], targets: tuple,
                       controls: tuple = (), cvals: tuple = ()) -> DistState:
        """Apply a two-level rotation on ``targets`` in place."""
        return self._on_targets(state, "apply_subspace", (matrix, subspace), targets, controls, cvals)

    def apply_permutation(self, state: DistState, perm: tuple, targets: tuple, controls: tuple = (),
                          cvals: tuple = ()) -> DistState:
        """Permute the basis states of ``targets`` in place."""
        return self._on_targets(state, "apply_permutation", (perm,), targets, controls, cvals)

    def apply_diagonal(self, state: DistState, diag: Any, targets: tuple, controls: tuple = (),
                       cvals: tuple = ()) -> DistState:
        """Multiply by a diagonal on ``targets``; global targets select a slice instead of a swap."""
        lay = state.layout
        targets = tuple(targets)
        glob = [i for i, t in enumerate(targets) if lay.is_global(t)]
        if not glob:
            return self._on_targets(state, "apply_diagonal", (diag,), targets, controls, cvals)
        k = len(targets)
        d = diag.reshape(tuple(diag.shape[:-1]) + (2,) * k)
        index = tuple(lay.rank_bit(t, self.rank) if i in glob else slice(None) for i, t in enumerate(targets))
        d = d[(Ellipsis,) + index].reshape(tuple(diag.shape[:-1]) + (-1,))
        rest = tuple(t for i, t in enumerate(targets) if i not in glob)
        if (r := self._route(state, rest, controls, cvals, targets)) is None:
            return state
        if rest:
            state.local = self.local_backend.apply_diagonal(state.local, d, *r)
        else:
            self._phase(state, d[..., 0], r[1], r[2])
        return state

    def _phase(self, state: DistState, phase: Any, controls: tuple, cvals: tuple) -> None:
        """Multiply the local slice by ``phase`` (scalar or ``(B,)``) where the local ``controls`` hold."""
        phase = np.asarray(phase)
        free = next((p for p in range(state.layout.num_local) if p not in controls), None)
        if free is not None:
            diag, wire = phase[..., None] * np.ones(2), free
        else:  # every local qubit is a control: the last one carries the phase
            ones = np.ones_like(phase)
            diag = np.stack((ones, phase) if cvals[-1] else (phase, ones), axis=-1)
            wire, controls, cvals = controls[-1], controls[:-1], cvals[:-1]
        state.local = self.local_backend.apply_diagonal(state.local, diag, (wire,), controls, cvals)

    def apply_pauli_rotation(self, state: DistState, theta: Any, word: dict[int, str], controls: tuple = (),
                             cvals: tuple = ()) -> DistState:
        """``exp(-i theta/2 P)`` in place: flipped wires made local, global Z letters folded into a sign."""
        flips = tuple(w for w, p in word.items() if p in "XY")
        r = self._route(state, flips, controls, cvals, tuple(word))
        if r is None:
            return state
        lay = state.layout
        sign, local_word = 1, {}
        for w, p in word.items():
            if lay.is_global(w):
                sign *= 1 - 2 * lay.rank_bit(w, self.rank)
            else:
                local_word[lay.local_position(w)] = p
        if local_word:
            state.local = self.local_backend.apply_pauli_rotation(state.local, sign * theta, local_word, r[1], r[2])
            return state
        self._phase(state, np.exp(-0.5j * sign * np.asarray(theta)), r[1], r[2])
        return state

    def apply_pauli(self, state: DistState, word: dict[int, str], out: Any = None) -> DistState:
        """A new state ``P|state>``: a partner rank's slice when P flips global wires, then local letters."""
        mask, factor, local_word = split_pauli_word(state.layout, self.rank, word)
        src = state.local if mask == 0 else self.exchanger.partner_copy(state.local, self.rank ^ mask)
        res = self.local_backend.apply_pauli(src, local_word) if local_word else (
            src.copy() if src is state.local else src)
        if factor != 1:
            res *= factor
        return state.like(res)

    # -- reductions -------------------------------------------------------------------------------
    def _reduce(self, value: Any) -> Any:
        """The sum over ranks of a partial result, or the rank's own part while reductions are deferred."""
        return value if self.defer_reductions else self.exchanger.allreduce(value)

    def inner(self, bra: DistState, ket: DistState) -> Any:
        """``<bra|ket>`` per batch entry, summed over ranks (see :meth:`_reduce`)."""
        bra.align_to(ket.layout)
        return self._reduce(self.local_backend.inner(bra.local, ket.local))

    def matrix_element(self, bra: DistState, ket: DistState, matrix: Any, targets: tuple, controls: tuple = (),
                       cvals: tuple = ()) -> Any:
        """``<bra| (P_controls x M) |ket>`` per batch entry."""
        r = self._pair(bra, ket, tuple(targets), controls, cvals)
        val = (np.zeros(ket.shape[0], dtype=complex) if r is None
               else self.local_backend.matrix_element(bra.local, ket.local, matrix, *r))
        return self._reduce(val)

    def reduced_outer(self, bra: DistState, ket: DistState, targets: tuple, controls: tuple = (),
                      cvals: tuple = (), entries: Any = None) -> Any:
        """``R = tr_rest |ket><bra|`` on ``targets`` in the controlled subspace, summed over ranks."""
        r = self._pair(bra, ket, tuple(targets), controls, cvals)
        d = 2 ** len(targets)
        val = (np.zeros((ket.shape[0], d, d), dtype=complex) if r is None
               else self.local_backend.reduced_outer(bra.local, ket.local, *r, entries))
        return self._reduce(val)

    def probs(self, state: DistState, wires: tuple | None = None) -> Any:
        """Marginal probabilities ``(B, 2**len(wires))`` on ``wires`` (in the order given), on every rank."""
        lay = state.layout
        wires = tuple(range(lay.num_wires)) if wires is None else tuple(wires)
        loc = [w for w in wires if not lay.is_global(w)]
        if loc:
            p = self.local_backend.to_numpy(
                self.local_backend.probs(state.local, tuple(lay.local_position(w) for w in loc)))
        else:
            p = self.local_backend.to_numpy(self.local_backend.xp.sum(
                state.local.real**2 + state.local.imag**2, axis=1))[:, None]
        j = np.arange(2 ** len(loc))
        idx = np.zeros_like(j)
        k = len(wires)
        for pos, w in enumerate(wires):
            bit = lay.rank_bit(w, self.rank) if lay.is_global(w) else (j >> (len(loc) - 1 - loc.index(w))) & 1
            idx |= bit << (k - 1 - pos)
        full = np.zeros((p.shape[0], 2**k))
        full[:, idx] = p
        return self.local_backend.asarray(self.exchanger.allreduce(full))

    def sample_basis(self, state: DistState, shots: int, rng: np.random.Generator) -> np.ndarray:
        """``shots`` basis indices per batch entry, identical on every rank and to one process's draw.

        The uniforms come from rank 0's generator (broadcast); each rank inverts the cumulative
        distribution over its own slice in the canonical order.
        """
        st = state.canonical_copy()
        p = self.local_backend.to_numpy(self.local_backend.probs(st.local, None))
        b, size = p.shape
        u = agree(self.comm, lambda: np.stack([rng.random(shots) for _ in range(b)]) if self.rank == 0 else None)
        u = self.comm.bcast(u, root=0)
        weights = np.array(self.comm.allgather(p.sum(axis=1)))  # (R, B)
        out = np.zeros((b, shots), dtype=np.int64)
        for bi in range(b):
            total = weights[:, bi].sum()
            start = weights[: self.rank, bi].sum()
            stop = start + weights[self.rank, bi]
            target = u[bi] * total
            mine = (target >= start) & ((target < stop) | (self.rank == self.size - 1))
            if mine.any() and weights[self.rank, bi] > 0:
                cdf = np.cumsum(p[bi])
                idx = np.minimum(np.searchsorted(cdf, target[mine] - start, side="right"), size - 1)
                out[bi, mine] = self.rank * size + idx
        total_out = np.empty_like(out)
        self.comm.Allreduce(out, total_out)
        return total_out


def mpi_info() -> dict[str, Any]:
    """mpi4py version, the MPI library, and this launch's rank count (for ``qdiff info``)."""
    try:
        import mpi4py
        from mpi4py import MPI
    except Exception as exc:
        return {"available": False, "reason": f"{type(exc).__name__}: {exc}"}
    return {"available": True, "mpi4py": mpi4py.__version__,
            "library": MPI.Get_library_version().splitlines()[0].strip(),
            "ranks": MPI.COMM_WORLD.Get_size()}
