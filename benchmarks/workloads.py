"""The workloads people train, timed through PennyLane QNodes: qdiff.qubit beside lightning.qubit.

Each workload is one QNode call as a user makes it (an adjoint gradient, a broadcast batch's gradient
with default QNode options, or sampling), built the same way for every device; the implementations
run interleaved (``common.interleaved``), their first results are checked to agree, and the table
reports medians and the ratio qdiff / lightning (below 1: qdiff is faster), with the geometric mean.

| workload | what |
|---|---|
| ``vqe-lih``, ``vqe-h2o``, ``vqe-beh2`` | ``molecular_hamiltonian(method="dhf")`` (12, 12, 14 qubits; 631, 551,
  666 terms) + ``AllSinglesDoubles`` from Hartree-Fock, adjoint gradient |
| ``pauli300-n16`` | 300 random 4-local Pauli terms, RY/CZ ansatz (4 layers), n=16 |
| ``heisenberg-n18`` | ``qml.spin.heisenberg`` chain, RY/CZ ansatz (6 layers), n=18 |
| ``tfim-n20`` | ``qml.spin.transverse_ising`` chain, RY/CZ ansatz (4 layers), n=20 |
| ``qaoa-maxcut-n20-p4`` | ``qml.qaoa.maxcut`` on a 3-regular graph, 4 cost/mixer layers, n=20 |
| ``reupload-batch128-n6`` | re-uploading classifier, 128 broadcast inputs, gradient of the summed outputs |
| ``sel-batch64-n8`` | ``StronglyEntanglingLayers`` L=2 after ``AngleEmbedding`` of 64 broadcast inputs |

The two batch workloads use default QNode options (what ``qml.grad`` on a QNode with broadcast
inputs does without ``device_vjp=True``).
| ``sample100k-n20`` | ``qml.sample`` of 100,000 shots after a RY/CZ circuit, n=20 |

Usage::

    python benchmarks/workloads.py                    # everything (about 10 min on 2 cores)
    python benchmarks/workloads.py --only vqe-lih tfim-n20
    python benchmarks/workloads.py --with-default     # add default.qubit where it fits (n <= 14)

Writes ``results/workloads.json``, ``workloads.md`` and ``workloads.png`` (``--out``, ``--tag``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    fmt_ratio,
    fmt_time,
    interleaved,
    machine_info,
    machine_summary,
    table,
    unset_openblas_overrides,
    write_json,
)

unset_openblas_overrides()

import numpy as np  # noqa: E402
import pennylane as qml  # noqa: E402
from pennylane import numpy as pnp  # noqa: E402

QDIFF, LIGHTNING, DEFAULT = "qdiff.qubit", "lightning.qubit", "default.qubit"


@dataclass
class Workload:
    """A QNode workload: ``build(device_name)`` returns the call to time; values must agree across devices."""

    name: str
    num_wires: int
    build: Callable[[str], Callable[[], Any]]
    what: str


def _rycz(weights: Any, n: int) -> None:
    """Hardware-efficient ansatz: per layer a RY on every wire, then CZ on a chain."""
    for layer in range(weights.shape[0]):
        for w in range(n):
            qml.RY(weights[layer, w], wires=w)
        for w in range(n - 1):
            qml.CZ(wires=[w, w + 1])


def _gradient(device: str, n: int, body: Callable[[Any], Any], params: Any) -> Callable[[], Any]:
    qnode = qml.QNode(body, qml.device(device, wires=n), diff_method="adjoint")
    return lambda: qml.grad(qnode)(params)


MOLECULES = {
    "lih": (["Li", "H"], [0.0, 0.0, 0.0, 0.0, 0.0, 2.969], 4, 6),  # all 4 electrons, 6 orbitals
    "h2o": (["O", "H", "H"], [0.0, 0.0, 0.0, 0.0, 1.43, 1.11, 0.0, -1.43, 1.11], 8, 6),
    "beh2": (["Be", "H", "H"], [0.0, 0.0, 0.0, 0.0, 0.0, 2.5, 0.0, 0.0, -2.5], 6, 7),
}


def _vqe(molecule: str) -> Callable[[str], Callable[[], Any]]:
    symbols, coords, electrons, orbitals = MOLECULES[molecule]
    cache: dict[str, Any] = {}

    def build(device: str) -> Callable[[], Any]:
        if not cache:
            h, n = qml.qchem.molecular_hamiltonian(symbols, np.array(coords), method="dhf",
                                                   active_electrons=electrons, active_orbitals=orbitals)
            hf = qml.qchem.hf_state(electrons, n)
            singles, doubles = qml.qchem.excitations(electrons, n)
            cache.update(h=h, n=n, hf=hf, singles=singles, doubles=doubles)
        c = cache
        params = pnp.array(np.random.default_rng(0).uniform(-0.1, 0.1, len(c["singles"]) + len(c["doubles"])),
                           requires_grad=True)

        def body(w: Any) -> Any:
            qml.AllSinglesDoubles(w, wires=range(c["n"]), hf_state=c["hf"], singles=c["singles"],
                                  doubles=c["doubles"])
            return qml.expval(c["h"])

        return _gradient(device, c["n"], body, params)

    return build


def _spin(n: int, layers: int, hamiltonian: Callable[[], Any]) -> Callable[[str], Callable[[], Any]]:
    def build(device: str) -> Callable[[], Any]:
        h = hamiltonian()
        params = pnp.array(np.random.default_rng(1).uniform(0, np.pi, (layers, n)), requires_grad=True)

        def body(w: Any) -> Any:
            _rycz(w, n)
            return qml.expval(h)

        return _gradient(device, n, body, params)

    return build


def _random_pauli(n: int, terms: int, locality: int, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    letters = (qml.PauliX, qml.PauliY, qml.PauliZ)
    ops = [qml.prod(*[letters[rng.integers(3)](int(w)) for w in rng.choice(n, size=locality, replace=False)])
           for _ in range(terms)]
    return qml.Hamiltonian(rng.normal(size=terms), ops)


def _qaoa(n: int, depth: int) -> Callable[[str], Callable[[], Any]]:
    def build(device: str) -> Callable[[], Any]:
        import networkx as nx

        graph = nx.random_regular_graph(3, n, seed=7)
        cost_h, mixer_h = qml.qaoa.maxcut(graph)
        params = pnp.array(np.random.default_rng(2).uniform(0, 1, (2, depth)), requires_grad=True)

        def body(p: Any) -> Any:
            for w in range(n):
                qml.Hadamard(wires=w)
            for layer in range(depth):
                qml.qaoa.cost_layer(p[0, layer], cost_h)
                qml.qaoa.mixer_layer(p[1, layer], mixer_h)
            return qml.expval(cost_h)

        return _gradient(device, n, body, params)

    return build


def _reupload(n: int, batch: int, layers: int) -> Callable[[str], Callable[[], Any]]:
    def build(device: str) -> Callable[[], Any]:
        rng = np.random.default_rng(3)
        x = pnp.array(rng.uniform(-1, 1, (batch, n)), requires_grad=False)
        weights = pnp.array(rng.uniform(0, np.pi, (layers, n, 3)), requires_grad=True)

        @qml.qnode(qml.device(device, wires=n))  # default options, as a user writes it
        def classifier(w: Any, inputs: Any) -> Any:
            for layer in range(layers):
                for q in range(n):
                    qml.RX(inputs[:, q], wires=q)
                    qml.Rot(*w[layer, q], wires=q)
                for q in range(n - 1):
                    qml.CNOT(wires=[q, q + 1])
            return qml.expval(qml.Z(0))

        return lambda: qml.grad(lambda w: pnp.sum(classifier(w, x)))(weights)

    return build


def _sel_batch(n: int, batch: int) -> Callable[[str], Callable[[], Any]]:
    def build(device: str) -> Callable[[], Any]:
        rng = np.random.default_rng(4)
        x = pnp.array(rng.uniform(0, np.pi, (batch, n)), requires_grad=False)
        weights = pnp.array(rng.uniform(0, np.pi, qml.StronglyEntanglingLayers.shape(2, n)), requires_grad=True)

        @qml.qnode(qml.device(device, wires=n))
        def model(w: Any, inputs: Any) -> Any:
            qml.AngleEmbedding(inputs, wires=range(n))
            qml.StronglyEntanglingLayers(w, wires=range(n))
            return qml.expval(qml.Z(0))

        return lambda: qml.grad(lambda w: pnp.sum(model(w, x)))(weights)

    return build


def _sampling(n: int, shots: int) -> Callable[[str], Callable[[], Any]]:
    def build(device: str) -> Callable[[], Any]:
        weights = np.random.default_rng(5).uniform(0, np.pi, (2, n))

        @qml.set_shots(shots)
        @qml.qnode(qml.device(device, wires=n, seed=11))
        def circuit(w: Any) -> Any:
            _rycz(w, n)
            return qml.sample(wires=range(n))

        return lambda: circuit(weights)

    return build


def workloads() -> list[Workload]:
    """The suite, in the order of the table."""
    return [
        Workload("vqe-lih", 12, _vqe("lih"), "LiH, 631 terms, AllSinglesDoubles (92 parameters)"),
        Workload("vqe-h2o", 12, _vqe("h2o"), "H2O (8 e, 6 orbitals), 551 terms, AllSinglesDoubles"),
        Workload("vqe-beh2", 14, _vqe("beh2"), "BeH2 (6 e, 7 orbitals), 666 terms, AllSinglesDoubles"),
        Workload("pauli300-n16", 16, _spin(16, 4, lambda: _random_pauli(16, 300, 4)),
                 "300 random 4-local Pauli terms, RY/CZ L=4"),
        Workload("heisenberg-n18", 18, _spin(18, 6, lambda: qml.spin.heisenberg("chain", [18])),
                 "Heisenberg chain, RY/CZ L=6"),
        Workload("tfim-n20", 20, _spin(20, 4, lambda: qml.spin.transverse_ising("chain", [20], h=0.7)),
                 "transverse-field Ising chain, RY/CZ L=4"),
        Workload("qaoa-maxcut-n20-p4", 20, _qaoa(20, 4), "MaxCut on a 3-regular graph, p=4"),
        Workload("reupload-batch128-n6", 6, _reupload(6, 128, 3),
                 "re-uploading classifier, 128 broadcast inputs, default QNode options"),
        Workload("sel-batch64-n8", 8, _sel_batch(8, 64), "SEL L=2, 64 broadcast inputs, default QNode options"),
        Workload("sample100k-n20", 20, _sampling(20, 100_000), "100,000 shots of qml.sample"),
    ]


def _agree(a: Any, b: Any, sampled: bool) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    if sampled:  # different random streams: compare the per-wire means of the bits
        return bool(np.allclose(a.mean(axis=0), b.mean(axis=0), atol=0.02))
    return bool(np.allclose(a, b, atol=1e-8, rtol=1e-6))


def main(argv: list[str] | None = None) -> int:
    """Run the suite and write JSON, markdown and a bar chart of ratios."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", help="workload names to run")
    ap.add_argument("--with-default", action="store_true", help="add default.qubit where n <= 14")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--point-budget-s", type=float, default=12.0)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    ap.add_argument("--tag", default="workloads")
    args = ap.parse_args(argv)
    chosen = [w for w in workloads() if not args.only or w.name in args.only]
    results: dict[str, Any] = {"machine": machine_info(), "workloads": []}
    rows, ratios = [], {}
    for wl in chosen:
        t0 = time.perf_counter()
        devices = [QDIFF, LIGHTNING] + ([DEFAULT] if args.with_default and wl.num_wires <= 14 else [])
        impls = {d: wl.build(d) for d in devices}
        res = interleaved(impls, args.repeats, args.point_budget_s)
        ref = res[LIGHTNING]
        sampled = wl.name.startswith("sample")
        agree = all(res[d].ok and ref.ok and _agree(res[d].value, ref.value, sampled) for d in devices)
        ratio = (res[QDIFF].median_s / ref.median_s) if res[QDIFF].ok and ref.ok else None
        if ratio is not None:
            ratios[wl.name] = ratio
        entry = {"name": wl.name, "num_wires": wl.num_wires, "what": wl.what, "agree": agree, "ratio": ratio,
                 "results": {d: m.as_dict() for d, m in res.items()}, "seconds": time.perf_counter() - t0}
        results["workloads"].append(entry)
        rows.append([wl.name, str(wl.num_wires), fmt_time(res[QDIFF].median_s), fmt_time(ref.median_s)]
                    + ([fmt_time(res[DEFAULT].median_s) if DEFAULT in res else "-"] if args.with_default else [])
                    + [fmt_ratio(res[QDIFF].median_s, ref.median_s), "yes" if agree else "NO"])
        print(" | ".join(rows[-1]), flush=True)
    geo = math.exp(sum(math.log(r) for r in ratios.values()) / len(ratios)) if ratios else None
    results["geometric_mean_ratio"] = geo
    headers = (["workload", "n", "qdiff", "lightning"] + (["default"] if args.with_default else [])
               + ["qdiff / lightning", "results agree"])
    text = (f"# Workloads through QNodes\n\n{machine_summary(results['machine'])}\n\n"
            + table(headers, rows)
            + (f"\nGeometric mean of the ratios: {geo:.2f}\n" if geo is not None else "\n"))
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / f"{args.tag}.json", results)
    (args.out / f"{args.tag}.md").write_text(text)
    _plot(args.out / f"{args.tag}.png", ratios, geo)
    print(text)
    return 0


def _plot(path: Path, ratios: dict[str, float], geo: float | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(ratios)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.5))
    ax.barh(range(len(names)), [ratios[k] for k in names],
            color=["tab:green" if ratios[k] <= 1 else "tab:red" for k in names])
    ax.axvline(1.0, color="k", linewidth=1)
    if geo is not None:
        ax.axvline(geo, color="tab:blue", linestyle="--", label=f"geometric mean {geo:.2f}")
        ax.legend(fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("time qdiff.qubit / lightning.qubit (lower: qdiff faster)")
    ax.invert_yaxis()
    ax.grid(True, axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
