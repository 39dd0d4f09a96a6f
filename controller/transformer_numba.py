"""Numba single-state inference for the decision transformer.

Same equations as ``controller.transformer.features`` / ``head_logits`` (the
NumPy reference), written as loops over a preallocated workspace so that one
control tick allocates nothing. ``FastInference(policy)`` packs the weights
once; ``act_one(state)`` returns the decoded force.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from controller.jit import jit
from controller.numba_ops import softmax_inplace

__all__ = ["FastInference"]


@jit
def _layer_norm_row(x, g, b, eps, out):
    # [d] -> [d]
    d = x.shape[0]
    mu = 0.0
    for i in range(d):
        mu += x[i]
    mu /= d
    var = 0.0
    for i in range(d):
        var += (x[i] - mu) * (x[i] - mu)
    rstd = 1.0 / math.sqrt(var / d + eps)
    for i in range(d):
        out[i] = (x[i] - mu) * rstd * g[i] + b[i]


@jit
def _affine(a, w, b, out):
    # [T, i] @ [i, o] + [o] -> [T, o]: out[t, o] = b[o] + a[t, 0] w[0, o] + a[t, 1] w[1, o] + ...
    # summed in that order for every o; the loop over o innermost runs along rows of w and
    # out (contiguous, so it vectorises), each output's sum in the same order as one dot product
    n_in, n_out = w.shape
    for t in range(a.shape[0]):
        row = out[t]
        for o in range(n_out):
            row[o] = b[o]
        for i in range(n_in):
            ai = a[t, i]
            wi = w[i]
            for o in range(n_out):
                row[o] += ai * wi[o]


@jit
def _attention(q, k, v, n_heads, att, o):
    """Scaled dot-product attention of every token, per head: o [T, d] (att: work [T])."""
    T, d = q.shape
    dh = d // n_heads
    inv_sqrt = 1.0 / math.sqrt(dh)
    for hd in range(n_heads):
        c0 = hd * dh
        for t in range(T):
            m = -1e300
            for u in range(T):
                sc = 0.0
                for c in range(dh):
                    sc += q[t, c0 + c] * k[u, c0 + c]
                sc *= inv_sqrt
                att[u] = sc
                if sc > m:
                    m = sc
            tot = 0.0
            for u in range(T):
                att[u] = math.exp(att[u] - m)
                tot += att[u]
            for c in range(dh):
                acc = 0.0
                for u in range(T):
                    acc += att[u] * v[u, c0 + c]
                o[t, c0 + c] = acc / tot


#: field order of the packed T_1 weights (``FastInference.weights``; per-layer arrays stacked over layers)
T1Weights = namedtuple("T1Weights", "scale ev ep eq eqs final_ln ln1g ln1b wq bq wk bk wv bv wo bo "
                                    "ln2g ln2b w1 b1 w2 b2 lnfg lnfb eps n_heads")
#: field order of T_1's work arrays (``FastInference.workspace``)
T1Work = namedtuple("T1Work", "x a q k v o y z att")


@jit
def _features_one(s, W, ws, h):
    """T_1 for one state: writes H_dec into ``h`` [d]. ``W`` and ``ws`` are
    plain tuples in the field order of ``T1Weights`` and ``T1Work``."""
    (scale, ev, ep, eq, eqs, final_ln, ln1g, ln1b, wq, bq, wk, bk, wv, bv, wo, bo,
     ln2g, ln2b, w1, b1, w2, b2, lnfg, lnfb, eps, n_heads) = W
    x, a, q, k, v, o, y, z, att = ws
    n_state, d = ev.shape
    T = n_state + 1
    # tokens: s_i / scale_i * E_val[i] + E_pos[i]; query token last
    for i in range(n_state):
        si = s[i] / scale[i]
        for j in range(d):
            x[i, j] = si * ev[i, j] + ep[i, j]
    for j in range(d):
        acc = eq[j]
        for i in range(n_state):
            acc += s[i] / scale[i] * eqs[i, j]   # query = E_query + s W_state (zeros if constant)
        x[n_state, j] = acc
    for layer in range(wq.shape[0]):
        for t in range(T):
            _layer_norm_row(x[t], ln1g[layer], ln1b[layer], eps, a[t])
        _affine(a, wq[layer], bq[layer], q)
        _affine(a, wk[layer], bk[layer], k)
        _affine(a, wv[layer], bv[layer], v)
        _attention(q, k, v, n_heads, att, o)
        _affine(o, wo[layer], bo[layer], y)
        for t in range(T):
            for j in range(d):
                x[t, j] += y[t, j]
        for t in range(T):
            _layer_norm_row(x[t], ln2g[layer], ln2b[layer], eps, a[t])
        _affine(a, w1[layer], b1[layer], z)
        for t in range(T):
            for j in range(z.shape[1]):
                if z[t, j] < 0.0:
                    z[t, j] = 0.0
        _affine(z, w2[layer], b2[layer], y)
        for t in range(T):
            for j in range(d):
                x[t, j] += y[t, j]
    if final_ln:
        _layer_norm_row(x[T - 1], lnfg, lnfb, eps, h)
    else:
        for j in range(d):
            h[j] = x[T - 1, j]


@jit
def _head_probs(h, W, p):
    """p = softmax(W^T [h; 1]) into ``p`` [n_bins] (bias row last in W, added first)."""
    d = h.shape[0]
    m = -1e300
    for k in range(W.shape[1]):
        acc = W[d, k]
        for i in range(d):
            acc += h[i] * W[i, k]
        p[k] = acc
        if acc > m:
            m = acc
    softmax_inplace(p, m)


class FastInference:
    """Allocation-free single-state inference for a ``TransformerPolicy``.

    The weights are packed (stacked over layers) at construction; call
    ``refresh()`` after the policy's parameters change.
    """

    def __init__(self, policy):
        self.policy = policy
        cfg = policy.config
        T, d, f = cfg.n_state + 1, cfg.d_model, cfg.d_ff
        self._ws = tuple(np.zeros(shape) for shape in
                         [(T, d), (T, d), (T, d), (T, d), (T, d), (T, d), (T, d), (T, f), (T,)])
        self.h = np.zeros(d)
        self.p = np.zeros(cfg.n_bins)
        self._state = np.zeros(cfg.n_state)
        self.refresh()

    def refresh(self):
        """Re-copy the policy's parameters into the contiguous arrays the kernels read (after the weights changed)."""
        P, cfg = self.policy.params, self.policy.config
        L = cfg.n_layers

        def stack(name):
            return np.ascontiguousarray(np.stack([P[f"layer{i}.{name}"] for i in range(L)]))

        self._weights = (
            np.asarray(cfg.state_scale), P["embed.value"], P["embed.pos"], P["embed.query"],
            P.get("embed.query_state", np.zeros((cfg.n_state, cfg.d_model))), bool(cfg.final_ln),
            stack("ln1.g"), stack("ln1.b"), stack("attn.wq"), stack("attn.bq"), stack("attn.wk"),
            stack("attn.bk"), stack("attn.wv"), stack("attn.bv"), stack("attn.wo"), stack("attn.bo"),
            stack("ln2.g"), stack("ln2.b"), stack("ffn.w1"), stack("ffn.b1"), stack("ffn.w2"),
            stack("ffn.b2"), P["ln_f.g"], P["ln_f.b"], float(cfg.ln_eps), int(cfg.n_heads))
        self._head = np.ascontiguousarray(P["head.w"])
        self._centres = self.policy.tokenizer.centres

    @property
    def weights(self):
        """The packed weights, as ``_features_one`` takes them (a tuple in ``T1Weights`` order)."""
        return self._weights

    def weight_arrays(self):
        """The packed weights' arrays (the scalars of ``weights`` left out): what a device holds."""
        return [a for a in self._weights if isinstance(a, np.ndarray)]

    @property
    def workspace(self):
        """The preallocated work arrays of ``_features_one`` (a tuple in ``T1Work`` order)."""
        return self._ws

    def buffers(self):
        """Every work array of single-state inference: the workspace, h, p and the state copy."""
        return list(self._ws) + [self.h, self.p, self._state]

    def features_one(self, state):
        """H_dec [d] for one state [4] (the returned array is reused by the next call)."""
        self._state[:] = state
        _features_one(self._state, self._weights, self._ws, self.h)
        return self.h

    def probs_one(self, state):
        """Bin probabilities (n_bins,) for one state (4,); the returned array is reused by the next call."""
        _head_probs(self.features_one(state), self._head, self.p)
        return self.p

    def act_one(self, state):
        """Decoded force for one state."""
        return self.policy.tokenizer.decode(self.probs_one(state))
