# %% [markdown]
# # qdiff quickstart: circuits, expectation values, gradients, training
#
# qdiff is a statevector simulator whose circuits are differentiable. This tutorial takes a few seconds
# and shows the whole workflow:
#
# 1. build a parameterised circuit with the native API (`qdiff.Circuit`, trainable `ParamRef`s);
# 2. measure an observable (`qdiff.expval`);
# 3. differentiate it with the **adjoint** method and with the **parameter-shift** rule, and check that
#    they agree (and agree with finite differences);
# 4. run the same circuit through PennyLane with `qml.device("qdiff.qubit")`;
# 5. train it: plain gradient descent on a small VQE-like cost (the energy of a transverse-field Ising
#    chain), printing the loss at every step.
#
# Run it with `python tutorials/01_quickstart.py` (add `--quick` for the test-sized run).

# %%
from __future__ import annotations

import numpy as np

import qdiff
from qdiff import Circuit, X, Z

try:  # _common.py sits next to the tutorials (the working folder when run as a script or notebook)
    from _common import Timer, banner, is_quick, plt, progress, save_figure
except ImportError:  # loaded from elsewhere by path, e.g. by the tests
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import Timer, banner, is_quick, plt, progress, save_figure

# %% [markdown]
# ## 1. A circuit with trainable parameters
#
# `c.params(k)` reserves `k` trainable parameters and returns handles `p[0] .. p[k-1]`. A handle can be
# used in any gate, scaled and shifted (`2 * p[0] + 0.1`), and reused by several gates: gradients are
# always taken with respect to the circuit's parameter vector `theta` of length `c.num_params`.
#
# Our ansatz on three qubits: a layer of `RY`s, then twice (a CNOT chain, a layer of `RY`s).

# %%
N_WIRES = 3
LAYERS = 2


def build_ansatz(n: int = N_WIRES, layers: int = LAYERS) -> Circuit:
    """RY layer, then ``layers`` x (CNOT chain, RY layer): n (layers + 1) trainable angles."""
    c = Circuit(n)
    p = c.params(n * (layers + 1))
    for w in range(n):
        c.ry(p[w], w)
    for layer in range(1, layers + 1):
        for w in range(n - 1):
            c.cnot(w, w + 1)
        for w in range(n):
            c.ry(p[n * layer + w], w)
    return c


def ising_hamiltonian(n: int = N_WIRES, field: float = 0.7):
    """Transverse-field Ising chain ``H = -sum Z_i Z_{i+1} - field * sum X_i`` (a qdiff observable)."""
    h = -1.0 * (Z(0) @ Z(1))
    for w in range(1, n - 1):
        h = h - Z(w) @ Z(w + 1)
    for w in range(n):
        h = h - field * X(w)
    return h


# %% [markdown]
# ## 2. Expectation values
#
# `qdiff.expval(circuit, observable, theta)` simulates and returns `<H>`. Parameters of shape `(B, P)`
# evaluate a whole batch of parameter vectors in one pass (used for the sweep below).

# %%
def show_expval(c: Circuit, h, theta: np.ndarray) -> float:
    """Print and return <H> at ``theta``."""
    energy = float(qdiff.expval(c, h, theta))
    print(f"<H> at theta = {np.round(theta, 3)}: {energy:+.10f}")
    return energy


# %% [markdown]
# ## 3. Gradients: adjoint vs parameter-shift
#
# - `method="adjoint"` runs the circuit once forwards and once backwards: the cost of the whole
#   gradient is a small constant times one simulation, whatever the number of parameters.
# - `method="parameter-shift"` evaluates the circuit at shifted parameters (two runs per parameter
#   here); it is what real hardware would use.
# - `method="finite-diff"` is a numerical reference (accurate to about 1e-9 here).
#
# Both exact methods must agree to rounding error.

# %%
def fmt(g: np.ndarray) -> str:
    """A gradient on one line."""
    return np.array2string(np.asarray(g), precision=6, suppress_small=True, max_line_width=200, sign=" ")


