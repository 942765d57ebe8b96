"""LLVM intrinsics the numba kernels share."""

from __future__ import annotations

from numba.core import types
from numba.extending import intrinsic


@intrinsic
def popcount(typingctx, v):  # pragma: no cover - compiled
    """Number of set bits of an integer, in its own type.

    LLVM's ``ctpop``: one instruction where the CPU has ``popcnt``.
    """
    if not isinstance(v, types.Integer):
        return None
    t = types.unliteral(v)
    sig = t(t)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen
