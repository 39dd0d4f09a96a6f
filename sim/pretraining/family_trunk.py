"""Multi-task pre-training of T_1 across a family of swing-up plants (docs/family-pretraining.md).

The KBT head reads the force linearly from z~(s) = [h(s); s_norm; 1]. Trained on
SOURCE only, no linear read-out of those features fits the TARGET expert well
(docs/onpolicy.md, "Swing-up: coverage"). Here T_1 is trained so that one
linear read-out per plant fits that plant's expert, for many plants at once
(the ALPaCA / Neural-Fly idea: a basis learned across conditions, only the
linear coefficients adapted online):

    L = CE_SOURCE(head.w; T_1)  +  lam * mean_(i,t) (v_i^T z~(s_it) - F_i(s_it))^2 / f^2

CE_SOURCE is the SOURCE recipe's soft cross-entropy over the force bins (so the
pre-trained controller, and the KBT prior mean it sets, stays SOURCE's expert);
v_i (d + 5,) is plant i's read-out, learned jointly; f = ``FORCE_SCALE`` N. The
raw features h are used: the KBT head's standardisation h' = T (h - mean) is an
affine map, so the best read-outs span the same forces.

Training starts from the given (shipped) weights, each v_i from the least-squares
read-out of its plant's data on the initial features.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from controller import transformer as tf
from controller.checks import check_int, check_positive
from controller.features import state_inverse_scale
from controller.model import TransformerPolicy
from sim.world.data import collect

__all__ = ["FORCE_SCALE", "TrunkRecipe", "readout_inputs", "multitask_loss_and_grad", "family_data",
           "train_family_trunk"]

#: force scale f of the regression term (N)
FORCE_SCALE = 10.0


def readout_inputs(h, states, s_inv):
    """z~ (N, d + 5) = [h; s * s_inv; 1]."""
    return np.hstack([h, states * s_inv, np.ones((len(states), 1))])


def multitask_loss_and_grad(P, cfg, V, batch, lam):
    """Loss L (above) and its gradients: a dict for T_1 and ``head.w``, and dV (n_plants, d + 5).

    ``batch``: (states (N, 4), forces (N,), plant index (N,) with -1 for SOURCE
    cross-entropy rows, soft targets (M, n_bins) of the M SOURCE rows, in order).
    """
    states, forces, pid, targets = batch
    h, cache = tf.features(P, cfg, states, return_cache=True)
    src, reg = pid < 0, pid >= 0
    ce, dlogits = tf.soft_cross_entropy(tf.head_logits(h[src], P["head.w"]), targets)
    W = P["head.w"]
    grads = {"head.w": np.vstack([h[src].T @ dlogits, dlogits.sum(axis=0, keepdims=True)])}
    dh = np.zeros_like(h)
    dh[src] = dlogits @ W[:-1].T
    Z = readout_inputs(h[reg], states[reg], state_inverse_scale(cfg.state_scale))         # (R, d + 5)
    Vr = V[pid[reg]]                                                          # (R, d + 5)
    r = (np.sum(Z * Vr, axis=1) - forces[reg]) / FORCE_SCALE                   # (R,)
    n = max(int(reg.sum()), 1)
    mse = float(np.mean(r * r)) if reg.any() else 0.0
    # dL/dpred_t = 2 lam r_t / (n f)
    dpred = 2.0 * lam * r / (n * FORCE_SCALE)
    dV = np.zeros_like(V)
    np.add.at(dV, pid[reg], dpred[:, None] * Z)
    dh[reg] = dpred[:, None] * Vr[:, :cfg.d_model]
    tf.features_backward(P, cfg, dh, cache, grads)
    return ce + lam * mse, grads, dV, (ce, mse)


@dataclass(frozen=True)
class TrunkRecipe:
    """Settings of ``train_family_trunk`` (checked on construction)."""

    seed: int = 0
    steps: int = 3000
    plants_per_step: int = 8       # family plants in each mini-batch
    per_plant: int = 32            # states per plant in a mini-batch
    source_batch: int = 128        # SOURCE cross-entropy rows per mini-batch (a quarter from the box)
    lam: float = 1.0               # weight of the regression term
    lr: float = 1e-3
    lr_final: float = 1e-4

    def __post_init__(self):
        for name in ("steps", "plants_per_step", "per_plant", "source_batch"):
            check_int(name, getattr(self, name), low=1)
        check_int("seed", self.seed, low=0)
        for name in ("lam", "lr", "lr_final"):
            check_positive(name, getattr(self, name))

    def step_lr(self, k):
        return self.lr_final + 0.5 * (self.lr - self.lr_final) * (1.0 + math.cos(math.pi * (k - 1) / self.steps))


def family_data(members, episodes, rng, noise_levels=(0.0, 2.0, 5.0)):
    """Per member (task, expert): its expert's states and clean forces over ``episodes``
    noisy episodes (noise std drawn per episode from ``noise_levels``), a list of (S, F)."""
    out = []
    for task, expert in members:
        sig = rng.choice(np.asarray(noise_levels), size=episodes)
        out.append(collect(task, expert, episodes, rng, noise_std=sig))
    return out


def _initial_readouts(policy, data):
    s_inv = state_inverse_scale(policy)
    V = []
    for S, F in data:
        Z = readout_inputs(policy.features(S), S, s_inv)
        V.append(np.linalg.lstsq(Z, F, rcond=None)[0])
    return np.array(V)


def _batch(data, source, expert, box, r, rng, tok):
    """One mini-batch (``multitask_loss_and_grad``'s ``batch``)."""
    S_src, F_src = source
    n_box = r.source_batch // 4
    idx = rng.integers(0, len(S_src), r.source_batch - n_box)
    sb = rng.uniform(-box, box, size=(n_box, 4))
    xs, ys, ps = [S_src[idx], sb], [F_src[idx], expert.act(sb)], [np.full(r.source_batch, -1)]
    targets = tok.encode(np.concatenate(ys))
    for i in rng.choice(len(data), size=min(r.plants_per_step, len(data)), replace=False):
        S, F = data[i]
        j = rng.integers(0, len(S), r.per_plant)
        xs.append(S[j]), ys.append(F[j]), ps.append(np.full(r.per_plant, i))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ps), targets


