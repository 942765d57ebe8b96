#!/usr/bin/env python
"""qdiff's benchmark suite: one command, every case, a table on the console, JSON + PNG + markdown files.

    python benchmarks/run_all.py              # the default sweep (n up to 20; under 10 min on 2 cores)
    python benchmarks/run_all.py --quick      # n <= 12, under 2 min
    python benchmarks/run_all.py --cases forward,targets --max-qubits 22 --big

Cases (StronglyEntanglingLayers + ``<sum_i Z_i>`` as one Hamiltonian, see ``circuits.py``):

- ``forward``: one simulation, L=2 and L=10: qdiff native ``qdiff.expval`` and the ``qdiff.qubit``,
  lightning.qubit and default.qubit QNodes.
- ``gradient``: the adjoint gradient w.r.t. all weights: ``qdiff.grad(..., method="adjoint")`` vs
  lightning.qubit adjoint, default.qubit adjoint and backprop QNodes.
- ``device``: ``diff_method="adjoint"`` QNode gradients on each device (n from 2); a broadcast batch of
  64 parameter sets (8 qubits, L=2); the n=4 L=2 single-call overhead, with the native API and Qulacs.
- ``targets``: the performance targets, each a ratio qdiff / reference with pass or fail.

Every point runs all implementations interleaved (round-robin, rotating order) and reports medians;
each implementation's first call is checked against the qdiff native result before anything is timed.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402 - must precede numpy: it removes OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE

common.unset_openblas_overrides()

import circuits as C  # noqa: E402
import numpy as np  # noqa: E402

import qdiff  # noqa: E402

CASES = ("forward", "gradient", "device", "targets")
CASE_WEIGHTS = {"forward": 3.0, "gradient": 2.0, "device": 2.0, "targets": 1.0}
"""Shares of --time-budget-s (forward has two layer counts and four implementations)."""
FORWARD_LAYERS = (2, 10)
GRADIENT_LAYERS = (2,)
DEVICE_LAYERS = (2,)
BATCH = (64, 8, 2)
"""Broadcast batch: 64 parameter sets, 8 qubits, L=2."""
TINY = (4, 2)
"""Overhead point: n=4, L=2."""
DQ_ADJOINT_MAX = 14
"""default.qubit adjoint densifies the Sum observable: a 2^n x 2^n matrix, 4 GiB at 14 qubits, 16 GiB at 15."""
DQ_BACKPROP_MAX = 18
"""default.qubit backprop keeps every intermediate state for autograd; seconds per call beyond 18 qubits."""
AGREE_ATOL = 1e-8
"""Every implementation's output must match qdiff native's to this tolerance."""

QDIFF_DEVICE = "qdiff.qubit"
NATIVE = "qdiff"

# Performance targets (issue 5): (key, label, row case, n, L, qdiff impl, reference impl, max ratio, needs --big).
# Ratio = median qdiff time / median reference time; a target passes when ratio <= max ratio.
# issue 5 targets (qdiff / reference, medians of interleaved runs)
TARGETS: list[tuple[str, str, str, int, int, str, str, float, bool]] = [
    ("grad_n20_L2", "device gradient n=20 L=2", "device", 20, 2, QDIFF_DEVICE, "lightning", 0.5, False),
    ("grad_n20_L10", "device gradient n=20 L=10", "device", 20, 10, QDIFF_DEVICE, "lightning", 0.5, False),
    ("grad_n24_L2", "device gradient n=24 L=2", "device", 24, 2, QDIFF_DEVICE, "lightning", 0.7, True),
    ("grad_n4_L2", "device gradient n=4 L=2 (overhead)", "device_tiny", 4, 2, QDIFF_DEVICE, "lightning", 1.0,
     False),
    ("native_vs_qulacs_n4", "native gradient n=4 L=2 vs Qulacs backprop", "device_tiny", 4, 2, NATIVE, "qulacs",
     1.0, False),
    ("batch64_n8_L2", "batch of 64 gradients n=8 L=2", "device_batch", 8, 2, QDIFF_DEVICE, "lightning", 0.2, False),
    ("forward_n20_L10", "forward n=20 L=10", "forward", 20, 10, QDIFF_DEVICE, "lightning", 0.7, False),
]


# ------------------------------------------------------------------------------------------------
# implementations: each factory returns a zero-argument callable, or a string saying why it is skipped
# ------------------------------------------------------------------------------------------------


class Suite:
    """Arguments, the qdiff.qubit availability note, the recorded rows and the skip bookkeeping."""

    def __init__(self, args: argparse.Namespace):
        import pennylane as qml

        self.qml = qml
        self.args = args
        self.rows: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.last: dict[tuple[str, int, str], tuple[int, float]] = {}
        self.t0 = time.monotonic()
        self.deadline = self.t0 + args.time_budget_s
        self.device_skip = self._probe_device()

    def _probe_device(self) -> str | None:
        try:
            self.qml.device(QDIFF_DEVICE, wires=2)
        except Exception as exc:  # noqa: BLE001 - any failure means "not available yet"
            why = f"skipped: qml.device('{QDIFF_DEVICE}') unavailable ({type(exc).__name__}: {str(exc)[:120]})"
            self.notes.append(f"{QDIFF_DEVICE} columns skipped: {why[9:]}")
            return why
        try:
            n, layers = 4, 2
            w = C.sel_weights(layers, n, seed=7)
            ref = qdiff.grad(C.native_sel(n, layers), C.native_hamiltonian(n), w.ravel(), method="adjoint")
            got = self._pl_grad(QDIFF_DEVICE, n, "adjoint")(w)
            err = float(np.abs(np.asarray(got).ravel() - ref).max())
        except Exception as exc:  # noqa: BLE001
            why = f"skipped: {QDIFF_DEVICE} adjoint gradient failed ({type(exc).__name__}: {str(exc)[:120]})"
            self.notes.append(why)
            return why
        if err > AGREE_ATOL:
            why = f"skipped: {QDIFF_DEVICE} adjoint gradient differs from qdiff native by {err:.2g}"
            self.notes.append(why)
            return why
        return None

    # -- PennyLane callables ----------------------------------------------------------------------
    def _pl_forward(self, device: str, n: int) -> Callable[[np.ndarray], Any]:
        return C.pl_qnode(self.qml.device(device, wires=n), n, diff_method=None)

    def _pl_grad(self, device: str, n: int, diff_method: str, batched: bool = False) -> Callable[[np.ndarray], Any]:
        from pennylane import numpy as pnp

        # a batch's per-set gradients are the non-zero blocks of its Jacobian: the gradient of the sum
        # has them all, and makes the device compute the batch Jacobian once (qml.jacobian would add
        # one autograd VJP pass per batch entry on top, the same overhead for every device). Devices
        # with adjoint VJPs (all three here) get device_vjp=True for the batch: one backward pass.
        extra = {"device_vjp": True} if batched and diff_method == "adjoint" else {}
        node = C.pl_qnode(self.qml.device(device, wires=n), n, diff_method=diff_method, **extra)
        g = self.qml.grad((lambda w: node(w).sum()) if batched else node)
        return lambda w: g(pnp.array(w, requires_grad=True))

    # -- the implementations of each case ------------------------------------------------------------
    def impls(self, case: str, n: int, layers: int) -> dict[str, Callable[[], Any] | str]:
        """The implementations timed at one point of ``case``, bound to that point's weights."""
        batch = BATCH[0] if case == "device_batch" else None
        w = C.sel_weights(layers, n, seed=n + layers, batch=batch)
        flat = w.reshape(batch, -1) if batch else w.ravel()
        circ, ham = C.native_sel(n, layers), C.native_hamiltonian(n)
        dev = self.device_skip
        out: dict[str, Callable[[], Any] | str] = {}

        def bind(f: Callable[[np.ndarray], Any], x: np.ndarray) -> Callable[[], Any]:
            return lambda: f(x)

        # fresh parameters on every call (the first one exact, for the result check), so the native
        # API's memo of the last binding never serves a timed call: a training loop never repeats them
        fresh = itertools.cycle([flat] + [flat + 1e-9 * (k + 1) for k in range(63)])

        def native(kind: str) -> Callable[[], Any]:
            if kind == "forward":
                return lambda: qdiff.expval(circ, ham, next(fresh))
            return lambda: qdiff.grad(circ, ham, next(fresh), method="adjoint")

        if case == "forward":
            out[NATIVE] = native("forward")
            out[QDIFF_DEVICE] = dev or bind(self._pl_forward(QDIFF_DEVICE, n), w)
            out["lightning"] = bind(self._pl_forward("lightning.qubit", n), w)
            out["default"] = bind(self._pl_forward("default.qubit", n), w)
        elif case == "gradient":
            out[NATIVE] = native("grad")
            out["lightning adjoint"] = bind(self._pl_grad("lightning.qubit", n, "adjoint"), w)
            out["default adjoint"] = self._dq_adjoint(n) or bind(self._pl_grad("default.qubit", n, "adjoint"), w)
            out["default backprop"] = self._dq_backprop(n) or bind(self._pl_grad("default.qubit", n, "backprop"), w)
        elif case in ("device", "device_batch", "device_tiny"):
            b = case == "device_batch"
            out[QDIFF_DEVICE] = dev or bind(self._pl_grad(QDIFF_DEVICE, n, "adjoint", b), w)
            out["lightning"] = bind(self._pl_grad("lightning.qubit", n, "adjoint", b), w)
            out["default"] = self._dq_adjoint(n) or bind(self._pl_grad("default.qubit", n, "adjoint", b), w)
            if case == "device_batch":
                out["default backprop"] = bind(self._pl_grad("default.qubit", n, "backprop", b), w)
            if case != "device":
                out[NATIVE] = native("grad")
            if case == "device_tiny":
                qc, qobs = C.qulacs_sel(n, layers, w), C.qulacs_hamiltonian(n)
                out["qulacs"] = lambda: C.qulacs_grad(qc, qobs, w)
        else:
            raise ValueError(case)
        return out

    @staticmethod
    def _dq_adjoint(n: int) -> str | None:
        if n > DQ_ADJOINT_MAX:
            gib = 2 ** (2 * n) * 16 / 2**30
            return f"skipped: default.qubit adjoint densifies Sum: 2^n x 2^n matrix ({gib:.0f} GiB)"
        return None

    @staticmethod
    def _dq_backprop(n: int) -> str | None:
        return f"skipped: default.qubit backprop above {DQ_BACKPROP_MAX} qubits (suite limit)" if n > DQ_BACKPROP_MAX \
            else None

    # -- measuring one point ------------------------------------------------------------------------
    def _predicted_skip(self, case: str, layers: int, impl: str, n: int, limit: float) -> str | None:
        prev = self.last.get((case, layers, impl))
        if prev is None:
            return None
        pn, pt = prev
        est = pt * 2.0 ** (n - pn)
        if est > limit:
            return f"skipped: est. {est:.3g} s/call from {pt:.3g} s at n={pn} (> {limit:g} s)"
        return None

    def start_case(self, case: str, cases_left: list[str]) -> None:
        """Give ``case`` its share (by ``CASE_WEIGHTS``) of the time budget left to ``cases_left``."""
        now = time.monotonic()
        share = CASE_WEIGHTS[case] / sum(CASE_WEIGHTS[c] for c in cases_left)
        self.deadline = now + max(0.0, self.t0 + self.args.time_budget_s - now) * share

    def warm_up(self) -> None:
        """Call every implementation once at n=4 (numba compilation, PennyLane caches), untimed."""
        for case in ("forward", "gradient", "device_tiny"):
            common.interleaved(self.impls(case, *TINY), 0, call_timeout_s=self.args.call_timeout_s)

    def point(self, case: str, n: int, layers: int, only: tuple[str, ...] | None = None,
              call_limit: float | None = None, repeats: int | None = None,
              budgeted: bool = True) -> dict[str, common.Measurement]:
        """Measure one point (all implementations interleaved), check they agree, record the rows.

        An implementation is skipped when its call is estimated (from a smaller n) above ``call_limit``
        (default ``2 * --max-call-s``), or, if ``budgeted``, when the case's share of ``--time-budget-s``
        is spent. Each call is stopped after ``max(call_limit, --call-timeout-s)``.
        """
        limit = 2 * self.args.max_call_s if call_limit is None else call_limit
        timeout = max(limit, self.args.call_timeout_s)
        over_budget = budgeted and time.monotonic() > self.deadline
        impls = self.impls(case, n, layers)
        if only is not None:
            impls = {k: v for k, v in impls.items() if k in only}
        for name, fn in list(impls.items()):
            if isinstance(fn, str):
                continue
            if over_budget:
                impls[name] = "skipped: this case's share of --time-budget-s is spent"
            elif skip := self._predicted_skip(case, layers, name, n, limit):
                impls[name] = skip
        res = common.interleaved(impls, repeats or self.args.repeats, self.args.point_budget_s, timeout,
                                 self.args.verbose)
        self._check_agreement(case, n, res)
        for name, m in res.items():
            if m.ok:
                self.last[(case, layers, name)] = (n, m.median_s)
            elif m.status.startswith("timeout"):
                self.last[(case, layers, name)] = (n, timeout)
            row = dict(case=case, n=n, layers=layers, batch=BATCH[0] if case == "device_batch" else None,
                       **m.as_dict())
            self.rows = [r for r in self.rows if (r["case"], r["n"], r["layers"], r["impl"]) != (case, n, layers, name)]
            self.rows.append(row)
        status = "  ".join(f"{k}={common.fmt_time(m.median_s) if m.ok else m.status[:40]}" for k, m in res.items())
        print(f"  [{case} n={n} L={layers}] {status}", flush=True)
        return res

    def _check_agreement(self, case: str, n: int, res: dict[str, common.Measurement]) -> None:
        """Each warm-up result against qdiff native's (or the first one's); a mismatch becomes the status."""
        vals = {k: np.asarray(m.value, dtype=float).reshape(-1) for k, m in res.items() if m.ok}
        ref_name = NATIVE if NATIVE in vals else next(iter(vals), None)
        if ref_name is None:
            return
        ref = vals[ref_name]
        for k, v in vals.items():
            err = float(np.abs(v - ref).max()) if v.shape == ref.shape else float("inf")
            if err > AGREE_ATOL * max(1.0, n):
                res[k].status = f"failed: result differs from {ref_name} by {err:.3g}"
                print(f"  WARNING {case} n={n}: {k} {res[k].status}", flush=True)

    def find(self, case: str, n: int, layers: int, impl: str) -> dict[str, Any] | None:
        for r in self.rows:
            if (r["case"], r["n"], r["layers"], r["impl"]) == (case, n, layers, impl):
                return r
        return None


