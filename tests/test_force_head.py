"""The Gaussian force head against closed forms, Monte Carlo and its NumPy reference."""

from dataclasses import replace

import numpy as np
import pytest

from controller import force_numba as fn
from controller.force_head import ForceHead
from controller.kalman_head import HeadConfig
from controller.kbt import KBTController
from controller.lqr import LQRController
from controller.rls import RLSController
from sim.world.cartpole import SOURCE, TARGET
from sim.world.data import sample_dataset


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
    cfg = HeadConfig(prior_var=v, obs_noise=r, noise="known", robust=0.0, change_threshold=0.0, jitter=0.0, backend=backend)
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


def _linear_stream(rng, w, n, noise_sd=0.7):
    X = rng.normal(size=(n, w.size - 1))
    return X, np.hstack([X, np.ones((n, 1))]) @ w + rng.normal(0, noise_sd, n)


def test_numba_kernel_matches_numpy_reference_with_weights_changes_and_learned_noise():
    rng = np.random.default_rng(1)
    d = 6
    X1, y1 = _linear_stream(rng, rng.normal(size=d + 1), 300)
    X2, y2 = _linear_stream(rng, 3 * rng.normal(size=d + 1), 200)     # the plant changes at sample 300
    X, y = np.vstack([X1, X2]), np.hstack([y1, y2])
    y[[40, 41, 200]] = [1000.0, -500.0, 80.0]             # corrupt labels: learned with a small weight
    heads = [ForceHead(np.zeros(d + 1), HeadConfig(prior_var=3.0, backend=b)) for b in ("numba", "numpy")]
    statuses = []
    for i in range(len(y)):
        zt = np.append(X[i], 1.0)
        a = fn.force_update(heads[0].kernel_arrays(), heads[0].kernel_settings(), (zt, np.zeros(d + 1)), y[i])
        b = heads[1].update_reference(X[i], y[i])
        assert a == b, f"step {i}: numba {a}, numpy {b}"
        heads[0].count(a), heads[1].count(b)
        statuses.append(a)
    fast, ref = heads
    for x, z in zip(fast.kernel_arrays(), ref.kernel_arrays()):
        np.testing.assert_allclose(x, z, rtol=1e-7, atol=1e-10)
    assert fast.n_updates == ref.n_updates == len(y)
    assert fast.n_downweighted == ref.n_downweighted >= 3
    assert fast.n_changes == ref.n_changes == 1, "one change of plant, one detection"
    assert 300 <= statuses.index(fn.CHANGED) < 350, "detected within 50 samples of the change"


def _full_prior(rng, n1):
    A = rng.normal(size=(n1, n1))
    return A @ A.T / n1 + 0.1 * np.eye(n1)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_a_full_prior_covariance_is_bayesian_linear_regression_with_that_prior(backend):
    rng = np.random.default_rng(4)
    d, n, r = 4, 25, 0.3
    w0, P0 = rng.normal(size=d + 1), _full_prior(rng, d + 1)
    X, y = rng.normal(size=(n, d)), rng.normal(size=n)
    Xt = np.hstack([X, np.ones((n, 1))])
    # closed form with prior N(w0, P0): P = (P0^-1 + X~^T X~ / r)^-1, m = P (P0^-1 w0 + X~^T y / r)
    P_ref = np.linalg.inv(np.linalg.inv(P0) + Xt.T @ Xt / r)
    m_ref = P_ref @ (np.linalg.solve(P0, w0) + Xt.T @ y / r)
    head = ForceHead(w0, HeadConfig(obs_noise=r, noise="known", robust=0.0, change_threshold=0.0, jitter=0.0,
                                    backend=backend), prior_cov=P0)
    np.testing.assert_allclose(head.kernel_arrays()[1], P0)
    for i in range(n):
        head.update(X[i], y[i])
    m, P, _ = head.kernel_arrays()
    np.testing.assert_allclose(m, m_ref, atol=1e-9)
    np.testing.assert_allclose(P, P_ref, atol=1e-9)


def test_a_change_reopens_to_the_full_prior_covariance_in_kernel_and_reference():
    rng = np.random.default_rng(5)
    d = 5
    P0 = _full_prior(rng, d + 1)
    X1, y1 = _linear_stream(rng, rng.normal(size=d + 1), 200)
    X2, y2 = _linear_stream(rng, 4 * rng.normal(size=d + 1), 100)
    X, y = np.vstack([X1, X2]), np.hstack([y1, y2])
    heads = [ForceHead(np.zeros(d + 1), HeadConfig(backend=b), prior_cov=P0) for b in ("numba", "numpy")]
    for i in range(len(y)):
        before = heads[1].copy()
        a, b = heads[0].update(X[i], y[i]), heads[1].update(X[i], y[i])
        assert a and b
        if heads[1].n_changes > before.n_changes:
            # re-opened to P0, then this sample learned: one rank-1 step from P0
            zt = np.append(X[i], 1.0)
            Pz = P0 @ zt
            P_after = heads[1].kernel_arrays()[1]
            assert np.allclose(P_after, P0 - np.outer(Pz, Pz) * (P0 - P_after)[0, 0] / Pz[0] ** 2, atol=1e-9)
    assert heads[0].n_changes == heads[1].n_changes == 1
    for x, z in zip(heads[0].kernel_arrays(), heads[1].kernel_arrays()):
        np.testing.assert_allclose(x, z, rtol=1e-7, atol=1e-10)


