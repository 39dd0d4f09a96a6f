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

``eval``: closed loop on TARGET as ``tools/family_trunk.py eval``: KBT with the learned prior
installed (``kbt_prior``: mean, P0, and R as the learned noise's initial guess, or with
``--noise known`` as a fixed noise) on the
i.i.d. and on-policy streams, success at 10/25/50/100/200 labels per trial.

    python tools/alpaca.py train --out /tmp/alpaca.npz
    python tools/alpaca.py nll --weights shipped results/family_trunk/trunk_lam30.npz /tmp/alpaca.npz
    python tools/alpaca.py eval --weights /tmp/alpaca.npz --trials 100-109
"""

import argparse
import json
import os
import time

import numpy as np

from controller.kalman_head import HeadConfig
from controller.model import load_pretrained
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
    sm = sub.add_parser("summary")
    sm.add_argument("files", nargs="+")
    a = ap.parse_args()
    {"train": train, "nll": nll, "eval": evaluate, "draws": draws, "summary": summary}[a.cmd](a)


if __name__ == "__main__":
    main()
