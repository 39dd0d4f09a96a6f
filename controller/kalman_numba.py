"""Numba kernels for the default Kalman head: L = 1, per-neuron blocks,
softmax output, Kalman measurement update, exact input features.

Same equations as ``KalmanHead._update_one`` (the NumPy reference), which for
this configuration simplify to (one sample, ``z~ = [h; 1]``, K outputs):

    g_k      = S_k z~                          Cov(w_k, u_k)
    q_k      = z~^T S_k z~                     (21): Sigma_u = diag(q)   (w indep. of z)
    mu_u     = M^T z~                          (19)
    p        = softmax(mu_u)                   (27)
    J        = diag(p) - p p^T
    Sigma_up = diag(q) J                       (33)
    Sigma_p  = J diag(q) J                     (32)
    G        = Sigma_up (Sigma_p + R)^-1,      R = (obs_noise + jitter) I + Sigma_data
    dmu      = G (y - p),  dSigma = -G Sigma_up^T
    a_k      = dmu_k / (q_k + jitter)          Sigma_u^-1 (mu_u^+ - mu_u)
    B_kk     = dSigma_kk / (q_k + jitter)^2    Sigma_u^-1 (Sigma_u^+ - Sigma_u) Sigma_u^-1
    M[:, k] += a_k g_k                         (41)
    S_k     += max(B_kk, -0.999 / q_k) g_k g_k^T   (42), clipped to stay PSD

All work arrays are passed in, so an update allocates nothing.
"""

from __future__ import annotations

import math

import numpy as np

from controller.jit import jit

__all__ = ["Workspace", "update_l1", "probs_l1", "eligible"]


def eligible(config):
    """Whether the Numba kernel implements this head configuration."""
    return (config.n_layers == 1 and config.covariance == "block" and config.output == "softmax"
            and config.update == "kalman" and config.input_var == 0.0)


class Workspace:
    """Preallocated work arrays for ``update_l1`` (one per head)."""

    def __init__(self, n_in1, k, dtype):
        self.zt = np.zeros(n_in1, dtype)
        self.g = np.zeros((k, n_in1), dtype)
        self.q = np.zeros(k, dtype)
        self.p = np.zeros(k, dtype)
        self.A = np.zeros((k, k), dtype)
        self.G = np.zeros((k, k), dtype)
        self.tmp = np.zeros((k, k), dtype)
        self.v = np.zeros(k, dtype)


@jit
def _softmax_into(M, zt, p):
    K = M.shape[1]
    m = -1e300
    for k in range(K):
        acc = 0.0
        for a in range(zt.shape[0]):
            acc += M[a, k] * zt[a]
        p[k] = acc
        if acc > m:
            m = acc
    tot = 0.0
    for k in range(K):
        p[k] = math.exp(p[k] - m)
        tot += p[k]
    for k in range(K):
        p[k] /= tot


@jit
def probs_l1(M, h, zt, p):
    """Predictive mean p = softmax(M^T [h; 1]) into ``p``."""
    d = h.shape[0]
    for a in range(d):
        zt[a] = h[a]
    zt[d] = 1.0
    _softmax_into(M, zt, p)


@jit
def _cholesky_inplace(A):
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
def _solve_lower_t(Lc, b):
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


@jit
def update_l1(M, S, h, y, C, has_C, r, jitter, zt, g, q, p, A, G, tmp, v):
    """One closed-form update of the default head, in place. Returns False (and
    leaves M, S untouched) if the innovation covariance is not positive definite."""
    d = h.shape[0]
    n1 = d + 1
    K = M.shape[1]
    for a in range(d):
        zt[a] = h[a]
    zt[d] = 1.0
    # g_k = S_k z~,  q_k = z~^T g_k
    for k in range(K):
        qk = 0.0
        for a in range(n1):
            acc = 0.0
            for b in range(n1):
                acc += S[k, a, b] * zt[b]
            g[k, a] = acc
            qk += zt[a] * acc
        q[k] = qk
    _softmax_into(M, zt, p)
    # tmp = Sigma_up = diag(q) J, J = diag(p) - p p^T
    for k in range(K):
        for j in range(K):
            Jkj = (p[k] if k == j else 0.0) - p[k] * p[j]
            tmp[k, j] = q[k] * Jkj
    # A = J Sigma_up + R
    for k in range(K):
        for j in range(K):
            acc = 0.0
            for m in range(K):
                Jkm = (p[k] if k == m else 0.0) - p[k] * p[m]
                acc += Jkm * tmp[m, j]
            A[k, j] = acc
    for k in range(K):
        for j in range(k):
            s = 0.5 * (A[k, j] + A[j, k])
            A[k, j] = s
            A[j, k] = s
        A[k, k] += r + jitter
    if has_C:
        for k in range(K):
            for j in range(K):
                A[k, j] += C[k, j]
    if not _cholesky_inplace(A):
        return False
    # G = Sigma_up A^-1: row k of G solves A x = Sigma_up[k, :] (A symmetric)
    for k in range(K):
        for j in range(K):
            v[j] = tmp[k, j]
        _solve_lower_t(A, v)
        for j in range(K):
            G[k, j] = v[j]
    for k in range(K):
        # dmu_k = G[k] (y - p)
        dmu = 0.0
        for j in range(K):
            dmu += G[k, j] * (y[j] - p[j])
        # dSigma_kk = -(G Sigma_up^T)_kk
        dS = 0.0
        for j in range(K):
            dS -= G[k, j] * tmp[k, j]
        den = q[k] + jitter
        ak = dmu / den
        c = dS / (den * den)
        floor = -0.999 / max(q[k], 1e-300)
        if c < floor:
            c = floor
        for a in range(n1):
            M[a, k] += ak * g[k, a]
        for a in range(n1):
            ga = c * g[k, a]
            for b in range(a + 1):
                val = S[k, a, b] + ga * g[k, b]
                S[k, a, b] = val
                S[k, b, a] = val
    return True
