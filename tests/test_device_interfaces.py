"""qdiff.qubit through autograd, JAX (with and without jax.jit) and PyTorch.

Values and gradients of every device gradient path (adjoint Jacobians, grad-on-execution or not,
device VJPs) and of PennyLane's parameter-shift transform, against default.qubit with backprop;
broadcast tapes (scalar and broadcast trainable parameters); a trainable QubitUnitary.
"""

from __future__ import annotations

import warnings

import numpy as np
import pennylane as qml
import pytest
from scipy.stats import unitary_group

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy
pnp = qml.numpy

warnings.filterwarnings("ignore", category=qml.exceptions.PennyLaneDeprecationWarning)

U4 = unitary_group.rvs(4, random_state=5)
X0 = np.array([0.3, 0.5, 0.7])
Y0 = 0.2


def circuit(x, y):
    qml.RX(x[0], 0)
    qml.CNOT([0, 1])
    qml.Rot(x[1], y, x[2], wires=1)
    qml.CRY(y, wires=[1, 2])
    qml.IsingXX(x[0], wires=[0, 2])
    return qml.expval(qml.Z(1) + 0.5 * qml.X(0) @ qml.Y(2)), qml.probs(wires=[0, 2]), qml.var(qml.X(1))


def loss_of(results, xp):
    e, p, v = results
    return 2.0 * e + xp.sum(p * xp.arange(4.0)) - 0.7 * v


def reference():
    f = qml.QNode(circuit, qml.device("default.qubit", wires=3), diff_method="backprop")
    x, y = pnp.array(X0, requires_grad=True), pnp.array(Y0, requires_grad=True)
    value = loss_of(f(x, y), pnp)
    gx, gy = qml.grad(lambda x, y: loss_of(f(x, y), pnp))(x, y)
    return float(value), np.asarray(gx), float(gy)


REF = reference()

METHODS = [
    dict(diff_method="adjoint"),
    dict(diff_method="adjoint", grad_on_execution=False),
    dict(diff_method="adjoint", device_vjp=True),
    dict(diff_method="best"),
    dict(diff_method="parameter-shift"),
]
IDS = ["adjoint", "adjoint-goe-false", "adjoint-vjp", "best", "parameter-shift"]


def check(value, gx, gy):
    assert np.isclose(float(value), REF[0], atol=1e-8)
    assert np.allclose(np.asarray(gx), REF[1], atol=1e-8)
    assert np.isclose(float(gy), REF[2], atol=1e-8)


def _qnode(interface, kw):
    return qml.QNode(circuit, qml.device("qdiff.qubit", wires=3), interface=interface, **kw)


@pytest.mark.parametrize("kw", METHODS, ids=IDS)
def test_autograd(kw):
    f = _qnode("autograd", kw)
    x, y = pnp.array(X0, requires_grad=True), pnp.array(Y0, requires_grad=True)
    cost = lambda x, y: loss_of(f(x, y), pnp)  # noqa: E731
    gx, gy = qml.grad(cost)(x, y)
    check(cost(x, y), gx, gy)


@pytest.mark.parametrize("kw", METHODS, ids=IDS)
def test_jax(kw):
    f = _qnode("jax", kw)
    cost = lambda x, y: loss_of(f(x, y), jnp)  # noqa: E731
    value, (gx, gy) = jax.value_and_grad(cost, argnums=(0, 1))(jnp.array(X0), jnp.array(Y0))
    check(value, gx, gy)


@pytest.mark.parametrize("kw", [METHODS[0], METHODS[2], METHODS[4]], ids=["adjoint", "adjoint-vjp", "parameter-shift"])
def test_jax_jit(kw):
    f = _qnode("jax-jit", kw)
    cost = jax.jit(jax.value_and_grad(lambda x, y: loss_of(f(x, y), jnp), argnums=(0, 1)))
    value, (gx, gy) = cost(jnp.array(X0), jnp.array(Y0))
    check(value, gx, gy)
    value, (gx, gy) = cost(jnp.array(X0), jnp.array(Y0))  # cached trace, second call
    check(value, gx, gy)


@pytest.mark.parametrize("kw", METHODS, ids=IDS)
def test_torch(kw):
    f = _qnode("torch", kw)
    x = torch.tensor(X0, requires_grad=True)
    y = torch.tensor(Y0, requires_grad=True, dtype=torch.float64)
    value = loss_of(f(x, y), torch)
    value.backward()
    check(value.detach(), x.grad.numpy(), y.grad.numpy())


