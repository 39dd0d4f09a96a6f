"""The Kalman Bayesian head: closed-form sequential Bayesian fine-tuning of T_2.

T_2's linear layer ``W_O`` is replaced by an L-layer ReLU network whose weights
are Gaussian. A sample (features ``h``, target ``y``) updates the weight
posterior in closed form (Algorithm 2 of the paper, with the corrections in
docs/relu-moments.md and docs/output-update.md):

forward (filtering), layer i = 1..L, ``z^0 = h``:
    (19), (21)  mu_u, Sigma_u of ``u^i = W^i^T [z^{i-1}; 1]``
    (22), (23)  mu_z, Sigma_z of ``z^i = ReLU(u^i)`` (hidden layers), and
                Sigma_{u,z} (Stein or the paper's diagonal (47))
    (27), (32), (33) softmax output: mu_p, Sigma_p, Sigma_{u,p}

backward (smoothing), layer i = L..1:
    output      ``update="kalman"``: G = Sigma_{u,p} (Sigma_p + R)^-1,
                mu_u^+ = mu_u + G (y - mu_p), Sigma_u^+ = Sigma_u - G Sigma_{p,u};
                ``update="paper"``: (37)-(39) with mu_p^+ = y, Sigma_p^+ = Sigma_data
    weights     (40)-(42)  K_w = Sigma_{w,u} Sigma_u^-1,
                mu_w^+ = mu_w + K_w (mu_u^+ - mu_u),
                Sigma_w^+ = Sigma_w + K_w (Sigma_u^+ - Sigma_u) K_w^T
    input       (replaces (43)-(45)) K_z = Sigma_{z,u} Sigma_u^-1, same innovation
    ReLU        (37)-(39)  K_u = Sigma_{u,z} Sigma_z^-1 from z^{i-1}'s update to u^{i-1}'s

With per-neuron blocks, ``Sigma_{w_k, u} = S_k mu_z~ e_k^T``, so the weight
update of neuron k is a rank-one term in ``g_k = S_k mu_z~``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from controller import kalman_numba as kn
from controller import moments as mo
from controller.model import _read_npz, atomic_savez
from controller.checks import as_float_array, check_choice, check_int, check_positive

__all__ = ["HeadConfig", "KalmanHead", "STATE_FORMAT", "STATE_VERSION"]

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
    an innovation gate. ``output="softmax"`` is the paper's head over force bins.
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
    #: gaussian head: reject a label whose normalised innovation e / sqrt(q + R)
    #: is this improbable (two-sided tail probability under the predictive:
    #: Student's t while the noise is learned, Gaussian when known); 0 turns the gate off
    gate: float = 1e-4
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
        check_positive("gate", self.gate, allow_zero=True)
        if self.gate >= 1:
            raise ValueError(f"gate: expected a tail probability in [0, 1) but found {self.gate}")
        check_positive("jitter", self.jitter, allow_zero=True)
        check_positive("input_var", self.input_var, allow_zero=True)
        check_int("relu_order", self.relu_order, low=1, high=60)
        check_choice("dtype", self.dtype, ("float64", "float32"))
        check_choice("free_units", self.free_units, ("zero", "random"))
        check_int("seed", self.seed, low=0)
        check_choice("backend", self.backend, ("numba", "numpy"))

    def layer_prior_var(self, i):
        return self.prior_var[min(i, len(self.prior_var) - 1)]

    def hidden_width(self, d):
        """Hidden width for inputs of size d: ``hidden``, or 2 d when unset."""
        return 2 * d if self.hidden is None else self.hidden

    def to_dict(self):
        return asdict(self)


@dataclass
class _Layer:
    M: np.ndarray               # mean weights (n_in + 1, n_out)
    S: np.ndarray               # (n_out, n1, n1) per-neuron, or (n_out, n1, n_out, n1) dense


@dataclass
class Moments:
    """Forward moments of one pass (batched over N states)."""

    mu_zt: list = field(default_factory=list)      # per layer input z~: (N, n1)
    Sigma_zt: list = field(default_factory=list)   # (N, n1, n1)
    mu_u: list = field(default_factory=list)       # per layer (N, n_out)
    Sigma_u: list = field(default_factory=list)    # (N, n_out, n_out)
    Sigma_uz: list = field(default_factory=list)   # hidden layers: Cov(u, ReLU(u))
    mu_p: np.ndarray = None                        # output mean (N, n_out_L)
    Sigma_p: np.ndarray = None
    Sigma_up: np.ndarray = None


class KalmanHead:
    """Gaussian weight posterior of the Bayesian head, updated one sample at a time.

    Build it from the pre-trained head with ``KalmanHead.from_pretrained(W_O, config)``.
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
            self._ws = kn.Workspace(layers[0].M.shape[0], self.n_out, self.dtype)
            self._zero_cov = np.zeros((self.n_out, self.n_out), self.dtype)

    @property
    def uses_numba(self):
        """True when updates run in the Numba kernel."""
        return self._ws is not None

    # ------------------------------------------------------------ prior
    @classmethod
    def from_pretrained(cls, W_O, config: HeadConfig | None = None):
        """Prior (34)-(36): the mean network reproduces ``softmax(W_O^T [h; 1])``.

        L = 1: ``M^1 = W_O``. L >= 2, hidden width n >= 2d: layer 1 puts a
        positive copy of h in units 0..d-1 and a negative copy in units
        n-d..n-1 (34); each middle layer adds the copies back and splits them
        again (35); the last layer adds them back and applies W_O (36):
        ``ReLU(h) - ReLU(-h) = h``. Units d..n-d-1 start with zero weights.
        Weight covariances are ``prior_var[i] I`` (independent per neuron).
        """
        config = HeadConfig() if config is None else config
        W_O = as_float_array("W_O", W_O, (None, None))
        d, n_out = W_O.shape[0] - 1, W_O.shape[1]
        L, n = config.n_layers, config.hidden_width(d)
        if L >= 2 and n < 2 * d:
            raise ValueError(f"hidden: expected a width >= 2 d = {2 * d} but found {n}")
        if config.output == "gaussian" and n_out != 1:
            raise ValueError(f"W_O: the gaussian head has one output (the force) but found {n_out} columns")
        # split: z = [h; 0; -h] pattern, R maps z back to h = z[:d] - z[n-d:]
        split = np.zeros((d, n))
        split[:, :d] = np.eye(d)
        split[:, n - d:] = -np.eye(d)
        means = []
        if L == 1:
            means.append(W_O.copy())
        else:
            rng = np.random.default_rng(config.seed)
            free = slice(d, n - d)

            def free_weights(M):
                # random input weights for the free units (output weights stay zero)
                if config.free_units == "random" and n > 2 * d:
                    M[:, free] = rng.normal(0.0, 1.0 / np.sqrt(M.shape[0]), (M.shape[0], n - 2 * d))
                return M

            means.append(free_weights(np.vstack([split, np.zeros((1, n))])))                       # (34)
            for _ in range(1, L - 1):
                means.append(free_weights(np.vstack([split.T @ split, np.zeros((1, n))])))         # (35)
            means.append(np.vstack([split.T @ W_O[:d], W_O[d:]]))                                  # (36)
        dt = np.dtype(config.dtype)
        layers = []
        for i, M in enumerate(means):
            n1, k = M.shape
            v = config.layer_prior_var(i)
            if config.covariance == "block":
                S = np.broadcast_to(v * np.eye(n1), (k, n1, n1)).copy()
            else:
                S = (v * np.eye(k * n1)).reshape(k, n1, k, n1)
            layers.append(_Layer(M.astype(dt), S.astype(dt)))
        return cls(config, layers, d)

    # ------------------------------------------------------------ forward
    def mean_network(self, H):
        """The network evaluated at the mean weights (no uncertainty): H (N, d) -> logits (N, n_out)."""
        z = np.asarray(H, dtype=self.dtype)
        for i, layer in enumerate(self.layers):
            u = z @ layer.M[:-1] + layer.M[-1]
            z = np.maximum(u, 0.0) if i < len(self.layers) - 1 else u
        return z

    def forward(self, H):
        """Moment propagation (filtering) for a batch of features H (N, d)."""
        cfg = self.config
        dense = cfg.covariance == "dense"
        H = np.asarray(H, dtype=self.dtype)
        N = H.shape[0]
        mu_z = H
        Sigma_z = np.broadcast_to(cfg.input_var * np.eye(self.d_in, dtype=self.dtype), (N, self.d_in, self.d_in))
        mom = Moments()
        for i, layer in enumerate(self.layers):
            mu_zt, Sigma_zt = mo.augment(mu_z, Sigma_z)
            mu_u, Sigma_u = mo.linear_moments(layer.M, layer.S, mu_zt, Sigma_zt, dense)
            mom.mu_zt.append(mu_zt)
            mom.Sigma_zt.append(Sigma_zt)
            mom.mu_u.append(mu_u)
            mom.Sigma_u.append(Sigma_u)
            if i < len(self.layers) - 1:
                mu_z, Sigma_z, Sigma_uz = mo.relu_moments(mu_u, Sigma_u, cfg.relu_order, cfg.cross)
                mom.Sigma_uz.append(Sigma_uz)
        if cfg.output == "softmax":
            mom.mu_p, mom.Sigma_p, mom.Sigma_up = mo.softmax_moments(mu_u, Sigma_u)  # (27), (32), (33)
        else:
            mom.mu_p, mom.Sigma_p, mom.Sigma_up = mu_u, Sigma_u, Sigma_u
        return mom

    def predict(self, H):
        """Predictive output mean (N, n_out) and covariance (N, n_out, n_out) for features H."""
        mom = self.forward(_features(H, self.d_in))
        return mom.mu_p, mom.Sigma_p

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

        The head is unchanged when an input is rejected (ValueError).
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
            self._update_one(h, y, np.zeros((self.n_out, self.n_out), self.dtype) if data_cov is None else data_cov)
        self.n_updates += 1

    def _update_fast(self, h, y, C, has_C):
        """The Numba kernel for the default configuration (no checks)."""
        w, layer, cfg = self._ws, self.layers[0], self.config
        ok = kn.update_l1(layer.M, layer.S, h, y, C, has_C, self.dtype.type(cfg.obs_noise),
                          self.dtype.type(cfg.jitter), w.zt, w.g, w.q, w.p, w.A, w.G, w.tmp, w.v)
        if not ok:  # innovation covariance lost definiteness: the reference grows the jitter
            self._update_one(h, y, C)

    def _check_sample(self, h, y, data_cov):
        H = _features(h, self.d_in)
        Y = as_float_array("y", y, [(self.n_out,), (None, self.n_out)])
        Y = Y[None, :] if Y.ndim == 1 else Y
        if Y.shape[0] != H.shape[0]:
            raise ValueError(f"y: expected {H.shape[0]} rows (one per feature row) but found {Y.shape[0]}")
        if self.config.output == "softmax":
            if np.any(Y < -1e-12) or np.any(np.abs(Y.sum(axis=1) - 1.0) > 1e-6):
                raise ValueError("y: expected probability vectors (entries >= 0, rows summing to 1)")
        k = self.n_out
        if data_cov is None:
            C = np.zeros((H.shape[0], k, k))
        else:
            C = as_float_array("data_cov", data_cov, [(k, k), (None, k, k)])
            C = np.broadcast_to(C, (H.shape[0], k, k)) if C.ndim == 2 else C
            if C.shape[0] != H.shape[0]:
                raise ValueError(f"data_cov: expected {H.shape[0]} matrices but found {C.shape[0]}")
            if not np.allclose(C, np.swapaxes(C, 1, 2), atol=1e-10) or \
                    np.linalg.eigvalsh(C).min() < -1e-10:
                raise ValueError("data_cov: expected symmetric positive semi-definite matrices")
        return H.astype(self.dtype), Y.astype(self.dtype), C.astype(self.dtype)

    def _update_one(self, h, y, data_cov, obs_noise=None):
        """Algorithm 2, lines 12-31, for one sample (NumPy reference); ``obs_noise``
        overrides the configured R (the gaussian head's learned noise)."""
        cfg = self.config
        r = cfg.obs_noise if obs_noise is None else obs_noise
        dense = cfg.covariance == "dense"
        mom = self.forward(h[None, :])
        p, Sp, Sup = mom.mu_p[0], mom.Sigma_p[0], mom.Sigma_up[0]
        mu_u, Su = mom.mu_u[-1][0], mom.Sigma_u[-1][0]
        k = len(p)
        eye = np.eye(k, dtype=self.dtype)
        if cfg.update == "kalman":
            # G = Sigma_{u,p} (Sigma_p + R)^-1, R = obs_noise I + Sigma_data
            G = _solve_right(Sup, Sp + (r + cfg.jitter) * eye + data_cov)
            mu_u_post = mu_u + G @ (y - p)
            Su_post = Su - G @ Sup.T
        else:
            # (37)-(39) with z^L = p: K_u = Sigma_{u,p} Sigma_p^-1, mu_p^+ = y, Sigma_p^+ = Sigma_data
            K = _solve_right(Sup, Sp + cfg.jitter * eye)
            mu_u_post = mu_u + K @ (y - p)
            Su_post = Su + K @ (data_cov - Sp) @ K.T
        Su_post = _sym(Su_post)
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            mu_u, Su = mom.mu_u[i][0], mom.Sigma_u[i][0]
            mu_zt, Szt = mom.mu_zt[i][0], mom.Sigma_zt[i][0]
            # a = Sigma_u^-1 (mu_u^+ - mu_u),  B = Sigma_u^-1 (Sigma_u^+ - Sigma_u) Sigma_u^-1
            a, B = _innovation(Su, mu_u_post - mu_u, Su_post - Su, cfg.jitter)
            # input z^{i-1}: K_z = Sigma_{z,u} Sigma_u^-1 with Sigma_{z,u} = Sigma_z M (old mean)
            n_in = layer.M.shape[0] - 1
            Szu = Szt[:n_in] @ layer.M
            mu_z_post = mu_zt[:n_in] + Szu @ a
            Sz_post = Szt[:n_in, :n_in] + Szu @ B @ Szu.T
            # (40)-(42) weights
            g = mo.weight_u_cross(layer.S, mu_zt, dense)
            if dense:
                layer.M += np.einsum("kaj,j->ak", g, a)
                layer.S += np.einsum("kaj,jl,mbl->kamb", g, B, g)
                P = layer.S.shape[0] * layer.S.shape[1]
                flat = _sym(layer.S.reshape(P, P))
                np.fill_diagonal(flat, np.maximum(np.diagonal(flat), 0.0))
                layer.S = flat.reshape(layer.S.shape)
            else:
                # neuron k: mu_k += g_k a_k,  S_k += B_kk g_k g_k^T  (rank one)
                layer.M += g.T * a[None, :]
                c = _psd_rank_one_factor(np.diagonal(B), g, mu_zt)
                layer.S += c[:, None, None] * g[:, :, None] * g[:, None, :]
                layer.S = _sym(layer.S)
            if i == 0:
                break
            # (37)-(39) back through the ReLU of layer i-1: K_u = Sigma_{u,z} Sigma_z^-1
            Suz = mom.Sigma_uz[i - 1][0]
            Sz = Szt[:n_in, :n_in]
            K = _solve_right(Suz, Sz + cfg.jitter * np.eye(n_in, dtype=self.dtype))
            mu_u_post = mom.mu_u[i - 1][0] + K @ (mu_z_post - mu_zt[:n_in])
            Su_post = _sym(mom.Sigma_u[i - 1][0] + K @ (Sz_post - Sz) @ K.T)

    # ------------------------------------------------------------ persistence
    def state_arrays(self):
        """Every array of the posterior, keyed like the saved file."""
        out = {}
        for i, layer in enumerate(self.layers):
            out[f"layer{i}.M"] = layer.M
            out[f"layer{i}.S"] = layer.S
        return out

    def save(self, path, extra=None):
        """Atomic, versioned ``.npz`` of the posterior so a device can resume.
        ``extra`` arrays (keys ``__name__``) are stored alongside and come back in ``.extra``."""
        arrays = dict(extra or {})
        arrays.update({"__format__": np.array(STATE_FORMAT), "__version__": np.array(STATE_VERSION),
                  "__config__": np.array(json.dumps(self.config.to_dict())),
                  "__d_in__": np.array(self.d_in), "__n_updates__": np.array(self.n_updates)})
        arrays.update(self.state_arrays())
        atomic_savez(path, arrays)

    @classmethod
    def load(cls, path, expect_config: HeadConfig | None = None):
        """Read a saved posterior; a corrupt file or one whose config differs
        from ``expect_config`` raises ValueError."""
        data = _read_npz(path)
        if str(data.get("__format__", "")) != STATE_FORMAT:
            raise ValueError(f"{path}: not a kbt Kalman-head state file")
        if int(data.get("__version__", -1)) != STATE_VERSION:
            raise ValueError(f"{path}: state version {data.get('__version__')} is not supported "
                             f"(expected {STATE_VERSION})")
        try:
            cfg_dict = json.loads(str(data["__config__"]))
            cfg_dict["prior_var"] = tuple(cfg_dict["prior_var"])
            config = HeadConfig(**cfg_dict)
            d_in = int(data["__d_in__"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: unreadable head config ({e})") from None
        if expect_config is not None and config != expect_config:
            raise ValueError(f"{path}: saved head config {config} does not match the expected {expect_config}")
        layers = []
        i = 0
        while f"layer{i}.M" in data:
            M, S = data[f"layer{i}.M"], data.get(f"layer{i}.S")
            if S is None or not np.all(np.isfinite(M)) or not np.all(np.isfinite(S)):
                raise ValueError(f"{path}: layer {i} is missing or not finite")
            layers.append(_Layer(M.astype(config.dtype), S.astype(config.dtype)))
            i += 1
        if len(layers) != config.n_layers:
            raise ValueError(f"{path}: expected {config.n_layers} layers but found {len(layers)}")
        for i, layer in enumerate(layers):
            ref = cls.from_pretrained(np.zeros((d_in + 1, layers[-1].M.shape[1])), config).layers[i]
            if layer.M.shape != ref.M.shape or layer.S.shape != ref.S.shape:
                raise ValueError(f"{path}: layer {i} has shapes {layer.M.shape}, {layer.S.shape}; "
                                 f"expected {ref.M.shape}, {ref.S.shape}")
        head = cls(config, layers, d_in)
        head.n_updates = int(data.get("__n_updates__", 0))
        head.extra = {k: v for k, v in data.items()
                      if k.startswith("__") and k not in ("__format__", "__version__", "__config__",
                                                          "__d_in__", "__n_updates__")}
        return head

    def copy(self):
        head = KalmanHead(self.config, [_Layer(m.M.copy(), m.S.copy()) for m in self.layers], self.d_in)
        head.n_updates = self.n_updates
        return head


# ---------------------------------------------------------------- helpers
def _features(h, d):
    H = as_float_array("h", h, [(d,), (None, d)])
    return H[None, :] if H.ndim == 1 else H


def _sym(A):
    return 0.5 * (A + np.swapaxes(A, -1, -2))


def _cholesky(A, jitter):
    """Cholesky factor of a symmetric matrix, adding jitter (growing x10) until it succeeds."""
    A = _sym(A)
    scale = max(float(np.mean(np.abs(np.diagonal(A)))), 1e-300)
    extra = jitter
    for _ in range(12):
        try:
            return np.linalg.cholesky(A + extra * np.eye(A.shape[0], dtype=A.dtype))
        except np.linalg.LinAlgError:
            extra = max(extra * 10.0, 1e-12 * scale)
    raise np.linalg.LinAlgError("matrix is not positive definite even with jitter")


def _solve_right(B, A, jitter=0.0):
    """B A^-1 for a symmetric positive definite A, by Cholesky."""
    Lc = _cholesky(A, jitter)
    # B A^-1 = (A^-1 B^T)^T
    from scipy.linalg import cho_solve

    return cho_solve((Lc, True), B.T).T


def _innovation(Su, dmu, dS, jitter):
    """a = Sigma_u^-1 dmu and B = Sigma_u^-1 dS Sigma_u^-1 (one Cholesky)."""
    from scipy.linalg import cho_solve

    Lc = _cholesky(Su, jitter)
    a = cho_solve((Lc, True), dmu)
    X = cho_solve((Lc, True), dS)
    B = cho_solve((Lc, True), X.T)
    return a, _sym(B)


def _psd_rank_one_factor(c, g, mu_zt):
    """Clip the rank-one coefficients so that S_k + c_k g_k g_k^T stays PSD.

    With g_k = S_k mu~, S_k + c g g^T is PSD iff c >= -1 / (mu~^T S_k mu~)
    (and mu~^T S_k mu~ = g_k . mu~). A downdate is capped at 99.9 % of that.
    """
    q = g @ mu_zt                                                      # mu~^T S_k mu~ per neuron
    floor = -0.999 / np.maximum(q, 1e-300)
    return np.maximum(c, floor)
