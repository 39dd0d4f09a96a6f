"""Sweep behind the force head's robust weight and change detector
(docs/robust-update.md, docs/change-detection.md).

Tuning seeds only: swing-up trials 100..104 (the README's swing-up figures use
trial seeds 0..9) and balance data seeds 101..103 (the README uses 1..20). Per
head setting (``HeadConfig`` fields as JSON):

* swing-up, 1000 samples on each stream (on-policy without probing, and i.i.d.
  from the TARGET expert's trajectories): mean success at 400/600/800/1000 over 50 episodes,
  the worst trial at 1000, changes detected and labels weighted below 1/2;
* balance, a second plant: 100 or 400 i.i.d. TARGET samples, then (1, 0.5, 2):
  the samples after the change until the change is detected, and the held-out
  RMSE against the new expert 50 and 150 samples after it.

    python tools/sweep_continual.py --out docs/data/continual_sweep.json
    python tools/sweep_continual.py --configs '[{"robust": 8.0}, {"robust": 0.0}]'

``--onpolicy-trials 105..124`` runs only the swing-up on-policy rows, on those
tuning trials, 200..1000 samples (the spread of one setting across many trials);
a setting may then carry ``"probe"`` (the deployed loop's probing gain),
``"family"`` / ``"family_eps"`` (the swing-up family prior, on or off, and its
eps; docs/family-prior.md) and ``"stream"`` ("onpolicy" or "iid") beside the
head's fields:

    python tools/sweep_continual.py --onpolicy-trials 105..124 --configs SPREAD \
        --out docs/data/swingup_onpolicy_spread.json
    python tools/sweep_continual.py --onpolicy-trials 105..124 --configs FAMILY \
        --out docs/data/family_prior_sweep.json
"""

import argparse
import json
import sys
from dataclasses import replace

import numpy as np

from controller.kalman_head import HeadConfig
from sim.world.cartpole import TARGET
from sim.loops.deploy import DeployConfig, run_deployment
from sim.loops.methods import MethodSettings, make_controller
from sim.world.schedule import Change
from sim.world.task import SWINGUP, SWINGUP_TARGET

SWINGUP_SEEDS = (100, 101, 102, 103, 104)
BALANCE_SEEDS = (101, 102, 103)
MARKS = (400, 600, 800, 1000)
#: the default and the settings it was chosen over
CONFIGS = ({}, {"robust": 0.0}, {"robust": 4.0}, {"robust": 12.0}, {"change_threshold": 0.0},
           {"change_threshold": 20.0, "change_ratio": 10.0, "change_clip": 16.0})
#: ``--configs SPREAD``: head settings without probing, and probing gains, that might steady on-policy
#: swing-up (``"probe": 0.0`` is the loop without probing; a setting without "probe" takes the task's default)
SPREAD = ({"probe": 0.0}, {"probe": 0.0, "change_threshold": 0.0}, {"probe": 0.0, "robust": 0.0},
          {"probe": 0.0, "robust": 0.0, "change_threshold": 0.0}, {"probe": 0.0, "robust": 16.0},
          {"probe": 0.0, "robust": 32.0}, {"probe": 0.5}, {"probe": 1.0}, {"probe": 2.0}, {"probe": 3.0},
          {"probe": 4.0}, {"probe": 1.0, "change_threshold": 0.0}, {"probe": 1.0, "robust": 0.0})
SPREAD_MARKS = (200, 400, 600, 800, 1000)
#: ``--configs FAMILY``: the swing-up family prior (docs/family-prior.md) against v I, its eps,
#: with and without probing, on both streams
FAMILY = ({}, {"family": False}, {"family_eps": 1e-2}, {"family_eps": 1e-4}, {"probe": 0.0},
          {"stream": "iid"}, {"stream": "iid", "family": False})


def swingup_row(cfg):
    task = replace(SWINGUP, params=SWINGUP_TARGET)
    out = {}
    for stream in ("onpolicy", "iid"):
        rows = []
        for seed in SWINGUP_SEEDS:
            c = make_controller("kbt", task, MethodSettings(head=cfg))
            res = run_deployment(c, task, DeployConfig(samples=1000, stream=stream, seed=seed, episodes=50,
                                                       checkpoints=MARKS, probe=0.0))
            rows.append([r["success_rate"] for r in res.rows[1:]] + [c.n_changes, c.n_downweighted])
        a = np.array(rows)
        out[stream] = {"mean": a[:, :len(MARKS)].mean(0).round(3).tolist(), "worst_1000": float(a[:, len(MARKS) - 1].min()),
                       "changes": a[:, -2].astype(int).tolist(), "downweighted": a[:, -1].astype(int).tolist()}
    return out


