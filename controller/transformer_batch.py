"""T_1 on a batch of states, faster and to the bit: ``transformer.features`` with its
LayerNorms and softmaxes in Numba kernels.

A batch of a hundred states (the success evaluation's live episodes) spends half
of ``transformer.features`` in NumPy's LayerNorm and softmax on (N, 5, 16) and
(N, 2, 5, 5) arrays: ten NumPy calls each, and reductions over a last axis of 16
or 5 elements. ``features`` here keeps every matrix product and every other
operation of the reference as it is (the same NumPy calls, so the same BLAS
calls) and does the LayerNorms and softmaxes row by row in ``layer_norm`` and
``softmax_rows``, which repeat NumPy's arithmetic: elementwise operations in
the same order, no fused multiply-add (``controller.jit`` leaves ``fastmath``
off), ``math.exp`` / ``math.sqrt`` (what NumPy calls on float64 here), and
sums in NumPy's pairwise order (``pairwise_sum``). The features are the
reference's to the bit, which ``tests/test_transformer_batch.py`` checks on
the shipped weights and random ones (docs/fast-evaluation.md).
Inference only: training needs the reference's caches.
"""

from __future__ import annotations

import math

import numpy as np

from controller import transformer as tf
from controller.jit import jit

__all__ = ["features", "layer_norm", "softmax_rows", "pairwise_sum"]

#: the longest row the kernels sum (NumPy's pairwise block); longer rows take the reference
PAIRWISE_MAX = 128


@jit
def pairwise_sum(a, lo, n):
    """``a[lo:lo + n].sum()`` in NumPy's order (``DOUBLE_pairwise_sum``) for n <= 128:
    below 8 elements one running sum from 0; up to 128, eight interleaved running
    sums added as a tree, then the tail. (NumPy splits a longer sum in halves; the
    callers leave rows that long to the NumPy reference.)"""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    stop = n - n % 8
    while i < stop:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@jit
def layer_norm(x, g, b, eps, out, work):
    """``transformer.layer_norm(x, g, b, eps)[0]`` for rows x (R, d) into ``out`` (R, d);
    ``work`` (2 d,) is scratch."""
    R, d = x.shape
    fd = float(d)
    xc = work[:d]
    sq = work[d:2 * d]
    for r in range(R):
        row = x[r]
        mu = (0.0 + pairwise_sum(row, 0, d)) / fd
        for j in range(d):
            xc[j] = row[j] - mu
            sq[j] = xc[j] * xc[j]
        rstd = 1.0 / math.sqrt((0.0 + pairwise_sum(sq, 0, d)) / fd + eps)
        for j in range(d):
            out[r, j] = xc[j] * rstd * g[j] + b[j]


@jit
def softmax_rows(x, scale, out):
    """``transformer.softmax(x * scale)`` over the last axis of rows x (R, k) into ``out``
    (R, k) (overwrites ``x`` with ``x * scale``)."""
    R, k = x.shape
    for r in range(R):
        m = -math.inf
        nan = False
        for j in range(k):
            v = x[r, j] * scale
            x[r, j] = v
            if v != v:
                nan = True
            elif v > m:
                m = v
        if nan:
            m = math.nan
        for j in range(k):
            out[r, j] = math.exp(x[r, j] - m)
        s = 0.0 + pairwise_sum(out[r], 0, k)
        for j in range(k):
            out[r, j] = out[r, j] / s


def _layer_norm(x, g, b, eps):
    d = x.shape[-1]
    if d > PAIRWISE_MAX:
        return tf.layer_norm(x, g, b, eps)[0]
    flat = np.ascontiguousarray(x).reshape(-1, d)
    out = np.empty_like(flat)
    layer_norm(flat, g, b, float(eps), out, np.empty(2 * d))
    return out.reshape(x.shape)


def _softmax(x, scale):
    if x.shape[-1] > PAIRWISE_MAX:
        return tf.softmax(x * scale)
    flat = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
    out = np.empty_like(flat)
    softmax_rows(flat, float(scale), out)
    return out.reshape(x.shape)


def _attention(a, P, p, n_heads):
    """``transformer.attention`` without adapters or cache."""
    q = tf._split_heads(tf._linear(a, P[p + "wq"], P[p + "bq"]), n_heads)
    k = tf._split_heads(tf._linear(a, P[p + "wk"], P[p + "bk"]), n_heads)
    v = tf._split_heads(tf._linear(a, P[p + "wv"], P[p + "bv"]), n_heads)
    att = _softmax(q @ k.transpose(0, 1, 3, 2), 1.0 / math.sqrt(q.shape[-1]))
    return tf._linear(tf._merge_heads(att @ v), P[p + "wo"], P[p + "bo"])


def _block(x, P, layer, cfg):
    """``transformer.block`` without adapters or cache."""
    p = f"layer{layer}."
    x1 = x + _attention(_layer_norm(x, P[p + "ln1.g"], P[p + "ln1.b"], cfg.ln_eps), P, p + "attn.", cfg.n_heads)
    c = _layer_norm(x1, P[p + "ln2.g"], P[p + "ln2.b"], cfg.ln_eps)
    z = tf._linear(c, P[p + "ffn.w1"], P[p + "ffn.b1"])
    return x1 + tf._linear(np.maximum(z, 0.0), P[p + "ffn.w2"], P[p + "ffn.b2"])


def features(P, cfg, states):
    """T_1: states [N, 4] -> H_dec [N, d], the floats of ``transformer.features(P, cfg, states)``."""
    x, _ = tf.embed(states, P, cfg)
    for layer in range(cfg.n_layers):
        x = _block(x, P, layer, cfg)
    if cfg.final_ln:
        return _layer_norm(x[:, -1, :], P["ln_f.g"], P["ln_f.b"], cfg.ln_eps)
    return x[:, -1, :]
