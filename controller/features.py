"""The Bayesian heads' inputs: standardised T_1 features and the normalised state.

* ``box_states``: states uniform in the pre-training box (half-widths = the
  transformer's ``state_scale``), a fixed seed; the standardisation and the
  force head's prior read-out are fitted on them.
* ``feature_standardiser``: ``h' = T (h - mean)`` with the features' mean and
  ``T = diag(1 / std)`` (or PCA whitening), docs/feature-scaling.md.
* ``state_inverse_scale``: ``s_norm = s / (box / sqrt 3)``, unit variance on the box;
* ``wrap_angle``: the pole angle to (-pi, pi] (the region read-out's near-upright test).
"""

from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_BOX", "box_states", "feature_standardiser", "state_inverse_scale", "wrap_angle"]

#: half-widths of the pre-training and fine-tuning state box: ``|x|, |x_dot| <= 0.5``, ``|theta|, |theta_dot| <= 0.1``
DEFAULT_BOX = (0.5, 0.5, 0.1, 0.1)

#: states used to fit the standardisation and the prior read-out
N_BOX_STATES = 4096


def box_states(policy, n=N_BOX_STATES, seed=0):
    """``n`` states uniform in ``[-state_scale, state_scale]`` (seeded), shape (n, 4)."""
    box = np.asarray(policy.config.state_scale, dtype=float)
    return np.random.default_rng(seed).uniform(-box, box, size=(n, box.size))


def feature_standardiser(policy, states=None, whiten=False):
    """Mean (d,) and transform T (d, d) of T_1's features over ``states``
    (default: ``box_states(policy)``)."""
    H = policy.features(box_states(policy) if states is None else states)
    mean = H.mean(axis=0)
    if whiten:
        # h' = T (h - mean) with T = Lambda^-1/2 U^T (PCA whitening)
        lam, U = np.linalg.eigh(np.cov(H.T))
        return mean, (U / np.sqrt(np.maximum(lam, 1e-12 * lam.max()))).T
    return mean, np.diag(1.0 / np.maximum(H.std(axis=0), 1e-12))


def state_inverse_scale(policy_or_box):
    """``1 / (box / sqrt 3)`` per state variable: ``s_norm = s * state_inverse_scale``."""
    box = getattr(getattr(policy_or_box, "config", None), "state_scale", policy_or_box)
    return np.sqrt(3.0) / np.asarray(box, dtype=float)


def wrap_angle(theta):
    """Angles to (-pi, pi]."""
    return np.pi - np.mod(np.pi - np.asarray(theta, dtype=float), 2.0 * np.pi)
