"""BLoB: hand-written gradients against finite differences, prior = pre-trained, KL (11)."""

import numpy as np
import pytest

from controller.blob import BLoBController, LoRAFlipout, kl_divergence, kl_weight


@pytest.fixture
def policy(pretrained):
    return pretrained          # the session's shared pre-trained policy (tests/conftest.py)


def _controller(policy, seed=0):
    c = BLoBController(policy, capacity=5, epochs=1, rank=3, seed=seed)
    rng = np.random.default_rng(seed + 10)
    for a in c.adapters.values():              # B = 0 hides dM and dG: make it non-zero
        a.B[:] = rng.normal(0, 0.3, a.B.shape)
    return c


def _data(policy, n=6, seed=0):
    rng = np.random.default_rng(seed)
    S = rng.uniform(-1, 1, (n, 4)) * np.array([2.4, 1, 0.2, 1])
    Y = policy.tokenizer.encode(rng.uniform(-25, 25, n))
    return S, Y


@pytest.mark.parametrize("noise", [True, False])
def test_gradients_match_finite_differences(policy, noise):
    c = _controller(policy)
    S, Y = _data(policy)
    rng = np.random.default_rng(3)
    if noise:
        c._sample_noise(rng, len(S))           # fixed noise: the objective is deterministic
    kl = 0.05
    c.loss_and_grad(S, Y, kl)
    grads = {k: v.copy() for k, v in c.gradients().items()}
    params = c.parameters()
    for name, P in params.items():
        direction = rng.standard_normal(P.shape)
        analytic = float(np.sum(grads[name] * direction))
        h = 1e-6
        P += h * direction
        fp = c.loss_and_grad(S, Y, kl)
        P -= 2 * h * direction
        fm = c.loss_and_grad(S, Y, kl)
        P += h * direction
        numeric = (fp - fm) / (2 * h)
        assert numeric == pytest.approx(analytic, rel=1e-6, abs=1e-9), name


def test_prior_mean_reproduces_the_pretrained_model(policy):
    c = BLoBController(policy, capacity=3)
    S, _ = _data(policy, 20)
    np.testing.assert_allclose(c.probs(S, n_samples=0), policy.probs(S), atol=1e-12)
    # B = 0: weight samples change nothing either
    np.testing.assert_allclose(c.probs(S, n_samples=3), policy.probs(S), atol=1e-12)


def test_flipout_decorrelates_examples():
    rng = np.random.default_rng(0)
    a = LoRAFlipout(5, 2, 3, 0.5, rng)
    a.B[:] = rng.normal(size=a.B.shape)
    x = np.tile(rng.normal(size=5), (4, 1))    # four identical inputs
    a.set_noise(a.sample_noise(rng, 4, token_axis=False))
    y = a.forward(x)
    assert not np.allclose(y[0], y[1])         # same input, different effective weights
    a.set_noise(None)
    y0 = a.forward(x)
    assert np.allclose(y0, y0[0])


def test_flipout_matches_explicit_per_example_weights():
    rng = np.random.default_rng(1)
    a = LoRAFlipout(4, 3, 2, 0.5, rng)
    a.B[:] = rng.normal(size=a.B.shape)
    x = rng.normal(size=(5, 4))
    E, S, T = a.sample_noise(rng, 5, token_axis=False)
    a.set_noise((E, S, T))
    y = a.forward(x)
    for i in range(5):
        A_i = a.M + (E * a.G**2) * np.outer(S[i], T[i])      # A o t s^T in our (in, r) layout
        np.testing.assert_allclose(y[i], x[i] @ A_i @ a.B, atol=1e-12)


def test_kl_closed_form_against_gaussian_kl():
    rng = np.random.default_rng(2)
    a = LoRAFlipout(3, 2, 2, 0.3, rng)
    sp = 0.7
    omega = a.G**2
    # KL(N(m, w^2) || N(0, sp^2)) = log(sp / w) + (w^2 + m^2) / (2 sp^2) - 1/2, per entry
    exact = np.sum(np.log(sp / omega) + (omega**2 + a.M**2) / (2 * sp**2) - 0.5)
    const = a.M.size * (np.log(sp) - 0.5)       # (11) drops the constants
    assert kl_divergence({"w": a}, sp) == pytest.approx(exact - const, rel=1e-12)


def test_kl_weight_schedule():
    assert kl_weight(10, 10) == 1.0 and kl_weight(50, 10) == 1.0
    assert kl_weight(9, 10) == 0.5 and kl_weight(1, 10) == 2.0**-9


def test_learning_changes_the_adapters_not_the_policy(policy):
    before = {k: v.copy() for k, v in policy.params.items()}
    c = BLoBController(policy, capacity=3, epochs=3)
    c.observe(np.zeros(4), 10.0)
    assert c.n_updates == 1
    assert np.abs(c.adapters["head.w"].B).sum() > 0
    assert all(np.array_equal(before[k], policy.params[k]) for k in before)


def test_same_seed_same_adapters(policy):
    runs = []
    for _ in range(2):
        c = BLoBController(policy, capacity=3, epochs=2, seed=4)
        for f in (1.0, -2.0):
            c.observe(np.full(4, 0.01), f)
        runs.append(c.parameters())
    for k in runs[0]:
        assert np.array_equal(runs[0][k], runs[1][k]), k


@pytest.mark.parametrize("kw, word", [({"rank": 0}, "rank"), ({"prior_std": 0}, "prior_std"),
                                      ({"n_samples": -1}, "n_samples"), ({"capacity": 0}, "capacity")])
def test_bad_settings(policy, kw, word):
    with pytest.raises(ValueError, match=word):
        BLoBController(policy, **kw)
