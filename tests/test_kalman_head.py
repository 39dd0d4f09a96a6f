import itertools

import numpy as np
import pytest

from controller import transformer as tf
from controller.kalman_head import HeadConfig, KalmanHead
from controller.kbt_softmax import SoftmaxKBTController


def _blr_posterior(W0, v, r, X, Y):
    """Closed-form Bayesian linear regression, one output at a time."""
    Xt = np.hstack([X, np.ones((len(X), 1))])
    S = np.linalg.inv(np.eye(Xt.shape[1]) / v + Xt.T @ Xt / r)
    M = np.stack([S @ (W0[:, j] / v + Xt.T @ Y[:, j] / r) for j in range(W0.shape[1])], axis=1)
    return M, S


@pytest.mark.parametrize("covariance", ["block", "dense"])
def test_linear_head_equals_bayesian_linear_regression_in_any_order(covariance):
    rng = np.random.default_rng(0)
    d, k, n = 4, 2, 12
    W0 = rng.normal(size=(d + 1, k))
    X, Y = rng.normal(size=(n, d)), rng.normal(size=(n, k))
    v, r = 0.7, 0.3
    M, S = _blr_posterior(W0, v, r, X, Y)
    cfg = HeadConfig(output="linear", obs_noise=r, prior_var=v, jitter=0.0, covariance=covariance)
    for perm in [np.arange(n), np.arange(n)[::-1], rng.permutation(n)]:
        head = KalmanHead.from_pretrained(W0, cfg)
        for i in perm:
            head.update(X[i], Y[i])
        np.testing.assert_allclose(head.layers[0].M, M, atol=1e-8, rtol=0)
        for j in range(k):
            Sj = head.layers[0].S[j] if covariance == "block" else head.layers[0].S[j, :, j, :]
            np.testing.assert_allclose(Sj, S, atol=1e-8, rtol=0)


def test_batch_update_equals_sequential_updates():
    rng = np.random.default_rng(1)
    W0 = rng.normal(size=(5, 3))
    X = rng.normal(size=(6, 4))
    Y = rng.dirichlet(np.ones(3), size=6)
    a = KalmanHead.from_pretrained(W0, HeadConfig(output="softmax", n_layers=2, hidden=8))
    b = a.copy()
    a.update(X, Y)
    for i in range(6):
        b.update(X[i], Y[i])
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_array_equal(la.M, lb.M)
        np.testing.assert_array_equal(la.S, lb.S)
    assert a.n_updates == b.n_updates == 6


@pytest.mark.parametrize("L", [1, 2, 3])
@pytest.mark.parametrize("free_units", ["zero", "random"])
def test_prior_reproduces_pretrained_head(L, free_units, pretrained):
    pol = pretrained
    states = np.random.default_rng(2).uniform(-0.3, 0.3, (50, 4)) * np.array([1, 1, 0.3, 0.3])
    H = pol.features(states)
    expected = pol.probs(states)
    head = KalmanHead.from_pretrained(pol.head_weights, HeadConfig(output="softmax", n_layers=L, hidden=40, free_units=free_units))
    # the mean network reproduces the pre-trained head for any prior variance
    np.testing.assert_allclose(tf.softmax(head.mean_network(H)), expected, atol=1e-10, rtol=0)
    # the moment-propagated prediction does too when the prior is (numerically) deterministic
    tight = KalmanHead.from_pretrained(pol.head_weights, HeadConfig(output="softmax", n_layers=L, hidden=40, free_units=free_units,
                                                                   prior_var=1e-30))
    np.testing.assert_allclose(tight.predict(H)[0], expected, atol=1e-10, rtol=0)


def test_hidden_width_must_hold_both_copies():
    with pytest.raises(ValueError, match="hidden"):
        KalmanHead.from_pretrained(np.zeros((17, 11)), HeadConfig(output="softmax", n_layers=2, hidden=20))


def _snapshot(head):
    return [(l.M.copy(), l.S.copy()) for l in head.layers]


@pytest.mark.parametrize("h, y, cov, match", [
    (np.r_[np.nan, np.zeros(15)], None, None, "h"),
    (np.zeros(15), None, None, "h"),
    (np.zeros(16), np.full(11, np.nan), None, "y"),
    (np.zeros(16), np.zeros(10), None, "y"),
    (np.zeros(16), np.full(11, 0.2), None, "probability"),
    (np.zeros(16), -np.eye(11)[0] + 2 * np.eye(11)[1], None, "probability"),
    (np.zeros(16), None, -np.eye(11), "data_cov"),
    (np.zeros(16), None, np.ones((3, 3)), "data_cov"),
    (np.zeros((2, 16)), np.full((3, 11), 1 / 11), None, "rows"),
])
def test_bad_inputs_are_rejected_and_leave_the_head_unchanged(h, y, cov, match):
    head = KalmanHead.from_pretrained(np.random.default_rng(0).normal(size=(17, 11)), HeadConfig(output="softmax", n_layers=2))
    head.update(np.ones(16), np.eye(11)[3])
    before = _snapshot(head)
    y = np.full(11, 1 / 11) if y is None else y
    with pytest.raises(ValueError, match=match):
        head.update(h, y, cov)
    for (M, S), layer in zip(before, head.layers):
        np.testing.assert_array_equal(M, layer.M)
        np.testing.assert_array_equal(S, layer.S)
    assert head.n_updates == 1


