"""Decision transformer in NumPy: forward pass and hand-written backward pass.

Architecture (docs/defaults.md), read top to bottom in ``forward``:

* tokens: each of the 4 normalised state variables is a token
  ``s_i * E_val[i] + E_pos[i]``; an action-query token is appended, so the
  sequence is ``[N, 5, d]``. By default (``query="state"``) it embeds the
  whole normalised state, ``E_query + s W_state``; ``query="constant"`` uses
  ``E_query`` alone;
* ``n_layers`` pre-LayerNorm encoder blocks, each
  ``x = x + MHA(LN(x))``, ``x = x + FFN(LN(x))`` with ReLU;
* T_1: the query token's output, ``h = H_dec`` in R^d. By default
  (``final_ln=False``) there is no final LayerNorm, ``H_dec = x``; with
  ``final_ln=True``, ``H_dec = LN(x)`` (why off: docs/features.md);
* T_2: ``p = softmax(W_O^T [h; 1])`` over the action bins (``W_O`` is
  ``(d + 1, n_bins)``, its last row the bias).

Every function here is pure: parameters come in a dict keyed exactly like the
saved ``.npz`` (``layer0.attn.wq`` ...), activations are returned in a cache
that the matching ``*_backward`` function consumes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from controller.tokenizer import ActionTokenizer
from controller.checks import check_field_types, check_int, check_positive

__all__ = [
    "TransformerConfig", "init_params", "param_shapes", "forward", "backward",
    "soft_cross_entropy", "loss_and_grad", "softmax",
]


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes and fixed settings of the decision transformer."""

    d_model: int = 16
    n_heads: int = 2
    d_ff: int = 8
    n_layers: int = 2
    n_state: int = 4
    ln_eps: float = 1e-5
    #: states are divided by these fixed scales before embedding
    state_scale: tuple = (0.5, 0.5, 0.1, 0.1)
    #: action tokenizer settings (see controller.tokenizer)
    n_bins: int = 11
    u_max: float = 30.0
    target: str = "gaussian"
    sigma: float = 6.0
    decode: str = "mean"
    #: apply a final LayerNorm to the query token (H_dec = LN(x)); off: H_dec = x.
    #: Off by default: the LayerNorm hides the state from a linear head (docs/features.md)
    final_ln: bool = False
    #: action-query token: 'constant' (E_query) or 'state' (E_query + s W_state, the
    #: whole normalised state embedded linearly, as in Decision Transformer's state token)
    query: str = "state"

    def __post_init__(self):
        """TypeError for a field of the wrong type, ValueError for a value out of range."""
        check_field_types(self)
        for name in ("d_model", "n_heads", "d_ff", "n_layers", "n_state", "n_bins"):
            check_int(name, getattr(self, name), low=2 if name == "n_bins" else 1)
        for name in ("ln_eps", "u_max", "sigma"):
            check_positive(name, getattr(self, name))
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model: expected a multiple of n_heads={self.n_heads} but found {self.d_model}")
        object.__setattr__(self, "state_scale", tuple(float(v) for v in self.state_scale))
        if len(self.state_scale) != self.n_state or min(self.state_scale) <= 0:
            raise ValueError(f"state_scale: expected {self.n_state} positive scales but found {self.state_scale}")
        if self.query not in ("constant", "state"):
            raise ValueError(f"query: expected 'constant' or 'state' but found {self.query!r}")

    @property
    def d_head(self):
        """Width of one attention head, d_model / n_heads."""
        return self.d_model // self.n_heads

    def tokenizer(self):
        """The ``ActionTokenizer`` of these settings (bins, force limit, targets, decoding)."""
        return ActionTokenizer(self.n_bins, self.u_max, self.target, self.sigma, self.decode)

    def to_dict(self):
        """The settings as a plain dict (stored in weight files)."""
        return asdict(self)


def param_shapes(cfg: TransformerConfig):
    """Name -> shape of every parameter, in the order they are saved."""
    d, f, n = cfg.d_model, cfg.d_ff, cfg.n_state
    shapes = {"embed.value": (n, d), "embed.pos": (n, d), "embed.query": (d,)}
    if cfg.query == "state":
        shapes["embed.query_state"] = (n, d)
    for layer in range(cfg.n_layers):
        p = f"layer{layer}."
        shapes.update({
            p + "ln1.g": (d,), p + "ln1.b": (d,),
            p + "attn.wq": (d, d), p + "attn.bq": (d,),
            p + "attn.wk": (d, d), p + "attn.bk": (d,),
            p + "attn.wv": (d, d), p + "attn.bv": (d,),
            p + "attn.wo": (d, d), p + "attn.bo": (d,),
            p + "ln2.g": (d,), p + "ln2.b": (d,),
            p + "ffn.w1": (d, f), p + "ffn.b1": (f,),
            p + "ffn.w2": (f, d), p + "ffn.b2": (d,),
        })
    shapes.update({"ln_f.g": (d,), "ln_f.b": (d,), "head.w": (d + 1, cfg.n_bins)})
    return shapes


