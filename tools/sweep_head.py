"""Sweep the Kalman head's settings (and the pre-trained features they sit on).

Each setting: T trials (data seeds 1..T) of 400 i.i.d. TARGET LQR samples
streamed into a fresh KBT controller; success over 100 seeded episodes and
held-out force RMSE at 100 and 400 samples. Writes JSON and prints a Markdown
table.

    python tools/sweep_head.py --trials 5 --out docs/data/head_sweep.json
"""

import argparse
import json
import os
import time
from multiprocessing import Pool

import numpy as np

from controller.kalman_head import HeadConfig
from controller.kbt_softmax import SoftmaxKBTController
from controller.lqr import LQRController
from controller.model import TransformerPolicy, load_pretrained
from sim.world.cartpole import TARGET
from sim.world.data import sample_dataset
from sim.loops.loop import evaluate_success

SETTINGS = {
    # name: (weights file or None for the shipped one, HeadConfig kwargs, standardise)
    "default (L=1, v/R=100)": (None, {}, True),
    "v/R = 10": (None, {"prior_var": 0.01}, True),
    "v/R = 1000": (None, {"prior_var": 1.0}, True),
    "features not standardised": (None, {}, False),
    "features whitened": (None, {}, "whiten"),
    "dense covariance": (None, {"covariance": "dense"}, True),
    "paper output update": (None, {"update": "paper"}, True),
    "L=2, n=32, v=(1e-2, 0.1)": (None, {"n_layers": 2, "prior_var": (1e-2, 0.1), "backend": "numpy"}, True),
    "L=2, n=64 random free units, v=(1e-2, 0.1)": (None, {"n_layers": 2, "hidden": 64, "free_units": "random",
                                                        "prior_var": (1e-2, 0.1), "backend": "numpy"}, True),
    "L=2 diagonal (47) cross-cov": (None, {"n_layers": 2, "prior_var": (1e-2, 0.1), "cross": "diagonal",
                                           "backend": "numpy"}, True),
}


def trial(args):
    name, weights, kwargs, std, seed = args
    pol = load_pretrained(weights)
    c = SoftmaxKBTController(pol, HeadConfig(output="softmax", **kwargs), standardise=std)
    expert = LQRController(TARGET)
    S, F = sample_dataset(expert, 400, seed=seed)
    Sv, Fv = sample_dataset(expert, 1000, seed=10_000)
    Fv = np.clip(Fv, -30, 30)
    out = {"name": name, "seed": seed}
    t0 = time.perf_counter()
    for i in range(400):
        c.observe(S[i], F[i])
        if i + 1 in (100, 400):
            out[f"success_{i + 1}"] = evaluate_success(c, TARGET, 100, seed=0).success_rate
            out[f"rmse_{i + 1}"] = float(np.sqrt(np.mean((c.act(Sv) - Fv) ** 2)))
    out["seconds"] = time.perf_counter() - t0
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument("--weights", nargs="*", default=[], metavar="NAME=PATH",
                    help="extra pre-trained files to compare with the default head")
    ap.add_argument("--only", nargs="*", default=None, help="names of SETTINGS to run")
    args = ap.parse_args()
    settings = {k: v for k, v in SETTINGS.items() if args.only is None or k in args.only}
    for item in args.weights:
        label, path = item.split("=", 1)
        settings[f"weights: {label}"] = (path, {}, True)
    jobs = [(n, w, kw, std, seed) for n, (w, kw, std) in settings.items() for seed in range(1, args.trials + 1)]
    with Pool(args.jobs) as pool:
        results = pool.map(trial, jobs)
    rows = []
    print("| setting | success @100 (mean, min) | success @400 (mean, min) | RMSE @400 (N) |")
    print("|---|---|---|---|")
    for n in settings:
        rs = [r for r in results if r["name"] == n]
        s1 = np.array([r["success_100"] for r in rs])
        s4 = np.array([r["success_400"] for r in rs])
        e4 = np.array([r["rmse_400"] for r in rs])
        rows.append({"setting": n, "trials": rs})
        print(f"| {n} | {s1.mean():.2f}, {s1.min():.2f} | {s4.mean():.2f}, {s4.min():.2f} | {e4.mean():.2f} |")
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"trials": args.trials, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
