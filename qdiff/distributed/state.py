"""A distributed statevector: this rank's amplitudes, the wire layout, and the swaps that change it.

The local array has shape ``(B, 2**L)`` (B parameter sets, L = local qubits). Moving a global wire
in is a pairwise exchange of half the local state with one partner rank, done in chunks of at most
``chunk_bytes`` through a contiguous buffer, so the extra memory per rank is that chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .comm import DistributedError
from .layout import Layout


@dataclass
class Traffic:
    """Communication counted on this rank: swaps, partner copies and the bytes this rank sent."""

    swaps: int = 0
    copies: int = 0
    bytes_sent: int = 0
    reductions: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a dict."""
        return {"swaps": self.swaps, "copies": self.copies, "bytes_sent": self.bytes_sent,
                "reductions": self.reductions}


@dataclass
class Exchanger:
    """Pairwise exchanges of (parts of) local states between ranks, in bounded chunks."""

    comm: Any
    chunk_bytes: int
    xp: Any
    cuda_aware: bool = False
    traffic: Traffic = field(default_factory=Traffic)

    def _sendrecv(self, buf: Any, partner: int) -> Any:
        """Exchange a contiguous ``buf`` with ``partner`` in place (host staging for GPU arrays if needed)."""
        host = buf if (self.xp is np or self.cuda_aware) else self.xp.asnumpy(buf)
        if self.xp is not np and self.cuda_aware:
            self.xp.cuda.get_current_stream().synchronize()
        self.comm.Sendrecv_replace(host, dest=partner, sendtag=17, source=partner, recvtag=17)
        self.traffic.bytes_sent += buf.nbytes
        return host if host is buf else self.xp.asarray(host)

    def swap_half(self, local: Any, position: int, keep_bit: int, partner: int) -> None:
        """Exchange the half of ``local`` whose bit at ``position`` is ``1 - keep_bit`` with ``partner``."""
        b, size = local.shape
        hi = 2**position
        lo = size // (2 * hi)
        view = local.reshape(b, hi, 2, lo)[:, :, 1 - keep_bit, :]
        per = max(1, self.chunk_bytes // local.itemsize)
        self.traffic.swaps += 1
        for bi in range(b):
            rows = view[bi]  # (hi, lo)
            if lo >= per:
                for r in range(hi):
                    for c0 in range(0, lo, per):
                        part = rows[r, c0 : c0 + per]
                        part[...] = self._sendrecv(self.xp.ascontiguousarray(part), partner)
            else:
                step = max(1, per // lo)
                for r0 in range(0, hi, step):
                    part = rows[r0 : r0 + step]
                    part[...] = self._sendrecv(self.xp.ascontiguousarray(part), partner)

    def partner_copy(self, local: Any, partner: int) -> Any:
        """A new array holding ``partner``'s local state (this rank sends its own in exchange)."""
        out = local.copy()
        flat = out.reshape(-1)
        per = max(1, self.chunk_bytes // local.itemsize)
        self.traffic.copies += 1
        for c0 in range(0, flat.shape[0], per):
            flat[c0 : c0 + per] = self._sendrecv(self.xp.ascontiguousarray(flat[c0 : c0 + per]), partner)
        return out

    def allreduce(self, value: Any) -> Any:
        """Sum of ``value`` (a small array) over all ranks."""
        self.traffic.reductions += 1
        host = np.ascontiguousarray(value if self.xp is np else self.xp.asnumpy(value))
        out = np.empty_like(host)
        self.comm.Allreduce(host, out)
        return out if self.xp is np else self.xp.asarray(out)


class DistState:
    """This rank's slice of a ``(B, 2**n)`` statevector and the layout it is stored in.

    ``shape`` is the logical shape ``(B, 2**n)``; ``local`` the rank's ``(B, 2**L)`` array. Arithmetic
    with another :class:`DistState` first brings it to this state's layout; scaling by a ``(B, 1)``
    array or a scalar is elementwise, as for an array.
    """

    __array_ufunc__ = None  # numpy defers ``array * state`` to __rmul__

    def __init__(self, local: Any, layout: Layout, exchanger: Exchanger, rank: int):
        self.local, self.layout, self.exchanger, self.rank = local, layout, exchanger, rank

    @property
    def shape(self) -> tuple[int, int]:
        """Logical shape ``(B, 2**n)``."""
        return (self.local.shape[0], 2**self.layout.num_wires)

    @property
    def dtype(self) -> Any:
        """Amplitude dtype."""
        return self.local.dtype

    @property
    def nbytes(self) -> int:
        """Bytes held on this rank."""
        return int(self.local.nbytes)

    def copy(self) -> DistState:
        """An independent copy (same layout)."""
        return DistState(self.local.copy(), self.layout.copy(), self.exchanger, self.rank)

    def like(self, local: Any) -> DistState:
        """A state in this state's layout holding ``local``."""
        return DistState(local, self.layout.copy(), self.exchanger, self.rank)

    # -- layout changes ---------------------------------------------------------------------------
    def _swap(self, global_wire: int, local_wire: int) -> None:
        """Exchange a global and a local logical wire's physical qubits (one half-state exchange)."""
        lay = self.layout
        g = lay.where[global_wire]
        partner = self.rank ^ (1 << (lay.num_global - 1 - g))
        keep = lay.rank_bit(global_wire, self.rank)
        self.exchanger.swap_half(self.local, lay.local_position(local_wire), keep, partner)
        lay.exchange(global_wire, local_wire)

    def localize(self, wires: tuple[int, ...] | list[int]) -> None:
        """Make every wire in ``wires`` local, swapping out the other local wires :meth:`Layout.victim` picks."""
        lay = self.layout
        try:
            need = lay.globals_to_fetch(wires)
        except ValueError as exc:
            raise DistributedError(str(exc)) from None
        for w in need:
            self._swap(w, lay.victim(wires))

    def align_to(self, target: Layout) -> None:
        """Bring this state into ``target``'s layout: swaps for the global wires, a local transpose last."""
        lay = self.layout
        if lay.key() == target.key():
            lay.last_use, lay.clock = list(target.last_use), target.clock
            return
        for slot in range(lay.num_global):  # fill the global slots in order; filled ones stay
            want, current = target.logical_at(slot), lay.logical_at(slot)
            if want == current:
                continue
            if lay.is_global(want):  # on a later global slot: through a local wire first
                self._swap(want, lay.victim(()))
            self._swap(current, want)
        if lay.key() != target.key():  # local wires permuted: one local transpose
            g, n_loc = lay.num_global, lay.num_local
            b = self.local.shape[0]
            tensor = self.local.reshape((b,) + (2,) * n_loc)
            order = [0] + [1 + lay.local_position(target.logical_at(g + p)) for p in range(n_loc)]
            xp = self.exchanger.xp
            self.local = xp.ascontiguousarray(xp.transpose(tensor, order)).reshape(b, -1)
            lay.where = list(target.where)
        lay.last_use, lay.clock = list(target.last_use), target.clock

    def canonical(self) -> None:
        """Bring this state into the identity layout (the single-process amplitude order)."""
        self.align_to(Layout(self.layout.num_wires, self.layout.num_global))

    def canonical_copy(self) -> DistState:
        """This state if it is in the identity layout, else a copy brought into it."""
        if self.layout.key() == tuple(range(self.layout.num_wires)):
            return self
        out = self.copy()
        out.canonical()
        return out

    # -- arithmetic -------------------------------------------------------------------------------
    def _other(self, other: Any) -> Any:
        if isinstance(other, DistState):
            if other.layout.key() != self.layout.key():
                other = other.copy()
                other.align_to(self.layout)
            return other.local
        return other

    def __mul__(self, other: Any) -> DistState:
        if isinstance(other, DistState):
            return NotImplemented
        return self.like(self.local * other)

    __rmul__ = __mul__

    def __add__(self, other: Any) -> DistState:
        return self.like(self.local + self._other(other))

    def __sub__(self, other: Any) -> DistState:
        return self.like(self.local - self._other(other))

    def __iadd__(self, other: Any) -> DistState:
        self.local += self._other(other)
        return self

    def __isub__(self, other: Any) -> DistState:
        self.local -= self._other(other)
        return self

    def __imul__(self, other: Any) -> DistState:
        self.local *= other
        return self

    def __repr__(self) -> str:
        return (f"DistState(shape={self.shape}, rank={self.rank}, local={self.local.shape}, "
                f"layout={self.layout.where})")
