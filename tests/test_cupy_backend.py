"""The CuPy backend: kernels compile, their index arithmetic is right, and every primitive matches numpy.

Without a GPU (the normal CI run) this file still checks the GPU code:

* ``kernels.cu`` compiles with nvcc (PTX for sm_90) and holds every kernel CupyBackend asks for, with
  parameter lists matching the arguments the planner (``qdiff.backends.cuda.index_model``) passes: count, size and
  alignment of each, read from the PTX; with libnvrtc present (``$QDIFF_NVRTC`` or the
  nvidia-cuda-nvrtc wheel) also through NVRTC with CuPy's name expressions, as at run time;
* the thread-to-amplitude index mapping, two ways, against NumpyBackend to 1e-12: the numpy model
  (``tests/gpu_index_emulation.py`` ``emulate``: every thread id of the launch, coverage and no two threads writing one
  amplitude), and the kernels' own thread code compiled for the host (``-DQDIFF_HOST_EMULATION``) and
  run over the launch grid through ctypes, on default and deliberately tiny launches (grid-stride loops,
  several shared-memory chunks per block, batch loops);
* CupyBackend itself, on an emulated CuPy (numpy arrays, kernels run by that host build): every
  primitive against NumpyBackend, and circuits and adjoint gradients end to end.

With CuPy and a GPU the same CupyBackend tests run on the device (complex64 and complex128, batched),
plus checks that need real device memory. No PennyLane needed (gpu_check.sh runs this file with
``--noconftest``).
"""

from __future__ import annotations

import ctypes
import itertools
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qdiff.backends import cupy_status, get_backend
from qdiff.backends.cuda import index_model as gim
from qdiff.backends.numpy_backend import NumpyBackend
from qdiff.errors import BackendError, MemoryLimitError

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the tests' modules, also under --noconftest
import gpu_index_emulation as gem  # noqa: E402

KERNEL_SOURCE = gim.__file__.replace("index_model.py", "kernels.cu")
CUPY_OK, CUPY_WHY = cupy_status()
NVCC = shutil.which("nvcc")
HOST_CXX = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
needs_gpu = pytest.mark.skipif(not CUPY_OK, reason=f"needs CuPy and an NVIDIA GPU: {CUPY_WHY}")
BACKENDS = ["numpy", pytest.param("cupy", marks=[pytest.mark.gpu, needs_gpu])]
NP = NumpyBackend()
DTYPES = [np.complex128, np.complex64]


def tol(dtype) -> float:
    return 1e-12 if np.dtype(dtype) == np.complex128 else 2e-5


# (n, targets, controls, control values): wire orders, control values 0 and 1, k = 1..5
CASES = [
    (1, (0,), (), ()),
    (3, (0,), (), ()),
    (3, (2,), (), ()),
    (4, (1,), (3,), (1,)),
    (4, (2,), (0, 3), (0, 1)),
    (3, (0, 1), (), ()),
    (3, (2, 0), (), ()),
    (5, (3, 1), (4,), (0,)),
    (5, (1, 4), (0, 2), (1, 1)),
    (4, (2, 0, 3), (), ()),
    (6, (5, 1, 3), (2,), (1,)),
    (6, (0, 2, 4, 5), (), ()),
    (7, (6, 0, 3, 2, 5), (1,), (0,)),
]
CASE_IDS = [f"n{n}-t{''.join(map(str, t))}-c{''.join(map(str, c))}v{''.join(map(str, v))}" for n, t, c, v in CASES]
GEOMETRIES = {"default": {}, "tiny": {"block": 32, "max_blocks": 2}}


