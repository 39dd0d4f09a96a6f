"""Pre-training the decision transformer on i.i.d. SOURCE LQR data.

Each Adam step draws a fresh batch of states from the sampling box of
``sim.world.data`` (|x|, |x_dot| <= 0.5, |theta|, |theta_dot| <= 0.1) and labels it
with the SOURCE LQR force (the data are unlimited, so there is no epoch); a
fixed held-out set measures the force RMSE. Deterministic for a given seed.

It lives in ``sim/`` because it needs the plant (SOURCE), the state box
(``sim.world.data``) and the progress bar; the library (``controller/``) only
provides the model, the loss and Adam it trains with.
"""

from __future__ import annotations

import math
import time

import numpy as np

from controller import transformer as tf
from controller.checks import check_int, check_positive
from controller.lqr import LQRController
from controller.model import TransformerPolicy
from controller.transformer import Adam, TransformerConfig
from sim.world.cartpole import SOURCE, CartPoleParams
from sim.world.data import sample_dataset, sample_states
from sim.loops.progress import Progress

__all__ = ["pretrain", "force_rmse"]


def force_rmse(policy, states, forces):
    """RMSE (N) between the policy's decoded force and the (clipped) expert force."""
    target = np.clip(forces, -policy.config.u_max, policy.config.u_max)
    return float(np.sqrt(np.mean((policy.act(states) - target) ** 2)))


def pretrain(config: TransformerConfig | None = None, *, system: CartPoleParams = SOURCE, seed=0,
             steps=4000, batch=256, lr=3e-3, lr_final=1e-4, n_val=2000, progress=True, log_every=200):
    """Train a ``TransformerPolicy`` to imitate the LQR expert of ``system``.

    Parameters
    ----------
    config : TransformerConfig, optional
    system : CartPoleParams
        The plant whose LQR expert labels the data (SOURCE by default).
    seed : int
        Seeds the initialisation, the training stream and the held-out set.
    steps, batch : int
        Adam steps and samples per step.
    lr, lr_final : float
        Cosine learning-rate schedule from ``lr`` to ``lr_final``.
    n_val : int
        Held-out samples for the force RMSE.

    Returns
    -------
    policy : TransformerPolicy
    history : list of dict
        ``{"step", "loss", "val_rmse"}`` every ``log_every`` steps and at the end.
    """
    config = TransformerConfig() if config is None else config
    steps = check_int("steps", steps, low=1)
    batch = check_int("batch", batch, low=1)
    lr = check_positive("lr", lr)
    lr_final = check_positive("lr_final", lr_final)
    seed = check_int("seed", seed, low=0)
    root = np.random.default_rng(seed)
    init_rng, data_rng, val_rng = (np.random.default_rng(s) for s in root.integers(0, 2**63, size=3))
    expert = LQRController(system)
    policy = TransformerPolicy(config, tf.init_params(config, init_rng))
    tok = policy.tokenizer
    val_states, val_forces = sample_dataset(expert, n_val, val_rng)
    opt = Adam(lr=lr)
    history = []
    start = time.perf_counter()
    with Progress(steps, "pretrain", enabled=progress) as bar:
        for k in range(1, steps + 1):
            states = sample_states(batch, data_rng)
            targets = tok.encode(expert.act(states))
            loss, grads = tf.loss_and_grad(policy.params, config, states, targets)
            step_lr = lr_final + 0.5 * (lr - lr_final) * (1.0 + math.cos(math.pi * (k - 1) / steps))
            opt.step(policy.params, grads, step_lr)
            if k % log_every == 0 or k == steps:
                rmse = force_rmse(policy, val_states, val_forces)
                history.append({"step": k, "loss": float(loss), "val_rmse": rmse})
                bar.update(0, loss=float(loss), val_rmse=rmse)
            bar.update(1)
    policy.meta = {
        "task": "balance",
        "trained_on": {"m_c": system.m_c, "m_p": system.m_p, "l_p": system.l_p},
        "seed": seed, "steps": steps, "batch": batch, "lr": lr, "lr_final": lr_final,
        "val_rmse": history[-1]["val_rmse"], "final_loss": history[-1]["loss"],
        "train_seconds": time.perf_counter() - start,
    }
    return policy, history
