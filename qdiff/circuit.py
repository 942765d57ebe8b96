"""Circuits as plain data: a list of operations, each a gate, wires and parameters.

A parameter is either a constant or a :class:`ParamRef` to entry ``i`` of the circuit's trainable
parameter vector (optionally scaled and offset, ``2 * p[0] + 0.1``). The same entry may feed several
gates; gradients are always taken with respect to that vector, so "parameter i" is unambiguous.

Example::

    c = Circuit(2)
    p = c.params(3)              # p[0], p[1], p[2]
    c.h(0).rx(p[0], 0).cnot(0, 1).rot(p[0], p[1], p[2], wires=1)
"""

from __future__ import annotations

import inspect
import math
import re
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .errors import NotUnitaryError, ParameterError, StateError, WireError
from .gates import ALIASES, GATES, GateSpec, resolve_gate_name

UNITARY_ATOL = 1e-8
"""Tolerance for ``U U^dagger = I`` when a matrix is given as a gate."""


_FROZEN: weakref.WeakValueDictionary[int, np.ndarray] = weakref.WeakValueDictionary()


def frozen(x: Any, dtype: Any) -> np.ndarray:
    """A read-only copy of ``x`` as ``dtype``: arrays a circuit or observable keeps never change behind its back.

    An array this function made already (same dtype) is returned as it is.
    """
    if is_frozen(x) and x.dtype == np.dtype(dtype):
        return x
    arr = np.array(x, dtype=dtype, copy=True)
    arr.setflags(write=False)
    _FROZEN[id(arr)] = arr
    return arr


def is_frozen(x: Any) -> bool:
    """True when ``x`` is an array made by :func:`frozen` (a private, read-only copy)."""
    return isinstance(x, np.ndarray) and _FROZEN.get(id(x)) is x


@dataclass(frozen=True)
class ParamRef:
    """Reference to trainable parameter ``index``: its value is ``coeff * theta[index] + offset``."""

    index: int
    coeff: float = 1.0
    offset: float = 0.0

    def __mul__(self, other: float) -> ParamRef:
        return replace(self, coeff=self.coeff * float(other), offset=self.offset * float(other))

    __rmul__ = __mul__

    def __truediv__(self, other: float) -> ParamRef:
        return self * (1.0 / float(other))

    def __add__(self, other: float) -> ParamRef:
        return replace(self, offset=self.offset + float(other))

    __radd__ = __add__

    def __sub__(self, other: float) -> ParamRef:
        return self + (-float(other))

    def __rsub__(self, other: float) -> ParamRef:
        return (-self) + float(other)

    def __neg__(self) -> ParamRef:
        return self * -1.0

    def value(self, theta: np.ndarray) -> np.ndarray:
        """Value for a parameter vector ``theta`` of shape ``(P,)`` or ``(B, P)``."""
        return self.coeff * theta[..., self.index] + self.offset


class ParamVector(Sequence):
    """Indexable handle ``p[i]`` on a circuit's trainable parameters."""

    def __init__(self, start: int, size: int):
        self._start, self._size = start, size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, i: int) -> ParamRef:  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._size))]  # type: ignore[return-value]
        if not -self._size <= i < self._size:
            raise IndexError(f"parameter index {i} out of range for {self._size} parameters")
        return ParamRef(self._start + (i % self._size))


