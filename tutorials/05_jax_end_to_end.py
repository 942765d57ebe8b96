# %% [markdown]
# # A classical program with a quantum part, differentiated end to end with JAX
#
# Quantum circuits rarely stand alone: physical parameters are turned into gate angles by classical
# code, and measured expectation values are turned into predictions by more classical code. If every
# piece is differentiable, `jax.grad` differentiates the whole program at once and a plain gradient
# loop can fit it to data.
#
# The example: a **Rabi oscillation experiment**. A qubit is driven with Rabi frequency Ω at detuning δ
# for a time `t`, then measured. The recorded signal is
#
# $$y(t) = A \, e^{-t/T} \, \langle Z\rangle(t) + b + \text{noise},$$
#
# with a readout contrast `A`, a decay time `T` and an offset `b`. The program has three parts:
#
# 1. **classical pre-processing** (JAX): (Ω, δ, t) → gate angles. Driving for time `t` is a rotation by
#    $\varphi = t\sqrt{\Omega^2 + \delta^2}$ about an axis tilted by $\alpha = \arctan(\Omega/\delta)$ from
#    z, i.e. the gates `RY(-α) RZ(φ) RY(α)`;
# 2. **the quantum part**: ⟨Z⟩ of that circuit, on `qdiff.qubit` (`interface="jax"`, adjoint
#    gradients, under `jax.jit`), all time points in one call (parameter broadcasting);
# 3. **classical post-processing** (JAX): decay envelope, contrast and offset, and the loss.
#
# We generate noisy data from known parameters, make an initial guess from the data (an FFT for the
# frequency), and recover the parameters with a hand-written Adam loop (no optax). As a check, the same
# quantum part is also built with qdiff's native API and wrapped as a JAX function with
# `jax.custom_vjp` (forward: `qdiff.expval`; backward: one adjoint `qdiff.vjp` sweep for the whole
# batch); both give the same values and gradients.

# %%
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml

import qdiff
from qdiff import Circuit, Z

try:  # _common.py sits next to the tutorials (the working folder when run as a script or notebook)
    from _common import Timer, banner, is_quick, plt, progress, save_figure, should_print
except ImportError:  # loaded from elsewhere by path, e.g. by the tests
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import Timer, banner, is_quick, plt, progress, save_figure, should_print

DEVICE = "qdiff.qubit"
X64 = True
"""Use 64-bit floats in JAX (set globally in ``main``; see the note there)."""
TRUE = {"omega": 3.0, "delta": 1.2, "T": 4.0, "amp": 0.9, "offset": 0.05}
"""The parameters that generate the data (Ω and δ in rad/µs, T in µs)."""

# %% [markdown]
# ## 1. Classical pre-processing: physics → gate angles
#
# The model parameters are a dict (a JAX pytree). `T` is stored as `log_T` so that it stays positive.

