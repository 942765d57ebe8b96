"""Memory prediction and refusal: the predicted peak bounds the measured one, big requests are refused
before anything is allocated, ``memory="fit"`` gives the same numbers in chunks, limits are read right."""

from __future__ import annotations

import importlib
import time
import tracemalloc

import numpy as np
import pytest

import qdiff as qd
from qdiff import buffers, memory
from qdiff.errors import MemoryLimitError, ParameterError

CHECKING_MODULES = [importlib.import_module(m) for m in ("qdiff.execute", "qdiff.gradients.adjoint",
                                                         "qdiff.gradients.common")]


def _layered(n: int, layers: int = 1) -> qd.Circuit:
    c = qd.Circuit(n)
    p = c.params(2 * n * layers)
    k = 0
    for _ in range(layers):
        for w in range(n):
            c.ry(p[k], w)
            c.rz(p[k + 1], w)
            k += 2
        for w in range(n - 1):
            c.cnot(w, w + 1)
    return c


def _hamiltonian(n: int) -> qd.Observable:
    return sum((qd.Z(w) @ qd.Z(w + 1) for w in range(n - 1)), 0.3 * qd.X(0)) + 0.5 * qd.Z(n - 1)


@pytest.fixture
def predictions(monkeypatch: pytest.MonkeyPatch) -> list[memory.Footprint]:
    """Every footprint the code checks, in order (the real check still runs)."""
    seen: list[memory.Footprint] = []

    def spy(fp: memory.Footprint, hint: str = "", backend: object = None) -> None:
        seen.append(fp)
        memory.require(fp, hint, backend)

    for mod in CHECKING_MODULES:
        monkeypatch.setattr(mod, "require", spy)
    return seen


def _peak(fn) -> int:
    fn()  # warm: compiled kernels, cached programs and plans are not part of a request's peak
    buffers.clear()  # but statevectors lent from the pool of reused buffers are: measure with it empty
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


N = 21


def _workloads():
    n = N
    c = _layered(n)
    theta = np.linspace(0.1, 1.0, c.num_params)
    batch = np.stack([theta, 0.5 * theta, -theta])
    h = _hamiltonian(n)
    return {
        "expval of a Pauli sum": lambda: qd.execute(c, qd.Expval(h), theta),
        "var of a Pauli sum": lambda: qd.execute(c, qd.Var(h), theta),
        "probs of all wires": lambda: qd.execute(c, qd.Probs(), theta),
        "state": lambda: qd.execute(c, qd.State(), theta),
        "broadcast expval (3 sets)": lambda: qd.execute(c, qd.Expval(h), batch),
        "adjoint grad": lambda: qd.grad(c, h, theta),
        "adjoint jacobian, 3 outputs": lambda: qd.jacobian(c, [qd.Expval(qd.Z(0)), qd.Expval(qd.X(1)),
                                                              qd.Expval(h)], theta),
        "adjoint vjp": lambda: qd.vjp(c, [qd.Expval(h), qd.Expval(qd.Z(0))], theta, [1.0, 2.0]),
        "parameter-shift grad": lambda: qd.grad(_small_ps(n), qd.Z(0), np.array([0.3, 0.4]),
                                                method="parameter-shift"),
    }


def _small_ps(n: int) -> qd.Circuit:
    c = qd.Circuit(n)
    p = c.params(2)
    c.h(0).rx(p[0], 0).cnot(0, 1).ry(p[1], 1)
    return c


@pytest.mark.parametrize("name", list(_workloads()))
def test_prediction_bounds_measured_peak(name: str, predictions: list[memory.Footprint]) -> None:
    fn = _workloads()[name]
    measured = _peak(fn)
    assert predictions, "the request was not checked before it ran"
    predicted = max(fp.bytes for fp in predictions)
    assert predicted >= measured, f"{name}: predicted {predicted / 2**20:.1f} MiB < measured {measured / 2**20:.1f}"
    assert predicted <= 1.25 * measured, (
        f"{name}: predicted {predicted / 2**20:.1f} MiB is over 25% above measured {measured / 2**20:.1f}"
    )


