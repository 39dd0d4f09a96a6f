"""Sweep the action tokenizer for pre-training: bins x target style.

For each setting, pre-train on SOURCE (same seed, same steps) and report the
held-out force RMSE and the success rate on SOURCE and TARGET.

    python tools/sweep_tokenizer.py --steps 2000 --out docs/data/tokenizer_sweep.json
"""

import argparse
import json
import os

from sim.pretraining.balance import pretrain
from controller.transformer import TransformerConfig
from sim.world.cartpole import SOURCE, TARGET
from sim.loops.loop import evaluate_success


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bins", type=int, nargs="+", default=[11, 21, 41])
    ap.add_argument("--targets", nargs="+", default=["onehot", "twohot", "gaussian"])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rows = []
    for n_bins in args.bins:
        for target in args.targets:
            cfg = TransformerConfig(n_bins=n_bins, target=target)
            pol, hist = pretrain(cfg, seed=args.seed, steps=args.steps, progress=False)
            row = {"n_bins": n_bins, "target": target, "val_rmse": hist[-1]["val_rmse"],
                   "success_source": evaluate_success(pol, SOURCE, 100, 0).success_rate,
                   "success_target": evaluate_success(pol, TARGET, 100, 0).success_rate}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"steps": args.steps, "seed": args.seed, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