def compare_gradients(c: Circuit, h, theta: np.ndarray) -> dict:
    """Gradients by all three methods and their largest differences."""
    grads = {m: qdiff.grad(c, h, theta, method=m) for m in ("adjoint", "parameter-shift", "finite-diff")}
    for m, g in grads.items():
        print(f"  {m:<16} {fmt(g)}")
    adj_ps = float(np.max(np.abs(grads["adjoint"] - grads["parameter-shift"])))
    adj_fd = float(np.max(np.abs(grads["adjoint"] - grads["finite-diff"])))
    print(f"max |adjoint - parameter-shift| = {adj_ps:.2e},  max |adjoint - finite-diff| = {adj_fd:.2e}")
    return {"grads": grads, "adjoint_vs_ps": adj_ps, "adjoint_vs_fd": adj_fd}


# %% [markdown]
# ### A parameter sweep
#
# Sweep the first angle over a full period with the others fixed, and compute `<H>` and `d<H>/dθ₀`
# at every point by each method. `qdiff.value_and_jacobian` with a `(B, P)` batch returns the values
# `(B,)` and the Jacobian `(B, P)` in one call.

# %%
def sweep(c: Circuit, h, theta: np.ndarray, points: int) -> dict:
    """<H> and d<H>/d theta_0 along theta_0 in [-pi, pi] by the three methods."""
    xs = np.linspace(-np.pi, np.pi, points)
    batch = np.repeat(theta[None, :], points, axis=0)
    batch[:, 0] = xs
    out = {"x": xs}
    for m in ("adjoint", "parameter-shift", "finite-diff"):
        values, jac = qdiff.value_and_jacobian(c, h, batch, method=m)
        out["energy"] = values
        out[m] = jac[:, 0]
    return out


# %% [markdown]
# ## 4. The same circuit in PennyLane, on `qdiff.qubit`
#
# qdiff registers a PennyLane device. Any QNode runs on it; `diff_method="adjoint"` uses qdiff's
# adjoint sweep, `"parameter-shift"` PennyLane's own rule. The numbers match the native API.

# %%
def through_pennylane(theta: np.ndarray, n: int = N_WIRES, layers: int = LAYERS, field: float = 0.7) -> dict:
    """Energy and gradients of the same ansatz as a QNode on qml.device('qdiff.qubit')."""
    import pennylane as qml
    from pennylane import numpy as pnp

    dev = qml.device("qdiff.qubit", wires=n)
    obs = [qml.Z(w) @ qml.Z(w + 1) for w in range(n - 1)] + [qml.X(w) for w in range(n)]
    h_pl = qml.Hamiltonian([-1.0] * (n - 1) + [-field] * n, obs)

    def circuit(t):
        for w in range(n):
            qml.RY(t[w], wires=w)
        for layer in range(1, layers + 1):
            for w in range(n - 1):
                qml.CNOT(wires=[w, w + 1])
            for w in range(n):
                qml.RY(t[n * layer + w], wires=w)
        return qml.expval(h_pl)

    out = {}
    for method in ("adjoint", "parameter-shift"):
        qnode = qml.QNode(circuit, dev, diff_method=method)
        t = pnp.array(theta, requires_grad=True)
        out[f"energy_{method}"] = float(qnode(t))
        out[f"grad_{method}"] = np.asarray(qml.grad(qnode)(t))
    print(f"qdiff.qubit  <H> = {out['energy_adjoint']:+.10f}")
    print(f"qdiff.qubit  grad (adjoint)         {fmt(out['grad_adjoint'])}")
    print(f"qdiff.qubit  grad (parameter-shift) {fmt(out['grad_parameter-shift'])}")
    return out


# %% [markdown]
# ## 5. Training: gradient descent on the energy
#
# `qdiff.value_and_grad` returns the loss and its adjoint gradient from one forward pass. Plain
# gradient descent, `theta <- theta - lr * grad`, drives the energy towards the ground-state energy
# (computed exactly here from the 8x8 matrix of `H`).

# %%
LR = 0.4


def train(c: Circuit, h, theta0: np.ndarray, steps: int, lr: float) -> dict:
    """Gradient descent on <H>; prints the loss per step."""
    theta = theta0.copy()
    losses = []
    for step in range(1, steps + 1):
        loss, g = qdiff.value_and_grad(c, h, theta, method="adjoint")
        losses.append(float(loss))
        progress(step, steps, f"loss = {loss:+.8f}  |grad| = {np.linalg.norm(g):.2e}")
        theta = theta - lr * g
    final = float(qdiff.expval(c, h, theta))
    losses.append(final)
    return {"losses": np.array(losses), "theta": theta, "final_energy": final}