def train_family_trunk(policy: TransformerPolicy, data, source, expert, recipe: TrunkRecipe, log=print):
    """Train ``policy`` (in place) on the family objective; returns (V, history).

    ``data``: per plant (S, F); ``source``: SOURCE expert (S, F) for the cross-entropy;
    ``expert``: SOURCE's expert (labels the box share of the SOURCE rows)."""
    r = recipe
    rng = np.random.default_rng(r.seed)
    V = _initial_readouts(policy, data)
    params = dict(policy.params)
    params["family.V"] = V
    opt = tf.Adam(lr=r.lr)
    box = np.asarray(policy.config.state_scale, dtype=float)
    tok = policy.tokenizer
    history, t0, acc = [], time.perf_counter(), []
    for k in range(1, r.steps + 1):
        batch = _batch(data, source, expert, box, r, rng, tok)
        loss, grads, dV, parts = multitask_loss_and_grad(policy.params, policy.config, V, batch, r.lam)
        grads["family.V"] = dV
        opt.step(params, grads, r.step_lr(k))
        acc.append(parts)
        if k % max(r.steps // 10, 1) == 0 or k == r.steps:
            ce, mse = np.mean(acc, axis=0)
            history.append({"step": k, "ce": float(ce), "rmse": float(np.sqrt(mse) * FORCE_SCALE),
                            "seconds": time.perf_counter() - t0})
            log(f"step {k}: SOURCE cross-entropy {ce:.4f}, family read-out RMSE {np.sqrt(mse) * FORCE_SCALE:.3f} N "
                f"({time.perf_counter() - t0:.0f} s)")
            acc = []
    return V, history
