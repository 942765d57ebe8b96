"""One rank raises in the middle of a run: the job must end (not hang) with a clear message."""

from __future__ import annotations

import numpy as np

import qdiff as qd
from qdiff.distributed import MPIBackend
from qdiff.observables import Z

be = MPIBackend()
c = qd.Circuit(6)
for w in range(6):
    c.add("RY", 0.3 * w, wires=(w,))
c.add("CNOT", wires=(0, 5))
qd.expval(c, Z(0), backend=be)  # a collective run first
if be.rank == be.size - 1:
    raise RuntimeError("planted failure on the last rank")
qd.expval(c, Z(0) @ Z(5), backend=be)  # the other ranks would wait here forever without the abort
print("UNREACHABLE", np.pi)
