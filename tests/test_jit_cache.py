"""The numba kernel cache: shared by concurrent processes, optional when unwritable, announced once."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

GRADIENT = """
import numpy as np, qdiff as qd
c = qd.Circuit(5)
p = c.params(3)
c.h(0).rx(p[0], 1).cnot(1, 2).rot(p[1], p[2], 0.3, wires=3).crz(p[0], 3, 4)
h = 0.5 * qd.Z(0) @ qd.Z(1) + qd.X(3) + qd.Z(4)
g = qd.grad(c, h, np.array([0.1, 0.2, 0.3]))
ref = qd.grad(c, h, np.array([0.1, 0.2, 0.3]), method="finite-diff")
assert np.allclose(g, ref, atol=1e-6), (g, ref)
print("ok", *np.round(g, 8))
"""


EMPTY = {"QDIFF_PACKAGE_CACHE": "0"}
"""Keeps a new NUMBA_CACHE_DIR empty (no copying of the kernels compiled at install)."""


def _run(code: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **EMPTY, **env})


def test_four_processes_share_one_empty_cache(tmp_path: Path) -> None:
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "cache"), "QDIFF_QUIET": "1", **EMPTY}
    procs = [subprocess.Popen([sys.executable, "-c", GRADIENT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, **env}) for _ in range(4)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    lines = {o[0].strip() for o in outs}
    assert len(lines) == 1 and next(iter(lines)).startswith("ok")
    entries = list((tmp_path / "cache").rglob("*.nbi"))
    assert entries, "nothing was cached"
    # a fifth process loads the shared cache: nothing compiles, so the compile notice stays silent
    after = _run(GRADIENT, {"NUMBA_CACHE_DIR": env["NUMBA_CACHE_DIR"]})
    assert after.returncode == 0 and after.stdout.strip() in lines
    assert "compiling CPU kernels" not in after.stderr


def test_first_compile_is_announced_once(tmp_path: Path) -> None:
    out = _run(GRADIENT, {"NUMBA_CACHE_DIR": str(tmp_path / "cache")})
    assert out.returncode == 0, out.stderr[-2000:]
    notices = [line for line in out.stderr.splitlines() if "compiling CPU kernels" in line]
    assert len(notices) == 1 and str(tmp_path / "cache") in notices[0]
    quiet = _run(GRADIENT, {"NUMBA_CACHE_DIR": str(tmp_path / "other"), "QDIFF_QUIET": "1"})
    assert quiet.returncode == 0 and "compiling" not in quiet.stderr


def test_unwritable_cache_warns_once_and_still_works() -> None:
    # no cache locator usable at all (a read-only install, read-only home, no NUMBA_CACHE_DIR): numba's
    # own cache=True would raise at import; qdiff compiles without a cache and says so once
    code = ("import warnings; warnings.simplefilter('always')\n"
            "import numba.core.caching as caching\n"
            "impl = getattr(caching, 'CacheImpl', None) or getattr(caching, '_CacheImpl')\n"
            "impl._locator_classes = []\n" + GRADIENT)
    out = _run(code, {"QDIFF_QUIET": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("ok")
    warned = [line for line in out.stderr.splitlines() if "QDiffWarning" in line]
    assert len(warned) == 1 and "NUMBA_CACHE_DIR" in warned[0]


def test_cache_location_names_a_writable_folder() -> None:
    from qdiff.backends.numba import jit

    where = jit.cache_location()
    if where is None:
        pytest.skip("no writable numba cache location on this machine")
    assert os.access(where, os.W_OK)


def test_install_time_kernels_are_copied_into_another_cache_folder(tmp_path: Path) -> None:
    # a cache filled by one process stands in for the package's install-time __pycache__: seeding an
    # empty folder from it lets the next process load every kernel (no compile notice), and an index
    # of another numba version is left behind
    from qdiff.backends.numba import jit

    built = _run(GRADIENT, {"NUMBA_CACHE_DIR": str(tmp_path / "built"), "QDIFF_QUIET": "1"})
    assert built.returncode == 0, built.stderr[-2000:]
    source = next(p.parent for p in (tmp_path / "built").rglob("*.nbi"))
    stale = source / "kernels._not_a_kernel-1.py311.nbi"
    stale.write_bytes(pickle.dumps("0.0.0") + pickle.dumps((b"", {})))
    target = tmp_path / "seeded"
    copied = jit.seed_cache(source, str(target))
    assert copied == len(list(source.glob("*.nbi"))) - 1 > 0
    assert not (target / stale.name).exists()
    assert jit.seed_cache(source, str(target)) == 0  # nothing twice
    # numba looks for the entries in <NUMBA_CACHE_DIR>/<folder named after the sources' folder>
    where = tmp_path / "user"
    jit.seed_cache(source, str(where / source.name))
    after = _run(GRADIENT, {"NUMBA_CACHE_DIR": str(where)})
    assert after.returncode == 0 and after.stdout.startswith("ok"), after.stderr[-2000:]
    assert "compiling CPU kernels" not in after.stderr
