"""The ``qdiff.qubit`` PennyLane device: PennyLane tapes run on qdiff's statevector engine.

- Execution: each tape becomes one qdiff circuit; a broadcast tape is one batched simulation.
- Gradients (``diff_method="adjoint"``, ``"device"``, ``"best"`` without shots): qdiff's adjoint
  engine, as Jacobians (``compute_derivatives``, with or without the forward pass) or as
  vector-Jacobian products (``compute_vjp``, QNode ``device_vjp=True``); analytic
  ``"parameter-shift"`` on plain gate parameters: qdiff's batched parameter-shift rule.
- Mid-circuit measurements: ``deferred`` (analytic default) or ``one-shot`` (default with shots),
  the latter simulating all shots as one batch of trajectories.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pennylane as qml
from pennylane import math
from pennylane.decomposition.gate_set import GateSet
from pennylane.devices import Device, ExecutionConfig
from pennylane.devices.capabilities import validate_mcm_method
from pennylane.devices.default_qubit import accepted_analytic_measurement, accepted_sample_measurement
from pennylane.devices.modifiers import simulator_tracking, single_tape_support
from pennylane.devices.preprocess import (
    decompose,
    device_resolve_dynamic_wires,
    no_sampling,
    validate_device_wires,
    validate_measurements,
)
from pennylane.exceptions import DeviceError, QuantumFunctionError
from pennylane.measurements import CountsMP, ExpectationMP, MeasurementTransform, ProbabilityMP, VarianceMP
from pennylane.operation import StatePrepBase
from pennylane.ops import Conditional, MidMeasure
from pennylane.tape import QuantumScript
from pennylane.transforms import broadcast_expand, defer_measurements, dynamic_one_shot
from pennylane.transforms.core import CompilePipeline, transform
from pennylane.wires import Wires

import qdiff.measure as qm
from qdiff.backends import cupy_status, get_backend
from qdiff.dynamic import run as run_dynamic
from qdiff.errors import QDiffError
from qdiff.gates import ALIASES, GATES
from qdiff.memory import check_policy, forward_footprint, require
from qdiff.simulate import final_state
from qdiff.threads import check_num_threads, num_threads

from .convert import (
    convert_tape,
    differentiable_plans,
    native_operation,
    observable_supported,
    op_batch_size,
    plan_measurements,
    supports_operation,
    tape_batch_size,
    unwrap,
)
from .results import counts_from_values, pack, rotated_state, tape_results

NAME = "qdiff.qubit"

QDIFF_SHORTHANDS = frozenset({"X", "Y", "Z", "H", "I", "CPhase"})
"""Names of qdiff's own gate aliases that PennyLane operations never carry."""

BASE_GATES = tuple(GATES) + tuple(a for a in ALIASES if a not in QDIFF_SHORTHANDS) + ("ControlledQubitUnitary",)
"""Native gates (PennyLane names), from qdiff's gate table; controlled and adjoint forms are native too.

``qdiff_qubit.toml`` lists the same names (checked by the tests)."""

GATE_SET = GateSet(
    set(BASE_GATES) | {f"C({g})" for g in BASE_GATES} | {f"Adjoint({g})" for g in BASE_GATES},
    name="qdiff.qubit gates",
)
GATE_SET_MCM = GATE_SET | GateSet({"MidMeasureMP"})
GATE_SET_MCM.name = "qdiff.qubit gates with mid-circuit measurements"

BACKENDS = ("numpy", "cupy", "auto")
VJP_INTERFACES = (math.Interface.AUTOGRAD, math.Interface.JAX, math.Interface.TORCH)
BROADCAST_VJP_INTERFACES = (math.Interface.AUTOGRAD, math.Interface.TORCH)
"""Interfaces that use the device's VJPs as they are (``device_vjp=True``)."""
STATE_CHUNK_BYTES = 256 * 2**20
"""Memory for one chunk of one-shot trajectories (states simulated together)."""


def _null_postprocessing(results: Any) -> Any:
    return results[0]


@transform
def no_counts(tape: Any) -> Any:
    """Refuse counts under jax.jit (dictionaries cannot leave a jitted function)."""
    if any(isinstance(mp, CountsMP) for mp in tape.measurements):
        raise NotImplementedError("The JAX-JIT interface doesn't support qp.counts.")
    return (tape,), _null_postprocessing


