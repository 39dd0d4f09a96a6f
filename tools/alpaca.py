"""Swing-up: T_1 and the KBT prior trained on the ALPaCA objective (docs/family-pretraining.md,
"ALPaCA objective").

``train``: from the shipped swing-up weights, trains T_1 and the prior (m0, P0, R) on the
SOURCE cross-entropy plus the posterior-predictive NLL of query labels after k context
labels of one plant (``sim.pretraining.alpaca``), on the swing-up family drawn with
``--family-seed`` 1 (as ``tools/family_trunk.py``); writes the weights and, beside them,
``<out>.prior.npz``.

``nll``: on TARGET (never trained on), for each weights file and prior, the
posterior-predictive NLL per label and the RMSE of the posterior mean on 5 000 held-out
expert states (data seed 99) after k = 0, 10, 50, 200 context labels, averaged over
``--draws`` contexts: i.i.d. from the i.i.d. stream's pool (data seed 1), and the first k
ticks of one TARGET expert episode. Priors: ``alpaca`` (the learned one) for ALPaCA
weights; for any weights ``family`` (the empirical prior of the seed-1 training family's
least-squares read-outs through those weights: their mean, Cov + 1e-3 I, R their mean
residual variance) and ``w0`` (the same covariance and R, mean the pre-trained read-out,
KBT's default mean).

``draws``: offline, how the posterior mean after k i.i.d. TARGET labels swings TARGET up
for each fixed R (``--draws`` label sets per k), and the least-squares read-out of all
20 000 pool labels (the limit of many labels).

``capacity``: offline, how far more of the last block in the read-out goes: the
least-squares read-out of all 20 000 pool labels over today's head inputs z~ = [h'; s_norm; 1]
and over z~ with the last block's activations at the query row beside it (the ReLU
hidden units, the attention output before its projection, the normalised residual before
the MLP): held-out force RMSE (data seed 99) and success over 50 TARGET episodes (seeds 7, 8).
A read-out over the attention output o and the hidden units r is the last block's output
projections adapted with it (h = x + o W_o + b_o + r W_2 + b_2 at the query row, linear in
W_o and W_2).

``wide``: closed loop on TARGET with a Bayesian linear read-out (NumPy, fixed R) over z~ and
over a ``capacity`` set (``--extra``), each with the empirical prior of the seed-1 training
family's least-squares read-outs through those inputs (mean, Cov + 1e-3 I): success at
10/25/50/100/200 labels per trial, i.i.d. and on-policy (probing as kbt's).

``eval``: closed loop on TARGET as ``tools/family_trunk.py eval``: KBT with the learned prior
installed (``kbt_prior``: mean, P0, and R as the learned noise's initial guess, or with
``--noise known`` as a fixed noise) on the
i.i.d. and on-policy streams, success at 10/25/50/100/200 labels per trial.

    python tools/alpaca.py train --out /tmp/alpaca.npz
    python tools/alpaca.py nll --weights shipped results/family_trunk/trunk_lam30.npz /tmp/alpaca.npz
    python tools/alpaca.py eval --weights /tmp/alpaca.npz --trials 100-109
    python tools/alpaca.py capacity --weights swingup-alpaca
    python tools/alpaca.py wide --weights shipped --extra hidden attention --trials 100-109
"""

import argparse
import json
import os
import time

import numpy as np

from controller.kalman_head import HeadConfig
from controller.model import load_pretrained
from controller.weight_sets import learned_prior as learned_prior_of_set
from sim.loops.deploy import DeployConfig, iid_samples, run_deployment
from sim.loops.loop import evaluate_success
from sim.loops.methods import MethodSettings, make_controller, task_weights
from sim.pretraining.alpaca import (AlpacaRecipe, Standardiser, family_trajectories, kbt_prior, posterior,
                                    train_alpaca)
from sim.pretraining.family import family_members
from sim.world.data import collect
from sim.world.experts import expert_for
from sim.world.task import SWINGUP, SWINGUP_SHIFT2, SWINGUP_TARGET

TASK = SWINGUP.on(SWINGUP_TARGET)
PLANTS = {"target": SWINGUP_TARGET, "shift2": SWINGUP_SHIFT2}
LABELS = (10, 25, 50, 100, 200)
KS = (0, 10, 50, 200)


def _members(a):
    return [(m, e) for _, m, e in family_members(SWINGUP, a.plants, a.family_seed)]