def test_thirty_qubits_refused_fast_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    # a 24 GiB machine (the cap stands in for it on a bigger one): one complex128 state is 16 GiB
    monkeypatch.setenv("QDIFF_MAX_MEMORY", "24G")
    c = _layered(30)
    theta = np.zeros(c.num_params)
    h = _hamiltonian(30)
    for call in (lambda: qd.execute(c, qd.Expval(h), theta),  # state + Z diagonal: 24 GiB
                 lambda: qd.grad(c, qd.Z(0), theta),
                 lambda: qd.grad(c, h, theta, method="parameter-shift"),
                 lambda: qd.vjp(c, [qd.Expval(qd.Z(0))], theta, [1.0])):
        t0 = time.perf_counter()
        with pytest.raises(MemoryLimitError) as err:
            call()
        assert time.perf_counter() - t0 < 1.0
        text = str(err.value)
        assert "30 qubits" in text and "GiB" in text and "bytes" in text
        assert "complex64" in text and "qubits fit" in text


def test_twenty_nine_qubit_complex64_forward_that_fits_runs() -> None:
    c = qd.Circuit(29)
    p = c.params(1)
    c.h(0).cnot(0, 28).rx(p[0], 5)
    ms = [qd.Expval(qd.Z(0) @ qd.Z(28)), qd.Expval(qd.Z(5))]
    fp = memory.forward_footprint(29, 1, np.complex64, ms)
    free, source = memory.available_memory()
    if not memory.fits(fp) or free < fp.bytes + 2**30:
        pytest.skip(f"a 29-qubit complex64 forward needs {fp.bytes / 2**30:.1f} GiB; "
                    f"{source} is {free / 2**30:.1f} GiB")
    zz, z5 = qd.execute(c, ms, [0.3], dtype=np.complex64)
    assert zz == pytest.approx(1.0, abs=1e-5) and z5 == pytest.approx(np.cos(0.3), abs=1e-5)


def test_limit_counts_batch_and_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QDIFF_MAX_MEMORY", "300M")
    c = _layered(22)  # one complex128 state: 64 MiB
    theta = np.zeros(c.num_params)
    qd.execute(c, qd.Expval(qd.Z(0)), theta)  # fits
    with pytest.raises(MemoryLimitError):
        qd.execute(c, qd.Expval(qd.Z(0)), np.stack([theta] * 8))  # 8 states do not
    qd.execute(c, qd.Expval(qd.Z(0)), np.stack([theta] * 3), dtype=np.complex64)


def test_fit_mode_matches_refuse_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    c = _layered(20)  # 16 MiB per complex128 state
    rng = np.random.default_rng(3)
    batch = rng.uniform(-1, 1, (6, c.num_params))
    h = _hamiltonian(20)
    ms = [qd.Expval(h), qd.Probs((0, 3))]
    full_values = qd.execute(c, ms, batch)
    full_jac = qd.jacobian(c, ms, batch)
    full_vjp = qd.vjp(c, ms, batch, [np.ones(6), np.ones((6, 4))])
    small = _small_ps(20)
    full_ps = qd.jacobian(small, qd.Expval(h), np.array([0.2, 0.7]), method="parameter-shift")
    monkeypatch.setenv("QDIFF_MAX_MEMORY", "90M")  # 6 states, or 5 shifted rows, do not fit; one sweep does
    with pytest.raises(MemoryLimitError):
        qd.execute(c, ms, batch)
    with pytest.raises(MemoryLimitError):
        qd.jacobian(c, ms, batch)
    with pytest.raises(MemoryLimitError):
        qd.jacobian(small, qd.Expval(h), np.array([0.2, 0.7]), method="parameter-shift")
    fit_values = qd.execute(c, ms, batch, memory="fit")
    for a, b in zip(full_values, fit_values, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12)
    for a, b in zip(full_jac, qd.jacobian(c, ms, batch, memory="fit"), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-10)
    np.testing.assert_allclose(full_vjp, qd.vjp(c, ms, batch, [np.ones(6), np.ones((6, 4))], memory="fit"),
                               atol=1e-10)
    np.testing.assert_allclose(full_ps, qd.jacobian(small, qd.Expval(h), np.array([0.2, 0.7]),
                                                    method="parameter-shift", memory="fit"), atol=1e-10)


def test_bad_memory_option_is_refused() -> None:
    c = _small_ps(2)
    with pytest.raises(ParameterError, match="memory must be one of"):
        qd.execute(c, qd.Expval(qd.Z(0)), [0.1, 0.2], memory="swap")
    with pytest.raises(ParameterError, match="memory must be one of"):
        qd.grad(c, qd.Z(0), [0.1, 0.2], memory="swap")


@pytest.mark.parametrize(("text", "value"), [("1024", 1024), ("12G", 12 * 2**30), ("512MiB", 512 * 2**20),
                                             ("1.5GB", 1_500_000_000), ("1e9", 10**9), (" 2 k ", 2048)])
