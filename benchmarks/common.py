"""Benchmark plumbing: interleaved timing with medians, machine and version info, JSON and PNG output.

Timings on a shared 2-core machine are noisy, so every measurement point runs all implementations
round-robin (the order rotating each round) and reports the median. Nothing here imports numpy at
module level: :func:`unset_openblas_overrides` must run before numpy loads OpenBLAS.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
               "QULACS_NUM_THREADS", "OMP_PROC_BIND", "OMP_PLACES")
MIN_SAMPLE_S = 0.02
"""A sample lasts at least this long: fast calls are repeated ``number`` times and averaged."""
JIT_SUSPECT_S = 0.1
"""A first call slower than this may include compilation (numba, PennyLane caches): call again."""

_REMOVED_OVERRIDES: dict[str, str] = {}


def unset_openblas_overrides() -> dict[str, str]:
    """Remove OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE from this process's environment (before numpy loads).

    They force an old OpenBLAS kernel and slow current numpy; only this benchmark process changes.
    Returns what was removed (also recorded in :func:`machine_info`).
    """
    if "numpy" in sys.modules:
        raise RuntimeError("unset_openblas_overrides must run before numpy is imported")
    for var in OPENBLAS_OVERRIDES:
        if var in os.environ:
            _REMOVED_OVERRIDES[var] = os.environ.pop(var)
    return dict(_REMOVED_OVERRIDES)


# ------------------------------------------------------------------------------------------------
# timing
# ------------------------------------------------------------------------------------------------


@dataclass
class Measurement:
    """Timing of one implementation at one point: per-call seconds of each sample, or why there are none."""

    impl: str
    status: str = "ok"
    times_s: list[float] = field(default_factory=list)
    number: int = 1
    note: str = ""
    value: Any = field(default=None, repr=False)
    """The warm-up call's return value, for cross-checking implementations (not written to JSON)."""

    @property
    def ok(self) -> bool:
        return self.status == "ok" and bool(self.times_s)

    @property
    def median_s(self) -> float | None:
        return statistics.median(self.times_s) if self.ok else None

    @property
    def min_s(self) -> float | None:
        return min(self.times_s) if self.ok else None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("value")
        d.update(median_s=self.median_s, min_s=self.min_s, repeats=len(self.times_s))
        return d