def train(a):
    policy = load_pretrained(task_weights(SWINGUP))
    t0 = time.perf_counter()
    rng = np.random.default_rng(a.seed)
    data = family_trajectories(_members(a), a.episodes, rng)
    src_expert = expert_for(SWINGUP)
    source = collect(SWINGUP, src_expert, a.source_episodes, rng,
                     noise_std=rng.choice([0.0, 2.0, 5.0, 10.0], size=a.source_episodes))
    print(f"{len(data)} plants, {sum(len(S) for S, _, _ in data)} family states, {len(source[0])} SOURCE states "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    r = AlpacaRecipe(seed=a.seed, steps=a.steps, lam=a.lam, lr=a.lr, k_max=a.k_max, traj_share=a.traj_share)
    prior, std, history = train_alpaca(policy, data, source, src_expert, r, log=lambda m: print(m, flush=True))
    policy.meta = dict(policy.meta, alpaca={"plants": len(data), "family_seed": a.family_seed, "episodes": a.episodes,
                                            "source_episodes": a.source_episodes, "recipe": r.__dict__,
                                            "history": history, "seconds": time.perf_counter() - t0})
    policy.meta["success_source"] = evaluate_success(policy, SWINGUP, 100, 0).success_rate
    print(f"pre-trained controller on SOURCE: success {policy.meta['success_source']:.2f} (100 episodes)")
    policy.save(a.out)
    np.savez(a.out + ".prior.npz", mu=std.mu, t=std.t, s_inv=std.s_inv, **prior)
    print(f"wrote {a.out} and {a.out}.prior.npz ({time.perf_counter() - t0:.0f} s)")


def _settings(name, R=None, noise="learned"):
    head = HeadConfig(noise=noise) if R is None else HeadConfig(obs_noise=R, noise=noise)
    return MethodSettings(family=False, weights=None if name == "shipped" else name, head=head)


def learned_prior(name, c):
    """(m, P0, R) of an ALPaCA weights file in ``c``'s inputs, or None when it has no prior file."""
    path = name + ".prior.npz"
    if name == "shipped" or not os.path.exists(path):
        return None
    with np.load(path) as f:
        std = Standardiser(f["mu"], f["t"], f["s_inv"])
        prior = {k: f[k] for k in ("alpaca.m0", "alpaca.L", "alpaca.rho")}
    return kbt_prior(c, prior, std)


def empirical_prior(c, data):
    """Seed-1 family's read-outs through ``c``'s inputs: (mean, Cov + 1e-3 I, mean residual variance)."""
    W, res = [], []
    for S, F, _ in data:
        Z = np.c_[c.inputs(S), np.ones(len(S))]
        w = np.linalg.lstsq(Z, F, rcond=None)[0]
        W.append(w)
        res.append(np.mean((Z @ w - F) ** 2))
    W = np.array(W)
    return W.mean(0), np.cov(W.T) + 1e-3 * np.eye(W.shape[1]), float(np.mean(res))


def nll(a):
    expert = expert_for(TASK)
    S, F = iid_samples(expert, 1, 0, 20000, task=TASK)
    Sh, Fh = iid_samples(expert, 99, 0, 5000, task=TASK)
    rng = np.random.default_rng(7)
    eps = [collect(TASK, expert, 1, rng, noise_std=0.0) for _ in range(a.draws)]
    fam = family_trajectories(_members(a), a.episodes, np.random.default_rng(a.seed))
    out = {}
    for name in a.weights:
        c = make_controller("kbt", TASK, _settings(name))
        Z, Zh = np.c_[c.inputs(S), np.ones(len(S))], np.c_[c.inputs(Sh), np.ones(len(Sh))]
        Ze = [(np.c_[c.inputs(Se), np.ones(len(Se))], Fe) for Se, Fe in eps]
        priors = {}
        lp = learned_prior(name, c)
        if lp is not None:
            priors["alpaca"] = lp
        m, P0, R = empirical_prior(c, fam)
        priors["family"] = (m, P0, R)
        priors["w0"] = (c.prior_mean, P0, R)
        out[name] = {}
        for pname, (m0, P0, R) in priors.items():
            row = {"R": R}
            for mode in ("iid", "episode"):
                for k in KS:
                    nl, se = [], []
                    for d in range(a.draws):
                        if mode == "iid":
                            idx = np.random.default_rng(1000 + d).integers(0, len(S), k)
                            Zc, yc = Z[idx], F[idx]
                        else:
                            Zc, yc = Ze[d][0][:k], Ze[d][1][:k]
                        mk, Pk = posterior(Zc, yc, m0, P0, R)
                        mu = Zh @ mk
                        v = np.einsum("qi,ij,qj->q", Zh, Pk, Zh) + R
                        nl.append(float(np.mean(0.5 * np.log(2 * np.pi * v) + 0.5 * (Fh - mu) ** 2 / v)))
                        se.append(float(np.mean((Fh - mu) ** 2)))
                    row[f"{mode}@{k}"] = {"nll": float(np.mean(nl)), "rmse": float(np.sqrt(np.mean(se))),
                                          "rmse_worst": float(np.sqrt(np.max(se)))}
            out[name][pname] = row
            print(f"{name} [{pname}] R {R:.3f}: " + " | ".join(
                f"{key} nll {v['nll']:.3f} rmse {v['rmse']:.3f}" for key, v in row.items() if key != "R"), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"draws": a.draws, "ks": KS, "results": out}, f, indent=1)


