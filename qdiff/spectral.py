"""Gates in spectral form, so compiled code binds any parameterised gate without per-gate code.

A parameterised gate is a product of one-parameter factors (Rot = RZ RY RZ; a one-parameter gate is
its own factor). A factor with generator ``H`` (``dU/dv = i H U``) is ``U(v) = sum_j exp(i v l_j) P_j U(0)``
over the distinct eigenvalues ``l_j`` of ``H`` and their projectors ``P_j``; its derivative is the same
sum weighted by ``i l_j``. The decomposition is computed once per gate type and width and checked
against the gate table's own matrices; :class:`SpectralPlan` packs a circuit's gates this way as flat
arrays (the data ``qdiff.backends.numba.whole_circuit`` binds in one compiled call).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from .circuit import Operation, ParamRef
from .gates import GATES
from .ir.kinds import Kind

MAX_DIM = 4
"""Gates on at most two targets (matrices up to 4 x 4) are packed, wider SUBSPACE gates compressed to 3 x 3."""

EIGEN_TOL = 1e-9
"""Eigenvalues of a generator closer than this are one eigenvalue (one projector)."""

CHECK_TOL = 1e-12
"""The spectral form must reproduce the gate table's matrices to this tolerance, or it is not used."""


@dataclass(frozen=True)
class FactorSpectrum:
    """One factor: which gate parameter it carries (or a constant angle), eigenvalues, projectors, U(0)."""

    param: int | float
    eigenvalues: np.ndarray  # (m,)
    projectors: np.ndarray  # (m, d, d)
    base: np.ndarray  # (d, d)

    def matrix(self, v: float, derivative: bool = False) -> np.ndarray:
        """``U(v)`` (or ``dU/dv``) from the spectral form."""
        w = np.exp(1j * v * self.eigenvalues)
        if derivative:
            w = w * 1j * self.eigenvalues
        return np.einsum("j,jab->ab", w, self.projectors) @ self.base