class CallTimeout(Exception):
    """A timed call ran past its limit (raised from SIGALRM inside the call)."""


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`CallTimeout` in the block after ``seconds`` (main thread, POSIX; else no limit).

    The signal interrupts Python code between bytecodes, so a long compiled kernel finishes first.
    """
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not seconds or seconds <= 0 or not usable:
        yield
        return

    def _raise(signum: int, frame: Any) -> None:
        raise CallTimeout(f"call exceeded {seconds:g} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _short_error(exc: BaseException) -> str:
    if isinstance(exc, CallTimeout):
        return f"timeout: {exc}"
    kind = "OOM" if isinstance(exc, MemoryError) else "failed"
    msg = str(exc).splitlines()[0] if str(exc) else ""
    return f"{kind}: {type(exc).__name__}: {msg[:160]}"


def _call(fn: Callable[[], Any], number: int, timeout: float | None) -> tuple[float, Any]:
    """Seconds per call of ``number`` calls of ``fn`` and the last result, within ``timeout`` per call."""
    value = None
    with time_limit(timeout * number if timeout else None):
        t0 = time.perf_counter()
        for _ in range(number):
            value = fn()
        return (time.perf_counter() - t0) / number, value


def interleaved(
    impls: dict[str, Callable[[], Any] | str],
    repeats: int,
    point_budget_s: float = 10.0,
    call_timeout_s: float | None = None,
    verbose: bool = False,
) -> dict[str, Measurement]:
    """Time every callable of ``impls`` round-robin; a string value marks the implementation skipped.

    Warm-up: one call (its result kept in ``value``); if it took over ``JIT_SUSPECT_S`` (perhaps
    compiling) but under ``point_budget_s / 2``, a second call gives the cost estimate. Exceptions
    (MemoryError, a call past ``call_timeout_s``, anything) become the status (``"OOM: ..."``,
    ``"timeout: ..."``, ``"failed: ..."``), never raised. Then up to ``repeats`` samples per
    implementation, fewer when a call is slow (at most ``point_budget_s`` each); an estimate over
    ``point_budget_s / 2`` is kept as the only sample. Calls under ``MIN_SAMPLE_S`` are batched
    (``number`` per sample) and averaged.
    """
    res: dict[str, Measurement] = {}
    plan: dict[str, int] = {}
    for name, fn in impls.items():
        if isinstance(fn, str):
            res[name] = Measurement(name, status=fn)
            continue
        try:
            warm, value = _call(fn, 1, call_timeout_s)
            if JIT_SUSPECT_S < warm <= point_budget_s / 2:
                warm, _ = _call(fn, 1, call_timeout_s)
        except BaseException as exc:  # noqa: BLE001 - a failing simulator is a result, not a crash
            if isinstance(exc, KeyboardInterrupt):
                raise
            res[name] = Measurement(name, status=_short_error(exc))
            if verbose:
                traceback.print_exc()
            continue
        m = Measurement(name, number=max(1, int(MIN_SAMPLE_S / max(warm, 1e-9))), value=value)
        if warm > point_budget_s / 2:
            m.times_s.append(warm)
            m.note = "one sample (the warm-up call): too slow to repeat within the point budget"
            plan[name] = 0
        else:
            plan[name] = max(0, min(repeats, max(1, int(point_budget_s / max(warm * m.number, 1e-9)))))
        res[name] = m
    names = [n for n in plan if plan[n] > 0]
    for r in range(max(plan.values(), default=0)):
        for name in names[r % len(names):] + names[: r % len(names)]:
            m = res[name]
            if len(m.times_s) >= plan[name] or m.status != "ok":
                continue
            try:
                m.times_s.append(_call(impls[name], m.number, call_timeout_s)[0])  # type: ignore[arg-type]
            except BaseException as exc:  # noqa: BLE001
                if isinstance(exc, KeyboardInterrupt):
                    raise
                m.status, m.times_s = _short_error(exc), []
    return res


def fmt_time(t: float | None) -> str:
    """Seconds as a short human string (``1.23 s``, ``45.6 ms``, ``789 us``)."""
    if t is None:
        return "-"
    if t >= 1:
        return f"{t:.2f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3g} ms"
    return f"{t * 1e6:.3g} us"


def fmt_ratio(a: float | None, b: float | None) -> str:
    """``a / b`` as ``0.52x``, or ``-`` when either is missing."""
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.3g}x"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub-markdown table with padded columns."""
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


# ------------------------------------------------------------------------------------------------
# machine and versions
# ------------------------------------------------------------------------------------------------


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def openblas_info() -> dict[str, Any]:
    """The OpenBLAS that numpy loaded: library, runtime kernel (core name) and threads, via ctypes."""
    import numpy  # noqa: F401 - loads OpenBLAS

    info: dict[str, Any] = {}
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return info
    libs = sorted({ln.split()[-1] for ln in maps if "openblas" in ln.lower() and ".so" in ln})
    for path in libs:
        lib = ctypes.CDLL(path)
        for key, names, restype in (
            ("corename", ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                          "openblas_get_corename64_", "openblas_get_corename"), ctypes.c_char_p),
            ("num_threads", ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
                             "openblas_get_num_threads64_", "openblas_get_num_threads"), ctypes.c_int),
        ):
            for sym in names:
                f = getattr(lib, sym, None)
                if f is not None:
                    f.restype = restype
                    v = f()
                    info.setdefault(Path(path).name, {})[key] = v.decode() if isinstance(v, bytes) else v
                    break
    return info


def _git_revision() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{rev}{'+dirty' if dirty else ''}" if rev else None


