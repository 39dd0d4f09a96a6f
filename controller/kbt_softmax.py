"""The paper's KBT controller: frozen T_1 features + the softmax Kalman Bayesian head.

``act(states)`` decodes the head's predictive mean ``mu_p`` into a force;
``observe(state, expert_force)`` is one closed-form update (memory: that one
sample); ``predict(states)`` returns the mean force and its total variance,
also split into aleatoric and epistemic parts by ``predict_split``:

    aleatoric  = sum_k p_k a_k^2 - (sum_k p_k a_k)^2     (spread of the categorical)
    epistemic  = a^T Sigma_p a                           (weight uncertainty)

where ``a`` are the bin centres (docs/output-update.md).
The product default is the Gaussian force head (``controller/kbt.py``); this
one reproduces the paper's figures.
"""

from __future__ import annotations

import numpy as np

from controller.kalman_head import HeadConfig, KalmanHead
from controller.transformer_numba import FastInference
from controller.model import TransformerPolicy
from controller.checks import as_float_array, check_choice, check_positive
from controller.features import feature_standardiser
from controller.identity import digest

__all__ = ["SoftmaxKBTController", "data_covariance"]


def data_covariance(tokenizer, force, sigma_data):
    """Sigma_data on the bin scale: ``diag(q) - q q^T`` with ``q`` the bin masses
    of ``N(force, sigma_data)`` (zero when ``sigma_data == 0``)."""
    if sigma_data <= 0:
        return None
    q = tokenizer.gaussian_masses(np.atleast_1d(force), sigma_data)[0]
    return np.diag(q) - np.outer(q, q)