def test_a_bad_prior_covariance_is_a_clear_error():
    w0 = np.zeros(4)
    for bad, what in ((np.eye(3), "shape"), (np.triu(np.ones((4, 4))) + np.eye(4), "symmetric"),
                      (-np.eye(4), "positive definite")):
        with pytest.raises(ValueError, match="prior_cov"):
            ForceHead(w0, HeadConfig(), prior_cov=bad)
    with pytest.raises(ValueError, match="one-layer"):
        ForceHead(w0, HeadConfig(n_layers=2), prior_cov=np.eye(4))


def _far_label_shift(head, z, probes, e):
    """Largest |change| of the predicted force over ``probes`` caused by one label at
    innovation ``e`` from the prediction at ``z``, and the bound (c / 2) sqrt(q) at each probe."""
    before, q = head.predict(probes)
    mu = head.predict(z[None, :])[0][0]
    h = head.copy()
    h.update(z, mu + e)
    after, _ = h.predict(probes)
    return np.abs(after - before), 0.5 * head.config.robust * np.sqrt(q)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_one_label_moves_the_prediction_by_at_most_c_over_2_epistemic_std(backend):
    rng = np.random.default_rng(11)
    d = 5
    head = ForceHead(rng.normal(size=d + 1), HeadConfig(prior_var=2.0, backend=backend))
    X, y = _linear_stream(rng, rng.normal(size=d + 1), 20)
    for i in range(20):
        head.update(X[i], y[i])
    probes = rng.normal(size=(200, d))
    z = rng.normal(size=d)
    S = head.predict(z[None, :])[1][0] + head.noise_var
    c = head.config.robust
    worst = 0.0
    for e in np.concatenate([np.geomspace(1e-3, 1e6, 60), [c * np.sqrt(S)]]):   # c sqrt(S): the largest effect
        for sign in (1, -1):
            shift, bound = _far_label_shift(head, z, probes, sign * e)
            assert np.all(shift <= bound * (1 + 1e-9)), e
            worst = max(worst, float((shift / bound).max()))
    assert worst > 0.5, "the bound is not loose by more than a factor 2"
    # an absurd label (1e6 sigma) moves the prediction by a tiny amount
    shift, bound = _far_label_shift(head, z, probes, 1e6 * np.sqrt(S))
    assert np.all(shift < 1e-4 * bound)


def test_no_single_label_can_signal_a_change():
    cfg = HeadConfig()
    k, cap, nu, h, _ = ForceHead(np.zeros(3), cfg).detector
    assert cap - nu < h / 3, "at least four improbable labels in a row"
    head = ForceHead(np.zeros(3), cfg)
    for y in (1e9, -1e9, 1e9):
        head.update(np.ones(2), y)
    assert head.n_changes == 0 and head.n_downweighted == 3


def test_noise_level_followed_and_no_change_while_nothing_changes():
    rng = np.random.default_rng(12)
    d = 4
    w = rng.normal(size=d + 1)
    head = ForceHead(np.zeros(d + 1), HeadConfig(prior_var=10.0))
    levels, errors = (0.0, 4.0, 0.0, 4.0), []
    for level in levels:
        X, y = _linear_stream(rng, w, 5000, np.sqrt(level))
        for i in range(len(y)):
            head.update(X[i], y[i])
            if i == 1999:
                errors.append(head.noise_var - level)
    assert head.n_changes <= 2, "only the switches from clean to noisy labels look like changes"
    assert all(abs(err) < 0.2 * 4.0 for err in errors), errors


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
                                                         free_units="random", robust=0.0))
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


