"""Files and plots for the experiments: ``results.json``, a tidy
``results.csv`` (one row per figure) and PNG plots (matplotlib, Agg backend)."""

from __future__ import annotations

import csv
import json
import os

import numpy as np

from sim.experiments.offline import CALIBRATION_KEYS, SERIES, SUMMARY_AT

__all__ = ["write_learning", "write_variance", "write_calibration", "summarise_learning", "summary_marks",
           "tidy_rows"]



def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _write_json(path, payload):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def tidy_rows(results):
    """(experiment, method, trial, samples, metric, value) rows of a results dict."""
    rows = []
    if results["experiment"] == "learning":
        marks = results["checkpoints"]
        for m, series in results["methods"].items():
            for metric in SERIES:
                for t, values in enumerate(series[metric]):
                    rows += [("learning", m, t, n, metric, v) for n, v in zip(marks, values)]
            for t, secs in enumerate(series["learn_seconds"]):
                rows += [("learning", m, t, i + 1, "learn_seconds", v) for i, v in enumerate(secs)]
        for ref, v in results["references"].items():
            rows.append(("learning", ref, 0, 0, "success_rate", v))
    else:
        for s, r in results["runs"].items():
            for key in ("pred_var", "aleatoric", "epistemic", "pred_var_ma"):
                rows += [("variance", f"kbt sigma_data={s}", 0, n, key, v) for n, v in zip(r["samples"], r[key])]
    return rows


def _write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("experiment", "method", "trial", "samples", "metric", "value"))
        w.writerows(rows)


def summary_marks(results, at=SUMMARY_AT):
    """The checkpoints of ``at`` the run has (else its last one)."""
    marks = results["checkpoints"]
    return [n for n in at if n in marks] or [marks[-1]]


def summarise_learning(results, at=SUMMARY_AT):
    """Per method: mean/min success at the checkpoints ``at`` and the median
    learning time per sample (ms)."""
    marks = results["checkpoints"]
    at = summary_marks(results, at)
    table = {}
    for m, series in results["methods"].items():
        S = np.asarray(series["success_rate"])                  # [trials, checkpoints]
        row = {}
        for n in at:
            j = marks.index(n)
            row[f"success_{n}"] = float(S[:, j].mean())
            row[f"success_min_{n}"] = float(S[:, j].min())
        row["ms_per_sample"] = float(np.median(np.asarray(series["learn_seconds"])) * 1e3)
        table[m] = row
    return table


def _band(ax, x, Y, label, log=False):
    Y = np.asarray(Y, dtype=float)
    mean = Y.mean(axis=0)
    line, = ax.plot(x, mean, label=label, lw=1.6)
    if Y.shape[0] > 1:
        ax.fill_between(x, Y.min(axis=0), Y.max(axis=0), color=line.get_color(), alpha=0.15, lw=0)
    if log:
        ax.set_yscale("log")


def write_learning(results, out_dir):
    """results.json, results.csv, fig3_success.png, fig3_heldout.png, fig4_time.png."""
    os.makedirs(out_dir, exist_ok=True)
    _write_json(os.path.join(out_dir, "results.json"), results)
    _write_csv(os.path.join(out_dir, "results.csv"), tidy_rows(results))
    plt = _plt()
    marks = results["checkpoints"]
    n = results["trials"]

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for m, s in results["methods"].items():
        _band(ax, marks, s["success_rate"], m)
    styles = {"pretrained": ("k", ":"), "lqr": ("0.4", "--")}
    for ref, v in results["references"].items():
        c, ls = styles.get(ref, ("k", "-."))
        ax.axhline(v, color=c, ls=ls, lw=1, label=f"{ref} ({v:.2f})")
    ax.set(xlabel="samples seen", ylabel="success rate on TARGET", ylim=(-0.03, 1.03),
           title=f"Figure 3: success vs samples (mean, band = min..max over {n} trials)")
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "fig3_success.png"), dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for m, s in results["methods"].items():
        _band(axes[0], marks, s["rmse"], m, log=True)
        _band(axes[1], marks, s["gnll"], m)
    axes[0].set(xlabel="samples seen", ylabel="held-out force RMSE (N)")
    axes[1].set(xlabel="samples seen", ylabel="held-out Gaussian NLL of the force (nats)")
    axes[1].legend(fontsize=7)
    fig.suptitle("Figure 3 (held-out TARGET data)")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "fig3_heldout.png"), dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for m, s in results["methods"].items():
        T = np.asarray(s["learn_seconds"]) * 1e3                    # [trials, samples] ms
        x = np.arange(1, T.shape[1] + 1)
        ax.plot(x, np.median(T, axis=0), lw=1, label=m)
    ax.set_yscale("log")
    ax.set(xlabel="samples seen", ylabel="learning time per sample (ms, median over trials)",
           title="Figure 4: computation time per sample")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "fig4_time.png"), dpi=110)
    plt.close(fig)
    return summarise_learning(results)


