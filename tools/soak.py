"""Soak of the force head: a long i.i.d. TARGET stream whose label noise switches
on and off, to check that the head never locks up (docs/change-detection.md).

Blocks of ``--block`` samples alternate clean labels and labels with Gaussian
noise of variance ``--noise-var`` (N^2), ``--samples`` in all. Printed:

* honest labels weighted below one half (every label here is honest);
* the learned noise R ``--settle`` samples after every switch against the level
  in force (noisy: within 20 % of the variance; clean: below 20 % of the noisy
  variance, since the clean level is the read-out's misfit, near 0);
* changes detected, the success rate at the end (100 TARGET episodes);
* the posterior: finite and positive definite at every check (every 10^4 samples).

    python tools/soak.py                          # 10^6 samples, blocks of 10^5 (about 1 min)
    python tools/soak.py --samples 200000 --block 20000 --method rls
"""

import argparse
import json
import sys

import numpy as np

from controller import force_numba as fn
from sim.world.cartpole import TARGET
from sim.world.data import sample_states
from sim.world.experts import expert_for
from sim.loops.loop import evaluate_success
from sim.loops.methods import make_controller
from sim.world.task import as_task

CHECK_EVERY = 10_000


def _posterior_ok(controller):
    """True when every layer's covariance is finite and positive definite (and the mean finite)."""
    for layer in controller.head.core.layers:
        if not (np.all(np.isfinite(layer.M)) and np.all(np.isfinite(layer.S))):
            return False
        if min(np.linalg.eigvalsh(S).min() for S in np.reshape(layer.S, (-1,) + layer.S.shape[-2:])) <= 0:
            return False
    return True


def soak(method="kbt", samples=1_000_000, block=100_000, noise_var=4.0, settle=2000, seed=0, chunk=10_000):
    """Run the soak; returns a JSON-ready dict of its figures."""
    c = make_controller(method, TARGET)
    c.warm_up()
    expert = expert_for(as_task(TARGET))
    rng = np.random.default_rng([seed, 11])
    low_weight, checks_ok, settle_rows = 0, True, []
    for start in range(0, samples, chunk):
        S = sample_states(chunk, rng)
        noisy = (start // block) % 2 == 1
        level = noise_var if noisy else 0.0
        F = expert.act(S) + (rng.normal(0.0, np.sqrt(noise_var), chunk) if noisy else 0.0)
        for i in range(chunk):
            before = c.n_downweighted
            c.observe(S[i], F[i])
            low_weight += c.n_downweighted - before
            if (start + i) % block == settle - 1 and start + i >= settle:
                r = c.noise_var
                ok = abs(r / level - 1) <= 0.2 if noisy else r <= 0.2 * noise_var
                settle_rows.append({"sample": start + i + 1, "level": level, "R": r, "ok": bool(ok)})
        checks_ok &= _posterior_ok(c)
    success = evaluate_success(c, as_task(TARGET), n_episodes=100, seed=seed).success_rate
    return {"method": method, "samples": samples, "block": block, "noise_var": noise_var, "settle": settle,
            "weighted_below_half": int(low_weight), "share_weighted_below_half": low_weight / samples,
            "changes": int(c.n_changes), "settle_checks": settle_rows, "success_at_end": float(success),
            "posterior_finite_pd_at_every_check": bool(checks_ok)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", choices=("kbt", "rls"), default="kbt")
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--block", type=int, default=100_000)
    ap.add_argument("--noise-var", type=float, default=4.0)
    ap.add_argument("--settle", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    if args.samples < 2 * args.block or args.block < CHECK_EVERY or args.block % CHECK_EVERY:
        ap.error(f"--block: expected a multiple of {CHECK_EVERY} with at least two blocks in --samples")
    if not 0 < args.settle < args.block:
        ap.error("--settle: expected 1 .. --block - 1 samples")
    res = soak(args.method, args.samples, args.block, args.noise_var, args.settle, args.seed, CHECK_EVERY)
    share = 100 * res["share_weighted_below_half"]
    print(f"{args.method}: {args.samples} samples, label noise {args.noise_var:g} N^2 on every other block of "
          f"{args.block}")
    print(f"honest labels weighted below 1/2: {res['weighted_below_half']} ({share:.3f} %)")
    for row in res["settle_checks"]:
        print(f"  {args.settle} samples after the switch at {row['sample'] - args.settle}: R = {row['R']:.4g} N^2 "
              f"(level {row['level']:g}) {'ok' if row['ok'] else 'NOT within 20 %'}")
    print(f"changes detected: {res['changes']}; success at the end {res['success_at_end']:.2f}; posterior finite "
          f"and positive definite at every check: {res['posterior_finite_pd_at_every_check']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