def trial(name, prior, stream, seed, episodes, noise="learned", task=TASK):
    c = make_controller("kbt", task, _settings(name, prior[2] if prior else None, noise))
    if prior is not None:
        c.use_prior(prior_mean=prior[0], prior_cov=prior[1])
    cfg = DeployConfig(samples=max(LABELS), stream=stream, episodes=episodes, seed=seed, checkpoints=LABELS)
    res = run_deployment(c, task, cfg)
    return [r["success_rate"] for r in res.rows if r["samples"] in LABELS]


def evaluate(a):
    a0, b0 = map(int, a.trials.split("-"))
    seeds = list(range(a0, b0 + 1))
    out = {}
    for name in a.weights:
        c = make_controller("kbt", TASK, _settings(name))
        if a.prior == "family":
            # the empirical prior of the seed-1 training family's read-outs (as ``nll``'s ``family``)
            a.plants, a.family_seed = 40, 1
            fam = family_trajectories(_members(a), 10, np.random.default_rng(0))
            prior = empirical_prior(c, fam)
        else:
            prior = learned_prior(name, c)
        if a.mean == "w0" and prior is not None:
            prior = (c.prior_mean, prior[1], prior[2])
        if a.R is not None and prior is not None:
            prior = (prior[0], prior[1], a.R)
        print(f"{name}: prior {a.prior if prior else 'v I'}, mean {a.mean}, noise {a.noise}, "
              f"R {prior[2] if prior else '-'}", flush=True)
        out[name] = {}
        for stream in a.streams:
            rows = []
            for s in seeds:
                t0 = time.perf_counter()
                rows.append(trial(name, prior, stream, s, a.episodes, a.noise, SWINGUP.on(PLANTS[a.plant])))
                print(f"  {stream} trial {s}: " + " ".join(f"{v:.2f}" for v in rows[-1])
                      + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
            rows = np.array(rows)
            out[name][stream] = rows.tolist()
            print(f"  {stream}: mean " + " ".join(f"{m:.2f}" for m in rows.mean(0)) + " | worst "
                  + " ".join(f"{m:.2f}" for m in rows.min(0)), flush=True)
            if a.out:
                with open(a.out, "w") as f:
                    json.dump({"trials": a.trials, "labels": LABELS, "episodes": a.episodes, "mean": a.mean,
                               "prior": a.prior, "plant": a.plant,
                               "noise": a.noise, "R": None if prior is None else prior[2],
                               "results": out}, f, indent=1)


def draws(a):
    """Offline: the posterior mean after k i.i.d. TARGET labels (pool data seed 1), for each fixed R,
    installed as the head's mean; success over 50 TARGET episodes (seed 7), ``--draws`` label sets per k."""
    from sim.loops.deploy import iid_samples

    c = make_controller("kbt", TASK, _settings(a.weights, 3.0, "known"))
    m0, P0, _ = learned_prior(a.weights, c)
    S, F = iid_samples(expert_for(TASK), 1, 0, 20000, task=TASK)
    Z = np.c_[c.inputs(S), np.ones(len(S))]
    # the limit of many labels: the least-squares read-out of all 20 000, on two evaluation seeds
    c.use_prior(prior_mean=np.linalg.lstsq(Z, F, rcond=None)[0], prior_cov=P0)
    out = {"least_squares_20000": [evaluate_success(c, TASK, 50, s).success_rate for s in (7, 8)]}
    print("least-squares read-out of 20 000 labels: " + " ".join(f"{r:.2f}" for r in out["least_squares_20000"])
          + " (evaluation seeds 7, 8)", flush=True)
    for R in a.R:
        rng = np.random.default_rng(0)
        for k in a.k:
            rates = []
            for _ in range(a.draws):
                idx = rng.choice(len(S), k, replace=False)
                # m_k = (P0^-1 + Z^T Z / R)^-1 (P0^-1 m0 + Z^T y / R), the closed-form posterior mean
                A = np.linalg.inv(P0) + Z[idx].T @ Z[idx] / R
                mk = np.linalg.solve(A, np.linalg.solve(P0, m0) + Z[idx].T @ F[idx] / R)
                c.use_prior(prior_mean=mk, prior_cov=P0)
                rates.append(evaluate_success(c, TASK, 50, 7).success_rate)
            out[f"R{R}_k{k}"] = rates
            print(f"R {R} k {k}: mean {np.mean(rates):.2f} worst {min(rates):.2f} | "
                  + " ".join(f"{r:.2f}" for r in rates), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)


#: the last block's activations at the query row a capacity read-out may add to z~
#: (name -> (cache entry of ``transformer.block``, index in it)): ReLU hidden (d_ff), attention
#: output before W_o (d), LN2's normalised residual (d)
ACTIVATIONS = {"hidden": (3, 2), "attention": (1, 5), "ln2": (2, 0)}
#: the capacity read-outs: name -> the activations beside z~
CAPACITY_SETS = {"z~ (the head today)": (), "z~ + hidden": ("hidden",), "z~ + attention": ("attention",),
                 "z~ + hidden + attention": ("hidden", "attention"),
                 "z~ + hidden + attention + ln2": ("hidden", "attention", "ln2")}


def _readout_inputs(c, names):
    """X (N, 4) -> [z~ without its 1; the ``names`` activations of the last block; 1] for controller ``c``."""
    from controller.transformer import features

    def inputs(X):
        X = np.atleast_2d(X)
        cols = [c.inputs(X)]
        if names:
            _, (_, _, caches, _) = features(c.policy.params, c.policy.config, X, return_cache=True)
            for n in names:
                entry, index = ACTIVATIONS[n]
                cols.append(caches[-1][entry][index][:, -1, :])     # [N, T, width] -> the query row
        return np.hstack(cols + [np.ones((len(X), 1))])
    return inputs


class _Readout:
    """Force = inputs(s) w for fixed weights w."""

    def __init__(self, inputs, w):
        self.inputs, self.w = inputs, w

    def act(self, states):
        f = self.inputs(states) @ self.w
        return float(f[0]) if np.ndim(states) == 1 else f


def capacity(a):
    """The least-squares read-outs of ``CAPACITY_SETS`` (module doc, ``capacity``)."""
    c = make_controller("kbt", TASK, _settings(a.weights, 3.0, "known"))
    S, F = iid_samples(expert_for(TASK), 1, 0, 20000, task=TASK)
    Sh, Fh = iid_samples(expert_for(TASK), 99, 0, 5000, task=TASK)
    out = {}
    for name, names in CAPACITY_SETS.items():
        inputs = _readout_inputs(c, names)
        Z = inputs(S)
        w = np.linalg.lstsq(Z, F, rcond=None)[0]
        rmse = float(np.sqrt(np.mean((inputs(Sh) @ w - Fh) ** 2)))
        rates = [evaluate_success(_Readout(inputs, w), TASK, 50, s).success_rate for s in (7, 8)]
        out[name] = {"n1": Z.shape[1], "heldout_rmse_N": rmse, "success_seeds_7_8": rates}
        print(f"{name:>32}: n1 {Z.shape[1]:3d}, held-out RMSE {rmse:.3f} N, success "
              + " ".join(f"{r:.2f}" for r in rates), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"weights": a.weights, "labels": len(F), "results": out}, f, indent=1)


