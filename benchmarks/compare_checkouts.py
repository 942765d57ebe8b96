"""Is a change slower? The same workloads timed on two git checkouts of qdiff, interleaved.

Each ref is checked out into a temporary git worktree; rounds alternate between them (before, after,
before, after, ...), each round a fresh process importing qdiff (and ``qdiff.devices``) from its
worktree and timing every case (median of ``--repeats`` calls after a warm-up). The report gives,
per case, the median over rounds of each ref and the ratio after / before (above 1: the change is
slower), and flags ratios above ``--tolerance``.

Cases: the QNode workload suite of ``workloads.py`` (qdiff.qubit only) and the native
StronglyEntanglingLayers forward pass and adjoint gradient of ``<sum Z>`` at n = 8, 14, 18, 20.

Usage::

    python benchmarks/compare_checkouts.py BEFORE_REF [AFTER_REF]     # AFTER_REF defaults to the work tree
    python benchmarks/compare_checkouts.py 2e960aa HEAD --rounds 3 --only vqe-lih sel-grad-n20

Writes ``results/compare_checkouts.json`` and ``.md`` (``--out``, ``--tag``). The first round of each
ref also compiles that checkout's kernels (into its worktree's ``__pycache__``) before timing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fmt_time, machine_info, machine_summary, table, write_json  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
SEL_SIZES = (8, 14, 18, 20)

PROBE = r"""
import json, os, statistics, sys, time
root, bench, repeats, only = sys.argv[1], sys.argv[2], int(sys.argv[3]), set(json.loads(sys.argv[4]))
sys.path.insert(0, root)
sys.path.insert(1, bench)
import workloads as W  # first: it clears OpenBLAS overrides before numpy loads
import numpy as np
import qdiff
qdiff.__path__.append(root)  # `devices/` of that checkout is qdiff.devices
assert os.path.dirname(qdiff.__file__) == os.path.join(root, "qdiff"), qdiff.__file__
import qdiff.devices  # noqa: F401

def sel(n, layers=2):
    c = qdiff.Circuit(n)
    p = c.params(3 * n * layers)
    for l in range(layers):
        for w in range(n):
            c.rot(p[3 * (l * n + w)], p[3 * (l * n + w) + 1], p[3 * (l * n + w) + 2], w)
        for w in range(n):
            c.cnot(w, (w + l + 1) % n)
    return c

cases = {}
for wl in W.workloads():
    cases[wl.name] = (lambda wl=wl: wl.build(W.QDIFF))
for n in SEL_SIZES:
    def native(n=n, grad=False):
        c = sel(n)
        h = sum((qdiff.Z(w) for w in range(1, n)), qdiff.Z(0))
        th = np.random.default_rng(n).uniform(0, 2 * np.pi, c.num_params)
        return (lambda: qdiff.grad(c, h, th)) if grad else (lambda: qdiff.execute(c, qdiff.Expval(h), th))
    cases[f"sel-forward-n{n}"] = native
    cases[f"sel-grad-n{n}"] = (lambda n=n: native(n, True))
out = {}
for name, build in cases.items():
    if only and name not in only:
        continue
    try:
        call = build()
        call()
        ts = []
        for _ in range(repeats):
            t = time.perf_counter(); call(); ts.append(time.perf_counter() - t)
        out[name] = statistics.median(ts)
    except Exception as exc:  # an old checkout may lack a feature: report, do not stop
        out[name] = f"{type(exc).__name__}: {exc}"[:200]
print("RESULT " + json.dumps(out))
""".replace("SEL_SIZES", repr(SEL_SIZES))


def _worktree(ref: str, where: Path) -> Path:
    path = where / ref.replace("/", "_")
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-f", str(path), ref], check=True,
                   capture_output=True)
    return path


def _round(root: Path, repeats: int, only: list[str], timeout: float) -> dict[str, float | str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, str(root), str(BENCH_DIR), str(repeats), json.dumps(only)],
                          capture_output=True, text=True, timeout=timeout, cwd=str(root),
                          env={**__import__("os").environ, "QDIFF_QUIET": "1"})
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"probe in {root} failed:\n{proc.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    """Time both checkouts in alternating rounds; write JSON and markdown."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before", help="git ref of the baseline")
    ap.add_argument("after", nargs="?", default=None, help="git ref of the change (default: the work tree)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per case per round")
    ap.add_argument("--only", nargs="+", default=[], help="case names")
    ap.add_argument("--tolerance", type=float, default=1.05, help="flag ratios above this")
    ap.add_argument("--round-timeout-s", type=float, default=900.0)
    ap.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    ap.add_argument("--tag", default="compare_checkouts")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="qdiff-compare-"))
    roots = {"before": _worktree(args.before, tmp)}
    roots["after"] = _worktree(args.after, tmp) if args.after else REPO
    samples: dict[str, dict[str, list]] = {"before": {}, "after": {}}
    try:
        for r in range(args.rounds):
            for side in ("before", "after"):
                res = _round(roots[side], args.repeats, args.only, args.round_timeout_s)
                for name, v in res.items():
                    samples[side].setdefault(name, []).append(v)
                print(f"round {r + 1}/{args.rounds} {side}: {len(res)} cases", flush=True)
    finally:
        for root in roots.values():
            if root != REPO:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(root)],
                               capture_output=True)
    rows, cases = [], []
    for name in samples["after"]:
        b = [v for v in samples["before"].get(name, []) if isinstance(v, float)]
        a = [v for v in samples["after"][name] if isinstance(v, float)]
        mb, ma = (statistics.median(b) if b else None), (statistics.median(a) if a else None)
        ratio = ma / mb if mb and ma else None
        flag = "SLOWER" if ratio is not None and ratio > args.tolerance else ""
        cases.append({"name": name, "before_s": mb, "after_s": ma, "ratio": ratio,
                      "before_samples": samples["before"].get(name), "after_samples": samples["after"][name]})
        rows.append([name, fmt_time(mb) if mb else "n/a", fmt_time(ma) if ma else "n/a",
                     f"{ratio:.2f}" if ratio else "-", flag])
    info = machine_info()
    text = (f"# {args.after or 'work tree'} against {args.before}\n\n{machine_summary(info)}\n\n"
            f"{args.rounds} interleaved rounds, median of {args.repeats} calls per round.\n\n"
            + table(["case", "before", "after", "after / before", ""], rows))
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / f"{args.tag}.json", {"machine": info, "before": args.before, "after": args.after,
                                               "cases": cases})
    (args.out / f"{args.tag}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
