"""The structure cache: least-recently-used eviction by entries and by bytes, thread safety."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import qdiff as qd
from qdiff.cache import StructureCache, nbytes_of


def test_lru_eviction_by_entries() -> None:
    c: StructureCache[int] = StructureCache("t", max_entries=2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1  # "b" is now the least recently used
    c.put("c", 3)
    assert c.get("b") is None and c.get("a") == 1 and c.get("c") == 3 and len(c) == 2


def test_eviction_by_bytes_keeps_the_newest_even_if_alone_too_big() -> None:
    c: StructureCache[np.ndarray] = StructureCache("t", max_entries=100, max_bytes=3000)
    for k in range(5):
        c.put(k, np.zeros(128))  # 1 KiB each
    assert len(c) == 2 and c.nbytes == 2048 and c.get(4) is not None and c.get(2) is None
    c.put("big", np.zeros(1000))
    assert len(c) == 1 and c.get("big") is not None


def test_nbytes_of_counts_arrays_in_containers_and_objects_once() -> None:
    a = np.zeros(10)

    class Holder:
        def __init__(self) -> None:
            self.x, self.y, self.items = a, a, [np.zeros(5), {"k": np.zeros(2)}]

    assert nbytes_of(Holder()) == 80 + 40 + 16
    assert nbytes_of((1, "s", None)) == 0


def test_get_or_build_builds_once_and_is_safe_across_threads() -> None:
    c: StructureCache[list] = StructureCache("t", max_entries=8)
    built = []

    def build() -> list:
        built.append(1)
        return [len(built)]

    first = c.get_or_build("k", build)
    assert c.get_or_build("k", build) is first and len(built) == 1

    def hammer(i: int) -> None:
        for j in range(200):
            c.get_or_build((i, j % 10), lambda j=j: [j])
            c.get((i, (j + 1) % 10))

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(c) <= 8 and c.hits + c.misses > 0


def test_z_diagonals_are_cached_per_device(monkeypatch: pytest.MonkeyPatch) -> None:
    # two GPUs stand in as two placements of the numpy backend: a diagonal built for one is not reused on the other
    import qdiff.backends as backends
    from qdiff.observables import as_linear_combination, split_diagonal_terms

    be = backends.get_backend("numpy")
    obs = as_linear_combination(qd.Z(0) + 0.5 * qd.Z(1) @ qd.Z(2) + qd.X(0))
    state = np.zeros((1, 8), dtype=complex)
    device = {"id": 0}
    monkeypatch.setattr(backends, "placement", lambda backend: ("cuda", device["id"]))
    on_0, _ = split_diagonal_terms(be, state, obs)
    assert split_diagonal_terms(be, state, obs)[0] is on_0
    device["id"] = 1
    on_1, _ = split_diagonal_terms(be, state, obs)
    assert on_1 is not on_0
    np.testing.assert_array_equal(on_1, on_0)
