"""Markdown tables of a ``kbt experiment adapt`` run (its ``results.json``) against the swing-up goal:
mean (worst) success per checkpoint, variant and stream; non-monotone trials by the command's rule
(every checkpoint, 0 labels included) and by the goal's (checkpoints from ``--from`` labels on:
once a trial reaches 0.95, no later checkpoint below 0.9); trials at >= 0.95 at 50 labels; and
every trial's success at ``--at`` labels.

    python tools/adapt_table.py results/adapt_swingup/results.json
"""

import argparse
import json

import numpy as np

from sim.experiments.adapt import REACH, STAY, non_monotone


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--task", default="swingup")
    ap.add_argument("--from", dest="start", type=int, default=10, help="first checkpoint of the goal's rule")
    ap.add_argument("--at", type=int, default=50, help="checkpoint of the per-trial rows and the goal's mean")
    a = ap.parse_args()
    d = json.load(open(a.results))
    marks = d["checkpoints"]
    goal = [j for j, m in enumerate(marks) if m >= a.start]
    at = marks.index(a.at)
    runs = d["runs"][a.task]
    print("| variant | stream | " + " | ".join(str(marks[j]) for j in goal)
          + f" | non-monotone (all checkpoints) | non-monotone ({a.start}+) | >= {REACH} at {a.at} |")
    print("|---|---|" + "---|" * (len(goal) + 3))
    for v in d["variants"]:
        for stream, cells in runs.items():
            if v not in cells:
                continue
            s = np.asarray(cells[v]["success"], dtype=float)
            n = len(s)
            cols = " | ".join(f"{s[:, j].mean():.2f} ({s[:, j].min():.2f})" for j in goal)
            bad_all = [t for t, row in zip(cells[v]["trial"], s) if non_monotone(row)]
            bad_goal = [t for t, row in zip(cells[v]["trial"], s) if non_monotone(row[goal], REACH, STAY)]
            print(f"| `{v}` | {stream} | {cols} | {len(bad_all)} / {n} | {len(bad_goal)} / {n}"
                  f"{' (' + ' '.join(map(str, bad_goal)) + ')' if bad_goal else ''} | "
                  f"{int(np.sum(s[:, at] >= REACH))} / {n} |")
    print(f"\nPer trial at {a.at} labels (trials {' '.join(map(str, next(iter(runs.values()))[d['variants'][0]]['trial']))}):\n")
    print("| variant | stream | " + "success per trial |")
    print("|---|---|---|")
    for v in d["variants"]:
        for stream, cells in runs.items():
            if v in cells:
                s = np.asarray(cells[v]["success"], dtype=float)
                print(f"| `{v}` | {stream} | " + " ".join(f"{x:.2f}" for x in s[:, at]) + " |")
    print("\nTrials that break the goal's rule (success at every checkpoint from "
          f"{a.start} on):\n")
    for v in d["variants"]:
        for stream, cells in runs.items():
            if v not in cells:
                continue
            for t, row in zip(cells[v]["trial"], np.asarray(cells[v]["success"], dtype=float)):
                if non_monotone(row[goal], REACH, STAY):
                    print(f"- `{v}` {stream} trial {t}: " + " ".join(f"{row[j]:.2f}" for j in goal))


if __name__ == "__main__":
    main()