def onpolicy_spread_row(conf, seeds):
    """Swing-up on-policy (or ``"stream": "iid"``), one row per trial seed: success at ``SPREAD_MARKS``
    over 50 episodes."""
    conf = dict(conf)
    probe = conf.pop("probe", None)
    family = {k: conf.pop(k) for k in ("family", "family_eps") if k in conf}
    stream = conf.pop("stream", "onpolicy")
    task = replace(SWINGUP, params=SWINGUP_TARGET)
    rows = []
    for seed in seeds:
        c = make_controller("kbt", task, MethodSettings(head=HeadConfig(**conf), **family))
        res = run_deployment(c, task, DeployConfig(samples=1000, stream=stream, seed=seed, episodes=50,
                                                   checkpoints=SPREAD_MARKS, probe=probe))
        rows.append({"trial": seed, "success": [r["success_rate"] for r in res.rows[1:]],
                     "changes": c.n_changes, "downweighted": c.n_downweighted})
    a = np.array([r["success"] for r in rows])
    return {"mean": a.mean(0).round(3).tolist(), "worst_1000": float(a[:, -1].min()),
            "below_0.8_at_1000": int((a[:, -1] < 0.8).sum()), "trials": rows}


def parse_trials(text):
    """'A..B' -> (A, ..., B)."""
    lo, _, hi = text.partition("..")
    try:
        seeds = tuple(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise ValueError(f"expected A..B (two whole numbers) but found {text!r}") from None
    if set(seeds) & set(range(10)):
        raise ValueError("the reported trials are 0..9; tune on others")
    return seeds


def balance_row(cfg):
    p1 = TARGET.with_(m_c=1.0, m_p=0.5, l_p=2.0)
    out = {}
    for pre in (100, 400):
        rows = []
        for seed in BALANCE_SEEDS:
            c = make_controller("kbt", TARGET, MethodSettings(head=cfg))
            marks = tuple(pre + d for d in (50, 150))
            res = run_deployment(c, TARGET, DeployConfig(samples=pre + 150, seed=seed, data_seed=seed, episodes=5,
                                                         changes=(Change(pre, params=p1),), checkpoints=marks))
            rows.append([r["rmse_expert_N"] for r in res.rows[-2:]] + [c.n_changes])
        a = np.array(rows, dtype=float)
        out[f"after_{pre}"] = {"rmse_50": a[:, 0].round(3).tolist(), "rmse_150": a[:, 1].round(3).tolist(),
                               "detected": a[:, 2].astype(int).tolist()}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default=None, help="JSON list of HeadConfig settings (default: the sweep's six)")
    ap.add_argument("--out", default=None, help="write the rows as JSON")
    ap.add_argument("--onpolicy-trials", default=None, metavar="A..B",
                    help="only swing-up on-policy, on tuning trials A..B (disjoint from the reported 0..9)")
    args = ap.parse_args(argv)
    named = {"SPREAD": SPREAD, "FAMILY": FAMILY}
    configs = named[args.configs] if args.configs in named else json.loads(args.configs) if args.configs else CONFIGS
    if args.onpolicy_trials:
        try:
            seeds = parse_trials(args.onpolicy_trials)
        except ValueError as e:
            ap.error(f"--onpolicy-trials: {e}")
        return spread(configs, seeds, args.out)
    rows = []
    for conf in configs:
        cfg = HeadConfig(**conf)
        row = {"settings": conf, "swingup": swingup_row(cfg), "balance_second_plant": balance_row(cfg)}
        rows.append(row)
        sw, bal = row["swingup"], row["balance_second_plant"]
        print(f"{json.dumps(conf) or 'default':>60}  swing-up on-policy {sw['onpolicy']['mean']} worst "
              f"{sw['onpolicy']['worst_1000']:.2f} changes {sw['onpolicy']['changes']}; i.i.d. {sw['iid']['mean']} "
              f"worst {sw['iid']['worst_1000']:.2f}; balance RMSE 150 after a change at 100 "
              f"{bal['after_100']['rmse_150']}, at 400 {bal['after_400']['rmse_150']}", flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"defaults": {k: getattr(HeadConfig(), k) for k in
                                    ("robust", "change_threshold", "change_ratio", "change_clip", "noise_memory")},
                       "rows": rows}, fh, indent=1)
    return 0


def spread(configs, seeds, out):
    rows = []
    for conf in configs:
        stream = conf.get("stream", "onpolicy")
        row = {"settings": conf, stream: onpolicy_spread_row(conf, seeds)}
        rows.append(row)
        o = row[stream]
        print(f"{json.dumps(conf):>50}  mean {o['mean']} worst {o['worst_1000']:.2f} below 0.8: "
              f"{o['below_0.8_at_1000']}/{len(seeds)}; changes {[t['changes'] for t in o['trials']]}", flush=True)
    if out:
        with open(out, "w") as fh:
            json.dump({"trials": list(seeds), "marks": list(SPREAD_MARKS), "episodes": 50, "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