def write_variance(results, out_dir):
    """results.json, results.csv, fig5_variance.png."""
    os.makedirs(out_dir, exist_ok=True)
    _write_json(os.path.join(out_dir, "results.json"), results)
    _write_csv(os.path.join(out_dir, "results.csv"), tidy_rows(results))
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for s, r in results["runs"].items():
        line, = ax.plot(r["samples"], r["pred_var_ma"], lw=1.4, label=f"Sigma_data = {s} (settled {r['settled']:.1f})")
        ax.plot(r["samples"], r["pred_var"], lw=0.3, alpha=0.25, color=line.get_color())
    ax.set(xlabel="samples seen", ylabel="predicted force variance (N^2)",
           title=f"Figure 5: KBT predicted variance (moving average over {results['window']} samples)")
    ax.set_xscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "fig5_variance.png"), dpi=110)
    plt.close(fig)
    return {s: r["settled"] for s, r in results["runs"].items()}


CALIBRATION_COLUMNS = ("method", "samples", "trials") + CALIBRATION_KEYS


def write_calibration(results, out_dir):
    """results.json, calibration.csv (one row per method and checkpoint),
    quantiles.png (quantile calibration of the force, every method) and
    reliability.png (bin-confidence reliability, methods with force bins)."""
    os.makedirs(out_dir, exist_ok=True)
    _write_json(os.path.join(out_dir, "results.json"), results)
    with open(os.path.join(out_dir, "calibration.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CALIBRATION_COLUMNS)
        for r in results["rows"]:
            w.writerow([r.get(c, "") for c in CALIBRATION_COLUMNS])
    plt = _plt()
    _quantile_diagram(plt, results, os.path.join(out_dir, "quantiles.png"))
    methods = [m for m, rel in results["reliability"].items() if rel]
    cols = min(3, len(methods))
    rows = -(-len(methods) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows), squeeze=False)
    for ax, m in zip(axes.flat, methods):
        ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
        for n, rel in results["reliability"][m].items():
            count = np.asarray(rel["count"], dtype=float)
            used = count > 0
            conf = np.asarray(rel["conf_sum"])[used] / count[used]
            acc = np.asarray(rel["correct"])[used] / count[used]
            ax.plot(conf, acc, marker="o", ms=3, lw=1, label=f"{n} samples")
        ax.set(title=m, xlabel="confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(methods):]:
        ax.axis("off")
    fig.suptitle("Reliability on held-out TARGET data (trials pooled)")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "reliability.png"), dpi=110)
    plt.close(fig)
    return results["rows"]


def _quantile_diagram(plt, results, path):
    """Observed fraction of expert forces below each predictive quantile, one
    panel per checkpoint, a curve per method (calibrated = the diagonal)."""
    levels = results["quantile_levels"]
    marks = results["checkpoints"]
    fig, axes = plt.subplots(1, len(marks), figsize=(3.8 * len(marks), 3.6), squeeze=False)
    for ax, n in zip(axes[0], marks):
        ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
        for m, q in results["quantiles"].items():
            key = "0" if m == "pretrained" else str(n)
            if key in q:
                ax.plot(levels, q[key], marker="o", ms=3, lw=1, label=m)
        ax.set(title=f"{n} samples", xlabel="predictive quantile level", ylabel="observed fraction below",
               xlim=(0, 1), ylim=(0, 1))
    axes[0][-1].legend(fontsize=7)
    sd = results.get("sigma_data", 0.0)
    fig.suptitle(f"Quantile calibration of the force on held-out TARGET data (label noise {sd:g} N^2, trials averaged)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
