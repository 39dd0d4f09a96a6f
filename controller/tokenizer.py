"""Action tokenizer: force <-> distribution over ``n_bins`` bins on [-u_max, u_max].

Bin centres ``a_k`` are equally spaced from ``-u_max`` to ``u_max`` (both ends
included), spacing ``delta = 2 u_max / (n_bins - 1)``; bin edges are the
midpoints. Forces outside the range are clipped to it first.

Target styles (what a force becomes for training):

* ``onehot``: 1 on the nearest centre;
* ``twohot``: linear interpolation between the two neighbouring centres, so
  that ``sum_k y_k a_k`` equals the (clipped) force exactly;
* ``gaussian``: the masses of ``N(force, sigma^2)`` on the bins (edges at the
  midpoints, the outer bins open-ended), i.e. a smoothed one-hot.

Decoding: ``mean`` (expected force ``sum_k p_k a_k``, default) or ``mode``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from controller.checks import as_float_array, check_choice, check_int, check_positive

__all__ = ["TARGET_STYLES", "DECODE_MODES", "ActionTokenizer"]

TARGET_STYLES = ("onehot", "twohot", "gaussian")
DECODE_MODES = ("mean", "mode")


class ActionTokenizer:
    """Bins, soft targets and decoding for a scalar force.

    Parameters
    ----------
    n_bins : int
        Number of bins, >= 2.
    u_max : float
        Half-range of the bins (N).
    target : {'onehot', 'twohot', 'gaussian'}
    sigma : float
        Standard deviation (N) of the ``gaussian`` target.
    decode : {'mean', 'mode'}
    """

    def __init__(self, n_bins=11, u_max=30.0, target="twohot", sigma=3.0, decode="mean"):
        self.n_bins = check_int("n_bins", n_bins, low=2, high=1001)
        self.u_max = check_positive("u_max", u_max)
        self.target = check_choice("target", target, TARGET_STYLES)
        self.sigma = check_positive("sigma", sigma)
        self.decode_mode = check_choice("decode", decode, DECODE_MODES)
        #: bin centres a_k, shape (n_bins,)
        self.centres = np.linspace(-self.u_max, self.u_max, self.n_bins)
        self.delta = self.centres[1] - self.centres[0]
        #: inner edges (midpoints), shape (n_bins - 1,)
        self.edges = 0.5 * (self.centres[1:] + self.centres[:-1])

    def config(self):
        """The tokenizer's settings as a dict (the arguments that rebuild it)."""
        return {"n_bins": self.n_bins, "u_max": self.u_max, "target": self.target,
                "sigma": self.sigma, "decode": self.decode_mode}

    # ------------------------------------------------------------ encoding
    def index(self, forces):
        """Index of the nearest bin centre, shape like ``forces``."""
        f = np.clip(np.asarray(forces, dtype=float), -self.u_max, self.u_max)
        return np.clip(np.rint((f + self.u_max) / self.delta).astype(np.int64), 0, self.n_bins - 1)

    def encode(self, forces, style=None):
        """Target distributions for forces: ``(N,) -> (N, n_bins)``."""
        f = as_float_array("forces", forces, [(None,), ()])
        f = np.clip(np.atleast_1d(f), -self.u_max, self.u_max)
        style = self.target if style is None else check_choice("style", style, TARGET_STYLES)
        out = np.zeros((f.size, self.n_bins))
        rows = np.arange(f.size)
        if style == "onehot":
            out[rows, self.index(f)] = 1.0
        elif style == "twohot":
            pos = (f + self.u_max) / self.delta
            lo = np.clip(np.floor(pos).astype(np.int64), 0, self.n_bins - 2)
            w_hi = pos - lo
            out[rows, lo] = 1.0 - w_hi
            out[rows, lo + 1] += w_hi
        else:
            out[:] = self.gaussian_masses(f, self.sigma**2)
        return out

    def gaussian_masses(self, means, variance):
        """Masses of ``N(mean, variance)`` on the bins (outer bins open): ``(N,) -> (N, n_bins)``.

        With ``variance == 0`` this is the one-hot of the nearest centre.
        """
        m = np.atleast_1d(np.asarray(means, dtype=float))
        if variance <= 0:
            return self.encode(m, "onehot")
        cdf = ndtr((self.edges[None, :] - m[:, None]) / np.sqrt(variance))
        cdf = np.concatenate([np.zeros((m.size, 1)), cdf, np.ones((m.size, 1))], axis=1)
        return np.diff(cdf, axis=1)

    # ------------------------------------------------------------ decoding
    def decode(self, probs, mode=None):
        """Force from bin probabilities ``(N, n_bins) -> (N,)``."""
        p = np.asarray(probs)
        mode = self.decode_mode if mode is None else mode
        if mode == "mode":
            return self.centres[np.argmax(p, axis=-1)]
        return p @ self.centres

    def variance(self, probs):
        """Variance of the force under the categorical ``p``: ``sum p a^2 - (sum p a)^2``."""
        p = np.asarray(probs)
        m = p @ self.centres
        return np.maximum(p @ self.centres**2 - m * m, 0.0)
