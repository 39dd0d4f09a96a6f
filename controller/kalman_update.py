"""The Kalman Bayesian head's equations as plain functions (NumPy reference).

T_2's linear layer ``W_O`` is replaced by an L-layer ReLU network whose weights
are Gaussian. A sample (features ``h``, target ``y``) updates the weight
posterior in closed form (Algorithm 2 of the paper, with the corrections in
docs/relu-moments.md and docs/output-update.md):

forward (filtering), layer i = 1..L, ``z^0 = h``:  ``forward``
    (19), (21)  mu_u, Sigma_u of ``u^i = W^i^T [z^{i-1}; 1]``
    (22), (23)  mu_z, Sigma_z of ``z^i = ReLU(u^i)`` (hidden layers), and
                Sigma_{u,z} (Stein or the paper's diagonal (47))
    (27), (32), (33) softmax output: mu_p, Sigma_p, Sigma_{u,p}

backward (smoothing), layer i = L..1:  ``update``
    output      ``update="kalman"``: G = Sigma_{u,p} (Sigma_p + R)^-1,
                mu_u^+ = mu_u + G (y - mu_p), Sigma_u^+ = Sigma_u - G Sigma_{p,u};
                ``update="paper"``: (37)-(39) with mu_p^+ = y, Sigma_p^+ = Sigma_data
    weights     (40)-(42)  K_w = Sigma_{w,u} Sigma_u^-1,
                mu_w^+ = mu_w + K_w (mu_u^+ - mu_u),
                Sigma_w^+ = Sigma_w + K_w (Sigma_u^+ - Sigma_u) K_w^T
    input       (replaces (43)-(45)) K_z = Sigma_{z,u} Sigma_u^-1, same innovation
    ReLU        (37)-(39)  K_u = Sigma_{u,z} Sigma_z^-1 from z^{i-1}'s update to u^{i-1}'s

With per-neuron blocks, ``Sigma_{w_k, u} = S_k mu_z~ e_k^T``, so the weight
update of neuron k is a rank-one term in ``g_k = S_k mu_z~``.

The posterior is a list of ``Layer`` (mean ``M``, covariance ``S``); ``config``
is a ``HeadConfig`` (only its fields are read). ``prior_layers`` builds the
prior (34)-(36); ``update`` changes the layers in place (an entry's ``S`` may
be replaced by a new array). ``KalmanHead`` (``controller/kalman_head.py``)
holds the state; the Numba kernel of the default softmax configuration is
``controller/kalman_numba.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import cho_solve

from controller import moments as mo

__all__ = ["Layer", "Moments", "prior_layers", "mean_network", "forward", "forward_mean", "update"]


@dataclass
class Layer:
    """One Bayesian layer's weight posterior."""

    M: np.ndarray               # mean weights (n_in + 1, n_out)
    S: np.ndarray               # (n_out, n1, n1) per-neuron, or (n_out, n1, n_out, n1) dense

    def copy(self):
        """An independent copy of the layer's mean and covariance."""
        return Layer(self.M.copy(), self.S.copy())


@dataclass
class Moments:
    """Forward moments of one pass (batched over N states)."""

    mu_zt: list = field(default_factory=list)      # per layer input z~: (N, n1)
    Sigma_zt: list = field(default_factory=list)   # (N, n1, n1)
    mu_u: list = field(default_factory=list)       # per layer (N, n_out)
    Sigma_u: list = field(default_factory=list)    # (N, n_out, n_out)
    Sigma_uz: list = field(default_factory=list)   # hidden layers: Cov(u, ReLU(u))
    mu_p: np.ndarray = None                        # output mean (N, n_out_L)
    Sigma_p: np.ndarray = None
    Sigma_up: np.ndarray = None


