"""The numba CPU kernels (qdiff.backends.numba.kernels) against the numpy reference path of NumpyBackend.

Every kernel is called directly (and must handle the case, i.e. not return None) and compared with the
NumpyBackend method under ``QDIFF_KERNELS=numpy`` on random states, random targets / controls / control
values, 1..12 qubits, batched and not: to 1e-12 for complex128 and 1e-5 for complex64. The serial and
the parallel twin of each kernel are both exercised (PARALLEL_MIN_BITS forced), the latter on complex128
only to bound the (cached) compile time.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import numpy as np
import pytest
from conftest import kernel_mode
from hypothesis import given, settings
from hypothesis import strategies as st

from qdiff.backends.numba import kernels as K
from qdiff.backends.numpy_backend import NumpyBackend

BE = NumpyBackend()
CONFIGS = [("complex128", "serial"), ("complex128", "parallel"), ("complex64", "serial")]
TOL = {"complex128": 1e-12, "complex64": 1e-5}
EXAMPLES = 40
FORMS = ["general", "rx", "real", "hermitian", "zeros"]


@contextmanager
def threads_mode(mode: str):
    """Force the serial or the parallel twin of every kernel whatever the state size."""
    old = K.PARALLEL_MIN_BITS
    K.PARALLEL_MIN_BITS = 0 if mode == "parallel" else 64
    try:
        yield
    finally:
        K.PARALLEL_MIN_BITS = old


def ref(name: str, *args):
    """NumpyBackend.<name> on the numpy reference path."""
    with kernel_mode("numpy"):
        return getattr(BE, name)(*args)


def kern(name: str, *args):
    """kernels.<name>; the case must be handled by a kernel."""
    out = getattr(K, name)(*args)
    assert out is not None, f"{name} fell back to numpy"
    return out


def close(a, b, dtype: str, scale: float = 1.0) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=0, atol=TOL[dtype] * scale)


def rand_state(rng, n: int, batch: int, dtype: str) -> np.ndarray:
    s = rng.normal(size=(batch, 2**n)) + 1j * rng.normal(size=(batch, 2**n))
    return (s / np.linalg.norm(s, axis=1, keepdims=True)).astype(dtype)


def rand_unitary(rng, d: int, batch: int | None = None) -> np.ndarray:
    shape = (d, d) if batch is None else (batch, d, d)
    q, r = np.linalg.qr(rng.normal(size=shape) + 1j * rng.normal(size=shape))
    return q * (np.diagonal(r, axis1=-2, axis2=-1) / np.abs(np.diagonal(r, axis1=-2, axis2=-1)))[..., None, :]


@st.composite
def layouts(draw, kmin: int = 1, kmax: int = 5, nmax: int = 12, max_controls: int = 3):
    """(n, batch, targets, controls, control values, seed) with distinct wires."""
    k = draw(st.integers(kmin, kmax))
    nc = draw(st.integers(0, max_controls))
    n = draw(st.integers(max(1, k + nc), max(1, nmax)))
    wires = draw(st.permutations(list(range(n))))
    targets, controls = tuple(wires[:k]), tuple(wires[k:k + nc])
    cvals = tuple(draw(st.lists(st.integers(0, 1), min_size=nc, max_size=nc)))
    batch = draw(st.sampled_from([1, 1, 3]))
    return n, batch, targets, controls, cvals, draw(st.integers(0, 2**32 - 1))


configs = pytest.mark.parametrize("dtype,threads", CONFIGS)


# ------------------------------------------------------------------------------------------------
# gates


@configs
@settings(max_examples=EXAMPLES)
@given(lay=layouts(kmin=1, kmax=5), form=st.sampled_from(FORMS), batched=st.booleans())
def test_apply_matrix(dtype, threads, lay, form, batched):
    n, batch, targets, controls, cvals, seed = lay
    rng = np.random.default_rng(seed)
    d = 2 ** len(targets)
    m = rand_unitary(rng, d, batch if batched else None)
    if form == "rx" and d == 2:  # real diagonal, imaginary off-diagonal (RX-like)
        t = rng.normal(size=(batch, 1, 1) if batched else ())
        m = np.cos(t) * np.eye(2) - 1j * np.sin(t) * np.array([[0, 1], [1, 0]])
    elif form == "real":
        m = m.real.copy()
    elif form == "hermitian":
        m = (m + np.swapaxes(m, -1, -2).conj()) / 2
    elif form == "zeros":  # random zero real/imaginary parts: every structure the 1-qubit kernel tells apart
        m = m.real * (rng.random(m.shape) < 0.5) + 1j * m.imag * (rng.random(m.shape) < 0.5)
    state = rand_state(rng, n, batch, dtype)
    with threads_mode(threads):
        got = kern("apply_matrix", state.copy(), m, targets, controls, cvals)
    close(got, ref("apply_matrix", state.copy(), m, targets, controls, cvals), dtype)


@configs
@settings(max_examples=EXAMPLES)
@given(lay=layouts(kmin=0, kmax=4), batched=st.booleans())
def test_apply_diagonal(dtype, threads, lay, batched):
    n, batch, targets, controls, cvals, seed = lay
    rng = np.random.default_rng(seed)
    d = 2 ** len(targets)
    diag = np.exp(1j * rng.normal(size=(batch, d) if batched else (d,)))
    state = rand_state(rng, n, batch, dtype)
    with threads_mode(threads):
        got = kern("apply_diagonal", state.copy(), diag, targets, controls, cvals)
    close(got, ref("apply_diagonal", state.copy(), diag, targets, controls, cvals), dtype)


@configs
@settings(max_examples=EXAMPLES)
@given(lay=layouts(kmin=1, kmax=3), kind=st.sampled_from(["x", "swap", "random"]))
def test_apply_permutation(dtype, threads, lay, kind):
    n, batch, targets, controls, cvals, seed = lay
    rng = np.random.default_rng(seed)
    k = len(targets)
    if kind == "x" or k == 1:
        targets, perm = targets[:1], (1, 0)
    elif kind == "swap":
        targets, perm = targets[:2], (0, 2, 1, 3)
    else:
        perm = tuple(int(i) for i in rng.permutation(2**k))
    state = rand_state(rng, n, batch, dtype)
    with threads_mode(threads):
        got = K.apply_permutation(state.copy(), perm, targets, controls, cvals)
    assert got is not None
    np.testing.assert_array_equal(got, ref("apply_permutation", state.copy(), perm, targets, controls, cvals))


@st.composite
def pauli_words(draw, nmax: int = 12, allow_empty: bool = False):
    n = draw(st.integers(1, nmax))
    wires = draw(st.permutations(list(range(n))))
    size = draw(st.integers(0 if allow_empty else 1, min(n, 5)))
    word = {w: draw(st.sampled_from("XYZ")) for w in wires[:size]}
    return n, word, draw(st.sampled_from([1, 1, 3])), draw(st.integers(0, 2**32 - 1))


@configs
@settings(max_examples=EXAMPLES)
@given(pw=pauli_words(), use_out=st.booleans())
def test_apply_pauli(dtype, threads, pw, use_out):
    n, word, batch, seed = pw
    state = rand_state(np.random.default_rng(seed), n, batch, dtype)
    out = np.empty_like(state) if use_out else None
    with threads_mode(threads):
        got = kern("apply_pauli", state, word, out)
    if use_out:
        assert got is out
    np.testing.assert_array_equal(got, ref("apply_pauli", state, word))


@configs
@settings(max_examples=EXAMPLES)
@given(pw=pauli_words(nmax=10), nc=st.integers(0, 2), batched=st.booleans(), zonly=st.booleans())
def test_apply_pauli_rotation(dtype, threads, pw, nc, batched, zonly):
    n, word, batch, seed = pw
    rng = np.random.default_rng(seed)
    if zonly:
        word = {w: "Z" for w in word}
    free = [w for w in range(n) if w not in word]
    controls = tuple(int(c) for c in rng.permutation(free)[: min(nc, len(free))])
    cvals = tuple(int(v) for v in rng.integers(0, 2, len(controls)))
    theta = rng.normal(size=batch) if batched else float(rng.normal())
    state = rand_state(rng, n, batch, dtype)
    with threads_mode(threads):
        got = kern("apply_pauli_rotation", state.copy(), theta, word, controls, cvals)
    close(got, ref("apply_pauli_rotation", state.copy(), theta, word, controls, cvals), dtype)


# ------------------------------------------------------------------------------------------------
# reductions


@configs
@settings(max_examples=EXAMPLES)
@given(n=st.integers(1, 12), batch=st.sampled_from([1, 3]), seed=st.integers(0, 2**32 - 1))
def test_inner(dtype, threads, n, batch, seed):
    rng = np.random.default_rng(seed)
    a, b = rand_state(rng, n, batch, dtype), rand_state(rng, n, batch, dtype)
    with threads_mode(threads):
        got = kern("inner", a, b)
    want = ref("inner", a, b)
    assert got.dtype == want.dtype
    close(got, want, dtype)


@configs
@settings(max_examples=EXAMPLES)
@given(pw=pauli_words(allow_empty=True), zonly=st.booleans())
def test_expval_pauli(dtype, threads, pw, zonly):
    n, word, batch, seed = pw
    if zonly:
        word = {w: "Z" for w in word}
    state = rand_state(np.random.default_rng(seed), n, batch, dtype)
    with threads_mode(threads):
        got = kern("expval_pauli", state, word)
    want = ref("expval_pauli", state, word)
    assert got.dtype == want.dtype and got.shape == (batch,)
    close(got, want, dtype)


@configs
@settings(max_examples=EXAMPLES)
@given(n=st.integers(1, 12), data=st.data())
def test_probs(dtype, threads, n, data):
    k = data.draw(st.integers(0, n))
    wires = tuple(data.draw(st.permutations(list(range(n))))[:k]) if k else None
    batch = data.draw(st.sampled_from([1, 3]))
    state = rand_state(np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))), n, batch, dtype)
    with threads_mode(threads):
        got = kern("probs", state, wires)
    want = ref("probs", state, wires)
    assert got.dtype == want.dtype
    close(got, want, dtype)


@configs
@settings(max_examples=EXAMPLES)
@given(lay=layouts(kmin=0, kmax=5), batched=st.booleans())
def test_matrix_element_and_reduced_outer(dtype, threads, lay, batched):
    n, batch, targets, controls, cvals, seed = lay
    rng = np.random.default_rng(seed)
    d = 2 ** len(targets)
    batched = batched and d > 1
    shape = (batch, d, d) if batched else (d, d)
    m = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    m = (m + np.swapaxes(m, -1, -2).conj()) / (2 * d)
    bra, ket = rand_state(rng, n, batch, dtype), rand_state(rng, n, batch, dtype)
    with threads_mode(threads):
        got = kern("matrix_element", bra, ket, m, targets, controls, cvals)
        got_r = kern("reduced_outer", bra, ket, targets, controls, cvals)
    want = ref("matrix_element", bra, ket, m, targets, controls, cvals)
    want_r = ref("reduced_outer", bra, ket, targets, controls, cvals)
    assert got.dtype == want.dtype and got_r.dtype == want_r.dtype
    close(got, want, dtype)
    close(got_r, want_r, dtype)


# ------------------------------------------------------------------------------------------------
# every run layout, deterministically (lowest fixed bit 0..RUN_BITS+1, blocks of adjacent fixed bits)


@pytest.mark.parametrize("dtype,threads", CONFIGS)
def test_all_run_layouts(dtype, threads):
    n = 12
    rng = np.random.default_rng(7)
    state = rand_state(rng, n, 2, dtype)
    u1, u2, u3 = rand_unitary(rng, 2), rand_unitary(rng, 4), rand_unitary(rng, 8)
    cases = [((w,), ()) for w in range(n)]
    cases += [((n - 1, n - 2), ()), ((n - 2, n - 1), (n - 3,)), ((0, n - 1), (5,)), ((n - 3, n - 5), (n - 4,)),
              ((3, 4), (n - 1, n - 2)), ((n - 2,), (n - 1, 0)), ((n - 4, n - 3, n - 2), (n - 1,))]
    with threads_mode(threads):
        for targets, controls in cases:
            cv = tuple(i % 2 for i in range(len(controls)))
            m = {1: u1, 2: u2, 3: u3}[len(targets)]
            diag = np.exp(1j * np.arange(2 ** len(targets)))
            for name, args in [("apply_matrix", (m,)), ("apply_diagonal", (diag,))]:
                got = kern(name, state.copy(), *args, targets, controls, cv)
                close(got, ref(name, state.copy(), *args, targets, controls, cv), dtype)
            if len(targets) <= 2:
                perm = (1, 0) if len(targets) == 1 else (0, 2, 1, 3)
                got = kern("apply_permutation", state.copy(), perm, targets, controls, cv)
                np.testing.assert_array_equal(got, ref("apply_permutation", state.copy(), perm, targets, controls, cv))


# ------------------------------------------------------------------------------------------------
# dispatch, fallbacks, threads


def test_backend_dispatches_to_kernels(mocker):
    spy = mocker.spy(K, "apply_matrix")
    state = rand_state(np.random.default_rng(0), 3, 1, "complex128")
    m = rand_unitary(np.random.default_rng(1), 2)
    with kernel_mode("default"):
        BE.apply_matrix(state, m, (1,))
    assert spy.call_count == 1
    with kernel_mode("numpy"):
        BE.apply_matrix(state, m, (1,))
    assert spy.call_count == 1


def test_unsupported_cases_fall_back():
    rng = np.random.default_rng(3)
    state = rand_state(rng, 7, 2, "complex128")
    m6 = rand_unitary(rng, 64)
    assert K.apply_matrix(state.copy(), m6, tuple(range(6))) is None  # more than MAX_DENSE_QUBITS
    strided = np.asfortranarray(state)
    assert K.apply_matrix(strided, m6[:2, :2], (0,)) is None  # not C-contiguous
    assert K.inner(state.astype(np.complex128), state.astype(np.complex64)) is None
    assert K.apply_matrix(state.real.copy(), m6[:2, :2], (0,)) is None  # not complex
    assert K.apply_matrix(state.copy(), np.ones((3, 2, 2)), (0,)) is None  # batch 3 vs 2
    assert K.apply_matrix(state.copy(), m6[:2, :2], (0,), (0,), (1,)) is None  # target is a control
    assert K.apply_pauli(state, {0: "X"}, state) is None  # out overlaps the state
    # the backend still gives the reference answer for all of them
    with kernel_mode("default"):
        got = BE.apply_matrix(state.copy(), m6, tuple(range(6)))
    close(got, ref("apply_matrix", state.copy(), m6, tuple(range(6))), "complex128")
    with kernel_mode("default"):
        got = BE.apply_matrix(np.asfortranarray(state), m6[:4, :4] * 0 + np.eye(4), (2, 5))
    close(got, state, "complex128")


def test_final_state_same_in_both_modes():
    from circuits import random_circuit

    from qdiff.simulate import final_state

    rng = np.random.default_rng(11)
    for _ in range(25):
        rc = random_circuit(rng, num_wires=(1, 8), depth=(5, 25))
        states = {}
        for mode in ("default", "numpy"):
            with kernel_mode(mode):
                states[mode] = final_state(rc.circuit, rc.theta)[0]
        close(states["default"], states["numpy"], "complex128", scale=10)


def test_set_num_threads():
    old = K.get_num_threads()
    try:
        K.set_num_threads(1)
        assert K.get_num_threads() == 1
        K.set_num_threads(10**6)  # clipped to NUMBA_NUM_THREADS
        assert 1 <= K.get_num_threads() <= int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count() or 1))
    finally:
        K.set_num_threads(old)


@pytest.mark.parametrize("mode", ["serial", "parallel"])
def test_sampling_draws_the_reference_samples_without_a_cdf(mode):
    """The chunked CDF walk gives the very indices of the numpy reference (probabilities, cumsum,
    searchsorted) for the same generator: zero-weight states never drawn, batches row by row."""
    rng = np.random.default_rng(5)
    with threads_mode(mode):
        old = K.SAMPLE_CHUNK_MIN_BITS
        K.SAMPLE_CHUNK_MIN_BITS = 2  # several chunks even for small states
        try:
            for n in (1, 3, 9):
                state = rng.normal(size=(2, 2**n)) + 1j * rng.normal(size=(2, 2**n))
                state[:, 1::3] = 0
                state /= np.linalg.norm(state, axis=1, keepdims=True)
                got = K.sample_basis(state, 5000, np.random.default_rng(n))
                with kernel_mode("numpy"):
                    ref = BE.sample_basis(state, 5000, np.random.default_rng(n))
                np.testing.assert_array_equal(got, ref)
                assert not np.any(got % 3 == 1) and got.shape == (2, 5000)
        finally:
            K.SAMPLE_CHUNK_MIN_BITS = old
    assert K.sample_basis(np.zeros((1, 4), complex), 10, rng) is None  # no weight: the reference decides
    assert K.sample_basis(np.full((1, 4), np.nan, complex), 10, rng) is None


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(st.floats(0.0, 1.0, exclude_max=True), st.sampled_from([0.0, 0.5, 1 - 2**-53])),
                       max_size=300))
def test_sort_order_is_numpys_stable_argsort(values):
    """The counting sort behind sampling orders any draws in [0, 1) as a stable comparison sort does:
    repeated values (kept in drawn order), values that share a bucket, the largest double below 1."""
    u = np.array(values, dtype=np.float64)
    np.testing.assert_array_equal(K.sort_order(u), np.argsort(u, kind="stable"))


def test_sort_order_of_many_uniform_draws():
    u = np.random.default_rng(3).random(200_000)
    np.testing.assert_array_equal(K.sort_order(u), np.argsort(u, kind="stable"))


def test_index_bits_kernel_handles_int64_indices_only():
    idx = np.random.default_rng(0).integers(0, 2**40, size=(3, 70), dtype=np.int64)
    got = K.index_bits(idx, 40)
    np.testing.assert_array_equal(got, (idx[..., None] >> np.arange(39, -1, -1)) & 1)
    assert got.dtype == np.int64 and got.shape == (3, 70, 40)
    assert K.index_bits(idx.astype(np.uint64), 40) is None and K.index_bits(idx, 64) is None
