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

#: unsigned index type of the kernels' inner loops (``_affine``)
_U = np.uint64


@jit
def _layer_norm_row(x, t, g, b, layer, eps, out):
    # row t of x [T, d] -> row t of out [T, d], with the gains and biases of g, b [L, d] row ``layer``
    # (indices, not row views: a view costs a reference count in and out, in every call)
    d = x.shape[1]
    mu = 0.0
    for i in range(d):
        mu += x[t, i]
    mu /= d
    var = 0.0
    for i in range(d):
        var += (x[t, i] - mu) * (x[t, i] - mu)
    rstd = 1.0 / math.sqrt(var / d + eps)
    for i in range(d):
        out[t, i] = (x[t, i] - mu) * rstd * g[layer, i] + b[layer, i]


@jit
def _affine(a, w, b, layer, out, t0, t1, c0, c1):
    # rows t0 <= t < t1, columns c0 <= o < c1 of a [T, i] @ w[layer] [i, o] + b[layer] [o] -> out:
    # out[t, o] = b[o] + a[t, 0] w[0, o] + a[t, 1] w[1, o] + ... summed in that order for every o;
    # the loop over o innermost runs along rows of w and out (contiguous, so it vectorises),
    # each output's sum in the same order as one dot product, whichever rows and columns are asked for.
    # Indices are unsigned: Numba then skips its negative-index wrap-around, which keeps the
    # inner loop from vectorising (callers pass non-negative bounds)
    n_in, lay = _U(w.shape[1]), _U(layer)
    for t in range(_U(t0), _U(t1)):
        for o in range(_U(c0), _U(c1)):
            out[t, o] = b[lay, o]
        for i in range(n_in):
            ai = a[t, i]
            for o in range(_U(c0), _U(c1)):
                out[t, o] += ai * w[lay, i, o]


@jit
def _attention_rows(qkv, d, n_heads, t0, att, o):
    """Scaled dot-product attention, per head, of the tokens t >= t0 over every token:
    o[t] [d] for t0 <= t < T, from qkv [T, 3d] = [q | k | v] (att: work [T])."""
    T = qkv.shape[0]
    dh = d // n_heads
    inv_sqrt = 1.0 / math.sqrt(dh)
    for hd in range(n_heads):
        cq = hd * dh          # head hd's columns of q; of k at d + cq, of v at 2 d + cq
        ck = d + cq
        cv = 2 * d + cq
        for t in range(t0, T):
            m = -1e300
            for u in range(T):
                sc = 0.0
                for c in range(dh):
                    sc += qkv[t, cq + c] * qkv[u, ck + c]
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
                    acc += att[u] * qkv[u, cv + c]
                o[t, cq + c] = acc / tot


#: field order of the packed T_1 weights (``FastInference.weights``; per-layer arrays stacked over layers)
T1Weights = namedtuple("T1Weights", "scale ev ep eq eqs final_ln ln1g ln1b wqkv bqkv wo bo "
                                    "ln2g ln2b w1 b1 w2 b2 lnfg lnfb eps n_heads")
#: field order of T_1's work arrays (``FastInference.workspace``)
T1Work = namedtuple("T1Work", "x a qkv o y z att")


@jit
def _features_one(s, W, ws, h):
    """T_1 for one state: writes H_dec into ``h`` [d]. ``W`` and ``ws`` are
    plain tuples in the field order of ``T1Weights`` and ``T1Work``.

    The query, key and value projections are one affine map (their weights side by
    side, [d, 3d]), and the last block computes only the query token's row past its
    keys and values: h reads that row only. Each output is one sum in a fixed order
    (bias first, then the inputs in order), the same whether the projections are fused
    or the other rows computed, so neither changes h's bits; it agrees with
    ``controller.transformer.features`` (BLAS) to rounding error."""
    (scale, ev, ep, eq, eqs, final_ln, ln1g, ln1b, wqkv, bqkv, wo, bo,
     ln2g, ln2b, w1, b1, w2, b2, lnfg, lnfb, eps, n_heads) = W
    x, a, qkv, o, y, z, att = ws
    n_state, d = ev.shape
    T = n_state + 1
    L = wqkv.shape[0]
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
    f = w1.shape[2]
    for layer in range(L):
        t0 = T - 1 if layer == L - 1 else 0     # rows past K and V: all, or the query's in the last block
        for t in range(T):
            _layer_norm_row(x, t, ln1g, ln1b, layer, eps, a)
        # [q | k | v] = LN1(x) [Wq | Wk | Wv] + [bq | bk | bv]   [T, 3d]; rows before t0: k and v only
        _affine(a, wqkv, bqkv, layer, qkv, 0, t0, d, 3 * d)
        _affine(a, wqkv, bqkv, layer, qkv, t0, T, 0, 3 * d)
        _attention_rows(qkv, d, n_heads, t0, att, o)
        _affine(o, wo, bo, layer, y, t0, T, 0, d)
        for t in range(t0, T):
            for j in range(d):
                x[t, j] += y[t, j]
        for t in range(t0, T):
            _layer_norm_row(x, t, ln2g, ln2b, layer, eps, a)
        _affine(a, w1, b1, layer, z, t0, T, 0, f)
        for t in range(t0, T):
            for j in range(f):
                if z[t, j] < 0.0:
                    z[t, j] = 0.0
        _affine(z, w2, b2, layer, y, t0, T, 0, d)
        for t in range(t0, T):
            for j in range(d):
                x[t, j] += y[t, j]
    if final_ln:
        # the final layer norm of the query row, into a's free row T - 1 (lnf g, b as one "layer")
        _layer_norm_row(x, T - 1, lnfg, lnfb, 0, eps, a)
        for j in range(d):
            h[j] = a[T - 1, j]
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
                         [(T, d), (T, d), (T, 3 * d), (T, d), (T, d), (T, f), (T,)])
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

        def stack_qkv(kind):   # [Wq | Wk | Wv] (L, d, 3d) or [bq | bk | bv] (L, 3d)
            return np.ascontiguousarray(np.concatenate([stack(f"attn.{kind}{p}") for p in "qkv"], axis=-1))

        self._weights = (
            np.asarray(cfg.state_scale), P["embed.value"], P["embed.pos"], P["embed.query"],
            P.get("embed.query_state", np.zeros((cfg.n_state, cfg.d_model))), bool(cfg.final_ln),
            stack("ln1.g"), stack("ln1.b"), stack_qkv("w"), stack_qkv("b"), stack("attn.wo"), stack("attn.bo"),
            stack("ln2.g"), stack("ln2.b"), stack("ffn.w1"), stack("ffn.b1"), stack("ffn.w2"),
            stack("ffn.b2"), P["ln_f.g"][None, :], P["ln_f.b"][None, :], float(cfg.ln_eps), int(cfg.n_heads))
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
