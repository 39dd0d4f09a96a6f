"""The files ``kbt run`` writes besides its JSON: the checkpoints as CSV (``--csv``) and a
picture of success, predictive std and learned noise against samples (``--plot``)."""

from __future__ import annotations

import csv

import numpy as np

#: checkpoint fields in the CSV, in this order (a run's rows may lack the on-policy ones)
COLUMNS = ("samples", "success_rate", "pred_std", "noise_var", "update_p50_us", "update_p99_us",
           "deadline_misses", "downweighted", "changes", "rejected", "sensor_faults", "labels", "takeovers",
           "falls", "plant", "sigma_data", "rmse_expert_N")


def write_csv(path, per_trial, seeds):
    """One line per trial and checkpoint: ``trial``, ``seed`` and the checkpoint's fields."""
    present = [c for c in COLUMNS if any(c in r for rows in per_trial for r in rows)]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("trial", "seed") + tuple(present))
        for t, (rows, seed) in enumerate(zip(per_trial, seeds)):
            for r in rows:
                w.writerow([t, seed] + [_cell(r.get(c)) for c in present])


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, (list, tuple)):
        return " ".join(f"{x:g}" for x in v)
    return v


def _series(per_trial, key):
    """[trials, checkpoints] of ``key`` (NaN where a row has none)."""
    return np.array([[np.nan if r.get(key) is None else float(r[key]) for r in rows] for rows in per_trial])


def write_plot(path, per_trial, title):
    """Success, predictive std and learned noise against samples: the mean over trials, and the
    min..max band when there are several."""
    from sim.experiments.report import _plt

    plt = _plt()
    marks = [r["samples"] for r in per_trial[0]]
    panels = (("success_rate", "success rate", False), ("pred_std", "predictive std of the force (N)", True),
              ("noise_var", "learned noise R (N^2)", True))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, (key, label, log) in zip(axes, panels):
        Y = _series(per_trial, key)
        if np.all(np.isnan(Y)):
            ax.text(0.5, 0.5, "not measured for this method", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.plot(marks, np.nanmean(Y, axis=0), marker="o", ms=3, lw=1.6, color="C3")
            if Y.shape[0] > 1:
                ax.fill_between(marks, np.nanmin(Y, axis=0), np.nanmax(Y, axis=0), color="C3", alpha=0.15, lw=0)
            if log and np.nanmin(Y) > 0:
                ax.set_yscale("log")
        ax.set(xlabel="samples", ylabel=label)
    axes[0].set_ylim(-0.03, 1.03)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
