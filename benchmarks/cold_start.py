"""Cold start: import times and the first forward and first adjoint gradient in a new process.

Each measurement is a fresh Python process (nothing imported, nothing compiled in memory) running
``StronglyEntanglingLayers`` (L=2) with ``<Z0 Z1>`` through a PennyLane device: first a forward pass
with non-trainable weights, then an adjoint gradient, then both again warm (median of 5). Three
situations per qubit count, side by side:

- ``qdiff, empty cache``: a new, empty ``NUMBA_CACHE_DIR``, not seeded from the kernels compiled at
  install (``QDIFF_PACKAGE_CACHE=0``): what a machine pays when nothing was compiled for it (another
  CPU than the one that installed qdiff, or an install with ``QDIFF_PRECOMPILE=0``);
- ``qdiff, after warmup``: the same cache after ``qdiff warmup`` (run once, timed separately): what a
  fresh ``pip install`` gives, since the install runs the same warmup for the installing machine;
- ``lightning.qubit``: its first calls (precompiled C++, nothing to compile).

Usage::

    python benchmarks/cold_start.py                     # n = 4, 12, 16, 20, 24
    python benchmarks/cold_start.py --qubits 4 16       # fewer points

Writes ``benchmarks/results/cold_start.json`` and ``cold_start.md`` (``--out`` to change the folder).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fmt_time, machine_info, machine_summary, table, write_json  # noqa: E402

PROBE = r"""
import json, statistics, sys, time
t0 = time.perf_counter()
import pennylane as qml
t1 = time.perf_counter()
device_name, n = sys.argv[1], int(sys.argv[2])
if device_name == "qdiff.qubit":
    import qdiff.devices  # noqa: F401
t2 = time.perf_counter()
import numpy as np
from pennylane import numpy as pnp

dev = qml.device(device_name, wires=n)

@qml.qnode(dev, diff_method="adjoint")
def circuit(w):
    qml.StronglyEntanglingLayers(w, wires=range(n))
    return qml.expval(qml.Z(0) @ qml.Z(1))

shape = qml.StronglyEntanglingLayers.shape(2, n)
w = np.random.default_rng(0).uniform(0, 2 * np.pi, shape)
wt = pnp.array(w, requires_grad=True)
def timed(fn):
    t = time.perf_counter(); fn(); return time.perf_counter() - t
first_forward = timed(lambda: circuit(w))
first_gradient = timed(lambda: qml.grad(circuit)(wt))
warm_forward = statistics.median(timed(lambda: circuit(w)) for _ in range(5))
warm_gradient = statistics.median(timed(lambda: qml.grad(circuit)(wt)) for _ in range(5))
print(json.dumps(dict(import_pennylane=t1 - t0, import_device=t2 - t1, first_forward=first_forward,
                      first_gradient=first_gradient, warm_forward=warm_forward, warm_gradient=warm_gradient)))
"""

IMPORT_QDIFF = "import time; t = time.perf_counter(); import qdiff; print(time.perf_counter() - t)"


def _probe(device: str, n: int, env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", PROBE, device, str(n)], capture_output=True, text=True,
                         env={**os.environ, **env}, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"{device} n={n} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Run the cold-start measurements and write the JSON and markdown results."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--qubits", type=int, nargs="+", default=[4, 12, 16, 20, 24])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    quiet = {"QDIFF_QUIET": "1", "QDIFF_PACKAGE_CACHE": "0"}  # new cache folders stay empty
    results: dict[str, object] = {"machine": machine_info(), "qubits": args.qubits, "points": []}
    with tempfile.TemporaryDirectory() as tmp:
        imports = []
        for _ in range(5):
            cache = {"NUMBA_CACHE_DIR": str(Path(tmp) / "import"), **quiet}
            out = subprocess.run([sys.executable, "-c", IMPORT_QDIFF], capture_output=True, text=True,
                                 env={**os.environ, **cache}, check=True)
            imports.append(float(out.stdout.strip()))
        results["import_qdiff_s"] = sorted(imports)[len(imports) // 2]
        warm_cache = {"NUMBA_CACHE_DIR": str(Path(tmp) / "warm"), **quiet}
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "qdiff", "warmup", "--quiet"], env={**os.environ, **warm_cache},
                       check=True)
        results["warmup_s"] = time.perf_counter() - t0
        for n in args.qubits:
            empty = {"NUMBA_CACHE_DIR": str(Path(tmp) / f"empty{n}"), **quiet}
            row = {"n": n, "qdiff, empty cache": _probe("qdiff.qubit", n, empty),
                   "qdiff, after warmup": _probe("qdiff.qubit", n, warm_cache),
                   "lightning.qubit": _probe("lightning.qubit", n, {})}
            results["points"].append(row)
            print(json.dumps(row), flush=True)
    headers = ["n", "case", "import device", "first forward", "first gradient", "warm forward", "warm gradient"]
    rows = []
    for row in results["points"]:
        for case in ("qdiff, empty cache", "qdiff, after warmup", "lightning.qubit"):
            r = row[case]
            rows.append([str(row["n"]), case, fmt_time(r["import_device"]), fmt_time(r["first_forward"]),
                         fmt_time(r["first_gradient"]), fmt_time(r["warm_forward"]), fmt_time(r["warm_gradient"])])
    text = (f"# Cold start\n\n{machine_summary(results['machine'])}\n\n"
            f"`import qdiff`: {fmt_time(results['import_qdiff_s'])} (median of 5 processes); "
            f"`qdiff warmup`: {fmt_time(results['warmup_s'])} once per machine (`pip install` runs it, so a fresh "
            "install starts in the `after warmup` row).\n"
            "`import device` is `import qdiff.devices` after `import pennylane` (lightning: its plugin, loaded "
            "by `qml.device`, so 0 here).\n\n" + table(headers, rows) + "\n")
    write_json(args.out / "cold_start.json", results)
    (args.out / "cold_start.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