# ------------------------------------------------------------------------------------------------
# cases
# ------------------------------------------------------------------------------------------------


def qubit_range(lo: int, args: argparse.Namespace) -> list[int]:
    return list(range(lo, args.max_qubits + 1, args.step))


def run_forward(s: Suite) -> None:
    for n in qubit_range(4, s.args):
        for layers in FORWARD_LAYERS:
            s.point("forward", n, layers)


def run_gradient(s: Suite) -> None:
    for n in qubit_range(4, s.args):
        for layers in GRADIENT_LAYERS:
            s.point("gradient", n, layers)


def run_device(s: Suite) -> None:
    C.check_qulacs_gradient(*TINY)
    s.point("device_tiny", *TINY, repeats=max(s.args.repeats, 7), budgeted=False)
    for n in qubit_range(2, s.args):
        for layers in DEVICE_LAYERS:
            s.point("device", n, layers)
    s.point("device_batch", BATCH[1], BATCH[2], budgeted=False)  # one point, bounded by the call timeout


def run_targets(s: Suite) -> list[dict[str, Any]]:
    """Look up (or measure) each target point; ratio = qdiff / reference, pass when <= the target."""
    out = []
    for key, label, case, n, layers, ours, ref, max_ratio, big in TARGETS:
        row: dict[str, Any] = dict(key=key, label=label, case=case, n=n, layers=layers, target_ratio=max_ratio,
                                   reference=ref)
        impl, ref_impl = ours, ref
        if ours == QDIFF_DEVICE and s.device_skip:
            impl, row["note"] = NATIVE, f"{QDIFF_DEVICE} unavailable: the native API stands in"
            if case == "device":  # the native gradient lives in the gradient case
                case, ref_impl = "gradient", "lightning adjoint"
        row.update(qdiff_impl=impl, case=case)
        a, b = s.find(case, n, layers, impl), s.find(case, n, layers, ref_impl)
        measured = a is not None and b is not None and a["median_s"] is not None and b["median_s"] is not None
        if not measured:
            why = None
            if big and not s.args.big:
                why = "not run (needs --big)"
            elif n > s.args.max_qubits and not big and case in ("forward", "gradient", "device"):
                why = f"not run (--max-qubits {s.args.max_qubits})"
            elif s.deadline - time.monotonic() > 0:
                # measure just this pair, if an estimated call fits --target-max-s and the time left
                left = s.deadline - time.monotonic()
                s.point(case, n, layers, only=(impl, ref_impl), call_limit=min(s.args.target_max_s, left),
                        repeats=min(s.args.repeats, 3), budgeted=False)
                a, b = s.find(case, n, layers, impl), s.find(case, n, layers, ref_impl)
            elif any(r is None or r["status"].startswith("skipped") for r in (a, b)):
                why = "not run (time budget spent)"  # else it ran and failed: the status says how
            if why:
                row.update(status=why)
                out.append(row)
                continue
        ta, tb = (a or {}).get("median_s"), (b or {}).get("median_s")
        row.update(qdiff_s=ta, reference_s=tb)
        if ta is None or tb is None:
            why = (a or {}).get("status") if ta is None else (b or {}).get("status")
            row.update(status=f"FAIL (no time: {why})", ratio=None)
        else:
            row.update(ratio=ta / tb, status="pass" if ta / tb <= max_ratio else "FAIL")
        out.append(row)
    return out


