"""The CuPy executor ``cupy-blocked`` (fused passes, one kernel launch each) against the reference executor.

Without a GPU: the planner (chunks cover the state once, op descriptors, packed matrices), the new
kernels' PTX (nvcc) and parameter lists against the planned arguments, and the executor on the emulated
CuPy of ``test_cupy_backend`` (numpy arrays, ``kernels.cu`` thread code built for the host), forward
values and adjoint gradients on random circuits vs the reference executor on NumpyBackend: complex128
to 1e-12, complex64 to 2e-5, default and deliberately tiny launches (small chunks, one warp per block,
two blocks: several chunks per block, several elements per thread, the batch loop). With CuPy and a GPU
the same executor tests run on the device. No PennyLane needed (``--noconftest``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import qdiff
from qdiff.backends.cuda import index_model as gim
from qdiff.backends.cuda import passes
from qdiff.backends.numpy_backend import NumpyBackend
from qdiff.engine import Purpose, Request, run_forward, run_sweep, select
from qdiff.errors import ParameterError
from qdiff.fusion import CSEL, CU1, SWAP_SUB, U1, U2, dense_matrices
from qdiff.observables import X, Z, apply_observable
from qdiff.program import program_of

_spec = importlib.util.spec_from_file_location("cupy_backend_tests", Path(__file__).with_name("test_cupy_backend.py"))
tcb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tcb)  # its emulated CuPy, PTX parsing and GPU check (runs with --noconftest too)

NP = NumpyBackend()
DTYPES = [np.complex128, np.complex64]
# tiny launches: chunk bits, threads per block, blocks along x (forward and adjoint), blocks along y
TINY = {"m3": (3, 32, 2, 2), "m7": (7, 32, 2, 2)}


def tol(dtype) -> float:
    return 1e-12 if np.dtype(dtype) == np.complex128 else 2e-5


def random_unitary(d: int, rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d)))
    return q * (np.diag(r) / np.abs(np.diag(r)))


def random_circuit(n: int, seed: int, layers: int = 2) -> qdiff.Circuit:
    """SEL-like Rot + CNOT layers, then random dense 1-/2-qubit unitaries, controlled rotations (control
    values 0 and 1), diagonal gates, SWAPs, and a few gates no pass holds (Toffoli, a wide MultiRZ)."""
    rng = np.random.default_rng(seed)
    c = qdiff.Circuit(n)
    p = c.params(3 * layers * n + 4 * n)
    k = 0
    for layer in range(layers):
        for w in range(n):
            c.rot(p[k], p[k + 1], p[k + 2], wires=w)
            k += 3
        if n > 1:
            r = layer % (n - 1) + 1
            for w in range(n):
                c.cnot(w, (w + r) % n)
    pick = ["u1", "u2", "crx", "crot", "rz", "phase", "isingzz", "isingxx", "swap", "cz", "h", "ry", "cnot0"]
    if n >= 3:
        pick += ["toffoli", "multirz"]
    for _ in range(6 * n):
        g = pick[int(rng.integers(len(pick)))]
        w = [int(x) for x in rng.permutation(n)]
        if n < 2 and g not in ("u1", "rz", "phase", "h", "ry"):
            g = "ry"
        if g == "u1":
            c.add("QubitUnitary", wires=[w[0]], hyper=random_unitary(2, rng))
        elif g == "u2":
            c.add("QubitUnitary", wires=w[:2], hyper=random_unitary(4, rng))
        elif g == "crx":
            c.add("CRX", p[k], wires=w[:2])
        elif g == "crot":
            c.add("Rot", p[k], p[k + 1], p[k + 2], wires=[w[1]], controls=[w[0]], control_values=[int(k % 2)])
        elif g == "rz":
            c.add("RZ", p[k], wires=[w[0]])
        elif g == "phase":
            c.add("PhaseShift", p[k], wires=[w[0]], controls=[w[1]] if n > 1 else [], control_values=[0] if n > 1
                  else None)
        elif g == "isingzz":
            c.add("IsingZZ", p[k], wires=w[:2])
        elif g == "isingxx":
            c.add("IsingXX", p[k], wires=w[:2])
        elif g == "swap":
            c.add("SWAP", wires=w[:2])
        elif g == "cz":
            c.add("CZ", wires=w[:2])
        elif g == "h":
            c.add("Hadamard", wires=[w[0]])
        elif g == "ry":
            c.add("RY", p[k], wires=[w[0]])
        elif g == "cnot0":
            c.add("CNOT", wires=w[:2], control_values=[0])
        elif g == "toffoli":
            c.add("Toffoli", wires=w[:3])
        else:
            c.add("MultiRZ", p[k], wires=w[:3])
        k = (k + 3) % (c.num_params - 2)
    return c


def observable(n: int):
    return Z(0) @ X(n - 1) + 0.3 * Z(n // 2) if n > 1 else Z(0) + 0.2 * X(0)


def thetas(c: qdiff.Circuit, batch: int, batched: bool, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 2 * np.pi, size=(batch, c.num_params) if batched else c.num_params)


def value_and_grad(be, c: qdiff.Circuit, theta: np.ndarray, batch: int, dtype, executor: str):
    """(final state, adjoint gradient of <O>) through run_forward/run_sweep with the named executor."""
    program = program_of(c)
    state = be.zero_state(c.num_wires, batch, dtype)
    run_forward(be, program, theta, state, executor=executor)
    final = be.to_numpy(state).copy()
    bra = apply_observable(be, state, observable(c.num_wires))
    grad = be.xp.zeros((batch, c.num_params), dtype=float)
    run_sweep(be, program, theta, bra, state, grad, executor=executor)
    return final, be.to_numpy(grad)


# the emulated (or real) CuPy, its host build of kernels.cu and the PTX: the same fixtures as test_cupy_backend
gpu, host_lib, ptx = tcb.gpu, tcb.host_lib, tcb.ptx


@pytest.fixture(params=["default", *TINY])
def geometry(request, monkeypatch):
    """Default launches, or tiny ones (monkeypatched planner limits)."""
    if request.param != "default":
        bits, block, gx, gy = TINY[request.param]
        monkeypatch.setattr(passes, "MAX_BLOCK_BITS", bits)
        monkeypatch.setattr(passes, "FUSED_BLOCK", block)
        monkeypatch.setattr(passes, "ADJOINT_GRID_X", gx)
        monkeypatch.setattr(gim, "MAX_GRID_X", gx)
        monkeypatch.setattr(gim, "MAX_GRID_Y", gy)
    return request.param


# ------------------------------------------------------------------------------------------------
# planning (no kernels)


@pytest.mark.parametrize("n,m", [(3, 3), (6, 4), (9, 5), (12, 10), (12, 7)])
@pytest.mark.parametrize("adjoint", [False, True])
def test_plan_chunks_cover_the_state_and_ops_are_local(n, m, adjoint):
    c = random_circuit(n, seed=n + m)
    program = program_of(c)
    plan = passes.FusedPlan(program, adjoint, m)
    assert plan.width == (n if m == n else max(2, m - passes.SPECTATOR_BITS))
    gates = [i for fp in plan.passes for bop in fp.items
             for i in ([bop] if isinstance(bop, int) else [p[0] for p in bop.parts])]
    assert len(gates) == len(set(gates)) == len(c.operations)  # every operation once (no identities here)
    assert any(fp.blocked for fp in plan.passes)
    lone = {fp.items[0] for fp in plan.passes if not fp.blocked}
    assert lone == {i for i, op in enumerate(c.operations) if len(op.wires + op.controls) > 2}
    offsets = []
    for fp in plan.passes:
        if not fp.blocked:
            assert len(fp.items) == 1 and isinstance(fp.items[0], int)
            continue
        assert bin(fp.lmask).count("1") == m and fp.lmask < 2**n
        for bop in fp.items:  # every wire of every op is a local bit
            for w in bop.wires:
                assert fp.lmask >> (n - 1 - w) & 1
        chunks = np.arange(2 ** (n - m))
        local = np.arange(2**m)
        idx = (gim.insert_zero_bits(chunks, fp.lmask)[:, None] | gim.pdep(local, fp.lmask)[None, :]).ravel()
        assert np.array_equal(np.sort(idx.astype(np.int64)), np.arange(2**n))  # each amplitude in one chunk once
        rows = plan.ops[fp.first_op:fp.first_op + len(fp.items)]
        for row, bop in zip(rows, fp.items, strict=True):
            code, a, b = int(row[0]), int(row[1]), int(row[2])
            assert code == bop.code and 0 <= b < m and (a == -1) == (code == U1) and a < m
            assert code in (U1, CU1, CSEL, U2, SWAP_SUB) and (code != CSEL or not adjoint)
            offsets.append((int(row[5]), passes.MATRIX_SIZE[code]))
        slots = [int(r[6]) for r in rows if r[6] >= 0]
        assert slots == list(range(len(fp.slot_ops))) and (adjoint or not slots)
    ends = np.cumsum([0] + [s for _, s in offsets])
    assert [o for o, _ in offsets] == ends[:-1].tolist() and plan.matrix_size == ends[-1]


def test_block_bits_and_widths():
    assert passes.block_bits(28, 16, 1) == 10 and passes.block_bits(28, 16, 2) == 10
    assert passes.block_bits(5, 16, 2) == 5
    assert passes.block_bits(28, 16, 2, shared_bytes=4096) == 7
    assert passes.block_bits(28, 8, 1, shared_bytes=4096, max_bits=12) == 9
    with pytest.raises(ValueError, match="shared memory"):
        passes.block_bits(10, 16, 2, shared_bytes=16)
    assert passes.pass_width(8, 8) == 8 and passes.pass_width(20, 10) == 7 and passes.pass_width(20, 3) == 2
    with pytest.raises(ValueError, match="chunk bits"):
        passes.FusedPlan(program_of(random_circuit(4, 0)), False, 5)


def test_pack_and_launch_refuse_bad_input():
    c = random_circuit(5, seed=3)
    program = program_of(c)
    plan = passes.FusedPlan(program, False, 4)
    fp = next(p for p in plan.passes if p.blocked)
    with pytest.raises(ValueError, match="multiple of 32"):
        plan.forward_call(fp, 1, np.complex128, 0, block=48)
    lone = next(p for p in plan.passes if not p.blocked)
    with pytest.raises(ValueError, match="no fused launch"):
        plan.adjoint_call(lone, 1, np.complex128, 0)
    dense = dense_matrices(plan.items(), program.kernels(thetas(c, 2, True, 0)))
    with pytest.raises(ParameterError, match="batch sizes"):
        plan.pack(dense, 3, np.complex128)
    packed = plan.pack(dense, 2, np.complex64)
    assert packed.shape == (2, plan.matrix_size) and packed.dtype == np.complex64
    assert plan.pack(dense_matrices(plan.items(), program.kernels(thetas(c, 1, False, 0))), 3,
                     np.complex128).shape == (1, plan.matrix_size)


# ------------------------------------------------------------------------------------------------
# the new kernels compile, and the planner's arguments match their parameter lists


def test_fused_kernels_compile_and_match_planned_arguments(ptx):
    from qdiff.backends.cuda.backend import NAME_EXPRESSIONS

    entries = tcb.ptx_entries(ptx)
    for name in ("qd_fused_pass", "qd_fused_adjoint"):
        for r in ("float", "double"):
            expr = f"{name}<{r}>"
            assert expr in NAME_EXPRESSIONS
            assert sum(e.startswith(tcb.mangled_prefix(expr)) for e in entries) == 1
    for call in tcb.fused_calls():
        (entry,) = [e for e in entries if e.startswith(tcb.mangled_prefix(call.name_expression))]
        dtype = np.complex64 if call.template == "float" else np.complex128
        got = [tcb.expected_param(a, dtype) for a in call.args]
        assert got == entries[entry], f"{call.name_expression}: planned {got}, kernel takes {entries[entry]}"
        assert call.block % 32 == 0 and call.block <= 1024 and call.shared_mem <= passes.SHARED_BYTES
        assert call.grid[0] >= 1 and 1 <= call.grid[1] <= gim.MAX_GRID_Y


# ------------------------------------------------------------------------------------------------
# selection


def test_selection_picks_cupy_blocked_only_for_cupy(gpu):
    cp, cbe = gpu
    for n in (3, 8, 14):
        program = program_of(random_circuit(n, seed=n))
        st = cbe.zero_state(n, 2, np.complex64)
        assert select(Request(cbe, program, (st,), Purpose.FORWARD)).name == "cupy-blocked"
        assert select(Request(cbe, program, (st, st.copy()), Purpose.SWEEP)).name == "cupy-blocked"
        assert select(Request(cbe, program, (st, st.copy()), Purpose.SWEEP, matrix_ops=(0,))).name == "reference"
        assert select(Request(cbe, program, (st,), Purpose.EXPVAL_GRAD)).name != "cupy-blocked"
        host = NP.zero_state(n, 2)
        for purpose, states in ((Purpose.FORWARD, (host,)), (Purpose.SWEEP, (host, host.copy()))):
            assert select(Request(NP, program, states, purpose)).name != "cupy-blocked"
        if cp.ndarray is not np.ndarray:  # on the device: host arrays are not the backend's states
            assert select(Request(cbe, program, (host,), Purpose.FORWARD)).name != "cupy-blocked"


def test_sweep_refuses_blocked_gates_differentiated_by_generators(gpu, monkeypatch):
    from qdiff import program as program_mod

    _, cbe = gpu
    monkeypatch.setattr(program_mod, "DENSE_DERIVATIVE_MAX_WIRES", 1)  # two-qubit gates: generators
    c = qdiff.Circuit(4)
    p = c.params(2)
    c.add("RY", p[0], wires=[0]).add("IsingXX", p[1], wires=[1, 2])
    program = program_of(c)
    st = cbe.zero_state(4, 1)
    assert select(Request(cbe, program, (st, st.copy()), Purpose.SWEEP)).name == "reference"


# ------------------------------------------------------------------------------------------------
# the executor vs the reference executor on numpy


@pytest.mark.parametrize("batch,batched", [(1, False), (3, True), (3, False)], ids=["b1", "b3", "b3-shared"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["c128", "c64"])
@pytest.mark.parametrize("n", [3, 5, 8, 12])
def test_executor_matches_reference(gpu, geometry, n, dtype, batch, batched):
    _, cbe = gpu
    c = random_circuit(n, seed=100 + n)
    theta = thetas(c, batch, batched, seed=n)
    ref_state, ref_grad = value_and_grad(NP, c, theta, batch, np.complex128, "reference")
    got_state, got_grad = value_and_grad(cbe, c, theta, batch, dtype, "cupy-blocked")
    t = tol(dtype)
    np.testing.assert_allclose(got_state, ref_state, atol=t, rtol=0)
    np.testing.assert_allclose(got_grad, ref_grad, atol=t * 4, rtol=0)


@pytest.mark.parametrize("n", [4, 7, 10, 11])
def test_executor_matches_reference_more_circuits(gpu, n):
    """More seeds and three layers, complex128, tiny-chunk plans on the emulation."""
    cp, cbe = gpu
    for seed in range(3):
        c = random_circuit(n, seed=1000 * n + seed, layers=3)
        theta = thetas(c, 2, True, seed=seed)
        ref_state, ref_grad = value_and_grad(NP, c, theta, 2, np.complex128, "reference")
        got_state, got_grad = value_and_grad(cbe, c, theta, 2, np.complex128, "cupy-blocked")
        np.testing.assert_allclose(got_state, ref_state, atol=1e-12, rtol=0)
        np.testing.assert_allclose(got_grad, ref_grad, atol=1e-12, rtol=0)


def test_one_launch_per_pass_and_one_matrix_copy(gpu, monkeypatch):
    cp, cbe = gpu
    n = 9
    c = random_circuit(n, seed=7)
    theta = thetas(c, 3, True, seed=7)
    program = program_of(c)
    launches, copies = [], []
    orig_launch, orig_asarray = cbe.launch, cbe.asarray
    monkeypatch.setattr(cbe, "launch", lambda call, dtype, **b: launches.append(call.kernel) or orig_launch(
        call, dtype, **b))
    monkeypatch.setattr(cbe, "asarray", lambda x, dtype=None: copies.append(np.shape(x)) or orig_asarray(x, dtype))
    st = cbe.zero_state(n, 3)
    run_forward(cbe, program, theta, st, executor="cupy-blocked")
    plan = passes.plan_of(program, False, passes.block_bits(n, 16, 1))
    nblocked = sum(fp.blocked for fp in plan.passes)
    assert launches == ["qd_fused_pass"] * nblocked and len(copies) == 1
    assert copies[0] == (3, plan.matrix_size)
    assert nblocked < len([op for op in c.operations]) / 4  # many gates per launch
    launches.clear()
    copies.clear()
    bra = apply_observable(cbe, st, observable(n))
    copies.clear()
    grad = cp.zeros((3, c.num_params))
    run_sweep(cbe, program, theta, bra, st, grad, executor="cupy-blocked")
    adj = passes.plan_of(program, True, passes.block_bits(n, 16, 2))
    assert launches.count("qd_fused_adjoint") == sum(fp.blocked for fp in adj.passes) and len(copies) == 1


def test_sweep_with_a_bra_of_another_precision(gpu):
    """A complex128 bra for a complex64 ket (what a real diagonal observable gives) runs in the ket's dtype."""
    _, cbe = gpu
    n = 9
    c = random_circuit(n, seed=21)
    theta = thetas(c, 2, True, seed=21)
    program = program_of(c)
    diag = np.random.default_rng(21).normal(size=2**n)  # a real diagonal observable
    grads = {}
    for be, dtype, executor in ((NP, np.complex128, "reference"), (cbe, np.complex64, "cupy-blocked")):
        st = be.zero_state(n, 2, dtype)
        run_forward(be, program, theta, st, executor=executor)
        bra = st * be.xp.asarray(diag)
        assert bra.dtype == np.complex128
        grad = be.xp.zeros((2, c.num_params))
        req = Request(be, program, (bra, st), Purpose.SWEEP)
        assert (select(req).name == "cupy-blocked") == (be is cbe)
        run_sweep(be, program, theta, bra, st, grad, executor=executor)
        grads[executor] = be.to_numpy(grad)
    np.testing.assert_allclose(grads["cupy-blocked"], grads["reference"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
def test_jacobian_end_to_end(gpu, dtype, monkeypatch):
    """qdiff.expval and the adjoint jacobian on the CuPy backend select cupy-blocked and match numpy."""
    _, cbe = gpu
    c = random_circuit(7, seed=11)
    theta = thetas(c, 2, True, seed=11)
    m = qdiff.Expval(observable(7))
    t = 1e-10 if dtype == "complex128" else 2e-5
    launches = []
    orig_launch = cbe.launch
    monkeypatch.setattr(cbe, "launch", lambda call, dt, **b: launches.append(call.kernel) or orig_launch(call, dt, **b))
    ref = qdiff.jacobian(c, m, theta, method="adjoint", backend="numpy")
    got = qdiff.jacobian(c, m, theta, method="adjoint", backend=cbe, dtype=dtype)
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), atol=t * 4)
    assert "qd_fused_pass" in launches and "qd_fused_adjoint" in launches
    ref = qdiff.expval(c, observable(7), theta, backend="numpy")
    got = qdiff.expval(c, observable(7), theta, backend=cbe, dtype=dtype)
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), atol=t)
