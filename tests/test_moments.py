"""Forward moment propagation against Monte Carlo (10^5 - 10^6 samples)."""

import numpy as np
import pytest

from controller import moments as mo
from controller.kalman_head import HeadConfig, KalmanHead


def _random_psd(rng, n, scale):
    A = rng.normal(size=(n, n))
    return scale * (A @ A.T / n + 0.1 * np.eye(n))


@pytest.mark.parametrize("seed", [0, 1])
def test_relu_moments_match_monte_carlo(seed):
    rng = np.random.default_rng(seed)
    n, N = 5, 400_000
    mu = rng.normal(size=n) * 0.7
    S = _random_psd(rng, n, 1.0)
    u = rng.multivariate_normal(mu, S, size=N)
    z = np.maximum(u, 0.0)
    mz, Sz, Suz = mo.relu_moments(mu[None], S[None], order=40, cross="stein")
    se_mean = z.std(axis=0) / np.sqrt(N)
    assert np.all(np.abs(mz[0] - z.mean(axis=0)) < 5 * se_mean)
    C = np.cov(z.T)
    # standard error of a sample covariance ~ sqrt((s_jj s_kk + s_jk^2) / N)
    se_cov = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C**2) / N)
    assert np.all(np.abs(Sz[0] - C) < 5 * se_cov), np.abs(Sz[0] - C) / se_cov
    cross = (u - u.mean(0)).T @ (z - z.mean(0)) / N
    assert np.all(np.abs(Suz[0] - cross) < 5 * se_cov)


def test_relu_series_converges_and_paper_order_is_close():
    mu = np.array([[0.3, -0.2]])
    S = np.array([[[1.0, 0.95], [0.95, 1.0]]])
    exact = mo.relu_moments(mu, S, order=60)[1][0, 0, 1]
    assert abs(mo.relu_moments(mu, S, order=30)[1][0, 0, 1] - exact) < 1e-3
    assert abs(mo.relu_moments(mu, S, order=2)[1][0, 0, 1] - exact) < 0.01
    # diagonal is exact at any order
    d2 = mo.relu_moments(mu, S, order=2)[1][0, 0, 0]
    d60 = mo.relu_moments(mu, S, order=60)[1][0, 0, 0]
    assert d2 == d60


def test_diagonal_cross_covariance_is_corrected_eq47():
    # (47) as corrected equals s^2 Phi(mu / s) on the diagonal, and Stein's diagonal agrees
    mu = np.array([[0.4, -1.0]])
    S = np.array([[[2.0, 0.3], [0.3, 0.5]]])
    _, _, diag = mo.relu_moments(mu, S, cross="diagonal")
    _, _, stein = mo.relu_moments(mu, S, cross="stein")
    np.testing.assert_allclose(np.diag(diag[0]), np.diag(stein[0]))
    assert diag[0, 0, 1] == 0.0 and stein[0, 0, 1] != 0.0


def _sample_network(head, h, n_draws, rng):
    """Draw weights from the head's Gaussian and push h through the network."""
    z = np.repeat(h[None, :], n_draws, axis=0)
    outs = []
    for i, layer in enumerate(head.layers):
        n1, k = layer.M.shape
        W = np.empty((n_draws, n1, k))
        for j in range(k):
            W[:, :, j] = rng.multivariate_normal(layer.M[:, j], layer.S[j], size=n_draws)
        zt = np.hstack([z, np.ones((n_draws, 1))])
        u = np.einsum("na,nak->nk", zt, W)
        outs.append(u)
        z = np.maximum(u, 0.0)
    return outs


def test_two_layer_forward_matches_monte_carlo():
    rng = np.random.default_rng(3)
    d, n, k = 3, 8, 4
    W_O = rng.normal(size=(d + 1, k))
    head = KalmanHead.from_pretrained(W_O, HeadConfig(n_layers=2, hidden=n, prior_var=(0.3, 0.2),
                                                     free_units="random", relu_order=40, output="linear"))
    for layer in head.layers:                                     # generic per-neuron covariances
        for j in range(layer.S.shape[0]):
            layer.S[j] = _random_psd(rng, layer.S.shape[1], 0.2)
    h = rng.normal(size=d)
    mom = head.forward(h[None])
    N = 200_000
    u1, u2 = _sample_network(head, h, N, rng)
    for name, mc, mu, S in (("u1", u1, mom.mu_u[0][0], mom.Sigma_u[0][0]),
                            ("u2", u2, mom.mu_u[1][0], mom.Sigma_u[1][0])):
        se = mc.std(axis=0) / np.sqrt(N)
        assert np.all(np.abs(mu - mc.mean(axis=0)) < 5 * se), name
        C = np.cov(mc.T)
        se_cov = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C**2) / N)
        assert np.all(np.abs(S - C) < 5 * se_cov), (name, np.abs(S - C) / se_cov)


def test_softmax_moments_match_monte_carlo_for_small_variance():
    # first-order Taylor: exact up to O(Sigma); with std 1e-3 the bias is far below MC error
    rng = np.random.default_rng(4)
    k, N = 5, 200_000
    mu = rng.normal(size=k)
    S = _random_psd(rng, k, 1e-6)
    u = rng.multivariate_normal(mu, S, size=N)
    p = mo.softmax(u)
    mp, Sp, Sup = mo.softmax_moments(mu[None], S[None])
    se = p.std(axis=0) / np.sqrt(N)
    assert np.all(np.abs(mp[0] - p.mean(axis=0)) < 5 * se)
    C = np.cov(p.T)
    se_cov = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C**2) / N)
    assert np.all(np.abs(Sp[0] - C) < 5 * se_cov)
    cross = (u - u.mean(0)).T @ (p - p.mean(0)) / N
    se_x = np.sqrt((np.outer(np.diag(S), np.diag(C)) + cross**2) / N)
    assert np.all(np.abs(Sup[0] - cross) < 5 * se_x)
    # rows of Sigma_p sum to zero: softmax ignores a common shift
    np.testing.assert_allclose(Sp[0].sum(axis=1), 0.0, atol=1e-18)
