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
from dataclasses import dataclass

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

__all__ = ["SWINGUP_CONFIG", "SwingupRecipe", "pretrain_swingup", "collect"]

#: the swing-up transformer: the balance model's shape, a box covering the swing-up's states
#: (the expert's own rollouts reach |x| 1.85 m, |x_dot| 3.3 m/s, |theta_dot| 7.5 rad/s)
SWINGUP_CONFIG = TransformerConfig(state_scale=(2.0, 3.5, math.pi, 8.0))


@dataclass(frozen=True)
class SwingupRecipe:
    """The pre-training recipe (every field checked on construction).

    Attributes
    ----------
    seed : int
        Seeds the initialisation, the rollouts, the mini-batches and the checks.
    expert_episodes : int
        Noisy expert episodes before the first training phase.
    noise_levels : tuple of float
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
    """

    seed: int = 0
    expert_episodes: int = 200
    noise_levels: tuple = (0.0, 2.0, 5.0, 10.0)
    dagger_rounds: int = 4
    dagger_episodes: int = 100
    beta0: float = 0.5
    steps_initial: int = 4000
    steps_per_round: int = 2000
    batch: int = 256
    box_fraction: float = 0.25
    lr: float = 3e-3
    lr_final: float = 1e-4
    eval_episodes: int = 50
    n_val_episodes: int = 20
    report_episodes: int = 100

    def __post_init__(self):
        for name in ("seed", "dagger_rounds"):
            object.__setattr__(self, name, check_int(name, getattr(self, name), low=0))
        for name in ("expert_episodes", "dagger_episodes", "steps_initial", "steps_per_round", "batch",
                     "eval_episodes", "n_val_episodes", "report_episodes"):
            object.__setattr__(self, name, check_int(name, getattr(self, name), low=1))
        levels = tuple(check_positive("noise_levels", v, allow_zero=True) for v in self.noise_levels)
        if not levels:
            raise ValueError("noise_levels: expected at least one standard deviation")
        object.__setattr__(self, "noise_levels", levels)
        beta0 = check_positive("beta0", self.beta0, allow_zero=True)
        if beta0 > 1.0:
            raise ValueError(f"beta0: expected a number in [0, 1] but found {beta0!r}")
        box_fraction = check_positive("box_fraction", self.box_fraction, allow_zero=True)
        if box_fraction >= 1.0:
            raise ValueError(f"box_fraction: expected a number in [0, 1) but found {box_fraction!r}")
        for name, value in (("beta0", beta0), ("box_fraction", box_fraction), ("lr", check_positive("lr", self.lr)),
                            ("lr_final", check_positive("lr_final", self.lr_final))):
            object.__setattr__(self, name, value)

    @property
    def total_steps(self):
        return self.steps_initial + self.dagger_rounds * self.steps_per_round

    def beta(self, rnd):
        """The expert's mixing probability in DAgger round ``rnd`` >= 1."""
        if self.dagger_rounds <= 1:
            return 0.0
        return self.beta0 * (1.0 - (rnd - 1) / max(self.dagger_rounds - 1, 1))

    def step_lr(self, k):
        """Learning rate of step ``k`` (1-based): cosine from lr to lr_final over all phases."""
        return self.lr_final + 0.5 * (self.lr - self.lr_final) * (1.0 + math.cos(math.pi * (k - 1) / self.total_steps))


