# %% [markdown]
# # QAOA for MaxCut with the native API
#
# MaxCut: split the nodes of a graph into two groups so that as many edges as possible run between the
# groups. With one qubit per node (bit = group), the number of cut edges is the diagonal operator
#
# $$C = \sum_{(i,j) \in E} \tfrac12 (1 - Z_i Z_j).$$
#
# The Quantum Approximate Optimisation Algorithm (QAOA) alternates `p` times a cost layer
# $e^{-i\gamma C}$ (one `IsingZZ` per edge) and a mixer layer $e^{-i\beta \sum X}$ (one `RX` per node),
# starting from $|+\rangle^{\otimes n}$, and tunes the $2p$ angles to maximise $\langle C\rangle$.
#
# What this shows about qdiff:
#
# - **shared parameters**: all edges of a layer use the same `ParamRef` γ_l (and `2 * p[..]` scales a
#   reference), and the gradient comes out per shared parameter;
# - **batched training**: several random starts are optimised at once: `qdiff.value_and_grad` with a
#   `(B, P)` parameter batch returns `(B,)` values and `(B, P)` adjoint gradients in one call;
# - measuring: `qdiff.probs` and `qdiff.sample` give the cut found, which we compare with brute force.

# %%
from __future__ import annotations

import itertools

import numpy as np

import qdiff
from qdiff import Circuit, Z

try:  # _common.py sits next to the tutorials (the working folder when run as a script or notebook)
    from _common import Timer, banner, is_quick, plt, progress, save_figure, should_print
except ImportError:  # loaded from elsewhere by path, e.g. by the tests
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import Timer, banner, is_quick, plt, progress, save_figure, should_print

# %% [markdown]
# ## 1. A random graph
#
# An Erdős–Rényi graph with edge probability 0.5, drawn until it is connected.

# %%
def random_graph(n: int, prob: float = 0.5, seed: int = 3) -> list[tuple[int, int]]:
    """Edges of a connected random graph on ``n`` nodes."""
    rng = np.random.default_rng(seed)
    while True:
        edges = [(i, j) for i, j in itertools.combinations(range(n), 2) if rng.random() < prob]
        reach, frontier = {0}, [0]
        while frontier:
            u = frontier.pop()
            for i, j in edges:
                for a, b in ((i, j), (j, i)):
                    if a == u and b not in reach:
                        reach.add(b)
                        frontier.append(b)
        if len(reach) == n:
            return edges


# %% [markdown]
# ## 2. Brute force, for reference
#
# With `n` ≤ ~20 we can list all $2^n$ assignments. Bit `w` of basis state `k` is the group of node `w`
# (wire 0 is the most significant bit, as in qdiff's states), so this array is also the diagonal of
# $C$ in qdiff's basis order.

# %%
def cut_values(n: int, edges: list[tuple[int, int]]) -> np.ndarray:
    """Number of cut edges for every basis state 0 .. 2**n - 1."""
    k = np.arange(2**n)
    bits = (k[:, None] >> (n - 1 - np.arange(n))[None, :]) & 1
    return sum((bits[:, i] != bits[:, j]).astype(int) for i, j in edges)


# %% [markdown]
# ## 3. The QAOA circuit and cost
#
# Parameters: `theta = [γ_1, β_1, γ_2, β_2, ...]`. `IsingZZ(γ) = exp(-iγ ZZ/2)`, so one `IsingZZ(γ)` per
# edge implements the cost layer up to a global phase; `RX(2β)` is the mixer.
#
# We *minimise* $\langle H\rangle$ with $H = \sum_{(i,j)} \tfrac12 Z_i Z_j$, because
# $\langle C\rangle = |E|/2 - \langle H\rangle$.

# %%
def qaoa_circuit(n: int, edges: list[tuple[int, int]], layers: int) -> Circuit:
    """p-layer QAOA circuit for MaxCut on ``edges``; 2 * layers parameters."""
    c = Circuit(n)
    theta = c.params(2 * layers)
    for w in range(n):
        c.h(w)
    for layer in range(layers):
        gamma, beta = theta[2 * layer], theta[2 * layer + 1]
        for i, j in edges:
            c.isingzz(gamma, wires=(i, j))
        for w in range(n):
            c.rx(2 * beta, w)
    return c


def cost_observable(edges: list[tuple[int, int]]):
    """H = sum over edges of Z_i Z_j / 2 (so that <C> = |E|/2 - <H>)."""
    h = 0.0
    for i, j in edges:
        h = h + 0.5 * (Z(i) @ Z(j))
    return h


# %% [markdown]
# ## 4. Training several starts at once
#
# A few lines of Adam in numpy. Each step is *one* call that returns the values and adjoint gradients of
# every start in the batch.

