"""ALPaCA-style pre-training of T_1: the closed-form posterior-predictive loss and its gradients
against central finite differences."""

import math

import numpy as np
import pytest

from controller import transformer as tf
from controller.transformer import TransformerConfig
from sim.pretraining.alpaca import (P0_EPS, Standardiser, alpaca_loss_and_grad, kbt_prior, posterior,
                                    predictive_nll)
from finite_differences import check_directions


def _prior(n, rng):
    L = np.tril(rng.normal(size=(n, n))) * 0.3 + np.eye(n)
    return {"alpaca.m0": rng.normal(size=n), "alpaca.L": L, "alpaca.rho": np.array([math.log(0.7)])}


def _problem(cfg, seed=0):
    rng = np.random.default_rng(seed)
    P = {k: v + 0.1 * rng.normal(size=v.shape) for k, v in tf.init_params(cfg, rng).items()}
    n_src = 4
    tasks, rows = [], n_src
    for k in (0, 3, 7):                          # k = 0: the prior alone
        tasks.append((rows + np.arange(k), rows + k + np.arange(5)))
        rows += k + 5
    states = rng.uniform(-1, 1, (rows, 4)) * np.array(cfg.state_scale)
    forces = rng.normal(0, 3, rows)
    targets = rng.dirichlet(np.ones(cfg.n_bins), size=n_src)
    d = cfg.d_model
    std = Standardiser(rng.normal(size=d), rng.uniform(0.5, 2.0, d), np.full(4, 1.3))
    return P, _prior(d + 5, rng), (states, forces, n_src, targets, tasks), std, rng


def _check(loss, arrays, rng, **kw):
    check_directions(loss, arrays, rng, lower=("alpaca.L",), **kw)


def test_predictive_nll_gradients_match_finite_differences():
    rng = np.random.default_rng(3)
    n = 6
    Zc, yc, Zq, yq = rng.normal(size=(9, n)), rng.normal(size=9), rng.normal(size=(4, n)), rng.normal(size=4)
    pr = _prior(n, rng)
    m0, L, rho = pr["alpaca.m0"], pr["alpaca.L"], pr["alpaca.rho"]
    _, dZc, dZq, dm0, dL, drho = predictive_nll(Zc, yc, Zq, yq, m0, L, rho[0])

    def loss():
        return predictive_nll(Zc, yc, Zq, yq, m0, L, rho[0])[0]

    _check(loss, [("Zc", Zc, dZc), ("Zq", Zq, dZq), ("m0", m0, dm0), ("alpaca.L", L, dL),
                  ("rho", rho, np.array([drho]))], rng)


def test_predictive_nll_is_the_closed_form_posterior_predictive():
    rng = np.random.default_rng(4)
    n = 5
    Zc, yc, Zq, yq = rng.normal(size=(7, n)), rng.normal(size=7), rng.normal(size=(3, n)), rng.normal(size=3)
    pr = _prior(n, rng)
    P0 = pr["alpaca.L"] @ pr["alpaca.L"].T + P0_EPS * np.eye(n)
    R = math.exp(pr["alpaca.rho"][0])
    # the same posterior by sequential Kalman updates, one label at a time
    m, P = pr["alpaca.m0"].copy(), P0.copy()
    for z, y in zip(Zc, yc):
        k = P @ z / (z @ P @ z + R)
        m, P = m + k * (y - z @ m), P - np.outer(k, z @ P)
    mk, Pk = posterior(Zc, yc, pr["alpaca.m0"], P0, R)
    np.testing.assert_allclose(mk, m, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(Pk, P, rtol=1e-8, atol=1e-10)
    v = np.einsum("qi,ij,qj->q", Zq, P, Zq) + R
    ref = float(np.sum(0.5 * np.log(2 * np.pi * v) + 0.5 * (yq - Zq @ m) ** 2 / v))
    got = predictive_nll(Zc, yc, Zq, yq, pr["alpaca.m0"], pr["alpaca.L"], pr["alpaca.rho"][0])[0]
    assert got == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("cfg", [TransformerConfig(), TransformerConfig(n_layers=1, d_model=8, d_ff=4, final_ln=True)])
def test_alpaca_gradients_match_finite_differences(cfg):
    P, prior, batch, std, rng = _problem(cfg)
    lam = 0.7
    _, grads, _ = alpaca_loss_and_grad(P, cfg, prior, batch, lam, std)
    assert set(grads) == set(tf.param_shapes(cfg)) | set(prior)

    def loss():
        return alpaca_loss_and_grad(P, cfg, prior, batch, lam, std)[0]

    # atol: the loss is O(10), so its rounding in a difference over 2e-5 is ~1e-9 (attn.bk's
    # gradient is exactly zero: the softmax does not see a key bias)
    _check(loss, [(k, P[k], grads[k]) for k in P] + [(k, prior[k], grads[k]) for k in prior], rng, atol=1e-8)


def test_without_tasks_it_is_the_source_cross_entropy():
    cfg = TransformerConfig()
    P, prior, (states, forces, n_src, targets, _), std, _ = _problem(cfg)
    loss, grads, (ce, nll) = alpaca_loss_and_grad(P, cfg, prior, (states[:n_src], forces[:n_src], n_src, targets, []),
                                                  1.0, std)
    ref, ref_grads = tf.loss_and_grad(P, cfg, states[:n_src], targets)
    assert loss == pytest.approx(ref) and nll == 0.0
    for k in ref_grads:
        np.testing.assert_allclose(grads[k], ref_grads[k], rtol=1e-12, atol=1e-14)


def test_kbt_prior_gives_the_same_predictions_in_the_kbt_inputs():
    """The learned prior carried over to KBT's standardised inputs predicts the same mean and
    variance at every state as in the training coordinates."""
    from controller.kbt import KBTController
    from controller.model import TransformerPolicy
    from sim.pretraining.alpaca import alpaca_inputs

    cfg = TransformerConfig(d_model=8, d_ff=4, n_layers=1)
    rng = np.random.default_rng(5)
    policy = TransformerPolicy(cfg, tf.init_params(cfg, rng))
    std = Standardiser(rng.normal(size=8), rng.uniform(0.5, 2.0, 8), Standardiser.of(policy).s_inv)
    prior = _prior(13, rng)
    c = KBTController(policy)
    m, P, R = kbt_prior(c, prior, std)
    S = rng.uniform(-0.3, 0.3, (20, 4))
    Zt = alpaca_inputs(policy.features(S), S, std)
    Zk = np.hstack([c.inputs(S), np.ones((20, 1))])
    P0 = prior["alpaca.L"] @ prior["alpaca.L"].T + P0_EPS * np.eye(13)
    np.testing.assert_allclose(Zk @ m, Zt @ prior["alpaca.m0"], rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(np.einsum("qi,ij,qj->q", Zk, P, Zk), np.einsum("qi,ij,qj->q", Zt, P0, Zt), rtol=1e-7)
    assert R == pytest.approx(0.7)