# ------------------------------------------------------------------------------------------------
# reporting
# ------------------------------------------------------------------------------------------------

CASE_TITLES = {
    "forward": "Forward: one simulation + <sum Z_i> (Hamiltonian)",
    "gradient": "Gradient w.r.t. all weights: qdiff.grad(adjoint) vs PennyLane QNodes",
    "device": "Device: QNode diff_method='adjoint' gradient",
    "device_tiny": "Overhead: one gradient call, n=4 L=2",
    "device_batch": "Broadcast batch: 64 parameter sets, n=8 L=2, per-set gradients",
}


def case_tables(rows: list[dict[str, Any]], case: str) -> list[str]:
    """Markdown tables (one per layer count) of median times and qdiff/other ratios for ``case``."""
    out = []
    for layers in sorted({r["layers"] for r in rows if r["case"] == case}):
        rs = [r for r in rows if r["case"] == case and r["layers"] == layers]
        impls = list(dict.fromkeys(r["impl"] for r in rs))
        ours = [i for i in impls if i in (NATIVE, QDIFF_DEVICE)]
        others = [i for i in impls if i not in ours]
        pairs = [(a, b) for a in ours for b in others] + ([(QDIFF_DEVICE, NATIVE)] if len(ours) == 2 else [])
        headers = ["n", *impls, *[f"{a} / {b}" for a, b in pairs]]
        body = []
        skipped: dict[str, str] = {}
        for n in sorted({r["n"] for r in rs}):
            by = {r["impl"]: r for r in rs if r["n"] == n}
            cells = [str(n)]
            for i in impls:
                r = by.get(i)
                if r is None:
                    cells.append("")
                elif r["median_s"] is None:
                    tag = r["status"].split(":")[0]
                    cells.append(tag)
                    skipped.setdefault(f"{i}: {r['status']}", str(n))
                else:
                    cells.append(common.fmt_time(r["median_s"]))
            for a, b in pairs:
                ta, tb = (by.get(a) or {}).get("median_s"), (by.get(b) or {}).get("median_s")
                cells.append(common.fmt_ratio(ta, tb))
            body.append(cells)
        title = CASE_TITLES.get(case, case) + ("" if case in ("device_tiny", "device_batch") else f", L={layers}")
        notes = "".join(f"\n- n={n}: {why}" for why, n in skipped.items())
        out.append(f"### {title}\n\n{common.table(headers, body)}\n{notes}\n")
    return out


