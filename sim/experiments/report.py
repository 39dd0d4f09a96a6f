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


#: line style per method (colour, marker, dashes, width): every method distinguishable where
#: curves coincide (at success 1.00 several do); kbt is drawn last and on top
_STYLES = {"kbt": ("C3", "o", "-", 2.2), "kbt-softmax": ("C1", "s", "--", 1.4), "rls": ("C0", "^", ":", 1.6),
           "kbt-c": ("C5", "D", "-", 1.2), "rls-c": ("C9", "v", ":", 1.2)}
_OTHER = (("C2", "x", "-.", 1.2), ("C4", "+", (0, (5, 2)), 1.2), ("C6", "*", (0, (1, 2)), 1.2),
          ("C7", "<", "-.", 1.2), ("C8", ">", "--", 1.2))


def _style(method, i):
    return _STYLES.get(method, _OTHER[i % len(_OTHER)])


def _ordered(methods):
    """Methods in drawing order: kbt last, so its line is on top."""
    return sorted(methods, key=lambda m: m == "kbt")


def _band(ax, x, Y, label, style, log=False):
    Y = np.asarray(Y, dtype=float)
    mean = Y.mean(axis=0)
    color, marker, dashes, width = style
    every = max(1, len(x) // 12)
    ax.plot(x, mean, label=label, color=color, marker=marker, ms=4, markevery=every, ls=dashes, lw=width,
            zorder=4 if label == "kbt" else 2)
    if Y.shape[0] > 1:
        ax.fill_between(x, Y.min(axis=0), Y.max(axis=0), color=color, alpha=0.12, lw=0)
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

    methods = list(results["methods"])
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for m in _ordered(methods):
        _band(ax, marks, results["methods"][m]["success_rate"], m, _style(m, methods.index(m)))
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
    for m in _ordered(methods):
        s = results["methods"][m]
        _band(axes[0], marks, s["rmse"], m, _style(m, methods.index(m)), log=True)
        _band(axes[1], marks, s["gnll"], m, _style(m, methods.index(m)))
    axes[0].set(xlabel="samples seen", ylabel="held-out force RMSE (N)")
    axes[1].set(xlabel="samples seen", ylabel="held-out Gaussian NLL of the force (nats)")
    axes[1].legend(fontsize=7)
    fig.suptitle("Figure 3 (held-out TARGET data)")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "fig3_heldout.png"), dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for m in _ordered(methods):
        T = np.asarray(results["methods"][m]["learn_seconds"]) * 1e3      # [trials, samples] ms
        x = np.arange(1, T.shape[1] + 1)
        color, _, dashes, width = _style(m, methods.index(m))
        ax.plot(x, np.median(T, axis=0), lw=width, ls=dashes, color=color, label=m)
    ax.set_yscale("log")
    ax.set(xlabel="samples seen", ylabel="learning time per sample (ms, median over trials)",
           title="Figure 4: computation time per sample")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "fig4_time.png"), dpi=110)
    plt.close(fig)
    return summarise_learning(results)


def proportional_average(x, fraction=0.1):
    """Trailing mean over the last ``fraction`` of the samples seen so far (at least one):
    on a log axis a window that grows with n smooths evenly and, unlike a fixed window,
    has no step where the window stops reaching back to the prior."""
    x = np.asarray(x, dtype=float)
    c = np.cumsum(np.insert(x, 0, 0.0))
    n = np.arange(1, len(x) + 1)
    lo = n - np.maximum(1, np.floor(fraction * n).astype(int))
    return (c[n] - c[lo]) / (n - lo)


def write_variance(results, out_dir):
    """results.json, results.csv, fig5_variance.png."""
    os.makedirs(out_dir, exist_ok=True)
    _write_json(os.path.join(out_dir, "results.json"), results)
    _write_csv(os.path.join(out_dir, "results.csv"), tidy_rows(results))
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for s, r in results["runs"].items():
        n = np.asarray(r["samples"])
        raw = np.asarray(r["pred_var"], dtype=float)
        line, = ax.plot(n, raw, lw=0.6, alpha=0.45)
        ax.plot(n, proportional_average(raw), lw=1.6, color=line.get_color(),
                label=f"Sigma_data = {s} (settled {r['settled']:.1f})")
    ax.set(xlabel="samples seen", ylabel="predicted force variance (N^2)", title="Figure 5: KBT predicted variance")
    ax.set_xscale("log")
    ax.legend(fontsize=8, title="thin: as recorded; thick: mean over the last 10 % of samples", title_fontsize=7)
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
    fig.suptitle("Reliability, held-out TARGET data\n(trials pooled)" if cols == 1 else
                 "Reliability on held-out TARGET data (trials pooled)", fontsize=10)
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
    title = f"Quantile calibration of the force on held-out TARGET data (label noise {sd:g} N^2, trials averaged)"
    fig.suptitle(title if len(marks) > 2 else title.replace(" (", "\n("), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