@dataclass(frozen=True)
class Operation:
    """One gate application: base gate, target wires, parameters, controls, adjoint flag.

    ``hyper`` holds non-differentiable gate data: the matrix of a QubitUnitary, the diagonal of a
    DiagonalQubitUnitary, the Pauli word of a PauliRot. ``name`` is the name the user gave (CNOT for
    PauliX with one control).
    """

    gate: GateSpec
    wires: tuple[int, ...]
    params: tuple[Any, ...] = ()
    controls: tuple[int, ...] = ()
    control_values: tuple[int, ...] = ()
    inverse: bool = False
    hyper: Any = None
    name: str = ""

    @property
    def all_wires(self) -> tuple[int, ...]:
        """Control wires followed by target wires."""
        return self.controls + self.wires

    @property
    def trainable_refs(self) -> list[tuple[int, ParamRef]]:
        """(gate-parameter position, reference) for every parameter bound to the trainable vector."""
        return [(i, p) for i, p in enumerate(self.params) if isinstance(p, ParamRef)]

    def param_values(self, theta: np.ndarray | None) -> tuple[np.ndarray, ...]:
        """Parameter values as arrays (scalars, or ``(B,)`` when ``theta`` is batched)."""
        out = []
        for p in self.params:
            if isinstance(p, ParamRef):
                out.append(p.value(theta))
            else:
                out.append(np.asarray(p, dtype=float))
        return tuple(out)

    def adjoint(self) -> Operation:
        """The inverse operation."""
        return replace(self, inverse=not self.inverse)

    def controlled(self, controls: Iterable[int], control_values: Iterable[int] | None = None) -> Operation:
        """This operation with extra control wires (values 1 unless given)."""
        controls = tuple(int(c) for c in controls)
        values = tuple(int(v) for v in control_values) if control_values is not None else (1,) * len(controls)
        return replace(self, controls=controls + self.controls, control_values=values + self.control_values)

    def matrix(self, theta: np.ndarray | None = None) -> np.ndarray:
        """Dense matrix on ``all_wires`` (controls first); for tests and small checks."""
        m = self.gate.matrix(self.param_values(theta), self.hyper, len(self.wires))
        if self.inverse:
            m = np.conj(np.swapaxes(m, -1, -2))
        nc = len(self.controls)
        if nc == 0:
            return m
        d = m.shape[-1]
        full = np.broadcast_to(np.eye(d * 2**nc, dtype=complex), m.shape[:-2] + (d * 2**nc,) * 2).copy()
        block = int("".join(str(v) for v in self.control_values), 2)
        full[..., block * d : (block + 1) * d, block * d : (block + 1) * d] = m
        return full

    def __repr__(self) -> str:
        args = [repr(p) if isinstance(p, ParamRef) else f"{float(p):.4g}" for p in self.params]
        ctrl = f", controls={self.controls}" if self.controls else ""
        if self.controls and any(v == 0 for v in self.control_values):
            ctrl += f", control_values={self.control_values}"
        inv = ".adjoint()" if self.inverse else ""
        return f"{self.name or self.gate.name}({', '.join(args + [f'wires={self.wires}'])}{ctrl}){inv}"


@dataclass(frozen=True)
class StatePrep:
    """Initial state on ``wires``: a basis state (``bits``) or amplitudes; other wires start in |0>."""

    wires: tuple[int, ...]
    bits: tuple[int, ...] | None = None
    amplitudes: np.ndarray | None = None


def _check_finite(value: Any, what: str, real: bool = False) -> None:
    try:
        arr = np.asarray(value)
    except ValueError:  # ragged nested sequences
        raise ParameterError(f"{what} must be numeric, got {value!r}") from None
    if arr.dtype.kind not in ("biuf" if real else "biufc"):
        raise ParameterError(f"{what} must be {'real' if real else 'numeric'}, got {type(value).__name__} {value!r}")
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"{what} is not finite (NaN or inf): {value!r}")


def _wire_tuple(wires: Any, what: str) -> tuple:
    """``wires`` as a tuple: a single integer or an iterable (validated later); WireError otherwise."""
    if isinstance(wires, (int, np.integer)):
        return (wires if isinstance(wires, bool) else int(wires),)  # a bool is rejected by _check_wires
    try:
        return tuple(wires)
    except TypeError:
        raise WireError(f"{what}: wires must be an integer or a sequence of integers, got {wires!r}") from None


