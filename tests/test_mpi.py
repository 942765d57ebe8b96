"""The MPI-distributed statevector: layout bookkeeping here, results under ``mpiexec -n 2`` and ``-n 4``.

The multi-rank checks (tests/mpi/) compare every rank's results with the numpy backend in the same
process: random circuits over the whole gate set, states, probabilities, expectations, samples from
one seed, adjoint and parameter-shift gradients, and the device through QNodes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qdiff.distributed.layout import Layout, Lookahead, count_swaps

HERE = Path(__file__).parent / "mpi"

try:
    import mpi4py  # noqa: F401

    MPI_REASON = ""
except ImportError:
    MPI_REASON = "mpi4py is not installed (pip install 'qdiff[mpi]')"
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
if not MPI_REASON and MPIEXEC is None:
    MPI_REASON = "no mpiexec on PATH"
if MPI_REASON and os.environ.get("QDIFF_REQUIRE_MPI"):
    raise RuntimeError(f"QDIFF_REQUIRE_MPI is set but the MPI tests cannot run: {MPI_REASON}")
needs_mpi = pytest.mark.skipif(bool(MPI_REASON), reason=MPI_REASON or "mpi available")


def _mpirun(ranks: int, script: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, QDIFF_QUIET="1", OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    return subprocess.run([MPIEXEC, "-n", str(ranks), sys.executable, str(HERE / script), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_layout_victim_is_least_recently_used_local_wire() -> None:
    lay = Layout(5, 2)
    assert [lay.is_global(w) for w in range(5)] == [True, True, False, False, False]
    lay.touch([2, 3])
    assert lay.victim(keep=[0]) == 4  # never used
    lay.touch([4])
    assert lay.victim(keep=[]) == 3  # tie with wire 2: the less significant position goes first
    with pytest.raises(ValueError):
        Layout(3, 2).victim(keep=[2])


def test_lookahead_moves_out_the_wire_needed_furthest_ahead() -> None:
    needs = [(0,), (1,), (2,), (3,), (4,), (2,), (3,)]
    lay = Layout(5, 1, lookahead=Lookahead(needs))
    lay.touch([1, 2, 3])  # wire 4 least recently used, but wires 1, 2 and 3 come back first
    lay.touch([4])
    assert lay.victim(keep=[0]) == 4
    assert Layout(5, 1, last_use=[-1, 2, 1, 1, 1], clock=2).victim(keep=[0]) == 4  # LRU tie: the LSB goes


def _optimal_swaps(needs: list[int], num_wires: int, num_global: int) -> int:
    """Fewest swaps for single-wire needs, by dynamic programming over the set of local wires."""
    best = {frozenset(range(num_global, num_wires)): 0}
    for w in needs:
        nxt: dict[frozenset, int] = {}
        for local, cost in best.items():
            options = [(local, cost)] if w in local else [(local - {v} | {w}, cost + 1) for v in local]
            for key, c in options:
                nxt[key] = min(c, nxt.get(key, c))
        best = nxt
    assert all(len(k) == num_wires - num_global for k in best)
    return min(best.values())


def test_lookahead_swap_plan_is_optimal_for_one_wire_gates() -> None:
    rng = np.random.default_rng(7)
    for _ in range(150):
        n, g = int(rng.integers(3, 7)), int(rng.integers(1, 3))
        needs = [int(w) for w in rng.integers(0, n, size=int(rng.integers(1, 14)))]
        seq = [(w,) for w in needs]
        ahead, lru, naive = (count_swaps(seq, n, g, p) for p in ("lookahead", "lru", "per-gate"))
        assert ahead == _optimal_swaps(needs, n, g) <= min(lru, naive)


def test_lookahead_saves_swaps_on_a_layered_circuit() -> None:
    n, g = 12, 2  # 4 ranks; a hardware-efficient layer: one-qubit gates on every wire, then a CNOT ring
    layer = [(w,) for w in range(n)] + [(w, (w + 1) % n) for w in range(n)]
    needs = layer * 4
    ahead, lru, naive = (count_swaps(needs, n, g, p) for p in ("lookahead", "lru", "per-gate"))
    assert ahead < naive < lru  # 20, 48, 89: without lookahead, LRU evicts exactly the wire needed next
    with pytest.raises(ValueError, match="policy"):
        count_swaps(needs, n, g, "random")


def test_layout_rank_bits_follow_the_permutation() -> None:
    lay = Layout(4, 2)
    lay.exchange(0, 3)  # logical 3 now on rank bit 1 (most significant)
    assert lay.is_global(3) and not lay.is_global(0)
    assert [lay.rank_bit(3, r) for r in range(4)] == [0, 0, 1, 1]
    assert [lay.rank_bit(1, r) for r in range(4)] == [0, 1, 0, 1]
    assert lay.rank_mask([3]) == 2 and lay.rank_mask([1, 3]) == 3


@needs_mpi
def test_single_rank_equals_numpy() -> None:
    import qdiff as qd
    from qdiff.distributed import MPIBackend
    from qdiff.observables import X, Z

    be = MPIBackend()
    assert be.size == 1
    c = qd.Circuit(4)
    for w in range(4):
        c.add("RY", 0.2 + w, wires=(w,))
    c.add("CNOT", wires=(0, 3))
    obs = 0.5 * Z(0) + X(1) @ Z(3)
    assert np.allclose(qd.expval(c, obs, backend=be), qd.expval(c, obs))
    assert np.allclose(qd.state(c, backend=be), qd.state(c))


@needs_mpi
def test_rank_count_and_local_wire_errors() -> None:
    from qdiff.distributed.comm import DistributedError, global_qubits

    assert global_qubits(4) == 2
    with pytest.raises(DistributedError, match="power of two"):
        global_qubits(3)


@needs_mpi
@pytest.mark.parametrize("ranks,cases", [(2, "12"), (4, "8")])
def test_random_circuits_match_one_process(ranks: int, cases: str) -> None:
    res = _mpirun(ranks, "checks.py", cases)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "MPI CHECKS OK" in res.stdout and f"on {ranks} ranks" in res.stdout


@needs_mpi
def test_device_qnode_under_autograd() -> None:
    res = _mpirun(2, "device_qnode.py")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "MPI DEVICE OK" in res.stdout


@needs_mpi
def test_failing_rank_ends_the_job_with_a_clear_message() -> None:
    res = _mpirun(2, "failing_rank.py", timeout=120)
    assert res.returncode != 0
    assert "UNREACHABLE" not in res.stdout
    assert "qdiff.mpi: rank 1 of 2 failed with RuntimeError: planted failure" in res.stderr


def test_local_run_resolves_global_controls_per_rank_and_refuses_global_targets() -> None:
    import qdiff as qd
    from qdiff.distributed.executor import local_run
    from qdiff.program import program_of

    c = qd.Circuit(4)
    p = c.params(2)
    c.cnot(0, 2)  # control on global wire 0
    c.crx(p[0], 3, 2)  # local control and target
    c.rz(p[1], 1)  # target on global wire 1
    program = program_of(c)
    lay = Layout(4, 2)  # wires 0, 1 global; 2, 3 at local positions 0, 1
    on0 = local_run(program, [0, 1], lay, rank=0)  # rank 0: wire 0 is 0, the CNOT is inactive
    assert [op.gate.name for op in on0.operations] == ["RX"] and on0.operations[0].controls == (1,)
    on2 = local_run(program, [0, 1], lay, rank=2)  # rank 2: wire 0 is 1, the CNOT's X acts uncontrolled
    assert [(op.gate.name, op.wires, op.controls) for op in on2.operations] == [("PauliX", (0,), ()),
                                                                                  ("RX", (0,), (1,))]
    assert on2.num_params == 2
    assert local_run(program, [0], lay, rank=1) is None  # nothing active on this rank
    assert local_run(program, [1, 2], lay, rank=0) is False  # RZ's target is global