# %%
def gate_angles(params: dict, t: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Tilt of the rotation axis (scalar) and rotation angle at each time ``t``."""
    alpha = jnp.arctan2(params["omega"], params["delta"])
    phi = jnp.sqrt(params["omega"] ** 2 + params["delta"] ** 2) * t
    return alpha, phi


# %% [markdown]
# ## 2. The quantum part on `qdiff.qubit`
#
# `phi` is a vector (one angle per time point): PennyLane broadcasts the circuit over it. A plain
# evaluation is one batched qdiff simulation; for the Jacobian, PennyLane hands the device one tape per
# time point (the broadcast angle depends on trainable parameters), so each step costs one small adjoint
# pass per point. The native version below does the whole batch in one adjoint sweep.

# %%
def make_device_qnode():
    """<Z> after RY(-alpha) RZ(phi) RY(alpha) |0>, as a JAX-differentiable QNode on qdiff.qubit."""
    dev = qml.device(DEVICE, wires=1)

    @qml.qnode(dev, interface="jax", diff_method="adjoint", device_vjp=True)
    def rabi_z(alpha, phi):
        qml.RY(-alpha, wires=0)
        qml.RZ(phi, wires=0)
        qml.RY(alpha, wires=0)
        return qml.expval(qml.Z(0))

    return rabi_z


# %% [markdown]
# ### The same quantum part with the native API, as a JAX primitive
#
# The native circuit has two trainable parameters, `[alpha, phi]`; a `(K, 2)` batch evaluates all time
# points at once. `jax.pure_callback` calls qdiff from inside JAX (also under `jit`), and
# `jax.custom_vjp` tells JAX that the backward pass is `qdiff.vjp`: one adjoint sweep for the batch.

# %%
def make_native_z():
    """<Z> of the same circuit via qdiff's native API, wrapped for JAX with custom_vjp."""
    c = Circuit(1)
    p = c.params(2)
    c.ry(-p[0], 0).rz(p[1], 0).ry(p[0], 0)

    def host_value(angles):
        return np.asarray(qdiff.expval(c, Z(0), np.asarray(angles)), dtype=np.float64)

    def host_vjp(angles, cot):
        return np.asarray(qdiff.vjp(c, Z(0), np.asarray(angles), np.asarray(cot)), dtype=np.float64)

    @jax.custom_vjp
    def native_z(angles):
        return jax.pure_callback(host_value, jax.ShapeDtypeStruct(angles.shape[:-1], angles.dtype), angles)

    def fwd(angles):
        return native_z(angles), angles

    def bwd(angles, cot):
        return (jax.pure_callback(host_vjp, jax.ShapeDtypeStruct(angles.shape, angles.dtype), angles, cot),)

    native_z.defvjp(fwd, bwd)

    def rabi_z(alpha, phi):
        return native_z(jnp.stack([jnp.broadcast_to(alpha, phi.shape), phi], axis=-1))

    return rabi_z


# %% [markdown]
# ## 3. Classical post-processing and the loss
#
# `model` chains the three parts; `loss` is the mean squared error against the data. Nothing here
# knows that a quantum simulator sits in the middle.

# %%
def model(params: dict, t: jnp.ndarray, rabi_z) -> jnp.ndarray:
    """Predicted signal: A exp(-t/T) <Z>(t) + b."""
    alpha, phi = gate_angles(params, t)
    z = rabi_z(alpha, phi)
    return params["amp"] * jnp.exp(-t / jnp.exp(params["log_T"])) * z + params["offset"]


def make_loss(t: jnp.ndarray, y: jnp.ndarray, rabi_z):
    """Mean squared error of the model against the data."""

    def loss(params: dict) -> jnp.ndarray:
        return jnp.mean((model(params, t, rabi_z) - y) ** 2)

    return loss


# %% [markdown]
# ## 4. Data and an initial guess
#
# Synthetic measurements from `TRUE` plus Gaussian noise. The guess uses classical signal processing:
# the oscillation frequency from the peak of a zero-padded FFT, the contrast from the first point.

# %%
def make_data(points: int, noise: float = 0.02, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Times (µs) and noisy signal from the true parameters (closed form, independent of the simulator)."""
    t = np.linspace(0.0, 6.0, points)
    omega, delta, big_t, amp, off = (TRUE[k] for k in ("omega", "delta", "T", "amp", "offset"))
    w = np.hypot(omega, delta)
    z = 1 - 2 * (omega / w) ** 2 * np.sin(w * t / 2) ** 2  # Rabi formula
    y = amp * np.exp(-t / big_t) * z + off
    return t, y + np.random.default_rng(seed).normal(0.0, noise, points)


def initial_guess(t: np.ndarray, y: np.ndarray) -> dict:
    """Rough parameters from the data alone."""
    n_fft = 4096
    spectrum = np.abs(np.fft.rfft(y - y.mean(), n=n_fft))
    freqs = 2 * np.pi * np.fft.rfftfreq(n_fft, d=t[1] - t[0])
    w = float(freqs[np.argmax(spectrum[1:]) + 1])
    delta = 0.3 * w
    return {"omega": float(np.sqrt(w**2 - delta**2)), "delta": delta, "log_T": float(np.log(t[-1] / 2)),
            "amp": float(y[0]), "offset": 0.0}


# %% [markdown]
# ## 5. Fitting: gradient descent through everything
#
# `jax.jit(jax.value_and_grad(loss))` gives the loss and its gradient with respect to all five physical
# parameters; inside, JAX differentiates the classical parts and asks qdiff for the adjoint gradient of
# the quantum part. The optimiser is Adam, written out in a few lines with `jax.tree.map`.

# %%
@jax.jit
def adam_step(params: dict, m: dict, v: dict, g: dict, step: jnp.ndarray, lr: float) -> tuple[dict, dict, dict]:
    """One Adam update of every leaf of the ``params`` pytree (moments ``m``, ``v``; ``step`` from 1)."""
    b1, b2, eps = 0.9, 0.999, 1e-8
    m = jax.tree.map(lambda a, b: b1 * a + (1 - b1) * b, m, g)
    v = jax.tree.map(lambda a, b: b2 * a + (1 - b2) * b * b, v, g)
    c1, c2 = 1 - b1**step, 1 - b2**step  # bias corrections
    params = jax.tree.map(lambda x, a, b: x - lr * (a / c1) / (jnp.sqrt(b / c2) + eps), params, m, v)
    return params, m, v


def fit(value_and_grad, params: dict, steps: int, lr: float = 0.05) -> tuple[dict, list[float]]:
    """Adam with a (jitted) ``value_and_grad`` from ``params``; returns the final parameters and the loss per step."""
    m = jax.tree.map(jnp.zeros_like, params)
    v = jax.tree.map(jnp.zeros_like, params)
    history = []
    for step in range(1, steps + 1):
        value, g = value_and_grad(params)
        history.append(float(value))
        if should_print(step, steps):
            progress(step, steps, f"loss {float(value):.3e}  Ω {float(params['omega']):.4f}  "
                                  f"δ {float(params['delta']):.4f}  T {float(jnp.exp(params['log_T'])):.3f}")
        params, m, v = adam_step(params, m, v, g, jnp.asarray(step, dtype=float), lr)
    history.append(float(value_and_grad(params)[0]))
    return params, history


# %% [markdown]
# ## 6. Checks: the pieces agree
#
# - the device QNode and the native custom-VJP function give the same loss and gradient;
# - `jax.grad` of the whole program matches central finite differences of the loss.
#
# Each function is jitted once and reused: XLA compiles it on the first call.

# %%
def check_pieces(vg_dev, vg_native, loss_dev, params: dict) -> dict:
    """Compare device vs native (values and gradients) and jax.grad vs finite differences; time a step."""
    v_dev, g_dev = vg_dev(params)
    v_nat, g_nat = vg_native(params)
    diff = max([abs(float(v_dev - v_nat))] + [abs(float(g_dev[k] - g_nat[k])) for k in params])
    h, fd_err = 1e-6, 0.0
    for k in params:
        up = {**params, k: params[k] + h}
        down = {**params, k: params[k] - h}
        fd = (float(loss_dev(up)) - float(loss_dev(down))) / (2 * h)
        fd_err = max(fd_err, abs(fd - float(g_dev[k])))
    print(f"loss {float(v_dev):.6e}; max |device - native| (loss and gradient) = {diff:.1e}; "
          f"max |jax.grad - finite differences| = {fd_err:.1e}")
    timings = {}
    for name, f in (("qdiff.qubit QNode", vg_dev), ("native custom_vjp", vg_native)):
        with Timer() as t:
            for _ in range(3):
                jax.block_until_ready(f(params))
        timings[name] = t.seconds / 3
    print("one jitted value-and-gradient step: " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in timings.items()))
    return {"native_vs_device": diff, "grad_vs_fd": fd_err, "step_seconds": timings}


# %% [markdown]
# ## Plot and run
#
# A practical note: JAX computes in 32-bit floats unless told otherwise, and PennyLane + JAX need
# 64-bit floats for accurate gradients. Set `jax.config.update("jax_enable_x64", True)` *globally*: the
# `jax.enable_x64()` context manager is thread-local, and under `jax.jit` the device callbacks may run
# on another thread (with large batches they do), where it would not apply.

# %%
def plot(t, y, guess_curve, fit_curve, history) -> str:
    """Data, initial guess and fitted model; loss per step."""
    fig, ax = plt.subplots(1, 2, figsize=(13, 4.5))
    ax[0].plot(t, y, "k.", label="data")
    ax[0].plot(t, guess_curve, ":", color="gray", label="initial guess")
    fine_t, fine_y = fit_curve
    ax[0].plot(fine_t, fine_y, "r-", label="fitted model")
    ax[0].set(xlabel="drive time t (µs)", ylabel="signal", title="Rabi oscillation: fit vs data")
    ax[0].legend()
    ax[1].semilogy(history)
    ax[1].set(xlabel="step", ylabel="mean squared error", title="Gradient descent (Adam) through the program")
    fig.tight_layout()
    return save_figure(fig, "05_jax_end_to_end.png")


def main(quick: bool = False) -> dict:
    """Fit the Rabi model through qdiff.qubit with JAX; returns fitted vs true parameters and checks."""
    quick = is_quick(quick)
    banner("JAX end to end: physics -> circuit -> signal", quick)
    points, steps = (30, 40) if quick else (60, 150)
    jax.config.update("jax_enable_x64", X64)
    with Timer() as timer:
        t_np, y_np = make_data(points)
        t, y = jnp.asarray(t_np), jnp.asarray(y_np)
        dev_z, native_z = make_device_qnode(), make_native_z()
        loss_dev, loss_native = make_loss(t, y, dev_z), make_loss(t, y, native_z)
        guess = {k: jnp.asarray(v) for k, v in initial_guess(t_np, y_np).items()}
        print("initial guess: " + ", ".join(f"{k} {float(v):.3f}" for k, v in guess.items()))
        vg_dev = jax.jit(jax.value_and_grad(loss_dev))
        vg_native = jax.jit(jax.value_and_grad(loss_native))
        checks = check_pieces(vg_dev, vg_native, jax.jit(loss_dev), guess)
        print(f"fitting {len(guess)} physical parameters to {points} points, through qdiff.qubit under jax.jit:")
        fitted, history = fit(vg_dev, guess, steps)
        out = {k: float(v) for k, v in fitted.items()}
        out["T"] = float(np.exp(out.pop("log_T")))
        fitted_vs_true = {k: (out[k], TRUE[k]) for k in TRUE}
        for k, (f, tr) in fitted_vs_true.items():
            print(f"  {k:<7} fitted {f:8.4f}   true {tr:8.4f}")
        print(f"loss {history[0]:.3e} -> {history[-1]:.3e} (noise floor: 0.02^2 = 4e-4)")
        fine_t = jnp.linspace(0.0, 6.0, 300)
        curve = jax.jit(lambda p, times: model(p, times, native_z))
        path = plot(t_np, y_np, np.asarray(curve(guess, t)),
                    (np.asarray(fine_t), np.asarray(curve(fitted, fine_t))), history)
    print(f"done in {timer.seconds:.1f} s")
    return {**checks, "fitted_vs_true": fitted_vs_true, "initial_loss": history[0], "final_loss": history[-1],
            "history": history, "plot": path, "seconds": timer.seconds}


if __name__ == "__main__":
    main()
