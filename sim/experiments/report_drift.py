"""Files and plots of ``kbt experiment drift``: ``results.json``, a tidy
``results.csv`` (schedule, method, trial, samples, metric, value), a summary
table per schedule and change, and ``drift.png`` (success and held-out RMSE
against the expert of the plant in force, one column per schedule, dotted
lines at the changes)."""

from __future__ import annotations

import os

import numpy as np

from sim.experiments.report import _plt
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
    plt = _plt()
    names = list(results["schedules"])
    fig, axes = plt.subplots(2, len(names), figsize=(4.2 * len(names), 6.4), squeeze=False)
    markers = "osD^vx+"
    for j, s in enumerate(names):
        entry = results["schedules"][s]
        for i, (m, e) in enumerate(entry["methods"].items()):
            x = np.asarray(e["samples"][0])
            style = dict(label=m, marker=markers[i % len(markers)], markersize=3, linewidth=1.2,
                         linestyle="-" if i % 2 == 0 else "--")
            axes[0, j].plot(x, np.mean(e["success_rate"], axis=0), **style)
            rmse = np.asarray([[np.nan if v is None else v for v in r] for r in e["rmse_expert_N"]], dtype=float)
            axes[1, j].plot(x, np.nanmean(rmse, axis=0), **style)
        for ax in axes[:, j]:
            for c in entry["change_ticks"]:
                ax.axvline(c, color="0.5", linestyle=":", linewidth=1)
        axes[0, j].set(title=f"{s} ({entry['stream']})", ylim=(-0.02, 1.02), ylabel="success (mean)")
        axes[1, j].set(xlabel="samples", ylabel="RMSE vs expert in force (N)", yscale="log")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "drift.png"), dpi=110)
    plt.close(fig)
    return summarise_drift(results)
