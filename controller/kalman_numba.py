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

Arguments come in named groups, plain tuples whose field order the
namedtuples below define (``Posterior``, ``Sample``, ``Noise``, ``Work``); a
kernel unpacks each group by name in its first lines. Plain tuples, because
Numba types a tuple of arrays in C when it is called from Python but a
namedtuple in Python (about 1.5 us more per group of eight arrays, measured
with Numba 0.68), which would double the update's latency.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from controller.jit import jit
from controller.numba_ops import cholesky_inplace, solve_cholesky_inplace, softmax_inplace

__all__ = ["Posterior", "Sample", "Noise", "Work", "new_work", "eligible", "update_one_layer",
           "softmax_probs"]

#: the layer's posterior: mean weights M (n1, K) and per-neuron covariances S (K, n1, n1), updated in place
Posterior = namedtuple("Posterior", "M S")
#: one labelled sample: features h (d,), target y (K,), label-noise covariance C (K, K) and whether C applies
Sample = namedtuple("Sample", "h y C has_C")
#: measurement noise r (R = r I) and jitter, as scalars of the head's dtype
Noise = namedtuple("Noise", "r jitter")
#: preallocated work arrays: z~ (n1,), g (K, n1), q (K,), p (K,), A, G, tmp (K, K), v (K,)
Work = namedtuple("Work", "zt g q p A G tmp v")


def eligible(config):
    """Whether the Numba kernel implements this head configuration."""
    return (config.n_layers == 1 and config.covariance == "block" and config.output == "softmax"
            and config.update == "kalman" and config.input_var == 0.0)


def new_work(n_in1, k, dtype):
    """Zeroed ``Work`` arrays for a layer with n_in1 = d + 1 inputs and k outputs."""
    return Work(np.zeros(n_in1, dtype), np.zeros((k, n_in1), dtype), np.zeros(k, dtype), np.zeros(k, dtype),
                np.zeros((k, k), dtype), np.zeros((k, k), dtype), np.zeros((k, k), dtype), np.zeros(k, dtype))


@jit
def _logits_softmax(M, zt, p):
    """p = softmax(M^T z~)."""
    m = -1e300
    for k in range(M.shape[1]):
        acc = 0.0
        for a in range(zt.shape[0]):
            acc += M[a, k] * zt[a]
        p[k] = acc
        if acc > m:
            m = acc
    softmax_inplace(p, m)


@jit
def _augment(h, zt):
    """z~ = [h; 1]."""
    d = h.shape[0]
    for a in range(d):
        zt[a] = h[a]
    zt[d] = 1.0


@jit
def softmax_probs(M, h, zt, p):
    """Predictive mean p = softmax(M^T [h; 1]) into ``p`` (zt: work array for z~)."""
    _augment(h, zt)
    _logits_softmax(M, zt, p)


@jit
def _gain_inputs(S, zt, g, q):
    """g_k = S_k z~ and q_k = z~^T g_k for every neuron k."""
    n1 = zt.shape[0]
    for k in range(S.shape[0]):
        qk = 0.0
        for a in range(n1):
            acc = 0.0
            for b in range(n1):
                acc += S[k, a, b] * zt[b]
            g[k, a] = acc
            qk += zt[a] * acc
        q[k] = qk


@jit
def _innovation_cov(q, p, C, has_C, r, jitter, tmp, A):
    """tmp = Sigma_up = diag(q) J and A = J Sigma_up + R (symmetrised), J = diag(p) - p p^T."""
    K = p.shape[0]
    for k in range(K):
        for j in range(K):
            Jkj = (p[k] if k == j else 0.0) - p[k] * p[j]
            tmp[k, j] = q[k] * Jkj
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


@jit
def _gain(A, tmp, G, v):
    """G = Sigma_up A^-1 (A holds its Cholesky factor): row k of G solves A x = Sigma_up[k, :]."""
    K = A.shape[0]
    for k in range(K):
        for j in range(K):
            v[j] = tmp[k, j]
        solve_cholesky_inplace(A, v)
        for j in range(K):
            G[k, j] = v[j]


@jit
def _weights_step(M, S, y, p, q, g, G, tmp, jitter):
    """(41), (42) for every neuron k from the output innovation."""
    K, n1 = g.shape
    for k in range(K):
        dmu = 0.0                                   # dmu_k = G[k] (y - p)
        for j in range(K):
            dmu += G[k, j] * (y[j] - p[j])
        dS = 0.0                                    # dSigma_kk = -(G Sigma_up^T)_kk
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


@jit
def update_one_layer(post, sample, noise, work):
    """One closed-form update of the one-layer softmax head, in place.

    Groups (plain tuples in the field order of ``Posterior``, ``Sample``,
    ``Noise``, ``Work``). Returns False (and leaves M, S untouched) if the
    innovation covariance is not positive definite.
    """
    M, S = post
    h, y, C, has_C = sample
    r, jitter = noise
    zt, g, q, p, A, G, tmp, v = work
    _augment(h, zt)
    _gain_inputs(S, zt, g, q)
    _logits_softmax(M, zt, p)
    _innovation_cov(q, p, C, has_C, r, jitter, tmp, A)
    if not cholesky_inplace(A):
        return False
    _gain(A, tmp, G, v)
    _weights_step(M, S, y, p, q, g, G, tmp, jitter)
    return True
