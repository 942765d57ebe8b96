"""Distributed results against one process, run as ``mpiexec -n R python tests/mpi/checks.py``.

Every rank builds the same random circuits (whole gate set, controls, inverses, state preparation)
and compares the MPI backend with the numpy backend in the same process: states, probabilities,
expectations of Pauli sums and Hermitian observables, variances, samples from one seed, and adjoint
and parameter-shift gradients. Rank 0 prints ``MPI CHECKS OK <count>``; any mismatch raises.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import circuits  # noqa: E402

import qdiff as qd  # noqa: E402
from qdiff.backends.numpy_backend import NumpyBackend  # noqa: E402
from qdiff.distributed import DistributedError, MPIBackend  # noqa: E402
from qdiff.distributed.executor import wires_needed_local  # noqa: E402
from qdiff.distributed.layout import count_swaps  # noqa: E402
from qdiff.measure import Expval, Probs, Sample, State, Var  # noqa: E402
from qdiff.observables import Hermitian, LinearCombination, PauliWord  # noqa: E402
from qdiff.program import program_of  # noqa: E402

DIAGONAL_OR_ONE_QUBIT = {"RX", "RY", "RZ", "PhaseShift", "Hadamard", "PauliX", "PauliY", "PauliZ", "S", "T",
                         "SX", "Rot", "U3", "CZ", "CCZ", "IsingZZ", "MultiRZ", "ControlledPhaseShift", "CRZ"}
"""Gates that run with a single local wire: one-qubit gates (also controlled) and diagonal ones."""


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
            vjp_ms = [Expval(h), Probs((0, n - 1)), Var(herm)]
            cots = [np.float64(0.7), rng.normal(size=4), np.float64(-0.3)]
            np.testing.assert_allclose(qd.vjp(c, vjp_ms, theta, cots, backend=be),
                                       qd.vjp(c, vjp_ms, theta, cots, backend="numpy"), atol=1e-10,
                                       err_msg=f"case {case} vjp")
            checks += 1
            ps_ref = qd.grad(c, Expval(h), theta, method="parameter-shift", backend="numpy")
            ps_got = qd.grad(c, Expval(h), theta, method="parameter-shift", backend=be)
            np.testing.assert_allclose(ps_got, ps_ref, atol=1e-10, err_msg=f"case {case} parameter-shift")
            checks += 1
    checks += swaps_follow_the_plan(be, rng)
    checks += batched_and_single_precision(be, rng)
    checks += tight_and_large(be, rng)
    checks += staged_exchanges(rng)
    if be.rank == 0:
        print(f"MPI CHECKS OK {checks} on {be.size} ranks")


def swaps_follow_the_plan(be: MPIBackend, rng: np.random.Generator) -> int:
    """The forward pass makes exactly the swaps the lookahead plan counts (count_swaps on its needs)."""
    for case in range(8):
        n = int(rng.integers(be.num_global + 4, 11))
        rc = circuits.random_circuit(rng, num_wires=n, depth=(10, 30), num_params=(1, 4), state_prep=False)
        needs = [wires_needed_local(k) for k in program_of(rc.circuit).kernels(rc.theta)]
        before = be.exchanger.traffic.swaps
        qd.execute(rc.circuit, Probs((0,)), rc.theta, backend=be)  # probabilities need no swap
        assert be.exchanger.traffic.swaps - before == count_swaps(needs, n, be.num_global), f"case {case} swaps"
    return 8


def batched_and_single_precision(be: MPIBackend, rng: np.random.Generator) -> int:
    """Broadcast parameter batches (values and adjoint Jacobians) and complex64 states, as on one process."""
    checks = 0
    for case in range(6):
        n = int(rng.integers(be.num_global + 4, 10))
        rc = circuits.random_circuit(rng, num_wires=n, depth=(6, 14), num_params=(2, 4))
        c, h = rc.circuit, random_pauli_sum(rng, n, 8)
        if not c.num_params:
            continue
        batch = rng.uniform(-np.pi, np.pi, size=(3, c.num_params))
        ms = [Expval(h), Probs((0, n - 1)), State()]
        for a, b in zip(qd.execute(c, ms, batch, backend="numpy"), qd.execute(c, ms, batch, backend=be), strict=True):
            np.testing.assert_allclose(b, a, atol=1e-12, err_msg=f"batched case {case} values")
            checks += 1
        ref_j = qd.jacobian(c, [Expval(h)], batch, backend="numpy")
        got_j = qd.jacobian(c, [Expval(h)], batch, backend=be)
        np.testing.assert_allclose(got_j, ref_j, atol=1e-10, err_msg=f"batched case {case} jacobian")
        ref64 = qd.execute(c, [Expval(h), State()], rc.theta, backend="numpy", dtype=np.complex64)
        got64 = qd.execute(c, [Expval(h), State()], rc.theta, backend=be, dtype=np.complex64)
        assert got64[1].dtype == np.complex64
        for a, b in zip(ref64, got64, strict=True):
            np.testing.assert_allclose(b, a, atol=2e-5, err_msg=f"complex64 case {case}")
        g64 = qd.grad(c, Expval(h), rc.theta, backend=be, dtype=np.complex64)
        np.testing.assert_allclose(g64, qd.grad(c, Expval(h), rc.theta, backend="numpy"), atol=1e-4,
                                   err_msg=f"complex64 case {case} gradient")
        checks += 3
    return checks


class DeviceArrays:
    """A stand-in for a GPU rank's array module: numpy underneath but not ``numpy`` itself, so every
    exchange takes the path a CuPy rank takes (host staging, or device buffers for CUDA-aware MPI)."""

    def __init__(self) -> None:
        self.staged = 0
        self.synced = 0
        self.cuda = SimpleNamespace(get_current_stream=lambda: SimpleNamespace(synchronize=self._sync))

    def _sync(self) -> None:
        self.synced += 1

    def __getattr__(self, name: str) -> object:
        return getattr(np, name)

    def asnumpy(self, a: np.ndarray) -> np.ndarray:
        self.staged += 1
        return np.array(a)


class DeviceRankBackend(NumpyBackend):
    """The numpy primitives behind :class:`DeviceArrays` (the structure of a CuPy rank, on the CPU)."""

    name = "device-stand-in"

    def __init__(self) -> None:
        self.xp = DeviceArrays()


def staged_exchanges(rng: np.random.Generator) -> int:
    """GPU-rank structure on the CPU: exchanges staged through the host, or handed over after a stream sync."""
    checks = 0
    for cuda_aware in (False, True):
        local = DeviceRankBackend()
        be = MPIBackend(local=local, chunk_bytes=256, cuda_aware=cuda_aware)
        for case in range(3):
            n = int(rng.integers(be.num_global + 4, 10))
            rc = circuits.random_circuit(rng, num_wires=n, depth=(8, 16), num_params=(1, 3))
            h = random_pauli_sum(rng, n, 6)
            for a, b in zip(qd.execute(rc.circuit, [Expval(h), State()], rc.theta, backend="numpy"),
                            qd.execute(rc.circuit, [Expval(h), State()], rc.theta, backend=be), strict=True):
                np.testing.assert_allclose(b, a, atol=1e-12, err_msg=f"device-rank case {case} values")
            if rc.circuit.num_params:
                np.testing.assert_allclose(qd.grad(rc.circuit, Expval(h), rc.theta, backend=be),
                                           qd.grad(rc.circuit, Expval(h), rc.theta, backend="numpy"),
                                           atol=1e-10, err_msg=f"device-rank case {case} gradient")
            checks += 1
        assert local.xp.staged > 0 and (local.xp.synced > 0) == cuda_aware, (local.xp.staged, local.xp.synced)
    return checks


def tight_and_large(be: MPIBackend, rng: np.random.Generator) -> int:
    """Few local wires per rank (most gates swap or slice; one local wire with one-qubit and diagonal
    gates only, so controlled phases land on a control), and states of up to 14 qubits."""
    checks = 0
    g = be.num_global
    one_wire = [name for name in circuits.ALL_GATE_NAMES if name in DIAGONAL_OR_ONE_QUBIT]
    for n, depth, names in ((g + 1, (10, 20), one_wire), (g + 1, (10, 20), one_wire),
                            (g + 2, (10, 20), circuits.ALL_GATE_NAMES), (g + 2, (10, 20), circuits.ALL_GATE_NAMES),
                            (13, (20, 30), circuits.ALL_GATE_NAMES), (14, (20, 30), circuits.ALL_GATE_NAMES)):
        rc = circuits.random_circuit(rng, num_wires=n, depth=depth, num_params=(1, 4), names=names,
                                     control_prob=0.6)
        c, h = rc.circuit, random_pauli_sum(rng, n, 6)
        try:
            got = qd.execute(c, [Expval(h), State()], rc.theta, backend=be)
        except DistributedError:
            assert names is not one_wire, "a one-qubit or diagonal gate was refused on one local wire"
            continue  # a gate wider than the local wires: refused by name (checked in test_mpi.py)
        for a, b in zip(qd.execute(c, [Expval(h), State()], rc.theta, backend="numpy"), got, strict=True):
            np.testing.assert_allclose(b, a, atol=1e-12, err_msg=f"n={n} values")
        widest = max((len(op.wires) for op in c.operations if op.trainable_refs), default=0)
        if c.num_params and widest <= n - g:  # a differentiated gate needs its targets local
            np.testing.assert_allclose(qd.grad(c, Expval(h), rc.theta, backend=be),
                                       qd.grad(c, Expval(h), rc.theta, backend="numpy"), atol=1e-10,
                                       err_msg=f"n={n} gradient")
        checks += 2
    if g:  # no local wire left: a clear error, whether the circuit starts as a product state or not
        for start in ("RY", "CNOT"):
            c = qd.Circuit(g)
            c.add("RY", 0.3, wires=(0,))
            if start == "CNOT" and g > 1:
                c.add("CNOT", wires=(0, 1))
            try:
                qd.execute(c, [State()], backend=be)
            except DistributedError as exc:
                assert "no local wire" in str(exc), exc
            else:
                raise AssertionError(f"a {g}-wire circuit on {be.size} ranks was not refused")
            checks += 1
    return checks


if __name__ == "__main__":
    main()
