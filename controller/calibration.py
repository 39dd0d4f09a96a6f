"""Calibration metrics on held-out expert data, the same for every method.

Symbols: ``P`` (N, K) predicted bin probabilities, ``k`` (N,) the expert's bin
(nearest centre of the saturated force), ``mean``/``var`` (N,) the predictive
force mean and variance, ``f`` (N,) the expert's force.

* accuracy: fraction with ``argmax P == k``;
* ECE: ``sum_b n_b / N |acc_b - conf_b|`` over 15 equal-width confidence bins
  of ``max P`` (Guo et al. 2017);
* NLL: ``-mean log P[k]`` (probabilities floored at 1e-12);
* RMSE: ``sqrt(mean (mean - f)^2)``;
* coverage: fraction of ``f`` inside the central 90 % interval of
  ``N(mean, var)`` (a Gaussian summary of each method's predictive).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from controller.checks import as_float_array, check_int, check_positive

__all__ = ["accuracy", "ece", "nll", "rmse", "coverage", "reliability", "calibration_report"]

N_CONF_BINS = 15


def _probs_and_bins(probs, bins):
    P = as_float_array("probs", probs, (None, None))
    k = np.asarray(bins)
    if k.shape != (P.shape[0],) or not np.issubdtype(k.dtype, np.integer):
        raise ValueError(f"bins: expected ({P.shape[0]},) integers but found {k.shape} {k.dtype}")
    if k.size and (k.min() < 0 or k.max() >= P.shape[1]):
        raise ValueError(f"bins: expected values in [0, {P.shape[1] - 1}]")
    return P, k


def accuracy(probs, bins):
    P, k = _probs_and_bins(probs, bins)
    return float(np.mean(P.argmax(axis=1) == k))


def reliability(probs, bins, n_bins=N_CONF_BINS):
    """Per confidence bin: (mean confidence, accuracy, count), each (n_bins,);
    empty bins hold NaN confidence and accuracy."""
    P, k = _probs_and_bins(probs, bins)
    n_bins = check_int("n_bins", n_bins, low=1)
    conf = P.max(axis=1)
    correct = P.argmax(axis=1) == k
    # bin b holds confidences in (b/n, (b+1)/n]; confidence 0 goes to bin 0
    idx = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore"):
        mean_conf = np.bincount(idx, weights=conf, minlength=n_bins) / count
        acc = np.bincount(idx, weights=correct, minlength=n_bins) / count
    return mean_conf, acc, count


def ece(probs, bins, n_bins=N_CONF_BINS):
    conf, acc, count = reliability(probs, bins, n_bins)
    used = count > 0
    return float(np.sum(count[used] * np.abs(acc[used] - conf[used])) / count.sum())


def nll(probs, bins):
    P, k = _probs_and_bins(probs, bins)
    return float(-np.mean(np.log(np.maximum(P[np.arange(len(k)), k], 1e-12))))


def rmse(mean, forces):
    m = as_float_array("mean", mean, (None,))
    f = as_float_array("forces", forces, (m.shape[0],))
    return float(np.sqrt(np.mean((m - f) ** 2)))


def coverage(mean, var, forces, level=0.9):
    m = as_float_array("mean", mean, (None,))
    v = as_float_array("var", var, (m.shape[0],))
    f = as_float_array("forces", forces, (m.shape[0],))
    level = check_positive("level", level)
    if level >= 1:
        raise ValueError(f"level: expected a value in (0, 1) but found {level}")
    if np.any(v < 0):
        raise ValueError("var: expected non-negative variances")
    z = norm.ppf(0.5 + level / 2)
    return float(np.mean(np.abs(f - m) <= z * np.sqrt(v)))


def calibration_report(controller, states, forces, tokenizer):
    """All metrics for a controller with ``probs`` and ``predict`` on held-out
    (states, expert forces); forces are saturated to the tokenizer's range."""
    f = np.clip(as_float_array("forces", forces, (None,)), -tokenizer.u_max, tokenizer.u_max)
    P = controller.probs(states)
    k = tokenizer.index(f)
    mean, var = controller.predict(states)
    conf, acc, count = reliability(P, k)
    return {"accuracy": accuracy(P, k), "ece": ece(P, k), "nll": nll(P, k), "rmse": rmse(mean, f),
            "coverage90": coverage(mean, var, f),
            # per confidence bin sums, so reliability diagrams can pool trials
            "reliability": {"count": count.tolist(), "conf_sum": np.nan_to_num(conf * count).tolist(),
                            "correct": np.nan_to_num(acc * count).round().astype(int).tolist()}}
