"""Weak scaling of the MPI backend: R = 1, 2, 4 ranks at a fixed number of local qubits, with traffic.

``python benchmarks/mpi_scaling.py`` launches ``mpiexec -n R`` of this script (``--worker``) for every
rank count, interleaved round by round, and writes ``results/mpi_scaling.{json,md}``. Each worker
builds the workloads at ``n = local + log2 R`` qubits, times them (the slowest rank's time, median over
repeats) and counts this rank's communication (swaps, partner copies, bytes sent, reductions). Beside
the measured swaps it counts, from the same wire needs, the swaps of an LRU swapper and of a
gate-by-gate swapper (swap in, apply, swap back). Workloads:

| name | what |
|---|---|
| ``sel1-jacobian`` | one SEL layer, adjoint Jacobian of ``<Z_i>`` for every wire (lightning.gpu's MPI benchmark) |
| ``sel2-grad`` | two SEL layers, adjoint gradient of ``sum_i Z_i`` (one backward sweep) |
| ``qaoa-grad`` | ring MaxCut QAOA, p = 2 (IsingZZ cost, RX mixer), adjoint gradient of ``sum ZZ`` |
| ``forward-sel2`` | the SEL-2 forward pass and ``<sum Z_i>`` alone |

It also times, on one rank, one gate on a ``2**local`` state (the per-pass cost the model in
``mpi_model.py`` starts from), and with two ranks one half-state swap (the exchange bandwidth
between two processes here). Every rank count runs ``OMP_NUM_THREADS=1`` per rank; on a machine with
fewer cores than ranks the runs are oversubscribed and the times say so in the output.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

POLICIES = ("lookahead", "lru", "per-gate")

GATE_PASS_QUBITS = 24
"""The per-pass cost is measured on at least this many qubits (256 MiB: memory-bound, as at scale)."""


def sel_circuit(n: int, layers: int) -> Any:
    """StronglyEntanglingLayers (the benchmarks' native construction)."""
    from circuits import native_sel

    return native_sel(n, layers)


def qaoa_circuit(n: int, depth: int) -> Any:
    """Ring MaxCut QAOA: Hadamards, then per layer IsingZZ on every ring edge and RX on every wire."""
    import qdiff

    c = qdiff.Circuit(n)
    p = c.params(2 * depth)
    for w in range(n):
        c.hadamard(w)
    for layer in range(depth):
        for w in range(n):
            c.ising_zz(p[2 * layer], w, (w + 1) % n)
        for w in range(n):
            c.rx(p[2 * layer + 1], w)
    return c


def workloads(n: int) -> dict[str, tuple[Any, Any, np.ndarray]]:
    """``name -> (circuit, measurements or observable, parameters)`` at ``n`` qubits."""
    import qdiff
    from qdiff.measure import Expval

    rng = np.random.default_rng(0)
    sel1, sel2, qaoa = sel_circuit(n, 1), sel_circuit(n, 2), qaoa_circuit(n, 2)
    zsum = sum((qdiff.Z(i) for i in range(1, n)), qdiff.Z(0) * 1.0)
    zz = sum((qdiff.Z(i) @ qdiff.Z((i + 1) % n) for i in range(1, n)), qdiff.Z(0) @ qdiff.Z(1) * 1.0)
    return {
        "sel1-jacobian": (sel1, [Expval(qdiff.Z(i)) for i in range(n)], rng.uniform(-1, 1, sel1.num_params)),
        "sel2-grad": (sel2, zsum, rng.uniform(-1, 1, sel2.num_params)),
        "qaoa-grad": (qaoa, zz, rng.uniform(-1, 1, qaoa.num_params)),
        "forward-sel2": (sel2, zsum, rng.uniform(-1, 1, sel2.num_params)),
    }


def backward_sweeps(num_wires: int, rows: int) -> int:
    """Backward sweeps of an adjoint Jacobian with ``rows`` outputs: rows are stacked while they fit.

    The rule of :func:`qdiff.gradients.adjoint.adjoint_jacobian` (complex128, one parameter set).
    """
    from qdiff.gradients.common import rows_per_batch

    return -(-rows // rows_per_batch(num_wires, 1, 16, rows))


def swap_counts(circuit: Any, theta: np.ndarray, num_global: int, sweeps: int) -> dict[str, dict[str, int]]:
    """Swaps of the forward pass and of one backward sweep, per policy, from the executors' wire needs.

    A backward sweep's swap moves the bra and the ket, so its exchanges count twice; ``sweeps``
    backward sweeps follow one forward pass. Each sweep is counted from the canonical layout (the
    real sweeps start where the forward pass ended: at most one swap per global wire apart).
    """
    from qdiff.distributed.executor import wires_needed_local
    from qdiff.distributed.layout import count_swaps
    from qdiff.program import program_of

    program = program_of(circuit)
    forward = [wires_needed_local(k) for k in program.kernels(theta)]
    trainable = set(program.trainable)
    inverses = program.kernels(theta, inverse=True)
    backward = [wires_needed_local(inverses[i], i in trainable) for i in range(len(inverses) - 1, -1, -1)]
    n = circuit.num_wires
    out = {}
    for policy in POLICIES:
        f = count_swaps(forward, n, num_global, policy)
        b = count_swaps(backward, n, num_global, policy) if sweeps else 0
        out[policy] = {"forward": f, "backward_sweep": b, "total_exchanges": f + 2 * sweeps * b}
    return out


def _timed(fn: Any, comm: Any, repeats: int) -> list[float]:
    from mpi4py import MPI

    times = []
    for _ in range(repeats):
        comm.Barrier()
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        times.append(comm.allreduce(dt, op=MPI.MAX))
    return times


def worker(local: int, repeats: int) -> dict[str, Any]:
    """Run the workloads on this launch's ranks; rank 0 returns the results."""
    from mpi4py import MPI

    import qdiff
    from qdiff.distributed import MPIBackend
    from qdiff.measure import Expval

    comm = MPI.COMM_WORLD
    be = MPIBackend()
    n = local + be.num_global
    out: dict[str, Any] = {"ranks": be.size, "num_wires": n, "local_qubits": local, "workloads": {}}
    for name, (circuit, meas, theta) in workloads(n).items():
        if name == "forward-sel2":
            fn = lambda c=circuit, m=meas, t=theta: qdiff.execute(c, Expval(m), t, backend=be)  # noqa: E731
            sweeps = 0
        elif isinstance(meas, list):
            fn = lambda c=circuit, m=meas, t=theta: qdiff.jacobian(c, m, t, backend=be)  # noqa: E731
            sweeps = backward_sweeps(n, len(meas))
        else:
            fn = lambda c=circuit, m=meas, t=theta: qdiff.grad(c, m, t, backend=be)  # noqa: E731
            sweeps = 1
        fn()  # warm: compile kernels, build programs
        before = be.exchanger.traffic.as_dict()
        times = _timed(fn, comm, repeats)
        after = be.exchanger.traffic.as_dict()
        traffic = {k: (after[k] - before[k]) // repeats for k in after}
        out["workloads"][name] = {"times_s": times, "median_s": statistics.median(times),
                                  "traffic_rank0": traffic, "gates": len(circuit.operations), "sweeps": sweeps,
                                  "swaps_by_policy": swap_counts(circuit, theta, be.num_global, sweeps)}
    if be.size == 1:
        out["gate_pass_s"] = _gate_pass_time(max(local, GATE_PASS_QUBITS), repeats)
    if be.size == 2:
        out["swap_s"] = _swap_time(be, local, repeats)
    return out


def _gate_pass_time(local: int, repeats: int) -> dict[str, float]:
    """Median seconds of one RY on a ``2**local`` state through the per-gate primitive, and per amplitude."""
    from qdiff.backends import get_backend

    be = get_backend("numpy")
    state = be.zero_state(local, 1)
    m = np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]], dtype=complex)
    times = []
    for _ in range(max(5, repeats)):
        t0 = time.perf_counter()
        for w in range(local):
            be.apply_matrix(state, m, (w,))
        times.append((time.perf_counter() - t0) / local)
    med = statistics.median(times)
    return {"qubits": local, "median_s": med, "per_amplitude_s": med / 2**local}