@transform
def decompose_operations(tape: Any, **options: Any) -> Any:
    """PennyLane's ``decompose`` on the operations alone; the measurements pass on uncopied.

    ``decompose`` rebuilds a tape it changes with ``tape.copy(operations=...)``, which copies every
    measurement: for a molecular Hamiltonian of hundreds of terms that copy (about 18 ms for LiH's
    631 terms) costs more than the simulation. Here the operations are decomposed on a tape without
    measurements and the new tape takes the original measurement objects (PennyLane treats them as
    immutable; its shallow copies share them the same way).
    """
    ops_only = QuantumScript(tape.operations, [], shots=tape.shots)
    (new,), _ = decompose(ops_only, **options)
    if new is ops_only:
        return (tape,), _null_postprocessing
    return (QuantumScript(new.operations, tape.measurements, shots=tape.shots),), _null_postprocessing


def _is_broadcast_param(tape: Any, index: int) -> bool:
    info = tape.par_info[index]
    op = info["op"]
    if op_batch_size(op) is None:
        return False
    try:
        expected = op.ndim_params[info["p_idx"]]
    except (AttributeError, IndexError, TypeError):
        expected = 0
    return math.ndim(op.data[info["p_idx"]]) > expected


@transform
def expand_trainable_broadcast(tape: Any) -> Any:
    """Split a broadcast tape whose broadcast parameters are trainable (Jacobian path only).

    A device Jacobian has one entry per tape parameter; a trainable broadcast parameter would need
    a diagonal ``(B, B)`` block that PennyLane's Jacobian products do not accept. Broadcast tapes
    whose trainable parameters are scalars stay one batched simulation and one batched adjoint sweep.
    """
    if tape_batch_size(tape) is None or not any(_is_broadcast_param(tape, i) for i in tape.trainable_params):
        return (tape,), _null_postprocessing
    return broadcast_expand(tape)


def _observable_parameters(obs: Any) -> Any:
    """An observable's parameters: its Pauli sentence's coefficients where PennyLane holds one (read
    without walking the operator tree, which for a molecular Hamiltonian costs milliseconds), else ``data``."""
    ps = obs.pauli_rep
    return ps.values() if ps is not None else obs.data


@transform
def validate_adjoint_trainable(tape: Any) -> Any:
    """PennyLane's ``validate_adjoint_trainable_params``: an error for trainable state preparation, a
    warning for trainable observable parameters (their gradient is not computed)."""
    for op in tape.operations[: tape.num_preps]:
        if any(qml.math.requires_grad(d) for d in op.data):
            raise QuantumFunctionError(
                "Differentiating with respect to the input parameters of state-prep operations "
                "is not supported with the adjoint differentiation method."
            )
    for m in tape.measurements:
        if m.obs is not None and any(qml.math.requires_grad(d) for d in _observable_parameters(m.obs)):
            warnings.warn(
                f"Differentiating with respect to the input parameters of {m.obs.name} "
                "is not supported with the adjoint differentiation method. Gradients are computed "
                "only with regards to the trainable parameters of the circuit.\n\n Mark the "
                "parameters of the measured observables as non-trainable to silence this warning.",
                UserWarning,
            )
    return (tape,), _null_postprocessing


def _obs_convertible(obs: Any) -> bool:
    try:
        return observable_supported(obs)
    except Exception:  # noqa: BLE001 - an observable PennyLane itself cannot describe
        return False


def _accept_analytic(m: Any) -> bool:
    if isinstance(m, (ExpectationMP, VarianceMP)) and m.obs is not None and _obs_convertible(m.obs):
        return True
    return isinstance(m, MeasurementTransform) or accepted_analytic_measurement(m)


def _accept_sample(m: Any) -> bool:
    return isinstance(m, MeasurementTransform) or accepted_sample_measurement(m)


def _adjoint_measurement(m: Any) -> bool:
    """expval/var of a structured observable, or probs of wires: what qdiff's adjoint differentiates."""
    if m.mv is not None:
        return False
    if type(m) in (ExpectationMP, VarianceMP):
        return m.obs is not None and _obs_convertible(m.obs)
    return type(m) is ProbabilityMP and m.obs is None


def _trainable_matrix(circuit: Any) -> bool:
    """True when a QubitUnitary (controlled or not) of ``circuit`` has a trainable matrix."""
    for op in circuit.operations:
        if op.data and unwrap(op)[0].name == "QubitUnitary" and _requires_grad(op):
            return True
    return False


