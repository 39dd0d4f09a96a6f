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

Learned noise (a conjugate inverse-gamma recursion for R, docs/head-v2.md):
    a += 1/2,  b += 1/2 e^2 R / S,  R = max(R_floor, b / a),
    starting from a0 = n0 / 2, b0 = a0 R0 (n0 = ``noise_prior_count``).
Gate: a label whose ``e^2 / S`` exceeds the squared two-sided ``gate``-quantile
of the predictive (Student's t with nu = 2 a degrees of freedom while R is
learned, a Gaussian when R is known) is counted in ``n_rejected`` and not
learned from (nothing changes).

The L = 1 Numba kernel (``force_numba.force_update``) and the NumPy
reference here give the same posterior (tested).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from controller import force_numba as fn
from controller.checks import as_float_array, check_positive
from controller.kalman_head import HeadConfig, KalmanHead

__all__ = ["ForceHead", "gate_table", "with_known_noise"]

#: degrees of freedom tabulated for the gate; beyond them the Gaussian limit
GATE_DOF = 400


def with_known_noise(config, sigma_data):
    """``config`` with R = ``sigma_data`` when its noise is 'known' and a value is given."""
    if sigma_data is None or config.noise != "known":
        return config
    return replace(config, obs_noise=check_positive("sigma_data", sigma_data, allow_zero=True))


def gate_table(p, learned=True):
    """Thresholds on e^2 / S: entry nu is the squared two-sided p-quantile of
    Student's t with nu degrees of freedom (entry 0 unused), the last entry the
    Gaussian (chi-square, 1 dof) limit; one entry (the limit) for known noise,
    none when ``p == 0`` (no gate)."""
    from scipy import stats

    if p <= 0:
        return np.zeros(0)
    limit = stats.chi2.isf(p, 1)
    if not learned:
        return np.array([limit])
    nu = np.arange(1, GATE_DOF)
    return np.concatenate([[np.inf], stats.t.isf(p / 2, nu) ** 2, [limit]])


class ForceHead:
    """Gaussian weight posterior over a force regression, plus its noise estimate.

    Public attributes
    -----------------
    config : HeadConfig
    core : KalmanHead
        The weight posterior (layers of mean ``M`` and covariance ``S``).
    noise : ndarray, shape (3,)
        ``[R, a, b]``: the noise variance in use (N^2) and its inverse-gamma statistics.
    n_updates, n_rejected : int
        Labels learned from, and labels the gate refused.
    gate : ndarray
        The gate's threshold table (``gate_table``; empty: no gate).
    uses_numba : bool
        True when updates and predictions run in the Numba kernels (L = 1).
    d_in : int
        Inputs z (without the bias entry).
    """

    def __init__(self, prior_mean, config: HeadConfig | None = None):
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
        self.noise = np.array([r0, a0, a0 * r0])
        self.n_rejected = 0
        self.gate = gate_table(config.gate, config.noise == "learned")
        #: True when updates and predictions run in the Numba kernel (L = 1)
        self.uses_numba = config.backend == "numba" and config.n_layers == 1 and config.covariance == "block"
        dt = self.core.dtype
        self._zt = np.zeros(self.d_in + 1, dt)
        self._Pz = np.zeros(self.d_in + 1, dt)

    # ------------------------------------------------------------ views
    @property
    def n_updates(self):
        return self.core.n_updates

    @property
    def noise_var(self):
        """R: the observation-noise variance in use (N^2)."""
        return float(self.noise[0])

    @property
    def learns_noise(self):
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
        """(learn, floor, gate table, jitter) as the kernels take them (the
        ``force_numba.HeadSettings`` group)."""
        c = self.config
        return self.learns_noise, c.noise_floor, self.gate, c.jitter

    def gate_threshold(self):
        """The current threshold on e^2 / S (inf: no gate)."""
        if self.gate.size == 0:
            return np.inf
        return float(self.gate[min(int(2.0 * self.noise[1]), self.gate.size - 1)])

    # ------------------------------------------------------------ forward
    def predict(self, Z):
        """Predictive mean (N,) and epistemic variance q (N,) of the force for inputs Z (N, d_in)."""
        mom = self.core.forward(np.asarray(Z, dtype=self.core.dtype))
        return mom.mu_p[:, 0], np.maximum(mom.Sigma_p[:, 0, 0], 0.0)

    def mean(self, Z):
        """The network at the mean weights (equals ``predict``'s mean for L = 1)."""
        return self.core.mean_network(Z)[:, 0]

    # ------------------------------------------------------------ backward
    def update(self, z, y):
        """Learn from one sample; returns True if learned, False if the gate refused it.

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
        """Book-keeping after a kernel call: True if learned, False if gated."""
        if status == fn.LEARNED:
            self.core.n_updates += 1
            return True
        if status == fn.GATED:
            self.n_rejected += 1
            return False
        raise ValueError("state or label: expected finite values but found NaN or inf")

    def update_reference(self, z, y):
        """The NumPy reference of ``force_numba.force_update`` (any L); returns its status code."""
        cfg = self.config
        R = self.noise[0]
        mu, q = self.predict(z[None, :])
        e = y - mu[0]
        S = q[0] + R + cfg.jitter
        if e * e > self.gate_threshold() * S:
            return fn.GATED
        self.core.update_reference(z.astype(self.core.dtype), np.array([y], self.core.dtype),
                                   np.zeros((1, 1), self.core.dtype), obs_noise=R)
        if self.learns_noise:
            self.noise[1] += 0.5
            self.noise[2] += 0.5 * e * e * R / S
            self.noise[0] = max(cfg.noise_floor, self.noise[2] / self.noise[1])
        return fn.LEARNED

    # ------------------------------------------------------------ files
    def save(self, path, extra=None):
        arrays = dict(extra or {})
        arrays.update({"__noise__": self.noise, "__rejected__": np.array(self.n_rejected)})
        self.core.save(path, extra=arrays)

    def load_from(self, path):
        """Replace this head's posterior with a saved one (same config, else ValueError)."""
        core = KalmanHead.load(path, expect_config=replace(self.config, backend="numpy"))
        noise = core.extra.get("__noise__")
        if noise is None or noise.shape != (3,) or not np.all(np.isfinite(noise)):
            raise ValueError(f"{path}: no valid noise state in the file")
        self.core = core
        self.noise = noise.astype(float).copy()
        self.n_rejected = int(core.extra.get("__rejected__", 0))
        return core.extra

    def copy(self):
        other = ForceHead.__new__(ForceHead)
        other.__dict__.update(self.__dict__)
        other.core = self.core.copy()
        other.noise = self.noise.copy()
        other._zt, other._Pz = self._zt.copy(), self._Pz.copy()
        return other