class Circuit:
    """An ordered list of operations on ``num_wires`` qubits with ``num_params`` trainable parameters.

    Build it with :meth:`add` or the gate methods (``c.rx(p[0], 0)``, ``c.cnot(0, 1)``; one per gate of
    :data:`qdiff.gates.GATES` and alias, see ``dir(Circuit)``); each returns the circuit, so calls chain.
    Every array the circuit takes (matrices, diagonals, batched constants, amplitudes) is copied and
    frozen, so changing the caller's array later changes nothing here. ``version`` counts changes:
    everything derived from a circuit (its compiled program) is keyed on it.
    """

    def __init__(self, num_wires: int, num_params: int = 0):
        if not isinstance(num_wires, (int, np.integer, float)) or int(num_wires) != num_wires or num_wires < 1:
            raise WireError(f"a circuit needs a positive integer number of wires, got {num_wires!r}")
        self.num_wires = int(num_wires)
        self._num_params = int(num_params)
        self._ops: list[Operation] = []
        self._prep: StatePrep | None = None
        self.version = 0

    # -- versioned state --------------------------------------------------------------------------
    def _changed(self) -> None:
        self.version += 1

    @property
    def num_params(self) -> int:
        """Length of the trainable parameter vector."""
        return self._num_params

    @num_params.setter
    def num_params(self, value: int) -> None:
        self._num_params = int(value)
        self._changed()

    @property
    def operations(self) -> tuple[Operation, ...]:
        """The operations, in order (a tuple; change them with :meth:`add`/:meth:`append` or by assigning a list)."""
        return tuple(self._ops)

    @operations.setter
    def operations(self, ops: Iterable[Operation]) -> None:
        self._ops = [self._checked(op) for op in ops]
        for op in self._ops:
            self._grow(op)
        self._changed()

    @classmethod
    def of(cls, num_wires: int, num_params: int, operations: Iterable[Operation]) -> Circuit:
        """A new circuit of ``operations`` (validated) on ``num_wires`` wires with ``num_params`` parameters."""
        out = cls(num_wires, num_params)
        out.operations = operations
        return out

    def segment(self, start: int, stop: int | None = None) -> Circuit:
        """Operations ``[start, stop)`` as a new circuit on the same wires with the same parameters (no state
        preparation)."""
        return Circuit.of(self.num_wires, self.num_params, self._ops[start:stop])

    @property
    def state_prep(self) -> StatePrep | None:
        """The initial state (None: |0...0>)."""
        return self._prep

    @state_prep.setter
    def state_prep(self, prep: StatePrep | None) -> None:
        if prep is not None and prep.amplitudes is not None:
            prep = replace(prep, amplitudes=frozen(prep.amplitudes, complex))
        self._prep = prep
        self._changed()

    def _checked(self, op: Any) -> Operation:
        """``op`` validated against this circuit (wires, parameter count and values), arrays frozen."""
        if not isinstance(op, Operation):
            raise ParameterError(f"expected a qdiff Operation, got {type(op).__name__}")
        name = op.name or op.gate.name
        self._check_wires(op.all_wires, name)
        if len(op.params) != op.gate.num_params:
            raise ParameterError(f"{name} takes {op.gate.num_params} parameter(s), got {len(op.params)}")
        params = tuple(check_parameter(p, f"{name} parameter {i}") for i, p in enumerate(op.params))
        if any(a is not b for a, b in zip(params, op.params, strict=True)):
            op = replace(op, params=params)
        return _frozen_operation(op)

    def _grow(self, op: Operation) -> None:
        for _, ref in op.trainable_refs:
            self._num_params = max(self._num_params, ref.index + 1)

    # -- parameters -------------------------------------------------------------------------------
    def params(self, count: int) -> ParamVector:
        """Reserve ``count`` new trainable parameters and return handles ``p[0] .. p[count-1]``."""
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
            raise ParameterError(f"params() needs a non-negative integer count, got {count!r}")
        start = self._num_params
        self.num_params = start + int(count)
        return ParamVector(start, int(count))

    # -- building ---------------------------------------------------------------------------------
    def _check_wires(self, wires: tuple[int, ...], what: str) -> None:
        for w in wires:
            if isinstance(w, bool) or not isinstance(w, (int, np.integer)):
                raise WireError(f"{what}: wire labels must be integers, got {w!r}")
            if not 0 <= w < self.num_wires:
                raise WireError(f"{what}: wire {w} is out of range for a {self.num_wires}-wire circuit")
        if len(set(wires)) != len(wires):
            raise WireError(f"{what}: wires {wires} repeat a wire")

    def add(
        self,
        name: str,
        *params: Any,
        wires: int | Iterable[int],
        controls: Iterable[int] = (),
        control_values: Iterable[int] | None = None,
        inverse: bool = False,
        hyper: Any = None,
    ) -> Circuit:
        """Append gate ``name`` (any gate of :data:`qdiff.gates.GATES` or an alias such as CNOT).

        Aliases with controls take their control wires first in ``wires`` (CNOT(0, 1): control 0).
        ``controls``/``control_values`` add further controls to any gate; ``inverse`` applies its
        adjoint. Raises a :class:`~qdiff.errors.QDiffError` subclass, and changes nothing, on bad input.
        """
        self._ops.append(self.operation(name, *params, wires=wires, controls=controls,
                                        control_values=control_values, inverse=inverse, hyper=hyper))
        self._grow(self._ops[-1])
        self._changed()
        return self

    def operation(
        self,
        name: str,
        *params: Any,
        wires: int | Iterable[int],
        controls: Iterable[int] = (),
        control_values: Iterable[int] | None = None,
        inverse: bool = False,
        hyper: Any = None,
    ) -> Operation:
        """The validated :class:`Operation` :meth:`add` would append, without appending it."""
        spec, n_alias_ctrl = resolve_gate_name(name)
        wires_t = _wire_tuple(wires, name)
        controls_t = _wire_tuple(controls, name)
        if n_alias_ctrl == -1:
            if len(wires_t) < 2:
                raise WireError(f"{name} needs control wire(s) and a target, got {wires_t}")
            n_alias_ctrl = len(wires_t) - 1
        if n_alias_ctrl and len(wires_t) <= n_alias_ctrl:
            raise WireError(f"{name} needs more than {n_alias_ctrl} wires, got {wires_t}")
        alias_ctrl, targets = wires_t[:n_alias_ctrl], wires_t[n_alias_ctrl:]
        all_ctrl = tuple(controls_t) + alias_ctrl
        if control_values is None:
            cvals = (1,) * len(all_ctrl)
        else:
            cvals = _wire_tuple(control_values, f"{name} control_values")
            if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in cvals):
                raise WireError(f"{name}: control_values {cvals} must be 0/1, one per control {controls_t}")
            cvals = tuple(int(v) for v in cvals)
            if len(cvals) == len(alias_ctrl) and len(cvals) != len(all_ctrl):
                cvals = (1,) * len(controls_t) + cvals
            if len(cvals) != len(all_ctrl) or any(v not in (0, 1) for v in cvals):
                raise WireError(f"{name}: control_values {cvals} must be 0/1, one per control {all_ctrl}")
        self._check_wires(all_ctrl + targets, name)
        if spec.num_wires is not None and len(targets) != spec.num_wires:
            raise WireError(f"{name} acts on {spec.num_wires + n_alias_ctrl} wires, got {len(wires_t)}: {wires_t}")
        if len(targets) < spec.min_wires:
            raise WireError(f"{name} needs at least {spec.min_wires} target wire(s), got {targets}")
        if len(params) != spec.num_params:
            raise ParameterError(f"{name} takes {spec.num_params} parameter(s), got {len(params)}")
        params_t = tuple(check_parameter(p, f"{name} parameter {i}") for i, p in enumerate(params))
        hyper = self._check_hyper(spec, name, hyper, len(targets))
        return Operation(spec, targets, params_t, all_ctrl, cvals, bool(inverse), hyper, name)

    @staticmethod
    def _check_hyper(spec: GateSpec, name: str, hyper: Any, k: int) -> Any:
        if spec.hyper is None:
            if hyper is not None:
                raise ParameterError(f"{name} takes no extra data, got {hyper!r}")
            return None
        if hyper is None:
            raise ParameterError(f"{name} needs its {spec.hyper}")
        if spec.hyper == "word":
            word = str(hyper).upper()
            if len(word) != k or set(word) - set("IXYZ"):
                raise ParameterError(f"{name}: Pauli word {hyper!r} must use I/X/Y/Z, one letter per wire ({k})")
            return word
        _check_finite(hyper, f"{name} {spec.hyper}")
        arr = frozen(hyper, complex)
        d = 2**k
        if spec.hyper == "matrix":
            if arr.shape[-2:] != (d, d) or arr.ndim not in (2, 3):
                raise ParameterError(f"{name} on {k} wire(s) needs a {d}x{d} matrix, got shape {arr.shape}")
            err = np.abs(arr @ np.conj(np.swapaxes(arr, -1, -2)) - np.eye(d)).max()
            if err > UNITARY_ATOL * max(1.0, d):
                raise NotUnitaryError(f"{name} matrix is not unitary: max |U U^dagger - I| = {err:.3g}")
        else:
            if arr.shape[-1:] != (d,) or arr.ndim not in (1, 2):
                raise ParameterError(f"{name} on {k} wire(s) needs {d} diagonal entries, got shape {arr.shape}")
            err = np.abs(np.abs(arr) - 1).max()
            if err > UNITARY_ATOL:
                raise NotUnitaryError(f"{name} diagonal entries must have modulus 1 (max deviation {err:.3g})")
        if arr.ndim == (3 if spec.hyper == "matrix" else 2) and arr.shape[0] == 0:
            raise ParameterError(f"{name}: a batch of {spec.hyper}s needs at least one entry")
        return arr

    def append(self, op: Operation) -> Circuit:
        """Append an existing :class:`Operation` (validated against this circuit's wires)."""
        return self.extend([op])

    def extend(self, ops: Iterable[Operation]) -> Circuit:
        """Append several operations (all or none: wires and parameters of every one are validated first)."""
        checked = [self._checked(op) for op in ops]
        for op in checked:
            self._ops.append(op)
            self._grow(op)
        self._changed()
        return self

    def basis_state(self, bits: Sequence[int], wires: Iterable[int] | None = None) -> Circuit:
        """Start from the computational basis state ``bits`` on ``wires`` (default: all wires)."""
        wires_t = tuple(range(self.num_wires)) if wires is None else _wire_tuple(wires, "BasisState")
        self._check_wires(wires_t, "BasisState")
        bits_l = np.asarray(bits).ravel().tolist()
        if len(bits_l) != len(wires_t) or any(b not in (0, 1) for b in bits_l):
            raise StateError(f"BasisState needs one 0/1 bit per wire ({len(wires_t)}), got {bits}")
        self._set_prep(StatePrep(wires_t, bits=tuple(int(b) for b in bits_l)))
        return self

    def state_vector(
        self, amplitudes: Any, wires: Iterable[int] | None = None, *, normalize: bool = False, atol: float = 1e-8
    ) -> Circuit:
        """Start from the amplitude vector ``amplitudes`` on ``wires`` (length ``2**len(wires)``).

        It must be normalised unless ``normalize=True``; a batch ``(B, 2**k)`` is allowed.
        """
        wires_t = tuple(range(self.num_wires)) if wires is None else _wire_tuple(wires, "StatePrep")
        self._check_wires(wires_t, "StatePrep")
        _check_finite(amplitudes, "StatePrep amplitudes")
        amp = np.array(amplitudes, dtype=complex, copy=True)
        if amp.ndim not in (1, 2) or amp.shape[-1] != 2 ** len(wires_t) or (amp.ndim == 2 and amp.shape[0] == 0):
            raise StateError(
                f"StatePrep on {len(wires_t)} wire(s) needs {2 ** len(wires_t)} amplitudes, got shape {amp.shape}"
            )
        norms = np.linalg.norm(amp, axis=-1)
        if np.any(norms == 0):
            raise StateError("StatePrep amplitudes are all zero")
        if normalize:
            amp = amp / norms[..., None]
        elif np.any(np.abs(norms - 1) > atol):
            raise StateError(f"StatePrep amplitudes are not normalised (norm {norms}); pass normalize=True")
        self._set_prep(StatePrep(wires_t, amplitudes=frozen(amp, complex)))
        return self

    def _set_prep(self, prep: StatePrep) -> None:
        if self._ops:
            raise StateError("state preparation must come before every gate of the circuit")
        self.state_prep = prep

    def __getattr__(self, attr: str) -> Any:
        """Other spellings of the gate methods (``c.paulirot``, ``c.CNOT``): any case, underscores ignored."""
        name = None if attr.startswith("_") else _ALIAS_LOWER.get(attr.replace("_", "").lower())
        if name is None:
            raise AttributeError(f"Circuit has no attribute or gate {attr!r}")
        return getattr(self, _METHOD_OF[name])

    # -- inspection -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._ops)

    def __iter__(self) -> Iterator[Operation]:
        return iter(tuple(self._ops))

    def copy(self) -> Circuit:
        """A shallow copy (operations and their data are immutable)."""
        c = Circuit(self.num_wires, self._num_params)
        c._ops = list(self._ops)
        c._prep = self._prep
        return c

    def adjoint(self) -> Circuit:
        """The inverse circuit (operations reversed and inverted; no state preparation)."""
        c = Circuit(self.num_wires, self._num_params)
        c._ops = [op.adjoint() for op in reversed(self._ops)]
        return c

    def __repr__(self) -> str:
        body = "\n".join(f"  {op!r}" for op in self._ops)
        return f"Circuit(num_wires={self.num_wires}, num_params={self.num_params}, ops=[\n{body}\n])"