def test_jax_jacobian_matches_default_qubit():
    def c(x):
        qml.RX(x[0], 0)
        qml.RY(x[1], 1)
        qml.CNOT([0, 1])
        return qml.expval(qml.Z(0) @ qml.Z(1)), qml.probs(wires=[1])

    f = qml.QNode(c, qml.device("qdiff.qubit", wires=2), diff_method="adjoint", interface="jax")
    g = qml.QNode(c, qml.device("default.qubit", wires=2), diff_method="backprop", interface="jax")
    x = jnp.array([0.4, 1.2])
    for a, b in zip(jax.jacobian(f)(x), jax.jacobian(g)(x), strict=True):
        assert np.allclose(a, b, atol=1e-8)


# ------------------------------------------------------------------------------------------------
# broadcasting


def bcircuit(x, y):
    qml.RX(x, 0)
    qml.RY(y, 1)
    qml.CNOT([0, 1])
    return qml.expval(qml.Z(1)), qml.probs(wires=[0])


def bloss(r, xp):
    return xp.sum(2.0 * r[0]) + xp.sum(r[1][:, 0] ** 2)


XB = np.array([0.1, 0.6, 1.1])
YB = 0.4


def bref():
    f = qml.QNode(bcircuit, qml.device("default.qubit", wires=2), diff_method="backprop")
    x, y = pnp.array(XB, requires_grad=True), pnp.array(YB, requires_grad=True)
    return qml.grad(lambda x, y: bloss(f(x, y), pnp))(x, y)


BREF = bref()


@pytest.mark.parametrize("vjp", [False, True], ids=["jacobian", "vjp"])
@pytest.mark.parametrize("interface", ["autograd", "jax", "jax-jit", "torch"])
def test_broadcast_gradients(interface, vjp):
    f = qml.QNode(bcircuit, qml.device("qdiff.qubit", wires=2), interface=interface, diff_method="adjoint",
                  device_vjp=vjp)
    if interface == "autograd":
        gx, gy = qml.grad(lambda x, y: bloss(f(x, y), pnp))(pnp.array(XB, requires_grad=True),
                                                           pnp.array(YB, requires_grad=True))
    elif interface.startswith("jax"):
        grad = jax.grad(lambda x, y: bloss(f(x, y), jnp), argnums=(0, 1))
        gx, gy = (jax.jit(grad) if interface == "jax-jit" else grad)(jnp.array(XB), jnp.array(YB))
    else:
        x, y = torch.tensor(XB, requires_grad=True), torch.tensor(YB, requires_grad=True, dtype=torch.float64)
        bloss(f(x, y), torch).backward()
        gx, gy = x.grad.numpy(), y.grad.numpy()
    assert np.allclose(gx, BREF[0], atol=1e-8) and np.isclose(gy, BREF[1], atol=1e-8)


def test_broadcast_scalar_trainable_stays_batched():
    """Only non-trainable parameters broadcast: one batched simulation, one batched adjoint sweep."""
    dev = qml.device("qdiff.qubit", wires=2)
    f = qml.QNode(bcircuit, dev, interface="jax", diff_method="adjoint")
    with qml.Tracker(dev) as tracker:
        jac = jax.jacobian(lambda y: f(jnp.array(XB), y)[0])(jnp.array(YB))
    assert tracker.totals.get("simulations", 0) <= 1
    g = qml.QNode(bcircuit, qml.device("default.qubit", wires=2), interface="jax", diff_method="backprop")
    assert np.allclose(jac, jax.jacobian(lambda y: g(jnp.array(XB), y)[0])(jnp.array(YB)))


# ------------------------------------------------------------------------------------------------
# trainable QubitUnitary and shots


def ucircuit(u, x):
    qml.RX(x, 0)
    qml.Hadamard(1)
    qml.QubitUnitary(u, wires=[0, 1])
    return qml.expval(qml.Z(0) @ qml.X(1) + 0.5 * qml.Y(1))


def test_trainable_unitary_jax_and_torch():
    ref = qml.QNode(ucircuit, qml.device("default.qubit", wires=2), diff_method="backprop", interface="jax")
    g_ref = jax.grad(ref)(jnp.array(U4), jnp.array(0.3))  # JAX convention: dL/dRe - i dL/dIm
    f = qml.QNode(ucircuit, qml.device("qdiff.qubit", wires=2), diff_method="adjoint", interface="jax")
    assert np.allclose(jax.grad(f)(jnp.array(U4), jnp.array(0.3)), g_ref, atol=1e-8)
    ft = qml.QNode(ucircuit, qml.device("qdiff.qubit", wires=2), diff_method="adjoint", interface="torch")
    u = torch.tensor(U4, requires_grad=True)
    ft(u, torch.tensor(0.3, dtype=torch.float64)).backward()
    assert np.allclose(u.grad.numpy(), np.conj(g_ref), atol=1e-8)  # torch: dL/dRe + i dL/dIm


