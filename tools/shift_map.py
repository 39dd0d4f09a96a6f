"""How far the plant can move before adapting the head is not enough: a shift map.

Per task, success after ``--labels`` i.i.d. expert labels (the deployed loop of ``kbt run``,
``sim.loops.deploy.run_deployment``) on plants around the task's changed plant:

* a grid over (m_p, l_p), log-spaced, with m_c the changed plant's;
* a line over m_c, with m_p and l_p the changed plant's;

each spanning the task's family range (``sim.pretraining.family.FAMILY_RANGE``) and a factor
``SPAN_OUT`` beyond it on both sides, so the map shows plants inside the range that no family
draw landed on and plants outside it. Methods: any of ``kbt run``'s (``kbt``, ``rls``, ...)
with their default settings, ``kbt@family`` and ``rls@family`` (the family priors of ``kbt
experiment adapt``), ``kbt@alpaca`` (swing-up: the shipped ``swingup-alpaca`` weights and their
learned prior) and ``expert``: the plant's own expert (the
best a controller can do; no labels). Success over ``--episodes`` seeded episodes of the plant;
trial t of a cell uses seed 1000 ``--seed`` + t for the stream and the episodes.

Writes ``shift.json`` (every cell), ``shift.csv`` and ``shift.png`` (one panel per method and
sweep, the family range outlined, the changed plant marked).

    python tools/shift_map.py --task swingup --out results/shift_swingup
    python tools/shift_map.py --task balance --out results/shift_balance
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

import numpy as np

from sim.experiments.trials import run_jobs
from sim.pretraining.family import FAMILY_RANGE
from sim.world.task import PLANTS, TASKS

#: the sweeps reach this factor beyond the family range on both sides
SPAN_OUT = 1.5


def grid_values(task_name, n):
    """(m_p values, l_p values, m_c values): ``n`` log-spaced each, from the family range's low
    end / SPAN_OUT to its high end x SPAN_OUT."""
    lo, hi = FAMILY_RANGE[task_name]
    out = [np.geomspace(lo[i] / SPAN_OUT, hi[i] * SPAN_OUT, n) for i in (1, 2, 0)]
    return tuple(np.round(v, 4).tolist() for v in out)


def cells(task_name, n):
    """Every plant of the map as (sweep, m_c, m_p, l_p): the (m_p, l_p) grid, then the m_c line."""
    p = PLANTS[task_name]["target"]
    mps, lps, mcs = grid_values(task_name, n)
    return ([("mp_lp", p.m_c, mp, lp) for lp in lps for mp in mps]
            + [("mc", mc, p.m_p, p.l_p) for mc in mcs])


def _job(args):
    """One cell, method and trial -> (key, success)."""
    from sim.experiments.adapt import make_variant
    from sim.loops.deploy import DeployConfig, run_deployment
    from sim.loops.loop import evaluate_success
    from sim.world.experts import expert_for

    task_name, method, sweep, m_c, m_p, l_p, labels, episodes, seed = args
    base = TASKS[task_name].on(PLANTS[task_name]["target"])
    task = base.on(base.params.with_(m_c=m_c, m_p=m_p, l_p=l_p))
    expert = expert_for(task)
    if method == "expert":
        success = evaluate_success(expert, task, episodes, seed).success_rate
    else:
        cfg = DeployConfig(samples=labels, stream="iid", episodes=episodes, seed=seed, labels="always",
                           checkpoints=(labels,))
        # the variants of ``kbt experiment adapt`` (the family priors, the weight set's learned prior)
        rows = run_deployment(make_variant(method, task_name, seed=seed, task=task), task, cfg, expert=expert).rows
        success = [r["success_rate"] for r in rows if r["labels"] == labels][0]
    return args, float(success)


def run(a):
    methods = a.methods or (["expert", "kbt", "rls"] + (["kbt@alpaca"] if a.task == "swingup" else
                                                         ["kbt@family", "rls@family"]))
    work = [(a.task, m, sweep, m_c, m_p, l_p, a.labels, a.episodes, 1000 * a.seed + t)
            for sweep, m_c, m_p, l_p in cells(a.task, a.n) for m in methods for t in range(a.trials)]
    t0 = time.perf_counter()
    results = run_jobs(_job, work, workers=a.jobs, label="shift map", progress=not a.no_progress)
    rows = [{"method": m, "sweep": sw, "m_c": mc, "m_p": mp, "l_p": lp, "seed": s, "success": succ}
            for (_, m, sw, mc, mp, lp, _, _, s), succ in results]
    mps, lps, mcs = grid_values(a.task, a.n)
    target = PLANTS[a.task]["target"]
    out = {"task": a.task, "labels": a.labels, "episodes": a.episodes, "trials": a.trials, "seed": a.seed,
           "methods": methods, "m_p": mps, "l_p": lps, "m_c": mcs, "family_range": FAMILY_RANGE[a.task],
           "target": [target.m_c, target.m_p, target.l_p], "seconds": time.perf_counter() - t0, "rows": rows}
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "shift.json"), "w") as f:
        json.dump(out, f, indent=1)
    with open(os.path.join(a.out, "shift.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    plot(out, os.path.join(a.out, "shift.png"))
    print(report(out))
    print(f"wrote {a.out}/shift.json, shift.csv and shift.png ({out['seconds']:.0f} s)")


def mean_grid(out, method):
    """(m_p x l_p success means (len l_p, len m_p), m_c line means) of one method."""
    rows = [r for r in out["rows"] if r["method"] == method]
    grid = np.array([[np.mean([r["success"] for r in rows if r["sweep"] == "mp_lp" and r["m_p"] == mp
                               and r["l_p"] == lp]) for mp in out["m_p"]] for lp in out["l_p"]])
    line = np.array([np.mean([r["success"] for r in rows if r["sweep"] == "mc" and r["m_c"] == mc])
                     for mc in out["m_c"]])
    return grid, line


def report(out):
    """The maps as text: per method, the (m_p, l_p) grid (rows l_p) and the m_c line."""
    lines = [f"{out['task']}: success after {out['labels']} i.i.d. labels ({out['episodes']} episodes, "
             f"{out['trials']} trial(s) per cell); family range m_c, m_p, l_p: {out['family_range'][0]} .. "
             f"{out['family_range'][1]}; changed plant {out['target']}"]
    for m in out["methods"]:
        grid, line = mean_grid(out, m)
        lines.append(f"{m}: rows l_p, columns m_p " + " ".join(f"{v:g}" for v in out["m_p"]))
        for lp, row in zip(out["l_p"], grid):
            lines.append(f"  l_p {lp:<7g} " + " ".join(f"{v:5.2f}" for v in row))
        lines.append("  m_c line (" + " ".join(f"{v:g}" for v in out["m_c"]) + "): "
                     + " ".join(f"{v:.2f}" for v in line))
    return "\n".join(lines)


def _edges(v):
    """Cell edges on a log axis for log-spaced centres ``v``: geometric midpoints, half a step past the ends."""
    v = np.asarray(v, dtype=float)
    mid = np.sqrt(v[:-1] * v[1:])
    return np.concatenate([[v[0] ** 2 / mid[0]], mid, [v[-1] ** 2 / mid[-1]]])


def _log_ticks(ax, axis, values):
    getattr(ax, f"set_{axis}scale")("log")
    getattr(ax, f"set_{axis}ticks")(values, [f"{v:.3g}" for v in values])
    getattr(ax, f"{axis}axis").set_minor_locator(__import__("matplotlib").ticker.NullLocator())


def plot(out, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    methods = out["methods"]
    fig, axes = plt.subplots(2, len(methods), figsize=(3.3 * len(methods) + 1.2, 6.0),
                             gridspec_kw={"height_ratios": [3, 1]}, squeeze=False, constrained_layout=True)
    lo, hi = out["family_range"]
    mp, lp, mc = (np.array(out[k]) for k in ("m_p", "l_p", "m_c"))
    for j, m in enumerate(methods):
        grid, line = mean_grid(out, m)
        ax = axes[0, j]
        im = ax.pcolormesh(_edges(mp), _edges(lp), grid, vmin=0, vmax=1, cmap="RdYlGn")
        _log_ticks(ax, "x", mp)
        _log_ticks(ax, "y", lp)
        ax.add_patch(Rectangle((lo[1], lo[2]), hi[1] - lo[1], hi[2] - lo[2], fill=False, lw=1.5, ls="--"))
        ax.plot(out["target"][1], out["target"][2], "k*", ms=12)
        for i, yv in enumerate(lp):
            for k, xv in enumerate(mp):
                ax.text(xv, yv, f"{grid[i, k]:.2f}", ha="center", va="center", fontsize=7)
        ax.set_title(m)
        ax.set_xlabel("m_p (kg)")
        if j == 0:
            ax.set_ylabel("l_p (m)")
        ax2 = axes[1, j]
        ax2.plot(mc, line, "o-")
        ax2.axvspan(lo[0], hi[0], alpha=0.15)
        ax2.axvline(out["target"][0], color="k", lw=1)
        _log_ticks(ax2, "x", mc)
        ax2.set_ylim(-0.05, 1.05)
        ax2.set_xlabel("m_c (kg)")
        if j == 0:
            ax2.set_ylabel("success")
    fig.colorbar(im, ax=axes[0, -1], shrink=0.8, label="success")
    fig.suptitle(f"{out['task']}: success after {out['labels']} i.i.d. labels; dashed / shaded: the family "
                 f"range; star / line: the changed plant")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=tuple(FAMILY_RANGE), default="swingup")
    ap.add_argument("--methods", nargs="+",
                    help="default: expert kbt rls and, on swing-up, kbt@alpaca; on balance kbt@family rls@family")
    ap.add_argument("--n", type=int, default=5, help="values per swept parameter, 2..12 (default 5)")
    ap.add_argument("--labels", type=int, default=200, help="labels before the success is measured (default 200)")
    ap.add_argument("--episodes", type=int, default=50, help="episodes per success rate (default 50)")
    ap.add_argument("--trials", type=int, default=1, help="trials per cell and method (default 1)")
    ap.add_argument("--seed", type=int, default=0, help="trial t uses seed 1000 seed + t (default 0)")
    ap.add_argument("--jobs", type=int, default=1, help="processes (default 1)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    for name, v, low, high in (("--n", a.n, 2, 12), ("--labels", a.labels, 1, 100_000),
                               ("--episodes", a.episodes, 1, 10_000), ("--trials", a.trials, 1, 1000),
                               ("--seed", a.seed, 0, 10**6), ("--jobs", a.jobs, 1, 64)):
        if not low <= v <= high:
            print(f"shift_map: {name}: expected an integer in {low}..{high} but found {v}", file=sys.stderr)
            return 2
    run(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
