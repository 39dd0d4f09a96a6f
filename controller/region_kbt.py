"""KBT with a read-out of its own near upright and away from it, and the labels away from
upright counted as noisier (docs/region-readout.md).

A swing-up expert pumps energy while the pole is far from upright and catches it
(LQR) near upright. One linear read-out serves both badly: on-policy, the many labels
near upright move the weights the pumping reads; and the least-squares fit of the
pumping is a worse pump than a good prior's. ``RegionKBTController`` therefore reads

    z_r(s) = [z(s) g; g; z(s) (1 - g)]    (the head appends its 1)

where z is KBT's input map and g = 1 when abs(theta) <= ``catch_angle`` (theta wrapped
to (-pi, pi]), so near upright the force is z a_n + b_n and away from it z a_f + b_f
(the coefficient of g is b_n - b_f, the head's own bias b_f). A label away from
upright counts as ``far_weight`` times noisier (R_eff = far_weight R) unless its
standardised innovation e^2 / (q + R) exceeds ``far_surprise`` (> 0): a pumping
label the read-out already predicts is mostly the read-out's misfit; a surprising
one is news about the plant. Two refinements (both off by default):

- ``far_run`` = k > 1: a surprising far label counts fully only when it ends a run of k
  surprising far labels (near labels neither extend nor end the run). The expert's pump
  switches sign across a surface; the one label that straddles it is surprising once, while
  news about the plant keeps being surprising.
- ``rest_weight`` > 1: a label while the pole hangs near rest (abs(theta - pi) <
  ``rest_angle`` wrapped, abs(theta_dot) < ``rest_speed``) counts ``rest_weight`` times
  noisier, surprising or not. There a kick of either sign starts a swing-up, so the expert's
  sign carries little about the plant, and a prior that kicks the other way would be taught
  to mix two pumps. With ``rest_against`` only such a label whose sign is opposite to the
  read-out's prediction counts so (the kick the read-out did not choose).

The update is the head's NumPy reference (``ForceHead.update_reference``): this
controller has no Numba kernel and no C export (``firmware_profile.export`` refuses it).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from controller.checks import check_positive
from controller.features import wrap_angle
from controller.kalman_head import HeadConfig
from controller.kbt import KBTController

__all__ = ["RegionKBTController", "region_prior"]


def region_prior(m0, P0, P0_far=None):
    """The prior of ``RegionKBTController``'s read-out from a prior N(m0, P0) of KBT's
    (weights of [z; 1]): each region's (a, b) ~ N(m0, P0) (away from upright N(m0, P0_far)
    when given), the two independent, mapped to the coefficients of [z g; g; z (1 - g); 1]
    = (a_n, b_n - b_f, a_f, b_f)."""
    m0 = np.asarray(m0, dtype=float)
    n = m0.size
    d = n - 1
    # phi = [a_n, b_n, a_f, b_f]  ->  w = T phi = [a_n, b_n - b_f, a_f, b_f]
    T = np.eye(2 * n)
    T[d, 2 * n - 1] = -1.0
    P = np.zeros((2 * n, 2 * n))
    P[:n, :n] = P0
    P[n:, n:] = P0 if P0_far is None else P0_far
    return T @ np.r_[m0, m0], T @ P @ T.T


class RegionKBTController(KBTController):
    """KBT on [z g; g; z (1 - g)] (module doc).

    Parameters
    ----------
    policy, head_config, sigma_data
        As ``KBTController``; the head always runs its NumPy reference.
    catch_angle : float
        abs(theta) (rad) up to which a state is near upright, > 0.
    far_weight : float
        A label away from upright counts as this many times noisier, >= 1.
    far_surprise : float
        Such a label counts as any label when e^2 / (q + R) exceeds this, >= 0 (0: never).
    far_run : int
        ... and only when it ends a run of this many surprising far labels, >= 1.
    rest_weight, rest_angle, rest_speed : float
        A label with abs(theta - pi) < ``rest_angle`` (rad, wrapped) and abs(theta_dot) <
        ``rest_speed`` (rad/s) counts ``rest_weight`` times noisier, >= 1 (1: as any far label).
    rest_against : bool
        Only when its sign is opposite to the prediction's (the kick the read-out did not choose).
    """

    name = "kbt"

    def __init__(self, policy, head_config: HeadConfig | None = None, sigma_data=None, *, catch_angle,
                 far_weight=1.0, far_surprise=0.0, far_run=1, rest_weight=1.0, rest_angle=0.5, rest_speed=2.0,
                 rest_against=False):
        self.catch_angle = check_positive("catch_angle", catch_angle)
        self.far_weight = check_positive("far_weight", far_weight)
        if self.far_weight < 1.0:
            raise ValueError(f"far_weight: expected >= 1 but found {far_weight!r}")
        self.far_surprise = check_positive("far_surprise", far_surprise, allow_zero=True)
        if isinstance(far_run, bool) or not isinstance(far_run, (int, np.integer)) or far_run < 1:
            raise ValueError(f"far_run: expected an integer >= 1 but found {far_run!r}")
        self.far_run = int(far_run)
        self.rest_weight = check_positive("rest_weight", rest_weight)
        if self.rest_weight < 1.0:
            raise ValueError(f"rest_weight: expected >= 1 but found {rest_weight!r}")
        self.rest_angle = check_positive("rest_angle", rest_angle)
        self.rest_speed = check_positive("rest_speed", rest_speed)
        self.rest_against = bool(rest_against)
        self._surprises = 0                 # surprising far labels in a row so far
        cfg = HeadConfig() if head_config is None else head_config
        super().__init__(policy, replace(cfg, backend="numpy"), sigma_data)

    def near(self, states):
        """True per state (N,) when abs(theta) <= ``catch_angle`` (theta wrapped to (-pi, pi])."""
        th = np.atleast_2d(states)[:, 2]
        return np.abs(wrap_angle(th)) <= self.catch_angle

    def at_rest(self, states):
        """True per state (N,) when the pole hangs near rest: abs(theta - pi) < ``rest_angle``
        (wrapped to (-pi, pi]) and abs(theta_dot) < ``rest_speed``."""
        s = np.atleast_2d(states)
        return (np.abs(wrap_angle(s[:, 2] - np.pi)) < self.rest_angle) & (np.abs(s[:, 3]) < self.rest_speed)

    def inputs(self, states):
        """Head inputs [z g; g; z (1 - g)] (N, 2 d_in + 1) for states (N, 4)."""
        Z = super().inputs(states)
        g = self.near(states).astype(float)[:, None]
        return np.hstack([Z * g, g, Z * (1.0 - g)])

    def use_region_prior(self, m0, P0, P0_far=None):
        """Start from ``region_prior(m0, P0, P0_far)`` (m0, P0: a prior of KBT's [z; 1] weights)."""
        self.use_prior(*region_prior(m0, P0, P0_far))

    def _noise_scale(self, s, z, y):
        if self.near(s)[0]:
            return 1.0
        surprising, against = False, True
        if self.far_surprise > 0.0 or self.rest_against:
            mu, q = self.head.predict(z[None, :])        # the prediction before this label
            against = not self.rest_against or np.sign(y) != np.sign(mu[0])
        if self.far_surprise > 0.0:
            # the standardised innovation e^2 / (q + R)
            surprising = (y - mu[0]) ** 2 / (q[0] + self.head.noise_var) > self.far_surprise
            self._surprises = self._surprises + 1 if surprising else 0
        if self.rest_weight > 1.0 and against and self.at_rest(s)[0]:
            return self.rest_weight
        if surprising and self._surprises >= self.far_run:
            return 1.0
        return self.far_weight