class RaggedVJP(tuple):
    """Per-parameter VJPs of different shapes (broadcast or matrix parameters next to scalars).

    PennyLane's torch interface probes each tape's VJP with ``np.squeeze(vjp).shape`` before
    unpacking it entry by entry; a ragged tuple would make numpy fail there, so it answers with a flat
    placeholder of one entry per parameter.
    """

    def squeeze(self, axis: Any = None) -> np.ndarray:
        return np.empty(len(self))


def _requires_grad(op: Any) -> bool:
    return any(math.requires_grad(d) for d in op.data)


def _adjoint_op(op: Any, matrix_ok: bool) -> bool:
    """True when qdiff's adjoint differentiates ``op`` as it is (else PennyLane decomposes it)."""
    if isinstance(op, (MidMeasure, Conditional)):
        return False
    if not _requires_grad(op):
        return isinstance(op, StatePrepBase) or supports_operation(op)
    if isinstance(op, StatePrepBase) or not native_operation(op):
        return False
    base = unwrap(op)[0]
    if base.name == "QubitUnitary":
        return matrix_ok
    if base.name == "DiagonalQubitUnitary":
        return False
    return True


def _with_threads(method: Any) -> Any:
    """Run a device entry point with the device's ``threads`` option in force (numba kernels)."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with num_threads(self._threads):
            return method(self, *args, **kwargs)

    return wrapper


@simulator_tracking
@single_tape_support
class QDiffQubit(Device):
    """qdiff's statevector simulator as a PennyLane device.

    Args:
        wires (int, Iterable): number of wires or their labels (None: the wires each circuit uses).
        shots: deprecated by PennyLane (use ``qml.set_shots``); accepted as the default.
        backend (str): ``"numpy"`` (CPU), ``"cupy"`` (NVIDIA GPU) or ``"auto"`` (CuPy from 14 qubits
            when a GPU is usable, else numpy).
        c_dtype: ``np.complex128`` (default) or ``np.complex64``.
        seed (int, None, numpy.random.Generator): seed of the sampling generator.
        threads (int, None): CPU threads for the compiled kernels during this device's executions
            (1 .. NUMBA_NUM_THREADS); None uses the process setting (``qdiff.set_num_threads``).
        memory (str): ``"refuse"`` (default): every execution and derivative predicts its peak memory
            and raises before allocating if it would not fit (free memory, cgroup limit,
            ``QDIFF_MAX_MEMORY``); ``"fit"``: derivatives that do not fit run in smaller pieces (fewer
            adjoint sweeps stacked, shifted circuits and parameter batches in chunks).
        mpi (bool): distribute the statevector over the ranks of ``mpiexec -n R`` (R a power of two;
            needs ``qdiff[mpi]``); every rank returns the same results. ``backend`` is then each rank's
            local backend. Mid-circuit measurements and postselection are not supported with MPI.
    """

    config_filepath = Path(__file__).parent / "qdiff_qubit.toml"
    _device_options = ("backend", "c_dtype", "rng")

    def __init__(self, wires: Any = None, shots: Any = None, *, backend: str = "numpy",
                 c_dtype: Any = np.complex128, seed: Any = None, threads: int | None = None,
                 memory: str = "refuse", mpi: bool = False, **options: Any):
        if options:
            raise DeviceError(
                f"{NAME} got unknown option(s) {', '.join(sorted(options))}; "
                "valid options: wires, shots, backend, c_dtype, seed, threads, memory, mpi"
            )
        try:
            self._threads = None if threads is None else check_num_threads(threads)
            self._memory = check_policy(memory)
        except QDiffError as exc:
            raise DeviceError(f"{NAME}: {exc}") from exc
        if not isinstance(backend, str) or backend.lower() not in BACKENDS:
            raise DeviceError(f"{NAME}: unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        backend = backend.lower()
        if backend == "cupy":
            ok, why = cupy_status()
            if not ok:
                raise DeviceError(f"{NAME}: backend 'cupy' is not available: {why}")
        try:
            dtype = np.dtype(c_dtype)
        except TypeError as exc:
            raise DeviceError(f"{NAME}: c_dtype must be complex128 or complex64, got {c_dtype!r}") from exc
        if dtype not in (np.dtype(np.complex128), np.dtype(np.complex64)):
            raise DeviceError(f"{NAME}: c_dtype must be complex128 or complex64, got {dtype}")
        super().__init__(wires=wires, shots=shots)
        self._backend_name = backend
        self._c_dtype = dtype
        self._rng = np.random.default_rng(seed)
        self._mpi: Any = None
        if mpi:
            from qdiff.distributed import MPIBackend

            try:
                self._mpi = MPIBackend(local="numpy" if backend == "auto" else backend)
            except QDiffError as exc:
                raise DeviceError(f"{NAME}: {exc}") from exc

    @property
    def name(self) -> str:
        """The device's short name."""
        return NAME

    @property
    def backend(self) -> str:
        """The requested backend name ("numpy", "cupy" or "auto")."""
        return self._backend_name

    @property
    def c_dtype(self) -> np.dtype:
        """Complex dtype of the simulated states."""
        return self._c_dtype

    def _backend(self, num_wires: int) -> Any:
        if self._mpi is not None:
            return self._mpi
        return get_backend(self._backend_name, num_wires)

    def _refuse_mpi(self, what: str) -> None:
        if self._mpi is not None:
            raise DeviceError(f"{NAME}: {what} are not supported with mpi=True")

    def _check_forward(self, be: Any, conv: Any, plans: list, tape: Any, batch: int) -> None:
        """Refuse a forward pass whose predicted peak does not fit, before the state is allocated."""
        ms = [p.core for p in plans if p.core is not None]
        if tape.shots:
            ms.append(qm.Sample())  # the sampling distribution and the drawn shots
        fp = forward_footprint(len(conv.wire_order), batch, self._c_dtype, ms)
        require(fp, "", be)

    # -- configuration ----------------------------------------------------------------------------
    def supports_derivatives(self, execution_config: ExecutionConfig | None = None, circuit: Any = None) -> bool:
        """First-order device derivatives of analytic expval/var/probs circuits.

        ``adjoint``/``device``/``best``: qdiff's adjoint engine. ``parameter-shift``: qdiff's batched
        parameter-shift rule (all shifted circuits in one simulation), claimed only for a concrete
        analytic circuit whose trainable parameters are all scalar gate parameters and without
        gradient keyword arguments; everything else goes to PennyLane's parameter-shift transform.
        """
        if execution_config is None:
            return True
        method = execution_config.gradient_method
        if method not in ("adjoint", "device", "best", "parameter-shift"):
            return False
        if execution_config.derivative_order != 1:
            return False
        if method == "parameter-shift" and (circuit is None or execution_config.gradient_keyword_arguments
                                            or not _scalar_gate_trainables(circuit)):
            return False
        if circuit is None:
            return True
        if circuit.shots:
            return False
        if any(isinstance(op, (MidMeasure, Conditional)) for op in circuit.operations):
            return False
        return all(_adjoint_measurement(m) for m in circuit.measurements)

    def supports_vjp(self, execution_config: ExecutionConfig | None = None, circuit: Any = None) -> bool:
        """Device VJPs exactly where device Jacobians are available."""
        return self.supports_derivatives(execution_config, circuit)

    def _resolve_mcm(self, config: ExecutionConfig, circuit: Any) -> Any:
        mcm = config.mcm_config
        shots_present = bool(circuit is not None and circuit.shots)
        method = mcm.mcm_method
        if method == "device":
            method = None
        if method in ("tree-traversal", "single-branch-statistics"):
            raise DeviceError(
                f'mcm_method="{method}" is not supported by {NAME}; use "deferred" or "one-shot"'
            )
        validate_mcm_method(self.capabilities, method, shots_present)
        if method is None:
            method = "one-shot" if shots_present else "deferred"
        if mcm.postselect_mode == "fill-shots" and method != "deferred":
            raise DeviceError("Using postselect_mode='fill-shots' is only supported with mcm_method='deferred'.")
        return replace(mcm, mcm_method=method)

    def setup_execution_config(self, config: ExecutionConfig | None = None, circuit: Any = None) -> ExecutionConfig:
        """Resolve "best", claim device gradients for adjoint/device, pick the MCM method."""
        config = config or ExecutionConfig()
        for option in config.device_options:
            if option not in self._device_options:
                raise DeviceError(f"device option {option} not present on {self}")
        updates: dict[str, Any] = {"convert_to_numpy": True}
        method = config.gradient_method
        if method == "best" and self.supports_derivatives(replace(config, gradient_method="adjoint"), circuit):
            method = "adjoint"
            updates["gradient_method"] = method
        native_shift = method == "parameter-shift" and self.supports_derivatives(config, circuit)
        if method in ("adjoint", "device") or native_shift:
            if config.use_device_gradient is None:
                updates["use_device_gradient"] = True
            if config.grad_on_execution is None:
                updates["grad_on_execution"] = True
            decomposed = (circuit is not None and not all(native_operation(op) for op in circuit.operations)
                          and tape_batch_size(circuit) is not None)
            if not native_shift and decomposed and config.interface in BROADCAST_VJP_INTERFACES:
                # a broadcast circuit (a batch of inputs) with operations to decompose (templates)
                # answers through one batched device VJP, the same numbers as Jacobians, for which
                # PennyLane would split it into one tape per batch entry (QNodes pass device_vjp=False
                # by default, so this applies whatever it says). A circuit of qdiff's own gates keeps
                # the Jacobian route: one batched simulation and sweep, without a second forward pass
                # for the VJP. Not for JAX, whose jacobian maps the VJP over a batch of cotangents.
                updates["use_device_jacobian_product"] = True
            elif config.use_device_jacobian_product is None:
                updates["use_device_jacobian_product"] = False
            if (not native_shift and circuit is not None and _trainable_matrix(circuit)
                    and config.interface in VJP_INTERFACES):
                # a trainable QubitUnitary has a (d, d) gradient that only a device VJP can return
                updates["use_device_jacobian_product"] = True
        else:
            if config.use_device_gradient is None:
                updates["use_device_gradient"] = False
            if config.use_device_jacobian_product is None:
                updates["use_device_jacobian_product"] = False
            if config.grad_on_execution is None:
                updates["grad_on_execution"] = False
        updates["mcm_config"] = self._resolve_mcm(config, circuit)
        return replace(config, **updates)

    def preprocess_transforms(self, execution_config: ExecutionConfig | None = None) -> CompilePipeline:
        """Decompose to native gates, validate wires and measurements, handle MCMs and adjoint."""
        config = execution_config or ExecutionConfig()
        program = CompilePipeline()
        if config.interface == math.Interface.JAX_JIT:
            program.add_transform(no_counts)
        mcm_method = config.mcm_config.mcm_method
        if mcm_method == "deferred":
            program.add_transform(defer_measurements, allow_postselect=True)
            stop, target = supports_operation_no_mcm, GATE_SET
        else:
            stop, target = supports_operation, GATE_SET_MCM
        program.add_transform(decompose_operations, stopping_condition=stop, device_wires=self.wires,
                              target_gates=target, name=self.name)
        program.add_transform(device_resolve_dynamic_wires, wires=self.wires,
                              allow_resets=mcm_method != "deferred")
        program.add_transform(validate_device_wires, self.wires, name=self.name)
        program.add_transform(validate_measurements, analytic_measurements=_accept_analytic,
                              sample_measurements=_accept_sample, name=self.name)
        if mcm_method == "one-shot":
            program.add_transform(dynamic_one_shot, postselect_mode=config.mcm_config.postselect_mode)
        if config.gradient_method in ("adjoint", "device") or (
                config.gradient_method == "parameter-shift" and config.use_device_gradient):
            name = f"{config.gradient_method} + {self.name}"
            # Device VJPs reach autograd, torch and JAX (not jitted: jax.jit always asks for
            # Jacobians) with one entry per parameter, shaped like it: a trainable broadcast
            # parameter gets a (B,) VJP and a trainable QubitUnitary a (d, d) one. Jacobians have one
            # entry shape per output, so there such tapes are split / decomposed instead.
            native_vjp = bool(config.use_device_jacobian_product) and config.interface in VJP_INTERFACES
            matrix_ok = native_vjp
            program.add_transform(no_sampling, name=name)
            program.add_transform(
                decompose_operations, stopping_condition=lambda op: _adjoint_op(op, matrix_ok), device_wires=self.wires,
                target_gates=GATE_SET, name=name, skip_initial_state_prep=False,
            )
            program.add_transform(validate_measurements, analytic_measurements=_adjoint_measurement, name=name)
            if not native_vjp:
                program.add_transform(expand_trainable_broadcast)
            program.add_transform(validate_adjoint_trainable)
        return program

    # -- execution --------------------------------------------------------------------------------
    def _execute_tape(self, tape: Any, config: ExecutionConfig) -> Any:
        if any(isinstance(m, MeasurementTransform) for m in tape.measurements):
            return self._execute_with_transforms(tape, config)
        try:
            conv = convert_tape(tape, self.wires)
            if conv.dynamic:
                return self._execute_dynamic(tape, conv)
            if conv.postselects:
                return self._execute_postselected(tape, conv, config)
            be = self._backend(len(conv.wire_order))
            plans = plan_measurements(tape, conv.wire_map)
            self._check_forward(be, conv, plans, tape, conv.batch_size or 1)
            state, batched = final_state(conv.circuit, conv.theta, backend=be, dtype=self._c_dtype)
            return tape_results(be, state, batched, plans, tape.shots, self._rng, conv.wire_order, conv.wire_map)
        except QDiffError as exc:
            raise DeviceError(f"{NAME}: {exc}") from exc

    def _execute_with_transforms(self, tape: Any, config: ExecutionConfig) -> Any:
        """Custom measurement transforms process the tape themselves (``mp.process(tape, device)``)."""
        if tape.shots.has_partitioned_shots:
            raise DeviceError(f"{NAME}: measurement transforms with shot vectors are not supported")
        rest = [m for m in tape.measurements if not isinstance(m, MeasurementTransform)]
        rest_values: list[Any] = []
        if rest:
            value = self._execute_tape(tape.copy(measurements=rest), config)
            rest_values = [value] if len(rest) == 1 else list(value)
        it = iter(rest_values)
        out = [m.process(tape, self) if isinstance(m, MeasurementTransform) else next(it) for m in tape.measurements]
        return pack(out)

    @_with_threads
    def execute(self, circuits: Any, execution_config: ExecutionConfig | None = None) -> Any:
        """Run each tape as one (possibly batched) qdiff simulation."""
        config = execution_config or ExecutionConfig()
        return tuple(self._execute_tape(tape, config) for tape in circuits)

    def _execute_postselected(self, tape: Any, conv: Any, config: ExecutionConfig) -> Any:
        """Deferred postselection: project onto the postselected basis states and renormalise.

        Like default.qubit, a postselected branch of probability zero gives NaN. With shots only
        ``postselect_mode="fill-shots"`` applies here (all shots kept); the hardware-like mode needs
        ``mcm_method="one-shot"``.
        """
        if tape.shots and config.mcm_config.postselect_mode != "fill-shots":
            raise DeviceError(
                f"{NAME}: postselection with deferred measurements and shots needs postselect_mode='fill-shots'; "
                "use mcm_method='one-shot' to discard invalid shots"
            )
        self._refuse_mpi("postselected measurements")
        n = len(conv.wire_order)
        be = self._backend(n)
        batch = conv.batch_size
        plans = plan_measurements(tape, conv.wire_map)
        self._check_forward(be, conv, plans, tape, batch or 1)
        state, _ = run_dynamic(conv.dynamic_circuit(), conv.theta, batch=batch, backend=be, dtype=self._c_dtype)
        return tape_results(be, state, batch is not None, plans, tape.shots, self._rng, conv.wire_order,
                            conv.wire_map)

    def _execute_dynamic(self, tape: Any, conv: Any) -> Any:
        """One-shot mid-circuit measurements: every shot is a trajectory, all simulated as one batch."""
        if conv.batch_size is not None:
            raise DeviceError(f"{NAME}: broadcast tapes with mid-circuit measurements must be expanded first")
        self._refuse_mpi("mid-circuit measurements")
        n = len(conv.wire_order)
        total = tape.shots.total_shots
        be = self._backend(n)
        per_state = np.dtype(self._c_dtype).itemsize * 2**n * 3
        chunk = max(1, min(total, STATE_CHUNK_BYTES // per_state))
        plans = plan_measurements(qml.tape.QuantumScript([], tape.measurements, shots=1), conv.wire_map)
        self._check_forward(be, conv, plans, tape, chunk)
        mps = tape.measurements
        shots_out: list[Any] = []
        dc = conv.dynamic_circuit()
        for start in range(0, total, chunk):
            s = min(chunk, total - start)
            state, outcomes = run_dynamic(dc, conv.theta, batch=s, backend=be, dtype=self._c_dtype, rng=self._rng)
            shots_out.extend(_one_shot_rows(be, state, plans, mps, outcomes, self._rng, conv))
        return tuple(shots_out)

    # -- derivatives ------------------------------------------------------------------------------
    def _differentiable(self, tape: Any) -> tuple[Any, list]:
        """Convert a tape for differentiation: (conversion, core measurements); error if not differentiable."""
        conv = convert_tape(tape, self.wires, tape.trainable_params)
        plans = plan_measurements(tape, conv.wire_map)
        if not differentiable_plans(plans):
            raise QuantumFunctionError(
                f"{NAME} adjoint differentiation supports expval, var and probs only, got "
                f"{[type(p.mp).__name__ for p in plans]}"
            )
        return conv, [p.core for p in plans]

    def _jacobian(self, tape: Any, with_values: bool, method: str = "adjoint") -> tuple[Any, Any]:
        import qdiff.gradients as qg

        try:
            conv, ms = self._differentiable(tape)
            be = self._backend(len(conv.wire_order))
            if conv.circuit.num_params:
                values, jacs = qg.value_and_jacobian(conv.circuit, ms, conv.theta, method=method,
                                                     backend=be, dtype=self._c_dtype, memory=self._memory)
            else:
                state, batched = final_state(conv.circuit, conv.theta, backend=be, dtype=self._c_dtype)
                values = [be.to_numpy(v) if batched else be.to_numpy(v)[0] for v in qm.measure(be, state, ms)]
                jacs = [np.zeros(np.shape(v) + (0,)) for v in values]
        except QDiffError as exc:
            raise DeviceError(f"{NAME}: {exc}") from exc
        return (pack(list(values)) if with_values else None), _format_jacobian(tape, conv, jacs)

    @_with_threads
    def compute_derivatives(self, circuits: Any, execution_config: ExecutionConfig | None = None) -> Any:
        """Adjoint Jacobians, one per tape, in PennyLane's nesting (measurement, parameter)."""
        method = _qdiff_method(execution_config)
        return tuple(self._jacobian(tape, False, method)[1] for tape in circuits)

    @_with_threads
    def execute_and_compute_derivatives(self, circuits: Any, execution_config: ExecutionConfig | None = None) -> Any:
        """Results and adjoint Jacobians from one forward pass per tape."""
        method = _qdiff_method(execution_config)
        pairs = [self._jacobian(tape, True, method) for tape in circuits]
        return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)

    def _vjp(self, tape: Any, cotangent: Any, interface: Any, method: str = "adjoint",
             with_values: bool = False) -> tuple[Any, Any]:
        import qdiff.gradients as qg

        try:
            conv, ms = self._differentiable(tape)
            cots = [cotangent] if len(ms) == 1 else list(cotangent)
            cots = [np.real(np.asarray(c, dtype=complex)) if np.iscomplexobj(c) else np.asarray(c, dtype=float)
                    for c in cots]
            be = self._backend(len(conv.wire_order))
            batched = conv.batch_size is not None
            values = None
            if with_values:
                state, batched = final_state(conv.circuit, conv.theta, backend=be, dtype=self._c_dtype)
                values = pack([be.to_numpy(v) if batched else be.to_numpy(v)[0] for v in qm.measure(be, state, ms)])
                del state
            g = None
            if conv.circuit.num_params:
                g = np.asarray(qg.vjp(conv.circuit, ms, conv.theta, cots, method=method, backend=be,
                                      dtype=self._c_dtype, memory=self._memory))
            mats = [conv.slot(t).index for t in tape.trainable_params if conv.slot(t).kind == "matrix"]
            mg = {}
            if mats:
                mg = qg.matrix_vjp(conv.circuit, ms, conv.theta, cots, ops=mats, backend=be, dtype=self._c_dtype)
        except QDiffError as exc:
            raise DeviceError(f"{NAME}: {exc}") from exc
        out = []
        for t in tape.trainable_params:
            slot = conv.slot(t)
            if slot.kind == "theta":
                col = g[..., slot.index]
                if batched and not slot.broadcast:
                    col = col.sum(axis=0)
                out.append(np.asarray(col))
            elif slot.kind == "matrix":
                grad = np.asarray(mg[slot.index])
                if batched and not slot.broadcast:
                    grad = grad.sum(axis=0)
                out.append(_matrix_gradient(grad, interface))
            else:
                out.append(np.zeros_like(np.real(np.asarray(tape.get_parameters(trainable_only=False)[t]))))
        shapes = {np.shape(o) for o in out}
        return values, (RaggedVJP(out) if len(shapes) > 1 else tuple(out))

    @_with_threads
    def compute_vjp(self, circuits: Any, cotangents: Any, execution_config: ExecutionConfig | None = None) -> Any:
        """Vector-Jacobian products by one adjoint sweep per tape."""
        interface = (execution_config or ExecutionConfig()).interface
        method = _qdiff_method(execution_config)
        return tuple(self._vjp(t, c, interface, method)[1] for t, c in zip(circuits, cotangents, strict=True))

    @_with_threads
    def execute_and_compute_vjp(self, circuits: Any, cotangents: Any,
                                execution_config: ExecutionConfig | None = None) -> Any:
        """Results and VJPs."""
        interface = (execution_config or ExecutionConfig()).interface
        method = _qdiff_method(execution_config)
        pairs = [self._vjp(t, c, interface, method, True) for t, c in zip(circuits, cotangents, strict=True)]
        return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)


