# %% [markdown]
# # A hybrid quantum-classical classifier in PyTorch
#
# A quantum circuit as one layer of a PyTorch model: `qml.qnn.TorchLayer` wraps a QNode on
# `qdiff.qubit` into a `torch.nn.Module` whose weights are ordinary `torch` parameters. Backpropagation
# runs through the classical layers with autograd and through the circuit with qdiff's **adjoint**
# method (`diff_method="adjoint"`).
#
# The task: the classic "two moons" data set (two interleaved half circles, made here with numpy),
# classified by
#
# `Linear(2 → 2) → quantum layer (2 qubits: angles in, <Z> out) → Linear(2 → 2)`.
#
# We train with Adam on the cross-entropy loss, report the accuracy on held-out test points (target:
# at least 90%) and draw the decision boundary.

# %%
from __future__ import annotations

import numpy as np
import pennylane as qml
import torch
from torch import nn

try:  # _common.py sits next to the tutorials (the working folder when run as a script or notebook)
    from _common import Timer, banner, is_quick, plt, progress, save_figure
except ImportError:  # loaded from elsewhere by path, e.g. by the tests
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import Timer, banner, is_quick, plt, progress, save_figure

DEVICE = "qdiff.qubit"
N_QUBITS = 2
N_LAYERS = 3

# %% [markdown]
# ## 1. Data: two moons
#
# Points on two half circles, the second shifted and flipped, plus Gaussian noise; standardised.

# %%
def two_moons(n: int, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points (features ``(n, 2)``, labels 0/1) of the two-moons data set."""
    rng = np.random.default_rng(seed)
    n0 = n // 2
    t0 = rng.uniform(0, np.pi, n0)
    t1 = rng.uniform(0, np.pi, n - n0)
    x0 = np.stack([np.cos(t0), np.sin(t0)], axis=1)
    x1 = np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], axis=1)
    x = np.concatenate([x0, x1]) + rng.normal(0, noise, (n, 2))
    y = np.concatenate([np.zeros(n0, int), np.ones(n - n0, int)])
    perm = rng.permutation(n)
    x, y = x[perm], y[perm]
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return x, y


# %% [markdown]
# ## 2. The quantum layer
#
# A *data re-uploading* circuit on 2 qubits: the layer's two inputs enter as `RY` angles
# (`AngleEmbedding`), followed by a trainable entangling layer (`StronglyEntanglingLayers`, 6 angles),
# and this is repeated `N_LAYERS` times, so the circuit computes a rich nonlinear function of its input.
# It returns `<Z>` of each qubit. A classical `Linear(2 → 2)` before it learns how to feed the features
# in, and one after it turns the expectation values into class logits.
#
# `TorchLayer` needs the shapes of the trainable arguments (`weight_shapes`) and initialises them; the
# argument named `inputs` receives the batch.
#
# Speed: PennyLane sends a whole mini-batch to qdiff as *one* broadcast tape, which qdiff simulates as
# one batched statevector. With `device_vjp=True` the backward pass is one adjoint vector-Jacobian
# product for the whole batch (gradients for the circuit weights *and* for the inputs, which flow back
# into the first `Linear`), instead of a full Jacobian per sample.

# %%
def quantum_layer(n_qubits: int = N_QUBITS, n_layers: int = N_LAYERS) -> nn.Module:
    """TorchLayer around a data re-uploading QNode on qdiff.qubit with adjoint gradients."""
    dev = qml.device(DEVICE, wires=n_qubits)

    @qml.qnode(dev, interface="torch", diff_method="adjoint", device_vjp=True)
    def circuit(inputs, weights):
        for layer in range(n_layers):
            qml.AngleEmbedding(inputs, wires=range(n_qubits), rotation="Y")
            qml.StronglyEntanglingLayers(weights[layer : layer + 1], wires=range(n_qubits))
        return [qml.expval(qml.Z(w)) for w in range(n_qubits)]

    return qml.qnn.TorchLayer(circuit, {"weights": (n_layers, n_qubits, 3)})


def hybrid_model() -> nn.Module:
    """Linear (features -> angles), quantum layer (<Z> per qubit), Linear (logits)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, N_QUBITS), quantum_layer(), nn.Linear(N_QUBITS, 2)).double()


