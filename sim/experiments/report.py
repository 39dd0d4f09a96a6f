"""Files and plots for the experiments: ``results.json``, a tidy
``results.csv`` (one row per figure) and PNG plots (matplotlib, Agg backend)."""

from __future__ import annotations

import csv
import json
import os

import numpy as np

from sim.experiments import plotting as P
from sim.experiments.offline import CALIBRATION_KEYS, SERIES, SUMMARY_AT

__all__ = ["write_learning", "write_variance", "write_calibration", "summarise_learning", "summary_marks",
           "tidy_rows"]



def _plt():
    return P.plt()


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


def _band_legend(n, refs=()):
    """Legend handles of a band panel: mean, band, the other methods, the reference lines."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    return ([Line2D([], [], color="k", lw=1.8, label=f"mean over {n} trials"),
             Patch(color="k", alpha=0.25, lw=0, label="min..max over trials"),
             Line2D([], [], color="0.75", lw=0.9, label="the others' means (grey)")]
            + [Line2D([], [], color=c, ls=ls, lw=1, label=label) for label, _, c, ls in refs])


_REF_STYLE = {"pretrained": ("k", ":"), "lqr": ("0.4", "--")}


def _fig3_success(results, path):
    """Figure 3 as small multiples: a panel per method with its band, the others in grey."""
    pyplot = P.plt()
    marks = np.asarray(results["checkpoints"])
    methods = list(results["methods"])
    refs = [(f"{r} ({v:.2f})", v, *_REF_STYLE.get(r, ("k", "-."))) for r, v in results["references"].items()]
    fig, axes = P.small_multiples(pyplot, len(methods))
    means = {m: np.asarray(results["methods"][m]["success_rate"], dtype=float).mean(axis=0) for m in methods}
    for ax, m in zip(axes, methods):
        Y = results["methods"][m]["success_rate"]
        P.band_panel(ax, marks, Y, P.style(m, methods.index(m)), [(marks, means[o]) for o in methods if o != m],
                     [(v, c, ls) for _, v, c, ls in refs])
        ax.set(title=f"{m}: {means[m][-1]:.2f} at {marks[-1]} samples", ylim=(-0.04, 1.04))
        ax.title.set_fontsize(9)
    for ax in axes:
        ax.set_xlabel("samples seen (labelled TARGET states)", fontsize=8)
        ax.set_ylabel("success rate on TARGET", fontsize=8)
    bottom = P.legend_below(fig, _band_legend(results["trials"], refs), ncol=3)
    fig.suptitle("Figure 3: success rate on the changed plant (TARGET) vs samples learned, a panel per method",
                 fontsize=10)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=110)
    pyplot.close(fig)


def _fig3_heldout(results, path):
    """Held-out force RMSE and Gaussian NLL, every method in each panel (staggered markers)."""
    pyplot = P.plt()
    marks = results["checkpoints"]
    methods = P.ordered(list(results["methods"]))
    fig, axes = pyplot.subplots(1, 2, figsize=(10.5, 4.4))
    for ax, key in zip(axes, ("rmse", "gnll")):
        series = [(m, marks, np.asarray(results["methods"][m][key], dtype=float).mean(axis=0),
                   P.style(m, list(results["methods"]).index(m))) for m in methods]
        handles = P.lines(ax, series)
    axes[0].set(xlabel="samples seen", ylabel="force RMSE on held-out TARGET states (N, log)", yscale="log",
                title="prediction error")
    axes[1].set(xlabel="samples seen", ylabel="Gaussian NLL of the expert's force (nats)",
                title="predictive likelihood (lower is better)")
    bottom = P.legend_below(fig, handles)
    fig.suptitle(f"Figure 3, held-out TARGET data: mean over {results['trials']} trials", fontsize=10)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=110)
    pyplot.close(fig)


def _fig4_time(results, path):
    pyplot = P.plt()
    methods = P.ordered(list(results["methods"]))
    fig, ax = pyplot.subplots(figsize=(7.5, 4.6))
    series = []
    for m in methods:
        T = np.asarray(results["methods"][m]["learn_seconds"]) * 1e3      # [trials, samples] ms
        series.append((m, np.arange(1, T.shape[1] + 1), np.median(T, axis=0), P.style(m, list(results["methods"]).index(m))))
    handles = P.lines(ax, series, ms=5)
    ax.set_yscale("log")
    ax.set(xlabel="samples seen", ylabel="learning time per sample (ms, log; median over trials)",
           title="Figure 4: computation time per sample (on the machine that ran it)")
    bottom = P.legend_below(fig, handles)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=110)
    pyplot.close(fig)


def write_learning(results, out_dir):
    """results.json, results.csv, fig3_success.png, fig3_heldout.png, fig4_time.png."""
    os.makedirs(out_dir, exist_ok=True)
    _write_json(os.path.join(out_dir, "results.json"), results)
    _write_csv(os.path.join(out_dir, "results.csv"), tidy_rows(results))
    _fig3_success(results, os.path.join(out_dir, "fig3_success.png"))
    _fig3_heldout(results, os.path.join(out_dir, "fig3_heldout.png"))
    _fig4_time(results, os.path.join(out_dir, "fig4_time.png"))
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
    _fig5(results, os.path.join(out_dir, "fig5_variance.png"))
    return {s: r["settled"] for s, r in results["runs"].items()}


def _fig5(results, path):
    """Predicted variance vs samples, one colour per label-noise variance, with a dashed line at that
    variance (the level a calibrated head settles at); y up to the highest of them and the means."""
    from matplotlib.lines import Line2D

    pyplot = P.plt()
    fig, ax = pyplot.subplots(figsize=(8.6, 4.4))
    top = 0.0
    for i, (s, r) in enumerate(results["runs"].items()):
        n = np.asarray(r["samples"])
        raw = np.asarray(r["pred_var"], dtype=float)
        smooth = proportional_average(raw)
        colour = f"C{i}"
        ax.plot(n, raw, lw=0.6, alpha=0.4, color=colour)
        ax.plot(n, smooth, lw=1.8, color=colour, label=f"Sigma_data = {s} N^2: settled {r['settled']:.1f}")
        ax.axhline(float(s), color=colour, ls="--", lw=1.0)
        top = max(top, float(s), float(np.nanmax(smooth[len(smooth) // 100:])))
    ax.set(xlabel="samples seen (log)", ylabel="predicted force variance (N^2)", xscale="log",
           ylim=(-0.04 * top - 0.5, 1.15 * top + 1),
           title=f"Figure 5: {results.get('method', 'kbt')} predicted variance vs samples for several label noises")
    handles, _ = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color="0.3", lw=0.6, alpha=0.6, label="as recorded (clipped at the top)"),
                Line2D([], [], color="0.3", lw=1.8, label="mean over the last 10 % of samples"),
                Line2D([], [], color="0.3", ls="--", lw=1.0, label="the true label-noise variance")]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot.close(fig)


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
    _quantile_diagram(results, os.path.join(out_dir, "quantiles.png"))
    reliability = os.path.join(out_dir, "reliability.png")
    if _reliability_methods(results):
        _reliability_diagram(results, reliability)
    elif os.path.exists(reliability):       # a figure of an earlier run in the same folder: not this run's
        os.remove(reliability)
    return results["rows"]


def _reliability_methods(results):
    """Methods with force bins to draw (the pre-trained reference only beside a learning method)."""
    methods = [m for m, rel in results["reliability"].items() if rel]
    return methods if any(m != "pretrained" for m in methods) else []


def _checkpoint_series(panel, marks, points):
    """(label, x, y, style) per checkpoint of one panel: a colour and marker per checkpoint of the
    run (``marks``), the same in every panel; the pre-trained reference ('0') in black."""
    looks = (("C0", "o"), ("C1", "s"), ("C2", "D"), ("C4", "^"), ("C5", "v"), ("C6", "P"))
    out = []
    for n in panel:
        colour, marker = ("k", "X") if n == "0" else looks[[str(k) for k in marks].index(n) % len(looks)]
        out.append((f"{n} samples" if n != "0" else "pre-trained (0 samples)", *points(n), (colour, marker, "-", 1.3)))
    return out


def _reliability_diagram(results, path):
    """Accuracy vs confidence of the force bins, a panel per method with bins, a curve per checkpoint."""
    pyplot = P.plt()
    methods = _reliability_methods(results)
    fig, axes = P.small_multiples(pyplot, len(methods), size=(3.4, 3.2))
    handles = {}
    for ax, m in zip(axes, methods):
        rel = results["reliability"][m]

        def points(n, rel=rel):
            count = np.asarray(rel[n]["count"], dtype=float)
            used = count > 0
            return np.asarray(rel[n]["conf_sum"])[used] / count[used], np.asarray(rel[n]["correct"])[used] / count[used]

        ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
        for h in P.lines(ax, _checkpoint_series(list(rel), results["checkpoints"], points), ms=5):
            handles.setdefault(h.get_label(), h)
        ax.set(title=m, xlabel="confidence of the force bin", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1.02))
    bottom = P.legend_below(fig, list(handles.values()) + [_diagonal()], ncol=3)
    fig.suptitle("Reliability of the force bins on held-out TARGET data (trials pooled; calibrated = diagonal)",
                 fontsize=10)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=110)
    pyplot.close(fig)


def _diagonal():
    from matplotlib.lines import Line2D

    return Line2D([], [], color="0.6", lw=0.8, ls="--", label="calibrated (diagonal)")


def _quantile_diagram(results, path):
    """Observed fraction of expert forces below each predictive quantile: a panel per method,
    a curve per checkpoint (calibrated = the diagonal)."""
    pyplot = P.plt()
    levels = results["quantile_levels"]
    methods = list(results["quantiles"])
    fig, axes = P.small_multiples(pyplot, len(methods), cols=4, size=(3.2, 3.0))
    handles = {}
    for ax, m in zip(axes, methods):
        q = results["quantiles"][m]
        ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
        for h in P.lines(ax, _checkpoint_series(list(q), results["checkpoints"], lambda n, q=q: (levels, q[n])), ms=5):
            handles.setdefault(h.get_label(), h)
        ax.set(title=m, xlabel="predictive quantile level", ylabel="observed fraction below", xlim=(0, 1),
               ylim=(0, 1.02))
    bottom = P.legend_below(fig, list(handles.values()) + [_diagonal()], ncol=4)
    sd = results.get("sigma_data", 0.0)
    fig.suptitle(f"Quantile calibration of the force on held-out TARGET data (label noise {sd:g} N^2, trials "
                 "averaged)", fontsize=10)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=110)
    pyplot.close(fig)
