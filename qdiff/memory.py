"""Memory: how much there is, how much a computation will need at its peak, and refusing before starting.

``available_memory()`` is the smallest of what the machine reports (``MemAvailable``), what the
process's cgroup still allows (containers, CI runners, Slurm jobs; cgroup v2 and v1), and the user's
cap ``QDIFF_MAX_MEMORY`` (bytes, or with a unit: ``"12G"``, ``"512MiB"``).

``Footprint`` predicts the peak of a whole request from the shapes the code allocates: the final
state, each measurement's temporaries, the bras and ket copies of an adjoint sweep, the stacked rows
of a parameter-shift batch. :func:`require` compares it with what is available and raises the one
:class:`~qdiff.errors.MemoryLimitError`, naming what was asked, the bytes needed and available, and
what would fit, before anything is allocated. The constants below are the allocations of this code
(measured with tracemalloc in ``tests/test_memory.py``, which checks prediction >= measured and
within 25% of it at 20-22 qubits).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import MemoryLimitError, ParameterError
from .measure import Counts, DensityMatrix, Expval, Probs, Sample, State, Var
from .observables import LinearCombination, PauliWord, derived

SMALL_BYTES = 1 << 26
"""Requests below this many bytes are not checked (querying free memory costs more than they do)."""

FIXED_OVERHEAD = 1 << 22
"""Bytes added to every prediction for small arrays (bound matrices, masks, results)."""

_UNITS = {"": 1, "B": 1, "K": 2**10, "KB": 10**3, "KIB": 2**10, "M": 2**20, "MB": 10**6, "MIB": 2**20,
          "G": 2**30, "GB": 10**9, "GIB": 2**30, "T": 2**40, "TB": 10**12, "TIB": 2**40}


def parse_bytes(text: str) -> int:
    """``"12G"`` -> ``12 * 2**30``; plain numbers are bytes; ``GB``/``MB`` are decimal, ``G``/``GiB`` binary."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    if m is None or m.group(2).upper() not in _UNITS:
        raise ParameterError(f"cannot read a memory size from {text!r} (examples: 8G, 512MiB, 1e9)")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def _read_int(path: str) -> int | None:
    try:
        with open(path) as fh:
            text = fh.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_room() -> int | None:
    """Bytes the process's cgroup still allows (limit minus usage), or None without a limit."""
    try:
        with open("/proc/self/cgroup") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":  # cgroup v2
            base = "/sys/fs/cgroup" + parts[2].rstrip("/")
            limit, used = _read_int(base + "/memory.max"), _read_int(base + "/memory.current")
            if limit is None:
                limit, used = _read_int("/sys/fs/cgroup/memory.max"), _read_int("/sys/fs/cgroup/memory.current")
        elif "memory" in parts[1].split(","):  # cgroup v1: the process's group, else the root of the hierarchy
            base = "/sys/fs/cgroup/memory" + parts[2].rstrip("/")
            limit, used = _read_int(base + "/memory.limit_in_bytes"), _read_int(base + "/memory.usage_in_bytes")
            if limit is None:
                limit = _read_int("/sys/fs/cgroup/memory/memory.limit_in_bytes")
                used = _read_int("/sys/fs/cgroup/memory/memory.usage_in_bytes")
        else:
            continue
        if limit is not None and limit < 1 << 60:
            return max(0, limit - (used or 0))
    return None


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def capped(found: list[tuple[int, str]]) -> tuple[int, str]:
    """The least of ``found`` ``(bytes, source)`` pairs and the user's cap ``QDIFF_MAX_MEMORY``."""
    if (cap := os.environ.get("QDIFF_MAX_MEMORY", "").strip()):
        found = found + [(parse_bytes(cap), "QDIFF_MAX_MEMORY")]
    return min(found) if found else (1 << 62, "no limit found")


def available_memory() -> tuple[int, str]:
    """``(bytes, where the limit comes from)``: the least of free host memory, cgroup room and QDIFF_MAX_MEMORY."""
    found: list[tuple[int, str]] = []
    if (free := _meminfo_available()) is not None:
        found.append((free, "free host memory (MemAvailable)"))
    if (room := _cgroup_room()) is not None:
        found.append((room, "the cgroup memory limit"))
    return capped(found)


