"""The ``rls`` baseline: recursive least squares on the state, the simplest
adaptive controller a controls engineer would try.

Bayesian linear regression of the force on ``z = s_norm = s / (box / sqrt 3)``
(with a bias), i.e. an adaptive linear state feedback ``u = w^T [s_norm; 1]``,
whose prior mean is the SOURCE LQR gain (``u = -K s``, so
``w0 = [-K * box / sqrt 3; 0]``). It is the Gaussian force head with the
state as its only input: same update, learned noise, robust weight and change detector as KBT, so the
comparison isolates what the transformer features add.
"""

from __future__ import annotations

import numpy as np

from controller import force_numba as fn
from controller.checks import as_float_array
from controller.features import DEFAULT_BOX, state_inverse_scale
from controller.force_controller import ForceController
from controller.force_head import ForceHead, with_known_noise
from controller.kalman_head import HeadConfig

__all__ = ["RLSController"]


class RLSController(ForceController):
    """Adaptive linear state feedback by recursive Bayesian least squares.

    Parameters
    ----------
    prior_gain : array_like, shape (4,)
        The LQR gain K of the design plant (``u = -K s``): the prior mean.
    head_config : HeadConfig, optional
        Gaussian head settings (``inputs`` is ignored: the state is the input).
    sigma_data : float, optional
        Known label-noise variance (N^2), used when the config's noise is 'known'.
    box : array_like, shape (4,)
        Half-widths of the state box that sets the input scaling.
    """

    name = "rls"

    def __init__(self, prior_gain, head_config: HeadConfig | None = None, sigma_data=None, box=DEFAULT_BOX):
        K = as_float_array("prior_gain", prior_gain, (4,))
        cfg = with_known_noise(HeadConfig() if head_config is None else head_config, sigma_data)
        if cfg.output != "gaussian":
            raise ValueError("head_config.output: rls needs output='gaussian'")
        self.head_config = cfg
        self.box = as_float_array("box", box, (4,))
        self.s_inv = state_inverse_scale(self.box)
        # u = -K s = (-K / s_inv) . s_norm
        self.prior_mean = np.append(-K / self.s_inv, 0.0)
        self.head = ForceHead(self.prior_mean, cfg)
        self._bind()

    def inputs(self, states):
        """Head inputs z (N, 4) = s_norm."""
        return np.asarray(states, dtype=float) * self.s_inv

    def _identity(self):
        # the box that scales the state, as given (the prior gain is checked by tolerance)
        return {}, [("box", self.box)]

    def _input_arrays(self):
        return [self.s_inv], []

    def _observe_kernel(self, s, x, y):
        return fn.rls_observe(self.s_inv, self._head_state, self._head_settings, self._head_work, s, y)

    def _act_kernel(self, s, x):
        return fn.rls_act(self.s_inv, self._zt, self._m, s)