class SoftmaxKBTController:
    """Pre-trained transformer features + the paper's softmax Kalman Bayesian head.

    Parameters
    ----------
    policy : TransformerPolicy
        Supplies T_1 (frozen) and the pre-trained head W_O (the prior's mean).
    head_config : HeadConfig, optional
    sigma_data : float
        Variance (N^2) of the label noise the data are believed to carry, >= 0.
    standardise : bool or "whiten"
        True (default): the head reads the features standardised per coordinate
        (``feature_standardiser``), its prior mean rewritten so that the logits are the
        pre-trained ones; "whiten": decorrelated as well; False: the raw features.
    """

    name = "kbt-softmax"

    def __init__(self, policy: TransformerPolicy, head_config: HeadConfig | None = None, sigma_data=0.0,
                 standardise=True):
        if not isinstance(policy, TransformerPolicy):
            raise ValueError(f"policy: expected a TransformerPolicy but found {type(policy).__name__}")
        self.policy = policy
        self.tokenizer = policy.tokenizer
        self.head_config = HeadConfig(output="softmax") if head_config is None else head_config
        if self.head_config.output != "softmax":
            raise ValueError("head_config.output: the controller needs output='softmax'")
        self.sigma_data = check_positive("sigma_data", sigma_data, allow_zero=True)
        self.standardise = check_choice("standardise", standardise, (True, False, "whiten"))
        W_O = policy.head_weights
        d = W_O.shape[0] - 1
        if standardise:
            self.h_mean, self.h_T = feature_standardiser(policy, whiten=standardise == "whiten")
            # logits = W_O^T [h; 1] = W'^T [T (h - mean); 1] with W'[:d] = T^-T W_O[:d]
            W_top = np.linalg.solve(self.h_T.T, W_O[:d])
            W_O = np.vstack([W_top, W_O[d:] + self.h_mean @ W_O[:d]])
        else:
            self.h_mean, self.h_T = np.zeros(d), np.eye(d)
        self.head = KalmanHead.from_pretrained(W_O, self.head_config)
        self._fast = FastInference(policy) if self.head_config.backend == "numba" else None
        self._h64 = np.zeros(d)                           # features are computed in float64
        self._h = np.zeros(d, dtype=self.head.dtype)      # ... and handed to the head in its dtype

    def _features_one(self, state):
        """Standardised features of one state (Numba path when available)."""
        h = self._fast.features_one(state) if self._fast is not None else self.policy.features(state)[0]
        np.dot(self.h_T, h - self.h_mean, out=self._h64)
        self._h[:] = self._h64
        return self._h

    def features(self, states):
        """Standardised T_1 features (N, d) fed to the head."""
        return (self.policy.features(states) - self.h_mean) @ self.h_T.T

    def warm_up(self):
        """Compile the Numba kernels (on a throwaway copy) so the first real
        update is not charged the JIT time."""
        if self._fast is None:
            return
        saved = self.head
        self.head = saved.copy()
        try:
            self.observe(np.zeros(4), 0.0)
            self.act(np.zeros(4))
        finally:
            self.head = saved

    @property
    def n_updates(self):
        """Number of labels learned so far."""
        return self.head.n_updates

    def act(self, states):
        """Forces for states (N, 4) -> (N,), or one state (4,) -> float."""
        if np.ndim(states) == 1 and self.head.uses_numba:
            s = as_float_array("states", states, (4,))
            return float(self.tokenizer.decode(self.head.probs_one(self._features_one(s))))
        single = np.ndim(states) == 1
        f = self.tokenizer.decode(self.head.predict_mean(self.features(states)))
        return f[0] if single else f

    def probs(self, states):
        """Predictive bin probabilities mu_p (N, n_bins) of the Bayesian head."""
        return self.head.predict(self.features(np.atleast_2d(states)))[0]

    def predict_split(self, states):
        """Mean force, aleatoric and epistemic variance per state, each (N,)."""
        return self.predict_split_features(self.features(states))

    def predict_split_features(self, H):
        """``predict_split`` from standardised features H (N, d), e.g. precomputed.

        mean = a^T mu_p, aleatoric = a^2^T mu_p - mean^2 (the categorical's own
        spread), epistemic = a^T Sigma_p a (the spread of mu_p under the weight posterior).
        """
        p, Sp = self.head.predict(H)
        a = self.tokenizer.centres
        mean = p @ a
        aleatoric = np.maximum(p @ a**2 - mean**2, 0.0)
        epistemic = np.maximum(np.einsum("k,nkj,j->n", a, Sp, a), 0.0)
        return mean, aleatoric, epistemic

    # the names the Gaussian-head controllers use for the same things
    inputs = features
    predict_split_inputs = predict_split_features

    def predict(self, states):
        """(mean force, total predictive variance) per state."""
        mean, ale, epi = self.predict_split(states)
        return mean, ale + epi

    def preprocess(self, states, forces):
        """Algorithm 1 for this single-step transformer: (states, forces) -> (H, Y).

        Each (state, force) pair is one i.i.d. training instance: ``H`` are the
        standardised T_1 features (N, d), ``Y`` the target distributions
        (N, n_bins) the head is updated towards.
        """
        S = as_float_array("states", states, (None, 4))
        F = as_float_array("forces", forces, (S.shape[0],))
        return self.features(S), self.tokenizer.encode(F)

    def fingerprint(self):
        """Identity of the pre-trained model the head belongs to (16 hex digits): a hash
        of its stored weights and config (``controller.identity.digest``), the same on
        every machine. W_O, the head's prior, is one of those weights; ``standardise``
        picks the feature coordinates the posterior lives in."""
        p = self.policy
        return digest({"method": self.name, "transformer": p.config.to_dict(), "standardise": self.standardise},
                      sorted(p.params.items()))

    def save_state(self, path, extra=None):
        """Atomically save the head's posterior (resume after a power loss).
        ``extra``: more named arrays to keep in the file (keys ``__name__``)."""
        arrays = dict(extra or {})
        arrays["__fingerprint__"] = np.array(self.fingerprint())
        self.head.save(path, extra=arrays)

    def load_state(self, path):
        """Resume from ``save_state``; returns the file's extra arrays. A corrupt
        file, another head configuration or another pre-trained model is a
        ValueError and leaves this controller unchanged."""
        head = KalmanHead.load(path, expect_config=self.head_config)
        saved = head.extra.get("__fingerprint__")
        if saved is None or str(saved) != self.fingerprint():
            raise ValueError(f"{path}: the saved head belongs to another pre-trained model "
                             f"(fingerprint {saved}, expected {self.fingerprint()})")
        self.head = head
        return head.extra

    def memory_arrays(self):
        """The arrays a device running this controller holds, by role (lists of ndarrays):
        ``params`` the transformer and the feature standardiser, ``state`` the
        head's means and covariances, ``buffers`` the update kernel's and
        single-state inference's work arrays."""
        head = self.head
        buffers = [self._h64, self._h] + head.work_arrays()
        if self._fast is not None:
            buffers += self._fast.buffers()
        return {"params": list(self.policy.params.values()) + [self.h_mean, self.h_T],
                "state": [a for layer in head.layers for a in (layer.M, layer.S)],
                "buffers": buffers}

    def observe(self, state, expert_force):
        """One closed-form update from (state, expert force)."""
        s = as_float_array("state", state, (4,))
        f = as_float_array("expert_force", expert_force, ())
        y = self.tokenizer.encode(f)[0].astype(self.head.dtype)
        C = data_covariance(self.tokenizer, f, self.sigma_data)
        self.head.update_unchecked(self._features_one(s), y, None if C is None else C.astype(self.head.dtype))
