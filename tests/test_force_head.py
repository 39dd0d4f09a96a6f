"""The Gaussian force head against closed forms, Monte Carlo and its NumPy reference."""

import numpy as np
import pytest

from controller.force_head import ForceHead
from controller.kalman_head import HeadConfig
from controller.kbt import KBTController
from controller.lqr import LQRController
from controller.rls import RLSController
from sim.cartpole import SOURCE, TARGET
from sim.data import sample_dataset


def _blr(w0, v, r, X, y):
    """Closed-form Bayesian linear regression: posterior mean and covariance."""
    Xt = np.hstack([X, np.ones((len(X), 1))])
    P = np.linalg.inv(np.eye(Xt.shape[1]) / v + Xt.T @ Xt / r)
    return P @ (w0 / v + Xt.T @ y / r), P


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_known_noise_l1_equals_bayesian_linear_regression_in_any_order(backend):
    rng = np.random.default_rng(0)
    d, n, v, r = 5, 30, 2.0, 0.5
    w0 = rng.normal(size=d + 1)
    X, y = rng.normal(size=(n, d)), rng.normal(size=n) * 3
    m_ref, P_ref = _blr(w0, v, r, X, y)
    cfg = HeadConfig(prior_var=v, obs_noise=r, noise="known", gate=0.0, jitter=0.0, backend=backend)
    for order in (np.arange(n), np.arange(n)[::-1], rng.permutation(n)):
        head = ForceHead(w0, cfg)
        assert head.uses_numba == (backend == "numba")
        for i in order:
            assert head.update(X[i], y[i])
        m, P, _ = head.kernel_arrays()
        np.testing.assert_allclose(m, m_ref, atol=1e-9, err_msg=f"order {order[:3]}")
        np.testing.assert_allclose(P, P_ref, atol=1e-9)
        mean, q = head.predict(X[:4])
        Xt = np.hstack([X[:4], np.ones((4, 1))])
        np.testing.assert_allclose(q, np.einsum("na,ab,nb->n", Xt, P_ref, Xt), atol=1e-9)


def test_numba_kernel_matches_numpy_reference_with_learned_noise_and_gate():
    rng = np.random.default_rng(1)
    d, n = 6, 300
    w_true = rng.normal(size=d + 1)
    X = rng.normal(size=(n, d))
    y = np.hstack([X, np.ones((n, 1))]) @ w_true + rng.normal(0, 0.7, n)
    y[[40, 41, 200]] = [1000.0, -500.0, 80.0]             # corrupt labels the gate must refuse
    heads = [ForceHead(np.zeros(d + 1), HeadConfig(prior_var=3.0, backend=b)) for b in ("numba", "numpy")]
    for i in range(n):
        a, b = (h.update(X[i], y[i]) for h in heads)
        assert a == b, f"step {i}: numba {a}, numpy {b}"
    fast, ref = heads
    for x, z in zip(fast.kernel_arrays(), ref.kernel_arrays()):
        np.testing.assert_allclose(x, z, rtol=1e-7, atol=1e-10)
    assert fast.n_rejected == ref.n_rejected >= 3
    assert fast.n_updates == ref.n_updates == n - fast.n_rejected


def test_learned_noise_finds_the_label_noise_and_respects_the_floor():
    rng = np.random.default_rng(2)
    d, n = 4, 3000
    X = rng.normal(size=(n, d))
    w = rng.normal(size=d + 1)
    clean = np.hstack([X, np.ones((n, 1))]) @ w
    noisy = ForceHead(np.zeros(d + 1), HeadConfig(prior_var=10.0))
    exact = ForceHead(np.zeros(d + 1), HeadConfig(prior_var=10.0, obs_noise=1.0, noise_floor=1e-2))
    eps = rng.normal(0, np.sqrt(20.0), n)
    for i in range(n):
        noisy.update(X[i], clean[i] + eps[i])
        exact.update(X[i], clean[i])
    assert abs(noisy.noise_var / np.var(eps) - 1) < 0.1, noisy.noise_var
    assert exact.noise_var == pytest.approx(1e-2), "noise-free labels must stop at the floor"