def test_parse_bytes(text: str, value: int) -> None:
    assert memory.parse_bytes(text) == value


@pytest.mark.parametrize("text", ["", "lots", "12 parsecs", "-1G"])
def test_parse_bytes_refuses_nonsense(text: str) -> None:
    with pytest.raises(ParameterError, match="memory size"):
        memory.parse_bytes(text)


def test_available_memory_takes_the_least(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_meminfo_available", lambda: 10 * 2**30)
    monkeypatch.setattr(memory, "_cgroup_room", lambda: 4 * 2**30)
    monkeypatch.delenv("QDIFF_MAX_MEMORY", raising=False)
    assert memory.available_memory() == (4 * 2**30, "the cgroup memory limit")
    monkeypatch.setenv("QDIFF_MAX_MEMORY", "1G")
    assert memory.available_memory() == (2**30, "QDIFF_MAX_MEMORY")
    monkeypatch.setattr(memory, "_cgroup_room", lambda: None)
    monkeypatch.delenv("QDIFF_MAX_MEMORY")
    assert memory.available_memory() == (10 * 2**30, "free host memory (MemAvailable)")


def _fake_files(monkeypatch: pytest.MonkeyPatch, files: dict[str, str]) -> None:
    import builtins
    import io

    real_open = builtins.open

    def fake_open(path, *args, **kwargs):
        if isinstance(path, str) and (path.startswith("/sys/fs/cgroup") or path == "/proc/self/cgroup"):
            if path in files:
                return io.StringIO(files[path])
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)


def test_cgroup_v2_room(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_files(monkeypatch, {"/proc/self/cgroup": "0::/job/42\n",
                              "/sys/fs/cgroup/job/42/memory.max": "8589934592\n",
                              "/sys/fs/cgroup/job/42/memory.current": "1073741824\n"})
    assert memory._cgroup_room() == 7 * 2**30


def test_cgroup_v2_unlimited_falls_back_to_root(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_files(monkeypatch, {"/proc/self/cgroup": "0::/\n",
                              "/sys/fs/cgroup/memory.max": "max\n"})
    assert memory._cgroup_room() is None


def test_cgroup_v1_room(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_files(monkeypatch, {"/proc/self/cgroup": "12:cpu,cpuacct:/a\n4:memory:/slurm/job_7\n",
                              "/sys/fs/cgroup/memory/slurm/job_7/memory.limit_in_bytes": str(2**31),
                              "/sys/fs/cgroup/memory/slurm/job_7/memory.usage_in_bytes": str(2**30)})
    assert memory._cgroup_room() == 2**30


def test_small_requests_skip_the_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> tuple[int, str]:
        raise AssertionError("small requests must not query free memory")

    monkeypatch.setattr(memory, "available_memory", boom)
    c = _small_ps(4)
    qd.execute(c, qd.Expval(qd.Z(0)), [0.1, 0.2])
    qd.grad(c, qd.Z(0), [0.1, 0.2], method="parameter-shift")


def test_forward_states_bound_covers_every_measurement() -> None:
    """``execute`` skips predicting requests that stay below SMALL_BYTES even at FORWARD_STATES_BOUND
    states per batch entry: no forward footprint may exceed that bound."""
    n = 5
    h = _hamiltonian(n) + 0.2 * qd.Hermitian(np.diag([1.0, -1.0]), wires=(1,))
    kinds = [qd.Expval(h), qd.Var(h), qd.Probs(), qd.Probs((0, 2)), qd.State(), qd.Sample(), qd.Sample(obs=h),
             qd.Counts(obs=qd.X(0)), qd.DensityMatrix((0, 1))]
    for batch in (1, 3):
        for dtype in (np.complex128, np.complex64):
            worst = memory.forward_footprint(n, batch, dtype, kinds)
            assert worst.states <= memory.FORWARD_STATES_BOUND * batch, (batch, dtype, worst.states)
            for obs in (h, qd.Z(0) @ qd.Z(1) + qd.Z(2), qd.Hermitian(np.diag([1.0, -1.0]), wires=(1,))):
                lone = memory.adjoint_footprint(n, batch, dtype, [qd.Expval(obs)], 1, 1)
                assert lone.states <= memory.FORWARD_STATES_BOUND * batch, (batch, dtype, lone.states)
    assert memory.negligible(10, memory.FORWARD_STATES_BOUND, np.complex128)
    assert not memory.negligible(24, 1.0, np.complex128)  # 256 MiB: predicted and checked
