"""The Gaussian force head: sequential Bayesian regression of the expert's force.

The head predicts the force (N) as a Gaussian. Its inputs ``z`` (for KBT the
standardised T_1 features and the normalised state; for ``rls`` the normalised
state alone) feed an L-layer Bayesian network whose weights are Gaussian
(``KalmanHead`` with one linear output). Symbols, for one sample:

    z~ = [z; 1]        input with the bias entry
    mu, q              predictive mean and epistemic variance of the force
                       (moment propagation (19)-(23); for L = 1, mu = m^T z~, q = z~^T P z~)
    R                  observation-noise variance (N^2): known, or learned
    S = q + R          innovation variance;  e = y - mu  the innovation

Update (L = 1 is exact Bayesian linear regression; L >= 2 is the paper's
forward moment propagation and backward RTS smoothing with a linear output):
    Kalman output step with noise R, then (40)-(42) for the weights of every layer.

Robust weight (docs/robust-update.md): with x = e^2 / S, the update sees the
innovation variance S_w = S + e^2 / c^2 instead of S (WoLF's inverse
multiquadric weight w = S / S_w = 1 / (1 + x / c^2)). One label then moves the
predicted force at any state s' by at most (c / 2) sqrt(q(s')), its epistemic
standard deviation there times c / 2, however far the label is.

Change detector (docs/change-detection.md): Page's CUSUM of the clipped
log-likelihood ratio of "innovation variance lambda S" against "S",
    g = max(0, g + min(k x, k kappa) - nu),  k = (1 - 1/lambda) / 2,
    kappa = ``change_clip``,  nu = ln(lambda) / 2;
past h the weight covariance re-opens to the prior's (v I, or ``prior_cov``) and the noise
statistics to their prior (the mean weights are kept).

Learned noise (an inverse-gamma recursion for R, docs/head-v2.md), discounted
by ``keep = 1 - 1 / noise_memory`` per sample, each innovation's share of noise
``e^2 R / S = x R`` with x clipped at c^2 (bounded influence, docs/robust-update.md):
    a = keep a + 1/2,  b = keep b + min(x, c^2) R / 2,  R = max(R_floor, b / a),
starting from a0 = n0 / 2, b0 = a0 R0 (n0 = ``noise_prior_count``); held while the
detector's g is above ``force_numba.NOISE_HOLD`` h (it weighs a change: a changed
plant must not be taken for noisier labels).

The L = 1 Numba kernel (``force_numba.force_update``) and the NumPy
reference here give the same posterior (tested).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from controller import force_numba as fn
from controller.checks import as_float_array, check_positive
from controller.kalman_head import HeadConfig, KalmanHead

__all__ = ["ForceHead", "detector_settings", "with_known_noise"]



def with_known_noise(config, sigma_data):
    """``config`` with R = ``sigma_data`` when its noise is 'known' and a value is given."""
    if sigma_data is None or config.noise != "known":
        return config
    return replace(config, obs_noise=check_positive("sigma_data", sigma_data, allow_zero=True))


def detector_settings(config):
    """The change detector's ``[k, k kappa, nu, h, h_hold]`` for a ``HeadConfig`` (h = 0: off):
    per sample ``g = max(0, g + min(k x, k kappa) - nu)``, a change when g > h; the noise
    statistics wait while g > h_hold = ``force_numba.NOISE_HOLD`` h."""
    lam = config.change_ratio
    k = 0.5 * (1.0 - 1.0 / lam)
    h = config.change_threshold
    return np.array([k, k * config.change_clip, 0.5 * np.log(lam), h, fn.NOISE_HOLD * h])


class ForceHead:
    """Gaussian weight posterior over a force regression, plus its noise estimate.

    Attributes
    ----------
    config : HeadConfig
    core : KalmanHead
        The weight posterior (layers of mean ``M`` and covariance ``S``).
    noise : ndarray, shape (4,)
        ``[R, a, b, g]``: the noise variance in use (N^2), its inverse-gamma
        statistics and the change detector's statistic g.
    n_updates, n_downweighted, n_changes : int
        Labels learned from; of them, labels learned with a robust weight below
        one half; changes detected (each re-opened the posterior).
    detector : ndarray, shape (5,)
        ``[k, k kappa, nu, h, h_hold]`` of the change detector (``detector_settings``).
    uses_numba : bool
        True when updates and predictions run in the Numba kernels (L = 1).
    d_in : int
        Inputs z (without the bias entry).
    prior_cov : ndarray, shape (d_in + 1, d_in + 1), or None
        The prior weight covariance P0 when it is not v I (L = 1; for example a
        family prior, docs/family-prior.md); a detected change re-opens P to it.
    """

    def __init__(self, prior_mean, config: HeadConfig | None = None, prior_cov=None):
        config = HeadConfig() if config is None else config
        if config.output != "gaussian":
            raise ValueError(f"config.output: the force head needs output='gaussian' but found {config.output!r}")
        w0 = as_float_array("prior_mean", prior_mean, (None,))
        if w0.size < 2:
            raise ValueError(f"prior_mean: expected n_in + 1 >= 2 weights but found {w0.size}")
        self.config = config
        self.core = KalmanHead.from_pretrained(w0[:, None], replace(config, backend="numpy"))
        self.d_in = w0.size - 1
        a0 = 0.5 * config.noise_prior_count
        r0 = max(config.obs_noise, config.noise_floor)        # the initial guess, floored like every later R
        self.noise = np.array([r0, a0, a0 * r0, 0.0])
        self.n_downweighted = 0
        self.n_changes = 0
        self.detector = detector_settings(config)
        #: the prior's [v, a0, b0]: weight variance and the noise statistics a change re-opens to
        self.reopen_to = np.array([config.layer_prior_var(0), a0, a0 * r0])
        self.prior_cov = None if prior_cov is None else self._checked_prior_cov(prior_cov)
        if self.prior_cov is not None:
            self.core.layers[0].S[0][...] = self.prior_cov
        self._prior_cov = [layer.S.copy() for layer in self.core.layers]
        self._prior_means = [layer.M.copy() for layer in self.core.layers]
        #: what a detected change re-opens each layer's weight covariance to: the prior's,
        #: times ``change_reset_scale`` (1 unless the whole head restarts)
        self._reopen_cov = [config.change_reset_scale * S for S in self._prior_cov]
        #: True when a detected change starts the head afresh from its prior (``restart``)
        self.restarts = config.change_reset == "prior"
        #: the noise statistics' discount per sample (1: never forget)
        self.keep = 1.0 - 1.0 / config.noise_memory if config.noise_memory > 0 else 1.0
        #: True when updates and predictions run in the Numba kernel (L = 1)
        self.uses_numba = config.backend == "numba" and config.n_layers == 1 and config.covariance == "block"
        dt = self.core.dtype
        self._zt = np.zeros(self.d_in + 1, dt)
        self._Pz = np.zeros(self.d_in + 1, dt)

    def _checked_prior_cov(self, prior_cov):
        n1 = self.d_in + 1
        if self.config.n_layers != 1 or self.config.covariance != "block":
            raise ValueError("prior_cov: a full prior covariance needs the one-layer head (n_layers=1, covariance='block')")
        P0 = as_float_array("prior_cov", prior_cov, (n1, n1)).copy()
        if not np.allclose(P0, P0.T, rtol=1e-10, atol=1e-12):
            raise ValueError("prior_cov: expected a symmetric matrix")
        try:
            np.linalg.cholesky(P0)
        except np.linalg.LinAlgError:
            raise ValueError("prior_cov: expected a positive definite matrix") from None
        return P0

    # ------------------------------------------------------------ views
    @property
    def n_updates(self):
        """Number of labels learned so far."""
        return self.core.n_updates

    @property
    def noise_var(self):
        """R: the observation-noise variance in use (N^2)."""
        return float(self.noise[0])

    @property
    def learns_noise(self):
        """True when the observation noise R is learned online (``noise='learned'``)."""
        return self.config.noise == "learned"

    def kernel_arrays(self):
        """(m, P, noise) of an L = 1 head: the arrays the Numba kernels update in place
        (the ``force_numba.HeadState`` group)."""
        layer = self.core.layers[0]
        return layer.M[:, 0], layer.S[0], self.noise

    def work_arrays(self):
        """(z~, P z~): the kernels' work arrays of this head, (d_in + 1,) each (the
        ``force_numba.HeadWork`` group); the fused controller kernels write z~ in place."""
        return self._zt, self._Pz

    def kernel_settings(self):
        """(learn, floor, c^2, jitter, keep, detector, prior, P0) as the kernels take them
        (the ``force_numba.HeadSettings`` group; P0 the covariance a change re-opens to)."""
        c = self.config
        return (self.learns_noise, c.noise_floor, c.robust ** 2, c.jitter, self.keep, self.detector, self.reopen_to,
                self._reopen_cov[0][0])

    # ------------------------------------------------------------ forward
    def predict(self, Z):
        """Predictive mean (N,) and epistemic variance q (N,) of the force for inputs Z (N, d_in)."""
        mom = self.core.forward(np.asarray(Z, dtype=self.core.dtype))
        return mom.mu_p[:, 0], np.maximum(mom.Sigma_p[:, 0, 0], 0.0)

    def reopened_variance(self, Z):
        """Epistemic variance q (N,) of the force for inputs Z (N, d_in) under the covariance
        a detected change re-opens to (the prior's, times ``change_reset_scale``; L = 1)."""
        Zt = np.hstack([np.asarray(Z, dtype=float), np.ones((len(Z), 1))])
        return np.einsum("na,ab,nb->n", Zt, self._reopen_cov[0][0], Zt)

    def mean(self, Z):
        """The network at the mean weights (equals ``predict``'s mean for L = 1)."""
        return self.core.mean_network(Z)[:, 0]

    # ------------------------------------------------------------ backward
    def update(self, z, y):
        """Learn from one sample; returns True (every finite label is learned from, a
        far one with a small weight).

        ``z`` (d_in,) inputs, ``y`` the force (N); a non-finite value is a
        ValueError and leaves the head unchanged.
        """
        z = as_float_array("z", z, (self.d_in,))
        y = float(as_float_array("y", y, ()))
        if self.uses_numba:
            zt, Pz = self.work_arrays()
            zt[:-1] = z
            zt[-1] = 1.0
            status = fn.force_update(self.kernel_arrays(), self.kernel_settings(), (zt, Pz), y)
        else:
            status = self.update_reference(z, y)
        return self.count(status)

    def count(self, status):
        """Book-keeping after a kernel call: True if learned (a non-finite input is a ValueError)."""
        if status != fn.LEARNED:         # the common case costs one comparison
            if status == fn.NONFINITE:
                raise ValueError("state or label: expected finite values but found NaN or inf")
            self.n_downweighted += int(status == fn.DOWNWEIGHTED)
            self.n_changes += int(status == fn.CHANGED)
        self.core.n_updates += 1
        return True

    def _reopen(self):
        """A detected change: every layer's weight covariance back to the prior's (times
        ``change_reset_scale``), the noise statistics to theirs (``force_numba._reopen``); the
        means stay."""
        for layer, S0 in zip(self.core.layers, self._reopen_cov):
            layer.S[...] = S0
        if self.learns_noise:
            _, a0, b0 = self.reopen_to
            self.noise[:3] = [b0 / a0, a0, b0]

    def restart(self):
        """A detected change under ``change_reset='prior'``: the whole head back to its prior
        (every layer's mean, the covariance times ``change_reset_scale``, the noise statistics,
        the detector's g = 0), in place."""
        for layer, M0 in zip(self.core.layers, self._prior_means):
            layer.M[...] = M0
        self._reopen()
        self.noise[3] = 0.0

    def update_reference(self, z, y, noise_scale=1.0):
        """The NumPy reference of ``force_numba.force_update`` (any L); returns its status code.
        ``noise_scale``: this label counts as that many times noisier (R_eff = noise_scale R
        in its update; the noise statistics learn from R as always)."""
        cfg = self.config
        if not (np.isfinite(y) and np.all(np.isfinite(z))):
            return fn.NONFINITE
        mu, q = self.predict(z[None, :])
        e = y - mu[0]
        S = q[0] + noise_scale * self.noise[0] + cfg.jitter
        status = fn.LEARNED
        k, cap, nu, h, _ = self.detector
        if h > 0:
            # CUSUM of the clipped log-likelihood ratio of "variance lambda S" against "S"
            g = max(0.0, self.noise[3] + min(k * e * e / S, cap) - nu)
            if g > h:
                self._reopen()
                _, q = self.predict(z[None, :])
                S = q[0] + noise_scale * self.noise[0] + cfg.jitter
                g, status = 0.0, fn.CHANGED
            self.noise[3] = g
        R = self.noise[0]
        c2 = cfg.robust ** 2
        # robust weight w = 1 / (1 + x / c^2): the update sees S_w = S + e^2 / c^2,
        # i.e. the noise R + e^2 / c^2
        extra = e * e / c2 if c2 > 0 else 0.0
        if c2 > 0 and e * e / S > c2 and status == fn.LEARNED:
            status = fn.DOWNWEIGHTED
        self.core.update_reference(z.astype(self.core.dtype), np.array([y], self.core.dtype),
                                   np.zeros((1, 1), self.core.dtype), obs_noise=noise_scale * R + extra)
        if self.learns_noise and (h <= 0 or self.noise[3] <= self.detector[4]):
            x = e * e / S
            self.noise[1] = self.keep * self.noise[1] + 0.5
            self.noise[2] = self.keep * self.noise[2] + 0.5 * (min(x, c2) if c2 > 0 else x) * R
            self.noise[0] = max(cfg.noise_floor, self.noise[2] / self.noise[1])
        return status

    # ------------------------------------------------------------ files
    def save(self, path, extra=None):
        """Write the posterior, noise statistics and counters to a versioned ``.npz`` state file (``extra``: more arrays)."""
        arrays = dict(extra or {})
        arrays.update({"__noise__": self.noise, "__downweighted__": np.array(self.n_downweighted),
                       "__changes__": np.array(self.n_changes)})
        self.core.save(path, extra=arrays)

    def load_from(self, path):
        """Replace this head's posterior with a saved one (same config, else ValueError)."""
        core = KalmanHead.load(path, expect_config=replace(self.config, backend="numpy"))
        noise = core.extra.get("__noise__")
        if noise is None or noise.shape != (4,) or not np.all(np.isfinite(noise)):
            raise ValueError(f"{path}: no valid noise state in the file")
        self.core = core
        self.noise = noise.astype(float).copy()
        self.n_downweighted = int(core.extra.get("__downweighted__", 0))
        self.n_changes = int(core.extra.get("__changes__", 0))
        return core.extra

    def copy(self):
        """An independent copy (posterior and noise statistics copied)."""
        other = ForceHead.__new__(ForceHead)
        other.__dict__.update(self.__dict__)
        other.core = self.core.copy()
        other.noise = self.noise.copy()
        other._zt, other._Pz = self._zt.copy(), self._Pz.copy()
        return other