def _finite_float(x: Any) -> bool:
    """Whether ``x`` is a Python or numpy float that is finite (the common case, checked without numpy)."""
    return isinstance(x, float) and math.isfinite(x)


def check_parameter(p: Any, what: str) -> Any:
    """A gate parameter as stored: a :class:`ParamRef`, a float, or a frozen 1-D float batch; error otherwise."""
    if type(p) is float:
        if not math.isfinite(p):
            raise ParameterError(f"{what} is not finite (NaN or inf): {p!r}")
        return p
    if isinstance(p, ParamRef):
        if isinstance(p.index, bool) or not isinstance(p.index, (int, np.integer)) or p.index < 0:
            raise ParameterError(f"{what}: parameter index {p.index!r} must be a non-negative integer")
        if not (_finite_float(p.coeff) and _finite_float(p.offset)):
            _check_finite([p.coeff, p.offset], f"{what} scale/offset", real=True)
        return p
    _check_finite(p, what, real=True)
    if np.ndim(p) > 1:
        raise ParameterError(f"{what} must be a scalar or a 1-D batch, got shape {np.shape(p)}")
    if np.ndim(p) == 0:
        return float(p)
    if np.shape(p)[0] == 0:
        raise ParameterError(f"{what}: a batch of parameter values needs at least one entry")
    return frozen(p, float)


