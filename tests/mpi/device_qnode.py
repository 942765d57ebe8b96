"""The PennyLane device with ``mpi=True`` through QNodes under autograd, against default.qubit."""

from __future__ import annotations

import pennylane as qml
from pennylane import numpy as pnp

n = 6
H = qml.Hamiltonian([0.4, -0.7, 0.25, 1.1], [qml.X(0) @ qml.Y(5), qml.Z(0) @ qml.Z(1), qml.Y(2), qml.X(4) @ qml.X(0)])


def circuit(w):
    qml.StronglyEntanglingLayers(w, wires=range(n))
    qml.DoubleExcitation(w[0, 0, 0], wires=[0, 1, 4, 5])
    qml.ctrl(qml.RX(w[1, 2, 1], wires=5), control=0)
    return qml.expval(H)


weights = pnp.array(pnp.random.default_rng(7).normal(size=(2, n, 3)), requires_grad=True)
results = {}
for name, dev in (("mpi", qml.device("qdiff.qubit", wires=n, mpi=True)), ("ref", qml.device("default.qubit", wires=n))):
    qnode = qml.QNode(circuit, dev, diff_method="adjoint" if name == "mpi" else "backprop")
    results[name] = (qnode(weights), qml.grad(qnode)(weights))
    probs = qml.QNode(lambda w: (qml.StronglyEntanglingLayers(w, wires=range(n)), qml.probs(wires=[5, 0]))[1], dev)
    results[name + "p"] = probs(weights)
assert abs(results["mpi"][0] - results["ref"][0]) < 1e-12, results
assert pnp.allclose(results["mpi"][1], results["ref"][1], atol=1e-10)
assert pnp.allclose(results["mpip"], results["refp"], atol=1e-12)
from mpi4py import MPI  # noqa: E402

if MPI.COMM_WORLD.Get_rank() == 0:
    print("MPI DEVICE OK", float(results["mpi"][0]))