def pretrain_swingup(config: TransformerConfig | None = None, *, system: CartPoleParams = SWINGUP.params,
                     progress=True, **recipe):
    """Train a ``TransformerPolicy`` to imitate the swing-up expert designed for ``system``.

    Parameters
    ----------
    config : TransformerConfig, optional
        Default ``SWINGUP_CONFIG``.
    system : CartPoleParams
        The plant the expert is designed for and the data come from (SOURCE, RK4).
    progress : bool
        Show a progress bar and one line per phase.
    **recipe
        Fields of ``SwingupRecipe`` (seed, episodes, DAgger rounds, steps, learning rates).

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
    r = SwingupRecipe(**recipe)
    task = SWINGUP.on(system)
    expert = SwingupExpert(system)
    root = np.random.default_rng(r.seed)
    init_rng, data_rng, batch_rng, val_rng = (np.random.default_rng(s) for s in root.integers(0, 2**63, size=4))
    eval_seed = int(root.integers(1, 2**31))
    policy = TransformerPolicy(config, tf.init_params(config, init_rng))
    start = time.perf_counter()
    val_states, val_forces = collect(task, expert, r.n_val_episodes, val_rng)    # held out, for the RMSE
    # 1. noisy expert rollouts
    sigmas = data_rng.choice(np.asarray(r.noise_levels), size=r.expert_episodes)
    data = [collect(task, expert, r.expert_episodes, data_rng, noise_std=sigmas)]
    trainer = _Trainer(policy, expert, r, batch_rng)
    history = []
    with Progress(r.total_steps, "pretrain swingup", enabled=progress) as bar:
        for rnd in range(r.dagger_rounds + 1):
            if rnd > 0:
                # 2. DAgger: the current policy (mixed with the expert) visits, the expert labels
                data.append(collect(task, expert, r.dagger_episodes, data_rng, policy=policy, beta=r.beta(rnd)))
            states = np.concatenate([s for s, _ in data])
            forces = np.concatenate([f for _, f in data])
            loss = trainer.train(states, forces, r.steps_initial if rnd == 0 else r.steps_per_round, bar)
            success = evaluate_success(policy, task, r.eval_episodes, seed=eval_seed).success_rate
            rmse = force_rmse(policy, val_states, val_forces)
            history.append({"round": rnd, "step": trainer.k, "loss": loss, "n_data": int(len(states)),
                            "val_rmse": rmse, "success": success, "seconds": time.perf_counter() - start})
            bar.clear()
            if progress:
                print(f"round {rnd}: {len(states)} labelled states, loss {loss:.4f}, held-out force "
                      f"RMSE {rmse:.3f} N, success {success:.2f} on {r.eval_episodes} check episodes", flush=True)
    policy.meta = _meta(policy, system, expert, r, history, time.perf_counter() - start)
    return policy, history


class _Trainer:
    """Adam on the soft cross-entropy, mini-batches from the data plus a share from the box."""

    def __init__(self, policy, expert, recipe, rng):
        self.policy, self.expert, self.r, self.rng = policy, expert, recipe, rng
        self.opt = Adam(lr=recipe.lr)
        self.box = np.asarray(policy.config.state_scale, dtype=float)
        self.n_box = int(round(recipe.box_fraction * recipe.batch))
        self.k = 0                      # steps taken over all phases

    def train(self, states, forces, steps, bar):
        """``steps`` Adam steps; returns the last mini-batch's loss."""
        config, tok = self.policy.config, self.policy.tokenizer
        for _ in range(steps):
            self.k += 1
            idx = self.rng.integers(0, len(states), self.r.batch - self.n_box)
            xb, yb = states[idx], forces[idx]
            if self.n_box:
                sb = self.rng.uniform(-self.box, self.box, size=(self.n_box, 4))
                xb = np.concatenate([xb, sb])
                yb = np.concatenate([yb, self.expert.act(sb)])
            loss, grads = tf.loss_and_grad(self.policy.params, config, xb, tok.encode(yb))
            self.opt.step(self.policy.params, grads, self.r.step_lr(self.k))
            bar.update(1, loss=float(loss))
        return float(loss)


def _meta(policy, system, expert, r, history, train_seconds):
    """``policy.meta``: the recipe, the data, the held-out RMSE, and success over ``report_episodes``
    episodes (seed 0) on the training plant and the two swing-up shifts."""
    meta = {
        "task": "swingup",
        "trained_on": {"m_c": system.m_c, "m_p": system.m_p, "l_p": system.l_p},
        "expert": expert.name, "k_e": expert.k_e,
        "seed": r.seed, "expert_episodes": r.expert_episodes, "noise_levels": list(r.noise_levels),
        "dagger_rounds": r.dagger_rounds, "dagger_episodes": r.dagger_episodes, "beta0": r.beta0,
        "steps_initial": r.steps_initial, "steps_per_round": r.steps_per_round, "batch": r.batch,
        "box_fraction": r.box_fraction, "lr": r.lr, "lr_final": r.lr_final,
        "n_data": history[-1]["n_data"], "final_loss": history[-1]["loss"], "val_rmse": history[-1]["val_rmse"],
        "train_seconds": train_seconds, "success_episodes": r.report_episodes,
    }
    for name, plant in (("source", system), ("target", SWINGUP_TARGET), ("shift2", SWINGUP_SHIFT2)):
        meta[f"success_{name}"] = evaluate_success(policy, SWINGUP.on(plant), r.report_episodes,
                                                   seed=0).success_rate
    return meta