def machine_info() -> dict[str, Any]:
    """CPU, cores, memory, load, Python and package versions, thread settings, OpenBLAS kernel."""
    import numpy as np

    info: dict[str, Any] = {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "mem_total_gib": _mem_total_gib(),
        "load_avg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "git": _git_revision(),
        "versions": {d: _version(d) for d in ("qdiff", "numpy", "scipy", "numba", "pennylane",
                                              "pennylane_lightning", "qulacs", "matplotlib")},
        "numpy_blas": np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {}).get(
            "openblas configuration"),
        "openblas_runtime": openblas_info(),
        "openblas_overrides_removed": dict(_REMOVED_OVERRIDES),
        "thread_env": {v: os.environ.get(v) for v in THREAD_VARS},
    }
    try:
        import numba

        info["numba_threads"] = numba.get_num_threads()
    except Exception:  # noqa: BLE001 - optional
        info["numba_threads"] = None
    return info


def machine_summary(info: dict[str, Any]) -> str:
    """Two lines for the console and the markdown summary."""
    v = info["versions"]
    blas = "; ".join(f"{d.get('corename')} x{d.get('num_threads')}" for d in info["openblas_runtime"].values())
    removed = ", ".join(info["openblas_overrides_removed"]) or "none set"
    return (
        f"{info['cpu_model']}, {info['cpus_usable']} usable cores, {info['mem_total_gib']} GiB, "
        f"load {', '.join(f'{x:.2f}' for x in info['load_avg'] or [])}; git {info['git']}\n"
        f"python {info['python']}, qdiff {v['qdiff']}, numpy {v['numpy']} (OpenBLAS {blas}; overrides removed: "
        f"{removed}), pennylane {v['pennylane']}, lightning {v['pennylane_lightning']}, qulacs {v['qulacs']}, "
        f"numba {v['numba']} ({info['numba_threads']} threads), OMP_NUM_THREADS={info['thread_env']['OMP_NUM_THREADS']}"
    )


# ------------------------------------------------------------------------------------------------
# output
# ------------------------------------------------------------------------------------------------


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON (atomically: a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n")
    tmp.replace(path)


IMPL_COLORS = {"qdiff": "tab:blue", "qdiff.qubit": "tab:green", "lightning": "tab:orange", "default": "tab:red",
               "default backprop": "tab:purple", "qulacs": "tab:brown"}


def impl_color(impl: str) -> str:
    """A fixed colour per implementation, so every plot reads the same ("lightning adjoint" as "lightning")."""
    if impl in IMPL_COLORS:
        return IMPL_COLORS[impl]
    return IMPL_COLORS.get(impl.replace(" adjoint", ""), "tab:gray")


def plot_scaling(path: Path, title: str, panels: list[tuple[str, dict[str, list[tuple[int, float]]]]],
                 bars: tuple[str, dict[str, float]] | None = None) -> None:
    """PNG of time vs qubits (log y), one panel per ``(subtitle, {impl: [(n, seconds)]})``, plus bars.

    ``bars`` adds a last panel of horizontal bars ``(subtitle, {label: seconds})`` on a log axis.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_panels = len(panels) + (bars is not None)
    fig, axes = plt.subplots(1, n_panels, figsize=(6.2 * n_panels, 4.6), squeeze=False)
    for ax, (sub, series) in zip(axes[0], panels, strict=False):
        for i, (impl, pts) in enumerate(sorted(series.items())):
            if pts:
                xs, ys = zip(*sorted(pts), strict=True)
                ax.plot(xs, ys, marker="os^vDP*X"[i % 8], label=impl, color=impl_color(impl),
                        linestyle="-" if "qdiff" in impl else "--")
        ax.set_yscale("log")
        ax.set_xlabel("qubits")
        ax.set_ylabel("median time per call [s]")
        ax.set_title(sub, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    if bars is not None:
        ax = axes[0][-1]
        sub, vals = bars
        labels = list(vals)
        ax.barh(range(len(labels)), [vals[k] for k in labels],
                color=[impl_color(k.split(": ")[-1]) for k in labels])
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("median time per call [s]")
        ax.set_title(sub, fontsize=10)
        ax.grid(True, axis="x", which="both", alpha=0.3)
        ax.invert_yaxis()
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
