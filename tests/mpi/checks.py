"""Distributed results against one process, run as ``mpiexec -n R python tests/mpi/checks.py``.

Every rank builds the same random circuits (whole gate set, controls, inverses, state preparation)
and compares the MPI backend with the numpy backend in the same process: states, probabilities,
expectations of Pauli sums and Hermitian observables, variances, samples from one seed, and adjoint
and parameter-shift gradients. Rank 0 prints ``MPI CHECKS OK <count>``; any mismatch raises.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import circuits  # noqa: E402

import qdiff as qd  # noqa: E402
from qdiff.distributed import MPIBackend  # noqa: E402
from qdiff.measure import Expval, Probs, Sample, State, Var  # noqa: E402
from qdiff.observables import Hermitian, LinearCombination, PauliWord  # noqa: E402


def random_pauli_sum(rng: np.random.Generator, n: int, terms: int) -> LinearCombination:
    """A sum of random Pauli words over all wires (global ones included)."""
    words = []
    for _ in range(terms):
        k = int(rng.integers(1, min(n, 4) + 1))
        wires = rng.choice(n, size=k, replace=False)
        words.append(PauliWord({int(w): str(rng.choice(list("XYZ"))) for w in wires}))
    return LinearCombination(tuple(rng.normal(size=terms)), tuple(words))


def main() -> None:
    be = MPIBackend(chunk_bytes=256)  # small chunks: every swap runs in several pieces
    rng = np.random.default_rng(1234)
    checks = 0
    for case in range(int(sys.argv[1]) if len(sys.argv) > 1 else 30):
        n = int(rng.integers(max(6, be.num_global + 4), 11))
        rc = circuits.random_circuit(rng, num_wires=n, depth=(4, 14), num_params=(1, 4))
        c, theta = rc.circuit, rc.theta
        h = random_pauli_sum(rng, n, 12)
        m = rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4))
        herm = Hermitian(m + m.conj().T, [0, n - 1])
        ms = [Expval(h), Expval(herm), Var(h), Probs((n - 1, 0)), Probs(None), State()]
        ref = qd.execute(c, ms, theta, backend="numpy")
        got = qd.execute(c, ms, theta, backend=be)
        for a, b in zip(ref, got, strict=True):
            np.testing.assert_allclose(b, a, atol=1e-12, err_msg=f"case {case} values")
            checks += 1
        s_ref = qd.execute(c, Sample(None), theta, backend="numpy", shots=500, seed=case)
        s_got = qd.execute(c, Sample(None), theta, backend=be, shots=500, seed=case)
        np.testing.assert_array_equal(s_got, s_ref, err_msg=f"case {case} samples")
        if c.num_params:
            for meas in ([Expval(h)], [Var(h), Probs((0, n - 1))], [Expval(herm)]):
                ref_j = qd.jacobian(c, meas, theta, backend="numpy")
                got_j = qd.jacobian(c, meas, theta, backend=be)
                for a, b in zip(np.atleast_1d(ref_j) if not isinstance(ref_j, list) else ref_j,
                                np.atleast_1d(got_j) if not isinstance(got_j, list) else got_j, strict=True):
                    np.testing.assert_allclose(b, a, atol=1e-10, err_msg=f"case {case} adjoint jacobian")
                checks += 1
            ps_ref = qd.grad(c, Expval(h), theta, method="parameter-shift", backend="numpy")
            ps_got = qd.grad(c, Expval(h), theta, method="parameter-shift", backend=be)
            np.testing.assert_allclose(ps_got, ps_ref, atol=1e-10, err_msg=f"case {case} parameter-shift")
            checks += 1
    if be.rank == 0:
        print(f"MPI CHECKS OK {checks} on {be.size} ranks")


if __name__ == "__main__":
    main()