class _WideBLR:
    """Bayesian linear regression on ``inputs(s)`` with prior (m0, P0) and fixed noise R: act is the
    posterior mean, observe one closed-form update (the head's equations without its robust
    weight and detector), act_split / predict_split as the controllers' (probing needs q)."""

    def __init__(self, inputs, m0, P0, R, far_weight=1.0):
        self.inputs, self.m, self.P, self.R = inputs, np.array(m0, float), np.array(P0, float), float(R)
        self.far_weight = float(far_weight)

    def act(self, states):
        f = self.inputs(states) @ self.m
        return float(f[0]) if np.ndim(states) == 1 else f

    def predict_split(self, states):
        Z = self.inputs(states)
        return Z @ self.m, np.full(len(Z), self.R), np.einsum("qi,ij,qj->q", Z, self.P, Z)

    def act_split(self, state):
        mu, _, q = self.predict_split(state)
        return float(mu[0]), max(float(q[0]), 0.0)

    def observe(self, state, y):
        z = self.inputs(state)[0]
        Pz = self.P @ z
        # a label away from upright (|theta| > CATCH) counts as far_weight times noisier
        S = z @ Pz + self.R * (self.far_weight if _far(state)[0] else 1.0)
        self.m = self.m + Pz * (y - z @ self.m) / S
        self.P = self.P - np.outer(Pz, Pz) / S
        return True


