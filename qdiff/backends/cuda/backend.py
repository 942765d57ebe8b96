"""GPU backend: the :class:`~qdiff.backends.numpy_backend.NumpyBackend` primitives as CUDA kernels via CuPy.

Same signatures and semantics as NumpyBackend: a state is a C-contiguous CuPy array ``(B, 2**n)``
(complex64 or complex128), wire 0 the most significant bit, gate primitives work in place and return
the state. Gate data (matrices, diagonals, angles) may be numpy or CuPy arrays.

The kernels live in ``kernels.cu`` (compiled once per process by NVRTC through ``cupy.RawModule``);
``index_model`` plans each launch (bit masks, launch geometry, gate data reordered to ascending
target wires), so the planning is tested on machines without a GPU; the fused passes of the
``cupy-blocked`` executor (:mod:`qdiff.engine.gpu`) are planned by ``passes`` and run through
:meth:`CupyBackend.launch`. Small unbatched gate data travels as kernel arguments (no host-to-device
copy per gate); batched or larger data as device arrays.

Nothing runs silently on the CPU. The host only does bookkeeping on gate-sized data (masks, reordering a
2^k x 2^k matrix, cos/sin of an angle). Where no kernel covers a case, the fallback is CuPy array code on
the GPU, mirroring NumpyBackend: k-qubit matrices and permutations with k > 10 (``_apply_matrix_xp``,
``_apply_permutation_xp``), matrix elements with k > 3 and reduced outer products with k > 2
(``_reduced_outer_xp``). The one numpy step is at the end of :meth:`sample_indices`, which returns host
indices because ``measure.py`` post-processes samples with numpy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ... import memory
from ...errors import BackendError, MemoryLimitError
from ..numpy_backend import NumpyBackend, num_qubits, pauli_groups_apply, pauli_groups_expval, product_halves
from . import index_model as gim

try:  # CuPy is optional: importing this module without it raises a clear BackendError on use
    import cupy
except Exception:  # pragma: no cover - exercised only where CuPy is missing or broken
    cupy = None

KERNEL_SOURCE = Path(__file__).with_name("kernels.cu")
"""CUDA source of every kernel of this backend."""

_TEMPLATED = (
    "qd_apply_1q", "qd_apply_2q", "qd_apply_diag", "qd_swap", "qd_pauli_apply", "qd_pauli_rot",
    "qd_apply_kq", "qd_perm", "qd_pauli_expval", "qd_matel", "qd_fused_pass", "qd_fused_adjoint",
)
NAME_EXPRESSIONS = tuple(
    [f"{k}<{r}>" for k in _TEMPLATED for r in ("float", "double")]
    + [f"qd_outer<{r}, {d}>" for r in ("float", "double") for d in (2, 4)]
)
"""Every kernel instantiation CuPy asks NVRTC for (qd_search_cdf is extern "C")."""

_MODULES: dict[int, Any] = {}
"""The compiled kernel module per CUDA device (a module's functions belong to the device it was loaded on)."""
_KERNELS: dict[tuple[int, str], Any] = {}


def _require_cupy() -> Any:
    if cupy is None:
        from .. import cupy_status

        raise BackendError(f"backend 'cupy' is not available: {cupy_status()[1]}")
    return cupy


def kernel(name: str) -> Any:
    """The compiled kernel ``name`` (a name expression such as ``qd_apply_1q<double>``)."""
    cp = _require_cupy()
    device = int(cp.cuda.runtime.getDevice())
    k = _KERNELS.get((device, name))
    if k is None:
        module = _MODULES.get(device)
        if module is None:
            module = _MODULES[device] = cp.RawModule(code=KERNEL_SOURCE.read_text(), options=("-std=c++17",),
                                                     name_expressions=NAME_EXPRESSIONS)
        k = _KERNELS[(device, name)] = module.get_function(name)
    return k


def _reduction_kernels() -> dict[str, Any]:
    """CuPy reduction/elementwise kernels (built once): inner product and |psi|^2 marginals."""
    cp = _require_cupy()
    return {
        "inner": cp.ReductionKernel(
            "T a, T b", "T y", "conj(a) * b", "a + b", "y = a", "0", "qd_inner"),
        "abs2_sum": cp.ReductionKernel(
            "T z", "F p", "z.real() * z.real() + z.imag() * z.imag()", "a + b", "p = a", "0", "qd_abs2_sum"),
        "abs2": cp.ElementwiseKernel(
            "T z", "F p", "p = z.real() * z.real() + z.imag() * z.imag()", "qd_abs2"),
    }


class CupyBackend:
    """Statevector primitives on an NVIDIA GPU with CuPy and the CUDA kernels of ``kernels.cu``."""

    name = "cupy"

    def __init__(self) -> None:
        cp = _require_cupy()
        from .. import cupy_status

        ok, why = cupy_status()
        if not ok:
            raise BackendError(f"backend 'cupy' is not available: {why}")
        self.xp = cp
        self._dummies: dict[tuple[str, str], Any] = {}
        self._red: dict[str, Any] | None = None

    @property
    def device_id(self) -> int:
        """The current CUDA device (where new states are allocated): part of every cache key of device arrays."""
        return int(cupy.cuda.runtime.getDevice())

    # -- memory and conversion --------------------------------------------------------------------
    def available_memory(self) -> tuple[int, str]:
        """``(bytes free for new states, source)``: free device memory plus CuPy's unused pool, QDIFF_MAX_MEMORY."""
        free, _total = cupy.cuda.runtime.memGetInfo()
        room = int(free) + int(cupy.get_default_memory_pool().free_bytes())
        return memory.capped([(room, "free GPU memory")])

    # the same check and message as on the CPU, with this backend's free memory and name
    check_memory = NumpyBackend.check_memory

    def _require_bytes(self, need: int, what: str) -> None:
        """Raise :class:`MemoryLimitError` before allocating ``need`` bytes of device memory for ``what``."""
        free = self.available_memory()[0]
        if need > free:
            raise MemoryLimitError(f"{what} needs {need:,} bytes ({need / 2**30:.2f} GiB) but only {free:,} bytes "
                                   f"({free / 2**30:.2f} GiB) are available on the {self.name} backend (GPU memory)")

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """Convert to a CuPy array (copies host data to the device)."""
        return cupy.asarray(x, dtype=dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        """Convert a CuPy array to numpy (device-to-host copy); numpy input passes through."""
        if isinstance(x, cupy.ndarray):
            return cupy.asnumpy(x)
        return np.asarray(x)

    def zero_state(self, num_wires: int, batch: int = 1, dtype: Any = np.complex128) -> Any:
        """``|0...0>`` for each of ``batch`` entries, shape ``(batch, 2**n)``, on the GPU."""
        gim.real_name(dtype)  # complex64 / complex128 only
        self.check_memory(num_wires, batch, dtype)
        state = cupy.zeros((batch, 2**num_wires), dtype=dtype)
        state[:, 0] = 1.0
        return state

    def product_state(self, columns: np.ndarray, dtype: Any) -> Any:
        """The product state of per-wire columns ``(B, n, 2)`` on the GPU, a new state ``(B, 2**n)`` of
        ``dtype``: the outer product of its two halves (``product_halves`` of the numpy backend)."""
        gim.real_name(dtype)
        batch, n = columns.shape[0], columns.shape[1]
        self.check_memory(n, batch, dtype)
        out = cupy.empty((batch, 2**n), dtype=dtype)
        hi, lo = product_halves(cupy, cupy.asarray(columns, dtype=dtype))
        cupy.multiply(hi[:, :, None], lo[:, None, :], out=out.reshape(batch, hi.shape[1], lo.shape[1]))
        return out

    # -- launching --------------------------------------------------------------------------------
    def _check_state(self, state: Any, what: str = "state") -> tuple[int, int]:
        """(n, B) of a state this backend can run kernels on; BackendError otherwise (no CPU fallback)."""
        if not isinstance(state, cupy.ndarray):
            raise BackendError(
                f"the cupy backend needs CuPy arrays; got {type(state).__name__} for the {what} "
                "(create states with backend.zero_state or backend.asarray)"
            )
        if state.ndim != 2 or state.shape[-1] & (state.shape[-1] - 1) or state.shape[-1] == 0:
            raise BackendError(f"a {what} must have shape (B, 2**n), got {state.shape}")
        gim.real_name(state.dtype)
        if not state.flags.c_contiguous:
            raise BackendError(f"the cupy backend needs C-contiguous states; the {what} is a strided view")
        return num_qubits(state), int(state.shape[0])

    def _dummy(self, name: str, dtype: Any) -> Any:
        key = (self.device_id, name, np.dtype(dtype).str)
        arr = self._dummies.get(key)
        if arr is None:
            dt = {"dummy": dtype, "dummy_real": np.dtype(dtype).type(0).real.dtype, "dummy_int": np.int32}[name]
            arr = self._dummies[key] = cupy.zeros(1, dtype=dt)
        return arr

    def _launch(self, call: gim.KernelCall, dtype: Any, **bound: Any) -> dict[str, Any]:
        """Run ``call`` with placeholders bound to ``bound``; returns ``bound`` with allocated outputs."""
        for name, (shape, dt) in call.outputs.items():
            bound.setdefault(name, cupy.empty(shape, dtype=dt))
        args = []
        for a in call.args:
            if isinstance(a, gim.Buf):
                args.append(bound[a.name] if a.name in bound else self._dummy(a.name, dtype))
            elif isinstance(a, np.ndarray):
                args.append(cupy.asarray(np.ascontiguousarray(a)))
            elif isinstance(a, cupy.ndarray):
                args.append(cupy.ascontiguousarray(a))
            else:
                args.append(a)
        kernel(call.name_expression)(call.grid, (call.block,), tuple(args), shared_mem=call.shared_mem)
        return bound

    def launch(self, call: gim.KernelCall, dtype: Any, **bound: Any) -> dict[str, Any]:
        """Run a planned kernel call (e.g. a fused pass of :mod:`qdiff.backends.cuda.passes`) with its
        placeholder arguments bound to the device arrays ``bound``; returns ``bound`` with allocated outputs."""
        return self._launch(call, dtype, **bound)

    @staticmethod
    def _gate_array(x: Any, dtype: Any) -> Any:
        """Gate data as an array of the state's dtype, left where it is (host or device)."""
        if cupy is not None and isinstance(x, cupy.ndarray):
            return x.astype(dtype, copy=False)
        return np.asarray(x, dtype=dtype)

    # -- views for the CuPy fallbacks: the same index views as the numpy backend --------------------
    _sub = staticmethod(NumpyBackend._sub)
    _target_rows = classmethod(NumpyBackend._target_rows.__func__)

    # -- gate primitives (in place) ---------------------------------------------------------------
    def apply_matrix(self, state: Any, matrix: Any, targets: tuple, controls: tuple = (), cvals: tuple = ()) -> Any:
        """Apply a ``2^k x 2^k`` matrix (or a batch ``(B, d, d)``) to ``targets``, with controls."""
        n, batch = self._check_state(state)
        m = self._gate_array(matrix, state.dtype)
        k = len(targets)
        if k == 0:  # a scalar on the controlled subspace
            return self.apply_diagonal(state, m.reshape(m.shape[:-2] + (1,)), targets, controls, cvals)
        call = gim.plan_apply_matrix(n, batch, state.dtype, m, tuple(targets), tuple(controls), tuple(cvals))
        if call is None:
            return self._apply_matrix_xp(state, m, targets, controls, cvals)
        self._launch(call, state.dtype, state=state)
        return state

    def _apply_matrix_xp(self, state: Any, m: Any, targets: tuple, controls: tuple, cvals: tuple) -> Any:
        """CuPy fallback for k > KQ_MAX targets: NumpyBackend's moveaxis + matmul, on the GPU."""
        self.check_memory(num_qubits(state), state.shape[0], state.dtype, copies=2)
        moved, flat = self._target_rows(state, targets, controls, cvals, xp=cupy)
        md = cupy.asarray(m)
        out = cupy.matmul(flat, cupy.swapaxes(md, -1, -2)) if md.ndim == 3 else flat @ md.T
        moved[...] = out.reshape(moved.shape)
        return state

    def apply_subspace(self, state: Any, matrix: Any, subspace: tuple[int, int], targets: tuple,
                       controls: tuple = (), cvals: tuple = ()) -> Any:
        """A two-level-subspace gate: the dense product on the GPU (the matrix is exact)."""
        return self.apply_matrix(state, matrix, targets, controls, cvals)

    def apply_diagonal(self, state: Any, diag: Any, targets: tuple, controls: tuple = (), cvals: tuple = ()) -> Any:
        """Multiply by a diagonal ``(2^k,)`` (or ``(B, 2^k)``) on ``targets``, with controls."""
        n, batch = self._check_state(state)
        d = self._gate_array(diag, state.dtype)
        call = gim.plan_apply_diagonal(n, batch, state.dtype, d, tuple(targets), tuple(controls), tuple(cvals))
        self._launch(call, state.dtype, state=state)
        return state

    def apply_permutation(self, state: Any, perm: tuple, targets: tuple, controls: tuple = (), cvals: tuple = ()
                          ) -> Any:
        """Permute the basis states of ``targets``: new[i] = old[perm[i]] (no multiplications)."""
        n, batch = self._check_state(state)
        perm = tuple(int(p) for p in perm)
        if perm == tuple(range(len(perm))):
            return state
        call = gim.plan_apply_permutation(n, batch, state.dtype, perm, tuple(targets), tuple(controls),
                                          tuple(cvals))
        if call is None:
            return self._apply_permutation_xp(state, perm, targets, controls, cvals)
        self._launch(call, state.dtype, state=state)
        return state

    def _apply_permutation_xp(self, state: Any, perm: tuple, targets: tuple, controls: tuple, cvals: tuple) -> Any:
        """CuPy fallback for k > KQ_MAX targets (a gather on the GPU)."""
        self.check_memory(num_qubits(state), state.shape[0], state.dtype, copies=2)
        moved, flat = self._target_rows(state, targets, controls, cvals, xp=cupy)
        moved[...] = flat[..., cupy.asarray(perm)].reshape(moved.shape)
        return state

    def apply_pauli(self, state: Any, word: dict[int, str], out: Any | None = None) -> Any:
        """Return ``P|state>`` for a Pauli word ``{wire: 'X'|'Y'|'Z'}`` (one kernel, no matrix)."""
        n, batch = self._check_state(state)
        if out is None:
            self.check_memory(n, batch, state.dtype)
            out = cupy.empty_like(state)
        else:
            self._check_state(out, "output")
        call = gim.plan_pauli_apply(n, batch, state.dtype, dict(word))
        self._launch(call, state.dtype, **{"in": state, "out": out})
        return out

    def apply_pauli_rotation(self, state: Any, theta: Any, word: dict[int, str], controls: tuple = (),
                             cvals: tuple = ()) -> Any:
        """Apply ``exp(-i theta/2 P)`` = ``cos(theta/2) - i sin(theta/2) P`` in place (theta scalar or (B,))."""
        n, batch = self._check_state(state)
        call = gim.plan_pauli_rotation(n, batch, state.dtype, theta, dict(word), tuple(controls), tuple(cvals))
        self._launch(call, state.dtype, state=state)
        return state

    @staticmethod
    def control_mask(state: Any, controls: tuple, cvals: tuple) -> Any:
        """Boolean mask (on the GPU) over basis states where every control wire has its control value."""
        n = num_qubits(state)
        idx = cupy.arange(state.shape[-1])
        mask = cupy.ones(state.shape[-1], dtype=bool)
        for c, v in zip(controls, cvals, strict=True):
            mask &= ((idx >> (n - 1 - c)) & 1) == v
        return mask

    # -- reductions -------------------------------------------------------------------------------
    def _kernels(self) -> dict[str, Any]:
        if self._red is None:
            self._red = _reduction_kernels()
        return self._red

    def _pair(self, bra: Any, ket: Any) -> tuple[Any, Any]:
        """Checked (bra, ket) of one dtype: a mixed pair is promoted, as numpy would (one kernel per dtype)."""
        self._check_state(bra, "bra")
        self._check_state(ket, "ket")
        if bra.shape != ket.shape:
            raise BackendError(f"bra {bra.shape} and ket {ket.shape} differ in shape")
        if bra.dtype != ket.dtype:
            dt = np.result_type(bra.dtype, ket.dtype)
            bra, ket = bra.astype(dt, copy=False), ket.astype(dt, copy=False)
        return bra, ket

    def inner(self, bra: Any, ket: Any) -> Any:
        """``<bra|ket>`` for each batch entry, shape ``(B,)`` (a CuPy reduction)."""
        bra, ket = self._pair(bra, ket)
        return self._kernels()["inner"](bra, ket, axis=1)

    def expval_diagonal(self, state: Any, diag: Any) -> Any:
        """``sum_i diag[i] |state[b, i]|^2`` per batch entry for a real diagonal observable, shape ``(B,)``."""
        return (state.real**2 + state.imag**2) @ diag

    def apply_pauli_groups(self, state: Any, groups: Any, diag: Any = None) -> Any:
        """``(D + sum_t c_t P_t)|state>`` for a grouped Pauli sum, on the GPU (one gather per flip mask)."""
        return pauli_groups_apply(cupy, state, groups, None if diag is None else cupy.asarray(diag))

    def expval_pauli_groups(self, state: Any, groups: Any, diag: Any = None) -> Any:
        """``<state|D + sum_t c_t P_t|state>`` per batch entry (real), on the GPU."""
        return pauli_groups_expval(cupy, state, groups, None if diag is None else cupy.asarray(diag))

    def expval_pauli(self, state: Any, word: dict[int, str]) -> Any:
        """``<state|P|state>`` for a Pauli word, shape ``(B,)`` real (state's real dtype), without a matrix."""
        n, batch = self._check_state(state)
        call = gim.plan_pauli_expval(n, batch, state.dtype, dict(word))
        partial = self._launch(call, state.dtype, state=state)["partial"]
        return gim.finish_expval(partial, state.real.dtype)

    def matrix_element(self, bra: Any, ket: Any, matrix: Any, targets: tuple, controls: tuple = (),
                       cvals: tuple = ()) -> Any:
        """``<bra| (P_controls x M) |ket>`` per batch entry: M on ``targets``, restricted to the controls."""
        bra, ket = self._pair(bra, ket)
        n, batch = self._check_state(ket, "ket")
        m = self._gate_array(matrix, ket.dtype)
        call = gim.plan_matrix_element(n, batch, ket.dtype, m, tuple(targets), tuple(controls), tuple(cvals))
        if call is None:  # k > MATEL_KMAX: contract M with the reduced outer product (CuPy einsum)
            r = self._reduced_outer_xp(bra, ket, targets, controls, cvals)
            md = cupy.asarray(m)
            return cupy.einsum("ij,bij->b", md, r) if md.ndim == 2 else cupy.einsum("bij,bij->b", md, r)
        partial = self._launch(call, ket.dtype, bra=bra, ket=ket)["partial"]
        return gim.finish_matel(partial, ket.dtype)

    def reduced_outer(self, bra: Any, ket: Any, targets: tuple, controls: tuple = (), cvals: tuple = (),
                      entries: Any = None) -> Any:
        """``R[b, i, j] = sum_rest conj(bra[i, rest]) ket[j, rest]`` over the targets, in the controlled subspace.

        ``entries`` (the entries needed) is accepted for the common interface; the whole R is computed."""
        bra, ket = self._pair(bra, ket)
        n, batch = self._check_state(ket, "ket")
        targets, controls, cvals = tuple(targets), tuple(controls), tuple(cvals)
        if not targets:  # the controlled-subspace overlap: a 1x1 matrix element
            return self.matrix_element(bra, ket, np.ones((1, 1)), (), controls, cvals).reshape(batch, 1, 1)
        call = gim.plan_reduced_outer(n, batch, ket.dtype, targets, controls, cvals)
        if call is None:  # k > 2: CuPy gather + matmul on the GPU
            return self._reduced_outer_xp(bra, ket, targets, controls, cvals)
        partial = self._launch(call, ket.dtype, bra=bra, ket=ket)["partial"]
        return cupy.ascontiguousarray(gim.finish_outer(partial, targets, ket.dtype))

    def _reduced_outer_xp(self, bra: Any, ket: Any, targets: tuple, controls: tuple, cvals: tuple) -> Any:
        """CuPy fallback (large k): gather the target axes last, then one batched matrix product."""
        self.check_memory(num_qubits(ket), ket.shape[0], ket.dtype, copies=2)
        bpsi, axes = self._sub(bra, targets, controls, cvals)
        kpsi, _ = self._sub(ket, targets, controls, cvals)
        k = len(targets)
        bflat = cupy.moveaxis(bpsi, axes, list(range(bpsi.ndim - k, bpsi.ndim))).reshape(bra.shape[0], -1, 2**k)
        kflat = cupy.moveaxis(kpsi, axes, list(range(kpsi.ndim - k, kpsi.ndim))).reshape(ket.shape[0], -1, 2**k)
        return cupy.matmul(cupy.swapaxes(cupy.conj(bflat), 1, 2), kflat)

    def probs(self, state: Any, wires: tuple | None = None) -> Any:
        """Marginal probabilities ``(B, 2**len(wires))`` on ``wires`` (in the order given), on the GPU."""
        n, batch = self._check_state(state)
        real = state.real.dtype
        if wires is None or tuple(wires) == tuple(range(n)):
            self.check_memory(n, batch, real)
            return self._kernels()["abs2"](state, cupy.empty(state.shape, dtype=real))
        wires = tuple(int(w) for w in wires)
        kept = sorted(wires)
        # merge runs of summed wires into single axes: (B, A0, 2, A1, 2, ..., Ak) with ndim <= 2k + 2
        shape, summed, run = [batch], [], 0
        for w in range(n):
            if w in kept:
                if run:
                    summed.append(len(shape))
                    shape.append(2**run)
                    run = 0
                shape.append(2)
            else:
                run += 1
        if run:
            summed.append(len(shape))
            shape.append(2**run)
        out = cupy.empty((batch,) + (2,) * len(kept), dtype=real)
        if summed:
            self._kernels()["abs2_sum"](state.reshape(shape), out, axis=tuple(summed))
        else:
            self._kernels()["abs2"](state.reshape(out.shape), out)
        order = [1 + kept.index(w) for w in wires]
        return cupy.ascontiguousarray(cupy.transpose(out, [0] + order)).reshape(batch, -1)

    # the same on both backends: built from zero_state, asarray, probs and sample_indices
    basis_state = NumpyBackend.basis_state
    state_from_array = NumpyBackend.state_from_array
    sample_basis = NumpyBackend.sample_basis

    def sample_indices(self, probs: Any, shots: int, rng: np.random.Generator) -> np.ndarray:
        """``shots`` basis-state indices from each row of ``probs`` (B, K): shape ``(B, shots)``, numpy.

        CDF (cumsum) and search run on the GPU with uniforms from a CuPy generator seeded from ``rng``
        (so a seeded run repeats exactly); only the indices come back to the host, as measure.py needs.
        """
        shape = np.shape(probs)
        batch, K = (1, shape[0]) if len(shape) == 1 else shape
        self._require_bytes(8 * batch * (3 * K + 2 * shots), f"sampling {shots} shots from {batch} x {K} probabilities")
        p = cupy.asarray(probs, dtype=cupy.float64).reshape(batch, K)
        cdf = cupy.cumsum(p, axis=1)
        cdf /= cdf[:, -1:]
        seed = int(rng.integers(0, 2**63 - 1))
        u = cupy.random.RandomState(seed).random_sample((batch, shots), dtype=cupy.float64)
        call = gim.plan_search(batch, K, shots)
        out = self._launch(call, np.complex128, cdf=cupy.ascontiguousarray(cdf), u=u)["out"]
        return cupy.asnumpy(out)


__all__ = ["CupyBackend", "KERNEL_SOURCE", "NAME_EXPRESSIONS", "kernel"]