# ---------------------------------------------------------------- prior
def prior_layers(W_O, config):
    """Prior (34)-(36): the mean network reproduces ``W_O^T [h; 1]`` (before the output).

    L = 1: ``M^1 = W_O``. L >= 2, hidden width n >= 2d: layer 1 puts a
    positive copy of h in units 0..d-1 and a negative copy in units
    n-d..n-1 (34); each middle layer adds the copies back and splits them
    again (35); the last layer adds them back and applies W_O (36):
    ``ReLU(h) - ReLU(-h) = h``. Units d..n-d-1 start with zero weights (or
    seeded random input weights, ``free_units="random"``). Weight covariances
    are ``prior_var[i] I`` (independent per neuron, or one dense block).
    """
    dt = np.dtype(config.dtype)
    layers = []
    for i, M in enumerate(_prior_means(W_O, config)):
        n1, k = M.shape
        v = config.layer_prior_var(i)
        if config.covariance == "block":
            S = np.broadcast_to(v * np.eye(n1), (k, n1, n1)).copy()
        else:
            S = (v * np.eye(k * n1)).reshape(k, n1, k, n1)
        layers.append(Layer(M.astype(dt), S.astype(dt)))
    return layers


def _prior_means(W_O, config):
    d, n_out = W_O.shape[0] - 1, W_O.shape[1]
    L, n = config.n_layers, config.hidden_width(d)
    if L >= 2 and n < 2 * d:
        raise ValueError(f"hidden: expected a width >= 2 d = {2 * d} but found {n}")
    if config.output == "gaussian" and n_out != 1:
        raise ValueError(f"W_O: the gaussian head has one output (the force) but found {n_out} columns")
    if L == 1:
        return [W_O.copy()]
    # split: z = [h; 0; -h] pattern, R maps z back to h = z[:d] - z[n-d:]
    split = np.zeros((d, n))
    split[:, :d] = np.eye(d)
    split[:, n - d:] = -np.eye(d)
    rng = np.random.default_rng(config.seed)
    free = slice(d, n - d)

    def free_weights(M):
        # random input weights for the free units (output weights stay zero)
        if config.free_units == "random" and n > 2 * d:
            M[:, free] = rng.normal(0.0, 1.0 / np.sqrt(M.shape[0]), (M.shape[0], n - 2 * d))
        return M

    means = [free_weights(np.vstack([split, np.zeros((1, n))]))]                                 # (34)
    for _ in range(1, L - 1):
        means.append(free_weights(np.vstack([split.T @ split, np.zeros((1, n))])))               # (35)
    means.append(np.vstack([split.T @ W_O[:d], W_O[d:]]))                                        # (36)
    return means


# ---------------------------------------------------------------- forward
def mean_network(layers, H, dtype):
    """The network evaluated at the mean weights (no uncertainty): H (N, d) -> outputs (N, n_out)."""
    z = np.asarray(H, dtype=dtype)
    for i, layer in enumerate(layers):
        u = z @ layer.M[:-1] + layer.M[-1]
        z = np.maximum(u, 0.0) if i < len(layers) - 1 else u
    return z


def forward(layers, H, config):
    """Moment propagation (filtering) for a batch of features H (N, d) -> ``Moments``."""
    dense = config.covariance == "dense"
    dt = np.dtype(config.dtype)
    H = np.asarray(H, dtype=dt)
    N, d = H.shape
    mu_z = H
    Sigma_z = np.broadcast_to(config.input_var * np.eye(d, dtype=dt), (N, d, d))
    mom = Moments()
    for i, layer in enumerate(layers):
        mu_zt, Sigma_zt = mo.augment(mu_z, Sigma_z)
        mu_u, Sigma_u = mo.linear_moments(layer.M, layer.S, mu_zt, Sigma_zt, dense)
        mom.mu_zt.append(mu_zt)
        mom.Sigma_zt.append(Sigma_zt)
        mom.mu_u.append(mu_u)
        mom.Sigma_u.append(Sigma_u)
        if i < len(layers) - 1:
            mu_z, Sigma_z, Sigma_uz = mo.relu_moments(mu_u, Sigma_u, config.relu_order, config.cross)
            mom.Sigma_uz.append(Sigma_uz)
    if config.output == "softmax":
        mom.mu_p, mom.Sigma_p, mom.Sigma_up = mo.softmax_moments(mu_u, Sigma_u)  # (27), (32), (33)
    else:
        mom.mu_p, mom.Sigma_p, mom.Sigma_up = mu_u, Sigma_u, Sigma_u
    return mom