#: |theta| (rad) below which the swing-up expert hands over to its LQR catch
CATCH = 0.35


def _far(states):
    """True per state (N,) when the pole is more than ``CATCH`` from upright."""
    th = np.atleast_2d(states)[:, 2]
    return np.abs(np.pi - np.mod(np.pi - th, 2 * np.pi)) > CATCH


def _gated(inputs):
    """[z g, z (1 - g)] with g = 1 near upright: one read-out for the catch, one for the pumping."""
    def gated(X):
        Z = inputs(X)
        g = (~_far(X)).astype(float)[:, None]
        return np.hstack([Z * g, Z * (1.0 - g)])
    return gated


def _wide_prior(a, c, inputs, fam):
    """(m0, P0): the empirical family prior through ``inputs`` (``--prior family``), or the weight
    set's learned prior on z~ (``--prior learned``); doubled block-diagonally for ``--gated``."""
    if a.prior == "learned":
        m0, P0, _ = learned_prior_of_set(c, a.weights)
    else:
        W = np.array([np.linalg.lstsq(inputs(S), F, rcond=None)[0] for S, F, _ in fam])
        m0, P0 = W.mean(0), np.cov(W.T) + 1e-3 * np.eye(W.shape[1])
    if a.gated:
        n = len(m0)
        m0, P0 = np.r_[m0, m0], np.block([[P0, np.zeros((n, n))], [np.zeros((n, n)), P0]])
    return m0, P0


def wide(a):
    """``wide`` (module doc): per inputs, mean (worst) success at each label count over the trials."""
    a0, b0 = map(int, a.trials.split("-"))
    task = SWINGUP.on(PLANTS[a.plant])
    c = make_controller("kbt", TASK, _settings(a.weights, 3.0, "known"))
    a.plants, a.family_seed = 40, 1
    fam = family_trajectories(_members(a), 10, np.random.default_rng(0)) if a.prior == "family" else None
    sets = [("z~", ())] + ([("z~ + " + " + ".join(a.extra), tuple(a.extra))] if a.extra else [])
    out = {}
    for name, names in sets:
        base = _readout_inputs(c, names)
        m0, P0 = _wide_prior(a, c, base, fam)
        inputs = _gated(base) if a.gated else base
        out[name] = {}
        for stream in a.streams:
            rows = []
            for seed in range(a0, b0 + 1):
                cfg = DeployConfig(samples=max(LABELS), stream=stream, episodes=a.episodes, seed=seed,
                                   checkpoints=LABELS)
                res = run_deployment(_WideBLR(inputs, m0, P0, a.R, a.far_weight), task, cfg)
                rows.append([r["success_rate"] for r in res.rows if r["samples"] in LABELS])
                print(f"  {name} {stream} trial {seed}: " + " ".join(f"{v:.2f}" for v in rows[-1]), flush=True)
            r = np.array(rows)
            out[name][stream] = rows
            print(f"{name} (n1 {len(m0)}) {stream}: mean " + " ".join(f"{v:.2f}" for v in r.mean(0))
                  + " | worst " + " ".join(f"{v:.2f}" for v in r.min(0))
                  + f" | per-trial rule kept {sum(held(x) for x in rows)} / {len(rows)}", flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"weights": a.weights, "extra": a.extra, "R": a.R, "prior": a.prior, "plant": a.plant,
                       "far_weight": a.far_weight, "gated": a.gated, "labels": LABELS,
                       "episodes": a.episodes, "trials": a.trials, "results": out}, f, indent=1)


