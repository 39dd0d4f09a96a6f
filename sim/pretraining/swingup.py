"""Pre-training the decision transformer on SOURCE swing-up expert data (docs/swingup.md).

The swing-up expert (``sim.world.swingup_expert.SwingupExpert`` designed for
SOURCE) is imitated on the states it and the learner visit, not on a box:

1. expert rollouts with noise injection: ``expert_episodes`` episodes of the
   swing-up task, the expert's force perturbed by Gaussian noise whose
   standard deviation is drawn per episode from ``noise_levels``; every
   visited state is labelled with the clean expert force;
2. DAgger rounds: roll out the current transformer, mixed with the expert
   (each period, the expert's force with probability ``beta`` falling
   linearly from ``beta0`` to 0 over the rounds), label the visited states
   with the expert, aggregate them with all earlier data and continue
   training;
3. training throughout: the soft cross-entropy over the force bins
   (``controller.transformer.loss_and_grad``) with Adam, mini-batches drawn
   uniformly from the aggregated data plus a share ``box_fraction`` of
   states uniform in the box ``config.state_scale`` (so the policy is
   defined, and the KBT head's box is labelled, away from the trajectories),
   one cosine learning-rate schedule over all steps.

Deterministic for a seed. The final policy's held-out force RMSE (clean
expert episodes) and its success over 100 seeded episodes (seed 0) on
SOURCE, ``SWINGUP_TARGET`` and ``SWINGUP_SHIFT2`` are stored in
``policy.meta``.
"""

from __future__ import annotations

import math
import time

import numpy as np

from controller import transformer as tf
from controller.checks import check_int, check_positive
from controller.model import TransformerPolicy
from controller.transformer import Adam, TransformerConfig
from sim.world.cartpole import CartPoleParams
from sim.world.data import collect
from sim.loops.loop import evaluate_success
from sim.pretraining.balance import force_rmse
from sim.loops.progress import Progress
from sim.world.swingup_expert import SwingupExpert
from sim.world.task import SWINGUP, SWINGUP_SHIFT2, SWINGUP_TARGET

__all__ = ["SWINGUP_CONFIG", "pretrain_swingup", "collect"]

#: the swing-up transformer: the balance model's shape, a box covering the swing-up's states
#: (the expert's own rollouts reach |x| 1.85 m, |x_dot| 3.3 m/s, |theta_dot| 7.5 rad/s)
SWINGUP_CONFIG = TransformerConfig(state_scale=(2.0, 3.5, math.pi, 8.0))


