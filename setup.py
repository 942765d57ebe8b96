"""Install-time kernel compilation: the package's numba cache is filled while qdiff is being installed.

Everything else about the package is in ``pyproject.toml``. The only addition here is a ``build_py`` step
that, after the sources are in place (the source tree for an editable install, the build folder for a
wheel), runs ``python -m qdiff warmup`` on them in the build environment. numba writes the compiled
kernels to ``qdiff/backends/numba/__pycache__`` beside the sources; its cache entries are keyed on the
source files' contents, the numba and Python versions and this machine's CPU, so the installed package
loads them instead of compiling on first use (another CPU, or a different numba at run time, simply
compiles as before).

``QDIFF_PRECOMPILE=0`` skips the step (for example when building a wheel to publish for other machines).
A failed or interrupted compilation never fails the install: it prints one line and the kernels compile
on first use instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PRECOMPILE_TIMEOUT_S = 1800
"""Longest the install waits for the kernels (about two minutes on a 2-core machine)."""


def precompile(root: Path) -> None:
    """Compile qdiff's CPU kernels into the numba cache of the package under ``root``; never raises."""
    if os.environ.get("QDIFF_PRECOMPILE", "1").strip().lower() in ("0", "false", "no"):
        print("qdiff: QDIFF_PRECOMPILE=0, CPU kernels will compile on first use", file=sys.stderr)
        return
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}  # the package's own __pycache__
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["QDIFF_QUIET"] = "1"
    start = time.perf_counter()
    print("qdiff: compiling the CPU kernels for this machine (QDIFF_PRECOMPILE=0 skips this)", file=sys.stderr)
    try:
        done = subprocess.run([sys.executable, "-m", "qdiff", "warmup", "--quiet"], env=env, cwd=root,
                              timeout=PRECOMPILE_TIMEOUT_S, capture_output=True, text=True)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"qdiff: kernel compilation skipped ({exc}); they compile on first use", file=sys.stderr)
        return
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        print(f"qdiff: kernel compilation failed ({tail[0]}); they compile on first use", file=sys.stderr)
        return
    print(f"qdiff: CPU kernels compiled in {time.perf_counter() - start:.0f} s", file=sys.stderr)


class BuildPyWithKernels(build_py):
    """``build_py``, then :func:`precompile` on the sources it placed."""

    def run(self) -> None:
        super().run()
        editable = getattr(self, "editable_mode", False)
        precompile(Path(__file__).resolve().parent if editable else Path(self.build_lib).resolve())


setup(cmdclass={"build_py": BuildPyWithKernels})
