"""Files and plots of ``kbt experiment drift``: ``results.json``, a tidy
``results.csv`` (schedule, method, trial, samples, metric, value), a summary
table per schedule and change, and ``drift.png`` (success and held-out RMSE
against the expert of the plant in force, one column per schedule, dotted
lines at the changes)."""

from __future__ import annotations

import os

import numpy as np

from sim.experiments import plotting as P
from sim.loops.methods import has_robust_head
from sim.experiments.report_deployed import write_json_csv

__all__ = ["write_drift", "summarise_drift", "format_drift"]

SERIES = ("success_rate", "rmse_expert_N", "downweighted", "changes", "falls")
#: samples after a change at which the summary reads the RMSE
RMSE_AFTER = 200


def _at(record_samples, values, tick):
    """The value at checkpoint ``tick`` (None if not a checkpoint)."""
    try:
        return values[list(record_samples).index(tick)]
    except ValueError:
        return None


def summarise_drift(results):
    """Rows (schedule, method, change): mean success 10/25/50 samples after the change, samples
    to 0.99 (median over the trials that got there), RMSE 200 samples after (mean), and the
    labels down-weighted and changes detected by the end (mean)."""
    rows = []
    for s, entry in results["schedules"].items():
        for m, e in entry["methods"].items():
            samples = e["samples"][0]
            succ = np.asarray(e["success_rate"], dtype=float)
            for k, (c, text) in enumerate(zip(entry["change_ticks"], entry["changes"])):
                reach = [t[k] for t in e["samples_to_099"] if t[k] is not None]
                rmse = [_at(samples, r, c + RMSE_AFTER) for r in e["rmse_expert_N"]]
                rows.append({
                    "schedule": s, "method": m, "change": text, "trials": len(succ),
                    **{f"success_{d}": (float(succ[:, samples.index(c + d)].mean()) if c + d in samples else None)
                       for d in (10, 25, 50)},
                    "reached": len(reach), "samples_to_099": float(np.median(reach)) if reach else None,
                    f"rmse_{RMSE_AFTER}": float(np.mean(rmse)) if None not in rmse else None,
                    # None for a head without a robust weight and change detector
                    **{k: float(np.mean([t[-1] for t in e[key]])) if has_robust_head(m) else None
                       for k, key in (("downweighted", "downweighted"), ("changes_detected", "changes"))},
                })
    return rows


def format_drift(rows):
    """The summary as a plain-text table (what the command prints)."""
    def f(v, fmt):
        return "-" if v is None else format(v, fmt)

    head = (f"{'schedule':>13} {'method':>12} {'change':>30} {'@+10':>5} {'@+25':>5} {'@+50':>5} "
            f"{'to 0.99':>11} {'RMSE@+200':>9} {'down-wt':>7} {'detected':>8}")
    lines = [head]
    for r in rows:
        reach = f"{f(r['samples_to_099'], '.0f')} ({r['reached']}/{r['trials']})"
        lines.append(f"{r['schedule']:>13} {r['method']:>12} {r['change']:>30} {f(r['success_10'], '.2f'):>5} "
                     f"{f(r['success_25'], '.2f'):>5} {f(r['success_50'], '.2f'):>5} {reach:>11} "
                     f"{f(r[f'rmse_{RMSE_AFTER}'], '.3f'):>9} {f(r['downweighted'], '.1f'):>7} "
                     f"{f(r['changes_detected'], '.1f'):>8}")
    return "\n".join(lines)


def _tidy(results):
    for s, entry in results["schedules"].items():
        for m, e in entry["methods"].items():
            for key in SERIES:
                for t, values in enumerate(e[key]):
                    yield from ((s, m, t, n, key, x) for n, x in zip(e["samples"][t], values))


def write_drift(results, out_dir):
    """Write results.json, results.csv and drift.png; returns the summary rows."""
    write_json_csv(results, out_dir, ("schedule", "method", "trial", "samples", "metric", "value"), _tidy(results))
    _drift_figure(results, os.path.join(out_dir, "drift.png"))
    return summarise_drift(results)


def _drift_figure(results, path):
    """A column per schedule: mean success (top) and held-out RMSE against the expert of the plant in
    force (bottom) vs samples, every method (staggered markers), a dotted line and label per change."""
    pyplot = P.plt()
    names = list(results["schedules"])
    # one column is as wide as two: the title and the legend below need the width
    fig, axes = pyplot.subplots(2, len(names), figsize=(4.3 * max(len(names), 2), 7.0), squeeze=False)
    handles = {}
    for j, s in enumerate(names):
        entry = results["schedules"][s]
        methods = list(entry["methods"])
        for row, series in enumerate(_drift_series(entry, methods)):
            for h in P.lines(axes[row, j], series, ms=6):
                handles.setdefault(h.get_label(), h)
        for ax in axes[:, j]:
            for c in entry["change_ticks"]:
                ax.axvline(c, color="0.4", linestyle=":", linewidth=1.2, zorder=1)
        for c, text in zip(entry["change_ticks"], entry["changes"]):
            axes[0, j].annotate(text.split(": ", 1)[-1], (c, 1.0), xycoords=("data", "axes fraction"),
                                xytext=(0, 3), textcoords="offset points", fontsize=7, ha="center", va="bottom",
                                color="0.3")
        trials = sorted({len(e["success_rate"]) for e in entry["methods"].values()})
        axes[0, j].set(title=f"{s}: {entry['task']}, {entry['stream']} stream\n"
                             f"({' or '.join(map(str, trials))} trials per method)", ylim=(-0.04, 1.04),
                       ylabel="success rate (mean over trials)")
        axes[0, j].set_title(axes[0, j].get_title(), fontsize=9, pad=14)
        axes[1, j].set(xlabel="samples learned", ylabel="force RMSE vs the expert in force (N, log)", yscale="log")
    from matplotlib.lines import Line2D

    extra = [Line2D([], [], color="0.4", ls=":", lw=1.2, label="a change of the plant or the label noise")]
    bottom = P.legend_below(fig, list(handles.values()) + extra)
    fig.suptitle("drift: every method through schedules of changes (plant (m_c, m_p, l_p) or label-noise "
                 "variance N^2, as labelled)", fontsize=10)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=110)
    pyplot.close(fig)


def _drift_series(entry, methods):
    """(success series, RMSE series) of one schedule: (label, x, y, style) per method."""
    success, rmse = [], []
    for i, m in enumerate(methods):
        e = entry["methods"][m]
        x = np.asarray(e["samples"][0])
        st = P.style(m, i)
        success.append((m, x, np.mean(e["success_rate"], axis=0), st))
        r = np.asarray([[np.nan if v is None else v for v in t] for t in e["rmse_expert_N"]], dtype=float)
        rmse.append((m, x, np.nanmean(r, axis=0), st))
    return success, rmse