def random_states(n: int, batch: int, dtype, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    psi = rng.normal(size=(batch, 2**n)) + 1j * rng.normal(size=(batch, 2**n))
    psi /= np.linalg.norm(psi, axis=1, keepdims=True)
    return psi.astype(dtype)


def random_matrix(d: int, batch: int | None, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (d, d) if batch is None else (batch, d, d)
    return rng.normal(size=shape) + 1j * rng.normal(size=shape)


def control_subspace(n: int, controls: tuple, cvals: tuple) -> np.ndarray:
    return np.flatnonzero(NP.control_mask(np.zeros((1, 2**n)), controls, cvals))


# ------------------------------------------------------------------------------------------------
# compiling kernels.cu


@pytest.fixture(scope="module")
def ptx(tmp_path_factory) -> str:
    if NVCC is None:
        pytest.skip("nvcc is not on PATH: the CUDA source compile check needs the CUDA toolkit")
    out = tmp_path_factory.mktemp("ptx") / "kernels.ptx"
    res = subprocess.run([NVCC, "--ptx", "-arch=sm_90", "-o", str(out), KERNEL_SOURCE],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"nvcc failed:\n{res.stderr}"
    return out.read_text()


@pytest.fixture(scope="module")
def host_lib(tmp_path_factory):
    if HOST_CXX is None:
        pytest.skip("no host C++ compiler (c++/g++/clang++) to build the kernels' host emulation")
    so = tmp_path_factory.mktemp("host") / "qd_kernels_host.so"
    res = subprocess.run([HOST_CXX, "-x", "c++", "-std=c++17", "-O1", "-shared", "-fPIC", "-DQDIFF_HOST_EMULATION",
                          "-o", str(so), KERNEL_SOURCE], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"host build of kernels.cu failed:\n{res.stderr}"
    return ctypes.CDLL(str(so))


def find_nvrtc() -> str | None:
    """libnvrtc: $QDIFF_NVRTC, the nvidia-cuda-nvrtc wheel (what CuPy uses), the CUDA toolkit, or the loader."""
    import glob
    import os
    import sys
    from ctypes.util import find_library

    if os.environ.get("QDIFF_NVRTC"):
        return os.environ["QDIFF_NVRTC"]
    for base in sys.path + ["/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"]:
        for pattern in ("nvidia/cu*/lib/libnvrtc.so*", "nvidia/cuda_nvrtc/lib/libnvrtc.so*", "libnvrtc.so*"):
            hits = sorted(p for p in glob.glob(os.path.join(base, pattern)) if "builtins" not in p)
            if hits:
                return hits[0]
    return find_library("nvrtc")


def nvrtc_compile(lib_path: str, source: str, name_expressions: tuple, options: tuple) -> tuple[str, dict]:
    """Compile like cupy.RawModule does (NVRTC, name expressions): (PTX, name expression -> lowered name)."""
    lib = ctypes.CDLL(lib_path)
    prog = ctypes.c_void_p()

    def check(rc, what):
        assert rc == 0, f"{what} failed with NVRTC error {rc}"

    check(lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"kernels.cu", 0, None, None), "create")
    for expr in name_expressions:
        check(lib.nvrtcAddNameExpression(prog, expr.encode()), f"add name expression {expr}")
    opts = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
    rc = lib.nvrtcCompileProgram(prog, len(options), opts)
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(prog, log)
    assert rc == 0, f"NVRTC compile failed:\n{log.value.decode(errors='replace')}"
    lib.nvrtcGetPTXSize(prog, ctypes.byref(size))
    ptx_buf = ctypes.create_string_buffer(size.value)
    check(lib.nvrtcGetPTX(prog, ptx_buf), "get PTX")
    lowered = {}
    for expr in name_expressions:
        name = ctypes.c_char_p()
        check(lib.nvrtcGetLoweredName(prog, expr.encode(), ctypes.byref(name)), f"lowered name of {expr}")
        lowered[expr] = name.value.decode()
    lib.nvrtcDestroyProgram(ctypes.byref(prog))
    return ptx_buf.value.decode(), lowered


@pytest.fixture(scope="module")
def nvrtc_ptx() -> tuple[str, dict]:
    from qdiff.backends.cuda.backend import NAME_EXPRESSIONS

    lib = find_nvrtc()
    if lib is None:
        pytest.skip("libnvrtc not found (nvidia-cuda-nvrtc wheel, CUDA toolkit, or $QDIFF_NVRTC)")
    with open(KERNEL_SOURCE) as fh:
        return nvrtc_compile(lib, fh.read(), NAME_EXPRESSIONS, ("-std=c++17", "--gpu-architecture=compute_90"))


def ptx_entries(ptx_text: str) -> dict[str, list[str]]:
    """Entry name -> parameter descriptors ('.u64', '.u32', '.f64', 'b8[16]@16', ...)."""
    out = {}
    for m in re.finditer(r"\.entry\s+(\S+)\(\s*(.*?)\)", ptx_text, re.S):
        params = []
        for line in m.group(2).split(","):
            line = line.strip()
            arr = re.match(r"\.param\s+\.align\s+(\d+)\s+\.b8\s+\S+\[(\d+)\]", line)
            if arr:
                params.append(f"b8[{arr.group(2)}]@{arr.group(1)}")
            elif line:
                params.append(re.match(r"\.param\s+(\.\w+)", line).group(1))
        out[m.group(1)] = params
    return out


def mangled_prefix(name_expression: str) -> str:
    """Itanium-mangled prefix nvcc gives a kernel instantiation, e.g. _Z11qd_apply_1qIdEv."""
    if "<" not in name_expression:
        return name_expression
    base, targs = name_expression.split("<", 1)
    parts = [p.strip() for p in targs.rstrip(">").split(",")]
    enc = {"double": "d", "float": "f"}[parts[0]] + "".join(f"Li{p}E" for p in parts[1:])
    return f"_Z{len(base)}{base}I{enc}Ev"


def expected_param(a, dtype) -> str:
    if isinstance(a, (gim.Buf, np.ndarray)):
        return ".u64"
    return {np.dtype(np.uint64): ".u64", np.dtype(np.int64): ".u64", np.dtype(np.int32): ".u32",
            np.dtype(np.float64): ".f64", np.dtype(np.float32): ".f32",
            np.dtype(np.complex128): "b8[16]@16", np.dtype(np.complex64): "b8[8]@8"}[np.asarray(a).dtype]


def representative_calls() -> list[gim.KernelCall]:
    """At least one planned call of every kernel, both precisions, by-value and pointer gate data."""
    calls = []
    for dt in DTYPES:
        for k, batched in itertools.product((1, 2, 3), (False, True)):
            m = random_matrix(2**k, 3 if batched else None, k)
            calls.append(gim.plan_apply_matrix(4, 3, dt, m, tuple(range(k)), (3,), (1,)))
        for k in (0, 1, 2, 3):
            calls.append(gim.plan_apply_diagonal(4, 3, dt, np.ones(2**k), tuple(range(k))))
        calls.append(gim.plan_apply_diagonal(4, 3, dt, np.ones((3, 2)), (1,)))
        calls.append(gim.plan_apply_permutation(4, 1, dt, (1, 0), (2,)))
        calls.append(gim.plan_apply_permutation(4, 1, dt, (0, 2, 1, 3), (2, 0)))
        calls.append(gim.plan_apply_permutation(6, 1, dt, tuple(np.random.default_rng(0).permutation(32)),
                                                (0, 1, 2, 3, 4)))
        calls.append(gim.plan_pauli_apply(4, 2, dt, {0: "Y", 2: "X"}))
        calls.append(gim.plan_pauli_rotation(4, 2, dt, 0.3, {0: "Y"}))
        calls.append(gim.plan_pauli_rotation(4, 2, dt, np.array([0.3, 0.4]), {0: "Z"}, (1,), (0,)))
        calls.append(gim.plan_pauli_expval(4, 2, dt, {1: "X"}))
        calls.append(gim.plan_matrix_element(4, 2, dt, random_matrix(2, None, 0), (1,)))
        calls.append(gim.plan_reduced_outer(4, 2, dt, (1,)))
        calls.append(gim.plan_reduced_outer(4, 2, dt, (3, 1), (0,), (1,)))
    calls.append(gim.plan_search(2, 8, 10))
    return calls + fused_calls()


def fused_calls() -> list[gim.KernelCall]:
    """Forward and adjoint fused-pass launches (qdiff.backends.cuda.passes) in both precisions."""
    import qdiff
    from qdiff.backends.cuda import passes
    from qdiff.program import program_of

    c = qdiff.Circuit(6)
    p = c.params(4)
    c.add("RY", p[0], wires=[0]).add("CNOT", wires=[0, 5]).add("CRX", p[1], wires=[2, 3]).add("SWAP", wires=[1, 4])
    c.add("IsingXX", p[2], wires=[3, 0]).add("Rot", p[3], p[0], p[1], wires=[4])
    calls = []
    for adjoint in (False, True):
        plan = passes.FusedPlan(program_of(c), adjoint, 4)
        fp = next(fp for fp in plan.passes if fp.blocked)
        for dt in DTYPES:
            launch = plan.adjoint_call if adjoint else plan.forward_call
            calls.append(launch(fp, 3, dt, plan.matrix_size))
    return calls


def test_kernels_compile_with_nvcc(ptx):
    from qdiff.backends.cuda.backend import NAME_EXPRESSIONS

    entries = ptx_entries(ptx)
    assert len(entries) == len(NAME_EXPRESSIONS) + 1  # + qd_search_cdf (extern "C")
    for expr in NAME_EXPRESSIONS + ("qd_search_cdf",):
        prefix = mangled_prefix(expr)
        assert sum(e.startswith(prefix) for e in entries) == 1, f"{expr} ({prefix}) not in the PTX"


def test_kernels_compile_with_nvrtc(nvrtc_ptx, ptx):
    """What CuPy does at run time: NVRTC with the backend's name expressions; same kernels as nvcc's."""
    nv_ptx, lowered = nvrtc_ptx
    entries, nvcc_entries = ptx_entries(nv_ptx), ptx_entries(ptx)
    for expr, name in lowered.items():
        assert name in entries, f"{expr} lowered to {name}, not in the NVRTC PTX"
        assert name.startswith(mangled_prefix(expr))
        assert entries[name] == nvcc_entries[name]
    assert entries["qd_search_cdf"] == nvcc_entries["qd_search_cdf"]


def test_planned_arguments_match_kernel_signatures(ptx):
    """Every argument the backend passes has the size/alignment of the kernel parameter it lands in."""
    from qdiff.backends.cuda.backend import NAME_EXPRESSIONS

    entries = ptx_entries(ptx)
    calls = representative_calls()
    assert {c.kernel for c in calls} >= {e.split("<")[0] for e in NAME_EXPRESSIONS}
    for call in calls:
        assert call.name_expression in NAME_EXPRESSIONS + ("qd_search_cdf",)
        (entry,) = [e for e in entries if e.startswith(mangled_prefix(call.name_expression))]
        dtype = np.complex64 if call.template.startswith("float") else np.complex128
        got = [expected_param(a, dtype) for a in call.args]
        assert got == entries[entry], f"{call.name_expression}: planned {got}, kernel takes {entries[entry]}"
        assert call.block % 32 == 0 and call.block <= 1024
        assert call.grid[0] >= 1 and 1 <= call.grid[1] <= gim.MAX_GRID_Y
        assert call.shared_mem <= 48 * 1024


# ------------------------------------------------------------------------------------------------
# bit arithmetic: numpy model == CUDA source


def test_bit_helpers_match_cuda_source(host_lib):
    rng = np.random.default_rng(1)
    for fn in ("h_insert_zero_bits", "h_pdep", "h_pext"):
        getattr(host_lib, fn).restype = ctypes.c_uint64
        getattr(host_lib, fn).argtypes = [ctypes.c_uint64, ctypes.c_uint64]
    host_lib.h_parity.restype = ctypes.c_int
    host_lib.h_parity.argtypes = [ctypes.c_uint64]
    for _ in range(300):
        nbits = int(rng.integers(0, 12))
        mask = 0
        for p in rng.choice(40, size=nbits, replace=False):
            mask |= 1 << int(p)
        t = int(rng.integers(0, 2**20))
        assert int(gim.insert_zero_bits(t, mask)) == host_lib.h_insert_zero_bits(t, mask)
        assert int(gim.pdep(t, mask)) == host_lib.h_pdep(t, mask)
        assert int(gim.pext(t, mask)) == host_lib.h_pext(t, mask)
        assert int(gim.parity(t ^ mask)) == host_lib.h_parity(t ^ mask)
        # insert_zero_bits enumerates exactly the indices with zeros at mask, in order
        assert int(gim.insert_zero_bits(t, mask)) & mask == 0
        assert int(gim.pext(gim.pdep(t, mask), mask)) == t & ((1 << nbits) - 1)


def test_insert_zero_bits_enumerates_subspace():
    n, mask = 7, 0b0101001
    ids = gim.insert_zero_bits(np.arange(2 ** (n - 3)), mask)
    expect = [i for i in range(2**n) if i & mask == 0]
    assert ids.tolist() == expect


@pytest.mark.parametrize("nthreads,grid,block", [(1, (1, 1), 32), (100, (1, 1), 32), (1000, (3, 1), 64),
                                                 (4096, (16, 1), 256), (5, (4, 1), 256)])
def test_grid_stride_visits_every_id_once(nthreads, grid, block):
    thread, t = gem.grid_stride_ids(grid, block, nthreads)
    assert sorted(t.tolist()) == list(range(nthreads))
    assert thread.max() < grid[0] * block
    assert sorted(gem.batch_ids((1, 2), 5)) == list(range(5))


def test_launch_geometry():
    (gx, gy), block = gim.launch_1d(2**30, 1)
    assert block == gim.BLOCK and gx == gim.MAX_GRID_X and gy == 1
    (gx, gy), block = gim.launch_1d(64, 1024)
    assert (gx, gy, block) == (1, 1024, 64)
    (gx, gy), block, shared = gim.launch_smem(2**20, 1024, 1, 16)
    assert block == gim.BLOCK and shared == 1024 * 16 and gx == gim.MAX_GRID_X


# ------------------------------------------------------------------------------------------------
# running a planned call: numpy model or the CUDA thread code on the host


class C128(ctypes.Structure):
    _fields_ = [("re", ctypes.c_double), ("im", ctypes.c_double)]


class C64(ctypes.Structure):
    _fields_ = [("re", ctypes.c_float), ("im", ctypes.c_float)]


def _dummies(bound: dict, dtype) -> dict:
    bound.setdefault("dummy", np.zeros(1, dtype=dtype))
    bound.setdefault("dummy_real", np.zeros(1, dtype=np.zeros(1, dtype=dtype).real.dtype))
    bound.setdefault("dummy_int", np.zeros(1, dtype=np.int32))
    return bound


def run_host(lib, call: gim.KernelCall, bound: dict) -> None:
    for name, (shape, dt) in call.outputs.items():
        bound.setdefault(name, np.zeros(shape, dtype=dt))
    keep, types, vals = [], [ctypes.c_int] * 3, [call.grid[0], call.grid[1], call.block]
    for a in call.args:
        if isinstance(a, (gim.Buf, np.ndarray)):
            arr = bound[a.name] if isinstance(a, gim.Buf) else np.ascontiguousarray(a)
            assert arr.flags.c_contiguous
            keep.append(arr)
            types.append(ctypes.c_void_p)
            vals.append(arr.ctypes.data)
            continue
        dt = np.asarray(a).dtype
        if dt.kind == "c":
            st = C128 if dt == np.complex128 else C64
            types.append(st)
            vals.append(st(float(a.real), float(a.imag)))
        else:
            ct = {"u8": ctypes.c_uint64, "i8": ctypes.c_int64, "i4": ctypes.c_int32, "f8": ctypes.c_double,
                  "f4": ctypes.c_float}[f"{dt.kind}{dt.itemsize}"]
            types.append(ct)
            vals.append(ct(a.item()))
    fn = getattr(lib, call.host_symbol)
    fn.restype = None
    fn.argtypes = types
    fn(*vals)


def run(runner: str, lib, call: gim.KernelCall, bound: dict, dtype, check_writes: np.ndarray | None = None):
    _dummies(bound, dtype)
    if runner == "host":
        run_host(lib, call, bound)
        return
    em = gem.emulate(call, bound)
    if check_writes is not None:  # every expected amplitude written exactly once, nothing else
        batch = next(v for k, v in bound.items() if k in ("state", "out")).shape[0]
        for b in range(batch):
            w = em.written(b)
            assert len(w) == len(np.unique(w)), "two threads write the same amplitude"
            assert np.array_equal(np.sort(w), check_writes)


@pytest.fixture(params=["model", "host"])
def runner(request):
    if request.param == "host":
        return "host", request.getfixturevalue("host_lib")
    return "model", None


@pytest.fixture(params=[("default", np.complex128), ("default", np.complex64), ("tiny", np.complex128)],
                ids=["default-c128", "default-c64", "tiny-c128"])
def launch(request, monkeypatch):
    """(planner launch options, dtype): default geometry in both precisions, tiny launches in double."""
    geo, dtype = request.param
    if geo == "tiny":
        monkeypatch.setattr(gim, "MAX_GRID_Y", 2)  # batch of 3: the blockIdx.y loop runs twice
    return GEOMETRIES[geo], dtype


# ------------------------------------------------------------------------------------------------
# gates through the index model / host-built thread code vs NumpyBackend


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_apply_matrix_mapping(case, runner, launch):
    geometry, dtype = launch
    kind, lib = runner
    n, targets, controls, cvals = case
    d, batch = 2 ** len(targets), 3
    sub = control_subspace(n, controls, cvals)
    for mb in (None, batch, 1):  # one matrix, one per batch entry, a batch of one (broadcast)
        m = random_matrix(d, mb, seed=d + (mb or 0)).astype(dtype)
        psi = random_states(n, batch, dtype, seed=n)
        ref = NP.apply_matrix(psi.copy(), m, targets, controls, cvals)
        call = gim.plan_apply_matrix(n, batch, dtype, m, targets, controls, cvals, **geometry)
        run(kind, lib, call, {"state": psi}, dtype, sub)
        np.testing.assert_allclose(psi, ref, atol=tol(dtype) * d, rtol=0)


@pytest.mark.parametrize("case", CASES + [(3, (), (1,), (1,)), (2, (), (), ())], ids=CASE_IDS + ["k0-ctrl", "k0"])
def test_apply_diagonal_mapping(case, runner, launch):
    geometry, dtype = launch
    kind, lib = runner
    n, targets, controls, cvals = case
    d, batch = 2 ** len(targets), 3
    rng = np.random.default_rng(d)
    for db in (None, batch):
        dg = np.exp(1j * rng.normal(size=(d,) if db is None else (db, d))).astype(dtype)
        psi = random_states(n, batch, dtype, seed=n + 1)
        ref = NP.apply_diagonal(psi.copy(), dg, targets, controls, cvals)
        call = gim.plan_apply_diagonal(n, batch, dtype, dg, targets, controls, cvals, **geometry)
        run(kind, lib, call, {"state": psi}, dtype, control_subspace(n, controls, cvals))
        np.testing.assert_allclose(psi, ref, atol=tol(dtype), rtol=0)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_apply_permutation_mapping(case, runner, launch):
    geometry, dtype = launch
    kind, lib = runner
    n, targets, controls, cvals = case
    d = 2 ** len(targets)
    perm = (1, 0) if d == 2 else tuple(int(p) for p in np.random.default_rng(d).permutation(d))
    psi = random_states(n, 2, dtype, seed=n + 2)
    ref = NP.apply_permutation(psi.copy(), perm, targets, controls, cvals)
    call = gim.plan_apply_permutation(n, 2, dtype, perm, targets, controls, cvals, **geometry)
    run(kind, lib, call, {"state": psi}, dtype, control_subspace(n, controls, cvals))
    np.testing.assert_array_equal(psi, ref)  # a permutation moves amplitudes exactly


def test_sort_permutation_matches_sorted_matrix():
    rng = np.random.default_rng(5)
    for targets in [(2, 0), (2, 0, 1), (3, 1, 0, 2)]:
        d = 2 ** len(targets)
        perm = tuple(int(p) for p in rng.permutation(d))
        pm = np.eye(d)[list(perm)]
        spm = gim.sort_matrix(pm, targets)
        assert np.array_equal(np.eye(d)[list(gim.sort_permutation(perm, targets))], spm)
        assert np.array_equal(gim.unsort_matrix(spm, targets), pm)


WORDS = [{0: "X"}, {0: "Y"}, {0: "Z"}, {1: "Y", 2: "Y"}, {0: "X", 2: "Z"}, {2: "Z", 0: "Z"}, {0: "Y", 1: "X", 2: "Z"},
         {1: "Z", 2: "Y", 0: "Y"}]


@pytest.mark.parametrize("word", WORDS, ids=lambda w: "".join(f"{p}{q}" for q, p in sorted(w.items())))
def test_pauli_mappings(word, runner, launch):
    geometry, dtype = launch
    kind, lib = runner
    n, batch = 4, 3
    psi = random_states(n, batch, dtype, seed=7)
    # P|psi>, out of place
    out = np.zeros_like(psi)
    run(kind, lib, gim.plan_pauli_apply(n, batch, dtype, word, **geometry), {"in": psi, "out": out}, dtype,
        np.arange(2**n))
    np.testing.assert_allclose(out, NP.apply_pauli(psi, word), atol=tol(dtype), rtol=0)
    # <psi|P|psi>
    bound = {"state": psi}
    run(kind, lib, gim.plan_pauli_expval(n, batch, dtype, word, **geometry), bound, dtype)
    np.testing.assert_allclose(gim.finish_expval(bound["partial"], psi.real.dtype), NP.expval_pauli(psi, word),
                               atol=tol(dtype), rtol=0)
    # exp(-i t/2 P): scalar and batched angles, with and without controls
    for theta, controls, cvals in [(0.37, (), ()), (np.array([0.1, -1.3, 2.9]), (), ()), (1.1, (3,), (0,)),
                                   (np.array([0.5, 0.6, 0.7]), (3,), (1,))]:
        st = psi.copy()
        ref = NP.apply_pauli_rotation(psi.copy(), theta, word, controls, cvals)
        call = gim.plan_pauli_rotation(n, batch, dtype, theta, word, controls, cvals, **geometry)
        run(kind, lib, call, {"state": st}, dtype, control_subspace(n, controls, cvals))
        np.testing.assert_allclose(st, ref, atol=tol(dtype), rtol=0)


@pytest.mark.parametrize("case", [c for c in CASES if len(c[1]) <= gim.MATEL_KMAX] + [(3, (), (2,), (0,))],
                         ids=[i for i, c in zip(CASE_IDS, CASES, strict=True) if len(c[1]) <= gim.MATEL_KMAX]
                         + ["k0-ctrl"])
def test_reduction_mappings(case, runner, launch):
    geometry, dtype = launch
    kind, lib = runner
    n, targets, controls, cvals = case
    d, batch = 2 ** len(targets), 3
    bra, ket = random_states(n, batch, dtype, 11), random_states(n, batch, dtype, 12)
    for mb in (None, batch) if targets else (None,):  # NumpyBackend uses entry 0 of a batched 1x1 matrix
        m = random_matrix(d, mb, seed=3).astype(dtype)
        bound = {"bra": bra, "ket": ket}
        call = gim.plan_matrix_element(n, batch, dtype, m, targets, controls, cvals, **geometry)
        run(kind, lib, call, bound, dtype)
        np.testing.assert_allclose(gim.finish_matel(bound["partial"], dtype),
                                   NP.matrix_element(bra, ket, m, targets, controls, cvals),
                                   atol=tol(dtype) * d * d, rtol=0)
    if len(targets) in (1, 2):
        for ctrl, cv in ((), ()), (controls, cvals):
            bound = {"bra": bra, "ket": ket}
            run(kind, lib, gim.plan_reduced_outer(n, batch, dtype, targets, ctrl, cv, **geometry), bound, dtype)
            np.testing.assert_allclose(gim.finish_outer(bound["partial"], targets, dtype),
                                       NP.reduced_outer(bra, ket, targets, ctrl, cv), atol=tol(dtype), rtol=0)


def test_search_mapping(runner, launch):
    geometry, _ = launch
    kind, lib = runner
    rng = np.random.default_rng(3)
    batch, K, shots = 3, 16, 200
    p = rng.random((batch, K))
    p[:, [0, 5, 15]] = 0.0  # zero-probability states, at both ends too
    cdf = np.cumsum(p, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random((batch, shots))
    u[0, :3] = [0.0, cdf[0, 3], np.nextafter(1.0, 0)]  # exact boundaries
    bound = {"cdf": cdf, "u": u}
    run(kind, lib, gim.plan_search(batch, K, shots, **geometry), bound, np.complex128)
    expect = np.stack([np.minimum(np.searchsorted(cdf[b], u[b], side="right"), K - 1) for b in range(batch)])
    np.testing.assert_array_equal(bound["out"], expect)
    assert not np.isin(bound["out"], [0, 5, 15]).any()


def test_planner_rejects_mismatched_batches():
    from qdiff.errors import ParameterError

    with pytest.raises(ParameterError):
        gim.plan_apply_matrix(3, 4, np.complex128, random_matrix(2, 3, 0), (0,))
    with pytest.raises(ParameterError):
        gim.plan_pauli_rotation(3, 4, np.complex128, np.ones(3), {0: "X"})
    with pytest.raises(TypeError):
        gim.plan_apply_diagonal(3, 1, np.float64, np.ones(2), (0,))
    assert gim.plan_apply_matrix(12, 1, np.complex64, np.eye(2**11), tuple(range(11))) is None


# ------------------------------------------------------------------------------------------------
# backends against an independent dense reference (numpy always; cupy with a GPU)


def dense_operator(n: int, m: np.ndarray, targets: tuple, controls: tuple = (), cvals: tuple = ()) -> np.ndarray:
    """The full 2^n x 2^n operator of m on targets, identity off the controlled subspace."""
    k, N = len(targets), 2**n
    u = np.zeros((N, N), dtype=complex)
    for col in range(N):
        bits = [(col >> (n - 1 - w)) & 1 for w in range(n)]
        if any(bits[c] != v for c, v in zip(controls, cvals, strict=True)):
            u[col, col] = 1
            continue
        j = sum(bits[t] << (k - 1 - p) for p, t in enumerate(targets))
        for i in range(2**k):
            nb = list(bits)
            for p, t in enumerate(targets):
                nb[t] = (i >> (k - 1 - p)) & 1
            u[sum(b << (n - 1 - w) for w, b in enumerate(nb)), col] += m[i, j]
    return u


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_backend_gates_vs_dense(name, case):
    be = get_backend(name)
    n, targets, controls, cvals = case
    d = 2 ** len(targets)
    psi = random_states(n, 2, np.complex128, seed=21)
    m = random_matrix(d, None, seed=22)
    expect = psi @ dense_operator(n, m, targets, controls, cvals).T
    got = be.to_numpy(be.apply_matrix(be.asarray(psi.copy()), m, targets, controls, cvals))
    np.testing.assert_allclose(got, expect, atol=1e-12)
    dg = np.exp(1j * np.arange(d))
    got = be.to_numpy(be.apply_diagonal(be.asarray(psi.copy()), dg, targets, controls, cvals))
    np.testing.assert_allclose(got, psi @ dense_operator(n, np.diag(dg), targets, controls, cvals).T, atol=1e-12)
    perm = tuple(int(p) for p in np.random.default_rng(d).permutation(d))
    got = be.to_numpy(be.apply_permutation(be.asarray(psi.copy()), perm, targets, controls, cvals))
    pm = np.eye(d)[list(perm)]
    np.testing.assert_allclose(got, psi @ dense_operator(n, pm, targets, controls, cvals).T, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# CupyBackend vs NumpyBackend: with real CuPy on a GPU, and on the CPU with an emulated CuPy (numpy
# arrays; RawModule kernels run by the host build of kernels.cu), which exercises the backend's own
# Python (binding, outputs, reshapes, fallbacks) wherever a C++ compiler exists


class _FakeKernel:
    def __init__(self, lib, name: str):
        if "<" in name:
            base, targs = name.split("<", 1)
            parts = [p.strip() for p in targs.rstrip(">").split(",")]
            name = f"{base}{''.join(parts[1:])}_{'d' if parts[0] == 'double' else 'f'}"
        self.fn = getattr(lib, f"h_{name}")

    def __call__(self, grid, block, args, shared_mem=0):
        keep, types, vals = [], [ctypes.c_int] * 3, [grid[0], grid[1], block[0]]
        for a in args:
            if isinstance(a, np.ndarray):
                assert a.flags.c_contiguous
                keep.append(a)
                types.append(ctypes.c_void_p)
                vals.append(a.ctypes.data)
                continue
            dt = np.asarray(a).dtype
            if dt.kind == "c":
                st = C128 if dt == np.complex128 else C64
                types.append(st)
                vals.append(st(float(a.real), float(a.imag)))
            else:
                ct = {"u8": ctypes.c_uint64, "i8": ctypes.c_int64, "i4": ctypes.c_int32, "f8": ctypes.c_double,
                      "f4": ctypes.c_float}[f"{dt.kind}{dt.itemsize}"]
                types.append(ct)
                vals.append(ct(a.item()))
        self.fn.restype = None
        self.fn.argtypes = types
        self.fn(*vals)


class _FakeCupy:
    """Just enough of CuPy's API, on numpy, for CupyBackend (the kernels are the real CUDA source)."""

    ndarray = np.ndarray

    def __init__(self, lib):
        from types import SimpleNamespace

        self._lib = lib
        self.cuda = SimpleNamespace(runtime=SimpleNamespace(memGetInfo=lambda: (8 << 30, 16 << 30),
                                                            getDeviceCount=lambda: 1, getDevice=lambda: 0))
        self.random = SimpleNamespace(RandomState=lambda seed: SimpleNamespace(
            random_sample=lambda size, dtype=np.float64: np.random.RandomState(seed % 2**32).random_sample(size)
            .astype(dtype)))

    def __getattr__(self, name):
        return getattr(np, name)

    def asnumpy(self, x):
        return np.array(x)

    def get_default_memory_pool(self):
        from types import SimpleNamespace

        return SimpleNamespace(free_bytes=lambda: 0)

    def RawModule(self, code, options=(), name_expressions=()):
        from types import SimpleNamespace

        assert "qd_apply_1q" in code
        return SimpleNamespace(get_function=lambda name: _FakeKernel(self._lib, name))

    def ReductionKernel(self, in_params, out_params, map_expr, reduce_expr, post_map_expr, identity, name):
        if name == "qd_inner":
            return lambda a, b, axis: np.einsum("bi,bi->b", np.conj(a), b)

        def abs2_sum(z, out, axis):
            out[...] = (z.real**2 + z.imag**2).sum(axis=axis)
            return out

        assert name == "qd_abs2_sum"
        return abs2_sum

    def ElementwiseKernel(self, in_params, out_params, operation, name):
        assert name == "qd_abs2"

        def abs2(z, out):
            out[...] = z.real**2 + z.imag**2
            return out

        return abs2


@pytest.fixture(scope="module", params=["emulated", pytest.param("gpu", marks=[pytest.mark.gpu, needs_gpu])])
def gpu(request):
    """(cupy-like module, CupyBackend): real CuPy on a GPU, or the emulation on the CPU."""
    from qdiff import backends
    from qdiff.backends.cuda import backend as cupy_backend

    if request.param == "gpu":
        import cupy

        yield cupy, get_backend("cupy")
        return
    lib = request.getfixturevalue("host_lib")
    fake = _FakeCupy(lib)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cupy_backend, "cupy", fake)
        mp.setattr(cupy_backend, "_MODULES", {})
        mp.setattr(cupy_backend, "_KERNELS", {})
        mp.setattr(backends, "cupy_status", lambda: (True, "emulated CuPy"))
        yield fake, cupy_backend.CupyBackend()


GPU_CASES = CASES + [(9, (8, 0), (4,), (1,)), (10, (3,), (0, 9), (1, 0)), (8, (7, 2, 5, 0), (), ()),
                     (11, (10, 1, 3, 5, 7, 9, 0, 2), (4,), (0,))]


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", GPU_CASES)
def test_cupy_gates_match_numpy(gpu, case, dtype, batch):
    cp, cbe = gpu
    n, targets, controls, cvals = case
    d = 2 ** len(targets)
    t = tol(dtype) * 8
    psi = random_states(n, batch, dtype, seed=31)
    for m in (random_matrix(d, None, 1), random_matrix(d, batch, 2), cp.asarray(random_matrix(d, batch, 3))):
        mh = cp.asnumpy(m)
        ref = NP.apply_matrix(psi.copy(), mh, targets, controls, cvals)
        got = cbe.apply_matrix(cp.asarray(psi.copy()), m, targets, controls, cvals)
        np.testing.assert_allclose(cp.asnumpy(got), ref, atol=t * d, rtol=0)
    for dg in (np.exp(1j * np.arange(d)), np.exp(1j * np.arange(batch * d)).reshape(batch, d)):
        ref = NP.apply_diagonal(psi.copy(), dg, targets, controls, cvals)
        got = cbe.apply_diagonal(cp.asarray(psi.copy()), dg, targets, controls, cvals)
        np.testing.assert_allclose(cp.asnumpy(got), ref, atol=t, rtol=0)
    perm = (1, 0) if d == 2 else tuple(int(p) for p in np.random.default_rng(d).permutation(d))
    ref = NP.apply_permutation(psi.copy(), perm, targets, controls, cvals)
    got = cbe.apply_permutation(cp.asarray(psi.copy()), perm, targets, controls, cvals)
    np.testing.assert_array_equal(cp.asnumpy(got), ref)
    bra = random_states(n, batch, dtype, seed=32)
    for mb in (None, batch):
        m = random_matrix(d, mb, 4)
        ref = NP.matrix_element(bra, psi, m, targets, controls, cvals)
        got = cbe.matrix_element(cp.asarray(bra), cp.asarray(psi), m, targets, controls, cvals)
        np.testing.assert_allclose(cp.asnumpy(got), ref, atol=t * d * d, rtol=0)
    for ctrl, cv in ((), ()), (controls, cvals):
        ref = NP.reduced_outer(bra, psi, targets, ctrl, cv)
        got = cbe.reduced_outer(cp.asarray(bra), cp.asarray(psi), targets, ctrl, cv)
        np.testing.assert_allclose(cp.asnumpy(got), ref, atol=t * d, rtol=0)
    np.testing.assert_array_equal(cp.asnumpy(cbe.control_mask(cp.asarray(psi), controls, cvals)),
                                  NP.control_mask(psi, controls, cvals))


@pytest.mark.parametrize("dtype", DTYPES)
def test_cupy_large_k_fallbacks_match_numpy(gpu, dtype, monkeypatch):
    """The CuPy-array paths for gates wider than the kernels take (limits lowered to reach them cheaply)."""
    cp, cbe = gpu
    monkeypatch.setattr(gim, "KQ_MAX", 2)
    monkeypatch.setattr(gim, "MATEL_KMAX", 1)
    t = tol(dtype) * 8
    for n, targets, controls, cvals in [c for c in CASES if len(c[1]) >= 3]:
        d = 2 ** len(targets)
        psi, bra = random_states(n, 2, dtype, seed=51), random_states(n, 2, dtype, seed=52)
        for m in (random_matrix(d, None, 5), random_matrix(d, 2, 6)):
            ref = NP.apply_matrix(psi.copy(), m, targets, controls, cvals)
            got = cbe.apply_matrix(cp.asarray(psi.copy()), m, targets, controls, cvals)
            np.testing.assert_allclose(cp.asnumpy(got), ref, atol=t * d, rtol=0)
            ref = NP.matrix_element(bra, psi, m, targets, controls, cvals)
            got = cbe.matrix_element(cp.asarray(bra), cp.asarray(psi), m, targets, controls, cvals)
            np.testing.assert_allclose(cp.asnumpy(got), ref, atol=t * d * d, rtol=0)
        perm = tuple(int(p) for p in np.random.default_rng(d).permutation(d))
        ref = NP.apply_permutation(psi.copy(), perm, targets, controls, cvals)
        got = cbe.apply_permutation(cp.asarray(psi.copy()), perm, targets, controls, cvals)
        np.testing.assert_array_equal(cp.asnumpy(got), ref)
        ref = NP.reduced_outer(bra, psi, targets, controls, cvals)
        got = cbe.reduced_outer(cp.asarray(bra), cp.asarray(psi), targets, controls, cvals)
        np.testing.assert_allclose(cp.asnumpy(got), ref, atol=t * d, rtol=0)


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cupy_paulis_and_reductions_match_numpy(gpu, dtype, batch):
    cp, cbe = gpu
    n = 9
    t = tol(dtype) * 8
    psi = random_states(n, batch, dtype, seed=41)
    bra = random_states(n, batch, dtype, seed=42)
    dpsi = cp.asarray(psi)
    for word in WORDS + [{8: "X", 0: "Y", 4: "Z"}, {}]:
        np.testing.assert_allclose(cp.asnumpy(cbe.apply_pauli(dpsi, word)), NP.apply_pauli(psi, word), atol=t)
        out = cp.zeros_like(dpsi)
        assert cbe.apply_pauli(dpsi, word, out=out) is out
        np.testing.assert_allclose(cp.asnumpy(out), NP.apply_pauli(psi, word), atol=t)
        if word:
            np.testing.assert_allclose(cp.asnumpy(cbe.expval_pauli(dpsi, word)), NP.expval_pauli(psi, word),
                                       atol=t)
        for theta, ctrl, cv in [(0.4, (), ()), (np.linspace(0.1, 1, batch), (7,), (1,)),
                                (cp.asarray(np.linspace(-1, 1, batch)), (5, 6), (0, 1))]:
            ref = NP.apply_pauli_rotation(psi.copy(), cp.asnumpy(theta), word, ctrl, cv)
            got = cbe.apply_pauli_rotation(dpsi.copy(), theta, word, ctrl, cv)
            np.testing.assert_allclose(cp.asnumpy(got), ref, atol=t)
    np.testing.assert_allclose(cp.asnumpy(cbe.inner(cp.asarray(bra), dpsi)), NP.inner(bra, psi), atol=t)
    for wires in (None, (0,), (8,), (3, 1), (2, 7, 5), (8, 0, 4, 6), tuple(range(n)), tuple(range(n - 1, -1, -1))):
        np.testing.assert_allclose(cp.asnumpy(cbe.probs(dpsi, wires)), NP.probs(psi, wires), atol=t)


def test_cupy_state_basics(gpu):
    cp, cbe = gpu
    st = cbe.zero_state(5, 2, np.complex64)
    assert isinstance(st, cp.ndarray) and st.dtype == np.complex64 and st.shape == (2, 32)
    assert cbe.name == "cupy" and cbe.xp is cp
    assert isinstance(cbe.to_numpy(st), np.ndarray)
    np.testing.assert_array_equal(cbe.to_numpy(st)[:, 0], 1)
    assert cbe.available_memory()[0] > 0
    with pytest.raises(MemoryLimitError, match="bytes"):
        cbe.zero_state(45, 1, np.complex128)  # 512 TiB: refused before any allocation
    with pytest.raises(MemoryLimitError, match="GiB"):
        cbe.check_memory(40, 4, np.complex64, copies=3)
    with pytest.raises(BackendError, match="contiguous"):
        cbe.apply_matrix(cp.zeros((1, 8, 2), complex)[:, :, 0], np.eye(2), (0,))
    with pytest.raises(TypeError, match="complex64 or complex128"):
        cbe.zero_state(2, 1, np.float64)


@needs_gpu
@pytest.mark.gpu
def test_cupy_rejects_host_states():
    cbe = get_backend("cupy")
    with pytest.raises(BackendError, match="CuPy arrays"):
        cbe.apply_matrix(np.zeros((1, 4), complex), np.eye(2), (0,))  # no silent CPU fallback


def test_cupy_sampling(gpu):
    cp, cbe = gpu
    probs = np.random.default_rng(0).random((2, 8))
    probs[:, 3] = 0
    probs /= probs.sum(axis=1, keepdims=True)
    a = cbe.sample_indices(cp.asarray(probs), 20000, np.random.default_rng(7))
    b = cbe.sample_indices(probs, 20000, np.random.default_rng(7))
    assert isinstance(a, np.ndarray) and a.shape == (2, 20000) and a.dtype == np.int64
    np.testing.assert_array_equal(a, b)  # seeded: repeatable
    assert not (a == 3).any()
    for row in range(2):
        freq = np.bincount(a[row], minlength=8) / 20000
        np.testing.assert_allclose(freq, probs[row], atol=0.02)


def _test_circuit(n: int):
    import qdiff

    c = qdiff.Circuit(n)
    p = c.params(3 * n + 2)
    for w in range(n):
        c.rot(p[3 * w], p[3 * w + 1], p[3 * w + 2], wires=w)
    for w in range(n):
        c.cnot(w, (w + 1) % n)
    c.add("IsingXY", p[3 * n], wires=[0, 3])
    c.add("PauliRot", p[3 * n + 1], wires=[1, 2, 4], hyper="XYZ")
    c.add("CRX", 0.3, wires=[5, 0]).add("Toffoli", wires=[0, 1, 2]).add("SWAP", wires=[3, 1])
    c.add("MultiRZ", 0.2, wires=[0, 2, 5], controls=[1], control_values=[0])
    c.add("DoubleExcitation", 0.7, wires=[0, 1, 2, 3])
    c.add("GlobalPhase", 0.4, wires=[], controls=[2])
    return c


@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
def test_cupy_circuits_end_to_end(gpu, dtype):
    import qdiff
    from qdiff.observables import Hermitian, X, Y, Z

    _, cbe = gpu
    n = 6
    c = _test_circuit(n)
    theta = np.random.default_rng(1).normal(size=(4, c.num_params))
    h = Hermitian(np.array([[1, 0.5j], [-0.5j, -1]]), wires=[3])
    obs = 0.5 * Z(0) @ Z(3) + X(1) - 0.2 * Y(4) @ X(5) + h
    tol_ = 1e-10 if dtype == "complex128" else 2e-5
    for ms in ([qdiff.Expval(obs)], [qdiff.Probs((2, 0))], [qdiff.State()], [qdiff.Var(Z(2) @ X(0))],
               [qdiff.DensityMatrix((4, 1))]):
        ref = qdiff.execute(c, ms, theta, backend="numpy", dtype=dtype)
        got = qdiff.execute(c, ms, theta, backend=cbe, dtype=dtype)
        np.testing.assert_allclose(got[0], ref[0], atol=tol_)
    samples = qdiff.sample(c, 500, params=theta[0], backend=cbe, seed=3)
    assert samples.shape == (500, n)


def test_cupy_adjoint_jacobian_matches_numpy(gpu):
    import qdiff
    from qdiff.observables import X, Z

    _, cbe = gpu
    if not hasattr(qdiff, "jacobian"):
        pytest.skip("qdiff.jacobian is not available yet (qdiff/gradients is being written)")
    c = _test_circuit(6)
    theta = np.random.default_rng(2).normal(size=(3, c.num_params))
    m = qdiff.Expval(Z(0) @ X(2) + 0.3 * Z(4))
    ref = qdiff.jacobian(c, m, theta, method="adjoint", backend="numpy")
    got = qdiff.jacobian(c, m, theta, method="adjoint", backend=cbe)
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), atol=1e-10)