def forward_mean(layers, H, config):
    """``forward(layers, H, config).mu_p`` alone: the predictive mean (N, n_out).

    With one layer the mean needs no covariance: ``mu_u = M^T mu_z~`` and, for
    the softmax output, ``softmax(mu_u)`` -- the very operations of ``forward``
    on the same arrays, so the same floats, without the (N, n1, n1) moments
    ``act`` never reads. With more layers the ReLU means depend on the
    covariances, and the full ``forward`` runs.
    """
    if len(layers) != 1:
        return forward(layers, H, config).mu_p
    mu_u = mo.augment_mean(np.asarray(H, dtype=np.dtype(config.dtype))) @ layers[0].M
    return mo.softmax(mu_u) if config.output == "softmax" else mu_u


# ---------------------------------------------------------------- backward
def update(layers, h, y, data_cov, config, obs_noise=None):
    """Algorithm 2, lines 12-31, for one sample, in place on ``layers``.

    ``h`` (d,), ``y`` (n_out,) and ``data_cov`` (n_out, n_out) are finite
    arrays of the head's dtype; ``obs_noise`` overrides the configured R (the
    gaussian head's learned noise).
    """
    r = config.obs_noise if obs_noise is None else obs_noise
    mom = forward(layers, h[None, :], config)
    mu_u_post, Su_post = _output_step(mom, y, data_cov, r, config)
    for i in range(len(layers) - 1, -1, -1):
        mu_z_post, Sz_post = _layer_step(layers[i], mom, i, mu_u_post, Su_post, config)
        if i == 0:
            break
        mu_u_post, Su_post = _relu_step(mom, i, mu_z_post, Sz_post, config)


def _output_step(mom, y, data_cov, r, config):
    """Posterior mean and covariance of the last pre-activation u^L given the target."""
    p, Sp, Sup = mom.mu_p[0], mom.Sigma_p[0], mom.Sigma_up[0]
    mu_u, Su = mom.mu_u[-1][0], mom.Sigma_u[-1][0]
    eye = np.eye(len(p), dtype=np.dtype(config.dtype))
    if config.update == "kalman":
        # G = Sigma_{u,p} (Sigma_p + R)^-1, R = obs_noise I + Sigma_data
        G = _solve_right(Sup, Sp + (r + config.jitter) * eye + data_cov)
        mu_u_post = mu_u + G @ (y - p)
        Su_post = Su - G @ Sup.T
    else:
        # (37)-(39) with z^L = p: K_u = Sigma_{u,p} Sigma_p^-1, mu_p^+ = y, Sigma_p^+ = Sigma_data
        K = _solve_right(Sup, Sp + config.jitter * eye)
        mu_u_post = mu_u + K @ (y - p)
        Su_post = Su + K @ (data_cov - Sp) @ K.T
    return mu_u_post, _sym(Su_post)


