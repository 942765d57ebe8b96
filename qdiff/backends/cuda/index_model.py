"""Host side of the GPU kernels: launch planning and the kernels' bit arithmetic, in numpy.

Pure numpy, so it runs (and is tested) on machines without CUDA:

* **Planning** (used by :class:`~qdiff.backends.cuda.backend.CupyBackend`): the ``plan_*`` functions turn a
  primitive call (state size, gate data, targets, controls) into a :class:`KernelCall`: which kernel of
  ``kernels.cu``, its launch geometry and its argument list (bit masks, gate data by value or as an array
  to copy, placeholders for the arrays the backend binds). Gate data is first reordered to ascending
  target wires, so the kernels address a group's rows with ``pdep(r, tmask)``.
* **Bit arithmetic** (``insert_zero_bits``, ``pdep``, ``pext``, ``parity``): the kernels' index helpers on
  numpy arrays. The tests' numpy model of a launch (``tests/gpu_index_emulation.py``) is built on them.

Conventions are the kernels': a state is ``(B, 2**n)``, wire ``w`` is bit ``n - 1 - w`` of an index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BLOCK = 256
"""Threads per block (at most; smaller for small problems, never under one warp)."""
MAX_GRID_X = 1 << 16
"""Blocks along x for gate kernels; larger problems use the kernels' grid-stride loops."""
MAX_GRID_Y = 65535
"""CUDA's limit on gridDim.y (the batch axis); larger batches loop inside the kernel."""
REDUCE_BLOCKS = 1024
"""Blocks along x (= partial sums per batch entry) for reductions."""
KQ_MAX = 10
"""Largest k for the shared-memory k-qubit matrix and permutation kernels (2^10 amplitudes per group)."""
MATEL_KMAX = 3
"""Largest k for the matrix-element kernel (d^2 products per group); larger k use CuPy einsum."""
BY_VALUE_MAX = 16
"""Gate data with at most this many entries (unbatched, on the host) travels as kernel arguments."""


@dataclass(frozen=True)
class Buf:
    """Placeholder for an array the caller binds at launch (``state``, ``in``, ``out``, ``partial``...)."""

    name: str


DUMMY = Buf("dummy")
"""Placeholder for an unused pointer argument (a one-element array of the state's dtype)."""
DUMMY_REAL = Buf("dummy_real")
"""Unused pointer argument of the state's real dtype."""
DUMMY_INT = Buf("dummy_int")
"""Unused ``const int*`` argument."""


@dataclass
class KernelCall:
    """One kernel launch: template name, geometry, arguments; ``outputs`` are arrays to allocate."""

    kernel: str
    template: str  # "double", "float", "double, 2", ... ("" for a non-template kernel)
    grid: tuple[int, int]
    block: int
    args: tuple
    shared_mem: int = 0
    outputs: dict[str, tuple[tuple[int, ...], Any]] = field(default_factory=dict)

    @property
    def name_expression(self) -> str:
        """The C++ name CuPy's RawModule looks the kernel up by."""
        return f"{self.kernel}<{self.template}>" if self.template else self.kernel

    @property
    def host_symbol(self) -> str:
        """Entry point of the host emulation build of kernels.cu (``-DQDIFF_HOST_EMULATION``)."""
        if not self.template:
            return f"h_{self.kernel}"
        parts = [p.strip() for p in self.template.split(",")]
        suffix = "d" if parts[0] == "double" else "f"
        return f"h_{self.kernel}{''.join(parts[1:])}_{suffix}"


# ------------------------------------------------------------------------------------------------
# bits and masks (host: Python ints)


def wire_bit(n: int, wire: int) -> int:
    """Bit position of ``wire`` in an amplitude index (wire 0 is the most significant)."""
    return n - 1 - wire


def wire_mask(n: int, wires: tuple) -> int:
    """OR of the bits of ``wires``."""
    m = 0
    for w in wires:
        m |= 1 << wire_bit(n, int(w))
    return m


def control_masks(n: int, controls: tuple, cvals: tuple) -> tuple[int, int]:
    """(cmask: bits of the control wires, cset: those whose control value is 1)."""
    cmask = cset = 0
    for c, v in zip(controls, cvals, strict=True):
        cmask |= 1 << wire_bit(n, int(c))
        if int(v):
            cset |= 1 << wire_bit(n, int(c))
    return cmask, cset