def test_two_layer_moments_match_monte_carlo():
    rng = np.random.default_rng(3)
    d = 3
    head = ForceHead(rng.normal(size=d + 1), HeadConfig(n_layers=2, hidden=8, prior_var=(0.3, 0.5),
                                                         free_units="random", gate=0.0))
    for _ in range(5):
        head.update(rng.normal(size=d), rng.normal() * 2)
    z = rng.normal(size=(1, d))
    mean, q = head.predict(z)
    # sample every layer's weights from its per-neuron Gaussian posterior
    n_mc = 200_000
    a = np.repeat(z, n_mc, axis=0)
    for i, layer in enumerate(head.core.layers):
        at = np.hstack([a, np.ones((n_mc, 1))])
        W = np.stack([rng.multivariate_normal(layer.M[:, k], layer.S[k], n_mc) for k in range(layer.M.shape[1])],
                     axis=2)                                    # [n_mc, n1, n_out]
        a = np.einsum("na,nak->nk", at, W)
        if i < len(head.core.layers) - 1:
            a = np.maximum(a, 0.0)
    u = a[:, 0]
    assert mean[0] == pytest.approx(u.mean(), abs=4 * u.std() / np.sqrt(n_mc))
    assert q[0] == pytest.approx(u.var(), rel=0.02)


def test_gate_refuses_a_corrupt_label_and_leaves_the_head_unchanged(pretrained):
    c = KBTController(pretrained)
    S, F = sample_dataset(LQRController(TARGET), 60, seed=7)
    for i in range(50):
        assert c.observe(S[i], F[i])
    before = [a.copy() for a in c.head.kernel_arrays()]
    assert c.observe(S[50], 1000.0) is False
    assert c.n_rejected == 1 and c.n_updates == 50
    for x, y in zip(before, c.head.kernel_arrays()):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="finite"):
        c.observe(S[51], np.nan)
    with pytest.raises(ValueError, match="finite"):
        c.observe(np.array([np.nan, 0, 0, 0]), 1.0)
    assert c.n_updates == 50


def test_prior_reproduces_the_pretrained_controller(pretrained):
    c = KBTController(pretrained)
    states = np.random.default_rng(4).uniform(-1, 1, (1000, 4)) * np.array([0.5, 0.5, 0.1, 0.1])
    err = c.act(states) - pretrained.act(states)
    assert np.sqrt(np.mean(err ** 2)) < 0.02, "read-out RMSE (N)"
    assert np.abs(err).max() < 0.1, "read-out worst case (N)"
    assert c.act(states[0]) == pytest.approx(c.act(states[:1])[0], abs=1e-9)


def test_rls_prior_is_the_source_lqr_gain():
    c = RLSController(LQRController(SOURCE).K)
    states = np.random.default_rng(5).normal(size=(20, 4))
    np.testing.assert_allclose(c.act(states), LQRController(SOURCE).act(states), atol=1e-9)


@pytest.mark.parametrize("make", ["kbt", "rls"])
def test_fused_numba_path_matches_numpy_reference(pretrained, make):
    def build(backend):
        cfg = HeadConfig(backend=backend)
        return KBTController(pretrained, cfg) if make == "kbt" else RLSController(LQRController(SOURCE).K, cfg)

    fast, ref = build("numba"), build("numpy")
    S, F = sample_dataset(LQRController(TARGET), 100, seed=8, sigma_data=5.0)
    for i in range(100):
        assert fast.observe(S[i], F[i]) == ref.observe(S[i], F[i]), f"step {i}"
        assert fast.act(S[i]) == pytest.approx(ref.act(S[i]), abs=1e-8), f"step {i}"
    assert fast.noise_var == pytest.approx(ref.noise_var, rel=1e-8)


def test_state_file_round_trip_keeps_noise_and_counts(pretrained, tmp_path):
    a = KBTController(pretrained)
    S, F = sample_dataset(LQRController(TARGET), 30, seed=9, sigma_data=4.0)
    for i in range(30):
        a.observe(S[i], F[i])
    a.observe(S[0], 1e4)
    path = tmp_path / "head.npz"
    a.save_state(path)
    b = KBTController(pretrained)
    b.load_state(path)
    assert (b.n_updates, b.n_rejected, b.noise_var) == (a.n_updates, a.n_rejected, a.noise_var)
    assert b.act(S[3]) == a.act(S[3])
    r = RLSController(LQRController(SOURCE).K)
    with pytest.raises(ValueError):
        r.load_state(path)
