"""The benchmark workload, StronglyEntanglingLayers + ``<sum_i Z_i>``, built identically everywhere.

One gate sequence, written four ways so every simulator runs the same circuit:

- qdiff native: :func:`native_sel` (a :class:`qdiff.Circuit`) and :func:`native_hamiltonian`;
- PennyLane: :func:`pl_qnode` (``qml.StronglyEntanglingLayers`` + ``qml.Hamiltonian``) on any device;
- Qulacs: :func:`qulacs_sel` (parametric RZ/RY/RZ per Rot, CNOTs) and :func:`qulacs_hamiltonian`.

The native and Qulacs versions replicate ``StronglyEntanglingLayers.compute_decomposition`` with the
default ranges and CNOT: for layer ``l``, ``Rot(w[l,i,0], w[l,i,1], w[l,i,2])`` on every wire ``i``,
then (for ``n > 1``) ``CNOT(i, (i + r) % n)`` for every ``i`` with ``r = (l % (n - 1)) + 1``.
Parameter ``k`` of the native circuit is ``weights.ravel()[k]``. :func:`check_same_expval` and
:func:`check_qulacs_gradient` verify the equivalence before anything is timed.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

import qdiff


def sel_ranges(n_layers: int, n_wires: int) -> tuple[int, ...]:
    """PennyLane's default CNOT ranges: ``(l % (n - 1)) + 1`` per layer (``0`` for one wire)."""
    if n_wires == 1:
        return (0,) * n_layers
    return tuple((layer % (n_wires - 1)) + 1 for layer in range(n_layers))


def sel_weights(n_layers: int, n_wires: int, seed: int = 0, batch: int | None = None) -> np.ndarray:
    """Reproducible weights ``(L, n, 3)`` (or ``(batch, L, n, 3)``) uniform in ``[0, 2 pi)``."""
    shape = (n_layers, n_wires, 3) if batch is None else (batch, n_layers, n_wires, 3)
    return np.random.default_rng(seed).uniform(0.0, 2 * np.pi, size=shape)


def sel_gate_sequence(n_layers: int, n_wires: int) -> list[tuple[str, tuple[int, ...], int]]:
    """The gate list as ``(name, wires, first parameter index)``; ``-1`` for CNOTs (no parameters)."""
    seq: list[tuple[str, tuple[int, ...], int]] = []
    for layer, r in enumerate(sel_ranges(n_layers, n_wires)):
        for i in range(n_wires):
            seq.append(("Rot", (i,), 3 * (layer * n_wires + i)))
        if n_wires > 1:
            for i in range(n_wires):
                seq.append(("CNOT", (i, (i + r) % n_wires), -1))
    return seq


@lru_cache(maxsize=64)
def native_sel(n_wires: int, n_layers: int) -> qdiff.Circuit:
    """StronglyEntanglingLayers as a qdiff circuit with ``3 L n`` trainable parameters (cached)."""
    c = qdiff.Circuit(n_wires)
    p = c.params(3 * n_layers * n_wires)
    for name, wires, k in sel_gate_sequence(n_layers, n_wires):
        if name == "Rot":
            c.rot(p[k], p[k + 1], p[k + 2], wires=wires[0])
        else:
            c.cnot(*wires)
    return c


@lru_cache(maxsize=64)
def native_hamiltonian(n_wires: int) -> Any:
    """``sum_i Z_i`` as one qdiff LinearCombination."""
    return sum((qdiff.Z(i) for i in range(1, n_wires)), qdiff.Z(0) * 1.0)


def pl_hamiltonian(n_wires: int) -> Any:
    """``sum_i Z_i`` as one PennyLane ``qml.Hamiltonian`` (a LinearCombination, i.e. a ``Sum``)."""
    import pennylane as qml

    return qml.Hamiltonian([1.0] * n_wires, [qml.Z(i) for i in range(n_wires)])


def pl_qnode(device: Any, n_wires: int, diff_method: Any = "best", interface: str = "autograd",
             **qnode_kwargs: Any) -> Any:
    """A QNode ``weights (L, n, 3) or (B, L, n, 3) -> <sum_i Z_i>`` after StronglyEntanglingLayers."""
    import pennylane as qml

    obs = pl_hamiltonian(n_wires)

    @qml.qnode(device, diff_method=diff_method, interface=interface, **qnode_kwargs)
    def circuit(weights: Any) -> Any:
        qml.StronglyEntanglingLayers(weights, wires=range(n_wires))
        return qml.expval(obs)

    return circuit


# ------------------------------------------------------------------------------------------------
# Qulacs
# ------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def qulacs_rotation_sign() -> float:
    """``s`` such that qulacs' ParametricRY(s * t) is PennyLane's RY(t), found by one test, not assumed.

    Qulacs documents ``R(angle) = exp(+i angle/2 P)`` (so ``s = -1``); measuring ``<X>`` after RY(0.3)|0>
    (``sin 0.3`` in PennyLane's convention) settles it for the installed version.
    """
    import qulacs

    c = qulacs.ParametricQuantumCircuit(1)
    c.add_parametric_RY_gate(0, 0.3)
    st = qulacs.QuantumState(1)
    c.update_quantum_state(st)
    obs = qulacs.Observable(1)
    obs.add_operator(1.0, "X 0")
    return 1.0 if obs.get_expectation_value(st) > 0 else -1.0


