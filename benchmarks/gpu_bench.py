#!/usr/bin/env python
"""GPU benchmark of qdiff's CuPy backend (run by gpu_check.sh on a machine with an NVIDIA GPU).

    python benchmarks/gpu_bench.py --out results.json [--budget 300] [--quick]

Sections, each appended to the JSON as soon as it is measured (a run cut short keeps what it has):

- ``device``: GPU, memory, CuPy/CUDA versions;
- ``bandwidth``: a device-to-device copy of a 2^28 complex64 and complex128 array (bytes read + written
  per second), the yardstick for the memory-bound gate kernels;
- ``per_gate``: every backend primitive at n=28 (complex64 and complex128), its time and effective
  bandwidth as a fraction of the copy bandwidth;
- ``sel``: forward (``qdiff.expval``) and adjoint gradient (``qdiff.jacobian(..., method="adjoint")``) of a
  StronglyEntanglingLayers circuit with ``<sum_i Z_i>``, n = 16..30, cupy vs qdiff's numpy backend (numpy
  only up to ``--numpy-max-qubits``; results compared where both ran);
- ``fused_pass``: one fused pass of the ``cupy-blocked`` executor (the first of SEL L=2 at ``--gate-qubits``,
  forward and adjoint launch) as effective bandwidth against the copy bandwidth;
- ``fused``: SEL L=2 forward and adjoint gradient (``run_forward``/``run_sweep``) on the CuPy backend with
  the ``cupy-blocked`` executor against the per-gate ``reference`` executor, n = 16..28 (``--fused-*``);
- ``batched``: adjoint gradients for 1024 parameter sets at n = 8..14, one batched call vs a loop of single
  circuits (the loop is timed on a subset and scaled), as gradients per second.

Within ``--budget`` seconds: a case whose projected time does not fit is recorded as skipped. Needs no
PennyLane; the circuit is built with the native qdiff API, the same gate sequence as
``benchmarks/circuits.py::native_sel``.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import qdiff  # noqa: E402

RESULTS: dict[str, Any] = {"errors": []}
T0 = time.perf_counter()


# ------------------------------------------------------------------------------------------------
# plumbing


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {msg}", flush=True)


def save(path: Path) -> None:
    RESULTS["elapsed_s"] = round(time.perf_counter() - T0, 2)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(RESULTS, indent=1, default=str))
    tmp.replace(path)


class Budget:
    """Wall-clock budget: ``fits(seconds)`` says whether a case projected to take that long still fits."""

    def __init__(self, seconds: float):
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()

    def fits(self, projected: float) -> bool:
        return projected < self.left()


def sync() -> None:
    import cupy

    cupy.cuda.Device().synchronize()


def time_gpu(fn: Any, reps: int = 5, warmup: int = 1) -> dict[str, float]:
    """Median/min seconds per call of a GPU function, with CUDA events (one per call)."""
    import cupy

    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(reps):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, stop) / 1e3)
    return {"median_s": float(np.median(times)), "min_s": float(np.min(times)), "reps": reps}


def time_wall(fn: Any, reps: int = 3, warmup: int = 1) -> tuple[dict[str, float], Any]:
    """Median/min wall seconds of a call that returns host data (so it is synchronous), and its result."""
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return {"median_s": float(np.median(times)), "min_s": float(np.min(times)), "reps": reps}, out


def record_error(section: str, case: Any, exc: BaseException) -> None:
    RESULTS["errors"].append({"section": section, "case": case, "error": f"{type(exc).__name__}: {exc}",
                              "traceback": traceback.format_exc(limit=6)})
    log(f"  ERROR {section} {case}: {type(exc).__name__}: {exc}")


# ------------------------------------------------------------------------------------------------
# workload: StronglyEntanglingLayers with <sum_i Z_i>, native qdiff API


def sel_circuit(n_wires: int, n_layers: int) -> qdiff.Circuit:
    """Per layer l: Rot(p, p, p) on every wire, then CNOT(i, (i + r) % n) with r = (l % (n - 1)) + 1."""
    c = qdiff.Circuit(n_wires)
    p = c.params(3 * n_layers * n_wires)
    for layer in range(n_layers):
        for i in range(n_wires):
            k = 3 * (layer * n_wires + i)
            c.rot(p[k], p[k + 1], p[k + 2], wires=i)
        if n_wires > 1:
            r = (layer % (n_wires - 1)) + 1
            for i in range(n_wires):
                c.cnot(i, (i + r) % n_wires)
    return c


def hamiltonian(n_wires: int) -> Any:
    """``sum_i Z_i`` as one LinearCombination."""
    return sum((qdiff.Z(i) for i in range(1, n_wires)), qdiff.Z(0) * 1.0)


def weights(n_wires: int, n_layers: int, batch: int | None = None, seed: int = 0) -> np.ndarray:
    p = 3 * n_layers * n_wires
    shape = (p,) if batch is None else (batch, p)
    return np.random.default_rng(seed).uniform(0.0, 2 * np.pi, size=shape)


def forward(c: qdiff.Circuit, h: Any, theta: np.ndarray, backend: str, dtype: str) -> np.ndarray:
    return np.asarray(qdiff.expval(c, h, theta, backend=backend, dtype=dtype))


def gradient(c: qdiff.Circuit, h: Any, theta: np.ndarray, backend: str, dtype: str) -> np.ndarray:
    return np.asarray(qdiff.jacobian(c, qdiff.Expval(h), theta, method="adjoint", backend=backend, dtype=dtype))


# ------------------------------------------------------------------------------------------------
# sections


def device_info() -> dict[str, Any]:
    import cupy

    dev = cupy.cuda.Device()
    props = cupy.cuda.runtime.getDeviceProperties(dev.id)
    free, total = cupy.cuda.runtime.memGetInfo()
    info = {
        "name": props["name"].decode() if isinstance(props["name"], bytes) else props["name"],
        "compute_capability": dev.compute_capability,
        "multiprocessors": props.get("multiProcessorCount"),
        "memory_total_gib": total / 2**30, "memory_free_gib": free / 2**30,
        "cupy": cupy.__version__, "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
        "cuda_driver": cupy.cuda.runtime.driverGetVersion(), "numpy": np.__version__,
        "qdiff": qdiff.__version__, "python": platform.python_version(), "host": platform.node(),
    }
    log(f"device: {info['name']} cc {info['compute_capability']}, {info['memory_total_gib']:.1f} GiB, "
        f"CuPy {info['cupy']}")
    return info


def bandwidth(n: int) -> dict[str, Any]:
    import cupy

    out = {}
    for dt in ("complex64", "complex128"):
        x = cupy.ones(2**n, dtype=dt)
        y = cupy.empty_like(x)
        t = time_gpu(lambda x=x, y=y: cupy.copyto(y, x), reps=10, warmup=2)
        gbs = 2 * x.nbytes / t["median_s"] / 1e9
        out[dt] = {**t, "bytes": x.nbytes, "GBps_read_plus_write": gbs}
        log(f"copy 2^{n} {dt}: {t['median_s'] * 1e3:.2f} ms, {gbs:.0f} GB/s (read + write)")
        del x, y
        cupy.get_default_memory_pool().free_all_blocks()
    return out


def uniform_state(be: Any, n: int, dtype: str, copies: float) -> Any:
    """The uniform superposition on ``n`` qubits, after checking that ``copies`` states of it fit."""
    be.check_memory(n, 1, dtype, copies=copies)
    state = be.zero_state(n, 1, dtype)
    state[:] = 1 / math.sqrt(2**n)
    return state


def gate_cases(be: Any, state: Any, other: Any, n: int) -> list[tuple[str, Any, int]]:
    """(name, call, bytes it must move) for every primitive on ``state`` (``other``: a second state)."""
    rng = np.random.default_rng(0)
    rz = np.array([np.exp(-0.15j), np.exp(0.15j)])
    rot = np.array([[0.6, -0.8j], [-0.8j, 0.6]])
    u4 = np.linalg.qr(rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4)))[0]
    u8 = np.linalg.qr(rng.normal(size=(8, 8)) + 1j * rng.normal(size=(8, 8)))[0]
    sb = state.nbytes
    hi, mid, lo = 0, n // 2, n - 1
    return [
        ("apply_matrix 1q wire 0 (highest bit)", lambda: be.apply_matrix(state, rot, (hi,)), 2 * sb),
        (f"apply_matrix 1q wire {mid}", lambda: be.apply_matrix(state, rot, (mid,)), 2 * sb),
        (f"apply_matrix 1q wire {lo} (lowest bit)", lambda: be.apply_matrix(state, rot, (lo,)), 2 * sb),
        ("apply_matrix 1q, 1 control", lambda: be.apply_matrix(state, rot, (mid,), (hi,), (1,)), sb),
        ("apply_matrix 2q wires (0, 1)", lambda: be.apply_matrix(state, u4, (0, 1)), 2 * sb),
        (f"apply_matrix 2q wires ({lo}, {mid})", lambda: be.apply_matrix(state, u4, (lo, mid)), 2 * sb),
        ("apply_matrix 3q (shared memory)", lambda: be.apply_matrix(state, u8, (1, mid, lo)), 2 * sb),
        ("apply_diagonal 1q (RZ)", lambda: be.apply_diagonal(state, rz, (mid,)), 2 * sb),
        ("apply_permutation CNOT (swap)", lambda: be.apply_permutation(state, (1, 0), (lo,), (mid,), (1,)), sb),
        ("apply_permutation SWAP (shared memory)", lambda: be.apply_permutation(state, (0, 2, 1, 3), (2, lo)), sb),
        ("apply_pauli_rotation XYZ", lambda: be.apply_pauli_rotation(state, 0.3, {0: "X", mid: "Y", lo: "Z"}),
         2 * sb),
        ("apply_pauli XZ (out of place)", lambda: be.apply_pauli(state, {0: "X", lo: "Z"}, out=other), 2 * sb),
        ("expval_pauli ZZ", lambda: be.expval_pauli(state, {0: "Z", lo: "Z"}), sb),
        ("expval_pauli XY", lambda: be.expval_pauli(state, {0: "X", lo: "Y"}), sb),
        ("inner", lambda: be.inner(other, state), 2 * sb),
        ("matrix_element 1q", lambda: be.matrix_element(other, state, rot, (mid,)), 2 * sb),
        ("reduced_outer 1q", lambda: be.reduced_outer(other, state, (mid,)), 2 * sb),
        ("reduced_outer 2q, 1 control", lambda: be.reduced_outer(other, state, (1, lo), (0,), (1,)), sb),
        ("probs (all wires)", lambda: be.probs(state, None), sb + sb // 2),
        ("probs (3 wires)", lambda: be.probs(state, (0, mid, lo)), sb),
    ]


def per_gate(n: int, copy_bw: dict[str, Any]) -> list[dict[str, Any]]:
    """Each primitive on a 2^n state: time, effective bandwidth (bytes it must move), fraction of copy."""
    import cupy

    be = qdiff.get_backend("cupy")
    rows = []
    for dt in ("complex64", "complex128"):
        try:
            state = uniform_state(be, n, dt, copies=3.2)
            cases = gate_cases(be, state, state.copy(), n)
        except Exception as exc:
            record_error("per_gate", {"n": n, "dtype": dt}, exc)
            continue
        ref = copy_bw.get(dt, {}).get("GBps_read_plus_write")
        for name, fn, nbytes in cases:
            try:
                t = time_gpu(fn, reps=5, warmup=1)
            except Exception as exc:
                record_error("per_gate", {"n": n, "dtype": dt, "case": name}, exc)
                continue
            gbs = nbytes / t["median_s"] / 1e9
            rows.append({"n": n, "dtype": dt, "case": name, **t, "bytes_moved": nbytes, "GBps": gbs,
                         "fraction_of_copy": gbs / ref if ref else None})
            log(f"  n={n} {dt:10s} {name:42s} {t['median_s'] * 1e3:8.3f} ms  {gbs:6.0f} GB/s"
                + (f"  {gbs / ref:5.0%} of copy" if ref else ""))
        del cases, state
        cupy.get_default_memory_pool().free_all_blocks()
    return rows


def sel_sweep(qubits: list[int], layers: int, dtypes: list[str], numpy_max: int, budget: Budget,
              out: Path) -> None:
    rows = RESULTS.setdefault("sel", [])
    last: dict[tuple[str, str, str], tuple[int, float]] = {}
    for dt in dtypes:
        for n in qubits:
            c, h, theta = sel_circuit(n, layers), hamiltonian(n), weights(n, layers)
            vals: dict[str, Any] = {}
            for be_name in ("cupy", "numpy"):
                if be_name == "numpy" and n > numpy_max:
                    continue
                for what, fn in (("forward", forward), ("adjoint_gradient", gradient)):
                    key = (dt, be_name, what)
                    # projected time: last measurement at this key, doubled per extra qubit (x 3 for warm-up)
                    if key in last:
                        n0, t0 = last[key]
                        projected = 3 * t0 * 2.1 ** (n - n0)
                        if not budget.fits(projected):
                            rows.append({"n": n, "layers": layers, "dtype": dt, "backend": be_name, "what": what,
                                         "skipped": f"projected {projected:.0f} s > budget left {budget.left():.0f} s"})
                            log(f"  skip n={n} {dt} {be_name} {what}: projected {projected:.0f} s")
                            continue
                    try:
                        reps = 3 if n <= 24 else 1
                        t, val = time_wall(lambda fn=fn, args=(c, h, theta, be_name, dt): fn(*args), reps=reps)
                    except Exception as exc:
                        record_error("sel", {"n": n, "dtype": dt, "backend": be_name, "what": what}, exc)
                        continue
                    last[key] = (n, t["median_s"])
                    vals[(be_name, what)] = val
                    row = {"n": n, "layers": layers, "dtype": dt, "backend": be_name, "what": what,
                           "params": c.num_params, "gates": len(c), **t}
                    rows.append(row)
                    log(f"  SEL n={n:2d} L={layers} {dt:10s} {be_name:5s} {what:16s} {t['median_s']:9.4f} s")
            for what in ("forward", "adjoint_gradient"):
                a, b = vals.get(("cupy", what)), vals.get(("numpy", what))
                if a is not None and b is not None:
                    err = float(np.max(np.abs(a - b)))
                    ta = next(r["median_s"] for r in rows if r.get("n") == n and r.get("dtype") == dt
                              and r.get("backend") == "cupy" and r.get("what") == what and "median_s" in r)
                    tb = next(r["median_s"] for r in rows if r.get("n") == n and r.get("dtype") == dt
                              and r.get("backend") == "numpy" and r.get("what") == what and "median_s" in r)
                    RESULTS.setdefault("sel_compare", []).append(
                        {"n": n, "dtype": dt, "what": what, "max_abs_diff_cupy_vs_numpy": err, "speedup": tb / ta})
                    log(f"    cupy vs numpy {what}: max |diff| {err:.2e}, speedup x{tb / ta:.1f}")
            save(out)


def _executor_forward(be: Any, program: Any, theta: np.ndarray, n: int, dt: str, executor: str) -> Any:
    from qdiff.engine import run_forward

    state = be.zero_state(n, 1, dt)
    run_forward(be, program, theta, state, executor=executor)
    return state


def _executor_state(be: Any, program: Any, theta: np.ndarray, n: int, dt: str, executor: str) -> np.ndarray:
    """The final state on the host (so the call is synchronous)."""
    return be.to_numpy(_executor_forward(be, program, theta, n, dt, executor))


def _executor_gradient(be: Any, program: Any, theta: np.ndarray, h: Any, n: int, dt: str, executor: str) -> Any:
    """Forward pass, bra ``H|psi>`` and the adjoint sweep with ``executor`` (host gradient, so synchronous)."""
    from qdiff.engine import run_sweep
    from qdiff.observables import apply_observable

    state = _executor_forward(be, program, theta, n, dt, executor)
    bra = apply_observable(be, state, h)
    grad = be.xp.zeros((1, program.circuit.num_params), dtype=float)
    run_sweep(be, program, theta, bra, state, grad, executor=executor)
    return be.to_numpy(grad)


def fused_pass(n: int, layers: int, copy_bw: dict[str, Any]) -> list[dict[str, Any]]:
    """The first fused pass of SEL at ``n`` qubits, forward and adjoint launch alone: time and bandwidth."""
    import cupy

    from qdiff.backends.cuda import passes
    from qdiff.engine import gpu as gpu_executor
    from qdiff.program import program_of

    be = qdiff.get_backend("cupy")
    c = sel_circuit(n, layers)
    program, theta = program_of(c), weights(n, layers)
    rows = []
    for dt in ("complex64", "complex128"):
        try:
            state = uniform_state(be, n, dt, copies=2.5)
            ref = copy_bw.get(dt, {}).get("GBps_read_plus_write")
            for adjoint in (False, True):
                itemsize = np.dtype(dt).itemsize
                plan = passes.plan_of(program, adjoint, passes.block_bits(n, itemsize, 2 if adjoint else 1))
                kernels = program.kernels(theta, inverse=adjoint)
                packed = plan.pack(gpu_executor.dense_matrices(plan, kernels), 1, dt)
                mats, ops = be.asarray(packed), plan.device_ops(be.xp)
                fp = next(p for p in plan.passes if p.blocked)
                if adjoint:
                    other = state.copy()
                    call = plan.adjoint_call(fp, 1, dt, 0)
                    partial = cupy.zeros(plan.partial_shape(call, 1), dtype=np.float64)
                    bound = {"bra": other, "ket": state, "partial": partial}
                    nbytes = 4 * state.nbytes
                else:
                    call = plan.forward_call(fp, 1, dt, 0)
                    bound = {"state": state}
                    nbytes = 2 * state.nbytes
                t = time_gpu(functools.partial(be.launch, call, dt, ops=plan.op_view(ops, fp), mats=mats, **bound),
                             reps=5, warmup=1)
                gbs = nbytes / t["median_s"] / 1e9
                what = "adjoint" if adjoint else "forward"
                rows.append({"n": n, "dtype": dt, "what": what, "ops_in_pass": len(fp.items), "chunk_bits": plan.m,
                             "passes": len(plan.passes), "threads_per_block": call.block, "grid": call.grid,
                             "shared_bytes": call.shared_mem, **t, "bytes_moved": nbytes, "GBps": gbs,
                             "fraction_of_copy": gbs / ref if ref else None})
                log(f"  fused pass n={n} {dt:10s} {what:8s} {len(fp.items):3d} ops {t['median_s'] * 1e3:8.3f} ms "
                    f"{gbs:6.0f} GB/s" + (f"  {gbs / ref:5.0%} of copy" if ref else ""))
                bound.clear()
        except Exception as exc:
            record_error("fused_pass", {"n": n, "dtype": dt}, exc)
        state = other = None
        cupy.get_default_memory_pool().free_all_blocks()
    return rows


def fused_sweep(qubits: list[int], layers: int, dtypes: list[str], budget: Budget, out: Path) -> None:
    """SEL forward and adjoint gradient with the cupy-blocked executor vs the per-gate reference executor."""
    from qdiff.program import program_of

    be = qdiff.get_backend("cupy")
    rows = RESULTS.setdefault("fused", [])
    last: dict[tuple[str, str, str], tuple[int, float]] = {}
    for dt in dtypes:
        for n in qubits:
            c, h, theta = sel_circuit(n, layers), hamiltonian(n), weights(n, layers)
            program = program_of(c)
            vals: dict[tuple[str, str], Any] = {}
            for executor in ("cupy-blocked", "reference"):
                for what in ("forward", "adjoint_gradient"):
                    key = (dt, executor, what)
                    if key in last:
                        n0, t0 = last[key]
                        projected = 3 * t0 * 2.1 ** (n - n0)
                        if not budget.fits(projected):
                            rows.append({"n": n, "dtype": dt, "executor": executor, "what": what,
                                         "skipped": f"projected {projected:.0f} s > budget left {budget.left():.0f} s"})
                            continue
                    if what == "forward":
                        fn = functools.partial(_executor_state, be, program, theta, n, dt, executor)
                    else:
                        fn = functools.partial(_executor_gradient, be, program, theta, h, n, dt, executor)
                    try:
                        t, val = time_wall(fn, reps=3 if n <= 24 else 1)
                    except Exception as exc:
                        record_error("fused", {"n": n, "dtype": dt, "executor": executor, "what": what}, exc)
                        continue
                    last[key] = (n, t["median_s"])
                    vals[(executor, what)] = val
                    rows.append({"n": n, "layers": layers, "dtype": dt, "executor": executor, "what": what,
                                 "gates": len(c), **t})
                    log(f"  fused SEL n={n:2d} {dt:10s} {executor:12s} {what:16s} {t['median_s']:9.4f} s")
                    val = None
            for what in ("forward", "adjoint_gradient"):
                a, b = vals.get(("cupy-blocked", what)), vals.get(("reference", what))
                if a is not None and b is not None:
                    ta, tb = (next(r["median_s"] for r in rows if r.get("n") == n and r.get("dtype") == dt
                                   and r.get("executor") == ex and r.get("what") == what and "median_s" in r)
                              for ex in ("cupy-blocked", "reference"))
                    RESULTS.setdefault("fused_compare", []).append(
                        {"n": n, "dtype": dt, "what": what, "max_abs_diff_vs_reference": float(np.max(np.abs(a - b))),
                         "speedup_vs_reference": tb / ta})
                    log(f"    cupy-blocked vs reference {what}: max |diff| {np.max(np.abs(a - b)):.2e}, "
                        f"speedup x{tb / ta:.1f}")
            vals.clear()
            be.xp.get_default_memory_pool().free_all_blocks()
            save(out)


def batched_sweep(qubits: list[int], layers: int, batch: int, loop_count: int, dtype: str, with_numpy: bool,
                  budget: Budget, out: Path) -> None:
    rows = RESULTS.setdefault("batched", [])
    for n in qubits:
        if budget.left() < 20:
            rows.append({"n": n, "skipped": "budget spent"})
            continue
        c, h = sel_circuit(n, layers), hamiltonian(n)
        thetas = weights(n, layers, batch=batch, seed=n)
        row: dict[str, Any] = {"n": n, "layers": layers, "batch": batch, "dtype": dtype, "params": c.num_params}
        try:
            t, g_batched = time_wall(lambda c=c, h=h, thetas=thetas: gradient(c, h, thetas, "cupy", dtype), reps=3)
            row["cupy_batched_s"] = t["median_s"]
            row["cupy_batched_grads_per_s"] = batch / t["median_s"]
            k = min(loop_count, batch)
            gradient(c, h, thetas[0], "cupy", dtype)  # warm-up
            t0 = time.perf_counter()
            singles = [gradient(c, h, thetas[i], "cupy", dtype) for i in range(k)]
            dt_loop = time.perf_counter() - t0
            row["cupy_loop_measured_calls"] = k
            row["cupy_loop_s_per_call"] = dt_loop / k
            row["cupy_loop_grads_per_s"] = k / dt_loop
            row["batched_vs_loop_speedup"] = row["cupy_batched_grads_per_s"] / row["cupy_loop_grads_per_s"]
            row["max_abs_diff_batched_vs_single"] = float(np.max(np.abs(np.asarray(g_batched)[:k] - np.stack(singles))))
            if with_numpy and budget.fits(30):
                t, g_np = time_wall(lambda c=c, h=h, thetas=thetas: gradient(c, h, thetas, "numpy", "complex128"),
                                    reps=1, warmup=0)
                row["numpy_batched_s"] = t["median_s"]
                row["numpy_batched_grads_per_s"] = batch / t["median_s"]
                row["max_abs_diff_cupy_vs_numpy"] = float(np.max(np.abs(np.asarray(g_batched) - g_np)))
        except Exception as exc:
            record_error("batched", {"n": n}, exc)
        rows.append(row)
        log("  batched " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        save(out)


# ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "gpu_results"), "gpu_bench.json"))
    ap.add_argument("--budget", type=float, default=300.0, help="seconds for the whole run (cases that do "
                    "not fit are recorded as skipped)")
    ap.add_argument("--quick", action="store_true", help="small sizes only (a smoke test, about a minute)")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--min-qubits", type=int, default=16)
    ap.add_argument("--max-qubits", type=int, default=30)
    ap.add_argument("--numpy-max-qubits", type=int, default=20)
    ap.add_argument("--gate-qubits", type=int, default=28)
    ap.add_argument("--dtypes", default="complex128,complex64")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--loop-count", type=int, default=64, help="single-circuit gradients timed for the loop")
    ap.add_argument("--no-numpy-batched", action="store_true")
    ap.add_argument("--fused-min-qubits", type=int, default=16)
    ap.add_argument("--fused-max-qubits", type=int, default=28)
    args = ap.parse_args(argv)
    if args.quick:
        args.gate_qubits, args.min_qubits, args.max_qubits, args.numpy_max_qubits = 20, 12, 18, 14
        args.batch, args.loop_count = 128, 16
        args.fused_min_qubits, args.fused_max_qubits = 12, 18
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    budget = Budget(args.budget)
    RESULTS["config"] = vars(args)
    ok, why = qdiff.backends.cupy_status()
    if not ok:
        RESULTS["errors"].append({"section": "setup", "error": why})
        save(out)
        log(f"no GPU: {why}")
        return 2
    try:
        RESULTS["device"] = device_info()
        qdiff.get_backend("cupy")
        t = time.perf_counter()
        forward(sel_circuit(4, 1), hamiltonian(4), weights(4, 1), "cupy", "complex128")
        forward(sel_circuit(4, 1), hamiltonian(4), weights(4, 1), "cupy", "complex64")
        RESULTS["kernel_compile_s"] = time.perf_counter() - t  # NVRTC on first use (then CuPy's disk cache)
        log(f"kernels ready in {RESULTS['kernel_compile_s']:.1f} s")
        save(out)
        RESULTS["bandwidth"] = bandwidth(args.gate_qubits)
        save(out)
        RESULTS["per_gate"] = per_gate(args.gate_qubits, RESULTS["bandwidth"])
        save(out)
        dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
        RESULTS["fused_pass"] = fused_pass(args.gate_qubits, args.layers, RESULTS["bandwidth"])
        save(out)
        fused_sweep(list(range(args.fused_min_qubits, args.fused_max_qubits + 1, 2)), args.layers, dtypes,
                    Budget(min(budget.left(), args.budget * 0.3)), out)
        batched_sweep(list(range(8, 15, 2)) if not args.quick else [8, 10], args.layers, args.batch, args.loop_count,
                      "complex128", not args.no_numpy_batched, Budget(min(budget.left(), args.budget * 0.25)), out)
        sel_sweep(list(range(args.min_qubits, args.max_qubits + 1, 2)), args.layers, dtypes, args.numpy_max_qubits,
                  budget, out)
    except Exception as exc:
        record_error("main", None, exc)
    save(out)
    log(f"done; results in {out}")
    return 1 if RESULTS["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
