"""BLoB: Bayesian low-rank adaptation by backpropagation (Wang et al., NeurIPS 2024),
used sequentially like the retraining baseline, in NumPy.

Every adapted weight ``W0`` (in x out, ``y = x W0 + b``) becomes
``W = W0 + A B`` with ``A`` (in x r) Bayesian and ``B`` (r x out) deterministic
(asymmetric Bayesianisation, BLoB section 3.1):

    q(A) = N(M, Omega^2),  Omega = G^2                      (section 3.3)
    M ~ U(-sqrt(6 / in), sqrt(6 / in)),  G ~ U(eps / sqrt 2, eps),  B = 0
    KL[q(A) || N(0, sigma_p^2)] = (|M|^2 + |Omega|^2) / (2 sigma_p^2) - sum log Omega   (11)

LoRA flipout (12): one weight noise ``E`` per minibatch, and per-example
random signs ``s`` (in) and ``t`` (r), so examples see decorrelated weights:

    x A_i = x M + [((x o s_i) (E o Omega)) o t_i]

The pre-trained weights stay frozen; only (M, G, B) of each adapter train on
the per-datum objective (likelihood by Adam, KL by its own SGD, BLoB Table 4)

    F = mean cross-entropy(batch; one weight sample, K = 1) + lambda_t KL / n_seen

with ``n_seen`` the samples seen so far (``kl_data``) and the KL re-weighting ``lambda_t``
of BLoB's appendix B.1 (see ``kl_weight``). Inference averages the softmax of
``n_samples`` weight samples (0: the mean weights ``A = M``).
Decisions and the sweep behind the defaults: docs/blob.md.
"""

from __future__ import annotations

import math
import numpy as np

from controller import transformer as tf
from controller.fifo import FifoMemory
from controller.model import TransformerPolicy
from controller.transformer import Adam
from controller.checks import as_float_array, check_int, check_positive

__all__ = ["LoRAFlipout", "BLoBController", "adapted_names", "kl_divergence", "kl_weight"]


def adapted_names(cfg):
    """The adapted weights: every attention projection and the head."""
    names = [f"layer{i}.attn.{w}" for i in range(cfg.n_layers) for w in ("wq", "wk", "wv", "wo")]
    return names + ["head.w"]


class LoRAFlipout:
    """The low-rank term ``x A B`` of one adapted weight, with flipout noise.

    ``forward(x)`` returns the term added to ``x W0 + b`` and keeps what
    ``backward(dy)`` needs; ``backward`` returns d(loss)/dx of the term and
    accumulates ``dM``, ``dG``, ``dB``. Without noise (``set_noise(None)``)
    the adapter uses the mean ``A = M``.
    """

    def __init__(self, n_in, n_out, rank, eps, rng):
        bound = math.sqrt(6.0 / n_in)
        self.M = rng.uniform(-bound, bound, (n_in, rank))
        self.G = rng.uniform(eps / math.sqrt(2.0), eps, (n_in, rank))
        self.B = np.zeros((rank, n_out))
        self.noise = None
        self.zero_grad()

    def zero_grad(self):
        """Reset the accumulated gradients of M, G and B to zero."""
        self.dM = np.zeros_like(self.M)
        self.dG = np.zeros_like(self.G)
        self.dB = np.zeros_like(self.B)

    def set_noise(self, noise):
        """``(E, S, T)``: E (in, r) ~ N(0, 1), S (N, [1,] in) and T (N, [1,] r) signs; or None."""
        self.noise = noise

    def sample_noise(self, rng, n, token_axis):
        """Draw flipout noise ``(E, S, T)`` for a batch of n examples (a token axis adds a broadcast dimension)."""
        n_in, r = self.M.shape
        shape = (n, 1) if token_axis else (n,)
        E = rng.standard_normal((n_in, r))
        S = rng.choice((-1.0, 1.0), size=shape + (n_in,))
        T = rng.choice((-1.0, 1.0), size=shape + (r,))
        return E, S, T

    def forward(self, x):
        """The adapter's output ``x M B`` (with flipout noise when set), [..., in] -> [..., out]; caches for backward."""
        # [..., in] -> [..., out]
        U = x @ self.M                                          # [..., r]
        xs = delta = None
        if self.noise is not None:
            E, S, T = self.noise
            delta = E * self.G**2                               # E o Omega
            xs = x * S
            U = U + (xs @ delta) * T                            # (12)
        self._cache = (x, U, xs, delta)
        return U @ self.B

    def backward(self, dy):
        """Accumulate the gradients of M, G and B from the output gradient dy and return the input gradient."""
        x, U, xs, delta = self._cache
        n_in, r = self.M.shape
        self.dB += U.reshape(-1, r).T @ dy.reshape(-1, self.B.shape[1])
        dU = dy @ self.B.T                                      # [..., r]
        self.dM += x.reshape(-1, n_in).T @ dU.reshape(-1, r)
        dx = dU @ self.M.T
        if self.noise is not None:
            E, S, T = self.noise
            dUT = dU * T
            d_delta = xs.reshape(-1, n_in).T @ dUT.reshape(-1, r)
            self.dG += d_delta * E * 2.0 * self.G               # d(E o G^2)/dG
            dx = dx + (dUT @ delta.T) * S
        return dx