def test_a_corrupt_label_is_learned_with_a_small_weight(pretrained):
    c = KBTController(pretrained)
    S, F = sample_dataset(LQRController(TARGET), 60, seed=7)
    for i in range(50):
        assert c.observe(S[i], F[i])
    probes = S[50:60]
    before, _, q = c.predict_split(probes)
    assert c.observe(S[50], 1000.0) is True
    assert c.n_downweighted == 1 and c.n_updates == 51 and c.n_changes == 0
    shift = np.abs(c.act(probes) - before)
    assert np.all(shift <= 0.5 * c.head.config.robust * np.sqrt(q))
    with pytest.raises(ValueError, match="finite"):
        c.observe(S[51], np.nan)
    with pytest.raises(ValueError, match="finite"):
        c.observe(np.array([np.nan, 0, 0, 0]), 1.0)
    assert c.n_updates == 51


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
    assert (b.n_updates, b.n_downweighted, b.n_changes, b.noise_var) == (a.n_updates, a.n_downweighted,
                                                                         a.n_changes, a.noise_var)
    assert a.n_downweighted == 1
    assert b.act(S[3]) == a.act(S[3])
    r = RLSController(LQRController(SOURCE).K)
    with pytest.raises(ValueError):
        r.load_state(path)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("call", ["observe", "step"])
@pytest.mark.parametrize("scale", [1.0, 3.0])
@pytest.mark.parametrize("noise", [dict(noise="known", obs_noise=1.0, change_threshold=300.0),
                                   dict(noise="learned", noise_prior_count=50.0, change_threshold=30.0)])
def test_change_reset_prior_starts_afresh_and_learns_the_detectors_run(pretrained, backend, call, scale, noise):
    """Under change_reset='prior' the head after a detection is a fresh head from the prior (its
    covariance times change_reset_scale) that learned the detector's run, the labels since g was
    last 0, detecting label included (mean, covariance, noise and g; known and learned noise);
    not that label alone; under 'covariance' the mean stays."""
    rng = np.random.default_rng(4)
    S = rng.uniform(-0.05, 0.05, (40, 4))
    Y = 20.0 * (-1.0) ** np.arange(40)
    heads = {}
    for reset in ("prior", "covariance"):
        cfg = HeadConfig(change_reset=reset, backend=backend, change_reset_scale=scale if reset == "prior" else 1.0,
                         **noise)
        c = KBTController(pretrained, cfg)
        g = []
        for i in range(40):
            getattr(c, call)(S[i], Y[i])
            g.append(c.head.noise[3])
            if c.n_changes:
                break
        start = max(j for j in range(i) if g[j] == 0.0) + 1          # the run: labels start..i
        assert c.n_changes == 1 and i < 39 and i - start >= 2
        fresh = {}
        for first in (start, i):          # the run, and the detecting label alone
            f = KBTController(pretrained, replace(cfg, change_reset="covariance", change_reset_scale=1.0))
            f.use_prior_cov(scale * f.head.kernel_settings()[-1] if reset == "prior" else None)
            for j in range(first, i + 1):
                f.observe(S[j], Y[j])
            fresh[first] = [np.array(a) for a in f.head.kernel_arrays()]
        heads[reset] = [np.array(a) for a in c.head.kernel_arrays()], fresh[start], fresh[i]
    (m, P, noise), (m1, P1, noise1), (m_one, _, _) = heads["prior"]
    np.testing.assert_allclose(m, m1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(P, P1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(noise, noise1, rtol=0, atol=1e-12)
    assert np.abs(m - m_one).max() > 1e-3
    (m, _, _), (m1, _, _), _ = heads["covariance"]
    assert np.abs(m - m1).max() > 1e-3


def test_warm_up_leaves_the_detectors_run_alone(pretrained):
    c = KBTController(pretrained, HeadConfig(change_reset="prior", noise="known", obs_noise=1.0))
    c.observe(np.zeros(4), 0.0)
    c.observe(np.full(4, 0.01), 20.0)             # a surprising label: g > 0, a run of one
    run = [(s.tolist(), y) for s, y in c._run]
    assert c.head.noise[3] > 0 and len(run) == 1
    c.warm_up()
    assert [(s.tolist(), y) for s, y in c._run] == run


def test_a_loaded_head_starts_with_an_empty_run(pretrained, tmp_path):
    cfg = HeadConfig(change_reset="prior", noise="known", obs_noise=1.0)
    a, b = KBTController(pretrained, cfg), KBTController(pretrained, cfg)
    a.observe(np.zeros(4), 0.0)
    a.save_state(tmp_path / "head.npz")
    b.observe(np.full(4, 0.01), 20.0)             # a surprising label: g > 0, a run of one
    assert len(b._run) == 1
    b.load_state(tmp_path / "head.npz")
    assert len(b._run) == 0


def test_change_reset_scale_is_checked():
    with pytest.raises(ValueError, match="change_reset_scale"):
        HeadConfig(change_reset_scale=2.0)
    with pytest.raises(ValueError, match="change_reset_scale"):
        HeadConfig(change_reset="prior", change_reset_scale=0.0)


def test_change_reset_is_checked():
    with pytest.raises(ValueError, match="change_reset"):
        HeadConfig(change_reset="mean")