def test_parameter_shift_with_shots_torch():
    f = qml.set_shots(qml.QNode(bcircuit, qml.device("qdiff.qubit", wires=2, seed=3), interface="torch",
                                diff_method="best"), 20000)
    y = torch.tensor(YB, requires_grad=True, dtype=torch.float64)
    out = f(torch.tensor(0.6, dtype=torch.float64), y)[0]
    out.backward()
    assert np.isclose(y.grad.numpy(), -np.cos(0.6) * np.sin(YB), atol=0.05)


def _summed_loss_and_grad(qnode, w0, x, interface):
    """``sum(qnode(w, x))`` over a batch of non-trainable inputs and its gradient in ``w``, as a user writes it."""
    if interface == "torch":
        import torch

        w = torch.tensor(w0, requires_grad=True)
        loss = qnode(w, torch.tensor(x)).sum()
        loss.backward()
        return float(loss), w.grad.numpy()
    from pennylane import numpy as pnp

    w = pnp.array(w0, requires_grad=True)
    inputs = pnp.array(x, requires_grad=False)
    return float(pnp.sum(qnode(w, inputs))), qml.grad(lambda v: pnp.sum(qnode(v, inputs)))(w)


def _tracked_against_default_qubit(model, n, w0, x, interface):
    """The summed loss and gradient on qdiff.qubit (tracked) and on default.qubit, checked equal; the totals."""
    def run(device):
        return _summed_loss_and_grad(qml.QNode(model, device, interface=interface), w0, x, interface)

    dev = qml.device("qdiff.qubit", wires=n)
    with qml.Tracker(dev) as tracker:
        loss, grad = run(dev)
    ref_loss, ref_grad = run(qml.device("default.qubit", wires=n))
    assert np.isclose(loss, ref_loss, atol=1e-10)
    np.testing.assert_allclose(grad, ref_grad, atol=1e-10)
    return tracker.totals


@pytest.mark.parametrize("interface", ["autograd", "torch"])
def test_broadcast_inputs_with_default_options_run_as_one_batched_vjp(interface):
    # default QNode options (device_vjp=False): a batch of non-trainable inputs is still one simulation
    # and one batched VJP, not one tape per input; the numbers match default.qubit
    n, batch = 4, 6
    rng = np.random.default_rng(8)
    x = rng.uniform(0, np.pi, (batch, n))
    w0 = rng.uniform(0, np.pi, qml.StronglyEntanglingLayers.shape(2, n))

    def model(w, inputs):
        qml.AngleEmbedding(inputs, wires=range(n))
        qml.StronglyEntanglingLayers(w, wires=range(n))
        return qml.expval(qml.Z(0) @ qml.Z(1))

    totals = _tracked_against_default_qubit(model, n, w0, x, interface)
    assert totals.get("vjps", 0) >= 1 and totals.get("derivatives", 0) == 0
    assert totals["simulations"] <= 2  # the forward value and the VJP, never one per input


@pytest.mark.parametrize("interface", ["autograd", "torch"])
def test_broadcast_inputs_on_native_gates_run_as_one_batched_jacobian(interface):
    # default options, a circuit of qdiff's own gates (nothing to decompose): PennyLane keeps the tape
    # whole on the Jacobian route, so the device answers with one batched simulation and sweep (no
    # second forward pass for a VJP); the numbers match default.qubit
    n, batch, layers = 3, 5, 2
    rng = np.random.default_rng(9)
    x = rng.uniform(-1, 1, (batch, n))
    w0 = rng.uniform(0, np.pi, (layers, n, 3))

    def classifier(w, inputs):
        for layer in range(layers):
            for q in range(n):
                qml.RX(inputs[:, q], wires=q)
                qml.Rot(*w[layer, q], wires=q)
            for q in range(n - 1):
                qml.CNOT(wires=[q, q + 1])
        return qml.expval(qml.Z(0))

    totals = _tracked_against_default_qubit(classifier, n, w0, x, interface)
    assert totals.get("vjps", 0) == 0 and totals.get("simulations", 0) <= 2
    assert totals["executions"] <= 2  # one batched tape (per forward and gradient), never one per input