def _fmt(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


@dataclass(frozen=True)
class Footprint:
    """The predicted peak of one request, in units of one statevector of ``2**num_wires`` amplitudes."""

    what: str
    num_wires: int
    dtype: np.dtype
    states: float  # peak, in state vectors (batch entries and stacked rows included)
    fixed: int = FIXED_OVERHEAD  # bytes of small arrays besides the states

    @property
    def state_bytes(self) -> int:
        """Bytes of one state vector."""
        return (2**self.num_wires) * self.dtype.itemsize

    @property
    def bytes(self) -> int:
        """Predicted peak bytes."""
        return int(self.states * self.state_bytes) + self.fixed


def _zsum_states(obs: Any, dtype: Any) -> float:
    """The real float64 diagonal of a sum's Z-only terms (when it has two or more), in states of ``dtype``.

    One diagonal serves every batch entry, so it is counted once, not per state.
    """
    if not isinstance(obs, LinearCombination):
        return 0.0
    z = derived(obs, "_z_only_terms", lambda: sum(
        1 for t in obs.terms if isinstance(t, PauliWord) and all(p == "Z" for _, p in t.paulis)))
    return 8.0 / np.dtype(dtype).itemsize if z >= 2 else 0.0


def shared_states(measurements: Any, dtype: Any) -> float:
    """Temporaries shared by a whole batch (Z diagonals), in state vectors of ``dtype``."""
    return max((_zsum_states(m.obs, dtype) for m in measurements if hasattr(m, "obs")), default=0.0)


def _apply_temps(obs: Any) -> float:
    """Temporaries of computing ``O|psi>`` besides the result: one per-term product for sums with terms
    that are not Pauli words (Pauli words of a sum are applied together, into the result)."""
    if not isinstance(obs, LinearCombination):
        return 0.0
    return derived(obs, "_apply_temps",
                   lambda: 1.0 if any(not isinstance(t, PauliWord) for t in obs.terms) else 0.0)


def measurement_states(m: Any, num_wires: int) -> float:
    """Per-state temporaries of evaluating one measurement, in state vectors (besides the state).

    Temporaries shared by the whole batch are :func:`shared_states`.
    """
    from .observables import LinearCombination

    if isinstance(m, (State, DensityMatrix)):
        return 1.0  # the returned copy (a reduced density matrix starts from one)
    if isinstance(m, (Sample, Counts)):
        return 2.0 if getattr(m, "obs", None) is not None else 1.0
    if isinstance(m, Probs):
        return 0.5 if m.wires is None or len(m.wires) == num_wires else 0.0
    if isinstance(m, Var):
        return 1.0 + _apply_temps(m.obs) if isinstance(m.obs, LinearCombination) else 0.0
    if isinstance(m, Expval):
        return 0.0
    return 1.0


def _bra_states(m: Any) -> float:
    """Per-state temporaries of building one cotangent bra of ``m``, besides the bra itself.

    expval: ``O|psi>`` before it is scaled; var: ``O|psi>``, ``O^2|psi>`` and their combination;
    probs: the real weights (half a state).
    """
    if isinstance(m, Probs):
        return 0.5
    return (3.0 if isinstance(m, Var) else 1.0) + _apply_temps(getattr(m, "obs", None))


def _phases(batch: int, sweep: float, build: float, measure: float, shared: float) -> float:
    """Peak over an adjoint computation's phases: measuring, building the bra(s), the backward sweep.

    Batch-shared temporaries (a Z diagonal) live only while measuring and building bras."""
    return max(batch * sweep, batch * build + shared, batch * measure + shared)


FORWARD_STATES_BOUND = 4.0
"""Most state vectors per batch entry a forward pass and its measurements hold (state, at most two
temporaries per measurement, one batch-shared diagonal), and a lone expectation's adjoint gradient
(state, bra, the sweep's temporary, one diagonal): the bound behind :func:`negligible`."""


def negligible(num_wires: int, states: float, dtype: Any) -> bool:
    """Whether ``states`` state vectors (plus the fixed overhead) stay below ``SMALL_BYTES``, so that no
    prediction is needed: :func:`require` would accept any footprint up to that size unchecked."""
    return states * (2**num_wires) * np.dtype(dtype).itemsize + FIXED_OVERHEAD <= SMALL_BYTES


def forward_footprint(num_wires: int, batch: int, dtype: Any, measurements: Any = ()) -> Footprint:
    """Peak of simulating ``batch`` states and measuring them (measurements run one after another)."""
    extra = max((measurement_states(m, num_wires) for m in measurements), default=0.0)
    states = batch * (1.0 + extra) + shared_states(measurements, dtype)
    return Footprint("a forward pass", num_wires, np.dtype(dtype), states)


def adjoint_footprint(num_wires: int, batch: int, dtype: Any, measurements: Any, rows_per_sweep: int,
                      total_rows: int = 1) -> Footprint:
    """Peak of an adjoint Jacobian of ``total_rows`` output rows, ``rows_per_sweep`` stacked per backward sweep.

    Sweep, one row at a time: the state, its bra and the sweep's temporary, plus a copy of the state
    while rows remain. Several rows: the state, the bras, the stacked bra and the stacked ket copies.
    A lone expectation reads its value from its bra ``O|psi>`` (nothing measured apart, no scaled copy).
    """
    c = max(1, rows_per_sweep)
    if len(measurements) == 1 and type(measurements[0]) is Expval:
        build = 2.0 + _apply_temps(measurements[0].obs)
        states = _phases(batch, 3.0, build, 0.0, shared_states(measurements, dtype))
        return Footprint("an adjoint gradient", num_wires, np.dtype(dtype), states)
    sweep = (4.0 if total_rows > 1 else 3.0) if c == 1 else 1.0 + 3.0 * c
    measure = 1.0 + max((measurement_states(m, num_wires) for m in measurements), default=0.0)
    build = 1.0 + c + max((_bra_states(m) for m in measurements), default=0.0)
    states = _phases(batch, sweep, build, measure, shared_states(measurements, dtype))
    return Footprint("an adjoint gradient", num_wires, np.dtype(dtype), states)


def vjp_footprint(num_wires: int, batch: int, dtype: Any, measurements: Any) -> Footprint:
    """Peak of an adjoint VJP: the state, one summed bra (plus the term being built) and the sweep's temporary."""
    measure = 1.0 + max((measurement_states(m, num_wires) for m in measurements), default=0.0)
    build = (2.0 if len(measurements) == 1 else 3.0) + max((_bra_states(m) for m in measurements), default=0.0)
    states = _phases(batch, 3.0, build, measure, shared_states(measurements, dtype))
    return Footprint("an adjoint vector-Jacobian product", num_wires, np.dtype(dtype), states)


def rows_footprint(num_wires: int, rows: int, dtype: Any, measurements: Any = ()) -> Footprint:
    """Peak of evaluating ``rows`` stacked parameter sets at once (parameter-shift, finite differences)."""
    fp = forward_footprint(num_wires, rows, dtype, measurements)
    return Footprint("a parameter-shift batch", num_wires, fp.dtype, fp.states)


def _room(backend: Any) -> tuple[int, str]:
    return available_memory() if backend is None else backend.available_memory()


def fits(fp: Footprint, backend: Any = None) -> bool:
    """Whether the predicted peak of ``fp`` fits in the memory ``backend`` allocates from (host by default)."""
    return fp.bytes <= SMALL_BYTES or fp.bytes <= _room(backend)[0]


def require(fp: Footprint, hint: str = "", backend: Any = None) -> None:
    """Raise :class:`MemoryLimitError` unless the predicted peak of ``fp`` fits.

    The memory is the one ``backend`` allocates from (its ``available_memory()``: host memory for numpy,
    GPU memory for CuPy), host memory when None. The message names the request, the bytes needed and
    available, where the limit comes from, and what would fit.
    """
    need = fp.bytes
    if need <= SMALL_BYTES:
        return
    free, source = _room(backend)
    if need <= free:
        return
    fit = []
    if fp.dtype == np.complex128:
        fit.append(f"dtype=complex64 needs {_fmt(need / 2)}")
    if hint:
        fit.append(hint)
    biggest = int(np.log2(max(1.0, (free - fp.fixed) / max(fp.states, 1e-9) / fp.dtype.itemsize)))
    fit.append(f"about {min(biggest, fp.num_wires - 1)} qubits fit as asked")
    raise MemoryLimitError(
        f"{fp.what} on {fp.num_wires} qubits ({fp.dtype.name}) needs about {_fmt(need)} at its peak "
        f"({fp.states:g} state vector(s) of {fp.state_bytes:,} bytes), but only {_fmt(free)} ({free:,} bytes) "
        f"is available ({source}). What would fit: " + "; ".join(fit) + "."
    )


def largest_that_fits(footprint_of: Any, upper: int, backend: Any = None) -> int:
    """The largest ``k`` in ``1..upper`` whose ``footprint_of(k)`` fits (1 if none does; peaks grow with ``k``)."""
    free = _room(backend)[0]
    lo, hi = 1, max(1, upper)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if footprint_of(mid).bytes <= max(free, SMALL_BYTES):
            lo = mid
        else:
            hi = mid - 1
    return lo


def split_batch(run: Any, theta: np.ndarray, batch: int, footprint_of: Any, backend: Any = None) -> list | None:
    """For ``memory="fit"``: ``run(theta[chunk])`` over chunks of a parameter batch ``(batch, P)`` whose
    whole footprint (``footprint_of(rows)``) does not fit, the largest chunks that do; None when it fits."""
    if fits(footprint_of(batch), backend):
        return None
    k = largest_that_fits(footprint_of, batch - 1, backend)
    return [run(theta[s : s + k]) for s in range(0, batch, k)]


MEMORY_POLICIES = ("refuse", "fit")
"""``refuse``: raise when the request as asked would not fit; ``fit``: take a smaller-memory way (fewer
rows per sweep or batch) when one exists, and refuse only when none does."""


def check_policy(memory: str) -> str:
    """Validate a ``memory=`` option."""
    if memory not in MEMORY_POLICIES:
        raise ParameterError(f"memory must be one of {MEMORY_POLICIES}, got {memory!r}")
    return memory


__all__ = [
    "Footprint", "available_memory", "fits", "parse_bytes", "require", "negligible", "forward_footprint",
    "adjoint_footprint",
    "vjp_footprint", "rows_footprint", "largest_that_fits", "measurement_states", "MEMORY_POLICIES",
    "check_policy", "shared_states", "capped", "split_batch",
]