def _qdiff_method(config: ExecutionConfig | None) -> str:
    """qdiff's gradient method for a device-gradient configuration."""
    return "parameter-shift" if config is not None and config.gradient_method == "parameter-shift" else "adjoint"


def _scalar_gate_trainables(circuit: Any) -> bool:
    """True when every trainable parameter is a scalar parameter of a native, non-matrix gate."""
    n_ops = len(circuit.operations)
    for t in circuit.trainable_params:
        info = circuit.par_info[t]
        op = info["op"]
        if info["op_idx"] >= n_ops or not native_operation(op) or isinstance(op, StatePrepBase):
            return False
        if unwrap(op)[0].name in ("QubitUnitary", "DiagonalQubitUnitary") or _is_broadcast_param(circuit, t):
            return False
    return True


def supports_operation_no_mcm(op: Any) -> bool:
    """Stopping condition when mid-circuit measurements are deferred."""
    return not isinstance(op, (MidMeasure, Conditional)) and supports_operation(op)


def _matrix_gradient(grad: np.ndarray, interface: Any) -> np.ndarray:
    """qdiff's ``dL/dRe + i dL/dIm`` in the convention of the ML framework that asked.

    PyTorch uses it as is; autograd and JAX expect the conjugate.
    """
    name = getattr(interface, "value", str(interface))
    if "torch" in str(name):
        return grad
    return np.conj(grad)