def exact_ground_energy(h, n: int) -> float:
    """Lowest eigenvalue of the (small, dense) matrix of ``h``."""
    from qdiff.observables import observable_matrix

    return float(np.linalg.eigvalsh(observable_matrix(h, list(range(n))))[0])


# %% [markdown]
# ## Plot and run
#
# Left: `<H>` along the sweep. Middle: its derivative by the three methods (the curves lie on top of
# each other). Right: the training loss against the exact ground-state energy.

# %%
def plot(sw: dict, training: dict, e0: float) -> str:
    """Sweep, derivative by method, and training curve in one figure."""
    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    ax[0].plot(sw["x"], sw["energy"], "k-")
    ax[0].set(xlabel=r"$\theta_0$", ylabel=r"$\langle H\rangle$", title="Energy along a parameter sweep")
    ax[1].plot(sw["x"], sw["adjoint"], "-", lw=3, alpha=0.5, label="adjoint")
    ax[1].plot(sw["x"][::3], sw["parameter-shift"][::3], "o", ms=4, label="parameter-shift")
    ax[1].plot(sw["x"][1::3], sw["finite-diff"][1::3], "x", ms=5, label="finite differences")
    ax[1].set(xlabel=r"$\theta_0$", ylabel=r"$\partial\langle H\rangle/\partial\theta_0$", title="Its derivative")
    ax[1].legend()
    ax[2].plot(training["losses"], "o-", ms=3, label="gradient descent")
    ax[2].axhline(e0, color="r", ls="--", label=f"exact ground state {e0:.4f}")
    ax[2].set(xlabel="step", ylabel=r"$\langle H\rangle$", title="Training")
    ax[2].legend()
    fig.tight_layout()
    return save_figure(fig, "01_quickstart.png")


def main(quick: bool = False) -> dict:
    """Run the quickstart; returns energies, gradient agreement, training result and the plot path."""
    quick = is_quick(quick)
    banner("qdiff quickstart", quick)
    with Timer() as timer:
        c, h = build_ansatz(), ising_hamiltonian()
        print(f"circuit: {len(c)} gates on {c.num_wires} wires, {c.num_params} trainable parameters")
        theta = np.random.default_rng(7).uniform(-0.5, 0.5, c.num_params)
        energy = show_expval(c, h, theta)
        cmp = compare_gradients(c, h, theta)
        sw = sweep(c, h, theta, points=61 if quick else 121)
        sweep_ps = float(np.max(np.abs(sw["adjoint"] - sw["parameter-shift"])))
        sweep_fd = float(np.max(np.abs(sw["adjoint"] - sw["finite-diff"])))
        print(f"sweep of {len(sw['x'])} points: max |adjoint - ps| = {sweep_ps:.1e}, "
              f"max |adjoint - fd| = {sweep_fd:.1e}")
        pl = through_pennylane(theta)
        pl_vs_native = max(abs(pl["energy_adjoint"] - energy),
                           float(np.max(np.abs(pl["grad_adjoint"] - cmp["grads"]["adjoint"]))),
                           float(np.max(np.abs(pl["grad_parameter-shift"] - cmp["grads"]["adjoint"]))))
        print(f"max difference qdiff.qubit vs native API: {pl_vs_native:.1e}")
        e0 = exact_ground_energy(h, c.num_wires)
        print(f"training (gradient descent, lr = {LR}):")
        training = train(c, h, theta, steps=30 if quick else 80, lr=LR)
        gap = training["final_energy"] - e0
        print(f"final energy {training['final_energy']:+.8f}, exact ground state {e0:+.8f}, gap {gap:.2e}")
        path = plot(sw, training, e0)
    print(f"done in {timer.seconds:.1f} s")
    return {
        "energy": energy, "grad_adjoint": cmp["grads"]["adjoint"],
        "grad_parameter_shift": cmp["grads"]["parameter-shift"],
        "adjoint_vs_ps": max(cmp["adjoint_vs_ps"], sweep_ps), "adjoint_vs_fd": max(cmp["adjoint_vs_fd"], sweep_fd),
        "pennylane_vs_native": pl_vs_native, "losses": training["losses"], "final_energy": training["final_energy"],
        "exact_energy": e0, "plot": path, "seconds": timer.seconds,
    }


if __name__ == "__main__":
    main()