def targets_table(targets: list[dict[str, Any]]) -> str:
    headers = ["target", "qdiff impl", "qdiff", "reference", "ref time", "ratio", "target ratio", "result"]
    body = [[t["label"], t.get("qdiff_impl", ""), common.fmt_time(t.get("qdiff_s")), t["reference"],
             common.fmt_time(t.get("reference_s")), common.fmt_ratio(t.get("qdiff_s"), t.get("reference_s")),
             f"<= {t['target_ratio']:g}x", t["status"]] for t in targets]
    notes = "".join(f"\n- {t['label']}: {t['note']}" for t in targets if t.get("note"))
    title = "### Performance targets (ratio = qdiff / reference; pass when <= target)"
    return f"{title}\n\n{common.table(headers, body)}\n{notes}\n"


def plots(s: Suite, out: Path, tag: str) -> list[str]:
    files = []

    def series(case: str, layers: int) -> dict[str, list[tuple[int, float]]]:
        d: dict[str, list[tuple[int, float]]] = {}
        for r in s.rows:
            if r["case"] == case and r["layers"] == layers and r["median_s"] is not None:
                d.setdefault(r["impl"], []).append((r["n"], r["median_s"]))
        return d

    specs = [("forward", FORWARD_LAYERS), ("gradient", GRADIENT_LAYERS), ("device", DEVICE_LAYERS)]
    for case, layer_set in specs:
        panels = [(f"L={layers}", series(case, layers)) for layers in layer_set if series(case, layers)]
        bars = None
        if case == "device":
            vals = {f"{'tiny n=4' if r['case'] == 'device_tiny' else 'batch64 n=8'}: {r['impl']}": r["median_s"]
                    for r in s.rows if r["case"] in ("device_tiny", "device_batch") and r["median_s"] is not None}
            bars = ("single gradient n=4 L=2 / batch of 64 n=8 L=2", vals) if vals else None
        if not panels and bars is None:
            continue
        path = out / f"{tag}_{case}.png"
        common.plot_scaling(path, f"qdiff benchmark: {CASE_TITLES[case]}", panels, bars)
        files.append(str(path))
    return files


