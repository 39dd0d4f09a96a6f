"""Choose the baselines' hyper-parameters on held-out data.

Each setting: T trials of 100 i.i.d. TARGET LQR samples (data seeds 101..,
not the experiments' seeds) streamed into a warm-started retraining or BLoB
controller (100 epochs of Adam over the FIFO memory per arrival). Measured
after 50 and 100 samples on a validation set (seed 20 000, not the
experiments' held-out set): force RMSE and NLL of the expert's bin, and the
success rate over 50 seeded episodes. Writes JSON and prints a Markdown table.

    python tools/sweep_baselines.py retrain --trials 2 --out docs/data/retrain_sweep.json
    python tools/sweep_baselines.py blob --trials 1 --out docs/data/blob_sweep.json
"""

import argparse
import json
import os
import time
from multiprocessing import Pool

import numpy as np

from controller.calibration import calibration_report
from controller.lqr import LQRController
from sim.world.cartpole import TARGET
from sim.world.data import sample_dataset
from sim.loops.loop import evaluate_success
from sim.loops.methods import MethodSettings, make_controller

CAPACITIES = (10, 100)
MARKS = (50, 100)
GRIDS = {
    # method: list of MethodSettings keyword sets
    "retrain": [dict(lr=lr, batch=b) for lr in (3e-4, 1e-3, 3e-3) for b in (10, 32)],
    "blob": [dict(blob_lr=lr, blob_prior_std=sp) for lr in (3e-3, 1e-2) for sp in (0.2, 1.0)]
    + [dict(blob_lr=1e-2, blob_prior_std=0.2, blob_kl_data="memory")],
}


def trial(args):
    method, capacity, kw, seed = args
    settings = MethodSettings(**kw)
    c = make_controller(f"{method}-{capacity}", TARGET, settings, seed=seed)
    expert = LQRController(TARGET)
    S, F = sample_dataset(expert, max(MARKS), seed=100 + seed)
    Sv, Fv = sample_dataset(expert, 1000, seed=20_000)
    out = {"capacity": capacity, "settings": kw, "seed": seed}
    t0 = time.perf_counter()
    for i in range(max(MARKS)):
        c.observe(S[i], F[i])
        if i + 1 in MARKS:
            rep = calibration_report(c, Sv, Fv, c.tokenizer)
            out[f"rmse_{i + 1}"] = rep["rmse"]
            out[f"nll_{i + 1}"] = rep["nll"]
            out[f"success_{i + 1}"] = evaluate_success(c, TARGET, 50, seed=0).success_rate
    out["seconds"] = time.perf_counter() - t0
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("method", choices=sorted(GRIDS))
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    # a minibatch above C is the same as a full batch: skip those duplicates
    grid = [(c, kw) for c in CAPACITIES for kw in GRIDS[args.method] if kw.get("batch", 0) <= max(c, 10)]
    jobs = [(args.method, c, kw, s) for (c, kw) in grid for s in range(1, args.trials + 1)]
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[k] = "1"     # before the workers import NumPy: one BLAS thread each
    with Pool(args.jobs) as pool:
        results = pool.map(trial, jobs)
    print("| C | settings | RMSE @50 | NLL @50 | success @50 | RMSE @100 | NLL @100 | success @100 | s/trial |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (c, kw) in grid:
        rs = [r for r in results if (r["capacity"], r["settings"]) == (c, kw)]
        m = {k: np.mean([r[k] for r in rs]) for k in rs[0] if k not in ("capacity", "settings", "seed")}
        label = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in kw.items())
        print(f"| {c} | {label} | {m['rmse_50']:.2f} | {m['nll_50']:.2f} | {m['success_50']:.2f} | "
              f"{m['rmse_100']:.2f} | {m['nll_100']:.2f} | {m['success_100']:.2f} | {m['seconds']:.0f} |")
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"trials": args.trials, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
