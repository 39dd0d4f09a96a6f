"""Multi-task family pre-training of T_1: the new gradients against central finite differences."""

import numpy as np
import pytest

from controller import transformer as tf
from controller.transformer import TransformerConfig
from sim.pretraining.family_trunk import multitask_loss_and_grad
from finite_differences import check_directions


def _problem(cfg, seed=0, n_plants=3):
    rng = np.random.default_rng(seed)
    P = {k: v + 0.1 * rng.normal(size=v.shape) for k, v in tf.init_params(cfg, rng).items()}
    n = 12
    states = rng.uniform(-1, 1, (n, 4)) * np.array(cfg.state_scale)
    pid = np.array([-1] * 4 + list(rng.integers(0, n_plants, n - 4)))
    forces = rng.normal(0, 10, n)
    targets = rng.dirichlet(np.ones(cfg.n_bins), size=4)
    V = rng.normal(size=(n_plants, cfg.d_model + 5))
    return P, V, (states, forces, pid, targets), rng


@pytest.mark.parametrize("cfg", [TransformerConfig(), TransformerConfig(n_layers=1, d_model=8, d_ff=4, final_ln=True)])
def test_multitask_gradients_match_finite_differences(cfg):
    P, V, batch, rng = _problem(cfg)
    lam = 0.7
    _, grads, dV, _ = multitask_loss_and_grad(P, cfg, V, batch, lam)
    assert set(grads) == set(tf.param_shapes(cfg))

    def loss():
        return multitask_loss_and_grad(P, cfg, V, batch, lam)[0]

    check_directions(loss, [(k, P[k], grads[k]) for k in P] + [("V", V, dV)], rng)


def test_without_regression_rows_it_is_the_source_cross_entropy():
    cfg = TransformerConfig()
    P, V, (states, forces, pid, targets), _ = _problem(cfg)
    src = pid < 0
    loss, grads, dV, (ce, mse) = multitask_loss_and_grad(P, cfg, V, (states[src], forces[src], pid[src], targets), 1.0)
    ref, ref_grads = tf.loss_and_grad(P, cfg, states[src], targets)
    assert loss == pytest.approx(ref) and mse == 0.0 and not dV.any()
    for k in ref_grads:
        np.testing.assert_allclose(grads[k], ref_grads[k], rtol=1e-12, atol=1e-14)


def test_training_lowers_the_family_readout_error():
    """A few Adam steps on two synthetic plants (forces nonlinear in the state): the
    per-plant read-out error falls, and the trained weights stay a usable policy."""
    from controller.model import TransformerPolicy
    from sim.pretraining.family_trunk import TrunkRecipe, train_family_trunk

    cfg = TransformerConfig(d_model=8, d_ff=4, n_layers=1, state_scale=(1.0, 1.0, 1.0, 1.0))
    policy = TransformerPolicy(cfg, tf.init_params(cfg, np.random.default_rng(0)))
    rng = np.random.default_rng(1)

    class Expert:
        def act(self, S):
            return 5.0 * np.tanh(3.0 * S[:, 2]) + S[:, 0]

    data = []
    for a in (1.0, -2.0):
        S = rng.uniform(-1, 1, (400, 4))
        data.append((S, a * 5.0 * np.sin(3.0 * S[:, 2]) + S[:, 1]))
    S = rng.uniform(-1, 1, (400, 4))
    logs = []
    _, hist = train_family_trunk(policy, data, (S, Expert().act(S)), Expert(),
                                 TrunkRecipe(steps=200, lam=30.0, lr=3e-3, plants_per_step=2, per_plant=64),
                                 log=logs.append)
    assert len(hist) == 10 and len(logs) == 10
    assert hist[-1]["rmse"] < 0.8 * hist[0]["rmse"]
    assert np.isfinite(policy.act(S)).all()
