# %% [markdown]
# # Scaling: the adjoint gradient at growing qubit counts, on CPU and GPU
#
# A statevector of `n` qubits holds $2^n$ complex amplitudes, so every gate costs $O(2^n)$ and the time
# of a simulation doubles with each qubit. The adjoint method computes the *whole* gradient for a small
# constant times the cost of one simulation; the parameter-shift rule needs two simulations per
# parameter, and the number of parameters grows with `n` too.
#
# This tutorial times `qdiff.grad(..., method="adjoint")` for a hardware-efficient ansatz at growing `n`:
#
# - on the numpy backend (CPU);
# - on the CuPy backend (GPU) when `qdiff.backends.cupy_status()` says a GPU is usable, checking that
#   both backends give the same gradient; without one it says so and runs the CPU part only;
# - with the parameter-shift rule on the CPU at small `n`, for contrast.
#
# Quick mode goes up to 12 qubits (seconds); the full run goes to 20 on the CPU and 26 on a GPU.

# %%
from __future__ import annotations

import os
import time

import numpy as np

import qdiff
from qdiff import Circuit, X, Z
from qdiff.backends import cupy_status

try:  # _common.py sits next to the tutorials (the working folder when run as a script or notebook)
    from _common import Timer, banner, is_quick, plt, progress, save_figure
except ImportError:  # loaded from elsewhere by path, e.g. by the tests
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import Timer, banner, is_quick, plt, progress, save_figure

# %% [markdown]
# ## 1. The benchmark circuit
#
# `layers` times: an `RY` and an `RZ` on every qubit, then a ring of CNOTs. That is `2 n layers`
# parameters. The observable is a transverse-field Ising Hamiltonian, `2n` Pauli terms.

# %%
def ansatz(n: int, layers: int) -> Circuit:
    """Hardware-efficient ansatz: (RY, RZ on every wire; CNOT ring) x layers."""
    c = Circuit(n)
    p = c.params(2 * n * layers)
    k = 0
    for _ in range(layers):
        for w in range(n):
            c.ry(p[k], w).rz(p[k + 1], w)
            k += 2
        for w in range(n):
            c.cnot(w, (w + 1) % n)
    return c


def ising(n: int):
    """sum Z_i Z_{i+1} (ring) + 0.5 sum X_i."""
    h = 0.0
    for w in range(n):
        h = h + Z(w) @ Z((w + 1) % n) + 0.5 * X(w)
    return h


# %% [markdown]
# ## 2. Timing
#
# The best of up to three repetitions (fewer for slow cases). The first calls compile qdiff's kernels
# (numba on the CPU, CUDA on the GPU), so every method and backend is warmed up on a small circuit
# first, and each GPU size is also run once untimed (memory pool).

# %%
def time_grad(c: Circuit, h, theta: np.ndarray, method: str, backend: str) -> tuple[float, np.ndarray]:
    """Best wall time of ``qdiff.grad`` and the gradient (a numpy array)."""
    if backend == "cupy":
        qdiff.grad(c, h, theta, method=method, backend=backend)  # warm-up: kernels, memory pool
    best, g = np.inf, None
    for rep in range(3):
        start = time.perf_counter()
        g = qdiff.grad(c, h, theta, method=method, backend=backend)
        if backend == "cupy":
            import cupy

            cupy.cuda.Device().synchronize()
        best = min(best, time.perf_counter() - start)
        if best > 10.0 or (rep == 1 and best > 0.3):  # slow cases: fewer repetitions
            break
    return best, np.asarray(g)


def cpu_threads() -> str:
    """How many threads the CPU kernels use (numba), for the record: timings depend on it and on load."""
    try:
        import numba

        return f"CPU kernels use {numba.get_num_threads()} thread(s) (NUMBA_NUM_THREADS to change)"
    except ImportError:  # pragma: no cover
        return "numba not available"


def warm_up(gpu: bool, layers: int) -> None:
    """Compile the kernels of every method and backend used, on a 4-qubit circuit."""
    c, h = ansatz(4, layers), ising(4)
    theta = np.zeros(c.num_params)
    for method, backend in [("adjoint", "numpy"), ("parameter-shift", "numpy")] + [("adjoint", "cupy")] * gpu:
        qdiff.grad(c, h, theta, method=method, backend=backend)