def init_params(cfg: TransformerConfig, rng):
    """Random initial parameters: N(0, 1/fan_in) matrices, zero biases, unit LayerNorm gains."""
    params = {}
    for name, shape in param_shapes(cfg).items():
        leaf = name.rsplit(".", 1)[1]
        if leaf == "g":
            params[name] = np.ones(shape)
        elif leaf.startswith("b"):
            params[name] = np.zeros(shape)
        elif name == "embed.query_state":
            params[name] = rng.normal(0.0, 1.0 / math.sqrt(shape[0]), shape)
        elif name.startswith("embed."):
            params[name] = rng.normal(0.0, 1.0, shape)
        elif name == "head.w":
            params[name] = np.vstack([rng.normal(0.0, 0.1 / math.sqrt(shape[0] - 1), (shape[0] - 1, shape[1])),
                                      np.zeros((1, shape[1]))])
        else:
            params[name] = rng.normal(0.0, 1.0 / math.sqrt(shape[0]), shape)
    return params


# ---------------------------------------------------------------- pieces
def softmax(x, axis=-1):
    """Softmax along ``axis`` (max-shifted for stability)."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def layer_norm(x, g, b, eps):
    # [..., d] -> [..., d]
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    rstd = 1.0 / np.sqrt((xc * xc).mean(axis=-1, keepdims=True) + eps)
    xhat = xc * rstd
    return xhat * g + b, (xhat, rstd)


def layer_norm_backward(dy, g, cache):
    # dy [..., d] -> dx [..., d], dg [d], db [d]
    xhat, rstd = cache
    d = xhat.shape[-1]
    dxhat = dy * g
    dx = rstd * (dxhat - dxhat.mean(axis=-1, keepdims=True) - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
    return dx, (dy * xhat).reshape(-1, d).sum(axis=0), dy.reshape(-1, d).sum(axis=0)


def _split_heads(x, n_heads):
    # [N, T, d] -> [N, H, T, d/H]
    N, T, d = x.shape
    return x.reshape(N, T, n_heads, d // n_heads).transpose(0, 2, 1, 3)


def _merge_heads(x):
    # [N, H, T, dh] -> [N, T, H*dh]
    N, H, T, dh = x.shape
    return x.transpose(0, 2, 1, 3).reshape(N, T, H * dh)


def _linear(x, w, b):
    # [N, T, i] @ [i, o] + [o] -> [N, T, o]
    return x @ w + b


def _linear_backward(dy, x, w):
    # returns dx, dw, db for y = x w + b
    i, o = w.shape
    return dy @ w.T, x.reshape(-1, i).T @ dy.reshape(-1, o), dy.reshape(-1, o).sum(axis=0)


def _adapted(x, P, w, b, adapters):
    """``x @ P[w] + P[b]``, plus the low-rank term of an adapter on ``w`` if any
    (``adapters``: name -> object with ``forward(x)`` and ``backward(dy)``, e.g. BLoB's LoRA)."""
    y = _linear(x, P[w], P[b])
    if adapters and w in adapters:
        y = y + adapters[w].forward(x)
    return y


def _adapter_dx(dx, dy, w, adapters):
    """Add an adapter's input gradient to the frozen linear layer's ``dx``."""
    if adapters and w in adapters:
        return dx + adapters[w].backward(dy)
    return dx


def attention(a, P, p, n_heads, adapters=None):
    """Multi-head self-attention on the LayerNormed input ``a`` [N, T, d]."""
    q = _split_heads(_adapted(a, P, p + "wq", p + "bq", adapters), n_heads)   # [N, H, T, dh]
    k = _split_heads(_adapted(a, P, p + "wk", p + "bk", adapters), n_heads)
    v = _split_heads(_adapted(a, P, p + "wv", p + "bv", adapters), n_heads)
    scale = 1.0 / math.sqrt(q.shape[-1])
    att = softmax((q @ k.transpose(0, 1, 3, 2)) * scale)              # [N, H, T, T]
    o = _merge_heads(att @ v)                                          # [N, T, d]
    return _adapted(o, P, p + "wo", p + "bo", adapters), (a, q, k, v, att, o, scale)


def attention_backward(dy, P, p, cache, grads, adapters=None):
    a, q, k, v, att, o, scale = cache
    do, grads[p + "wo"], grads[p + "bo"] = _linear_backward(dy, o, P[p + "wo"])
    do = _adapter_dx(do, dy, p + "wo", adapters)
    do = _split_heads(do, q.shape[1])                                  # [N, H, T, dh]
    datt = do @ v.transpose(0, 1, 3, 2)                                # [N, H, T, T]
    dv = att.transpose(0, 1, 3, 2) @ do
    # softmax backward: dS = P * (dP - sum_j dP_j P_j)
    ds = att * (datt - (datt * att).sum(axis=-1, keepdims=True)) * scale
    dq = ds @ k
    dk = ds.transpose(0, 1, 3, 2) @ q
    da = 0.0
    for name, dx in (("q", dq), ("k", dk), ("v", dv)):
        dy_x = _merge_heads(dx)
        dai, grads[p + "w" + name], grads[p + "b" + name] = _linear_backward(dy_x, a, P[p + "w" + name])
        da = da + _adapter_dx(dai, dy_x, p + "w" + name, adapters)
    return da


def ffn(c, P, p):
    # [N, T, d] -> [N, T, d]
    z = _linear(c, P[p + "w1"], P[p + "b1"])
    r = np.maximum(z, 0.0)
    return _linear(r, P[p + "w2"], P[p + "b2"]), (c, z, r)


def ffn_backward(dy, P, p, cache, grads):
    c, z, r = cache
    dr, grads[p + "w2"], grads[p + "b2"] = _linear_backward(dy, r, P[p + "w2"])
    dz = dr * (z > 0)
    dc, grads[p + "w1"], grads[p + "b1"] = _linear_backward(dz, c, P[p + "w1"])
    return dc


def block(x, P, layer, cfg, adapters=None):
    """One pre-LN encoder block: [N, T, d] -> [N, T, d]."""
    p = f"layer{layer}."
    a, ln1 = layer_norm(x, P[p + "ln1.g"], P[p + "ln1.b"], cfg.ln_eps)
    y, att = attention(a, P, p + "attn.", cfg.n_heads, adapters)
    x1 = x + y
    c, ln2 = layer_norm(x1, P[p + "ln2.g"], P[p + "ln2.b"], cfg.ln_eps)
    f, ff = ffn(c, P, p + "ffn.")
    return x1 + f, (ln1, att, ln2, ff)


def block_backward(dx2, P, layer, cache, grads, adapters=None):
    p = f"layer{layer}."
    ln1, att, ln2, ff = cache
    dc = ffn_backward(dx2, P, p + "ffn.", ff, grads)
    dx1, grads[p + "ln2.g"], grads[p + "ln2.b"] = layer_norm_backward(dc, P[p + "ln2.g"], ln2)
    dx1 = dx1 + dx2
    da = attention_backward(dx1, P, p + "attn.", att, grads, adapters)
    dx, grads[p + "ln1.g"], grads[p + "ln1.b"] = layer_norm_backward(da, P[p + "ln1.g"], ln1)
    return dx + dx1


def embed(states, P, cfg):
    """States [N, 4] -> tokens [N, 5, d]."""
    s = states / np.asarray(cfg.state_scale)                           # [N, 4]
    tokens = s[:, :, None] * P["embed.value"] + P["embed.pos"]         # [N, 4, d]
    if cfg.query == "state":
        query = (P["embed.query"] + s @ P["embed.query_state"])[:, None, :]  # [N, 1, d]
    else:
        query = np.broadcast_to(P["embed.query"], (s.shape[0], 1, cfg.d_model))
    return np.concatenate([tokens, query], axis=1), s


# ---------------------------------------------------------------- model
def features(P, cfg, states, return_cache=False, adapters=None):
    """T_1: states [N, 4] -> H_dec [N, d], the query token's output (LayerNorm-ed only if ``cfg.final_ln``)."""
    x, s = embed(states, P, cfg)
    caches = []
    for layer in range(cfg.n_layers):
        x, c = block(x, P, layer, cfg, adapters)
        caches.append(c)
    if cfg.final_ln:
        h, lnf = layer_norm(x[:, -1, :], P["ln_f.g"], P["ln_f.b"], cfg.ln_eps)
    else:
        h, lnf = x[:, -1, :], None
    if return_cache:
        return h, (s, x.shape, caches, lnf)
    return h


def head_logits(h, W_O, adapter=None):
    """T_2 before the softmax: [N, d] -> [N, n_bins], ``u = W_O^T [h; 1]``
    (plus an adapter's low-rank term on ``W_O[:-1]``)."""
    u = h @ W_O[:-1] + W_O[-1]
    return u if adapter is None else u + adapter.forward(h)


def forward(P, cfg, states):
    """Logits [N, n_bins] for states [N, 4]."""
    return head_logits(features(P, cfg, states), P["head.w"])


def soft_cross_entropy(logits, targets):
    """Mean over rows of ``-sum_k y_k log softmax(logits)_k`` and its gradient."""
    z = logits - logits.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    n = logits.shape[0]
    loss = -(targets * logp).sum() / n
    # d/dlogits = (softmax - y) / n, valid because each target row sums to 1
    return loss, (np.exp(logp) - targets) / n


def backward(P, cfg, dlogits, h, cache, adapters=None):
    """Gradients of every parameter given d(loss)/d(logits) [N, n_bins]; adapters
    (if any) accumulate their own gradients on the way."""
    W = P["head.w"]
    grads = {"head.w": np.vstack([h.T @ dlogits, dlogits.sum(axis=0, keepdims=True)])}
    dh = _adapter_dx(dlogits @ W[:-1].T, dlogits, "head.w", adapters)  # [N, d]
    return features_backward(P, cfg, dh, cache, grads, adapters)


def features_backward(P, cfg, dh, cache, grads, adapters=None):
    """Gradients of T_1's parameters given d(loss)/dh [N, d] (``features``' output),
    written into ``grads`` (returned); adapters accumulate their own."""
    s, xshape, caches, lnf = cache
    if cfg.final_ln:
        dq, grads["ln_f.g"], grads["ln_f.b"] = layer_norm_backward(dh, P["ln_f.g"], lnf)
    else:
        dq = dh
        grads["ln_f.g"], grads["ln_f.b"] = np.zeros_like(P["ln_f.g"]), np.zeros_like(P["ln_f.b"])
    dx = np.zeros(xshape)
    dx[:, -1, :] = dq
    for layer in reversed(range(cfg.n_layers)):
        dx = block_backward(dx, P, layer, caches[layer], grads, adapters)
    grads["embed.query"] = dx[:, -1, :].sum(axis=0)
    if cfg.query == "state":
        grads["embed.query_state"] = s.T @ dx[:, -1, :]
    dtok = dx[:, :-1, :]                                               # [N, 4, d]
    grads["embed.value"] = np.einsum("ni,nid->id", s, dtok)
    grads["embed.pos"] = dtok.sum(axis=0)
    return grads


def loss_and_grad(P, cfg, states, targets, adapters=None):
    """Soft cross-entropy of the model on (states, target distributions) and its gradient dict."""
    h, cache = features(P, cfg, states, return_cache=True, adapters=adapters)
    head = adapters.get("head.w") if adapters else None
    loss, dlogits = soft_cross_entropy(head_logits(h, P["head.w"], head), targets)
    return loss, backward(P, cfg, dlogits, h, cache, adapters)


@dataclass
class Adam:
    """Adam (Kingma & Ba) over a parameter dict, updated in place."""

    lr: float = 3e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    t: int = 0
    m: dict = field(default_factory=dict)
    v: dict = field(default_factory=dict)

    def __post_init__(self):
        """TypeError for a field of the wrong type, ValueError for a value out of range."""
        check_field_types(self)
        check_positive("lr", self.lr)
        for name in ("beta1", "beta2"):
            b = check_positive(name, getattr(self, name), allow_zero=True)
            if b >= 1:
                raise ValueError(f"{name}: expected a number in [0, 1) but found {b}")
        check_positive("eps", self.eps)
        check_int("t", self.t, low=0)

    def step(self, params, grads, lr=None):
        lr = self.lr if lr is None else lr
        self.t += 1
        c1 = 1.0 - self.beta1**self.t
        c2 = 1.0 - self.beta2**self.t
        for name, g in grads.items():
            if name not in self.m:
                self.m[name] = np.zeros_like(g)
                self.v[name] = np.zeros_like(g)
            m, v = self.m[name], self.v[name]
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * g * g
            params[name] -= lr * (m / c1) / (np.sqrt(v / c2) + self.eps)