def kl_divergence(adapters, prior_std):
    """(11) summed over adapters: sum (M^2 + G^4) / (2 sigma_p^2) - 2 sum log|G|."""
    total = 0.0
    for a in adapters.values():
        total += (np.sum(a.M**2) + np.sum(a.G**4)) / (2 * prior_std**2) - 2 * np.sum(np.log(np.abs(a.G)))
    return float(total)


def kl_weight(step, warmup):
    """KL re-weighting within one arrival's training: ``lambda_t = 2^(t - T*)``
    for steps t = 1..T* (the likelihood is fitted first, then the complexity cost
    phases in, BLoB appendix B.1), and 1 afterwards."""
    return 1.0 if step >= warmup else 2.0 ** (step - warmup)


class BLoBController:
    """Sequential BLoB with a FIFO memory, like the retraining baseline.

    Parameters
    ----------
    policy : TransformerPolicy
        Pre-trained weights (frozen; shared, not modified).
    capacity, epochs, lr, batch
        As in ``RetrainController``: whenever a sample arrives, ``epochs``
        passes of Adam over the last ``capacity`` samples.
    rank : int
        LoRA rank r.
    prior_std : float
        sigma_p of the prior N(0, sigma_p^2) on A.
    eps : float
        Initial G ~ U(eps / sqrt 2, eps).
    n_samples : int
        Weight samples averaged at inference (0: the mean weights).
    gamma : float
        Pseudo-rescaling of the KL warm-up: T* = ceil(100 n^(1/gamma) / batch) steps.
    kl_data : str
        What the KL is divided by: ``"seen"`` (default), the number of samples
        seen so far -- the memory stands in for all of them, so the likelihood
        of everything seen is ``seen / n`` times the memory's; or ``"memory"``,
        the n samples in the memory (the ELBO of the memory alone). docs/blob.md.
    kl_lr : float
        Step size of the plain SGD on the KL (complexity) term, >= 0, kept apart from
        the likelihood's Adam as in BLoB (docs/blob.md); 0 leaves the KL out.
    seed : int
    """

    def __init__(self, policy: TransformerPolicy, capacity=10, epochs=100, lr=3e-3, batch=32, rank=4,
                 prior_std=1.0, eps=0.05, n_samples=10, gamma=8.0, kl_data="seen", kl_lr=2e-3, seed=0):
        if not isinstance(policy, TransformerPolicy):
            raise ValueError(f"policy: expected a TransformerPolicy but found {type(policy).__name__}")
        self.policy = policy
        self.P, self.cfg = policy.params, policy.config
        self.tokenizer = policy.tokenizer
        self.capacity = check_int("capacity", capacity, low=1)
        self.epochs = check_int("epochs", epochs, low=1)
        self.lr = check_positive("lr", lr)
        self.kl_lr = check_positive("kl_lr", kl_lr, allow_zero=True)
        self.batch = check_int("batch", batch, low=1)
        self.rank = check_int("rank", rank, low=1)
        self.prior_std = check_positive("prior_std", prior_std)
        self.eps = check_positive("eps", eps)
        self.n_samples = check_int("n_samples", n_samples, low=0)
        self.gamma = check_positive("gamma", gamma)
        if kl_data not in ("seen", "memory"):
            raise ValueError(f"kl_data: expected 'seen' or 'memory' but found {kl_data!r}")
        self.kl_data = kl_data
        seed = check_int("seed", seed, low=0)
        self.rng = np.random.default_rng([seed, 0])          # training noise and shuffling
        self.infer_rng = np.random.default_rng([seed, 1])    # inference samples
        self.adapters = {}
        for name in adapted_names(self.cfg):
            W = self.P[name]
            n_in = W.shape[0] - 1 if name == "head.w" else W.shape[0]
            self.adapters[name] = LoRAFlipout(n_in, W.shape[1], self.rank, self.eps, self.rng)
        self.memory = FifoMemory(self.capacity, self.tokenizer)
        self.opt = Adam(lr=self.lr)
        self.n_updates = 0
        self.name = f"blob-{self.capacity}"

    # ------------------------------------------------------------ parameters
    def parameters(self):
        """name -> array of every trainable parameter (views, updated in place)."""
        out = {}
        for name, a in self.adapters.items():
            out[name + ".M"], out[name + ".G"], out[name + ".B"] = a.M, a.G, a.B
        return out

    def memory_arrays(self):
        """The arrays a device running this controller holds, by role (lists of ndarrays):
        ``params`` the frozen transformer; ``state`` every adapter's (M, G, B)
        and Adam's two moments of them (arrays of their shapes before the first
        step); ``buffers`` the FIFO memory at capacity (states and target distributions)."""
        adapters = self.parameters()
        moments = [opt.get(k, np.zeros_like(a)) for opt in (self.opt.m, self.opt.v) for k, a in adapters.items()]
        memory = [np.zeros((self.capacity, 4)), np.zeros((self.capacity, self.tokenizer.n_bins))]
        return {"params": list(self.policy.params.values()), "state": list(adapters.values()) + moments,
                "buffers": memory}

    def gradients(self):
        """The adapters' accumulated gradients by name (``NAME.M``, ``NAME.G``, ``NAME.B``)."""
        out = {}
        for name, a in self.adapters.items():
            out[name + ".M"], out[name + ".G"], out[name + ".B"] = a.dM, a.dG, a.dB
        return out

    # ------------------------------------------------------------ objective
    def _sample_noise(self, rng, n):
        for name, a in self.adapters.items():
            a.set_noise(a.sample_noise(rng, n, token_axis=name != "head.w"))

    def _clear_noise(self):
        for a in self.adapters.values():
            a.set_noise(None)

    def loss_and_grad(self, states, targets, kl_scale):
        """F = mean cross-entropy + kl_scale * KL with the adapters' current
        noise; fills each adapter's dM, dG, dB. Returns F."""
        for a in self.adapters.values():
            a.zero_grad()
        ce, _ = tf.loss_and_grad(self.P, self.cfg, states, targets, adapters=self.adapters)
        for a in self.adapters.values():
            gM, gG = self._kl_grad(a)
            a.dM += kl_scale * gM
            a.dG += kl_scale * gG
        return ce + kl_scale * kl_divergence(self.adapters, self.prior_std)

    def _kl_grad(self, a):
        """(11): d KL / dM = M / sigma_p^2,  d KL / dG = 2 G^3 / sigma_p^2 - 2 / G."""
        s2 = self.prior_std**2
        return a.M / s2, 2.0 * a.G**3 / s2 - 2.0 / a.G

    # ------------------------------------------------------------ inference
    def probs(self, states, n_samples=None):
        """Predictive bin probabilities (N, n_bins): the mean of ``n_samples``
        weight samples' softmax (flipout signs per state), or the mean weights."""
        X = np.atleast_2d(as_float_array("states", states, [(4,), (None, 4)]))
        n = self.n_samples if n_samples is None else n_samples
        if n == 0:
            self._clear_noise()
            return self._probs(X)
        acc = np.zeros((X.shape[0], self.cfg.n_bins))
        for _ in range(n):
            self._sample_noise(self.infer_rng, X.shape[0])
            acc += self._probs(X)
        self._clear_noise()
        return acc / n

    def _probs(self, X):
        h = tf.features(self.P, self.cfg, X, adapters=self.adapters)
        return tf.softmax(tf.head_logits(h, self.P["head.w"], self.adapters["head.w"]))

    def act(self, states):
        """Force (N) decoded from the bin probabilities at the posterior mean: a float for one state, (N,) for (N, 4)."""
        single = np.ndim(states) == 1
        f = self.tokenizer.decode(self.probs(states))
        return float(f[0]) if single else f

    def predict(self, states):
        """Mean and variance of the predicted categorical over force bins, each (N,)."""
        p = self.probs(states)
        return self.tokenizer.decode(p, "mean"), self.tokenizer.variance(p)

    # ------------------------------------------------------------ learning
    def remember(self, state, expert_force):
        """Store a sample in the FIFO memory without training (profiling a full memory)."""
        self.memory.add(state, expert_force)

    def observe(self, state, expert_force):
        """Store the sample and run ``epochs`` passes of Adam over the memory."""
        self.remember(state, expert_force)
        n = len(self.memory)
        n_kl = self.n_updates + 1 if self.kl_data == "seen" else n
        warmup = math.ceil(100.0 * n ** (1.0 / self.gamma) / self.batch)
        params = self.parameters()
        for step, (S, Y) in enumerate(self.memory.minibatches(self.rng, self.epochs, self.batch), start=1):
            self._sample_noise(self.rng, len(S))                       # K = 1 weight sample
            self.loss_and_grad(S, Y, 0.0)                               # likelihood: Adam
            self.opt.step(params, self.gradients())
            scale = self.kl_lr * kl_weight(step, warmup) / n_kl         # complexity: SGD (BLoB Table 4)
            for a in self.adapters.values():
                gM, gG = self._kl_grad(a)
                a.M -= scale * gM
                a.G -= scale * gG
        self._clear_noise()
        self.n_updates += 1