def test_controller_rejects_bad_samples_and_negative_sigma_data(pretrained):
    c = SoftmaxKBTController(pretrained)
    with pytest.raises(ValueError, match="sigma_data"):
        SoftmaxKBTController(pretrained, sigma_data=-1.0)
    before = _snapshot(c.head)
    with pytest.raises(ValueError, match="state"):
        c.observe([0, np.nan, 0, 0], 1.0)
    with pytest.raises(ValueError, match="expert_force"):
        c.observe([0, 0, 0, 0], np.inf)
    for (M, S), layer in zip(before, c.head.layers):
        np.testing.assert_array_equal(M, layer.M)


def test_kbt_prior_acts_like_the_pretrained_controller(pretrained):
    pol = pretrained
    c = SoftmaxKBTController(pol)
    s = np.random.default_rng(5).uniform(-0.05, 0.05, (20, 4))
    # standardising the features is folded into W_O: the prior mean is the pre-trained head
    np.testing.assert_allclose(tf.softmax(c.head.mean_network(c.features(s))), pol.probs(s), atol=1e-10)


def test_state_save_load_round_trip_and_errors(tmp_path, pretrained):
    c = SoftmaxKBTController(pretrained)
    rng = np.random.default_rng(0)
    for _ in range(5):
        c.observe(rng.uniform(-0.1, 0.1, 4), rng.uniform(-10, 10))
    path = tmp_path / "head.npz"
    c.head.save(path)
    back = KalmanHead.load(str(path), expect_config=c.head_config)
    assert back.n_updates == 5
    for a, b in zip(c.head.layers, back.layers):
        np.testing.assert_array_equal(a.M, b.M)
        np.testing.assert_array_equal(a.S, b.S)
    with pytest.raises(ValueError, match="does not match"):
        KalmanHead.load(str(path), expect_config=HeadConfig(output="softmax", n_layers=2))
    (tmp_path / "bad.npz").write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="corrupt"):
        KalmanHead.load(str(tmp_path / "bad.npz"))
    with pytest.raises(ValueError, match="not found"):
        KalmanHead.load(str(tmp_path / "missing.npz"))


@pytest.mark.parametrize("update", ["kalman", "paper"])
def test_paper_update_mode_runs_and_kalman_mode_stays_bounded(update, pretrained):
    """The paper's target-as-posterior update (Sigma_data = 0) takes an unbounded step
    (SPEC section 3); the Kalman update stays bounded. Both must remain finite."""
    c = SoftmaxKBTController(pretrained, HeadConfig(output="softmax", update=update))
    rng = np.random.default_rng(0)
    c.observe(rng.uniform(-0.1, 0.1, 4), 25.0)
    M = c.head.layers[0].M
    assert np.all(np.isfinite(M))
    if update == "kalman":
        assert np.abs(M).max() < 1e3


def test_controller_state_resume_and_fingerprint(tmp_path, pretrained):
    pol = pretrained
    a = SoftmaxKBTController(pol)
    rng = np.random.default_rng(1)
    samples = [(rng.uniform(-0.1, 0.1, 4), rng.uniform(-20, 20)) for _ in range(20)]
    for s, f in samples[:10]:
        a.observe(s, f)
    a.save_state(tmp_path / "s.npz")
    b = SoftmaxKBTController(pol)
    b.load_state(str(tmp_path / "s.npz"))
    for s, f in samples[10:]:            # power loss after 10 samples: the resumed run is identical
        a.observe(s, f)
        b.observe(s, f)
    np.testing.assert_array_equal(a.head.layers[0].M, b.head.layers[0].M)
    assert b.n_updates == 20
    other = pol.copy()
    other.params["head.w"] = other.params["head.w"] + 0.01
    c = SoftmaxKBTController(other)
    before = c.head.layers[0].M.copy()
    with pytest.raises(ValueError, match="another pre-trained model"):
        c.load_state(str(tmp_path / "s.npz"))
    np.testing.assert_array_equal(c.head.layers[0].M, before)


def test_preprocess_is_algorithm_1(pretrained):
    c = SoftmaxKBTController(pretrained)
    S = np.random.default_rng(0).uniform(-0.1, 0.1, (5, 4))
    F = np.linspace(-20, 20, 5)
    H, Y = c.preprocess(S, F)
    np.testing.assert_allclose(H, c.features(S))
    np.testing.assert_allclose(Y.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="forces"):
        c.preprocess(S, F[:3])


@pytest.mark.parametrize("cfg", [HeadConfig(output="softmax"), HeadConfig(output="softmax", n_layers=2),
                                 HeadConfig(output="linear"), HeadConfig(output="softmax", dtype="float32"),
                                 HeadConfig(output="softmax", covariance="dense")],
                         ids=["softmax", "two-layers", "linear", "float32", "dense"])
def test_predict_mean_is_predicts_mean_to_the_bit(cfg):
    """``act`` reads ``predict_mean``: the same floats as ``predict(H)[0]``, without the covariances."""
    rng = np.random.default_rng(5)
    head = KalmanHead.from_pretrained(rng.normal(size=(9, 5)), cfg)
    for _ in range(6):
        y = np.abs(rng.normal(size=5))
        head.update(rng.normal(size=8), y / y.sum() if cfg.output == "softmax" else rng.normal(size=5))
    for n in (1, 3, 100):
        H = rng.normal(size=(n, 8))
        mean, _ = head.predict(H)
        fast = head.predict_mean(H)
        assert fast.dtype == mean.dtype and fast.tobytes() == mean.tobytes()
