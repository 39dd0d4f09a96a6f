"""The KBT controller: frozen pre-trained T_1 features + the Gaussian force head.

The head regresses the expert's force (N) on

    z = [h'; s_norm]      h' = T (h(s) - mean): standardised T_1 features (d = 16)
                          s_norm = s / (box / sqrt 3): the state as a skip path (4)

(``inputs="features"`` drops the skip path). Its prior mean is the
least-squares read-out of the pre-trained controller's expected force on
states of the pre-training box, so at 0 samples KBT acts as the pre-trained
transformer does (to about 0.01 N, tested); why this shape and these
defaults: docs/head-v2.md. ``observe`` and single-state ``act`` run as one
Numba call each (features, standardisation, head) when L = 1.
"""

from __future__ import annotations

import numpy as np

from controller import force_numba as fn
from controller import kbt_packed as kp
from controller.features import box_states, feature_standardiser, state_inverse_scale
from controller.force_controller import ForceController
from controller.force_head import ForceHead, with_known_noise
from controller.kalman_head import HeadConfig
from controller.model import TransformerPolicy
from controller.transformer_numba import FastInference

__all__ = ["KBTController", "prior_readout"]


def prior_readout(policy, Z, states):
    """Least-squares weights w0 (d_in + 1,) with ``[Z, 1] w0 ~ policy.act(states)``."""
    Zt = np.hstack([Z, np.ones((Z.shape[0], 1))])
    w0, *_ = np.linalg.lstsq(Zt, policy.act(states), rcond=None)
    return w0


class KBTController(ForceController):
    """Pre-trained transformer features + Gaussian force head (the product default).

    Parameters
    ----------
    policy : TransformerPolicy
        Supplies T_1 (frozen) and the pre-trained controller the prior reproduces.
    head_config : HeadConfig, optional
        ``output="gaussian"`` (default settings: docs/head-v2.md).
    sigma_data : float, optional
        Known label-noise variance (N^2), used as R when the config's noise is
        'known' (floored at ``noise_floor``); with learned noise it is ignored.
    prior_cov : ndarray, shape (d_in + 1, d_in + 1), optional
        The prior weight covariance P0 instead of v I (for example a family
        prior, docs/family-prior.md); the prior mean stays the pre-trained read-out
        (``use_prior`` sets both after construction).
    """

    name = "kbt"

    def __init__(self, policy: TransformerPolicy, head_config: HeadConfig | None = None, sigma_data=None,
                 prior_cov=None):
        if not isinstance(policy, TransformerPolicy):
            raise ValueError(f"policy: expected a TransformerPolicy but found {type(policy).__name__}")
        cfg = HeadConfig() if head_config is None else head_config
        if cfg.output != "gaussian":
            raise ValueError("head_config.output: KBTController needs output='gaussian' "
                             "(the paper's softmax head is SoftmaxKBTController)")
        cfg = with_known_noise(cfg, sigma_data)
        self.policy = policy
        self.head_config = cfg
        self.skip = cfg.inputs == "features+state"
        states = box_states(policy)
        self.h_mean, self.h_T = feature_standardiser(policy, states)
        self.s_inv = state_inverse_scale(policy)
        self.prior_mean = prior_readout(policy, self.inputs(states), states)
        self.head = ForceHead(self.prior_mean, cfg, prior_cov=prior_cov)
        self._fast = FastInference(policy)
        self._bind()

    def use_prior_cov(self, prior_cov):
        """Start from the prior covariance P0 = ``prior_cov`` instead of the head's current
        prior (a fresh head: before any update; ValueError otherwise). Same as passing
        ``prior_cov`` to the constructor, without building the input map again."""
        self.use_prior(prior_cov=prior_cov)

    def inputs(self, states):
        """Head inputs z (N, d_in) = [h'; s_norm] (or h' alone)."""
        Hs = (self.policy.features(states) - self.h_mean) @ self.h_T.T
        return np.hstack([Hs, states * self.s_inv]) if self.skip else Hs

    def _identity(self):
        # the transformer's stored weights and config, and which inputs the head reads
        p = self.policy
        return ({"transformer": p.config.to_dict(), "inputs": self.head_config.inputs},
                sorted(p.params.items()))

    def _input_arrays(self):
        # with the kernels: buffer A's frozen part (header, settings, T_1's packed weights, the
        # standardiser, the state scaling, the detector's settings, the re-open prior and P0)
        # and its work part (key, state, h, T_1's work arrays); else the arrays themselves
        f = self._fast
        if self.head.uses_numba:
            return [self._packed.frozen], list(self._packed.work)
        params = f.weight_arrays() + [self.h_mean, self.h_T, self.s_inv]
        return params, list(f.workspace) + [f.h]

    def _frozen_head_arrays(self):
        return [] if self.head.uses_numba else super()._frozen_head_arrays()

    def _kernel_work(self):
        return [self._packed.zt, self._packed.Pz] if self.head.uses_numba else super()._kernel_work()

    def _bind(self):
        super()._bind()
        f = self._fast
        # the input map z(s), a plain tuple in force_numba.KBTInputs order
        self._inputs = (f.weights, f.workspace, f.h, self.h_mean, self.h_T, self.s_inv, self.skip)
        head = self.head
        if not head.uses_numba:
            return
        # everything the fused kernels read in two buffers (kbt_packed); the head's posterior
        # and noise state become views of them, so the kernels update the head in place
        m, P, noise = head.kernel_arrays()
        pk = kp.pack(f.weights, self.h_mean, self.h_T, self.s_inv, self.skip, head.kernel_settings(), noise, m, P,
                     head.core.dtype)
        layer, n1 = head.core.layers[0], m.shape[0]
        layer.M, layer.S, head.noise = pk.m.reshape(n1, 1), pk.P.reshape(1, n1, n1), pk.views["noise"]
        self._packed, self._A, self._B = pk, pk.A, pk.B
        self._head_state = head.kernel_arrays()
        self._zt, self._m = pk.zt, pk.m

    @property
    def feature_passes(self):
        """T_1 forward passes of the fused kernels since the head was bound (a tick that acts on a
        state and then learns its label makes one; docs/tick.md)."""
        return int(self._packed.views["key"][5]) if self.head.uses_numba else None

    # the state as Python floats x: Numba types a float at once, a NumPy scalar through its
    # slow path (about 1 us for four)
    def _observe_kernel(self, s, x, y):
        return kp.kbt_observe_packed(self._A, self._B, x[0], x[1], x[2], x[3], y)

    def _act_kernel(self, s, x):
        return kp.kbt_act_packed(self._A, self._B, x[0], x[1], x[2], x[3])

    def _tick_kernel(self, s, x, y):
        return kp.kbt_tick_packed(self._A, self._B, x[0], x[1], x[2], x[3], y)
