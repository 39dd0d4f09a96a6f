"""Calibration metrics on held-out expert data, the same for every method.

Symbols: ``P`` (N, K) predicted bin probabilities, ``k`` (N,) the expert's bin
(nearest centre of the saturated force), ``mean``/``var`` (N,) the predictive
force mean and variance, ``f`` (N,) the expert's force.

* accuracy: fraction with ``argmax P == k``;
* ECE: ``sum_b n_b / N |acc_b - conf_b|`` over 15 equal-width confidence bins
  of ``max P`` (Guo et al. 2017);
* NLL: ``-mean log P[k]`` (probabilities floored at 1e-12);
* RMSE: ``sqrt(mean (mean - f)^2)``;
* coverage: fraction of ``f`` inside the central 50 % / 90 % interval of
  ``N(mean, var)`` (a Gaussian summary of each method's predictive);
* Gaussian NLL: ``mean 0.5 log(2 pi var) + (f - mean)^2 / (2 var)`` (nats);
* CRPS: ``mean sigma [z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi)]``,
  ``z = (f - mean) / sigma`` (N; the closed form for a Gaussian, Gneiting and Raftery 2007);
* quantile calibration: for levels ``tau``, the fraction of ``f`` below the
  predictive ``tau``-quantile (a calibrated predictive gives ``tau``).

The force metrics need only ``predict`` and apply to every method; the bin
metrics (accuracy, ECE, bin NLL) only to methods with bin probabilities.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from controller.checks import as_float_array, check_int, check_positive

__all__ = ["accuracy", "ece", "nll", "rmse", "coverage", "reliability", "gaussian_nll", "crps",
           "quantile_calibration", "QUANTILE_LEVELS", "force_report", "calibration_report"]

#: levels of the quantile-calibration (reliability) diagram of force predictions
QUANTILE_LEVELS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)

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
    """Fraction of samples whose most probable bin is the true bin."""
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
    """Expected calibration error: count-weighted mean ``|accuracy - confidence|`` over confidence bins."""
    conf, acc, count = reliability(probs, bins, n_bins)
    used = count > 0
    return float(np.sum(count[used] * np.abs(acc[used] - conf[used])) / count.sum())


def nll(probs, bins):
    """Mean negative log probability of the true bin (nats; probabilities floored at 1e-12)."""
    P, k = _probs_and_bins(probs, bins)
    return float(-np.mean(np.log(np.maximum(P[np.arange(len(k)), k], 1e-12))))


def rmse(mean, forces):
    """Root mean squared error (N) of the predicted mean forces against the true forces."""
    m = as_float_array("mean", mean, (None,))
    f = as_float_array("forces", forces, (m.shape[0],))
    return float(np.sqrt(np.mean((m - f) ** 2)))


def coverage(mean, var, forces, level=0.9):
    """Fraction of forces inside the central ``level`` interval of N(mean, var)."""
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


def _mean_var_forces(mean, var, forces):
    m = as_float_array("mean", mean, (None,))
    v = as_float_array("var", var, (m.shape[0],))
    f = as_float_array("forces", forces, (m.shape[0],))
    if np.any(v <= 0):
        raise ValueError("var: expected positive variances")
    return m, v, f


def gaussian_nll(mean, var, forces):
    """Mean negative log density of ``forces`` under ``N(mean, var)`` (nats)."""
    m, v, f = _mean_var_forces(mean, var, forces)
    return float(np.mean(0.5 * np.log(2 * np.pi * v) + (f - m) ** 2 / (2 * v)))


def crps(mean, var, forces):
    """Mean continuous ranked probability score of ``N(mean, var)`` at ``forces`` (N)."""
    m, v, f = _mean_var_forces(mean, var, forces)
    sd = np.sqrt(v)
    z = (f - m) / sd
    return float(np.mean(sd * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi))))


def quantile_calibration(mean, var, forces, levels=QUANTILE_LEVELS):
    """Observed fraction of ``forces`` at or below each predictive quantile, (len(levels),)."""
    m, v, f = _mean_var_forces(mean, var, forces)
    pit = norm.cdf((f - m) / np.sqrt(v))                 # probability integral transform
    return np.array([np.mean(pit <= t) for t in levels])


#: variance floor (N^2) for the force metrics, so a method that predicts zero spread gets a finite NLL
VAR_FLOOR = 1e-6


def force_report(controller, states, forces):
    """Force metrics of a controller with ``predict`` on held-out (states, expert forces)."""
    mean, var = controller.predict(states)
    var = np.maximum(var, VAR_FLOOR)
    return {"rmse": rmse(mean, forces), "coverage50": coverage(mean, var, forces, 0.5),
            "coverage90": coverage(mean, var, forces), "gnll": gaussian_nll(mean, var, forces),
            "crps": crps(mean, var, forces), "quantiles": quantile_calibration(mean, var, forces).tolist(),
            "pred_var": float(np.mean(var))}


def calibration_report(controller, states, forces, tokenizer=None, u_max=30.0):
    """All metrics for a controller with ``predict`` on held-out (states,
    expert forces), saturated to ``u_max`` (what the plant applies): the force
    metrics for every method, and with ``probs`` and a ``tokenizer`` the bin
    metrics too."""
    u_max = u_max if tokenizer is None else tokenizer.u_max
    f = np.clip(as_float_array("forces", forces, (None,)), -u_max, u_max)
    out = force_report(controller, states, f)
    if tokenizer is None or not callable(getattr(controller, "probs", None)):
        return out
    P = controller.probs(states)
    k = tokenizer.index(f)
    conf, acc, count = reliability(P, k)
    return {**out, "accuracy": accuracy(P, k), "ece": ece(P, k), "nll": nll(P, k),
            # per confidence bin sums, so reliability diagrams can pool trials
            "reliability": {"count": count.tolist(), "conf_sum": np.nan_to_num(conf * count).tolist(),
                            "correct": np.nan_to_num(acc * count).round().astype(int).tolist()}}
