"""Files and plots for the experiments made of deployed learning runs
(``kbt experiment onpolicy`` and ``kbt experiment swingup``): ``results.json``,
a tidy ``results.csv`` (experiment, variant, trial, ticks, metric, value), a
summary table and one figure (success vs ticks, success vs labels used)."""

from __future__ import annotations

import csv
import os

import numpy as np

from sim.experiments import plotting as P
from sim.experiments.report import _write_json
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
    _success_figure(results, os.path.join(out_dir, "success.png"))
    return summary


def _success_figure(results, path):
    """A panel per variant (mean success and its min..max band vs ticks, the others in grey) and
    a last panel of mean success vs the labels used, every variant (staggered markers)."""
    pyplot = P.plt()
    variants = list(results["variants"])
    fig, axes = P.small_multiples(pyplot, len(variants), cols=4, size=(3.4, 2.8), extra=1)
    mean = {v: np.asarray(r["success_rate"], dtype=float).mean(axis=0) for v, r in results["variants"].items()}
    ticks = {v: np.asarray(r["ticks"][0]) for v, r in results["variants"].items()}
    for ax, v in zip(axes, variants):
        P.band_panel(ax, ticks[v], results["variants"][v]["success_rate"], P.style(v, variants.index(v)),
                     [(ticks[o], mean[o]) for o in variants if o != v])
        ax.set(title=f"{v}: {mean[v][-1]:.2f} at tick {ticks[v][-1]}", ylim=(-0.04, 1.04))
        ax.title.set_fontsize(9)
        ax.set_xlabel("control ticks (@iid: samples)", fontsize=8)
        ax.set_ylabel("success rate", fontsize=8)
    last = axes[-1]
    series = [(v, np.asarray(results["variants"][v]["labels"], dtype=float).mean(axis=0), mean[v],
               P.style(v, variants.index(v))) for v in variants]
    handles = P.lines(last, series, ms=5)
    last.set(xscale="symlog", ylim=(-0.04, 1.04), title="success vs expert labels used, every variant")
    last.title.set_fontsize(9)
    last.set_xlabel("expert labels used (mean over trials, symlog)", fontsize=8)
    last.set_ylabel("success rate (mean)", fontsize=8)
    from sim.experiments.report import _band_legend

    bottom = P.legend_below(fig, handles + _band_legend(results["trials"]), ncol=min(len(handles) + 3, 5))
    task = results.get("task", "balance")
    fig.suptitle(f"experiment {results['experiment']}, task {task}: success rate on the changed plant while learning, "
                 f"{results['trials']} trials per variant", fontsize=10)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=110)
    pyplot.close(fig)


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