def _layer_step(layer, mom, i, mu_u_post, Su_post, config):
    """(40)-(42) for layer i's weights; returns the posterior of its input z^{i-1}."""
    mu_u, Su = mom.mu_u[i][0], mom.Sigma_u[i][0]
    mu_zt, Szt = mom.mu_zt[i][0], mom.Sigma_zt[i][0]
    # a = Sigma_u^-1 (mu_u^+ - mu_u),  B = Sigma_u^-1 (Sigma_u^+ - Sigma_u) Sigma_u^-1
    a, B = _innovation(Su, mu_u_post - mu_u, Su_post - Su, config.jitter)
    # input z^{i-1}: K_z = Sigma_{z,u} Sigma_u^-1 with Sigma_{z,u} = Sigma_z M (old mean)
    n_in = layer.M.shape[0] - 1
    Szu = Szt[:n_in] @ layer.M
    mu_z_post = mu_zt[:n_in] + Szu @ a
    Sz_post = Szt[:n_in, :n_in] + Szu @ B @ Szu.T
    dense = config.covariance == "dense"
    g = mo.weight_u_cross(layer.S, mu_zt, dense)
    if dense:
        layer.M += np.einsum("kaj,j->ak", g, a)
        layer.S += np.einsum("kaj,jl,mbl->kamb", g, B, g)
        P = layer.S.shape[0] * layer.S.shape[1]
        flat = _sym(layer.S.reshape(P, P))
        np.fill_diagonal(flat, np.maximum(np.diagonal(flat), 0.0))
        layer.S[...] = flat.reshape(layer.S.shape)          # in place: a kernel's views stay valid
    else:
        # neuron k: mu_k += g_k a_k,  S_k += B_kk g_k g_k^T  (rank one)
        layer.M += g.T * a[None, :]
        c = _psd_rank_one_factor(np.diagonal(B), g, mu_zt)
        layer.S += c[:, None, None] * g[:, :, None] * g[:, None, :]
        layer.S[...] = _sym(layer.S)
    return mu_z_post, Sz_post


def _relu_step(mom, i, mu_z_post, Sz_post, config):
    """(37)-(39) back through the ReLU of layer i-1: K_u = Sigma_{u,z} Sigma_z^-1."""
    mu_zt, Szt = mom.mu_zt[i][0], mom.Sigma_zt[i][0]
    n_in = mu_z_post.shape[0]
    Suz = mom.Sigma_uz[i - 1][0]
    Sz = Szt[:n_in, :n_in]
    K = _solve_right(Suz, Sz + config.jitter * np.eye(n_in, dtype=np.dtype(config.dtype)))
    mu_u_post = mom.mu_u[i - 1][0] + K @ (mu_z_post - mu_zt[:n_in])
    Su_post = _sym(mom.Sigma_u[i - 1][0] + K @ (Sz_post - Sz) @ K.T)
    return mu_u_post, Su_post


# ---------------------------------------------------------------- linear algebra
def _sym(A):
    return 0.5 * (A + np.swapaxes(A, -1, -2))


def _cholesky(A, jitter):
    """Cholesky factor of a symmetric matrix, adding jitter (growing x10) until it succeeds."""
    A = _sym(A)
    scale = max(float(np.mean(np.abs(np.diagonal(A)))), 1e-300)
    extra = jitter
    for _ in range(12):
        try:
            return np.linalg.cholesky(A + extra * np.eye(A.shape[0], dtype=A.dtype))
        except np.linalg.LinAlgError:
            extra = max(extra * 10.0, 1e-12 * scale)
    raise np.linalg.LinAlgError("matrix is not positive definite even with jitter")


def _solve_right(B, A, jitter=0.0):
    """B A^-1 for a symmetric positive definite A, by Cholesky."""
    Lc = _cholesky(A, jitter)
    # B A^-1 = (A^-1 B^T)^T
    return cho_solve((Lc, True), B.T).T


def _innovation(Su, dmu, dS, jitter):
    """a = Sigma_u^-1 dmu and B = Sigma_u^-1 dS Sigma_u^-1 (one Cholesky)."""
    Lc = _cholesky(Su, jitter)
    a = cho_solve((Lc, True), dmu)
    X = cho_solve((Lc, True), dS)
    B = cho_solve((Lc, True), X.T)
    return a, _sym(B)


def _psd_rank_one_factor(c, g, mu_zt):
    """Clip the rank-one coefficients so that S_k + c_k g_k g_k^T stays PSD.

    With g_k = S_k mu~, S_k + c g g^T is PSD iff c >= -1 / (mu~^T S_k mu~)
    (and mu~^T S_k mu~ = g_k . mu~). A downdate is capped at 99.9 % of that.
    """
    q = g @ mu_zt                                                      # mu~^T S_k mu~ per neuron
    floor = -0.999 / np.maximum(q, 1e-300)
    return np.maximum(c, floor)
