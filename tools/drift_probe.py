"""Swing-up drift TARGET -> SHIFT2: is the change detector what keeps kbt from re-adapting, or
the labels the on-policy stream brings after the change?

The ``swingup`` schedule of ``kbt experiment drift`` (on-policy, TARGET, SHIFT2 (3, 0.1, 0.5)
from label 1000 on) run for ``kbt`` on a weight set with its learned prior (default
``swingup-alpaca``), the head changed at the change in one of these ways (``--reset``):

* ``detector``: as shipped: the change detector re-opens P to P0 when it fires, the mean stays;
* ``detector-mean``: the same, and each detection also sets the mean back to the prior's m0;
* ``oracle-cov``: at the change itself P = P0 (the detector told the tick), the mean stays;
* ``oracle-prior``: at the change itself m = m0 and P = P0 (a fresh head on the learned prior);

with ``--restart``, the plant also restarts hanging down (0, 0, pi, 0) at the change, so that
the labels after it come from the swing-up phase. Prints, per trial, the success over
``--episodes`` swing-up episodes at the change and at +10 ... +400 labels after it, and the
ticks of the detections; then the mean and worst per checkpoint. Trial t runs with seed
1000 ``--seed`` + t and the controller's seed t, as ``kbt experiment drift``.

    python tools/drift_probe.py --reset oracle-prior --trials 3
    python tools/drift_probe.py --reset detector-mean --restart --trials 10
"""

import argparse
import json

import numpy as np

from controller.weight_sets import learned_prior
from sim.experiments.drift import DriftSpec
from sim.loops.deploy import DeployConfig, run_deployment
from sim.loops.methods import MethodSettings, make_controller

RESETS = ("detector", "detector-mean", "oracle-cov", "oracle-prior")
AFTER = (10, 25, 50, 100, 200, 400)
HANGING = np.array([0.0, 0.0, np.pi, 0.0])


def _set_posterior(c, m=None, P=None):
    """Write the mean and/or covariance of kbt's head in place (the packed buffers the kernels read)."""
    if m is not None:
        c._packed.m[:] = m
    if P is not None:
        c._packed.P[:] = P


def run_trial(weights, reset, restart, trial, seed, episodes):
    """(checkpoint ticks, success per checkpoint, detection ticks) of one trial."""
    spec = DriftSpec(methods=("kbt",), schedules=("swingup",), trials=1, swingup_trials=1, episodes=episodes,
                     seed=seed)
    task, stream, _, changes, _ = spec.schedule("swingup")
    at = changes[0].at
    marks = (at,) + tuple(at + d for d in AFTER)
    c = make_controller("kbt", task, MethodSettings(weights=weights), seed=trial)
    m0, P0, _ = learned_prior(c, weights)
    seen, detections = [0], []

    def on_tick(state, force, res):
        if c.n_changes > seen[0]:
            seen[0] = c.n_changes
            detections.append(res.ticks)
            if reset == "detector-mean":
                _set_posterior(c, m=m0)
        if res.ticks == at:
            if reset == "oracle-cov":
                _set_posterior(c, P=P0)
            elif reset == "oracle-prior":
                _set_posterior(c, m=m0, P=P0)
            if restart:
                return HANGING.copy()
        return None

    cfg = DeployConfig(samples=marks[-1], stream=stream, episodes=episodes, seed=1000 * seed + trial,
                       changes=changes, checkpoints=marks)
    rows = run_deployment(c, task, cfg, on_tick=on_tick).rows
    ticks = [r["samples"] for r in rows if r["samples"] > 0]
    succ = [r["success_rate"] for r in rows if r["samples"] > 0]
    return ticks, succ, detections


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default="swingup-alpaca", help="a weight set with a learned prior")
    ap.add_argument("--reset", choices=RESETS, default="detector")
    ap.add_argument("--restart", action="store_true", help="the plant restarts hanging down at the change")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--seed", type=int, default=5, help="drift seed (5: tuning; the reported drift runs use 0)")
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--out")
    a = ap.parse_args()
    rows = []
    for t in range(a.trials):
        ticks, succ, det = run_trial(a.weights, a.reset, a.restart, t, a.seed, a.episodes)
        rows.append(succ)
        print(f"trial {t}: " + " ".join(f"{k}:{s:.2f}" for k, s in zip(ticks, succ)) + f"  detections {det}",
              flush=True)
    r = np.array(rows)
    head = f"{a.weights}, {a.reset}{', restart' if a.restart else ''}, {a.trials} trials (seed {a.seed})"
    print(f"{head}: mean " + " ".join(f"{v:.2f}" for v in r.mean(0)) + " | worst "
          + " ".join(f"{v:.2f}" for v in r.min(0)))
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"weights": a.weights, "reset": a.reset, "restart": a.restart, "seed": a.seed,
                       "episodes": a.episodes, "checkpoints": ticks, "success": rows}, f, indent=1)


if __name__ == "__main__":
    main()
