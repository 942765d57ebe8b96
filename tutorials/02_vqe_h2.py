# %% [markdown]
# # VQE for the hydrogen molecule on `qdiff.qubit`
#
# The variational quantum eigensolver (VQE) prepares a parameterised trial state and minimises its
# energy. Here:
#
# - the qubit Hamiltonian of H₂ (STO-3G basis, 4 spin orbitals → 4 qubits) comes from PennyLane's
#   built-in quantum chemistry, `qml.qchem.molecular_hamiltonian`, which runs its own differentiable
#   Hartree-Fock: no external chemistry package and no network access are needed;
# - the ansatz starts from the Hartree-Fock state and applies the double and single excitations
#   (`qml.DoubleExcitation`, `qml.SingleExcitation`) that conserve the electron number;
# - the circuit runs on qdiff's PennyLane device with **adjoint** gradients;
# - the reference is the exact ground-state energy (full CI in this basis), from sparse exact
#   diagonalisation of the Hamiltonian matrix.
#
# The target is *chemical accuracy*: an error below 1.6 mHa (1 kcal/mol).
# The full run also traces the dissociation curve over several bond lengths.

# %%
from __future__ import annotations

import numpy as np
import pennylane as qml
import scipy.sparse.linalg as sla
from pennylane import numpy as pnp

import qdiff

try:  # _common.py sits next to the tutorials (the working folder when run as a script or notebook)
    from _common import Timer, banner, is_quick, plt, progress, save_figure, should_print
except ImportError:  # loaded from elsewhere by path, e.g. by the tests
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import Timer, banner, is_quick, plt, progress, save_figure, should_print

DEVICE = "qdiff.qubit"
CHEMICAL_ACCURACY = 1.6e-3  # Hartree
ANGSTROM = 1.0 / 0.529177210903  # bohr per angstrom

# %% [markdown]
# ## 1. The molecular Hamiltonian
#
# Two hydrogen atoms on the z axis. `molecular_hamiltonian` returns the Hamiltonian as a sum of Pauli
# words on 4 qubits (15 terms) and the number of qubits.

# %%
def h2_hamiltonian(bond_angstrom: float):
    """Qubit Hamiltonian of H2 at the given bond length, and its number of qubits."""
    coords = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, bond_angstrom * ANGSTROM]])
    mol = qml.qchem.Molecule(["H", "H"], coords, unit="bohr")
    return qml.qchem.molecular_hamiltonian(mol)


def exact_ground_energy(h) -> float:
    """Lowest eigenvalue of the sparse Hamiltonian matrix (Lanczos, scipy eigsh)."""
    return float(sla.eigsh(h.sparse_matrix(), k=1, which="SA")[0][0])


# %% [markdown]
# ## 2. The ansatz and the cost
#
# Two electrons in four spin orbitals: the Hartree-Fock state is |1100⟩. `qml.qchem.excitations` lists
# the excitations that keep the electron number and spin: one double (0,1 → 2,3) and two singles.
# The cost is a QNode on `qdiff.qubit` with `diff_method="adjoint"`.

# %%
def make_cost(h, n_qubits: int, electrons: int = 2):
    """The VQE energy as a QNode, and the number of parameters."""
    hf = qml.qchem.hf_state(electrons, n_qubits)
    singles, doubles = qml.qchem.excitations(electrons, n_qubits)
    dev = qml.device(DEVICE, wires=n_qubits)

    @qml.qnode(dev, diff_method="adjoint")
    def energy(theta):
        qml.BasisState(hf, wires=range(n_qubits))
        for i, wires in enumerate(doubles):
            qml.DoubleExcitation(theta[i], wires=wires)
        for j, wires in enumerate(singles):
            qml.SingleExcitation(theta[len(doubles) + j], wires=wires)
        return qml.expval(h)

    return energy, len(doubles) + len(singles)


# %% [markdown]
# ## 3. Optimisation
#
# Gradient descent (`qml.GradientDescentOptimizer`) with step size 0.4; each step needs one adjoint
# gradient. We stop when the energy changes by less than 1e-9 Ha.

# %%
def run_vqe(energy, theta0, max_steps: int, exact: float, stepsize: float = 0.4, verbose: bool = True) -> dict:
    """Minimise ``energy`` from ``theta0``; returns the energy history and the final parameters."""
    opt = qml.GradientDescentOptimizer(stepsize=stepsize)
    theta = pnp.array(theta0, requires_grad=True)
    history = [float(energy(theta))]
    for step in range(1, max_steps + 1):
        theta, _ = opt.step_and_cost(energy, theta)
        history.append(float(energy(theta)))
        if verbose and should_print(step, max_steps, every=1):
            progress(step, max_steps, f"E = {history[-1]:+.8f} Ha   error = {history[-1] - exact:.2e} Ha")
        if abs(history[-1] - history[-2]) < 1e-9:
            if verbose:
                print(f"converged after {step} steps")
            break
    return {"history": np.array(history), "theta": np.asarray(theta)}


# %% [markdown]
# ## 4. Cross-check with the native API
#
# The same energy with `qdiff.Circuit` directly: the PennyLane Hamiltonian's Pauli representation
# becomes a sum of `qdiff.PauliWord`s, and the circuit is rebuilt gate by gate.

