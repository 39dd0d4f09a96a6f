"""Small Numba building blocks the kernels share (same ``jit`` options).

* ``softmax_inplace(p, m)``: the one softmax of the kernels (logits in,
  probabilities out), shifted by their largest value ``m``;
* ``cholesky_inplace(A)`` / ``solve_cholesky_inplace(Lc, b)``: a positive
  definite solve without allocation.
"""

from __future__ import annotations

import math

from controller.jit import jit

__all__ = ["softmax_inplace", "cholesky_inplace", "solve_cholesky_inplace"]


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
