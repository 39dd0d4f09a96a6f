"""Files and plots for the experiments made of deployed learning runs
(``kbt experiment onpolicy`` and ``kbt experiment swingup``): ``results.json``,
a tidy ``results.csv`` (experiment, variant, trial, ticks, metric, value), a
summary table and one figure (success vs ticks, success vs labels used)."""

from __future__ import annotations

import csv
import os

import numpy as np

from sim.experiments.report import _plt, _write_json
from sim.loops.methods import has_robust_head

__all__ = ["write_deployed", "write_json_csv", "summarise_deployed", "format_summary", "SERIES"]

#: per-checkpoint series of every variant and trial
SERIES = ("success_rate", "labels", "takeovers", "falls", "downweighted", "changes")


def summarise_deployed(results, level=0.99):
    """One row per variant: mean success at each checkpoint, the labels used by
    the end, the falls while learning, labels to reach ``level`` and ms per label."""
    rows = {}
    for v, r in results["variants"].items():
        succ = np.asarray(r["success_rate"], dtype=float)            # [trials, checkpoints]
        reach = [x for x in r.get("labels_to_099", []) if x is not None]
        ms = [x for x in r["ms_per_label"] if x is not None]
        rows[v] = {
            "success": succ.mean(axis=0).tolist(),
            "worst": succ.min(axis=0).tolist(),
            "labels": float(np.mean([t[-1] for t in r["labels"]])),
            "falls": float(np.mean([t[-1] for t in r["falls"]])),
            # trials stored before these were recorded have none; heads without the mechanisms: None
            **{k: float(np.mean([t[-1] for t in r[k]])) if k in r and has_robust_head(v) else None
               for k in ("downweighted", "changes")},
            "reached": len(reach), "trials": len(succ),
            "labels_to_099_median": float(np.median(reach)) if reach else None,
            "ms_per_label": float(np.median(ms)) if ms else None,
        }
    return rows


def _tidy(results):
    rows = []
    for v, r in results["variants"].items():
        for key in (k for k in SERIES if k in r):
            for t, values in enumerate(r[key]):
                rows += [(results["experiment"], v, t, n, key, x) for n, x in zip(r["ticks"][t], values)]
    return rows


def write_json_csv(results, out_dir, header, rows):
    """``out_dir``/results.json (all of ``results``) and results.csv (tidy ``rows`` under ``header``)."""
    os.makedirs(out_dir, exist_ok=True)
    _write_json(os.path.join(out_dir, "results.json"), results)
    with open(os.path.join(out_dir, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def write_deployed(results, out_dir):
    """Write results.json, results.csv and success.png; returns the summary rows."""
    write_json_csv(results, out_dir, ("experiment", "variant", "trial", "ticks", "metric", "value"), _tidy(results))
    summary = summarise_deployed(results)
    plt = _plt()
    title = f"{results['experiment']} ({results.get('task', 'balance')}), {results['trials']} trials"
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for v, r in results["variants"].items():
        ticks = np.asarray(r["ticks"][0])
        succ = np.asarray(r["success_rate"], dtype=float)
        line, = ax1.plot(ticks, succ.mean(axis=0), label=v)
        ax1.fill_between(ticks, succ.min(axis=0), succ.max(axis=0), color=line.get_color(), alpha=0.12)
        labels = np.asarray(r["labels"], dtype=float).mean(axis=0)
        ax2.plot(labels, succ.mean(axis=0), marker=".", label=v)
    ax1.set(xlabel="control ticks (i.i.d. variants: samples)", ylabel="success rate (mean, band min-max)", title=title, ylim=(-0.02, 1.02))
    ax2.set(xlabel="expert labels used (mean)", ylabel="success rate (mean)", xscale="symlog",
            title="success vs labels", ylim=(-0.02, 1.02))
    ax1.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "success.png"), dpi=110)
    plt.close(fig)
    return summary


def format_summary(results, summary):
    """The summary as a plain-text table (what the command prints)."""
    ticks = [0] + list(results["checkpoints"])
    # 0 and about a quarter, a half, three quarters and all of the run
    want = {0} | {ticks[int(round(q * (len(ticks) - 1)))] for q in (0.25, 0.5, 0.75, 1.0)}
    show = [j for j, n in enumerate(ticks) if n in want]
    head = f"{'variant':>16} " + " ".join(f"{'@' + str(ticks[j]):>7}" for j in show)
    head += (f" {'worst':>6} {'labels':>7} {'falls':>6} {'labels to 0.99':>15} {'ms/label':>9} {'down-wt':>7} "
             f"{'detected':>8}")
    lines = [head]
    for v, row in summary.items():
        cells = " ".join(f"{row['success'][j]:>7.2f}" for j in show)
        reach = (f"{row['labels_to_099_median']:.0f} ({row['reached']}/{row['trials']})"
                 if row["labels_to_099_median"] is not None else f"- (0/{row['trials']})")
        ms = f"{row['ms_per_label']:.3f}" if row["ms_per_label"] is not None else "-"
        dw, ch = (f"{row[k]:.1f}" if row[k] is not None else "-" for k in ("downweighted", "changes"))
        lines.append(f"{v:>16} {cells} {row['worst'][-1]:>6.2f} {row['labels']:>7.1f} {row['falls']:>6.2f} "
                     f"{reach:>15} {ms:>9} {dw:>7} {ch:>8}")
    return "\n".join(lines)
