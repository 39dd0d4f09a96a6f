"""ALPaCA-style pre-training of T_1 across a family of swing-up plants (docs/family-pretraining.md).

The KBT head is Bayesian linear regression of the force on z~(s). ALPaCA
(Harrison et al. 2018) meta-learns the features and the prior of exactly that
regression so that, on one task, the posterior after k context labels predicts
held-out labels of the same task well. Here, for a plant i of the training
family and its expert F_i:

    context (S_c, y_c): k labels of plant i;  query (S_q, y_q): other labels of plant i
    Lambda_k = P0^-1 + Z_c^T Z_c / R,   m_k = Lambda_k^-1 (P0^-1 m0 + Z_c^T y_c / R)      (closed form)
    NLL = -mean_q log N(y_q; m_k^T z~_q, z~_q^T Lambda_k^-1 z~_q + R)

    L = CE_SOURCE(head.w; T_1) + lam * mean over plants and queries of NLL

with the learned prior mean m0, P0 = L0 L0^T + eps I (L0 lower triangular) and
R = exp(rho). z~(s) = [T_s (h(s) - mu_s); s_norm; 1], where (mu_s, T_s) is KBT's
feature standardiser of the *initial* weights, held fixed during training (an
affine map: only the conditioning changes); ``kbt_prior`` carries the learned
prior over to the KBT head's own inputs for the trained weights. CE_SOURCE is the
SOURCE recipe's soft cross-entropy, as in ``sim.pretraining.family_trunk``. The
gradient reaches T_1 through ``controller.transformer.features_backward``;
``tests/test_alpaca.py`` checks every gradient against central finite differences.

k is drawn log-uniformly in 0..``k_max``; the context is either i.i.d. from the
plant's states or (``traj_share`` of the tasks) k consecutive ticks of one of its
expert episodes, from the start of the episode in half of those (the on-policy
stream's first labels are the first ticks of an episode).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from controller import transformer as tf
from controller.checks import check_int, check_positive
from controller.model import TransformerPolicy
# the learned prior's coordinates and its carry-over to KBT's inputs live beside the shipped weight sets
from controller.weight_sets import P0_EPS, Standardiser, kbt_prior
from sim.world.data import collect

__all__ = ["AlpacaRecipe", "Standardiser", "alpaca_inputs", "predictive_nll", "alpaca_loss_and_grad",
           "posterior", "family_trajectories", "initial_prior", "train_alpaca", "kbt_prior", "P0_EPS"]

_LOG2PI = math.log(2.0 * math.pi)


def alpaca_inputs(h, states, std):
    """z~ (N, d + 5) = [(h - mu) t; s s_inv; 1]."""
    return np.hstack([(h - std.mu) * std.t, states * std.s_inv, np.ones((len(states), 1))])


def posterior(Zc, yc, m0, P0, R):
    """Posterior mean m_k and covariance P_k of the read-out after the context (Zc, yc)."""
    L0 = np.linalg.inv(P0)
    Pk = np.linalg.inv(L0 + Zc.T @ Zc / R)
    return Pk @ (L0 @ m0 + Zc.T @ yc / R), Pk


def predictive_nll(Zc, yc, Zq, yq, m0, L, rho, eps=P0_EPS, scale=1.0):
    """``scale`` * sum over queries of -log N(y_q; m_k^T z_q, z_q^T P_k z_q + R), and its gradients
    (dZc, dZq, dm0, dL, drho). P0 = L L^T + eps I, R = exp(rho); see the module docstring."""
    R = math.exp(rho)
    n = m0.size
    P0 = L @ L.T + eps * np.eye(n)
    Lam0 = np.linalg.inv(P0)
    Lam0 = 0.5 * (Lam0 + Lam0.T)
    Lamk = Lam0 + Zc.T @ Zc / R
    Pk = np.linalg.inv(Lamk)
    Pk = 0.5 * (Pk + Pk.T)
    eta = Lam0 @ m0 + Zc.T @ yc / R
    mk = Pk @ eta
    mu = Zq @ mk
    PZ = Zq @ Pk                                         # (q, n)
    v = np.sum(PZ * Zq, axis=1) + R
    e = yq - mu
    loss = scale * 0.5 * float(np.sum(_LOG2PI + np.log(v) + e * e / v))
    gmu = -scale * e / v
    gv = scale * 0.5 * (1.0 / v - e * e / (v * v))
    dR = float(gv.sum())
    dZq = gmu[:, None] * mk + 2.0 * gv[:, None] * PZ
    dmk = Zq.T @ gmu
    G = (Zq * gv[:, None]).T @ Zq + np.outer(dmk, eta)    # d/dP_k
    deta = Pk @ dmk
    dLamk = -Pk @ G @ Pk
    dLam0 = dLamk + np.outer(deta, m0)
    dZc = Zc @ (dLamk + dLamk.T) / R + np.outer(yc, deta) / R
    dR -= float(np.sum(dLamk * (Zc.T @ Zc))) / R ** 2 + float(deta @ (Zc.T @ yc)) / R ** 2
    dm0 = Lam0 @ deta
    dP0 = -Lam0 @ dLam0 @ Lam0
    dL = np.tril((dP0 + dP0.T) @ L)
    return loss, dZc, dZq, dm0, dL, dR * R


def alpaca_loss_and_grad(P, cfg, prior, batch, lam, std, eps=P0_EPS):
    """Loss L (module docstring) and its gradients: a dict for T_1, ``head.w`` and the prior
    (``alpaca.m0``, ``alpaca.L``, ``alpaca.rho``).

    ``prior``: dict with ``alpaca.m0`` (n,), ``alpaca.L`` (n, n) lower triangular, ``alpaca.rho`` (1,).
    ``batch``: (states (N, 4), forces (N,), n_src, targets (n_src, n_bins), tasks): the first
    ``n_src`` rows are SOURCE cross-entropy rows with soft ``targets``; ``tasks`` is a list of
    (context row indices, query row indices) into the rest (indices into the whole batch).
    Returns (loss, grads, (ce, nll per query))."""
    states, forces, n_src, targets, tasks = batch
    h, cache = tf.features(P, cfg, states, return_cache=True)
    W = P["head.w"]
    dh = np.zeros_like(h)
    if n_src:
        ce, dlogits = tf.soft_cross_entropy(tf.head_logits(h[:n_src], W), targets)
        grads = {"head.w": np.vstack([h[:n_src].T @ dlogits, dlogits.sum(axis=0, keepdims=True)])}
        dh[:n_src] = dlogits @ W[:-1].T
    else:
        ce, grads = 0.0, {"head.w": np.zeros_like(W)}
    Z = alpaca_inputs(h, states, std)
    dZ = np.zeros_like(Z)
    m0, L, rho = prior["alpaca.m0"], prior["alpaca.L"], float(prior["alpaca.rho"][0])
    dm0, dL, drho = np.zeros_like(m0), np.zeros_like(L), 0.0
    n_q = sum(len(q) for _, q in tasks)
    nll = 0.0
    for c, q in tasks:
        l_i, dZc, dZq, dm, dLi, dr = predictive_nll(Z[c], forces[c], Z[q], forces[q], m0, L, rho, eps,
                                                    scale=lam / n_q)
        nll += l_i
        np.add.at(dZ, c, dZc)
        np.add.at(dZ, q, dZq)
        dm0 += dm
        dL += dLi
        drho += dr
    d = cfg.d_model
    dh += dZ[:, :d] * std.t
    tf.features_backward(P, cfg, dh, cache, grads)
    grads.update({"alpaca.m0": dm0, "alpaca.L": dL, "alpaca.rho": np.array([drho])})
    return ce + nll, grads, (ce, nll / lam if lam else 0.0)


@dataclass(frozen=True)
class AlpacaRecipe:
    """Settings of ``train_alpaca`` (checked on construction)."""

    seed: int = 0
    steps: int = 4000
    plants_per_step: int = 8       # family plants (tasks) in each mini-batch
    k_max: int = 200               # context size k log-uniform in 0..k_max
    queries: int = 32              # query labels per task
    traj_share: float = 0.5        # share of tasks whose context is consecutive ticks of one episode
    source_batch: int = 128        # SOURCE cross-entropy rows per mini-batch (a quarter from the box)
    lam: float = 1.0               # weight of the posterior-predictive NLL
    lr: float = 1e-3
    lr_final: float = 1e-4
    prior_lr: float = 3e-3         # Adam learning rate of m0, L0, rho (cosine to a tenth)

    def __post_init__(self):
        for name in ("steps", "plants_per_step", "k_max", "queries", "source_batch"):
            check_int(name, getattr(self, name), low=1)
        check_int("seed", self.seed, low=0)
        for name in ("lam", "lr", "lr_final", "prior_lr"):
            check_positive(name, getattr(self, name))
        if not 0.0 <= self.traj_share <= 1.0:
            raise ValueError(f"traj_share: expected a share in [0, 1] but found {self.traj_share}")

    def cosine(self, k):
        return 0.5 * (1.0 + math.cos(math.pi * (k - 1) / self.steps))


def family_trajectories(members, episodes, rng, noise_levels=(0.0, 2.0, 5.0)):
    """Per member (task, expert): its expert's ``episodes`` episodes one by one (force noise std
    drawn per episode from ``noise_levels``, clean labels): a list of (S, F, starts) with the
    episodes concatenated and ``starts`` the first row of each."""
    out = []
    for task, expert in members:
        Ss, Fs = [], []
        for sig in rng.choice(np.asarray(noise_levels), size=episodes):
            S, F = collect(task, expert, 1, rng, noise_std=sig)
            Ss.append(S), Fs.append(F)
        starts = np.cumsum([0] + [len(S) for S in Ss[:-1]])
        out.append((np.concatenate(Ss), np.concatenate(Fs), starts))
    return out


def _draw_k(r, rng):
    return int(math.floor(math.exp(rng.uniform(0.0, math.log(r.k_max + 1.0))))) - 1


def _tasks(data, r, rng, offset):
    """Rows (states, forces) and (context, query) index pairs of ``plants_per_step`` tasks."""
    xs, ys, tasks = [], [], []
    for i in rng.choice(len(data), size=min(r.plants_per_step, len(data)), replace=False):
        S, F, starts = data[i]
        k = _draw_k(r, rng)
        if k and rng.random() < r.traj_share:
            e = rng.integers(len(starts))
            lo = starts[e]
            hi = starts[e + 1] if e + 1 < len(starts) else len(S)
            k = min(k, hi - lo)
            a = lo if rng.random() < 0.5 else lo + rng.integers(0, hi - lo - k + 1)
            c = np.arange(a, a + k)
        else:
            c = rng.integers(0, len(S), k)
        q = rng.integers(0, len(S), r.queries)
        xs += [S[c], S[q]]
        ys += [F[c], F[q]]
        tasks.append((offset + np.arange(k), offset + k + np.arange(r.queries)))
        offset += k + r.queries
    return xs, ys, tasks


def batch(data, source, expert, box, r, rng, tok):
    """One mini-batch (``alpaca_loss_and_grad``'s ``batch``)."""
    S_src, F_src = source
    n_box = r.source_batch // 4
    idx = rng.integers(0, len(S_src), r.source_batch - n_box)
    sb = rng.uniform(-box, box, size=(n_box, 4))
    src_y = np.concatenate([F_src[idx], expert.act(sb)])
    xs, ys, tasks = _tasks(data, r, rng, r.source_batch)
    return (np.concatenate([S_src[idx], sb] + xs), np.concatenate([src_y] + ys), r.source_batch,
            tok.encode(src_y), tasks)


def initial_prior(policy, data, std, eps=1e-3):
    """Empirical-Bayes start: per plant the least-squares read-out w_i of z~ on all its states;
    m0 = mean w_i, P0 = Cov(w_i) + eps I (as L0 = its Cholesky factor), R = mean residual variance."""
    Ws, res = [], []
    for S, F, _ in data:
        Z = alpaca_inputs(policy.features(S), S, std)
        w = np.linalg.lstsq(Z, F, rcond=None)[0]
        Ws.append(w)
        res.append(np.mean((Z @ w - F) ** 2))
    W = np.array(Ws)
    P0 = np.cov(W.T) + eps * np.eye(W.shape[1])
    return {"alpaca.m0": W.mean(axis=0), "alpaca.L": np.linalg.cholesky(P0 - P0_EPS * np.eye(W.shape[1])),
            "alpaca.rho": np.array([math.log(float(np.mean(res)))])}


def train_alpaca(policy: TransformerPolicy, data, source, expert, recipe: AlpacaRecipe, log=print):
    """Train ``policy`` (in place) and the prior on the ALPaCA objective; returns (prior, std, history).

    ``data``: per plant (S, F, starts) (``family_trajectories``); ``source``: SOURCE expert (S, F)
    for the cross-entropy; ``expert``: SOURCE's expert (labels the box share of the SOURCE rows)."""
    r = recipe
    rng = np.random.default_rng(r.seed)
    std = Standardiser.of(policy)
    prior = initial_prior(policy, data, std)
    opt_t, opt_p = tf.Adam(lr=r.lr), tf.Adam(lr=r.prior_lr)
    box = np.asarray(policy.config.state_scale, dtype=float)
    tok = policy.tokenizer
    history, t0, acc = [], time.perf_counter(), []
    for k in range(1, r.steps + 1):
        b = batch(data, source, expert, box, r, rng, tok)
        loss, grads, parts = alpaca_loss_and_grad(policy.params, policy.config, prior, b, r.lam, std)
        gp = {n: grads.pop(n) for n in list(grads) if n.startswith("alpaca.")}
        cos = r.cosine(k)
        opt_t.step(policy.params, grads, r.lr_final + (r.lr - r.lr_final) * cos)
        opt_p.step(prior, gp, r.prior_lr * (0.1 + 0.9 * cos))
        acc.append(parts)
        if k % max(r.steps // 20, 1) == 0 or k == r.steps:
            ce, nll = np.mean(acc, axis=0)
            history.append({"step": k, "ce": float(ce), "nll": float(nll), "R": float(np.exp(prior["alpaca.rho"][0])),
                            "seconds": time.perf_counter() - t0})
            log(f"step {k}: SOURCE cross-entropy {ce:.4f}, family posterior-predictive NLL {nll:.4f}, "
                f"R {np.exp(prior['alpaca.rho'][0]):.3f} N^2 ({time.perf_counter() - t0:.0f} s)")
            acc = []
    return prior, std, history
