"""PennyLane integration of qdiff: the ``qdiff.qubit`` device.

``qml.device("qdiff.qubit", wires=n)`` finds :class:`QDiffQubit` through the ``pennylane.plugins``
entry point declared in pyproject.toml.
"""

from .qubit import QDiffQubit

__all__ = ["QDiffQubit"]
