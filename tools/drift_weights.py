"""Swing-up drift with kbt on other weights: ``kbt experiment drift``'s ``swingup`` schedule
(on-policy, TARGET, then SHIFT2 (3, 0.1, 0.5) from label 1000 on, 2000 labels;
``sim.experiments.drift``) run for ``kbt`` on each of ``--weights`` (a file, a shipped weight
set's name, or ``shipped``: the task's shipped file and its default prior), the same trials
and seeds for each (trial t: seed 1000 ``--seed`` + t). The command has no ``--weights``; the
library's ``DriftSpec(settings=MethodSettings(weights=...))`` takes them.

``--schedule swingup-swap``: the same plants with the change between episodes (a new episode
starts hanging at the change); ``--change-reset prior``: a detected change starts the head
afresh from its prior (``HeadConfig.change_reset``; default ``covariance``, as shipped);
``--detect H``: the change detector's threshold (default 400, as shipped); ``--reset-scale S``:
with ``--change-reset prior``, the head restarts with S times the prior's covariance
(``HeadConfig.change_reset_scale``, default 1).

Writes ``results.json``, ``results.csv`` and ``drift.png`` (``write_drift``; the method is
named ``kbt`` for ``shipped``, ``kbt@alpaca`` for ``swingup-alpaca``, else ``kbt@FILE``, with
``+reset`` under ``--change-reset prior``, ``+resetS`` with ``--reset-scale S``) and prints, per weights, the mean (worst) success at
each checkpoint after the change.

    python tools/drift_weights.py --weights swingup-alpaca shipped --trials 20 --out results/drift_swingup_alpaca
    python tools/drift_weights.py --schedule swingup-swap --change-reset prior --weights swingup-alpaca --out results/drift_swap_reset
"""

import argparse
import os
import time
from dataclasses import replace

import numpy as np

from controller.kalman_head import HeadConfig
from sim.experiments.adapt import SET_VARIANTS
from sim.experiments.drift import DriftSpec, run_drift
from sim.experiments.report_drift import format_drift, write_drift
from sim.loops.methods import MethodSettings


def label(weights, change_reset="covariance", scale=1.0):
    """The method's name in the files: ``kbt`` (shipped), the adapt variant of a weight set
    (``kbt@alpaca``), else ``kbt@FILE`` (an ``@`` name keeps the robust head's columns);
    ``+reset`` when a detected change resets the head to its prior (``+resetS``: with S times
    its covariance)."""
    suffix = "" if change_reset == "covariance" else "+reset" + ("" if scale == 1.0 else f"{scale:g}")
    if weights == "shipped":
        return "kbt" + suffix
    by_set = {}
    for variant, name in SET_VARIANTS.items():       # a set's first variant: its plain kbt
        by_set.setdefault(name, variant)
    return by_set.get(weights, f"kbt@{os.path.basename(weights)}") + suffix


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", nargs="+", default=["swingup-alpaca", "shipped"])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--schedule", choices=("swingup", "swingup-swap"), default="swingup")
    ap.add_argument("--change-reset", choices=("covariance", "prior"), default="covariance")
    ap.add_argument("--detect", type=float, default=HeadConfig().change_threshold,
                    help="the change detector's threshold h (HeadConfig.change_threshold)")
    ap.add_argument("--reset-scale", type=float, default=1.0,
                    help="with --change-reset prior: the covariance the head restarts with, times the prior's")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if not 0 <= a.detect < float("inf"):
        ap.exit(2, f"--detect: expected a threshold >= 0 (0: no detector) but found {a.detect:g}\n")
    if not (0 < a.reset_scale < float("inf") and (a.reset_scale == 1.0 or a.change_reset == "prior")):
        ap.exit(2, f"--reset-scale: expected a factor > 0, and 1 unless --change-reset prior, but found "
                   f"{a.reset_scale:g}\n")
    merged = None
    for w in a.weights:
        t0 = time.perf_counter()
        settings = MethodSettings(weights=None if w == "shipped" else w)
        settings = replace(settings, head=replace(settings.head, change_reset=a.change_reset,
                                                  change_threshold=a.detect, change_reset_scale=a.reset_scale))
        spec = DriftSpec(methods=("kbt",), schedules=(a.schedule,), trials=a.trials, swingup_trials=a.trials,
                         episodes=a.episodes, seed=a.seed, settings=settings)
        res = run_drift(spec, jobs=1, progress=False)
        entry = res["schedules"][a.schedule]
        name = label(w, a.change_reset, a.reset_scale)
        entry["methods"] = {name: entry["methods"]["kbt"]}
        if merged is None:
            merged = res
        else:
            merged["schedules"][a.schedule]["methods"].update(entry["methods"])
        succ = np.asarray(entry["methods"][name]["success_rate"], dtype=float)
        marks = entry["checkpoints"]
        at = entry["change_ticks"][0]
        cols = [j for j, m in enumerate(marks) if m > at]
        print(f"{name} ({time.perf_counter() - t0:.0f} s): labels after the change "
              + " ".join(f"+{marks[j] - at}: {succ[:, j].mean():.2f} ({succ[:, j].min():.2f})" for j in cols)
              + f"; before it, at {at}: {succ[:, marks.index(at)].mean():.2f} ({succ[:, marks.index(at)].min():.2f})",
              flush=True)
    merged["command"] = "python tools/drift_weights.py " + " ".join(
        ["--schedule", a.schedule, "--change-reset", a.change_reset, "--reset-scale", f"{a.reset_scale:g}",
         "--detect", f"{a.detect:g}", "--weights", *a.weights, "--trials",
         str(a.trials), "--episodes", str(a.episodes), "--seed", str(a.seed), "--out", a.out])
    rows = write_drift(merged, a.out)
    print(format_drift(rows))
    print(f"wrote {a.out}/results.json, results.csv and drift.png")


if __name__ == "__main__":
    main()
