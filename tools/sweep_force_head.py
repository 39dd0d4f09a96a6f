"""Sweep of the Gaussian force head's prior variance v and inputs (docs/head-v2.md).

Tuning data seeds 101..105 (the README's figures use data seeds 1..20, which
this sweep never sees). For each setting: success over 100 TARGET episodes
at 10/25/50/100/400 i.i.d. samples (mean and worst seed), labels down-weighted
below one half, the learned noise R, and on 1000 held-out samples the force RMSE and
the 90 % coverage at 400 samples, without label noise and with Sigma_data = 20.

    python tools/sweep_force_head.py --out docs/data/force_head_sweep.json
"""

import argparse
import json
import sys
from dataclasses import replace

import numpy as np
from scipy.stats import norm

from controller.kalman_head import HeadConfig
from controller.kbt import KBTController
from controller.lqr import LQRController
from controller.model import load_pretrained
from controller.rls import RLSController
from sim.world.cartpole import SOURCE, TARGET
from sim.world.data import sample_dataset
from sim.loops.loop import evaluate_success

MARKS = (10, 25, 50, 100, 400)
SEEDS = (101, 102, 103, 104, 105)


def run(make, seed, sigma_data, heldout):
    c = make()
    c.warm_up()
    S, F = sample_dataset(LQRController(TARGET), max(MARKS), seed=seed, sigma_data=sigma_data)
    succ = []
    for i in range(max(MARKS)):
        c.observe(S[i], F[i])
        if i + 1 in MARKS and sigma_data == 0:
            succ.append(evaluate_success(c, TARGET, 100, seed=0).success_rate)
    hs, hf = heldout
    mean, var = c.predict(hs)
    z = np.abs(hf - mean) / np.sqrt(var)
    return {"success": succ, "downweighted": c.n_downweighted, "R": c.noise_var,
            "rmse": float(np.sqrt(np.mean((mean - hf) ** 2))), "cover90": float(np.mean(z <= norm.ppf(0.95)))}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    ap.add_argument("--v", type=float, nargs="+", default=[1.0, 3.0, 10.0, 30.0])
    ap.add_argument("--robust", type=float, default=HeadConfig.robust, help="c of the robust weight")
    ap.add_argument("--r0", type=float, nargs="+", default=[HeadConfig().obs_noise],
                    help="initial guesses R0 of the learned noise (N^2)")
    ap.add_argument("--methods", nargs="+", default=["kbt:features+state", "kbt:features", "rls:state"])
    ap.add_argument("--sigma-data", type=float, nargs="+", default=[0.0, 20.0])
    args = ap.parse_args(argv)
    pol = load_pretrained()
    K_src = LQRController(SOURCE).K
    rows = []
    for sigma_data in args.sigma_data:
        heldout = sample_dataset(LQRController(TARGET), 1000, seed=999, sigma_data=sigma_data)
        for method, inputs in (m.split(":") for m in args.methods):
            for v, r0 in ((v, r0) for v in args.v for r0 in args.r0):
                cfg = HeadConfig(prior_var=v, robust=args.robust, obs_noise=r0)
                if method == "kbt":
                    cfg = replace(cfg, inputs=inputs)
                    make = lambda cfg=cfg: KBTController(pol, cfg)
                else:
                    make = lambda cfg=cfg: RLSController(K_src, cfg)
                res = [run(make, s, sigma_data, heldout) for s in SEEDS]
                row = {"method": method, "inputs": inputs, "v": v, "r0": r0, "robust": args.robust, "sigma_data": sigma_data,
                       "downweighted": sum(r["downweighted"] for r in res),
                       "R": float(np.mean([r["R"] for r in res])),
                       "rmse": float(np.mean([r["rmse"] for r in res])),
                       "cover90": float(np.mean([r["cover90"] for r in res]))}
                if sigma_data == 0:
                    succ = np.array([r["success"] for r in res])
                    row["success_mean"] = succ.mean(axis=0).round(3).tolist()
                    row["success_min"] = succ.min(axis=0).round(3).tolist()
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"command": "python tools/sweep_force_head.py " + " ".join(argv or sys.argv[1:]),
                       "marks": MARKS, "seeds": SEEDS, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
