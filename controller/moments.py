"""Closed-form moment propagation through the Bayesian head's layers (NumPy reference).

Every function is batched over a leading axis N (states). Symbols follow the
paper (Jing et al. 2025), with the corrections in docs/relu-moments.md:

* ``mu_z``, ``Sigma_z``: mean and covariance of a layer input ``z``;
  ``z~ = [z; 1]`` appends the bias input;
* ``M``: mean weight matrix ``(n_in + 1, n_out)``, column k = neuron k's weights;
* ``S``: per-neuron weight covariances ``(n_out, n_in + 1, n_in + 1)``, or
  ``C``: dense covariance ``(n_out, n_in + 1, n_out, n_in + 1)``,
  ``C[k, a, j, b] = Cov(W[a, k], W[b, j])``;
* ``u = W^T z~``: pre-activation, ``mu_u``, ``Sigma_u``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

__all__ = ["augment", "augment_mean", "linear_moments", "weight_u_cross", "relu_moments", "softmax_moments", "softmax"]

_SQRT_2PI = math.sqrt(2.0 * math.pi)
#: smallest standard deviation used in mu / s (a deterministic unit)
_TINY_STD = 1e-150


def augment(mu_z, Sigma_z):
    """z~ = [z; 1]: mean (N, n+1) and covariance (N, n+1, n+1) with a zero bias row/column."""
    N, n = mu_z.shape
    mu = augment_mean(mu_z)
    S = np.zeros((N, n + 1, n + 1), dtype=Sigma_z.dtype)
    S[:, :n, :n] = Sigma_z
    return mu, S


def augment_mean(mu_z):
    """The mean of z~ = [z; 1] alone: (N, n) -> (N, n+1)."""
    return np.concatenate([mu_z, np.ones((mu_z.shape[0], 1), dtype=mu_z.dtype)], axis=1)


def linear_moments(M, W_cov, mu_zt, Sigma_zt, dense=False):
    """(19), (21): moments of ``u = W^T z~`` with W independent of z~.

    ``mu_u = M^T mu_z~``
    ``Sigma_u = M^T Sigma_z~ M + T``, where the weight term is
    ``T = diag_k tr(S_k E[z~ z~^T])`` for per-neuron blocks and
    ``T[k, j] = sum_ab C[k, a, j, b] E[z~_a z~_b]`` for a dense covariance.

    Returns ``mu_u`` (N, n_out), ``Sigma_u`` (N, n_out, n_out).
    """
    mu_u = mu_zt @ M                                                   # (19)  [N, n_out]
    Ezz = Sigma_zt + mu_zt[:, :, None] * mu_zt[:, None, :]             # E[z~ z~^T]  [N, n1, n1]
    Sigma_u = np.einsum("ak,nab,bj->nkj", M, Sigma_zt, M)              # M^T Sigma_z~ M
    if dense:
        Sigma_u += np.einsum("kajb,nab->nkj", W_cov, Ezz)
    else:
        idx = np.arange(M.shape[1])
        Sigma_u[:, idx, idx] += np.einsum("kab,nab->nk", W_cov, Ezz)   # (21) diag_k tr(S_k E[z~z~^T])
    return mu_u, Sigma_u


def weight_u_cross(W_cov, mu_zt, dense=False):
    """Cross-covariance of the weights with ``u`` (one state, ``mu_zt`` (n1,)).

    Per-neuron: ``Cov(w_k, u_j) = delta_kj S_k mu_z~``; returned as ``g``
    (n_out, n1) with ``g[k] = S_k mu_z~``.
    Dense: ``Cov(W[a, k], u_j) = sum_b C[k, a, j, b] mu_z~[b]``; returned as
    (n_out, n1, n_out).
    """
    if dense:
        return np.einsum("kajb,b->kaj", W_cov, mu_zt)
    return np.einsum("kab,b->ka", W_cov, mu_zt)


def _hermite_he(n, x):
    """Probabilists' Hermite polynomial He_n(x) by the three-term recurrence."""
    h0, h1 = np.ones_like(x), x
    if n == 0:
        return h0
    for k in range(1, n):
        h0, h1 = h1, x * h1 - k * h0
    return h1