def run_scaling(sizes: list[int], gpu_sizes: list[int], ps_max: int, layers: int) -> dict:
    """Adjoint (numpy, cupy) and parameter-shift (numpy) gradient times per qubit count."""
    warm_up(bool(gpu_sizes), layers)
    rows = {"numpy": {}, "cupy": {}, "parameter-shift": {}}
    gpu_agreement, ps_agreement = 0.0, 0.0
    all_sizes = sorted(set(sizes) | set(gpu_sizes))
    for k, n in enumerate(all_sizes, start=1):
        c, h = ansatz(n, layers), ising(n)
        theta = np.random.default_rng(n).uniform(-np.pi, np.pi, c.num_params)
        parts = []
        g_cpu = None
        if n in sizes:
            t, g_cpu = time_grad(c, h, theta, "adjoint", "numpy")
            rows["numpy"][n] = t
            parts.append(f"numpy adjoint {t * 1e3:9.1f} ms")
            if n <= ps_max:
                t_ps, g_ps = time_grad(c, h, theta, "parameter-shift", "numpy")
                rows["parameter-shift"][n] = t_ps
                ps_agreement = max(ps_agreement, float(np.max(np.abs(g_ps - g_cpu))))
                parts.append(f"numpy parameter-shift {t_ps * 1e3:9.1f} ms")
        if n in gpu_sizes:
            t_gpu, g_gpu = time_grad(c, h, theta, "adjoint", "cupy")
            rows["cupy"][n] = t_gpu
            parts.append(f"cupy adjoint {t_gpu * 1e3:8.1f} ms")
            if g_cpu is not None:
                gpu_agreement = max(gpu_agreement, float(np.max(np.abs(g_gpu - g_cpu))))
        progress(k, len(all_sizes), f"n = {n:2d} ({c.num_params:3d} params, {len(c):3d} gates): " + ", ".join(parts))
    return {"times": rows, "gpu_vs_cpu": gpu_agreement, "ps_vs_adjoint": ps_agreement}


# %% [markdown]
# ## Plot and run
#
# Time against qubit count on a log scale: straight lines mean exponential growth; the gap between the
# adjoint and parameter-shift lines grows with the number of parameters; the GPU pays a fixed launch
# overhead at small `n` and wins once the state is large.

# %%
def plot(times: dict, gpu_note: str, layers: int) -> str:
    """Gradient time vs number of qubits, one line per method/backend."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {"numpy": ("o-", "adjoint, numpy (CPU)"), "cupy": ("s-", "adjoint, CuPy (GPU)"),
              "parameter-shift": ("^--", "parameter-shift, numpy (CPU)")}
    for key, (style, label) in styles.items():
        if times[key]:
            ns = sorted(times[key])
            ax.semilogy(ns, [times[key][n] for n in ns], style, label=label)
    ax.set(xlabel="qubits", ylabel="gradient time (s)",
           title=f"Full gradient of <H>, {layers}-layer ansatz (2 n layers parameters)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(title=gpu_note, fontsize=8, title_fontsize=8)
    fig.tight_layout()
    return save_figure(fig, "06_scaling.png")


def main(quick: bool = False) -> dict:
    """Time the adjoint gradient vs qubit count; returns the times and agreement checks."""
    quick = is_quick(quick)
    banner("Scaling of the adjoint gradient", quick)
    gpu_ok, why = cupy_status()
    print(f"CPU: {os.cpu_count()} cores; {cpu_threads()}")
    if gpu_ok:
        print(f"GPU: CuPy is usable ({why}); timing numpy and cupy")
    else:
        print(f"no GPU: {why}. Running the CPU part only.")
    if quick:
        sizes, gpu_sizes, ps_max, layers = list(range(4, 13, 2)), [], 10, 2
    else:
        sizes, gpu_sizes, ps_max, layers = list(range(4, 21, 2)), list(range(4, 27, 2)), 12, 4
    if not gpu_ok:
        gpu_sizes = []
    elif quick:
        gpu_sizes = list(sizes)
    with Timer() as timer:
        res = run_scaling(sizes, gpu_sizes, ps_max, layers)
        print(f"max |parameter-shift - adjoint| = {res['ps_vs_adjoint']:.1e}")
        if gpu_ok:
            print(f"max |cupy - numpy| gradient difference = {res['gpu_vs_cpu']:.1e}")
        ns = sorted(res["times"]["numpy"])
        if len(ns) >= 3:
            slope = np.polyfit(ns[-3:], np.log2([res["times"]["numpy"][n] for n in ns[-3:]]), 1)[0]
            print(f"numpy: time grows by x{2**slope:.2f} per added qubit at the largest sizes")
        note = "GPU: " + ("CuPy" if gpu_ok else "none available, CPU only")
        path = plot(res["times"], note, layers)
    print(f"done in {timer.seconds:.1f} s")
    return {**res, "gpu": gpu_ok, "gpu_status": why, "plot": path, "seconds": timer.seconds}


if __name__ == "__main__":
    main()