def qulacs_sel(n_wires: int, n_layers: int, weights: np.ndarray) -> Any:
    """StronglyEntanglingLayers as a qulacs ParametricQuantumCircuit: Rot = RZ(phi), RY(theta), RZ(omega).

    Parametric gate ``k`` holds ``s * weights.ravel()[k]`` (``s`` from :func:`qulacs_rotation_sign`), so
    qulacs' gradients are ``s`` times PennyLane's.
    """
    import qulacs

    s = qulacs_rotation_sign()
    w = np.asarray(weights, dtype=float).ravel()
    c = qulacs.ParametricQuantumCircuit(n_wires)
    for name, wires, k in sel_gate_sequence(n_layers, n_wires):
        if name == "Rot":
            q = wires[0]
            c.add_parametric_RZ_gate(q, s * w[k])
            c.add_parametric_RY_gate(q, s * w[k + 1])
            c.add_parametric_RZ_gate(q, s * w[k + 2])
        else:
            c.add_CNOT_gate(*wires)
    return c


def qulacs_hamiltonian(n_wires: int) -> Any:
    """``sum_i Z_i`` as a qulacs Observable."""
    import qulacs

    obs = qulacs.Observable(n_wires)
    for i in range(n_wires):
        obs.add_operator(1.0, f"Z {i}")
    return obs


def qulacs_set_weights(circuit: Any, weights: np.ndarray) -> None:
    """Load ``weights`` (PennyLane convention) into the parametric gates of :func:`qulacs_sel`."""
    s = qulacs_rotation_sign()
    for k, v in enumerate(np.asarray(weights, dtype=float).ravel()):
        circuit.set_parameter(k, s * v)


def qulacs_grad(circuit: Any, obs: Any, weights: np.ndarray) -> np.ndarray:
    """Gradient of ``<obs>`` w.r.t. ``weights`` (PennyLane convention) by qulacs' ``backprop``."""
    qulacs_set_weights(circuit, weights)
    return qulacs_rotation_sign() * np.asarray(circuit.backprop(obs))


def qulacs_expval(circuit: Any, obs: Any, n_wires: int) -> float:
    """``<obs>`` after ``circuit`` from |0...0>."""
    import qulacs

    st = qulacs.QuantumState(n_wires)
    circuit.update_quantum_state(st)
    return float(obs.get_expectation_value(st))


# ------------------------------------------------------------------------------------------------
# equivalence checks (run before timing)
# ------------------------------------------------------------------------------------------------


def check_same_expval(n_wires: int, n_layers: int, seed: int = 0, atol: float = 1e-10,
                      device: str = "default.qubit") -> float:
    """Assert qdiff native and PennyLane ``device`` give the same ``<sum Z>`` (to ``atol``); return it."""
    import pennylane as qml

    w = sel_weights(n_layers, n_wires, seed)
    ours = float(qdiff.expval(native_sel(n_wires, n_layers), native_hamiltonian(n_wires), w.ravel()))
    ref = float(pl_qnode(qml.device(device, wires=n_wires), n_wires, diff_method=None)(w))
    assert abs(ours - ref) <= atol, f"n={n_wires} L={n_layers}: qdiff {ours!r} != {device} {ref!r}"
    return ours


def check_same_grad(n_wires: int, n_layers: int, seed: int = 0, atol: float = 1e-10) -> None:
    """Assert qdiff's adjoint gradient equals lightning.qubit's adjoint gradient (to ``atol``)."""
    import pennylane as qml
    from pennylane import numpy as pnp

    w = sel_weights(n_layers, n_wires, seed)
    ours = qdiff.grad(native_sel(n_wires, n_layers), native_hamiltonian(n_wires), w.ravel(), method="adjoint")
    node = pl_qnode(qml.device("lightning.qubit", wires=n_wires), n_wires, diff_method="adjoint")
    ref = np.asarray(qml.grad(node)(pnp.array(w, requires_grad=True))).ravel()
    err = np.abs(ours - ref).max()
    assert err <= atol, f"n={n_wires} L={n_layers}: qdiff and lightning adjoint gradients differ by {err:.3g}"


def check_qulacs_gradient(n_wires: int, n_layers: int, seed: int = 0, atol: float = 1e-10) -> None:
    """Assert qulacs gives qdiff's expval and adjoint gradient for the same circuit (to ``atol``)."""
    w = sel_weights(n_layers, n_wires, seed)
    circ, obs = native_sel(n_wires, n_layers), native_hamiltonian(n_wires)
    qc, qobs = qulacs_sel(n_wires, n_layers, w), qulacs_hamiltonian(n_wires)
    e_ours = float(qdiff.expval(circ, obs, w.ravel()))
    e_qul = qulacs_expval(qc, qobs, n_wires)
    assert abs(e_ours - e_qul) <= atol, f"n={n_wires}: qdiff expval {e_ours!r} != qulacs {e_qul!r}"
    g_ours = qdiff.grad(circ, obs, w.ravel(), method="adjoint")
    g_qul = qulacs_grad(qc, qobs, w)
    err = np.abs(g_ours - g_qul).max()
    assert err <= atol, f"n={n_wires}: qdiff and qulacs gradients differ by {err:.3g}"


if __name__ == "__main__":
    for n in (1, 2, 3, 4, 5, 7):
        for layers in (1, 2, 3, 10):
            check_same_expval(n, layers, seed=n + layers)
    check_same_grad(6, 3)
    check_qulacs_gradient(4, 2)
    check_qulacs_gradient(5, 3)
    print(f"ok: qdiff == default.qubit, lightning.qubit adjoint, qulacs (sign {qulacs_rotation_sign():+.0f})")
