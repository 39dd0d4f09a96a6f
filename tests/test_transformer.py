import numpy as np
import pytest

from controller import transformer as tf
from controller.model import TransformerPolicy
from sim.pretraining.balance import pretrain
from controller.transformer import TransformerConfig
from controller.transformer_numba import FastInference


def _perturbed(cfg, seed):
    rng = np.random.default_rng(seed)
    P = tf.init_params(cfg, rng)
    # move LayerNorm gains and biases away from 1 / 0 so every path carries gradient
    return {k: v + 0.1 * rng.normal(size=v.shape) for k, v in P.items()}, rng


@pytest.mark.parametrize("cfg", [
    TransformerConfig(), TransformerConfig(n_layers=1, n_bins=7, d_model=8, d_ff=4),
    TransformerConfig(query="state", final_ln=False), TransformerConfig(query="state", final_ln=True),
])
def test_gradients_match_finite_differences_for_every_parameter(cfg):
    P, rng = _perturbed(cfg, 0)
    states = rng.uniform(-1, 1, (6, 4)) * np.array(cfg.state_scale)
    targets = rng.dirichlet(np.ones(cfg.n_bins), size=6)
    _, grads = tf.loss_and_grad(P, cfg, states, targets)
    assert set(grads) == set(tf.param_shapes(cfg))
    h = 1e-5
    for name in P:
        for trial in range(2):
            v = rng.normal(size=P[name].shape)
            P[name] += h * v
            lp, _ = tf.loss_and_grad(P, cfg, states, targets)
            P[name] -= 2 * h * v
            lm, _ = tf.loss_and_grad(P, cfg, states, targets)
            P[name] += h * v
            fd = (lp - lm) / (2 * h)
            an = float(np.sum(grads[name] * v))
            # relative error < 1e-6, plus an absolute floor of 1e-9 for the key biases,
            # whose gradient is exactly zero: there the central difference is rounding
            # noise of order eps * loss / h ~ 5e-11.
            assert abs(fd - an) <= 1e-6 * max(abs(fd), abs(an)) + 1e-9, \
                f"{name} direction {trial}: fd {fd} analytic {an}"


def test_key_bias_gradient_is_zero():
    cfg = TransformerConfig()
    P, rng = _perturbed(cfg, 1)
    _, g = tf.loss_and_grad(P, cfg, rng.normal(size=(5, 4)) * 0.2, rng.dirichlet(np.ones(11), size=5))
    assert np.abs(g["layer0.attn.bk"]).max() < 1e-15


def test_features_and_head_compose_to_probs():
    pol = TransformerPolicy(seed=2)
    s = np.random.default_rng(0).normal(size=(9, 4)) * 0.2
    h = pol.features(s)
    assert h.shape == (9, pol.config.d_model)
    logits = np.hstack([h, np.ones((9, 1))]) @ pol.head_weights
    np.testing.assert_allclose(tf.softmax(logits), pol.probs(s), atol=1e-14)
    assert pol.head_weights.shape == (pol.config.d_model + 1, pol.config.n_bins)


def test_batched_forward_equals_single_state_forward():
    pol = TransformerPolicy(seed=3)
    s = np.random.default_rng(1).normal(size=(8, 4)) * 0.3
    batch = pol.act(s)
    for i in range(8):
        assert pol.act(s[i]) == pytest.approx(batch[i], abs=1e-12), f"state {i}"


@pytest.mark.parametrize("cfg", [TransformerConfig(), TransformerConfig(query="state", final_ln=False),
                                 TransformerConfig(query="state", final_ln=True)])
def test_numba_inference_matches_numpy(cfg):
    pol = TransformerPolicy(cfg, seed=4)
    fast = FastInference(pol)
    s = np.random.default_rng(2).normal(size=(20, 4)) * 0.3
    h, p, f = pol.features(s), pol.probs(s), pol.act(s)
    for i in range(20):
        np.testing.assert_allclose(fast.features_one(s[i]), h[i], atol=1e-10, err_msg=f"state {i}")
        np.testing.assert_allclose(fast.probs_one(s[i]), p[i], atol=1e-10, err_msg=f"state {i}")
        assert fast.act_one(s[i]) == pytest.approx(f[i], abs=1e-10)
    # after a parameter change, refresh() picks it up
    pol.params["head.w"] += 0.5
    pol.params["layer1.ffn.w1"] *= 1.1
    fast.refresh()
    np.testing.assert_allclose(fast.probs_one(s[0]), pol.probs(s[:1])[0], atol=1e-10)


def test_packed_kbt_with_a_final_layer_norm_learns_as_numpy():
    """The packed kernels' T_1 with the final layer norm (shipped weights have none) against the
    NumPy reference controller: the same forces and posterior to rounding after 30 labels (the
    random policy's updates grow BLAS-against-loop rounding to about 3e-9 N on forces of 40 N)."""
    from controller.kalman_head import HeadConfig
    from controller.kbt import KBTController

    pol = TransformerPolicy(TransformerConfig(query="state", final_ln=True), seed=3)
    fast, ref = KBTController(pol), KBTController(pol, HeadConfig(backend="numpy"))
    rng = np.random.default_rng(5)
    for s in rng.normal(size=(30, 4)) * 0.2:
        y = float(rng.normal() * 5)
        assert fast.act(s) == pytest.approx(ref.act(s), abs=1e-7)
        fast.observe(s, y)
        ref.observe(s, y)
    np.testing.assert_allclose(fast.head.kernel_arrays()[0], ref.head.kernel_arrays()[0], atol=1e-7, rtol=0)


def test_adam_reduces_loss_on_a_fixed_batch():
    cfg = TransformerConfig()
    rng = np.random.default_rng(0)
    P = tf.init_params(cfg, rng)
    s = rng.uniform(-1, 1, (64, 4)) * np.array(cfg.state_scale)
    y = cfg.tokenizer().encode(rng.uniform(-20, 20, 64))
    opt = tf.Adam(lr=1e-2)
    # cross-entropy minus the targets' entropy = KL(y || p) >= 0, zero at a perfect fit
    entropy = -np.sum(y * np.log(np.where(y > 0, y, 1.0))) / len(y)
    first, _ = tf.loss_and_grad(P, cfg, s, y)
    for _ in range(200):
        loss, g = tf.loss_and_grad(P, cfg, s, y)
        opt.step(P, g)
    assert loss - entropy < 0.3 * (first - entropy)


def test_pretraining_is_deterministic():
    a, ha = pretrain(seed=7, steps=30, batch=32, n_val=50, progress=False, log_every=10)
    b, hb = pretrain(seed=7, steps=30, batch=32, n_val=50, progress=False, log_every=10)
    c, _ = pretrain(seed=8, steps=30, batch=32, n_val=50, progress=False, log_every=10)
    assert ha == hb
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name], err_msg=name)
    assert not np.array_equal(a.params["head.w"], c.params["head.w"])


def test_config_validation():
    with pytest.raises(ValueError, match="d_model"):
        TransformerConfig(d_model=15, n_heads=2)
    with pytest.raises(ValueError, match="query"):
        TransformerConfig(query="tokens")
    with pytest.raises(ValueError, match="state_scale"):
        TransformerConfig(state_scale=(1, 1, 1))
    with pytest.raises(ValueError, match="states"):
        TransformerPolicy(seed=0).act(np.zeros(3))
    with pytest.raises(ValueError, match="states"):
        TransformerPolicy(seed=0).act([np.nan, 0, 0, 0])