def _swap_time(be: Any, local: int, repeats: int) -> dict[str, float]:
    """Median seconds of one half-state exchange between the two ranks, and the bytes each sends."""
    state = be.zero_state(local + 1, 1)
    times = _timed(lambda: be.exchanger.swap_half(state.local, local - 1, be.rank, 1 - be.rank), be.comm,
                   max(5, repeats))
    half = state.local.nbytes // 2
    med = statistics.median(times)
    return {"median_s": med, "bytes_per_rank": half, "bandwidth_GBps": half / med / 1e9}


def launch(ranks: int, local: int, repeats: int, mpiexec: str) -> dict[str, Any]:
    """One ``mpiexec -n ranks`` worker run; rank 0's JSON."""
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               QDIFF_QUIET="1")
    cmd = [mpiexec, "-n", str(ranks), sys.executable, str(Path(__file__).resolve()), "--worker",
           "--local-qubits", str(local), "--repeats", str(repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def report(runs: dict[int, list[dict[str, Any]]], machine: dict[str, Any]) -> str:
    """Markdown tables: weak-scaling times and efficiencies, traffic, swaps per policy."""
    from common import fmt_time, table

    ranks = sorted(runs)
    names = list(runs[ranks[0]][0]["workloads"])
    med = {r: {w: statistics.median(x["workloads"][w]["median_s"] for x in runs[r]) for w in names} for r in ranks}
    cores = machine["cpus_usable"]
    over = f"oversubscribed above {cores} ranks, " if max(ranks) > cores else ""
    lines = [f"Weak scaling at {runs[ranks[0]][0]['local_qubits']} local qubits per rank "
             f"({machine['cpu_model']}, {cores} cores; {over}"
             "one thread per rank). Median over interleaved rounds of the slowest rank's time.", ""]
    rows = []
    for w in names:
        row = [w]
        for r in ranks:
            n = runs[r][0]["num_wires"]
            row.append(f"{fmt_time(med[r][w])} (n={n}, eff {med[ranks[0]][w] / med[r][w]:.2f})")
        rows.append(row)
    lines += [table(["workload"] + [f"R={r}" for r in ranks], rows), ""]
    rows = []
    for r in ranks[1:]:
        for w in names:
            x = runs[r][0]["workloads"][w]
            t, s = x["traffic_rank0"], x["swaps_by_policy"]
            rows.append([f"R={r}", w, str(t["swaps"]), f"{t['bytes_sent'] / 2**20:.1f}", str(t["copies"]),
                         str(t["reductions"]), str(s["lookahead"]["total_exchanges"]),
                         str(s["lru"]["total_exchanges"]), str(s["per-gate"]["total_exchanges"])])
    lines += ["Communication per call on rank 0 (measured), and the half-state exchanges of the three swap policies "
              "counted from the same wire needs (lookahead is what runs):", "",
              table(["ranks", "workload", "swaps", "MiB sent", "partner copies", "allreduces",
                     "lookahead", "LRU", "gate-by-gate"], rows), ""]
    one = runs[1][0] if 1 in runs else None
    if one and "gate_pass_s" in one:
        g = one["gate_pass_s"]
        lines.append(f"One gate on a 2^{g['qubits']} state: {fmt_time(g['median_s'])} "
                     f"({g['per_amplitude_s'] * 1e9:.2f} ns per amplitude).")
    two = runs[2][0] if 2 in runs else None
    if two and "swap_s" in two:
        s = two["swap_s"]
        lines.append(f"One half-state swap between 2 ranks ({s['bytes_per_rank'] / 2**20:.1f} MiB each way): "
                     f"{fmt_time(s['median_s'])}, {s['bandwidth_GBps']:.2f} GB/s per rank.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Parent: interleaved launches and the report; ``--worker``: one timed run under mpiexec."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--local-qubits", type=int, default=16)
    ap.add_argument("--ranks", default="1,2,4")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per launch")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved launches per rank count")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        res = worker(args.local_qubits, args.repeats)
        from mpi4py import MPI

        if MPI.COMM_WORLD.Get_rank() == 0:
            print("RESULT " + json.dumps(res), flush=True)
        return 0
    import shutil

    from common import machine_info

    mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    if mpiexec is None:
        raise SystemExit("mpiexec not found: pip install 'qdiff[mpi]' (mpi4py and mpich)")
    ranks = [int(r) for r in args.ranks.split(",")]
    runs: dict[int, list[dict[str, Any]]] = {r: [] for r in ranks}
    for rnd in range(args.rounds):
        for r in ranks:
            print(f"round {rnd + 1}/{args.rounds}: {r} rank(s), {args.local_qubits} local qubits", flush=True)
            runs[r].append(launch(r, args.local_qubits, args.repeats, mpiexec))
    machine = machine_info()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mpi_scaling.json").write_text(json.dumps({"machine": machine, "args": vars(args) | {
        "out": str(args.out)}, "runs": runs}, indent=1))
    md = report(runs, machine)
    (args.out / "mpi_scaling.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
