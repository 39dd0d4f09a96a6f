"""Files, figure and table of ``kbt experiment adapt`` (``sim.experiments.adapt``):
``results.json`` (every trial's series and the summary), ``results.csv`` (one row
per variant, task, stream, trial and label checkpoint), ``adapt.png`` (success and
held-out RMSE against labels: the mean over trials and the worst trial) and the
printed table (mean and worst success per checkpoint, non-monotone trials)."""

from __future__ import annotations

import csv
import math
import os

import numpy as np

from sim.experiments import plotting as P
from sim.experiments.report import _write_json

__all__ = ["summarise_adapt", "csv_rows", "write_adapt", "format_adapt", "CSV_HEADER"]

CSV_HEADER = ("variant", "task", "stream", "trial", "labels", "success", "rmse", "nll")


def _cells(results):
    """(task, stream, variant, cell) in the run's order."""
    for task, streams in results["runs"].items():
        for stream, variants in streams.items():
            for v in results["variants"]:
                if v in variants:
                    yield task, stream, v, variants[v]


def summarise_adapt(results):
    """``summary[task][stream][variant]``: per checkpoint the mean and worst success (and
    which trial was worst), the mean and worst (largest) RMSE, the mean NLL; and the number
    of non-monotone trials (once at ``reach``, later below ``stay``)."""
    out = {}
    for task, stream, v, cell in _cells(results):
        succ = np.asarray(cell["success"], dtype=float)              # [trials, checkpoints]
        rmse = np.asarray(cell["rmse"], dtype=float)
        nll = np.asarray(cell["nll"], dtype=float)
        trials = np.asarray(cell["trial"])
        out.setdefault(task, {}).setdefault(stream, {})[v] = {
            "trials": int(len(succ)),
            "success_mean": succ.mean(axis=0).tolist(),
            "success_worst": succ.min(axis=0).tolist(),
            "worst_trial": trials[succ.argmin(axis=0)].tolist(),
            "rmse_mean": rmse.mean(axis=0).tolist(),
            "rmse_worst": rmse.max(axis=0).tolist(),
            "nll_mean": nll.mean(axis=0).tolist(),
            "non_monotone": int(sum(cell["non_monotone"])),
            "non_monotone_trials": [int(t) for t, bad in zip(trials, cell["non_monotone"]) if bad],
        }
    return out


def csv_rows(results):
    """One row per variant, task, stream, trial and checkpoint (``CSV_HEADER``)."""
    rows = []
    marks = results["checkpoints"]
    for task, stream, v, cell in _cells(results):
        for k, t in enumerate(cell["trial"]):
            rows += [(v, task, stream, t, n, cell["success"][k][j], cell["rmse"][k][j], cell["nll"][k][j])
                     for j, n in enumerate(marks)]
    return rows


def write_adapt(results, out_dir):
    """Write results.json (with the summary), results.csv and adapt.png; returns the summary."""
    os.makedirs(out_dir, exist_ok=True)
    summary = summarise_adapt(results)
    results = dict(results, summary=summary)
    _write_json(os.path.join(out_dir, "results.json"), results)
    with open(os.path.join(out_dir, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_HEADER)
        w.writerows(csv_rows(results))
    _figure(results, summary, os.path.join(out_dir, "adapt.png"))
    return summary


def _figure(results, summary, path):
    """One row per (task, stream): success and held-out RMSE against labels (symlog), each
    variant's mean (thick) and its worst trial at each checkpoint (thin, same colour)."""
    pyplot = P.plt()
    from matplotlib.ticker import NullLocator

    panels = [(t, s) for t, streams in summary.items() for s in streams]
    fig, axes = pyplot.subplots(len(panels), 2, figsize=(10, 3.0 * len(panels) + 1.0), squeeze=False)
    x = np.asarray(results["checkpoints"], dtype=float)
    variants = results["variants"]
    handles = []
    for row, (task, stream) in zip(axes, panels):
        cells = summary[task][stream]
        names = [v for v in P.ordered(variants) if v in cells]
        for ax, key, worst, label in ((row[0], "success", "success_worst", "success rate"),
                                      (row[1], "rmse", "rmse_worst", "held-out force RMSE (N)")):
            series = [(v, x, cells[v][f"{key}_mean"], P.style(v, variants.index(v))) for v in names]
            h = P.lines(ax, series, ms=5)
            for v in names:
                colour = P.style(v, variants.index(v))[0]
                ax.plot(x, cells[v][worst], color=colour, lw=0.9, ls=(0, (2, 2)), alpha=0.8, zorder=1.5)
            ax.set_xscale("symlog", linthresh=1)
            ax.set_xticks(x)
            ax.set_xticklabels([f"{n:g}" for n in x], fontsize=7)
            ax.xaxis.set_minor_locator(NullLocator())
            if key == "rmse":
                ax.set_yscale("log")
            else:
                ax.set_ylim(-0.04, 1.04)
            ax.set_title(f"{task}, {stream}: {label}", fontsize=9)
            ax.set_xlabel("labels (symlog)", fontsize=8)
            handles = handles or h
    from matplotlib.lines import Line2D

    extra = [Line2D([], [], color="k", lw=0.9, ls=(0, (2, 2)), label="worst trial (success: lowest, RMSE: highest)")]
    bottom = P.legend_below(fig, handles + extra, ncol=min(len(handles) + 1, 4))
    fig.suptitle(f"experiment adapt: the changed plant, mean over {results['trials']} trials (thick) and the worst "
                 "trial (thin)", fontsize=10)
    fig.tight_layout(rect=(0, bottom, 1, 0.97))
    fig.savefig(path, dpi=100)
    pyplot.close(fig)


def _num(v, fmt):
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def format_adapt(results, summary):
    """The printed table: per task and stream, per variant the mean/worst success at each
    checkpoint, the mean held-out RMSE and NLL at the first and last checkpoint, and the
    non-monotone trials."""
    marks = results["checkpoints"]
    width = 9
    lines = []
    for task, streams in summary.items():
        for stream, cells in streams.items():
            lines.append(f"{task}, {stream}: success mean/worst at labels; held-out RMSE (N) and NLL (mean) "
                         f"at {marks[0]} and {marks[-1]} labels; non-monotone trials")
            lines.append(f"{'variant':>12} " + " ".join(f"{'@' + str(n):>{width}}" for n in marks)
                         + f" {'RMSE@' + str(marks[0]):>9} {'RMSE@' + str(marks[-1]):>9} {'NLL@' + str(marks[0]):>8}"
                         f" {'NLL@' + str(marks[-1]):>8} {'non-mono':>8}")
            for v in results["variants"]:
                if v not in cells:
                    continue
                c = cells[v]
                succ = " ".join(f"{f'{m:.2f}/{w:.2f}':>{width}}" for m, w in zip(c["success_mean"], c["success_worst"]))
                lines.append(f"{v:>12} {succ} {_num(c['rmse_mean'][0], '9.3f')} {_num(c['rmse_mean'][-1], '9.3f')} "
                             f"{_num(c['nll_mean'][0], '8.3f')} {_num(c['nll_mean'][-1], '8.3f')} "
                             f"{str(c['non_monotone']) + '/' + str(c['trials']):>8}")
    return "\n".join(lines)
