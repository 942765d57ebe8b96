"""One error hierarchy for qdiff: every bad input raises a subclass of :class:`QDiffError`."""

from __future__ import annotations


class QDiffError(Exception):
    """Base class of every error qdiff raises on purpose."""


class WireError(QDiffError, ValueError):
    """Wires out of range, repeated within one operation, or otherwise malformed."""


class ParameterError(QDiffError, ValueError):
    """Wrong number, shape or value (NaN/inf) of gate or circuit parameters."""


class NotUnitaryError(QDiffError, ValueError):
    """A matrix given as a gate is not unitary to the stated tolerance."""


class NotHermitianError(QDiffError, ValueError):
    """A matrix given as an observable is not Hermitian to the stated tolerance."""


class StateError(QDiffError, ValueError):
    """A state vector of the wrong length or not normalised."""


class ShotsError(QDiffError, ValueError):
    """An invalid number of shots, or a measurement that needs (or forbids) shots."""


class UnsupportedOperationError(QDiffError, TypeError):
    """An operation, observable or measurement qdiff does not know; the message names it."""


class DifferentiationError(QDiffError, ValueError):
    """A gradient that cannot be taken as asked (non-differentiable output, adjoint with shots, ...)."""


class BackendError(QDiffError, RuntimeError):
    """A backend that is not available (no CuPy, no GPU) or failed to initialise."""


class MemoryLimitError(QDiffError, MemoryError):
    """A state would not fit in free memory; raised before anything is allocated."""


class QDiffWarning(UserWarning):
    """Something works, but slower or differently than it could (for example no kernel cache)."""