def pauli_masks(n: int, word: dict[int, str]) -> tuple[int, int, complex]:
    """(xmask, pmask, g) with ``(P psi)[i] = g * (-1)^popcount(i & pmask) * psi[i ^ xmask]``.

    X and Y flip their bit; Y and Z give a sign from the output bit; each Y contributes a factor -i
    (Y|0> = i|1>, Y|1> = -i|0>: output bit 1 gets +i = -i * -1, output bit 0 gets -i).
    """
    xmask = pmask = 0
    ny = 0
    for w, p in word.items():
        bit = 1 << wire_bit(n, int(w))
        if p in ("X", "Y"):
            xmask |= bit
        if p in ("Y", "Z"):
            pmask |= bit
        ny += p == "Y"
    g = (1, -1j, -1, 1j)[ny % 4]
    return xmask, pmask, complex(g)


def set_bits(mask: int) -> list[int]:
    """Positions of the set bits of ``mask``, lowest first."""
    out, p = [], 0
    while mask >> p:
        if (mask >> p) & 1:
            out.append(p)
        p += 1
    return out


def next_pow2(x: int) -> int:
    """Smallest power of two >= x (1 for x <= 1)."""
    return 1 << max(0, int(x) - 1).bit_length()


# ------------------------------------------------------------------------------------------------
# the kernels' bit arithmetic on numpy uint64 arrays (kernels.cu: insert_zero_bits, pdep, pext, parity)

_U = np.uint64


def insert_zero_bits(t: Any, mask: int) -> np.ndarray:
    """``t`` with a 0 inserted at every set bit of ``mask``, lowest position first."""
    t = np.asarray(t, dtype=np.uint64)
    for p in set_bits(mask):
        low = _U((1 << p) - 1)
        t = ((t & ~low) << _U(1)) | (t & low)
    return t


def pdep(r: Any, mask: int) -> np.ndarray:
    """Deposit bit j of ``r`` at the j-th lowest set bit of ``mask``."""
    r = np.asarray(r, dtype=np.uint64)
    out = np.zeros_like(r)
    for j, p in enumerate(set_bits(mask)):
        out |= ((r >> _U(j)) & _U(1)) << _U(p)
    return out


def pext(i: Any, mask: int) -> np.ndarray:
    """Gather the bits of ``i`` at the set positions of ``mask`` into the low bits (inverse of pdep)."""
    i = np.asarray(i, dtype=np.uint64)
    out = np.zeros_like(i)
    for j, p in enumerate(set_bits(mask)):
        out |= ((i >> _U(p)) & _U(1)) << _U(j)
    return out


def parity(x: Any) -> np.ndarray:
    """popcount(x) & 1, elementwise."""
    x = np.asarray(x, dtype=np.uint64)
    if hasattr(np, "bitwise_count"):
        return (np.bitwise_count(x) & 1).astype(np.int64)
    out = np.zeros(x.shape, dtype=np.int64)
    y = x.copy()
    while np.any(y):
        out ^= (y & _U(1)).astype(np.int64)
        y >>= _U(1)
    return out


# ------------------------------------------------------------------------------------------------
# gate data in ascending target order (works on numpy and CuPy arrays alike: reshape/transpose only)


def target_order(targets: tuple) -> list[int]:
    """Positions of ``targets`` sorted by wire: ``targets[order[j]]`` is the j-th smallest wire."""
    return sorted(range(len(targets)), key=lambda j: targets[j])


def _transpose_targets(x: Any, k: int, blocks: int, order: list[int]) -> Any:
    """Permute the k target axes of each of the trailing ``blocks`` 2^k-sized axes of ``x`` by ``order``."""
    lead = x.shape[: x.ndim - blocks]
    nl = len(lead)
    t = x.reshape(tuple(lead) + (2,) * (k * blocks))
    axes = list(range(nl))
    for blk in range(blocks):
        axes += [nl + blk * k + p for p in order]
    return t.transpose(axes).reshape(x.shape)


def sort_matrix(m: Any, targets: tuple) -> Any:
    """The matrix ``(..., d, d)`` rewritten for the targets in ascending wire order."""
    order = target_order(targets)
    if order == sorted(order):
        return m
    return _transpose_targets(m, len(targets), 2, order)


def unsort_matrix(m: Any, targets: tuple) -> Any:
    """Inverse of :func:`sort_matrix`: from ascending wire order back to the order of ``targets``."""
    order = target_order(targets)
    if order == sorted(order):
        return m
    inverse = sorted(range(len(order)), key=lambda j: order[j])
    return _transpose_targets(m, len(targets), 2, inverse)


