"""CPU backend: the statevector primitives on numpy arrays.

A state is an array of shape ``(B, 2**n)`` (B = batch of parameter sets, 1 when not batched), wire 0
the most significant bit. Every primitive views it as a tensor ``(B, 2, ..., 2)``; controls select a
sub-tensor (a view), so controlled gates touch only the controlled subspace.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .. import buffers, memory

_PAULI_FLIP = {"X": True, "Y": True, "Z": False, "I": False}


_KERNELS: Any = None

def cpu_kernels() -> Any:
    """The numba kernel module (qdiff.backends.numba.kernels), or None when QDIFF_KERNELS=numpy or numba is unusable.

    Each primitive below first offers its arguments to the kernel of the same name, which returns None
    for anything it does not handle (other array types, dtypes, layouts, sizes); the numpy code that
    follows is the reference path.
    """
    global _KERNELS
    if os.environ.get("QDIFF_KERNELS", "").strip().lower() == "numpy":
        return None
    if _KERNELS is None:
        try:
            from .numba import kernels as cpu_kernels
        except ImportError:  # numba missing or broken: numpy only
            cpu_kernels = False  # type: ignore[assignment]
        _KERNELS = cpu_kernels
    return _KERNELS or None


def num_qubits(state: Any) -> int:
    """Number of qubits of a ``(B, 2**n)`` state."""
    return int(state.shape[-1]).bit_length() - 1


def _parity_xp(xp: Any, v: Any) -> Any:
    """Parity of the set bits of non-negative int64 values (elementwise)."""
    for shift in (32, 16, 8, 4, 2, 1):
        v = v ^ (v >> shift)
    return v & 1


def pauli_groups_apply(xp: Any, state: Any, groups: Any, diag: Any = None) -> Any:
    """Reference ``(D + sum_t c_t P_t)|state>`` for :class:`~qdiff.observables.PauliGroups` (numpy or CuPy).

    One gather per flip mask: ``out[:, i] += state[:, i ^ x] * f(i ^ x)`` with ``f`` the group's signed
    coefficients, built elementwise; the compiled kernel does the same in one pass.
    """
    n_amp = state.shape[-1]
    idx = xp.arange(n_amp, dtype=xp.int64)
    out = diag * state if diag is not None else xp.zeros_like(state)
    for g in range(len(groups.xmasks)):
        j = idx ^ int(groups.xmasks[g])
        f = xp.zeros(n_amp, dtype=xp.complex128)
        for t in range(int(groups.starts[g]), int(groups.starts[g + 1])):
            f += complex(groups.coeffs[t]) * (1 - 2 * _parity_xp(xp, j & int(groups.zmasks[t])))
        out += (state[:, j] * f).astype(state.dtype, copy=False)
    return out


def product_halves(xp: Any, columns: Any) -> tuple[Any, Any]:
    """The product state of per-wire columns ``(B, n, 2)`` as two factors: ``hi (B, 2**a)``, the Kronecker
    product of wires ``0..a-1`` (the most significant bits), and ``lo (B, 2**(n-a))`` of the rest,
    ``a = n - n // 2``; the state is their outer product, row by row."""
    batch, n = columns.shape[0], columns.shape[1]

    def kron(cols: Any) -> Any:
        v = xp.ones((batch, 1), dtype=columns.dtype)
        for w in range(cols.shape[1]):
            v = (v[:, :, None] * cols[:, w, None, :]).reshape(batch, -1)
        return v

    a = n - n // 2
    return kron(columns[:, :a]), kron(columns[:, a:])


def pauli_groups_expval(xp: Any, state: Any, groups: Any, diag: Any = None) -> Any:
    """Reference ``<state|D + sum_t c_t P_t|state>`` per batch entry (real)."""
    h = pauli_groups_apply(xp, state, groups, diag)
    return xp.real(xp.sum(xp.conj(state) * h, axis=1))


