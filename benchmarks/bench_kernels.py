"""Per-gate time of qdiff's CPU kernels (numba) vs its numpy reference path vs PennyLane lightning.qubit.

Not a test. For each qubit count and gate (RX, CNOT, RZ, a random 4-qubit unitary) it applies ``M``
copies of the gate, cycling the target wire over all wires (CNOT's control is the next wire, the
4-qubit gate acts on 4 consecutive wires), and divides by ``M``. qdiff runs each copy through
``qdiff.simulate.apply_operation`` (the same dispatch the simulator uses); lightning runs the same
operations through ``LightningStateVector.apply_operations`` (its C++ kernels, no device/tape overhead,
so nothing needs subtracting). Samples of the three implementations are interleaved and repeated;
the table shows medians and ratios. ``M`` is calibrated per gate so a sample takes about
``--sample-seconds``; the whole run stops adding repeats at ``--budget`` seconds.

    OMP_NUM_THREADS=2 NUMBA_NUM_THREADS=2 python benchmarks/bench_kernels.py --qubits 20 24
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def _random_state(n: int, dtype: np.dtype, rng: np.random.Generator) -> np.ndarray:
    s = np.empty((1, 2**n), dtype=dtype)
    s.real = rng.standard_normal(2**n)
    s.imag = rng.standard_normal(2**n)
    s /= np.linalg.norm(s)
    return s


def _gate_specs(n: int, rng: np.random.Generator) -> dict:
    """name -> (qdiff circuit builder per wire, pennylane op builder per wire)."""
    import pennylane as qml

    u, _ = np.linalg.qr(rng.standard_normal((16, 16)) + 1j * rng.standard_normal((16, 16)))

    def u4_wires(w: int) -> list[int]:
        return [(w + i) % n for i in range(4)]

    return {
        "RX": (lambda c, w: c.rx(0.37, w), lambda w: qml.RX(0.37, wires=w)),
        "CNOT": (lambda c, w: c.cnot((w + 1) % n, w), lambda w: qml.CNOT(wires=[(w + 1) % n, w])),
        "RZ": (lambda c, w: c.rz(0.37, w), lambda w: qml.RZ(0.37, wires=w)),
        "U4": (lambda c, w: c.qubit_unitary(u, wires=u4_wires(w)), lambda w: qml.QubitUnitary(u, wires=u4_wires(w))),
    }


class _Impl:
    """One implementation: ``run(m)`` applies the first ``m`` prepared gate copies to its state."""

    def __init__(self, name: str, run) -> None:
        self.name = name
        self.run = run


def _make_impls(n: int, gate: str, specs: dict, dtype: np.dtype, max_copies: int, rng) -> list[_Impl]:
    from pennylane_lightning.lightning_qubit._state_vector import LightningStateVector

    from qdiff import Circuit
    from qdiff.backends import get_backend
    from qdiff.simulate import apply_operation

    build_q, build_l = specs[gate]
    circ = Circuit(n)
    for i in range(max_copies):
        build_q(circ, i % n)
    ops = list(circ.operations)
    theta = np.zeros(0)
    backend = get_backend("numpy")
    state = _random_state(n, dtype, rng)

    def qdiff_run(m: int, kernels: str) -> None:
        old = os.environ.get("QDIFF_KERNELS")
        os.environ["QDIFF_KERNELS"] = kernels
        try:
            for op in ops[:m]:
                apply_operation(backend, state, op, theta)
        finally:
            if old is None:
                del os.environ["QDIFF_KERNELS"]
            else:
                os.environ["QDIFF_KERNELS"] = old

    sv = LightningStateVector(n, dtype=dtype)
    sv._apply_state_vector(state[0].copy(), sv.wires)
    lops = [build_l(i % n) for i in range(max_copies)]

    return [
        _Impl("numba", lambda m: qdiff_run(m, "numba")),
        _Impl("numpy", lambda m: qdiff_run(m, "numpy")),
        _Impl("lightning", lambda m: sv.apply_operations(lops[:m])),
    ]


def _timed(fn, m: int) -> float:
    t0 = time.perf_counter()
    fn(m)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qubits", type=int, nargs="+", default=[20, 24])
    ap.add_argument("--gates", nargs="+", default=["RX", "CNOT", "RZ", "U4"])
    ap.add_argument("--dtype", default="complex128", choices=["complex128", "complex64"])
    ap.add_argument("--repeats", type=int, default=5, help="interleaved samples per implementation")
    ap.add_argument("--max-copies", type=int, default=50, help="most gate copies per sample")
    ap.add_argument("--sample-seconds", type=float, default=0.25)
    ap.add_argument("--budget", type=float, default=170.0, help="seconds; later repeats are skipped past it")
    args = ap.parse_args()

    import numba

    from qdiff.backends.numba import kernels as cpu_kernels

    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(1234)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, numba threads "
          f"{cpu_kernels.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"load {os.getloadavg()[0]:.1f}, {dtype.name}")
    t_start = time.perf_counter()
    for n in args.qubits:
        specs = _gate_specs(n, rng)
        for gate in args.gates:
            impls = _make_impls(n, gate, specs, dtype, args.max_copies, rng)
            copies = {}
            for im in impls:  # warm-up (compiles numba kernels) and calibration
                im.run(1)
                one = _timed(im.run, 1)
                copies[im.name] = int(max(1, min(args.max_copies, args.sample_seconds / max(one, 1e-9))))
            samples: dict[str, list[float]] = {im.name: [] for im in impls}
            for r in range(args.repeats):
                if r >= 2 and time.perf_counter() - t_start > args.budget:
                    break
                for im in impls:
                    m = copies[im.name]
                    samples[im.name].append(_timed(im.run, m) / m)
            med = {k: float(np.median(v)) for k, v in samples.items()}
            nb, npy, lt = med["numba"], med["numpy"], med["lightning"]
            print(f"n={n:2d} {gate:5s} numba {nb * 1e3:9.3f} ms  numpy {npy * 1e3:9.3f} ms  lightning {lt * 1e3:9.3f}"
                  " ms"
                  f"  | numba/lightning {nb / lt:5.2f}  numpy/lightning {npy / lt:5.2f}  numpy/numba {npy / nb:5.2f}"
                  f"  (copies {copies}, repeats {len(samples['numba'])})", flush=True)
            del impls
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "none used"
    print(f"total {time.perf_counter() - t_start:.1f} s, load {os.getloadavg()[0]:.1f}, numba threading layer {layer}")


if __name__ == "__main__":
    main()