def sort_diagonal(dg: Any, targets: tuple) -> Any:
    """The diagonal ``(..., d)`` rewritten for the targets in ascending wire order."""
    order = target_order(targets)
    if order == sorted(order):
        return dg
    return _transpose_targets(dg, len(targets), 1, order)


def sort_permutation(perm: tuple, targets: tuple) -> tuple[int, ...]:
    """The permutation ``new[i] = old[perm[i]]`` rewritten for the targets in ascending wire order."""
    k = len(targets)
    order = target_order(targets)
    sigma = np.arange(2**k).reshape((2,) * k).transpose(order).ravel() if k else np.zeros(1, int)
    inv = np.argsort(sigma)
    return tuple(int(inv[perm[int(s)]]) for s in sigma)


def pack_permutation(perm: tuple) -> int:
    """Four bits per entry (entries < 16), as qd_perm reads ``packed`` for d <= 16."""
    packed = 0
    for r, p in enumerate(perm):
        packed |= int(p) << (4 * r)
    return packed


# ------------------------------------------------------------------------------------------------
# launch geometry


def launch_1d(nthreads: int, batch: int, max_blocks: int = MAX_GRID_X, block: int | None = None
              ) -> tuple[tuple[int, int], int]:
    """((gx, gy), block) for a grid-stride kernel over ``nthreads`` ids per batch entry."""
    if block is None:
        block = min(BLOCK, max(32, next_pow2(nthreads)))
    gx = max(1, min(-(-int(nthreads) // block), max_blocks))
    gy = max(1, min(int(batch), MAX_GRID_Y))
    return (gx, gy), block


def launch_smem(ngroups: int, d: int, batch: int, itemsize: int, max_blocks: int = MAX_GRID_X,
                block: int | None = None) -> tuple[tuple[int, int], int, int]:
    """((gx, gy), block, shared bytes) for qd_apply_kq / qd_perm (chunks of whole groups)."""
    if block is None:
        block = min(BLOCK, max(32, next_pow2(ngroups * d)))
    gpb = max(1, block // d)
    nchunks = -(-int(ngroups) // gpb)
    gx = max(1, min(nchunks, max_blocks))
    gy = max(1, min(int(batch), MAX_GRID_Y))
    return (gx, gy), block, gpb * d * itemsize


# ------------------------------------------------------------------------------------------------
# planning: primitive call -> KernelCall


def real_name(dtype: Any) -> str:
    """Template argument of kernels.cu for a complex dtype."""
    dt = np.dtype(dtype)
    if dt == np.complex128:
        return "double"
    if dt == np.complex64:
        return "float"
    raise TypeError(f"GPU kernels need complex64 or complex128 states, got {dt}")


def _real_type(dtype: Any) -> type:
    return np.float64 if np.dtype(dtype) == np.complex128 else np.float32


def _complex_type(dtype: Any) -> type:
    return np.complex128 if np.dtype(dtype) == np.complex128 else np.complex64


def _is_host(x: Any) -> bool:
    return isinstance(x, (np.ndarray, np.generic, int, float, complex))


def _gate_data(data: Any, batch: int, size: int, ndim_unbatched: int, dtype: Any, count: int
               ) -> tuple[Any, int, tuple]:
    """(pointer argument, stride, by-value scalars) for a matrix/diagonal of ``size`` entries per entry.

    By value when on the host, unbatched (or a batch of one) and ``count >= size``; else as an array
    (stride 0 when shared by every batch entry, ``size`` when one per entry).
    """
    ctype = _complex_type(dtype)
    data = data.astype(ctype, copy=False)
    batched = data.ndim == ndim_unbatched + 1
    nb = int(data.shape[0]) if batched else 1
    if batched and nb not in (1, batch):
        from ...errors import ParameterError

        raise ParameterError(f"gate data has batch size {nb} for a state batch of {batch}")
    if _is_host(data) and nb == 1 and size <= count:
        flat = np.asarray(data, dtype=ctype).reshape(-1)
        scalars = tuple(ctype(v) for v in flat) + (ctype(0),) * (count - size)
        return DUMMY, -1, scalars
    zeros = (ctype(0),) * count
    return data.reshape(nb, size), (size if nb > 1 else 0), zeros


def _u(x: int) -> np.uint64:
    return np.uint64(x)


def plan_apply_matrix(n: int, batch: int, dtype: Any, matrix: Any, targets: tuple, controls: tuple = (),
                      cvals: tuple = (), max_blocks: int = MAX_GRID_X, block: int | None = None
                      ) -> KernelCall | None:
    """Kernel call applying a ``(d, d)`` or ``(B, d, d)`` matrix (state dtype) in place; None when k > KQ_MAX."""
    k = len(targets)
    if k == 0 or k > KQ_MAX:
        return None
    d = 2**k
    m = sort_matrix(matrix, targets)
    tmask = wire_mask(n, targets)
    cmask, cset = control_masks(n, controls, cvals)
    fixed = tmask | cmask
    dim, nthreads = 2**n, 2 ** (n - k - len(controls))
    tmpl = real_name(dtype)
    if k <= 2:
        ptr, stride, scal = _gate_data(m, batch, d * d, 2, dtype, d * d)
        grid, blk = launch_1d(nthreads, batch, max_blocks, block)
        if k == 1:
            args = (Buf("state"), _u(dim), _u(nthreads), np.int32(batch), _u(fixed), _u(cset), _u(tmask),
                    ptr, np.int64(stride)) + scal
            return KernelCall("qd_apply_1q", tmpl, grid, blk, args)
        bits = set_bits(tmask)
        args = (Buf("state"), _u(dim), _u(nthreads), np.int32(batch), _u(fixed), _u(cset), _u(1 << bits[1]),
                _u(1 << bits[0]), ptr, np.int64(stride)) + scal
        return KernelCall("qd_apply_2q", tmpl, grid, blk, args)
    ptr, stride, _ = _gate_data(m, batch, d * d, 2, dtype, 0)
    grid, blk, shared = launch_smem(nthreads, d, batch, np.dtype(dtype).itemsize, max_blocks, block)
    args = (Buf("state"), _u(dim), _u(nthreads), np.int32(batch), _u(fixed), _u(cset), _u(tmask), np.int32(d),
            ptr, np.int64(stride))
    return KernelCall("qd_apply_kq", tmpl, grid, blk, args, shared)


def plan_apply_diagonal(n: int, batch: int, dtype: Any, diag: Any, targets: tuple, controls: tuple = (),
                        cvals: tuple = (), max_blocks: int = MAX_GRID_X, block: int | None = None
                        ) -> KernelCall:
    """Kernel call multiplying by a ``(d,)`` or ``(B, d)`` diagonal in place (any k, k = 0 included)."""
    k = len(targets)
    dg = sort_diagonal(diag, targets)
    cmask, cset = control_masks(n, controls, cvals)
    nthreads = 2 ** (n - len(controls))
    ptr, stride, scal = _gate_data(dg, batch, 2**k, 1, dtype, 4)
    grid, blk = launch_1d(nthreads, batch, max_blocks, block)
    args = (Buf("state"), _u(2**n), _u(nthreads), np.int32(batch), _u(cmask), _u(cset), _u(wire_mask(n, targets)),
            ptr, np.int64(stride)) + scal
    return KernelCall("qd_apply_diag", real_name(dtype), grid, blk, args)


def plan_apply_permutation(n: int, batch: int, dtype: Any, perm: tuple, targets: tuple, controls: tuple = (),
                           cvals: tuple = (), max_blocks: int = MAX_GRID_X, block: int | None = None
                           ) -> KernelCall | None:
    """Kernel call permuting basis states of ``targets`` in place; None when k > KQ_MAX.

    The caller skips identity permutations.
    """
    k = len(targets)
    if k == 0 or k > KQ_MAX:
        return None
    tmask = wire_mask(n, targets)
    cmask, cset = control_masks(n, controls, cvals)
    fixed = tmask | cmask
    nthreads = 2 ** (n - k - len(controls))
    tmpl = real_name(dtype)
    if k == 1:  # the only non-identity one-qubit permutation is the flip
        grid, blk = launch_1d(nthreads, batch, max_blocks, block)
        args = (Buf("state"), _u(2**n), _u(nthreads), np.int32(batch), _u(fixed), _u(cset), _u(tmask))
        return KernelCall("qd_swap", tmpl, grid, blk, args)
    d = 2**k
    sperm = sort_permutation(tuple(int(p) for p in perm), targets)
    if d <= 16:
        ptr, packed = DUMMY_INT, pack_permutation(sperm)
    else:
        ptr, packed = np.asarray(sperm, dtype=np.int32), 0
    grid, blk, shared = launch_smem(nthreads, d, batch, np.dtype(dtype).itemsize, max_blocks, block)
    args = (Buf("state"), _u(2**n), _u(nthreads), np.int32(batch), _u(fixed), _u(cset), _u(tmask), np.int32(d),
            ptr, _u(packed))
    return KernelCall("qd_perm", tmpl, grid, blk, args, shared)


def plan_pauli_apply(n: int, batch: int, dtype: Any, word: dict[int, str], max_blocks: int = MAX_GRID_X,
                     block: int | None = None) -> KernelCall:
    """Kernel call writing ``out = P in`` (buffers ``in`` and ``out``)."""
    xmask, pmask, g = pauli_masks(n, word)
    grid, blk = launch_1d(2**n, batch, max_blocks, block)
    args = (Buf("in"), Buf("out"), _u(2**n), np.int32(batch), _u(xmask), _u(pmask), _complex_type(dtype)(g))
    return KernelCall("qd_pauli_apply", real_name(dtype), grid, blk, args)


def rotation_cos_sin(theta: Any, dtype: Any) -> tuple[Any, int, Any, Any]:
    """(cs array (B, 2) or DUMMY_REAL, stride, c, s) for ``exp(-i theta/2 P)``: scalars by value."""
    rt = _real_type(dtype)
    if _is_host(theta) and np.ndim(theta) == 0:
        t = float(theta)
        return DUMMY_REAL, -1, rt(math.cos(t / 2)), rt(math.sin(t / 2))
    xp = np if _is_host(theta) else _array_module(theta)
    t = xp.asarray(theta, dtype=np.float64).reshape(-1)
    cs = xp.stack([xp.cos(t / 2), xp.sin(t / 2)], axis=1).astype(rt)
    return cs, (2 if t.shape[0] > 1 else 0), rt(0), rt(0)


def _array_module(x: Any) -> Any:
    mod = type(x).__module__.split(".")[0]
    if mod == "cupy":
        import cupy

        return cupy
    return np


def plan_pauli_rotation(n: int, batch: int, dtype: Any, theta: Any, word: dict[int, str], controls: tuple = (),
                        cvals: tuple = (), max_blocks: int = MAX_GRID_X, block: int | None = None
                        ) -> KernelCall:
    """Kernel call applying ``exp(-i theta/2 P)`` in place on the controlled subspace."""
    xmask, pmask, g = pauli_masks(n, word)
    cmask, cset = control_masks(n, controls, cvals)
    fixed = cmask
    if xmask:
        fixed |= xmask & -xmask  # pairs (i, i ^ xmask): i has a 0 at the lowest flipped bit
    nthreads = 2 ** (n - bin(fixed).count("1"))
    cs, stride, c, s = rotation_cos_sin(theta, dtype)
    if stride > 0 and cs.shape[0] != batch:
        from ...errors import ParameterError

        raise ParameterError(f"rotation angle has batch size {cs.shape[0]} for a state batch of {batch}")
    grid, blk = launch_1d(nthreads, batch, max_blocks, block)
    args = (Buf("state"), _u(2**n), _u(nthreads), np.int32(batch), _u(fixed), _u(cset), _u(xmask), _u(pmask),
            _complex_type(dtype)(g), cs, np.int64(stride), c, s)
    return KernelCall("qd_pauli_rot", real_name(dtype), grid, blk, args)


def plan_pauli_expval(n: int, batch: int, dtype: Any, word: dict[int, str], max_blocks: int = REDUCE_BLOCKS,
                      block: int | None = None) -> KernelCall:
    """Kernel call writing per-block partial sums ``partial (B, gx)`` of Re <psi|P|psi>."""
    xmask, pmask, g = pauli_masks(n, word)
    grid, blk = launch_1d(2**n, batch, max_blocks, block)
    args = (Buf("state"), _u(2**n), np.int32(batch), _u(xmask), _u(pmask), _complex_type(dtype)(g), Buf("partial"))
    return KernelCall("qd_pauli_expval", real_name(dtype), grid, blk, args,
                      outputs={"partial": ((batch, grid[0]), np.float64)})


def plan_matrix_element(n: int, batch: int, dtype: Any, matrix: Any, targets: tuple, controls: tuple = (),
                        cvals: tuple = (), max_blocks: int = REDUCE_BLOCKS, block: int | None = None
                        ) -> KernelCall | None:
    """Kernel call for ``<bra|(P_controls x M)|ket>``: partial sums ``(B, gx, 2)``; None when k > MATEL_KMAX."""
    k = len(targets)
    if k > MATEL_KMAX:
        return None
    d = 2**k
    m = sort_matrix(matrix, targets)
    tmask = wire_mask(n, targets)
    cmask, cset = control_masks(n, controls, cvals)
    ngroups = 2 ** (n - k - len(controls))
    ptr, stride, _ = _gate_data(m, batch, d * d, 2, dtype, 0)
    grid, blk = launch_1d(ngroups, batch, max_blocks, block)
    args = (Buf("bra"), Buf("ket"), _u(2**n), _u(ngroups), np.int32(batch), _u(tmask | cmask), _u(cset), _u(tmask),
            np.int32(d), ptr, np.int64(stride), Buf("partial"))
    return KernelCall("qd_matel", real_name(dtype), grid, blk, args,
                      outputs={"partial": ((batch, grid[0], 2), np.float64)})


def plan_reduced_outer(n: int, batch: int, dtype: Any, targets: tuple, controls: tuple = (), cvals: tuple = (),
                       max_blocks: int = REDUCE_BLOCKS, block: int | None = None) -> KernelCall | None:
    """Kernel call for ``R = sum_rest conj(bra) ket^T`` on 1 or 2 targets, restricted to the controlled
    subspace: partial sums ``(B, gx, D*D, 2)``, in ascending target order (see :func:`finish_outer`).

    None for other k.
    """
    k = len(targets)
    if k not in (1, 2):
        return None
    D = 2**k
    tmask = wire_mask(n, targets)
    cmask, cset = control_masks(n, controls, cvals)
    ngroups = 2 ** (n - k - len(controls))
    grid, blk = launch_1d(ngroups, batch, max_blocks, block)
    args = (Buf("bra"), Buf("ket"), _u(2**n), _u(ngroups), np.int32(batch), _u(tmask | cmask), _u(cset), _u(tmask),
            Buf("partial"))
    return KernelCall("qd_outer", f"{real_name(dtype)}, {D}", grid, blk, args,
                      outputs={"partial": ((batch, grid[0], D * D, 2), np.float64)})


def plan_search(batch: int, K: int, shots: int, max_blocks: int = MAX_GRID_X, block: int | None = None
                ) -> KernelCall:
    """Kernel call mapping uniforms ``u (B, shots)`` to indices through row-wise CDFs ``cdf (B, K)``."""
    grid, blk = launch_1d(shots, batch, max_blocks, block)
    args = (Buf("cdf"), _u(K), Buf("u"), _u(shots), np.int32(batch), Buf("out"))
    return KernelCall("qd_search_cdf", "", grid, blk, args, outputs={"out": ((batch, shots), np.int64)})


# ------------------------------------------------------------------------------------------------
# from per-block partial sums to results (array-agnostic: numpy in the tests, CuPy in the backend)


def finish_expval(partial: Any, real_dtype: Any) -> Any:
    """``(B,)`` expectation values from qd_pauli_expval's partial sums ``(B, gx)``."""
    return partial.sum(axis=1).astype(real_dtype)


def finish_matel(partial: Any, dtype: Any) -> Any:
    """``(B,)`` complex matrix elements from qd_matel's partial sums ``(B, gx, 2)``."""
    s = partial.sum(axis=1)
    return (s[:, 0] + 1j * s[:, 1]).astype(dtype)


def finish_outer(partial: Any, targets: tuple, dtype: Any) -> Any:
    """``(B, D, D)`` reduced outer product, in the order of ``targets``, from qd_outer's partial sums."""
    s = partial.sum(axis=1)  # (B, D*D, 2)
    D = 2 ** len(targets)
    r = (s[..., 0] + 1j * s[..., 1]).astype(dtype).reshape(s.shape[0], D, D)
    return unsort_matrix(r, targets)


__all__ = [
    "KernelCall", "Buf", "DUMMY", "DUMMY_REAL", "DUMMY_INT",
    "insert_zero_bits", "pdep", "pext", "parity", "pauli_masks", "control_masks", "wire_mask",
    "sort_matrix", "unsort_matrix", "sort_diagonal", "sort_permutation", "pack_permutation",
    "launch_1d", "launch_smem", "plan_apply_matrix", "plan_apply_diagonal", "plan_apply_permutation",
    "plan_pauli_apply", "plan_pauli_rotation", "plan_pauli_expval", "plan_matrix_element",
    "plan_reduced_outer", "plan_search", "real_name", "rotation_cos_sin",
    "finish_expval", "finish_matel", "finish_outer",
]