def _frozen_operation(op: Operation) -> Operation:
    """``op`` with its matrix/diagonal data as a frozen copy (operations built by the caller may alias arrays;
    parameters are frozen by :func:`check_parameter`)."""
    hyper = op.hyper if op.hyper is None or isinstance(op.hyper, str) else frozen(op.hyper, complex)
    return op if hyper is op.hyper else replace(op, hyper=hyper)


# ------------------------------------------------------------------------------------------------
# gate methods: one real method per gate and alias, generated from the gate table

_PARAM_NAMES = {"Rot": ("phi", "theta", "omega"), "U2": ("phi", "delta"), "U3": ("theta", "phi", "delta"),
                "CRot": ("phi", "theta", "omega")}
_HYPER_NAMES = {"matrix": "matrix", "diagonal": "diagonal", "word": "word"}


def method_name(gate_name: str) -> str:
    """The Circuit method of a gate: ``IsingXX`` -> ``ising_xx``, ``CNOT`` -> ``cnot``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", gate_name).lower()


def _gate_method(gate_name: str) -> Any:
    spec, n_alias = resolve_gate_name(gate_name)
    names = _PARAM_NAMES.get(gate_name, _PARAM_NAMES.get(spec.name, ("theta",) * 0))
    if len(names) != spec.num_params:
        names = ("theta",) if spec.num_params == 1 else tuple(f"p{i}" for i in range(spec.num_params))
    hyper_name = _HYPER_NAMES.get(spec.hyper) if spec.hyper else None

    def method(self: Circuit, *args: Any, wires: Any = None, controls: Iterable[int] = (),
               control_values: Iterable[int] | None = None, inverse: bool = False, **kwargs: Any) -> Circuit:
        params, rest = args[: spec.num_params], args[spec.num_params:]
        hyper = kwargs.pop("hyper", None)
        if hyper_name is not None and hyper_name in kwargs:
            hyper = kwargs.pop(hyper_name)
        if kwargs:
            raise TypeError(f"{method_name(gate_name)}() got unexpected keyword argument(s) {sorted(kwargs)}")
        if hyper_name is not None and hyper is None and rest:
            hyper, rest = rest[0], rest[1:]
        if wires is None:
            wires = rest[0] if len(rest) == 1 and not isinstance(rest[0], (int, np.integer)) else rest
        elif rest:
            raise TypeError(f"{method_name(gate_name)}() got wires both positionally and as wires=")
        return self.add(gate_name, *params, wires=wires, controls=controls, control_values=control_values,
                        inverse=inverse, hyper=hyper)

    kw = inspect.Parameter.KEYWORD_ONLY
    sig_params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)]
    sig_params += [inspect.Parameter(n, inspect.Parameter.POSITIONAL_ONLY) for n in names]
    if hyper_name:
        sig_params.append(inspect.Parameter(hyper_name, inspect.Parameter.POSITIONAL_ONLY))
    sig_params += [inspect.Parameter("wires", inspect.Parameter.VAR_POSITIONAL),
                   inspect.Parameter("controls", kw, default=()),
                   inspect.Parameter("control_values", kw, default=None),
                   inspect.Parameter("inverse", kw, default=False)]
    method.__signature__ = inspect.Signature(sig_params, return_annotation="Circuit")  # type: ignore[attr-defined]
    method.__name__ = method.__qualname__ = method_name(gate_name)
    if n_alias:
        ctrl = "all wires but the last" if n_alias == -1 else f"{n_alias} control wire(s) first"
        what = f"{spec.name} controlled by {ctrl}"
    else:
        what = spec.doc or spec.name
    method.__doc__ = (f"Append {gate_name}: {what}\n\n"
                      f"Parameters: {', '.join(names) or 'none'} (numbers, batches (B,) or parameter handles p[i])"
                      + (f"; {hyper_name}" if hyper_name else "")
                      + ". Wires positionally or as ``wires=``; ``controls``/``control_values`` add controls, "
                      "``inverse=True`` appends the adjoint. Returns the circuit (calls chain).")
    return method


_METHOD_OF: dict[str, str] = {}
_ALIAS_LOWER: dict[str, str] = {}
for _name in tuple(GATES) + tuple(ALIASES):
    _METHOD_OF[_name] = method_name(_name)
    _ALIAS_LOWER[_name.lower()] = _name
    if not hasattr(Circuit, method_name(_name)):
        setattr(Circuit, method_name(_name), _gate_method(_name))
del _name


def check_theta(circuit: Circuit, theta: Any) -> tuple[np.ndarray, int | None]:
    """Validate a parameter vector for ``circuit``: shape ``(P,)`` or ``(B, P)``, finite.

    Returns the array (float64) and the batch size (None when not batched).
    """
    if theta is None:
        theta = np.zeros(circuit.num_params)
    try:
        arr = np.asarray(theta)
    except ValueError:  # ragged nested sequences
        raise ParameterError(f"parameters must be an array of shape (P,) or (B, P), got {theta!r}") from None
    if arr.dtype.kind not in "biuf":
        raise ParameterError(f"parameters must be real numbers, got dtype {arr.dtype}")
    arr = arr.astype(float, copy=False)
    if arr.ndim not in (1, 2) or arr.shape[-1] != circuit.num_params:
        raise ParameterError(
            f"the circuit has {circuit.num_params} trainable parameter(s); got parameters of shape {arr.shape} "
            f"(expected ({circuit.num_params},) or (batch, {circuit.num_params}))"
        )
    if arr.ndim == 2 and arr.shape[0] == 0:
        raise ParameterError(f"a batch of parameters needs at least one parameter set; got shape {arr.shape}")
    if not np.isfinite(np.add.reduce(arr, axis=None)) and not np.isfinite(arr).all():  # a sum is one pass
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ParameterError(f"parameter {tuple(int(b) for b in bad)} is not finite: {arr[tuple(bad)]}")
    return arr, (arr.shape[0] if arr.ndim == 2 else None)


__all__ = ["Circuit", "Operation", "ParamRef", "ParamVector", "StatePrep", "check_theta", "check_parameter", "frozen",
           "is_frozen", "method_name", "GATES"]
