"""The one cache of compiled structure: thread-safe, least-recently-used, bounded by entries and bytes.

Programs, blocked plans, the MPI backend's local circuits and the PennyLane device's conversions are
kept in :class:`StructureCache` instances. Keys are tuples that name everything the cached value
depends on (structure, never parameter values); values are immutable or never mutated after they
are built. The byte bound counts the numpy arrays a value holds when it is stored (:func:`nbytes_of`),
so a few huge entries evict each other instead of growing without limit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

import numpy as np

V = TypeVar("V")

DEFAULT_MAX_BYTES = 256 * 2**20
"""Default byte bound of one cache."""


def nbytes_of(value: Any, depth: int = 4) -> int:
    """Bytes of the numpy arrays reachable from ``value`` (containers, dataclasses, plain objects), to ``depth``."""
    seen: set[int] = set()

    def walk(v: Any, d: int) -> int:
        if id(v) in seen:
            return 0
        seen.add(id(v))
        if isinstance(v, np.ndarray):
            return int(v.nbytes)
        if d == 0 or isinstance(v, (str, bytes, int, float, complex, bool, type(None))):
            return 0
        if isinstance(v, dict):
            return sum(walk(x, d - 1) for x in v.values())
        if isinstance(v, (list, tuple, set, frozenset)):
            return sum(walk(x, d - 1) for x in v)
        attrs = getattr(v, "__dict__", None)
        return sum(walk(x, d - 1) for x in attrs.values()) if attrs else 0

    return walk(value, depth)


class StructureCache(Generic[V]):
    """A named LRU cache of at most ``max_entries`` values and about ``max_bytes`` bytes of their arrays."""

    def __init__(self, name: str, max_entries: int, max_bytes: int = DEFAULT_MAX_BYTES,
                 size_of: Callable[[Any], int] = nbytes_of):
        self.name, self.max_entries, self.max_bytes, self._size_of = name, max_entries, max_bytes, size_of
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> V | None:
        """The value stored under ``key`` (now the most recently used), or None."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: Hashable, value: V) -> V:
        """Store ``value`` under ``key`` and evict the least recently used beyond the bounds; returns ``value``."""
        size = self._size_of(value)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._items[key] = (value, size)
            self._bytes += size
            while len(self._items) > 1 and (len(self._items) > self.max_entries or self._bytes > self.max_bytes):
                _, (_, evicted) = self._items.popitem(last=False)
                self._bytes -= evicted
        return value

    def get_or_build(self, key: Hashable, build: Callable[[], V]) -> V:
        """The cached value, or ``build()`` stored (built outside the lock; a racing build keeps the last)."""
        hit = self.get(key)
        return hit if hit is not None else self.put(key, build())

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        """Bytes counted for the stored values."""
        return self._bytes

    def __repr__(self) -> str:
        return (f"StructureCache({self.name!r}: {len(self)}/{self.max_entries} entries, "
                f"{self._bytes / 2**20:.1f}/{self.max_bytes / 2**20:.0f} MiB, {self.hits} hits, {self.misses} misses)")


__all__ = ["StructureCache", "nbytes_of", "DEFAULT_MAX_BYTES"]