# %% [markdown]
# ## 3. Training
#
# Mini-batches of 16, Adam with learning rate 0.05. One line per epoch.

# %%
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of correctly classified points."""
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).double().mean())


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
          epochs: int, batch: int = 16, lr: float = 0.05) -> dict:
    """Adam on cross-entropy; returns loss and accuracies per epoch."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(1)
    hist = {"loss": [], "train_acc": [], "test_acc": []}
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), batch):
            idx = perm[i : i + batch]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        hist["loss"].append(total / len(x))
        hist["train_acc"].append(accuracy(model, x, y))
        hist["test_acc"].append(accuracy(model, x_test, y_test))
        progress(epoch, epochs, f"loss {hist['loss'][-1]:.4f}  train acc {hist['train_acc'][-1]:.3f}  "
                                f"test acc {hist['test_acc'][-1]:.3f}")
    return hist


# %% [markdown]
# ## Plot and run
#
# Left: the decision boundary (the model's class-1 probability over the plane) with the test points.
# Right: loss and accuracy per epoch.

# %%
def plot(model: nn.Module, x: np.ndarray, y: np.ndarray, hist: dict, grid_points: int) -> str:
    """Decision boundary and training curves."""
    lo, hi = x.min(axis=0) - 0.5, x.max(axis=0) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], grid_points), np.linspace(lo[1], hi[1], grid_points))
    grid = torch.tensor(np.stack([gx.ravel(), gy.ravel()], axis=1), dtype=torch.float64)
    with torch.no_grad():
        prob = torch.softmax(model(grid), dim=1)[:, 1].numpy().reshape(gx.shape)
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.5))
    cs = ax[0].contourf(gx, gy, prob, levels=20, cmap="RdBu_r", alpha=0.7)
    ax[0].contour(gx, gy, prob, levels=[0.5], colors="k")
    ax[0].scatter(x[:, 0], x[:, 1], c=y, cmap="RdBu_r", edgecolors="k", s=25)
    fig.colorbar(cs, ax=ax[0], label="P(class 1)")
    ax[0].set(title=f"Decision boundary (test accuracy {hist['test_acc'][-1]:.1%})", xlabel="$x_1$", ylabel="$x_2$")
    ax[1].plot(range(1, len(hist["loss"]) + 1), hist["loss"], "o-", label="training loss")
    ax[1].plot(range(1, len(hist["loss"]) + 1), hist["train_acc"], "s-", label="train accuracy")
    ax[1].plot(range(1, len(hist["loss"]) + 1), hist["test_acc"], "^-", label="test accuracy")
    ax[1].set(xlabel="epoch", title="Training")
    ax[1].legend()
    fig.tight_layout()
    return save_figure(fig, "04_hybrid_classifier.png")


def main(quick: bool = False) -> dict:
    """Train the hybrid classifier; returns the test accuracy and the training history."""
    quick = is_quick(quick)
    banner("Hybrid classifier: PyTorch + qdiff.qubit", quick)
    n_train, n_test, epochs, grid_points = (120, 100, 6, 30) if quick else (300, 200, 15, 60)
    with Timer() as timer:
        x, y = two_moons(n_train + n_test)
        xt, yt = torch.tensor(x), torch.tensor(y)
        x_train, y_train, x_test, y_test = xt[:n_train], yt[:n_train], xt[n_train:], yt[n_train:]
        model = hybrid_model()
        n_quantum = sum(p.numel() for p in model[1].parameters())
        n_total = sum(p.numel() for p in model.parameters())
        print(f"data: {n_train} training and {n_test} test points; model: {n_total} parameters "
              f"({n_quantum} in the {N_QUBITS}-qubit circuit)")
        hist = train(model, x_train, y_train, x_test, y_test, epochs)
        test_acc = hist["test_acc"][-1]
        print(f"test accuracy {test_acc:.1%} ({'>=' if test_acc >= 0.9 else '<'} 90%)")
        path = plot(model, x[n_train:], y[n_train:], hist, grid_points)
    print(f"done in {timer.seconds:.1f} s")
    return {"test_accuracy": test_acc, "train_accuracy": hist["train_acc"][-1], "history": hist,
            "plot": path, "seconds": timer.seconds}


if __name__ == "__main__":
    main()