# %%
def native_energy(h, n_qubits: int, theta: np.ndarray, electrons: int = 2) -> tuple[float, np.ndarray]:
    """Energy and adjoint gradient of the VQE state with qdiff's native API."""
    obs = 0.0
    for word, coeff in h.pauli_rep.items():
        obs = obs + float(np.real(coeff)) * qdiff.PauliWord({int(w): p for w, p in word.items()})
    singles, doubles = qml.qchem.excitations(electrons, n_qubits)
    c = qdiff.Circuit(n_qubits)
    p = c.params(len(doubles) + len(singles))
    c.basis_state(qml.qchem.hf_state(electrons, n_qubits))
    for i, wires in enumerate(doubles):
        c.double_excitation(p[i], wires=wires)
    for j, wires in enumerate(singles):
        c.single_excitation(p[len(doubles) + j], wires=wires)
    value, grad = qdiff.value_and_grad(c, obs, theta, method="adjoint")
    return float(value), grad


# %% [markdown]
# ## 5. The dissociation curve (full run only)
#
# Repeat the VQE at several bond lengths, starting each from the previous optimum.

# %%
def dissociation_curve(bonds: list[float], max_steps: int) -> dict:
    """VQE and exact energies along the bond length."""
    vqe, exact = [], []
    theta = None
    for k, bond in enumerate(bonds, start=1):
        h, n = h2_hamiltonian(bond)
        energy, n_params = make_cost(h, n)
        e0 = exact_ground_energy(h)
        theta = np.zeros(n_params) if theta is None else theta
        res = run_vqe(energy, theta, max_steps, e0, verbose=False)
        theta = res["theta"]
        vqe.append(res["history"][-1])
        exact.append(e0)
        progress(k, len(bonds), f"bond {bond:.2f} A: VQE {vqe[-1]:+.6f} Ha, exact {e0:+.6f} Ha, "
                                f"error {vqe[-1] - e0:.1e}")
    return {"bonds": np.array(bonds), "vqe": np.array(vqe), "exact": np.array(exact)}


# %% [markdown]
# ## Plot and run

# %%
def plot(history: np.ndarray, exact: float, curve: dict | None) -> str:
    """Energy and error per step; the dissociation curve when computed."""
    ncols = 3 if curve else 2
    fig, ax = plt.subplots(1, ncols, figsize=(5 * ncols, 4))
    ax[0].plot(history, "o-", ms=4, label="VQE on qdiff.qubit (adjoint)")
    ax[0].axhline(exact, color="r", ls="--", label=f"exact (FCI) {exact:.6f} Ha")
    ax[0].axhspan(exact, exact + CHEMICAL_ACCURACY, color="g", alpha=0.2, label="chemical accuracy")
    ax[0].set(xlabel="step", ylabel="energy (Ha)", title="H$_2$ VQE")
    ax[0].legend()
    ax[1].semilogy(np.maximum(history - exact, 1e-16), "o-", ms=4)
    ax[1].axhline(CHEMICAL_ACCURACY, color="g", ls="--", label="1.6 mHa")
    ax[1].set(xlabel="step", ylabel="energy error (Ha)", title="Error vs exact ground state")
    ax[1].legend()
    if curve:
        ax[2].plot(curve["bonds"], curve["exact"], "r-", label="exact")
        ax[2].plot(curve["bonds"], curve["vqe"], "o", label="VQE")
        ax[2].set(xlabel="bond length (Å)", ylabel="energy (Ha)", title="Dissociation curve")
        ax[2].legend()
    fig.tight_layout()
    return save_figure(fig, "02_vqe_h2.png")


def main(quick: bool = False) -> dict:
    """VQE for H2 at equilibrium (and, in full mode, along the bond); returns energies and errors."""
    quick = is_quick(quick)
    banner("VQE for H2 on qdiff.qubit", quick)
    with Timer() as timer:
        bond = 0.7414
        h, n = h2_hamiltonian(bond)
        print(f"H2 at {bond} A: {n} qubits, {len(h.terms()[0])} Pauli terms")
        exact = exact_ground_energy(h)
        print(f"exact ground-state energy (sparse diagonalisation): {exact:+.8f} Ha")
        energy, n_params = make_cost(h, n)
        print(f"ansatz: Hartree-Fock state + {n_params} excitations; optimising with adjoint gradients")
        res = run_vqe(energy, np.zeros(n_params), 30 if quick else 60, exact)
        final = float(res["history"][-1])
        error = final - exact
        ok = "reached" if abs(error) < CHEMICAL_ACCURACY else "MISSED"
        print(f"VQE energy {final:+.8f} Ha, error {error:.2e} Ha: chemical accuracy {ok}")
        e_native, g_native = native_energy(h, n, res["theta"])
        native_diff = abs(e_native - final)
        print(f"native qdiff API at the optimum: E = {e_native:+.10f} Ha (difference {native_diff:.1e}), "
              f"|grad| = {np.linalg.norm(g_native):.1e}")
        curve = None
        if not quick:
            print("dissociation curve:")
            curve = dissociation_curve([0.5, 0.6, 0.7414, 0.9, 1.1, 1.3, 1.6, 2.0, 2.5], 80)
        path = plot(res["history"], exact, curve)
    print(f"done in {timer.seconds:.1f} s")
    out = {"energy": final, "exact_energy": exact, "error": error, "history": res["history"],
           "theta": res["theta"], "native_energy": e_native, "native_difference": native_diff,
           "plot": path, "seconds": timer.seconds}
    if curve:
        out["curve_max_error"] = float(np.max(np.abs(curve["vqe"] - curve["exact"])))
    return out


if __name__ == "__main__":
    main()
