"""The Kalman Bayesian head: its settings (``HeadConfig``) and its state (``KalmanHead``).

T_2's linear layer ``W_O`` is replaced by an L-layer ReLU network whose weights
are Gaussian; one labelled sample updates the weight posterior in closed form
(Algorithm 2 of the paper, corrected: docs/relu-moments.md, docs/output-update.md).

Where the pieces are:

* the equations (prior (34)-(36), forward moments, backward update) as plain
  functions: ``controller/kalman_update.py``, on ``controller/moments.py``;
* the Numba kernel of the default softmax configuration (L = 1, per-neuron
  blocks, Kalman output update): ``controller/kalman_numba.py``;
* the versioned ``.npz`` file format: ``controller/npz_format.py``;
* this module: the settings, validated on construction, and the stateful
  head that holds the posterior, picks the kernel or the reference, checks
  the public inputs and saves / loads its state.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from controller import kalman_numba as kn
from controller import kalman_update as ku
from controller import npz_format
from controller.checks import as_float_array, check_choice, check_field_types, check_int, check_positive
from controller.kalman_update import Layer, Moments

__all__ = ["HeadConfig", "KalmanHead", "Layer", "Moments", "STATE_FORMAT", "STATE_VERSION"]

STATE_FORMAT = "kbt-kalman-head"
STATE_VERSION = 1


#: prior weight variance and measurement noise when the config leaves them unset (docs/head-v2.md,
#: docs/head-settings.md): Gaussian force head v, R0 (N^2); softmax / linear heads v, R
DEFAULT_PRIOR_VAR = {"gaussian": 10.0, "softmax": 0.1, "linear": 0.1}
DEFAULT_OBS_NOISE = {"gaussian": 10.0, "softmax": 1e-3, "linear": 1e-3}


@dataclass(frozen=True)
class HeadConfig:
    """Settings of the Kalman Bayesian head (defaults and their evidence: docs/).

    The default is the Gaussian force head: Bayesian regression of the force
    (N) on ``[h'; s_norm; 1]`` with the observation noise learned online and
    a robust weight and a change detector. ``output="softmax"`` is the paper's head over force bins.
    """

    #: 'gaussian' (force in N, one output), 'softmax' (the paper's bins) or
    #: 'linear' (Bayesian regression on the logits)
    output: str = "gaussian"
    #: gaussian head inputs: 'features+state' (standardised T_1 features and the
    #: normalised state as a skip path) or 'features' (T_1 features only)
    inputs: str = "features+state"
    #: number of Bayesian layers L >= 1 (L = 1 is W_O itself)
    n_layers: int = 1
    #: hidden width n >= 2 d (positive and negative copies of the inputs); None: 2 d
    hidden: int | None = None
    #: output update: 'kalman' (measurement noise R) or 'paper' (target as posterior)
    update: str = "kalman"
    #: ReLU cross-covariance: 'stein' (exact) or 'diagonal' (the paper's (47))
    cross: str = "stein"
    #: weight covariance: 'block' (per-neuron) or 'dense' (per layer)
    covariance: str = "block"
    #: prior weight variance per layer (the last one applies to any further layer); None: by output
    prior_var: tuple | None = None
    #: measurement noise R (softmax/linear: R = obs_noise I; gaussian: the known
    #: noise, or the initial guess R0 of the learned one, N^2); None: by output
    obs_noise: float | None = None
    #: gaussian head: observation noise 'learned' online or 'known' (= obs_noise)
    noise: str = "learned"
    #: gaussian head: lower bound of the learned noise variance (N^2)
    noise_floor: float = 1e-4
    #: gaussian head: weight of the initial guess R0 in pseudo-samples
    noise_prior_count: float = 2.0
    #: gaussian head: c of the robust (inverse multiquadric) weight w = 1 / (1 + x / c^2)
    #: of a label whose standardised innovation squared is x = e^2 / (q + R); a label
    #: moves the predicted force at any state by at most c / 2 epistemic standard
    #: deviations there (docs/robust-update.md); 0: every label at full weight
    robust: float = 8.0
    #: gaussian head: threshold h of the change detector (a CUSUM of the clipped
    #: log-likelihood ratio of the innovations, docs/change-detection.md); past it the
    #: weight covariance and the noise statistics re-open to the prior's; 0: never
    change_threshold: float = 400.0
    #: gaussian head: the innovation-variance ratio lambda > 1 the change detector tests for
    change_ratio: float = 1000.0
    #: gaussian head: the change detector counts x = e^2 / (q + R) up to this clip
    change_clip: float = 256.0
    #: gaussian head: what a detected change resets: 'covariance' (the weight covariance
    #: and the noise statistics; the mean stays) or 'prior' (the whole head, mean too, then
    #: the detector's run, the labels since its statistic was last 0, is learned again;
    #: docs/change-reset.md)
    change_reset: str = "covariance"
    #: gaussian head, under change_reset='prior': the weight covariance a detected change
    #: restarts the head with, as a multiple of the prior's (above 1: the labels after a
    #: change count for more than the family's spread allows; docs/change-reset.md)
    change_reset_scale: float = 1.0
    #: gaussian head: memory of the learned noise in samples (its statistics are
    #: discounted by 1 - 1 / noise_memory per sample); 0: never forget
    noise_memory: float = 1000.0
    #: jitter added to matrices before Cholesky solves
    jitter: float = 1e-9
    #: variance of the input features z^0 = h (Algorithm 2 line 13); 0 = exact features
    input_var: float = 0.0
    #: order of the ReLU covariance series (2 = the paper's (23)); the diagonal is exact
    relu_order: int = 2
    #: 'float64' or 'float32'
    dtype: str = "float64"
    #: input weights of the n - 2d free hidden units: 'zero' (the paper's (34)-(35))
    #: or 'random' (seeded N(0, 1/fan_in); their output weights stay zero, so the
    #: prior mean network still reproduces W_O exactly)
    free_units: str = "zero"
    #: seed of the random free units
    seed: int = 0
    #: 'numba' (kernels, where the configuration has one) or 'numpy' (the reference)
    backend: str = "numba"

    def __post_init__(self):
        """TypeError for a field of the wrong type, ValueError for a value out of range."""
        check_field_types(self)
        check_choice("output", self.output, ("gaussian", "softmax", "linear"))
        check_choice("inputs", self.inputs, ("features+state", "features"))
        check_int("n_layers", self.n_layers, low=1, high=8)
        if self.hidden is not None:
            check_int("hidden", self.hidden, low=2)
        check_choice("update", self.update, ("kalman", "paper"))
        check_choice("cross", self.cross, ("stein", "diagonal"))
        check_choice("covariance", self.covariance, ("block", "dense"))
        pv = DEFAULT_PRIOR_VAR[self.output] if self.prior_var is None else self.prior_var
        pv = pv if isinstance(pv, (tuple, list)) else (pv,)
        if not pv:
            raise ValueError("prior_var: expected at least one variance")
        object.__setattr__(self, "prior_var", tuple(check_positive("prior_var", v) for v in pv))
        r = DEFAULT_OBS_NOISE[self.output] if self.obs_noise is None else self.obs_noise
        object.__setattr__(self, "obs_noise", check_positive("obs_noise", r, allow_zero=True))
        check_choice("noise", self.noise, ("learned", "known"))
        check_positive("noise_floor", self.noise_floor)
        check_positive("noise_prior_count", self.noise_prior_count)
        check_positive("robust", self.robust, allow_zero=True)
        check_positive("change_threshold", self.change_threshold, allow_zero=True)
        check_positive("change_ratio", self.change_ratio)
        if self.change_ratio <= 1:
            raise ValueError(f"change_ratio: expected a variance ratio above 1 but found {self.change_ratio}")
        check_positive("change_clip", self.change_clip)
        check_choice("change_reset", self.change_reset, ("covariance", "prior"))
        check_positive("change_reset_scale", self.change_reset_scale)
        if self.change_reset_scale != 1.0 and self.change_reset != "prior":
            raise ValueError(f"change_reset_scale: expected 1 unless change_reset='prior' but found "
                             f"{self.change_reset_scale:g} with change_reset={self.change_reset!r}")
        check_positive("noise_memory", self.noise_memory, allow_zero=True)
        if 0 < self.noise_memory < 1:
            raise ValueError(f"noise_memory: expected 0 (never forget) or at least 1 sample but found {self.noise_memory}")
        check_positive("jitter", self.jitter, allow_zero=True)
        check_positive("input_var", self.input_var, allow_zero=True)
        check_int("relu_order", self.relu_order, low=1, high=60)
        check_choice("dtype", self.dtype, ("float64", "float32"))
        check_choice("free_units", self.free_units, ("zero", "random"))
        check_int("seed", self.seed, low=0)
        check_choice("backend", self.backend, ("numba", "numpy"))

    def layer_prior_var(self, i):
        """Prior weight variance of layer ``i`` (the last given value for any further layer)."""
        return self.prior_var[min(i, len(self.prior_var) - 1)]

    def hidden_width(self, d):
        """Hidden width for inputs of size d: ``hidden``, or 2 d when unset."""
        return 2 * d if self.hidden is None else self.hidden

    def to_dict(self):
        """The settings as a plain dict (stored in state files)."""
        return asdict(self)


#: header keys of a head state file besides the layers (the rest of ``__name__`` keys are extras)
_STATE_KEYS = ("__format__", "__version__", "__config__", "__d_in__", "__n_updates__")


class KalmanHead:
    """Gaussian weight posterior of the Bayesian head, updated one sample at a time.

    Build it from the pre-trained head with ``KalmanHead.from_pretrained(W_O, config)``.

    Attributes
    ----------
    config : HeadConfig
    layers : list of Layer
        The posterior: per layer the mean weights ``M`` (n_in + 1, n_out) and
        their covariance ``S`` (per-neuron blocks or one dense block). Updates
        change them in place (the reference may replace an ``S`` array).
    d_in, n_out : int
        Input features and outputs.
    dtype : numpy.dtype
    n_updates : int
        Samples learned from.
    extra : dict
        The extra ``__name__`` arrays of the state file this head was loaded from.
    uses_numba : bool
        True when updates run in the Numba kernel (``kalman_numba``).
    """

    def __init__(self, config: HeadConfig, layers, d_in):
        self.config = config
        self.layers = layers
        self.d_in = d_in
        self.n_out = layers[-1].M.shape[1]
        self.dtype = np.dtype(config.dtype)
        self.n_updates = 0
        self.extra = {}
        self._ws = None
        if config.backend == "numba" and kn.eligible(config):
            self._ws = kn.new_work(layers[0].M.shape[0], self.n_out, self.dtype)
            self._zero_cov = np.zeros((self.n_out, self.n_out), self.dtype)
            self._noise = (self.dtype.type(config.obs_noise), self.dtype.type(config.jitter))
            self._work = tuple(self._ws)              # a plain tuple: typed in C by the dispatcher

    @property
    def uses_numba(self):
        """True when updates run in the Numba kernel."""
        return self._ws is not None

    def work_arrays(self):
        """The Numba kernel's preallocated work arrays (empty for the NumPy reference)."""
        if self._ws is None:
            return []
        return list(self._ws) + [self._zero_cov]

    # ------------------------------------------------------------ prior
    @classmethod
    def from_pretrained(cls, W_O, config: HeadConfig | None = None):
        """Prior (34)-(36) (``kalman_update.prior_layers``): the mean network
        reproduces the pre-trained head ``W_O^T [h; 1]`` for any L."""
        config = HeadConfig() if config is None else config
        W_O = as_float_array("W_O", W_O, (None, None))
        return cls(config, ku.prior_layers(W_O, config), W_O.shape[0] - 1)

    # ------------------------------------------------------------ forward
    def mean_network(self, H):
        """The network evaluated at the mean weights (no uncertainty): H (N, d) -> logits (N, n_out)."""
        return ku.mean_network(self.layers, H, self.dtype)

    def forward(self, H):
        """Moment propagation (filtering) for a batch of features H (N, d) -> ``Moments``."""
        return ku.forward(self.layers, H, self.config)

    def predict(self, H):
        """Predictive output mean (N, n_out) and covariance (N, n_out, n_out) for features H."""
        mom = self.forward(_features(H, self.d_in))
        return mom.mu_p, mom.Sigma_p

    def predict_mean(self, H):
        """Predictive output mean (N, n_out) alone: ``predict(H)[0]``, the same floats, without
        the covariances when the head has one layer (``kalman_update.forward_mean``)."""
        return ku.forward_mean(self.layers, _features(H, self.d_in), self.config)

    def probs_one(self, h):
        """Predictive mean for one feature vector h (d,) of the head's dtype, by
        the Numba kernel (``uses_numba`` only; the returned array is reused)."""
        w = self._ws
        kn.softmax_probs(self.layers[0].M, h, w.zt, w.p)
        return w.p

    # ------------------------------------------------------------ backward
    def update(self, h, y, data_cov=None):
        """One closed-form posterior update from a sample (or rows of a small batch, in order).

        Parameters
        ----------
        h : array_like, shape (d,) or (B, d)
            Features H_dec of the sample(s).
        y : array_like, shape (n_out,) or (B, n_out)
            Target: a probability vector (softmax output) or a real vector (linear output).
        data_cov : array_like, shape (n_out, n_out) or (B, n_out, n_out), optional
            Covariance of the target noise (the label noise Sigma_data on the output
            scale, docs/output-update.md); added to R in the kalman update, the posterior covariance in
            the paper's update. Default zero.

        Raises
        ------
        ValueError
            An input is rejected; the head is unchanged.
        """
        H, Y, C = self._check_sample(h, y, data_cov)
        for b in range(H.shape[0]):
            self.update_unchecked(H[b], Y[b], C[b] if data_cov is not None else None)

    def update_unchecked(self, h, y, data_cov=None):
        """``update`` for one sample from a trusted caller: no validation (the hot path).

        ``h`` (d,), ``y`` (n_out,) and ``data_cov`` (n_out, n_out) or None must
        already be finite arrays of the head's dtype.
        """
        if self._ws is not None:
            self._update_fast(h, y, self._zero_cov if data_cov is None else data_cov, data_cov is not None)
        else:
            self.update_reference(h, y, np.zeros((self.n_out, self.n_out), self.dtype) if data_cov is None else data_cov)
        self.n_updates += 1

    def update_reference(self, h, y, data_cov, obs_noise=None):
        """The NumPy reference of one update (``kalman_update.update``), any configuration;
        ``obs_noise`` overrides the configured R. Does not count the sample."""
        ku.update(self.layers, h, y, data_cov, self.config, obs_noise)

    def _update_fast(self, h, y, C, has_C):
        """The Numba kernel for the default configuration (no checks)."""
        layer = self.layers[0]
        ok = kn.update_one_layer((layer.M, layer.S), (h, y, C, has_C), self._noise, self._work)
        if not ok:  # innovation covariance lost definiteness: the reference grows the jitter
            self.update_reference(h, y, C)

    def _check_sample(self, h, y, data_cov):
        H = _features(h, self.d_in)
        Y = as_float_array("y", y, [(self.n_out,), (None, self.n_out)])
        Y = Y[None, :] if Y.ndim == 1 else Y
        if Y.shape[0] != H.shape[0]:
            raise ValueError(f"y: expected {H.shape[0]} rows (one per feature row) but found {Y.shape[0]}")
        if self.config.output == "softmax":
            if np.any(Y < -1e-12) or np.any(np.abs(Y.sum(axis=1) - 1.0) > 1e-6):
                raise ValueError("y: expected probability vectors (entries >= 0, rows summing to 1)")
        C = _check_data_cov(data_cov, H.shape[0], self.n_out)
        return H.astype(self.dtype), Y.astype(self.dtype), C.astype(self.dtype)

    # ------------------------------------------------------------ persistence
    def state_arrays(self):
        """Every array of the posterior, keyed like the saved file."""
        out = {}
        for i, layer in enumerate(self.layers):
            out[f"layer{i}.M"] = layer.M
            out[f"layer{i}.S"] = layer.S
        return out

    def save(self, path, extra=None):
        """Atomic, versioned ``.npz`` of the posterior (``npz_format``) so a device can resume.
        ``extra`` arrays (keys ``__name__``) are stored alongside and come back in ``.extra``."""
        arrays = dict(extra or {})
        arrays.update({"__config__": np.array(json.dumps(self.config.to_dict())),
                       "__d_in__": np.array(self.d_in), "__n_updates__": np.array(self.n_updates)})
        arrays.update(self.state_arrays())
        npz_format.write(path, STATE_FORMAT, STATE_VERSION, arrays)

    @classmethod
    def load(cls, path, expect_config: HeadConfig | None = None):
        """Read a saved posterior; a corrupt file or one whose config differs
        from ``expect_config`` raises ValueError."""
        data = npz_format.read(path, STATE_FORMAT, STATE_VERSION, "a kbt Kalman-head state file")
        config, d_in = _saved_config(path, data)
        if expect_config is not None and config != expect_config:
            raise ValueError(f"{path}: saved head config {config} does not match the expected {expect_config}")
        head = cls(config, _saved_layers(path, data, config, d_in), d_in)
        head.n_updates = int(data.get("__n_updates__", 0))
        head.extra = {k: v for k, v in data.items() if k.startswith("__") and k not in _STATE_KEYS}
        return head

    def copy(self):
        """An independent copy of the posterior."""
        head = KalmanHead(self.config, [layer.copy() for layer in self.layers], self.d_in)
        head.n_updates = self.n_updates
        return head


# ---------------------------------------------------------------- helpers
def _features(h, d):
    H = as_float_array("h", h, [(d,), (None, d)])
    return H[None, :] if H.ndim == 1 else H


def _check_data_cov(data_cov, n, k):
    """data_cov as (n, k, k) symmetric PSD matrices (zeros when None)."""
    if data_cov is None:
        return np.zeros((n, k, k))
    C = as_float_array("data_cov", data_cov, [(k, k), (None, k, k)])
    C = np.broadcast_to(C, (n, k, k)) if C.ndim == 2 else C
    if C.shape[0] != n:
        raise ValueError(f"data_cov: expected {n} matrices but found {C.shape[0]}")
    if not np.allclose(C, np.swapaxes(C, 1, 2), atol=1e-10) or np.linalg.eigvalsh(C).min() < -1e-10:
        raise ValueError("data_cov: expected symmetric positive semi-definite matrices")
    return C


def _saved_config(path, data):
    """(HeadConfig, d_in) of a state file's header."""
    try:
        cfg_dict = json.loads(str(data["__config__"]))
        cfg_dict["prior_var"] = tuple(cfg_dict["prior_var"])
        return HeadConfig(**cfg_dict), int(data["__d_in__"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: unreadable head config ({e})") from None


def _saved_layers(path, data, config, d_in):
    """The layers of a state file, checked against the shapes ``config`` gives."""
    layers = []
    while f"layer{len(layers)}.M" in data:
        i = len(layers)
        M, S = data[f"layer{i}.M"], data.get(f"layer{i}.S")
        if S is None or not np.all(np.isfinite(M)) or not np.all(np.isfinite(S)):
            raise ValueError(f"{path}: layer {i} is missing or not finite")
        layers.append(Layer(M.astype(config.dtype), S.astype(config.dtype)))
    if len(layers) != config.n_layers:
        raise ValueError(f"{path}: expected {config.n_layers} layers but found {len(layers)}")
    refs = ku.prior_layers(np.zeros((d_in + 1, layers[-1].M.shape[1])), config)
    for i, (layer, ref) in enumerate(zip(layers, refs)):
        if layer.M.shape != ref.M.shape or layer.S.shape != ref.S.shape:
            raise ValueError(f"{path}: layer {i} has shapes {layer.M.shape}, {layer.S.shape}; "
                             f"expected {ref.M.shape}, {ref.S.shape}")
    return layers