def save(s: Suite, out: Path, tag: str, meta: dict[str, Any], targets: list[dict[str, Any]], t0: float,
         final: bool) -> None:
    data = dict(meta=meta, args=vars(s.args), notes=s.notes, elapsed_s=round(time.monotonic() - t0, 1),
                complete=final, rows=s.rows, targets=targets)
    common.write_json(out / f"{tag}.json", data)
    if not final:
        return
    md = [f"# qdiff benchmarks ({tag})\n", "```", common.machine_summary(meta), "```\n"]
    md += [f"- {n}" for n in s.notes] + ([""] if s.notes else [])
    for case in ("forward", "gradient", "device", "device_tiny", "device_batch"):
        md += case_tables(s.rows, case)
    if targets:
        md.append(targets_table(targets))
    md.append(f"Elapsed {data['elapsed_s']} s. Times are medians of interleaved repeats; ratio < 1 means qdiff is "
              "faster.\n")
    text = "\n".join(md)
    (out / f"{tag}.md").write_text(text)
    print("\n" + text)
    data["plots"] = plots(s, out, tag)
    common.write_json(out / f"{tag}.json", data)
    print("wrote", out / f"{tag}.json", out / f"{tag}.md", *data["plots"])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="n <= 12, fewer repeats: under 2 minutes")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    p.add_argument("--max-qubits", type=int, default=None, help="largest n of the sweeps (default 20; quick 12)")
    p.add_argument("--step", type=int, default=2, help="qubit step of the sweeps (default 2)")
    p.add_argument("--repeats", type=int, default=None, help="timed samples per implementation (default 5; quick 3)")
    p.add_argument("--max-call-s", type=float, default=None,
                   help="skip an implementation at a larger n when its estimated call exceeds 2x this "
                        "(default 8; quick 2)")
    p.add_argument("--point-budget-s", type=float, default=None,
                   help="seconds per implementation per point; fewer repeats beyond it (default 10; quick 3)")
    p.add_argument("--time-budget-s", type=float, default=None,
                   help="seconds for all cases, shared by CASE_WEIGHTS; a case past its share skips its remaining "
                        "points (default 420; quick 60)")
    p.add_argument("--call-timeout-s", type=float, default=None,
                   help="stop a call of the sweeps after this many seconds (default 30; quick 8)")
    p.add_argument("--target-max-s", type=float, default=None,
                   help="targets measure a missing point unless one call is estimated above this; also its "
                        "call timeout (default 120; quick 10)")
    p.add_argument("--big", action="store_true", help="also the n=24 L=2 target (256 MiB per state; slow)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"), help="output folder")
    p.add_argument("--tag", default=None, help="output file stem (default: 'quick' or 'default')")
    p.add_argument("--verbose", action="store_true", help="print tracebacks of failing implementations")
    a = p.parse_args(argv)
    q = a.quick
    for name, full, quick in (("max_qubits", 20, 12), ("repeats", 5, 3), ("max_call_s", 8.0, 2.0),
                              ("point_budget_s", 10.0, 3.0), ("time_budget_s", 420.0, 60.0),
                              ("call_timeout_s", 30.0, 8.0), ("target_max_s", 120.0, 10.0)):
        if getattr(a, name) is None:
            setattr(a, name, quick if q else full)
    a.tag = a.tag or ("quick" if q else "default")
    a.cases = [c.strip() for c in a.cases.split(",") if c.strip()]
    if bad := set(a.cases) - set(CASES):
        p.error(f"unknown case(s) {sorted(bad)}; choose from {CASES}")
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.monotonic()
    out = Path(args.out)
    meta = common.machine_info()
    print(common.machine_summary(meta), flush=True)
    for n, layers in ((1, 2), (2, 2), (5, 3), (4, 10), (8, 2)):
        C.check_same_expval(n, layers, seed=n)
    C.check_same_grad(6, 2)
    s = Suite(args)
    for note in s.notes:
        print("note:", note)
    s.warm_up()
    targets: list[dict[str, Any]] = []
    runners = {"forward": run_forward, "gradient": run_gradient, "device": run_device}
    for i, case in enumerate(args.cases):
        print(f"== {case}", flush=True)
        s.start_case(case, args.cases[i:])
        if case == "targets":
            targets = run_targets(s)
        else:
            runners[case](s)
        save(s, out, args.tag, meta, targets, t0, final=False)
    meta["load_avg_end"] = list(os.getloadavg())
    save(s, out, args.tag, meta, targets, t0, final=True)
    print(f"total {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
