"""Small Numba building blocks the kernels share (same ``jit`` options).

* ``softmax_inplace(p, m)``: the one softmax of the kernels (logits in,
  probabilities out), shifted by their largest value ``m``;
* ``cholesky_inplace(A)`` / ``solve_cholesky_inplace(Lc, b)``: a positive
  definite solve without allocation;
* ``as_c(v)``: a row-major view Numba types as strided ("A") typed as C-contiguous,
  so that the loops over it vectorise.
"""

from __future__ import annotations

import math

from numba import types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic

from controller.jit import jit

__all__ = ["softmax_inplace", "cholesky_inplace", "solve_cholesky_inplace", "as_c"]


@intrinsic
def as_c(typingctx, v):
    """The array ``v`` itself, typed C-contiguous ("C" layout), as a borrowed view.

    For a view whose strides are row-major and dense (``as_strided`` of a contiguous
    buffer with strides (c * itemsize, itemsize), ...), which Numba can only type as
    strided ("A"): loops over an "A" array index through run-time strides and do not
    vectorise. Borrowed: the view holds no reference to its buffer (its meminfo is
    null), so passing it around costs no reference counting; it must not outlive the
    call that made it (a kernel's views of its arguments, never returned). Nothing
    is copied or checked: the caller vouches for the strides. The arithmetic is
    unchanged (an array's layout is a type, not a value).
    """
    if not isinstance(v, types.Array):
        return None
    c = v.copy(layout="C")

    def codegen(context, builder, sig, args):
        # the same array struct (data, shape, strides) under the C-layout type, with no
        # meminfo or parent: NRT's reference counting skips a null meminfo
        ary = context.make_array(sig.args[0])(context, builder, value=args[0])
        out = context.make_array(c)(context, builder)
        for field in ("nitems", "itemsize", "data", "shape", "strides"):
            setattr(out, field, getattr(ary, field))
        out.meminfo = context.get_constant_null(types.MemInfoPointer(types.voidptr))
        out.parent = context.get_constant_null(types.pyobject)
        return out._getvalue()

    return c(v), codegen


@jit
def softmax_inplace(p, m):
    """p <- softmax(p), computed as exp(p - m) / sum with ``m`` the largest logit.

    The caller passes ``m`` as it accumulated the logits (in float64), so a
    float32 ``p`` is shifted by the unrounded maximum.
    """
    K = p.shape[0]
    tot = 0.0
    for k in range(K):
        p[k] = math.exp(p[k] - m)
        tot += p[k]
    for k in range(K):
        p[k] /= tot


@jit
def cholesky_inplace(A):
    """Lower Cholesky factor of a symmetric positive definite A, in place. False if it fails."""
    n = A.shape[0]
    for j in range(n):
        s = A[j, j]
        for k in range(j):
            s -= A[j, k] * A[j, k]
        if s <= 0.0:
            return False
        A[j, j] = math.sqrt(s)
        for i in range(j + 1, n):
            s = A[i, j]
            for k in range(j):
                s -= A[i, k] * A[j, k]
            A[i, j] = s / A[j, j]
    for j in range(n):
        for i in range(j):
            A[i, j] = 0.0
    return True


@jit
def solve_cholesky_inplace(Lc, b):
    """Solve (Lc Lc^T) x = b in place (b is a vector)."""
    n = Lc.shape[0]
    for i in range(n):
        s = b[i]
        for k in range(i):
            s -= Lc[i, k] * b[k]
        b[i] = s / Lc[i, i]
    for i in range(n - 1, -1, -1):
        s = b[i]
        for k in range(i + 1, n):
            s -= Lc[k, i] * b[k]
        b[i] = s / Lc[i, i]