def _projectors(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct eigenvalues of Hermitian ``h`` and the projectors onto their eigenspaces."""
    evals, vecs = np.linalg.eigh(h)
    groups: list[list[int]] = []
    for i, e in enumerate(evals):
        if groups and abs(e - evals[groups[-1][0]]) < EIGEN_TOL:
            groups[-1].append(i)
        else:
            groups.append([i])
    lam = np.array([evals[g].mean() for g in groups])
    proj = np.stack([vecs[:, g] @ vecs[:, g].conj().T for g in groups])
    return lam, proj


@functools.lru_cache(maxsize=256)
def compressed_basis(name: str, k: int) -> tuple[int, int, int] | None:
    """For a SUBSPACE gate on more targets than ``MAX_DIM`` allows (DoubleExcitation): its two rotated
    local basis states and one of the others, ``(i0, i1, r)``; else None.

    Such a gate is a 2 x 2 block on ``(i0, i1)`` and one common phase on every other basis state, so
    the 3 x 3 block on ``(i0, i1, r)`` (its *compressed* matrix) is the whole gate.
    """
    gate = GATES[name]
    if gate.kind != Kind.SUBSPACE or gate.subspace is None or 2**k <= MAX_DIM:
        return None
    i0, i1 = gate.subspace
    return i0, i1, next(i for i in range(2**k) if i not in (i0, i1))


@functools.lru_cache(maxsize=256)
def rest_phase_varies(name: str, k: int) -> bool:
    """Whether a compressed SUBSPACE gate's phase on the other basis states depends on its parameter
    (the Plus/Minus excitations), so that its derivative has a part outside the rotated pair."""
    basis = compressed_basis(name, k)
    if basis is None:
        return False
    return bool(abs(compress(GATES[name].generator(None, k).dense(), basis)[2, 2]) > EIGEN_TOL)


def compress(m: np.ndarray, basis: tuple[int, ...]) -> np.ndarray:
    """The block of ``m (..., d, d)`` on the local basis states ``basis`` (rows and columns)."""
    idx = list(basis)
    return m[..., idx, :][..., :, idx]


def block4(m: np.ndarray, basis: tuple[int, int, int] | None) -> np.ndarray:
    """A gate's (or derivative's) matrix ``(..., d, d)`` as the compiled executors read it: compressed on
    ``basis`` for a wide SUBSPACE gate (see :func:`compressed_basis`), then zero-padded to 4 x 4."""
    if basis is not None:
        m = compress(m, basis)
    d = m.shape[-1]
    out = np.zeros((*m.shape[:-2], MAX_DIM, MAX_DIM), dtype=complex)
    out[..., :d, :d] = m
    return out


def expand(block: np.ndarray, basis: tuple[int, int, int], d: int) -> np.ndarray:
    """The full ``(d, d)`` matrix of a compressed SUBSPACE gate (the phase ``block[2, 2]`` on every other state)."""
    out = np.diag(np.full(d, block[2, 2]))
    i0, i1, _ = basis
    out[np.ix_([i0, i1], [i0, i1])] = block[:2, :2]
    return out


@functools.lru_cache(maxsize=256)
def gate_spectra(name: str, k: int) -> tuple[FactorSpectrum, ...] | None:
    """Spectral factors of base gate ``name`` on ``k`` targets, or None when it has no such form here.

    A SUBSPACE gate wider than ``MAX_DIM`` (see :func:`compressed_basis`) gets the factors of its
    compressed matrix; both forms are checked against the gate table's full matrices.
    """
    gate = GATES[name]
    d = 2**k
    basis = compressed_basis(name, k)
    if gate.num_params == 0 or gate.hyper is not None or (d > MAX_DIM and basis is None):
        return None
    factors = [(f.gate, f.param, f.targets) for f in gate.factors] or [(name, 0, tuple(range(k)))]
    shrink = (lambda m: m) if basis is None else (lambda m: compress(m, basis))
    spectra = []
    for fname, param, targets in factors:
        fgate = GATES[fname]
        if len(targets) != k or fgate.num_params != 1 or fgate.generator_fn is None or fgate.hyper is not None:
            return None
        lam, proj = _projectors(shrink(fgate.generator(None, k).dense()))
        base = shrink(np.asarray(fgate.matrix((np.float64(0.0),), None, k), dtype=complex))
        spectra.append(FactorSpectrum(param, lam, proj, base))
    rng = np.random.default_rng(7)
    for _ in range(3):  # the spectral product must be the gate table's matrix
        params = rng.uniform(-4.0, 4.0, size=gate.num_params)
        u = np.eye(base.shape[0], dtype=complex)
        for f in spectra:
            v = params[f.param] if isinstance(f.param, int) else float(f.param)
            u = f.matrix(v) @ u
        ref = gate.matrix(tuple(np.float64(p) for p in params), None, k)
        full = u if basis is None else expand(u, basis, d)
        if not np.allclose(full, ref, atol=CHECK_TOL, rtol=0.0):
            return None
    return tuple(spectra)


def _pad(m: np.ndarray) -> np.ndarray:
    out = np.zeros((MAX_DIM, MAX_DIM), dtype=complex)
    d = m.shape[-1]
    out[:d, :d] = m
    return out


@functools.lru_cache(maxsize=256)
def _packed_factors(name: str, k: int) -> tuple[tuple[Any, int, np.ndarray, np.ndarray, np.ndarray], ...]:
    """Per factor of ``name`` on ``k`` wires: (param, #eigenvalues, eigenvalues (4,), projectors (4, 4, 4),
    U(0) (4, 4)), zero-padded to 4 x 4 blocks once so packing a circuit only gathers them."""
    out = []
    for f in gate_spectra(name, k) or ():
        m = len(f.eigenvalues)
        projs = np.zeros((MAX_DIM, MAX_DIM, MAX_DIM), dtype=complex)
        projs[:m] = [_pad(p) for p in f.projectors]
        out.append((f.param, m, np.pad(f.eigenvalues, (0, MAX_DIM - m)), projs, _pad(f.base)))
    return tuple(out)


class SpectralPlan:
    """A circuit's gates (each on <= 2 targets, or compressed SUBSPACE gates) as spectral factors and
    constants, in flat arrays.

    Gate ``g`` is the product of factors ``fstart[g] .. fstart[g+1]-1`` (constant ``const[g]`` when it
    has none), daggered when ``inverse[g]``. Factor ``f`` has value ``coeff[f] * theta[pidx[f]] +
    offset[f]`` (``pidx = -1``: constant) where ``theta`` is :meth:`columns`: the circuit's parameters
    followed by one column per batched constant parameter (a broadcast input such as ``RX(x_batch)``),
    so a batch of inputs binds in the same compiled call as the trainable parameters. Occurrence ``q``
    (gate ``occ_gate[q]``, factor ``occ_factor[q]``) contributes ``occ_coeff[q] * d/dv`` to parameter
    ``occ_param[q]``; occurrences are sorted by gate, with ``occ_start`` the per-gate offsets.
    """

    def __init__(self, ops: list[Operation], constants: list[np.ndarray | None], num_params: int = 0):
        self.num_params = num_params
        batched: list[np.ndarray] = []
        f_src: list[tuple[int, float, float]] = []  # (pidx, coeff, offset)
        f_data: list[tuple] = []
        fstart, occ_start = [0], [0]
        occ: list[tuple[int, int, int, float]] = []  # (gate, factor, param, coeff)
        L = len(ops)
        self.const = np.zeros((L, MAX_DIM, MAX_DIM), dtype=complex)
        # constants come with the op's adjoint already applied; factor products are daggered when bound
        self.inverse = np.array([op.inverse and c is None for op, c in zip(ops, constants, strict=True)],
                                dtype=np.bool_)
        for g, op in enumerate(ops):
            if constants[g] is not None:
                self.const[g] = constants[g]
            else:
                for param, *data in _packed_factors(op.gate.name, len(op.wires)):
                    p = op.params[param] if isinstance(param, int) else float(param)
                    if isinstance(p, ParamRef):
                        occ.append((g, len(f_src), p.index, p.coeff))
                        f_src.append((p.index, p.coeff, p.offset))
                    elif np.ndim(p) == 1:
                        f_src.append((num_params + len(batched), 1.0, 0.0))
                        batched.append(np.asarray(p, dtype=float))
                    else:
                        f_src.append((-1, 0.0, float(p)))
                    f_data.append(data)
            fstart.append(len(f_src))
            occ_start.append(len(occ))
        if not f_src:  # keep every array non-empty for the compiled code
            f_src, f_data = [(-1, 0.0, 0.0)], [(0, np.zeros(MAX_DIM), np.zeros((4, 4, 4), complex),
                                                np.zeros((4, 4), complex))]
        self.fstart = np.array(fstart, dtype=np.int64)
        self.f_pidx = np.array([s[0] for s in f_src], dtype=np.int64)
        self.f_coeff = np.array([s[1] for s in f_src])
        self.f_offset = np.array([s[2] for s in f_src])
        self.f_nev = np.array([d[0] for d in f_data], dtype=np.int64)
        self.f_evals = np.array([d[1] for d in f_data])
        projs = np.array([d[2] for d in f_data])
        self.f_projs = np.stack([projs, 1j * self.f_evals[:, :, None, None] * projs], axis=1)
        """``(F, 2, 4, 4, 4)``: factor f's projectors P_j, then the derivative's ``i l_j P_j`` (d/dv of
        exp(i v l_j) P_j, over exp(i v l_j))."""
        self.f_base = np.array([d[3] for d in f_data])
        self.occ_gate = np.array([o[0] for o in occ], dtype=np.int64)
        self.occ_factor = np.array([o[1] for o in occ], dtype=np.int64)
        self.occ_param = np.array([o[2] for o in occ], dtype=np.int64)
        self.occ_coeff = np.array([o[3] for o in occ], dtype=float)
        self.occ_start = np.array(occ_start, dtype=np.int64)
        self.batched = np.stack(batched, axis=1) if batched else None
        """``(B, H)``: the batched constant parameters, one column each (None when there are none)."""

    def columns(self, theta: np.ndarray) -> np.ndarray:
        """``(Bm, P + H)`` rows the compiled binder reads: ``theta`` (broadcast over the batch of the
        batched constants), then the batched constants; one zero column when there is nothing at all."""
        p = theta.shape[-1] if theta.ndim else 0
        t2 = theta.reshape(-1, p) if p else np.zeros((theta.shape[0] if theta.ndim == 2 else 1, 0))
        if self.batched is None:
            return t2 if p else np.zeros((t2.shape[0] or 1, 1))
        rows = self.batched.shape[0]
        if t2.shape[0] not in (1, rows):
            raise ValueError(f"parameter batch of {t2.shape[0]} does not match the gate data's batch of {rows}")
        return np.concatenate([np.broadcast_to(t2, (rows, t2.shape[1])), self.batched], axis=1)


def spectral_plan(ops: list[Operation], constants: list[np.ndarray | None],
                  num_params: int = 0) -> SpectralPlan | None:
    """A :class:`SpectralPlan` for ``ops`` (``constants[g]``: padded 4 x 4 matrix of a parameter-free op), or None.

    ``num_params``: the circuit's parameter count (batched constants become the columns after it).
    None when some parameterised op has no spectral form (wide, hyper data such as a Pauli word), or
    its constant parameters are neither scalars nor one batch of scalars of the same size as the others.
    """
    batch = None
    for op, const in zip(ops, constants, strict=True):
        if const is not None:
            continue
        if gate_spectra(op.gate.name, len(op.wires)) is None:
            return None
        for p in op.params:
            if isinstance(p, ParamRef) or np.ndim(p) == 0:
                continue
            if np.ndim(p) != 1 or (batch is not None and len(p) != batch):
                return None
            batch = len(p)
    return SpectralPlan(ops, constants, num_params)


__all__ = ["FactorSpectrum", "SpectralPlan", "block4", "compress", "compressed_basis", "expand", "gate_spectra",
           "rest_phase_varies", "spectral_plan", "MAX_DIM"]
