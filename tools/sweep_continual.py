"""Sweep behind the force head's robust weight and change detector
(docs/robust-update.md, docs/change-detection.md).

Tuning seeds only: swing-up trials 100..104 (the README's swing-up figures use
trial seeds 0..9) and balance data seeds 101..103 (the README uses 1..20). Per
head setting (``HeadConfig`` fields as JSON):

* swing-up, 1000 samples on each stream (on-policy and i.i.d. from the TARGET
  expert's trajectories): mean success at 400/600/800/1000 over 50 episodes,
  the worst trial at 1000, changes detected and labels weighted below 1/2;
* balance, a second plant: 100 or 400 i.i.d. TARGET samples, then (1, 0.5, 2):
  the samples after the change until the change is detected, and the held-out
  RMSE against the new expert 50 and 150 samples after it.

    python tools/sweep_continual.py --out docs/data/continual_sweep.json
    python tools/sweep_continual.py --configs '[{"robust": 8.0}, {"robust": 0.0}]'
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


def swingup_row(cfg):
    task = replace(SWINGUP, params=SWINGUP_TARGET)
    out = {}
    for stream in ("onpolicy", "iid"):
        rows = []
        for seed in SWINGUP_SEEDS:
            c = make_controller("kbt", task, MethodSettings(head=cfg))
            res = run_deployment(c, task, DeployConfig(samples=1000, stream=stream, seed=seed, episodes=50,
                                                       checkpoints=MARKS))
            rows.append([r["success_rate"] for r in res.rows[1:]] + [c.n_changes, c.n_downweighted])
        a = np.array(rows)
        out[stream] = {"mean": a[:, :len(MARKS)].mean(0).round(3).tolist(), "worst_1000": float(a[:, len(MARKS) - 1].min()),
                       "changes": a[:, -2].astype(int).tolist(), "downweighted": a[:, -1].astype(int).tolist()}
    return out


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
    args = ap.parse_args(argv)
    configs = json.loads(args.configs) if args.configs else CONFIGS
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


if __name__ == "__main__":
    sys.exit(main())
