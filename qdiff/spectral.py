"""Gates in spectral form, so compiled code binds any parameterised gate without per-gate code.

A parameterised gate is a product of one-parameter factors (Rot = RZ RY RZ; a one-parameter gate is
its own factor). A factor with generator ``H`` (``dU/dv = i H U``) is ``U(v) = sum_j exp(i v l_j) P_j U(0)``
over the distinct eigenvalues ``l_j`` of ``H`` and their projectors ``P_j``; its derivative is the same
sum weighted by ``i l_j``. The decomposition is computed once per gate type and width and checked
against the gate table's own matrices; :class:`SpectralPlan` packs a circuit's gates this way as flat
arrays (the data ``qdiff.backends.cpu_program`` binds in one compiled call).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .circuit import Operation, ParamRef
from .gates import GATES

MAX_DIM = 4
"""Gates on at most two targets (matrices up to 4 x 4) are packed."""

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
def gate_spectra(name: str, k: int) -> tuple[FactorSpectrum, ...] | None:
    """Spectral factors of base gate ``name`` on ``k`` targets, or None when it has no such form here."""
    gate = GATES[name]
    d = 2**k
    if gate.num_params == 0 or gate.hyper is not None or d > MAX_DIM:
        return None
    factors = [(f.gate, f.param, f.targets) for f in gate.factors] or [(name, 0, tuple(range(k)))]
    spectra = []
    for fname, param, targets in factors:
        fgate = GATES[fname]
        if len(targets) != k or fgate.num_params != 1 or fgate.generator_fn is None or fgate.hyper is not None:
            return None
        lam, proj = _projectors(fgate.generator(None, k).dense())
        base = np.asarray(fgate.matrix((np.float64(0.0),), None, k), dtype=complex)
        spectra.append(FactorSpectrum(param, lam, proj, base))
    rng = np.random.default_rng(7)
    for _ in range(3):  # the spectral product must be the gate table's matrix
        params = rng.uniform(-4.0, 4.0, size=gate.num_params)
        u = np.eye(d, dtype=complex)
        for f in spectra:
            v = params[f.param] if isinstance(f.param, int) else float(f.param)
            u = f.matrix(v) @ u
        ref = gate.matrix(tuple(np.float64(p) for p in params), None, k)
        if not np.allclose(u, ref, atol=CHECK_TOL, rtol=0.0):
            return None
    return tuple(spectra)


def _pad(m: np.ndarray) -> np.ndarray:
    out = np.zeros((MAX_DIM, MAX_DIM), dtype=complex)
    d = m.shape[-1]
    out[:d, :d] = m
    return out


class SpectralPlan:
    """A circuit's gates (each on <= 2 targets) as spectral factors and constants, in flat arrays.

    Gate ``g`` is the product of factors ``fstart[g] .. fstart[g+1]-1`` (constant ``const[g]`` when it
    has none), daggered when ``inverse[g]``. Factor ``f`` has value ``coeff[f] * theta[pidx[f]] +
    offset[f]`` (``pidx = -1``: constant). Occurrence ``q`` (gate ``ogate[q]``, factor ``ofactor[q]``)
    contributes ``occ_coeff[q] * d/dv`` to parameter ``occ_param[q]``; they are sorted by gate, with
    ``occ_start`` the per-gate offsets.
    """

    def __init__(self, ops: list[Operation], constants: list[np.ndarray | None]):
        f_pidx: list[int] = []
        f_coeff: list[float] = []
        f_offset: list[float] = []
        f_nev: list[int] = []
        f_evals: list[np.ndarray] = []
        f_projs: list[np.ndarray] = []
        f_base: list[np.ndarray] = []
        fstart = [0]
        occ_gate: list[int] = []
        occ_factor: list[int] = []
        occ_param: list[int] = []
        occ_coeff: list[float] = []
        occ_start = [0]
        L = len(ops)
        self.const = np.zeros((L, MAX_DIM, MAX_DIM), dtype=complex)
        # constants come with the op's adjoint already applied; factor products are daggered when bound
        self.inverse = np.array([op.inverse and c is None for op, c in zip(ops, constants, strict=True)],
                                dtype=np.bool_)
        self.dim = np.array([2 ** len(op.wires) for op in ops], dtype=np.int64)
        for g, op in enumerate(ops):
            if constants[g] is not None:
                self.const[g] = _pad(constants[g])
            else:
                for f in gate_spectra(op.gate.name, len(op.wires)) or ():
                    p = op.params[f.param] if isinstance(f.param, int) else float(f.param)
                    if isinstance(p, ParamRef):
                        f_pidx.append(p.index)
                        f_coeff.append(p.coeff)
                        f_offset.append(p.offset)
                        occ_gate.append(g)
                        occ_factor.append(len(f_pidx) - 1)
                        occ_param.append(p.index)
                        occ_coeff.append(p.coeff)
                    else:
                        f_pidx.append(-1)
                        f_coeff.append(0.0)
                        f_offset.append(float(p))
                    m = len(f.eigenvalues)
                    f_nev.append(m)
                    f_evals.append(np.pad(f.eigenvalues, (0, MAX_DIM - m)))
                    f_projs.append(np.stack([_pad(p) for p in f.projectors] + [np.zeros((4, 4))] * (MAX_DIM - m)))
                    f_base.append(_pad(f.base))
            fstart.append(len(f_pidx))
            occ_start.append(len(occ_gate))
        nf = max(1, len(f_pidx))
        self.fstart = np.array(fstart, dtype=np.int64)
        self.f_pidx = np.array(f_pidx or [-1], dtype=np.int64)
        self.f_coeff = np.array(f_coeff or [0.0])
        self.f_offset = np.array(f_offset or [0.0])
        self.f_nev = np.array(f_nev or [0], dtype=np.int64)
        self.f_evals = np.array(f_evals).reshape(-1, MAX_DIM) if f_evals else np.zeros((nf, MAX_DIM))
        self.f_projs = np.array(f_projs, dtype=complex) if f_projs else np.zeros((nf, MAX_DIM, 4, 4), complex)
        self.f_base = np.array(f_base, dtype=complex) if f_base else np.zeros((nf, 4, 4), complex)
        self.occ_gate = np.array(occ_gate, dtype=np.int64)
        self.occ_factor = np.array(occ_factor, dtype=np.int64)
        self.occ_param = np.array(occ_param, dtype=np.int64)
        self.occ_coeff = np.array(occ_coeff, dtype=float)
        self.occ_start = np.array(occ_start, dtype=np.int64)


def spectral_plan(ops: list[Operation], constants: list[np.ndarray | None]) -> SpectralPlan | None:
    """A :class:`SpectralPlan` for ``ops`` (``constants[g]``: matrix of a parameter-free op), or None.

    None when some parameterised op has no spectral form (wide, hyper data such as a Pauli word) or
    carries per-batch constant parameters.
    """
    for op, const in zip(ops, constants, strict=True):
        if const is not None:
            continue
        if gate_spectra(op.gate.name, len(op.wires)) is None:
            return None
        if not all(isinstance(p, ParamRef) or np.ndim(p) == 0 for p in op.params):
            return None
    return SpectralPlan(ops, constants)


__all__ = ["FactorSpectrum", "SpectralPlan", "gate_spectra", "spectral_plan", "MAX_DIM"]
