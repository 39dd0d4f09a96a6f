"""Swing-up: T_1 pre-trained across a family of plants, against the shipped SOURCE-only T_1
(docs/family-pretraining.md).

``train``: starts from the shipped swing-up weights and trains T_1 on the SOURCE
cross-entropy plus one linear read-out per family plant
(``sim.pretraining.family_trunk``); the family is ``sim.pretraining.family``'s
swing-up family (TARGET and SHIFT2 neighbourhoods left out), drawn with
``--family-seed`` 1 so its plants differ from the seed-0 family behind the
shipped prior; writes the weights.

``eval``: for each weights file, (1) the least-squares read-out of [h'; s_norm; 1]
on 20 000 TARGET expert states (the i.i.d. stream's pool, data seed 1): held-out
force RMSE (5 000 states, data seed 99) and its swing-up success (100 episodes);
(2) the family prior for those weights (read-outs of the seed-0 family, 40 plants,
through their inputs: ``family_readouts``); (3) KBT with that prior (mean the
pre-trained read-out, or the family's mean with ``+mean``) on TARGET, per trial
seed, success (``--episodes``) at 10/25/50/100/200 labels on the i.i.d. and
on-policy streams: the loop ``kbt run --task swingup [--stream onpolicy] --samples 200
--seed S`` runs.

    python tools/family_trunk.py train --out /tmp/family_trunk.npz
    python tools/family_trunk.py eval --weights shipped /tmp/family_trunk.npz --trials 100-104
"""

import argparse
import json
import time

import numpy as np

from controller.model import load_pretrained
from sim.loops.deploy import DeployConfig, iid_samples, run_deployment
from sim.loops.family_prior import prior_covariance, prior_mean
from sim.loops.loop import evaluate_success
from sim.loops.methods import MethodSettings, make_controller, task_weights
from sim.pretraining.family import family_members, family_readouts
from sim.pretraining.family_trunk import TrunkRecipe, family_data, train_family_trunk
from sim.world.data import collect
from sim.world.experts import expert_for
from sim.world.task import SWINGUP, SWINGUP_TARGET

TASK = SWINGUP.on(SWINGUP_TARGET)
LABELS = (10, 25, 50, 100, 200)


def train(a):
    policy = load_pretrained(task_weights(SWINGUP))
    t0 = time.perf_counter()
    members = [(m, e) for _, m, e in family_members(SWINGUP, a.plants, a.family_seed)]
    rng = np.random.default_rng(a.seed)
    data = family_data(members, a.episodes, rng)
    src_expert = expert_for(SWINGUP)
    source = collect(SWINGUP, src_expert, a.source_episodes, rng,
                     noise_std=rng.choice([0.0, 2.0, 5.0, 10.0], size=a.source_episodes))
    print(f"{len(members)} plants, {sum(len(S) for S, _ in data)} family states, {len(source[0])} SOURCE states "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    r = TrunkRecipe(seed=a.seed, steps=a.steps, lam=a.lam, lr=a.lr)
    _, history = train_family_trunk(policy, data, source, src_expert, r, log=lambda m: print(m, flush=True))
    policy.meta = dict(policy.meta, family_trunk={"plants": len(members), "family_seed": a.family_seed,
                                                  "episodes": a.episodes, "source_episodes": a.source_episodes,
                                                  "steps": a.steps, "lam": a.lam, "lr": a.lr, "seed": a.seed,
                                                  "history": history})
    policy.meta["success_source"] = evaluate_success(policy, SWINGUP, 100, 0).success_rate
    print(f"pre-trained controller on SOURCE: success {policy.meta['success_source']:.2f} (100 episodes)")
    policy.save(a.out)
    print(f"wrote {a.out}")


def _settings(name):
    return MethodSettings(family=False, weights=None if name == "shipped" else name)


def readout_probe(name):
    """(held-out RMSE, success) of the least-squares read-out of the frozen inputs on TARGET."""
    c = make_controller("kbt", TASK, _settings(name))
    expert = expert_for(TASK)
    S, F = iid_samples(expert, 1, 0, 20000, task=TASK)
    Sh, Fh = iid_samples(expert, 99, 0, 5000, task=TASK)
    w = np.linalg.lstsq(np.c_[c.inputs(S), np.ones(len(S))], F, rcond=None)[0]
    rmse = float(np.sqrt(np.mean((np.c_[c.inputs(Sh), np.ones(len(Sh))] @ w - Fh) ** 2)))
    c.use_prior(prior_mean=w)
    return rmse, evaluate_success(c, TASK, 100, 0).success_rate


def trial(name, W, use_mean, stream, seed, episodes):
    c = make_controller("kbt", TASK, _settings(name))
    c.use_prior(prior_mean=prior_mean(W) if use_mean else None, prior_cov=prior_covariance(W))
    cfg = DeployConfig(samples=max(LABELS), stream=stream, episodes=episodes, seed=seed, checkpoints=LABELS)
    res = run_deployment(c, TASK, cfg)
    return [r["success_rate"] for r in res.rows if r["samples"] in LABELS]


def evaluate(a):
    out = {}
    a0, b0 = map(int, a.trials.split("-"))
    seeds = list(range(a0, b0 + 1))
    for name in a.weights:
        rmse, succ = readout_probe(name)
        print(f"{name}: least-squares read-out on TARGET: held-out RMSE {rmse:.3f} N, success {succ:.2f}", flush=True)
        c = make_controller("kbt", TASK, _settings(name))
        W, _ = family_readouts(c, SWINGUP.on(SWINGUP_TARGET), n=40, seed=0)
        out[name] = {"readout_rmse": rmse, "readout_success": succ}
        if a.readout_only:
            continue
        for use_mean in a.means:
            for stream in ("iid", "onpolicy"):
                rows = np.array([trial(name, W, use_mean, stream, s, a.episodes) for s in seeds])
                key = f"{stream}{'+mean' if use_mean else ''}"
                out[name][key] = rows.tolist()
                print(f"  {key:>14}: mean " + " ".join(f"{m:.2f}" for m in rows.mean(0)) + " | worst "
                      + " ".join(f"{m:.2f}" for m in rows.min(0)) + " | trials @50: "
                      + " ".join(f"{v:.2f}" for v in rows[:, 2]), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"trials": a.trials, "labels": LABELS, "episodes": a.episodes, "results": out}, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--out", required=True)
    t.add_argument("--plants", type=int, default=40)
    t.add_argument("--family-seed", type=int, default=1)
    t.add_argument("--episodes", type=int, default=10)
    t.add_argument("--source-episodes", type=int, default=100)
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--lam", type=float, default=1.0)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--seed", type=int, default=0)
    e = sub.add_parser("eval")
    e.add_argument("--weights", nargs="+", default=["shipped"])
    e.add_argument("--trials", default="100-104")
    e.add_argument("--episodes", type=int, default=50)
    e.add_argument("--means", nargs="+", type=int, default=[0, 1], help="1: family prior mean too")
    e.add_argument("--readout-only", action="store_true", help="only the least-squares read-out on TARGET")
    e.add_argument("--out")
    a = ap.parse_args()
    train(a) if a.cmd == "train" else evaluate(a)


if __name__ == "__main__":
    main()
