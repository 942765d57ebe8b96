"""The structure cache: least-recently-used eviction by entries and by bytes, thread safety."""

from __future__ import annotations

import threading

import numpy as np

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