def pretrain_swingup(config: TransformerConfig | None = None, *, system: CartPoleParams = SWINGUP.params,
                     seed=0, expert_episodes=200, noise_levels=(0.0, 2.0, 5.0, 10.0), dagger_rounds=4,
                     dagger_episodes=100, beta0=0.5, steps_initial=4000, steps_per_round=2000, batch=256,
                     box_fraction=0.25, lr=3e-3, lr_final=1e-4, eval_episodes=50, n_val_episodes=20, report_episodes=100,
                     progress=True):
    """Train a ``TransformerPolicy`` to imitate the swing-up expert designed for ``system``.

    Parameters
    ----------
    config : TransformerConfig, optional
        Default ``SWINGUP_CONFIG``.
    system : CartPoleParams
        The plant the expert is designed for and the data come from (SOURCE, RK4).
    seed : int
        Seeds the initialisation, the rollouts, the mini-batches and the checks.
    expert_episodes : int
        Noisy expert episodes before the first training phase.
    noise_levels : sequence of float
        Force-noise standard deviations (N), one drawn per expert episode.
    dagger_rounds, dagger_episodes : int
        DAgger rounds after the first phase, and policy episodes per round.
    beta0 : float
        Expert mixing probability of the first DAgger round, in [0, 1]; falls linearly to 0 in the last.
    steps_initial, steps_per_round, batch : int
        Adam steps of the first phase and of each DAgger round; samples per step.
    box_fraction : float
        Share of each mini-batch drawn uniformly from the box ``config.state_scale``, in [0, 1).
    lr, lr_final : float
        Cosine learning-rate schedule over all steps.
    eval_episodes : int
        Episodes (seeded from ``seed``, not the reported seed-0 set) of the per-round success check.
    n_val_episodes : int
        Clean expert episodes (seeded from ``seed``) whose states measure the held-out force RMSE.
    report_episodes : int
        Episodes (seed 0) of the success rates stored in ``policy.meta`` (100: the reported figures).

    Returns
    -------
    policy : TransformerPolicy
        ``policy.meta`` holds the recipe, the data size, the held-out force RMSE and
        ``success_source`` / ``success_target`` / ``success_shift2`` (``report_episodes``, seed 0).
    history : list of dict
        One entry per phase: ``{"round", "step", "loss", "n_data", "val_rmse", "success", "seconds"}``.
    """
    config = SWINGUP_CONFIG if config is None else config
    if not isinstance(config, TransformerConfig):
        raise TypeError(f"config: expected TransformerConfig but found {type(config).__name__}")
    if not isinstance(system, CartPoleParams):
        raise TypeError(f"system: expected CartPoleParams but found {type(system).__name__}")
    seed = check_int("seed", seed, low=0)
    expert_episodes = check_int("expert_episodes", expert_episodes, low=1)
    dagger_rounds = check_int("dagger_rounds", dagger_rounds, low=0)
    dagger_episodes = check_int("dagger_episodes", dagger_episodes, low=1)
    steps_initial = check_int("steps_initial", steps_initial, low=1)
    steps_per_round = check_int("steps_per_round", steps_per_round, low=1)
    batch = check_int("batch", batch, low=1)
    eval_episodes = check_int("eval_episodes", eval_episodes, low=1)
    n_val_episodes = check_int("n_val_episodes", n_val_episodes, low=1)
    report_episodes = check_int("report_episodes", report_episodes, low=1)
    noise_levels = [check_positive("noise_levels", v, allow_zero=True) for v in noise_levels]
    if not noise_levels:
        raise ValueError("noise_levels: expected at least one standard deviation")
    beta0 = check_positive("beta0", beta0, allow_zero=True)
    if beta0 > 1.0:
        raise ValueError(f"beta0: expected a number in [0, 1] but found {beta0!r}")
    box_fraction = check_positive("box_fraction", box_fraction, allow_zero=True)
    if box_fraction >= 1.0:
        raise ValueError(f"box_fraction: expected a number in [0, 1) but found {box_fraction!r}")
    lr = check_positive("lr", lr)
    lr_final = check_positive("lr_final", lr_final)

    task = SWINGUP.on(system)
    expert = SwingupExpert(system)
    root = np.random.default_rng(seed)
    init_rng, data_rng, batch_rng, val_rng = (np.random.default_rng(s) for s in root.integers(0, 2**63, size=4))
    eval_seed = int(root.integers(1, 2**31))
    policy = TransformerPolicy(config, tf.init_params(config, init_rng))
    tok = policy.tokenizer
    box = np.asarray(config.state_scale, dtype=float)
    opt = Adam(lr=lr)
    total = steps_initial + dagger_rounds * steps_per_round
    n_box = int(round(box_fraction * batch))
    history = []
    start = time.perf_counter()

    # held out: clean expert episodes, for the force RMSE
    val_states, val_forces = collect(task, expert, n_val_episodes, val_rng)

    # 1. noisy expert rollouts
    sigmas = data_rng.choice(np.asarray(noise_levels), size=expert_episodes)
    S, F = collect(task, expert, expert_episodes, data_rng, noise_std=sigmas)
    data_s, data_f = [S], [F]

    k = 0
    with Progress(total, "pretrain swingup", enabled=progress) as bar:
        for rnd in range(dagger_rounds + 1):
            if rnd > 0:
                # 2. DAgger: the current policy (mixed with the expert) visits, the expert labels
                beta = beta0 * (1.0 - (rnd - 1) / max(dagger_rounds - 1, 1)) if dagger_rounds > 1 else 0.0
                S, F = collect(task, expert, dagger_episodes, data_rng, policy=policy, beta=beta)
                data_s.append(S)
                data_f.append(F)
            states = np.concatenate(data_s)
            forces = np.concatenate(data_f)
            steps = steps_initial if rnd == 0 else steps_per_round
            for _ in range(steps):
                k += 1
                idx = batch_rng.integers(0, len(states), batch - n_box)
                xb = states[idx]
                yb = forces[idx]
                if n_box:
                    sb = batch_rng.uniform(-box, box, size=(n_box, 4))
                    xb = np.concatenate([xb, sb])
                    yb = np.concatenate([yb, expert.act(sb)])
                loss, grads = tf.loss_and_grad(policy.params, config, xb, tok.encode(yb))
                # cosine from lr to lr_final over all phases
                step_lr = lr_final + 0.5 * (lr - lr_final) * (1.0 + math.cos(math.pi * (k - 1) / total))
                opt.step(policy.params, grads, step_lr)
                bar.update(1, loss=float(loss))
            success = evaluate_success(policy, task, eval_episodes, seed=eval_seed).success_rate
            rmse = force_rmse(policy, val_states, val_forces)
            history.append({"round": rnd, "step": k, "loss": float(loss), "n_data": int(len(states)),
                            "val_rmse": rmse, "success": success, "seconds": time.perf_counter() - start})
            bar.clear()
            if progress:
                print(f"round {rnd}: {len(states)} labelled states, loss {float(loss):.4f}, held-out force "
                      f"RMSE {rmse:.3f} N, success {success:.2f} on {eval_episodes} check episodes", flush=True)
    train_seconds = time.perf_counter() - start
    policy.meta = {
        "task": "swingup",
        "trained_on": {"m_c": system.m_c, "m_p": system.m_p, "l_p": system.l_p},
        "expert": expert.name, "k_e": expert.k_e,
        "seed": seed, "expert_episodes": expert_episodes, "noise_levels": list(noise_levels),
        "dagger_rounds": dagger_rounds, "dagger_episodes": dagger_episodes, "beta0": beta0,
        "steps_initial": steps_initial, "steps_per_round": steps_per_round, "batch": batch,
        "box_fraction": box_fraction, "lr": lr, "lr_final": lr_final,
        "n_data": history[-1]["n_data"], "final_loss": history[-1]["loss"], "val_rmse": history[-1]["val_rmse"],
        "train_seconds": train_seconds,
    }
    # success over report_episodes (100) episodes, seed 0, on the training plant and the two swing-up shifts
    policy.meta["success_episodes"] = report_episodes
    for name, plant in (("source", system), ("target", SWINGUP_TARGET), ("shift2", SWINGUP_SHIFT2)):
        policy.meta[f"success_{name}"] = evaluate_success(policy, SWINGUP.on(plant), report_episodes,
                                                          seed=0).success_rate
    return policy, history