class NumpyBackend:
    """Statevector primitives on the CPU with numpy."""

    name = "numpy"
    xp = np

    # -- memory and conversion --------------------------------------------------------------------
    def available_memory(self) -> tuple[int, str]:
        """``(bytes free for new states, where that limit comes from)``: host memory, cgroup, QDIFF_MAX_MEMORY."""
        return memory.available_memory()

    def check_memory(self, num_wires: int, batch: int, dtype: Any, copies: float = 1.0) -> None:
        """Raise :class:`MemoryLimitError` (before allocating) if ``copies * batch`` states would not fit."""
        if memory.negligible(num_wires, copies * batch, dtype):
            return
        fp = memory.Footprint(f"allocating {copies * batch:g} state(s) on the {self.name} backend", num_wires,
                              np.dtype(dtype), copies * batch, fixed=0)
        memory.require(fp, backend=self)

    def asarray(self, x: Any, dtype: Any = None) -> np.ndarray:
        """Convert to a backend array."""
        return np.asarray(x, dtype=dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        """Convert a backend array to numpy."""
        return np.asarray(x)

    def zero_state(self, num_wires: int, batch: int = 1, dtype: Any = np.complex128) -> np.ndarray:
        """``|0...0>`` for each of ``batch`` entries, shape ``(batch, 2**n)``."""
        self.check_memory(num_wires, batch, dtype)
        state = buffers.zeros((batch, 2**num_wires), dtype)
        state[:, 0] = 1.0
        return state

    # -- views ------------------------------------------------------------------------------------
    @staticmethod
    def _sub(state: np.ndarray, targets: tuple, controls: tuple, cvals: tuple) -> tuple[np.ndarray, list[int]]:
        """View of the controlled subspace as a tensor, and the axes of ``targets`` in that view."""
        n = num_qubits(state)
        psi = state.reshape((state.shape[0],) + (2,) * n)
        if controls:
            idx: list[Any] = [slice(None)] * (n + 1)
            for c, v in zip(controls, cvals, strict=True):
                idx[1 + c] = v
            psi = psi[tuple(idx)]
        ctrl = sorted(controls)
        axes = [1 + t - sum(1 for c in ctrl if c < t) for t in targets]
        return psi, axes

    @classmethod
    def _target_rows(cls, state: Any, targets: tuple, controls: tuple, cvals: tuple, xp: Any = np) -> tuple:
        """(view with the targets as last axes, its rows ``(B, rest, 2**k)``): the rows copy if not contiguous."""
        psi, axes = cls._sub(state, targets, controls, cvals)
        k = len(targets)
        moved = xp.moveaxis(psi, axes, list(range(psi.ndim - k, psi.ndim)))
        return moved, moved.reshape(moved.shape[0], -1, 2**k)

    # -- gate primitives (in place) ---------------------------------------------------------------
    def apply_matrix(
        self, state: np.ndarray, matrix: np.ndarray, targets: tuple, controls: tuple = (), cvals: tuple = ()
    ) -> np.ndarray:
        """Apply a ``2^k x 2^k`` matrix (or a batch ``(B, d, d)``) to ``targets``, with controls."""
        kern = cpu_kernels()
        if kern is not None and (res := kern.apply_matrix(state, matrix, targets, controls, cvals)) is not None:
            return res
        moved, flat = self._target_rows(state, targets, controls, cvals)
        m = np.asarray(matrix, dtype=state.dtype)
        if m.ndim == 3:
            out = np.matmul(flat, np.swapaxes(m, -1, -2))
        else:
            out = flat @ m.T
        moved[...] = out.reshape(moved.shape)
        return state

    def apply_subspace(
        self, state: np.ndarray, matrix: np.ndarray, subspace: tuple[int, int], targets: tuple,
        controls: tuple = (), cvals: tuple = ()
    ) -> np.ndarray:
        """A gate whose matrix only rotates the local states ``subspace`` (a common phase on the others), in
        place: a two-level rotation per block where compiled kernels run, else the dense product."""
        kern = cpu_kernels()
        if kern is not None and kern.apply_subspace(state, matrix, subspace, targets, controls, cvals) is not None:
            return state
        return self.apply_matrix(state, matrix, targets, controls, cvals)

    def apply_diagonal(
        self, state: np.ndarray, diag: np.ndarray, targets: tuple, controls: tuple = (), cvals: tuple = ()
    ) -> np.ndarray:
        """Multiply by a diagonal ``(2^k,)`` (or ``(B, 2^k)``) on ``targets``, with controls."""
        kern = cpu_kernels()
        if kern is not None and (res := kern.apply_diagonal(state, diag, targets, controls, cvals)) is not None:
            return res
        psi, axes = self._sub(state, targets, controls, cvals)
        k = len(targets)
        moved = np.moveaxis(psi, axes, list(range(psi.ndim - k, psi.ndim)))
        d = np.asarray(diag, dtype=state.dtype)
        if d.ndim == 2:
            d = d.reshape((d.shape[0],) + (1,) * (moved.ndim - 1 - k) + (2,) * k)
        else:
            d = d.reshape((2,) * k)
        moved *= d
        return state

    def apply_permutation(
        self, state: np.ndarray, perm: tuple, targets: tuple, controls: tuple = (), cvals: tuple = ()
    ) -> np.ndarray:
        """Permute the basis states of ``targets``: new[i] = old[perm[i]] (no multiplications)."""
        kern = cpu_kernels()
        if kern is not None and (res := kern.apply_permutation(state, perm, targets, controls, cvals)) is not None:
            return res
        psi, axes = self._sub(state, targets, controls, cvals)
        if len(targets) == 1 and tuple(perm) == (1, 0):
            moved = np.moveaxis(psi, axes[0], -1)
            moved[...] = moved[..., ::-1].copy()
            return state
        moved, flat = self._target_rows(state, targets, controls, cvals)
        moved[...] = flat[..., list(perm)].reshape(moved.shape)
        return state

    def apply_pauli(self, state: np.ndarray, word: dict[int, str], out: np.ndarray | None = None) -> np.ndarray:
        """Return ``P|state>`` for a Pauli word ``{wire: 'X'|'Y'|'Z'}`` without building a matrix."""
        kern = cpu_kernels()
        if kern is not None and (res := kern.apply_pauli(state, word, out)) is not None:
            return res
        n = num_qubits(state)
        psi = state.reshape((state.shape[0],) + (2,) * n)
        flips = [1 + w for w, p in word.items() if _PAULI_FLIP[p]]
        res = np.flip(psi, axis=flips) if flips else psi
        res = res * self._pauli_phase(word, n, state.dtype) if any(p in "YZ" for p in word.values()) else res.copy()
        res = res.reshape(state.shape)
        if out is not None:
            out[...] = res
            return out
        return res

    @staticmethod
    def _pauli_phase(word: dict[int, str], n: int, dtype: Any) -> np.ndarray:
        """Broadcastable phase tensor of a Pauli word applied after the bit flips."""
        phase = np.ones((1,) * (n + 1), dtype=dtype)
        for w, p in word.items():
            shape = [1] * (n + 1)
            shape[1 + w] = 2
            if p == "Z":
                phase = phase * np.array([1, -1], dtype=dtype).reshape(shape)
            elif p == "Y":
                # Y|0> = i|1>, Y|1> = -i|0>: after the flip, index b holds old (1-b): phase i for b=1
                phase = phase * np.array([-1j, 1j], dtype=dtype).reshape(shape)
        return phase

    def apply_pauli_rotation(self, state: np.ndarray, theta: np.ndarray, word: dict[int, str],
                             controls: tuple = (), cvals: tuple = ()) -> np.ndarray:
        """Apply ``exp(-i theta/2 P)`` = ``cos(theta/2) - i sin(theta/2) P`` in place."""
        kern = cpu_kernels()
        if kern is not None and (res := kern.apply_pauli_rotation(state, theta, word, controls, cvals)) is not None:
            return res
        t = np.asarray(theta, dtype=float)
        c = np.cos(t / 2).reshape(-1, 1) if t.ndim else np.cos(t / 2)
        s = np.sin(t / 2).reshape(-1, 1) if t.ndim else np.sin(t / 2)
        if controls:
            mask = self.control_mask(state, controls, cvals)
            p_state = self.apply_pauli(state, word)
            new = c * state - 1j * s * p_state
            state[:, mask] = new[:, mask]
            return state
        p_state = self.apply_pauli(state, word)
        state *= c
        state -= 1j * s * p_state
        return state

    @staticmethod
    def control_mask(state: np.ndarray, controls: tuple, cvals: tuple) -> np.ndarray:
        """Boolean mask over basis states where every control wire has its control value."""
        n = num_qubits(state)
        idx = np.arange(state.shape[-1])
        mask = np.ones(state.shape[-1], dtype=bool)
        for c, v in zip(controls, cvals, strict=True):
            mask &= ((idx >> (n - 1 - c)) & 1) == v
        return mask

    # -- reductions -------------------------------------------------------------------------------
    def inner(self, bra: np.ndarray, ket: np.ndarray) -> np.ndarray:
        """``<bra|ket>`` for each batch entry, shape ``(B,)``."""
        kern = cpu_kernels()
        if kern is not None and (res := kern.inner(bra, ket)) is not None:
            return res
        return np.einsum("bi,bi->b", np.conj(bra), ket)

    def expval_diagonal(self, state: np.ndarray, diag: np.ndarray) -> np.ndarray:
        """``sum_i diag[i] |state[b, i]|^2`` per batch entry for a real diagonal observable, shape ``(B,)``."""
        kern = cpu_kernels()
        if kern is not None and (res := kern.expval_diagonal(state, diag)) is not None:
            return res
        return (state.real**2 + state.imag**2) @ diag

    def apply_pauli_groups(self, state: np.ndarray, groups: Any, diag: np.ndarray | None = None) -> np.ndarray:
        """``(D + sum_t c_t P_t)|state>``: a Pauli sum grouped by flip mask (plus a real diagonal), new array."""
        kern = cpu_kernels()
        if kern is not None and (res := kern.apply_pauli_groups(state, groups, diag)) is not None:
            return res
        return pauli_groups_apply(np, state, groups, diag)

    def expval_pauli_groups(self, state: np.ndarray, groups: Any, diag: np.ndarray | None = None) -> np.ndarray:
        """``<state|D + sum_t c_t P_t|state>`` per batch entry, shape ``(B,)`` real, without a new state."""
        kern = cpu_kernels()
        if kern is not None and (res := kern.expval_pauli_groups(state, groups, diag)) is not None:
            return res
        return pauli_groups_expval(np, state, groups, diag)

    def expval_pauli(self, state: np.ndarray, word: dict[int, str]) -> np.ndarray:
        """``<state|P|state>`` for a Pauli word, shape ``(B,)`` real, without a matrix."""
        kern = cpu_kernels()
        if kern is not None and (res := kern.expval_pauli(state, word)) is not None:
            return res
        if all(p == "Z" for p in word.values()):
            n = num_qubits(state)
            probs = (state.real**2 + state.imag**2).reshape((state.shape[0],) + (2,) * n)
            others = tuple(1 + w for w in range(n) if w not in word)
            marg = probs.sum(axis=others) if others else probs
            sign = np.ones((1,) * marg.ndim)
            for ax in range(1, marg.ndim):
                shape = [1] * marg.ndim
                shape[ax] = 2
                sign = sign * np.array([1.0, -1.0]).reshape(shape)
            return (marg * sign).reshape(state.shape[0], -1).sum(axis=1)
        return self.inner(state, self.apply_pauli(state, word)).real

    def matrix_element(
        self, bra: np.ndarray, ket: np.ndarray, matrix: np.ndarray, targets: tuple,
        controls: tuple = (), cvals: tuple = ()
    ) -> np.ndarray:
        """``<bra| (P_controls x M) |ket>`` per batch entry: M on ``targets``, restricted to the controls."""
        kern = cpu_kernels()
        if kern is not None and (res := kern.matrix_element(bra, ket, matrix, targets, controls, cvals)) is not None:
            return res
        m = np.asarray(matrix, dtype=ket.dtype)
        # <b|M|k> = sum_{m,i,j} conj(b[m,i]) M[i,j] k[m,j] = sum_{ij} M[i,j] R[i,j], R = B^H K
        r = self._reduced_rows(bra, ket, targets, controls, cvals)
        return np.einsum("ij,bij->b", m, r) if m.ndim == 2 else np.einsum("bij,bij->b", m, r)

    def adjoint_step(
        self, bra: np.ndarray, ket: np.ndarray, u_dagger: np.ndarray, target: int, controls: tuple = (),
        cvals: tuple = (),
    ) -> np.ndarray | None:
        """Fused ``ket <- U^dag ket; R = reduced_outer(bra, ket); bra <- U^dag bra`` for one target (numba).

        None when compiled kernels are off or the case is not covered: the caller then runs the three steps.
        """
        if cpu_kernels() is None:
            return None
        from .numba.fused import adjoint_step

        return adjoint_step(bra, ket, u_dagger, target, controls, cvals)

    def reduced_outer(
        self, bra: np.ndarray, ket: np.ndarray, targets: tuple, controls: tuple = (), cvals: tuple = (),
        entries: np.ndarray | None = None,
    ) -> np.ndarray:
        """``R[b, i, j] = sum_rest conj(bra[i, rest]) ket[j, rest]`` over the targets, in the controlled subspace.

        ``entries`` (``(E, 2)`` index pairs) says which entries are needed; others may come back as zero.
        """
        kern = cpu_kernels()
        if kern is not None and (res := kern.reduced_outer(bra, ket, targets, controls, cvals, entries)) is not None:
            return res
        return self._reduced_rows(bra, ket, targets, controls, cvals)

    def _reduced_rows(self, bra: np.ndarray, ket: np.ndarray, targets: tuple, controls: tuple,
                      cvals: tuple) -> np.ndarray:
        """Reference ``R = B^H K`` over the rows of bra and ket (the numpy path of reduced_outer)."""
        _, bflat = self._target_rows(bra, targets, controls, cvals)
        _, kflat = self._target_rows(ket, targets, controls, cvals)
        return np.einsum("bmi,bmj->bij", np.conj(bflat), kflat)

    def probs(self, state: np.ndarray, wires: tuple | None = None) -> np.ndarray:
        """Marginal probabilities ``(B, 2**len(wires))`` on ``wires`` (in the order given)."""
        kern = cpu_kernels()
        if kern is not None and (res := kern.probs(state, wires)) is not None:
            return res
        n = num_qubits(state)
        p = (state.real**2 + state.imag**2)
        if wires is None or tuple(wires) == tuple(range(n)):
            return p
        pt = p.reshape((state.shape[0],) + (2,) * n)
        others = tuple(1 + w for w in range(n) if w not in wires)
        marg = pt.sum(axis=others) if others else pt
        kept = sorted(wires)
        order = [1 + kept.index(w) for w in wires]
        marg = np.transpose(marg, [0] + order)
        return marg.reshape(state.shape[0], -1)

    def basis_state(self, num_wires: int, batch: int, dtype: Any, index: int) -> Any:
        """``|index>`` for each of ``batch`` entries, shape ``(batch, 2**n)``."""
        state = self.zero_state(num_wires, batch, dtype)
        state[:, 0] = 0
        state[:, index] = 1
        return state

    def product_state(self, columns: np.ndarray, dtype: Any) -> np.ndarray:
        """The product state ``kron_w columns[:, w]`` of per-wire columns ``(B, n, 2)``, a new state
        ``(B, 2**n)`` of ``dtype``: one write of the state."""
        batch, n = columns.shape[0], columns.shape[1]
        self.check_memory(n, batch, dtype)
        out = buffers.empty((batch, 2**n), dtype)
        hi, lo = product_halves(np, np.asarray(columns, dtype=dtype))
        kern = cpu_kernels()
        if kern is not None and kern.outer_rows(hi, lo, out):
            return out
        np.multiply(hi[:, :, None], lo[:, None, :], out=out.reshape(batch, hi.shape[1], lo.shape[1]))
        return out

    def state_from_array(self, full: Any) -> Any:
        """A full ``(B, 2**n)`` host array as a state of this backend."""
        return self.asarray(full)

    def sample_basis(self, state: Any, shots: int, rng: np.random.Generator) -> np.ndarray:
        """``shots`` basis-state indices per batch entry, ``(B, shots)``, drawn from ``|state|**2``."""
        kern = cpu_kernels()
        if kern is not None and (res := kern.sample_basis(state, shots, rng)) is not None:
            return res
        return self.sample_indices(self.to_numpy(self.probs(state, None)), shots, rng)

    def sample_indices(self, probs: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
        """``shots`` basis-state indices drawn from each row of ``probs`` (B, K): shape ``(B, shots)``.

        Inverse CDF: each uniform is looked up in the cumulative distribution. The uniforms are looked
        up in sorted order (a forward walk through the CDF instead of random probes of a large array,
        3-4x faster at 2**20 outcomes) and put back in their drawn order, so the samples are the same.
        """
        p = np.asarray(probs, dtype=float)
        out = np.empty((p.shape[0], shots), dtype=np.int64)
        for b in range(p.shape[0]):
            cdf = np.cumsum(p[b])
            cdf /= cdf[-1]
            u = rng.random(shots)
            order = np.argsort(u)
            out[b, order] = np.searchsorted(cdf, u[order], side="right")
        np.minimum(out, p.shape[1] - 1, out=out)
        return out