# %%
def train(c: Circuit, h, n_edges: int, starts: int, steps: int, lr: float = 0.05, seed: int = 0) -> dict:
    """Adam on a batch of random starts; returns <C> per step and start, and the final parameters."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(0.0, 0.5, size=(starts, c.num_params))
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    b1, b2, eps = 0.9, 0.999, 1e-8
    history = []
    for step in range(1, steps + 1):
        values, grads = qdiff.value_and_grad(c, h, theta, method="adjoint")
        expected_cut = n_edges / 2 - values
        history.append(expected_cut)
        if should_print(step, steps):
            progress(step, steps, f"<C>: best {expected_cut.max():.4f}, mean {expected_cut.mean():.4f} "
                                  f"over {starts} starts")
        m = b1 * m + (1 - b1) * grads
        v = b2 * v + (1 - b2) * grads**2
        theta = theta - lr * (m / (1 - b1**step)) / (np.sqrt(v / (1 - b2**step)) + eps)
    final = n_edges / 2 - qdiff.expval(c, h, theta)
    history.append(final)
    return {"history": np.array(history), "theta": theta, "final": final}


# %% [markdown]
# ## Plot and run
#
# Left: the expected cut per step for every start. Middle: the graph coloured by the cut found (cut
# edges in red). Right: the probabilities of the most likely bit strings after training.

# %%
def plot(history, cmax, n, edges, bits, probs, values) -> str:
    """Cost curves, the graph coloured by the cut, and the output distribution."""
    import networkx as nx

    fig, ax = plt.subplots(1, 3, figsize=(16, 4.5))
    ax[0].plot(history, alpha=0.6)
    ax[0].axhline(cmax, color="r", ls="--", label=f"max cut = {cmax}")
    ax[0].set(xlabel="step", ylabel=r"$\langle C\rangle$", title="QAOA training (all starts)")
    ax[0].legend()
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(edges)
    pos = nx.spring_layout(g, seed=1)
    cut = [bits[i] != bits[j] for i, j in edges]
    nx.draw_networkx(g, pos, ax=ax[1], node_color=["tab:blue" if b else "tab:orange" for b in bits],
                     edge_color=["tab:red" if x else "lightgray" for x in cut],
                     width=[2.5 if x else 1.0 for x in cut], font_color="white")
    ax[1].set_title(f"Cut found: {sum(cut)} of {len(edges)} edges")
    ax[1].axis("off")
    top = np.argsort(probs)[::-1][:12]
    labels = [format(k, f"0{n}b") for k in top]
    colours = ["tab:green" if values[k] == cmax else "tab:gray" for k in top]
    ax[2].bar(range(len(top)), probs[top], color=colours)
    ax[2].set_xticks(range(len(top)), labels, rotation=70, fontsize=8)
    ax[2].set(ylabel="probability", title="Most likely outcomes (green: a maximum cut)")
    fig.tight_layout()
    return save_figure(fig, "03_qaoa_maxcut.png")


def main(quick: bool = False) -> dict:
    """QAOA MaxCut; returns the approximation ratio, the cut found and the brute-force optimum."""
    quick = is_quick(quick)
    banner("QAOA for MaxCut (native API)", quick)
    n, layers, starts, steps = (7, 2, 6, 60) if quick else (10, 4, 8, 150)
    with Timer() as timer:
        edges = random_graph(n)
        values = cut_values(n, edges)
        cmax = int(values.max())
        print(f"graph: {n} nodes, {len(edges)} edges; brute force over {2**n} cuts: max cut = {cmax}")
        c, h = qaoa_circuit(n, edges, layers), cost_observable(edges)
        print(f"QAOA p = {layers}: {len(c)} gates, {c.num_params} parameters shared by them")
        res = train(c, h, len(edges), starts, steps)
        best = int(np.argmax(res["final"]))
        theta = res["theta"][best]
        expected = float(res["final"][best])
        probs = qdiff.probs(c, params=theta)
        check = float(probs @ values)  # <C> from the output distribution
        most_likely = int(np.argmax(probs))
        samples = qdiff.sample(c, 100, params=theta, seed=0)
        sample_idx = samples @ (1 << (n - 1 - np.arange(n)))
        found = int(sample_idx[np.argmax(values[sample_idx])])
        bits = [int(b) for b in format(found, f"0{n}b")]
        p_opt = float(probs[values == cmax].sum())
        ratio = expected / cmax
        print(f"best start: <C> = {expected:.4f} (from probabilities: {check:.4f}), approximation ratio "
              f"<C>/max = {ratio:.3f}")
        print(f"most likely outcome {format(most_likely, f'0{n}b')} cuts {values[most_likely]} edges; "
              f"probability of a maximum cut: {p_opt:.3f}")
        print(f"best of 100 samples: {''.join(map(str, bits))} cuts {values[found]} of {len(edges)} edges "
              f"(maximum {cmax})")
        path = plot(res["history"], cmax, n, edges, bits, probs, values)
    print(f"done in {timer.seconds:.1f} s")
    return {"n": n, "edges": edges, "max_cut": cmax, "expected_cut": expected, "ratio": ratio,
            "cut_found": int(values[found]), "bits": bits, "most_likely_cut": int(values[most_likely]),
            "p_optimal": p_opt, "probs_check": abs(check - expected), "history": res["history"],
            "plot": path, "seconds": timer.seconds}


if __name__ == "__main__":
    main()
