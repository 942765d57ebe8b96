"""A model, on paper, of the MPI backend at 31-40 qubits on 4-2048 ranks, beside lightning.gpu's published runs.

``python benchmarks/mpi_model.py`` writes ``results/mpi_model.{json,md}``. Nothing here runs at that
size: the model combines

- the **swap counts** of the real circuits at each size, from the executors' own wire needs and the
  same planner (:func:`qdiff.distributed.layout.count_swaps`; cheap bookkeeping, no state), for the
  lookahead planner that runs, an LRU swapper and a gate-by-gate swapper;
- the **pass count**: one pass over the local state per gate in the forward pass, three per gate in a
  backward sweep (un-apply from the ket, accumulate the reduced outer product, un-apply from the
  bra), one per ``<Z_i>`` bra; a Jacobian of K outputs is one forward pass and K sweeps (at these
  sizes one output per sweep);
- a **per-pass cost**: for GPU ranks the local state's bytes read and written at a stated memory
  bandwidth (no GPU was measured: an assumption), for CPU ranks the per-amplitude cost of one gate
  measured by ``mpi_scaling.py`` on this machine;
- a **network**: each swap sends and receives half the local state at a stated per-rank bandwidth
  (full duplex); a swap in a backward sweep moves the bra and the ket.

The workload is lightning.gpu's published MPI weak-scaling benchmark (PennyLaneAI/lightning-on-hpc,
arXiv:2403.02512; Perlmutter, 4 A100-40GB per node): the adjoint Jacobian of one
StronglyEntanglingLayers layer with one ``<Z_i>`` per wire, 29 local qubits per GPU; published 675 s
at 31 qubits on 4 GPUs and 2305 s at 37 qubits on 256 GPUs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from mpi_scaling import POLICIES, sel_circuit, swap_counts  # noqa: E402

GPU_HBM_BYTES_PER_S = 1.2e12
"""Effective memory bandwidth of one A100-40GB for a streaming gate pass (1.555 TB/s peak; assumed)."""

NETWORK_BYTES_PER_S = 25e9
"""Per-rank network bandwidth: one Slingshot-11 NIC (200 Gb/s) per GPU, as on Perlmutter (assumed)."""

LIGHTNING_GPU_PUBLISHED = {(31, 4): 675.0, (37, 256): 2305.0}
"""Seconds for the SEL-1 adjoint Jacobian, lightning.gpu MPI, Perlmutter (arXiv:2403.02512)."""

SIZES = [(31, 4), (32, 8), (33, 16), (34, 32), (35, 64), (36, 128), (37, 256), (38, 512), (40, 2048)]
"""``(qubits, GPU ranks)`` at 29 local qubits per rank (three local states: 24 GiB of a 40 GB A100)."""

CPU_SIZES = [(38, 64), (39, 128), (40, 256)]
"""``(qubits, CPU nodes)`` at 32 local qubits per node (three 64 GiB states in a 256 GiB node)."""


def model(n: int, ranks: int, pass_s: float, net_bps: float) -> dict[str, Any]:
    """Modelled seconds of the SEL-1 adjoint Jacobian of ``<Z_i>`` (all i) at ``n`` qubits on ``ranks``."""
    g = int(np.log2(ranks))
    local = n - g
    circuit = sel_circuit(n, 1)
    theta = np.zeros(circuit.num_params)
    sweeps = n  # one output per sweep: a row of bra + ket is far above the stacking budget here
    swaps = swap_counts(circuit, theta, g, sweeps)
    gates = len(circuit.operations)
    passes = gates + sweeps * (1 + 3 * gates)  # forward; per sweep: the bra, then three passes per gate
    half_bytes = 2 ** (local - 1) * 16
    compute = passes * pass_s
    out: dict[str, Any] = {"qubits": n, "ranks": ranks, "local_qubits": local, "gates": gates, "passes": passes,
                           "compute_s": compute, "swaps": swaps,
                           "forward_s": gates * pass_s + swaps["lookahead"]["forward"] * half_bytes / net_bps}
    for policy in POLICIES:
        comm = swaps[policy]["total_exchanges"] * half_bytes / net_bps
        out[f"comm_s_{policy}"] = comm
        out[f"total_s_{policy}"] = compute + comm
    out["lightning_gpu_s"] = LIGHTNING_GPU_PUBLISHED.get((n, ranks))
    return out


def report(gpu: list[dict[str, Any]], cpu: list[dict[str, Any]], cpu_pass: dict[str, Any] | None) -> str:
    """The model as markdown tables."""
    from common import fmt_time, table

    def rows(entries: list[dict[str, Any]], with_published: bool) -> list[list[str]]:
        out = []
        for e in entries:
            s = e["swaps"]
            row = [str(e["qubits"]), str(e["ranks"]), fmt_time(e["forward_s"]), str(e["passes"]),
                   fmt_time(e["compute_s"]),
                   f"{s['lookahead']['total_exchanges']} / {s['lru']['total_exchanges']} / "
                   f"{s['per-gate']['total_exchanges']}",
                   fmt_time(e["comm_s_lookahead"]), fmt_time(e["total_s_lookahead"]),
                   fmt_time(e["total_s_per-gate"])]
            if with_published:
                row.append(fmt_time(e["lightning_gpu_s"]) if e["lightning_gpu_s"] else "-")
            out.append(row)
        return out

    head = ["qubits", "ranks", "forward", "Jacobian passes", "compute", "swaps: lookahead / LRU / gate-by-gate",
            "comm (lookahead)", "total (lookahead)", "total (gate-by-gate)"]
    lines = [
        "Modelled adjoint Jacobian of one StronglyEntanglingLayers layer, one `<Z_i>` per wire (lightning.gpu's MPI "
        "benchmark). A model, not a measurement.", "",
        f"GPU ranks, 29 local qubits each: a pass = 2 x 16 x 2^29 bytes at {GPU_HBM_BYTES_PER_S / 1e12:.1f} TB/s "
        f"({fmt_time(2 * 16 * 2**29 / GPU_HBM_BYTES_PER_S)}, assumed), network {NETWORK_BYTES_PER_S / 1e9:.0f} GB/s "
        "per rank (assumed), published lightning.gpu times beside:", "",
        table(head + ["lightning.gpu (published)"], rows(gpu, True)), ""]
    if cpu:
        lines += [
            f"CPU nodes, 32 local qubits each, a pass at this machine's measured "
            f"{cpu_pass['per_amplitude_s'] * 1e9:.2f} ns per amplitude (2 cores; a node with more cores and memory "
            f"channels is proportionally faster), network {NETWORK_BYTES_PER_S / 1e9:.0f} GB/s per node:", "",
            table(head, rows(cpu, False)), ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Compute the model (reading ``mpi_scaling.json`` for the measured CPU pass cost if present)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)
    gpu_pass = 2 * 16 * 2**29 / GPU_HBM_BYTES_PER_S
    gpu = [model(n, r, gpu_pass, NETWORK_BYTES_PER_S) for n, r in SIZES]
    cpu_pass = None
    scaling = args.out / "mpi_scaling.json"
    if scaling.exists():
        runs = json.loads(scaling.read_text())["runs"]
        one = next((x for x in runs.get("1", []) if "gate_pass_s" in x), None)
        cpu_pass = one["gate_pass_s"] if one else None
    cpu = [model(n, r, cpu_pass["per_amplitude_s"] * 2**(n - int(np.log2(r))), NETWORK_BYTES_PER_S)
           for n, r in CPU_SIZES] if cpu_pass else []
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mpi_model.json").write_text(json.dumps({
        "assumptions": {"gpu_hbm_bytes_per_s": GPU_HBM_BYTES_PER_S, "network_bytes_per_s": NETWORK_BYTES_PER_S,
                        "cpu_gate_pass": cpu_pass}, "gpu": gpu, "cpu": cpu}, indent=1))
    md = report(gpu, cpu, cpu_pass)
    (args.out / "mpi_model.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