def _format_jacobian(tape: Any, conv: Any, jacs: list[np.ndarray]) -> Any:
    """qdiff Jacobians ``result_shape + (P,)`` -> PennyLane's (measurement, trainable param) nesting."""
    n_params = len(tape.trainable_params)
    per_meas = []
    for jac in jacs:
        jac = np.asarray(jac)
        entries = []
        for t in tape.trainable_params:
            slot = conv.slot(t)
            if slot.kind == "theta":
                entries.append(jac[..., slot.index])
            else:
                entries.append(np.zeros(jac.shape[:-1]))
        per_meas.append(entries[0] if n_params == 1 else tuple(entries))
    return per_meas[0] if len(per_meas) == 1 else tuple(per_meas)


def _one_shot_rows(be: Any, state: Any, plans: list, mps: Any, outcomes: dict, rng: Any, conv: Any) -> list[Any]:
    """Per-trajectory results of a one-shot tape (each row of ``state`` is one shot)."""
    s = state.shape[0]
    sampler = qm.ShotSampler(be, state, 1, rng)
    wo = Wires(conv.wire_order)
    columns: list[list[Any]] = []
    for p, mp in zip(plans, mps, strict=True):
        if mp.mv is not None:  # sample(m) of a mid-circuit measurement, added by dynamic_one_shot
            mcms = list(mp.mv.measurements)
            vals = np.stack([outcomes[m] for m in mcms], axis=1)
            uniq, inv = np.unique(vals, axis=0, return_inverse=True)
            mapped = [mp.mv.concretize(dict(zip(mcms, (int(x) for x in u), strict=True))) for u in uniq]
            inv = np.asarray(inv).reshape(-1)
            columns.append([np.array([mapped[inv[i]]]) for i in range(s)])
            continue
        if p.core is not None and p.kind in ("expval", "var", "probs", "sample", "sample_obs"):
            try:
                v = np.asarray(qm.with_shots(sampler, p.core))
                columns.append([v[i] for i in range(s)])
                continue
            except QDiffError:
                pass
        if p.kind == "counts_obs":
            v = np.asarray(qm.with_shots(sampler, p.core))
            columns.append([counts_from_values(v[i], mp) for i in range(s)])
            continue
        rot = rotated_state(be, state, mp, conv.wire_map)
        bits = sampler.bits(None) if rot is state else qm.ShotSampler(be, rot, 1, rng).bits(None)
        columns.append([mp.process_samples(bits[i], wo) for i in range(s)])
    return [pack([c[i] for c in columns]) for i in range(s)]


__all__ = ["QDiffQubit", "GATE_SET", "BASE_GATES", "no_counts", "expand_trainable_broadcast"]
