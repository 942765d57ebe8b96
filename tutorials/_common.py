"""Shared helpers for the tutorials: quick mode, output folder, progress lines, headless matplotlib.

- Quick mode (small problems, few steps; what the tests run): ``main(quick=True)``, the ``--quick``
  command-line flag, or the environment variable ``QDIFF_TUTORIAL_QUICK=1``.
- Plots go to ``tutorials/output/`` unless ``QDIFF_TUTORIAL_OUT`` names another folder.
- Matplotlib always uses the non-interactive Agg backend, so the tutorials run without a display.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

try:
    import matplotlib
except ModuleNotFoundError:  # SystemExit, not ImportError: one line, no chained traceback
    raise SystemExit("the qdiff tutorials draw their plots with matplotlib, which is not installed: "
                     "pip install 'qdiff[tutorials]' (or pip install matplotlib)") from None

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

TUTORIALS_DIR = Path(__file__).resolve().parent
"""The folder holding the tutorial scripts."""


def is_quick(quick: bool | None = None) -> bool:
    """True for quick mode: the argument, ``--quick`` on the command line, or ``QDIFF_TUTORIAL_QUICK=1``."""
    if quick:
        return True
    env = os.environ.get("QDIFF_TUTORIAL_QUICK", "").strip().lower()
    return env in ("1", "true", "yes", "on") or "--quick" in sys.argv[1:]


def output_dir() -> Path:
    """Folder for the plots (created if needed): ``$QDIFF_TUTORIAL_OUT`` or ``tutorials/output``."""
    custom = os.environ.get("QDIFF_TUTORIAL_OUT")
    out = Path(custom) if custom else TUTORIALS_DIR / "output"
    out.mkdir(parents=True, exist_ok=True)
    if not custom and not (out / ".gitignore").exists():
        (out / ".gitignore").write_text("# generated plots\n*\n")
    return out


def save_figure(fig: Any, name: str) -> str:
    """Save ``fig`` as ``<output_dir>/<name>`` (PNG), close it, print and return the path."""
    path = output_dir() / name
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"plot saved: {path}")
    return str(path)


def banner(title: str, quick: bool) -> None:
    """Print the tutorial's title and mode."""
    print(f"=== {title} ({'quick' if quick else 'full'} mode) ===")


def progress(step: int, total: int, message: str = "", width: int = 20) -> None:
    """One progress line: ``[#####.....]  5/10  message`` (``step`` counts from 1)."""
    filled = int(round(width * step / max(total, 1)))
    bar = "#" * filled + "." * (width - filled)
    print(f"[{bar}] {step:>{len(str(total))}}/{total}  {message}".rstrip(), flush=True)


def should_print(step: int, total: int, every: int | None = None) -> bool:
    """Print about 10 to 25 lines per loop: the first step, every ``every``-th, and the last."""
    every = every or max(1, total // 20)
    return step == 1 or step == total or step % every == 0


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self._start


__all__ = [
    "TUTORIALS_DIR", "is_quick", "output_dir", "save_figure", "banner", "progress", "should_print", "Timer", "plt",
]
