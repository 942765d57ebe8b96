"""How qdiff's numba kernels are compiled and where they are cached.

The CPU kernels (``kernels``, ``whole_circuit``, ``blocked``, ``fused`` in this package) are compiled by numba on their
first use in a process that finds no cached copy, and written to numba's cache: ``NUMBA_CACHE_DIR``
when set, else ``__pycache__`` beside the kernel sources, else the user's cache folder
(``~/.cache/numba``). Later processes load them in well under a second. numba writes each cache
entry to a temporary file and renames it into place, so processes sharing one cache folder (MPI
ranks, parallel test workers) never read a half-written entry.

``CACHE`` is whether numba can write any of those locations. When none is writable the kernels are
compiled without caching (every process compiles again) and one :class:`~qdiff.errors.QDiffWarning`
says so, instead of numba's exception at import.

Installing qdiff compiles the kernels into ``__pycache__`` beside their sources (``setup.py``). When
numba caches somewhere else (``NUMBA_CACHE_DIR`` is set, or the package folder is read-only, as in a
system-wide or cluster install), :func:`seed_cache` copies the entries compiled at install that are
still valid (same source contents and numba version) into that folder the first time, so those
processes load them too. ``QDIFF_PACKAGE_CACHE=0`` turns the copying off (to measure a truly empty
cache).

The first real compilation in a process (not a cache load) prints one line to stderr, so that a
long first call is not a mystery; ``QDIFF_QUIET=1`` silences it. ``qdiff warmup`` fills the cache
ahead of time (for a machine image or a cluster's shared software folder).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import sys
import uuid
import warnings
from pathlib import Path
from typing import Any

from numba.core import caching, event

from ...errors import QDiffWarning

KERNEL_DIR = Path(__file__).resolve().parent
"""The folder of the kernel sources (what numba's in-tree cache is named after)."""


def _probe() -> None:  # pragma: no cover - only its file and name are used
    """A stand-in kernel whose source file is beside the real ones."""


def _locator_classes() -> list[Any]:
    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
    return list(impl._locator_classes)


def cache_location() -> str | None:
    """The folder numba will cache qdiff's kernels in, or None when no location is writable."""
    for cls in _locator_classes():
        try:
            locator = cls.from_function(_probe, str(KERNEL_DIR / "kernels.py"))
        except Exception:  # a locator that cannot decide is one that cannot be used
            locator = None
        if locator is not None:
            return str(locator.get_cache_path())
    return None


def _decide() -> tuple[bool, str | None]:
    where = cache_location()
    if where is None:
        warnings.warn(
            "qdiff: numba cannot write a kernel cache (NUMBA_CACHE_DIR, the package's __pycache__ and the "
            "user cache folder are all unwritable), so the CPU kernels compile again in every process; "
            "set NUMBA_CACHE_DIR to a writable folder to keep them",
            QDiffWarning,
            stacklevel=2,
        )
        return False, None
    return True, where


CACHE, CACHE_DIR = _decide()

PACKAGE_CACHE = KERNEL_DIR / "__pycache__"
"""Where installing qdiff puts the kernels it compiled (numba's in-tree cache folder of the sources)."""


def _valid_entries(index: Path, stamps: dict[str, bytes]) -> list[str]:
    """The data files an index in the package cache names, if it is fresh (same numba version, stamp =
    the source's content hash as numba computes it); else none. ``stamps`` memoizes the hash per source."""
    import numba

    module = index.name.split(".", 1)[0]
    try:
        if module not in stamps:
            stamps[module] = hashlib.sha256((KERNEL_DIR / f"{module}.py").read_bytes()).digest()
        with open(index, "rb") as f:
            version = pickle.load(f)
            if version != numba.__version__:
                return []
            stamp, overloads = pickle.loads(f.read())
        if stamp != stamps[module]:
            return []
    except Exception:  # unreadable, another format, or a source that is gone: nothing to copy
        return []
    return [str(name) for name in overloads.values()]


def _copy_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f"{dst.name}.tmp.{uuid.uuid4().hex[:16]}")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def seed_cache(source: Path = PACKAGE_CACHE, target: str | None = CACHE_DIR) -> int:
    """Copy the fresh kernel entries of ``source`` (the package's install-time cache) that ``target`` (the
    folder numba caches in) lacks; return how many functions were copied. Data files first, each index
    last and atomically, so a process reading ``target`` meanwhile sees a function whole or not at all;
    never raises (a failed copy only means that kernel compiles on first use)."""
    if target is None or not source.is_dir() or Path(target).resolve() == source.resolve():
        return 0
    copied = 0
    stamps: dict[str, bytes] = {}
    try:
        dst = Path(target)
        dst.mkdir(parents=True, exist_ok=True)
        for index in sorted(source.glob("*.nbi")):
            if (dst / index.name).exists():
                continue
            names = _valid_entries(index, stamps)
            if not names:
                continue
            for name in names:
                _copy_atomic(source / name, dst / name)
            _copy_atomic(index, dst / index.name)
            copied += 1
    except OSError:
        pass
    return copied


if CACHE and os.environ.get("QDIFF_PACKAGE_CACHE", "1").strip().lower() not in ("0", "false", "no"):
    seed_cache()


class _FirstCompileNotice(event.Listener):
    """Prints one line when numba first compiles (not loads) a qdiff kernel in this process."""

    def on_start(self, ev: Any) -> None:
        dispatcher = (ev.data or {}).get("dispatcher")
        module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
        if not module.startswith("qdiff."):
            return
        event.unregister("numba:compile", self)
        where = f"cached in {CACHE_DIR}" if CACHE else "not cached: no writable cache folder"
        sys.stderr.write(
            f"qdiff: compiling CPU kernels for this machine, once ({where}); `qdiff warmup` does it ahead "
            "of time, QDIFF_QUIET=1 silences this line\n"
        )

    def on_end(self, ev: Any) -> None:
        pass


if os.environ.get("QDIFF_QUIET", "").strip().lower() not in ("1", "true", "yes"):
    event.register("numba:compile", _FirstCompileNotice())


__all__ = ["CACHE", "CACHE_DIR", "cache_location", "KERNEL_DIR", "PACKAGE_CACHE", "seed_cache"]
