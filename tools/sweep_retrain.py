"""Choose the retraining baseline's learning rate and minibatch on held-out data.

Each setting: T trials of 100 i.i.d. TARGET LQR samples (data seeds 101..,
not the experiments' seeds) streamed into a warm-started retraining controller
(100 epochs of Adam over the FIFO memory per arrival). Measured after 50 and
100 samples on a validation set (seed 20 000, not the experiments' held-out
set): force RMSE and NLL of the expert's bin, and the success rate over 50
seeded episodes. Writes JSON and prints a Markdown table.

    python tools/sweep_retrain.py --trials 2 --out docs/data/retrain_sweep.json
"""

import argparse
import json
import os
import time
from multiprocessing import Pool

import numpy as np

from controller.calibration import calibration_report
from controller.lqr import LQRController
from sim.cartpole import TARGET
from sim.data import sample_dataset
from sim.loop import evaluate_success
from sim.methods import MethodSettings, make_controller

LRS = (3e-4, 1e-3, 3e-3)
BATCHES = (10, 32)
CAPACITIES = (10, 100)
MARKS = (50, 100)


def trial(args):
    capacity, lr, batch, seed = args
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    settings = MethodSettings(lr=lr, batch=batch)
    c = make_controller(f"retrain-{capacity}", TARGET, settings, seed=seed)
    expert = LQRController(TARGET)
    S, F = sample_dataset(expert, max(MARKS), seed=100 + seed)
    Sv, Fv = sample_dataset(expert, 1000, seed=20_000)
    out = {"capacity": capacity, "lr": lr, "batch": batch, "seed": seed}
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
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    grid = [(c, lr, b) for c in CAPACITIES for lr in LRS for b in BATCHES if not (c <= 10 and b > c)]
    jobs = [(c, lr, b, s) for (c, lr, b) in grid for s in range(1, args.trials + 1)]
    with Pool(args.jobs) as pool:
        results = pool.map(trial, jobs)
    print("| C | lr | batch | RMSE @50 | NLL @50 | success @50 | RMSE @100 | NLL @100 | success @100 | s/trial |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (c, lr, b) in grid:
        rs = [r for r in results if (r["capacity"], r["lr"], r["batch"]) == (c, lr, b)]
        m = {k: np.mean([r[k] for r in rs]) for k in rs[0] if k not in ("capacity", "lr", "batch", "seed")}
        print(f"| {c} | {lr:g} | {b} | {m['rmse_50']:.2f} | {m['nll_50']:.2f} | {m['success_50']:.2f} | "
              f"{m['rmse_100']:.2f} | {m['nll_100']:.2f} | {m['success_100']:.2f} | {m['seconds']:.0f} |")
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"trials": args.trials, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