def held(row, reach=0.95, floor=0.9):
    """True when no checkpoint after the first at >= ``reach`` is below ``floor`` (the per-trial rule)."""
    hit = [i for i, v in enumerate(row) if v >= reach]
    return not hit or min(row[hit[0]:]) >= floor


def summary(a):
    """Mean (worst) per checkpoint, trials at >= 0.95 at 50 labels, trials that keep the per-trial rule."""
    for path in a.files:
        with open(path) as f:
            d = json.load(f)
        for name, streams in d["results"].items():
            for stream, rows in streams.items():
                rows = np.array(rows)
                cells = " | ".join(f"{m:.2f} ({w:.2f})" for m, w in zip(rows.mean(0), rows.min(0)))
                print(f"{path} {stream} (noise {d.get('noise', 'learned')}, R {d.get('R')}): | {cells} | "
                      f"{int(np.sum(rows[:, 2] >= 0.95))} / {len(rows)} | {sum(held(r) for r in rows)} / {len(rows)} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("train", "nll"):
        t = sub.add_parser(name)
        t.add_argument("--plants", type=int, default=40)
        t.add_argument("--family-seed", type=int, default=1)
        t.add_argument("--episodes", type=int, default=10)
        t.add_argument("--seed", type=int, default=0)
    t = sub.choices["train"]
    t.add_argument("--out", required=True)
    t.add_argument("--source-episodes", type=int, default=100)
    t.add_argument("--steps", type=int, default=4000)
    t.add_argument("--lam", type=float, default=1.0)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--k-max", type=int, default=200)
    t.add_argument("--traj-share", type=float, default=0.5)
    n = sub.choices["nll"]
    n.add_argument("--weights", nargs="+", default=["shipped"])
    n.add_argument("--draws", type=int, default=20)
    n.add_argument("--out")
    e = sub.add_parser("eval")
    e.add_argument("--weights", nargs="+", required=True)
    e.add_argument("--trials", default="100-109")
    e.add_argument("--episodes", type=int, default=50)
    e.add_argument("--streams", nargs="+", default=["iid", "onpolicy"])
    e.add_argument("--mean", choices=("learned", "w0"), default="learned")
    e.add_argument("--noise", choices=("learned", "known"), default="learned",
                   help="the head's noise: learned online from R0 = R, or known = R")
    e.add_argument("--prior", choices=("learned", "family"), default="learned",
                   help="family: the seed-1 training family's read-outs (mean, Cov + 1e-3 I, residual variance)")
    e.add_argument("--plant", choices=tuple(PLANTS), default="target", help="the deployed plant")
    e.add_argument("--R", type=float, help="R instead of the learned prior's (N^2)")
    e.add_argument("--out")
    dr = sub.add_parser("draws")
    dr.add_argument("--weights", required=True)
    dr.add_argument("--R", type=float, nargs="+", default=[3.0, 10.0, 30.0, 100.0])
    dr.add_argument("--k", type=int, nargs="+", default=[50, 200, 1000])
    dr.add_argument("--draws", type=int, default=8)
    dr.add_argument("--out")
    cp = sub.add_parser("capacity")
    cp.add_argument("--weights", default="swingup-alpaca")
    cp.add_argument("--out")
    w = sub.add_parser("wide")
    w.add_argument("--weights", default="shipped")
    w.add_argument("--extra", nargs="*", choices=tuple(ACTIVATIONS), default=["hidden", "attention"],
                   help="activations beside z~ (none: z~ alone)")
    w.add_argument("--R", type=float, default=3.0)
    w.add_argument("--prior", choices=("family", "learned"), default="family",
                   help="learned: the weight set's learned prior (z~ only)")
    w.add_argument("--far-weight", type=float, default=1.0,
                   help="labels more than 0.35 rad from upright count as this many times noisier")
    w.add_argument("--gated", action="store_true", help="one read-out near upright, one away from it")
    w.add_argument("--plant", choices=tuple(PLANTS), default="target")
    w.add_argument("--trials", default="100-109")
    w.add_argument("--episodes", type=int, default=50)
    w.add_argument("--streams", nargs="+", default=["iid", "onpolicy"])
    w.add_argument("--out")
    sm = sub.add_parser("summary")
    sm.add_argument("files", nargs="+")
    a = ap.parse_args()
    {"train": train, "nll": nll, "eval": evaluate, "draws": draws, "capacity": capacity, "wide": wide,
     "summary": summary}[a.cmd](a)


if __name__ == "__main__":
    main()