def relu_moments(mu_u, Sigma_u, order=2, cross="stein"):
    """(22), (23): moments of ``z = max(0, u)`` for Gaussian ``u``.

    Mean (22), exact: ``mu_z = mu Phi(a) + s phi(a)``, ``s = sqrt(Sigma_u[j, j])``, ``a = mu / s``.

    Covariance: the diagonal is exact,
    ``Var z_j = (mu^2 + s^2) Phi(a) + mu s phi(a) - mu_z^2``;
    off the diagonal, the Mehler (Hermite) series of the bivariate Gaussian,
    ``Cov(z_j, z_k) = sum_{m>=1} rho^m / m! E[f_j^(m)] E[f_k^(m)]`` with
    ``rho = Sigma_u[j, k] / (s_j s_k)``, ``E[f^(1)] = s Phi(a)`` and
    ``E[f^(m)] = s He_{m-2}(-a) phi(a)`` for m >= 2, truncated at ``order``.
    ``order = 2`` is the paper's (23) with its second-order term read as
    ``Sigma_u[j, k]^2 phi_j phi_k / (2 s_j s_k)`` (see docs/relu-moments.md).

    Cross-covariance ``Sigma_{u, z}`` (rows u, columns z):
    ``stein``: exact by Stein's lemma, ``Sigma_u diag(Phi(a))``;
    ``diagonal``: the paper's (47), corrected, ``diag(s^2 Phi(a))``.

    Returns ``mu_z`` (N, n), ``Sigma_z`` (N, n, n), ``Sigma_uz`` (N, n, n).
    """
    var = np.maximum(np.diagonal(Sigma_u, axis1=1, axis2=2), 0.0)
    s = np.maximum(np.sqrt(var), _TINY_STD)
    a = mu_u / s
    Phi = ndtr(a)
    phi = np.exp(-0.5 * a * a) / _SQRT_2PI
    mu_z = mu_u * Phi + s * phi                                        # (22)
    # m = 1 term of the series: Phi_j Sigma_u[j, k] Phi_k
    Sigma_z = Phi[:, :, None] * Sigma_u * Phi[:, None, :]
    if order >= 2:
        rho = np.clip(Sigma_u / (s[:, :, None] * s[:, None, :]), -1.0, 1.0)
        rho_m = rho.copy()
        fact = 1.0
        for m in range(2, order + 1):
            rho_m = rho_m * rho
            fact *= m
            e = s * _hermite_he(m - 2, -a) * phi                           # E[f^(m)]
            Sigma_z = Sigma_z + (rho_m / fact) * e[:, :, None] * e[:, None, :]
    idx = np.arange(mu_u.shape[1])
    Sigma_z[:, idx, idx] = np.maximum((mu_u**2 + var) * Phi + mu_u * s * phi - mu_z**2, 0.0)
    if cross == "stein":
        Sigma_uz = Sigma_u * Phi[:, None, :]
    else:
        Sigma_uz = np.zeros_like(Sigma_u)
        Sigma_uz[:, idx, idx] = var * Phi                              # (47) corrected: s^2 Phi(a)
    return mu_z, Sigma_z, Sigma_uz


def softmax(x):
    """Softmax over the last axis (max-shifted for stability)."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_moments(mu_u, Sigma_u):
    """(27), (32), (33): first-order Taylor moments of ``p = softmax(u)``.

    ``mu_p = softmax(mu_u)``, ``J = diag(mu_p) - mu_p mu_p^T``,
    ``Sigma_p = J Sigma_u J^T``, ``Sigma_{u, p} = Sigma_u J^T``.
    """
    p = softmax(mu_u)                                                  # (27)
    J = np.einsum("nk,kj->nkj", p, np.eye(p.shape[1])) - p[:, :, None] * p[:, None, :]
    Sigma_up = Sigma_u @ J                                             # (33), J symmetric
    Sigma_p = J @ Sigma_up                                             # (32)
    return p, Sigma_p, Sigma_up
