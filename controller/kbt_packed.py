"""KBT's fused kernels on two packed buffers, with the tick's features computed once.

The kernels of ``force_numba`` (``kbt_observe``, ``kbt_act``) take about forty
arrays; Numba wraps every array argument of a call from Python (one allocation
and about 0.2 us each). Here the same kernels read everything from two flat
buffers (docs/tick.md):

    A (float64): header | settings | T_1's weights | standardiser, state scaling |
                 change detector, re-open prior, P0          (frozen, ``FROZEN``)
                 | noise [R, a, b, g] | key | state | h | T_1's work arrays  (mutable)
    B (the head's dtype): m (n1) | P (n1 x n1) | z~ (n1) | P z~ (n1)

and the state comes as four floats, so a call from Python unboxes two arrays.
The kernel cuts the buffers into views (no copy, no allocation) in the order
``layout`` lists, and calls ``force_numba``'s own functions on them: the
equations are written once.

**The tick's features once.** ``key = [s0, s1, s2, s3, valid, passes]`` names
the state whose z~ is in B: ``act`` and ``observe`` compute T_1 only when the
state differs from the key (bit for bit: equal and of the same sign, so -0.0
is not 0.0), then record it; ``passes`` counts T_1's forward passes. z~ is a
function of the state and of frozen parameters only, and nothing else writes
B's z~, so a hit gives the bits a recomputation would: acting on s and then
learning s's label costs one forward pass, with the same force and posterior
as two.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from controller import force_numba as fn
from controller.jit import jit, jit_inline
from controller.numba_ops import as_c
from controller.transformer_numba import _features_one

__all__ = ["HEADER", "KEY", "layout", "pack", "Packed", "kbt_act_packed", "kbt_observe_packed",
           "kbt_tick_packed"]

#: header entries: n_state, d_model, d_ff, n_layers, n1, n_heads, ln_eps, flags (1 final LN, 2 skip, 4 learn)
HEADER = 8
#: key entries: the state (4), valid (1.0 / 0.0), T_1 passes so far
KEY = 6


def layout(ns, d, f, L, n1):
    """[(name, shape)] of buffer A in order; the kernel's ``_views`` cuts the same."""
    T = ns + 1
    dd, lf = (L, d, d), (L, d)
    return [("header", (HEADER,)), ("settings", (4,)),
            ("scale", (ns,)), ("ev", (ns, d)), ("ep", (ns, d)), ("eq", (d,)), ("eqs", (ns, d)),
            ("ln1g", lf), ("ln1b", lf), ("wqkv", (L, d, 3 * d)), ("bqkv", (L, 3 * d)), ("wo", dd), ("bo", lf),
            ("ln2g", lf), ("ln2b", lf), ("w1", (L, d, f)), ("b1", (L, f)),
            ("w2", (L, f, d)), ("b2", lf), ("lnfg", (1, d)), ("lnfb", (1, d)),
            ("h_mean", (d,)), ("h_T", (d, d)), ("s_inv", (ns,)),
            ("detector", (5,)), ("prior", (3,)), ("P0", (n1, n1)),
            # ---- mutable from here on (FROZEN names the last frozen entry)
            ("noise", (4,)), ("key", (KEY,)), ("state", (ns,)), ("h", (d,)),
            ("x", (T, d)), ("a", (T, d)), ("qkv", (T, 3 * d)), ("o", (T, d)), ("y", (T, d)), ("z", (T, f)),
            ("att", (T,))]


#: the last frozen entry of A
FROZEN = "P0"


class Packed:
    """Buffers A and B of one controller, with named views into them.

    ``views[name]`` is a view of A for every ``layout`` entry; ``m``, ``P``,
    ``zt``, ``Pz`` are views of B; ``frozen`` is A's frozen part (a view), ``work``
    A's work arrays besides the noise state (key, state, h, T_1's work).
    """

    def __init__(self, A, B, views, n1):
        self.A, self.B, self.views = A, B, views
        self.m = B[:n1]
        self.P = B[n1:n1 + n1 * n1].reshape(n1, n1)
        self.zt = B[n1 + n1 * n1:n1 * n1 + 2 * n1]
        self.Pz = B[n1 * n1 + 2 * n1:]
        names = list(views)
        cut = names.index(FROZEN) + 1
        self.frozen = A[:sum(views[n].size for n in names[:cut])]
        self.work = [views[n] for n in names[cut:] if n != "noise"]


def pack(weights, h_mean, h_T, s_inv, skip, settings, noise, m, P, dtype):
    """Buffers A, B for T_1's packed ``weights`` (``FastInference.weights``), the standardiser
    (``h_mean``, ``h_T``), the state scaling ``s_inv``, ``skip``, the head's ``settings``
    (``ForceHead.kernel_settings()``), its ``noise`` state and posterior ``m`` (n1,), ``P``
    (n1, n1) in ``dtype``. Returns a ``Packed``; the key starts invalid."""
    (scale, ev, ep, eq, eqs, final_ln, ln1g, ln1b, wqkv, bqkv, wo, bo,
     ln2g, ln2b, w1, b1, w2, b2, lnfg, lnfb, eps, n_heads) = weights
    learn, floor, c2, jitter, keep, detector, prior, P0 = settings
    ns, d = np.shape(ev)
    L, f = np.shape(w1)[0], np.shape(w1)[2]
    n1 = m.shape[0]
    flags = (1 if final_ln else 0) + (2 if skip else 0) + (4 if learn else 0)
    values = {"header": [ns, d, f, L, n1, n_heads, eps, flags], "settings": [floor, c2, jitter, keep],
              "scale": scale, "ev": ev, "ep": ep, "eq": eq, "eqs": eqs, "ln1g": ln1g, "ln1b": ln1b,
              "wqkv": wqkv, "bqkv": bqkv, "wo": wo, "bo": bo,
              "ln2g": ln2g, "ln2b": ln2b, "w1": w1, "b1": b1, "w2": w2, "b2": b2, "lnfg": lnfg, "lnfb": lnfb,
              "h_mean": h_mean, "h_T": h_T, "s_inv": s_inv, "detector": detector, "prior": prior, "P0": P0,
              "noise": noise}
    entries = layout(ns, d, f, L, n1)
    A = np.zeros(sum(int(np.prod(s)) for _, s in entries))
    views, o = {}, 0
    for name, shape in entries:
        n = int(np.prod(shape))
        views[name] = A[o:o + n].reshape(shape)
        if name in values:
            views[name][...] = np.reshape(np.asarray(values[name], dtype=float), shape)
        o += n
    B = np.zeros(n1 * n1 + 3 * n1, dtype)
    B[:n1] = m
    B[n1:n1 + n1 * n1] = np.asarray(P).ravel()
    return Packed(A, B, views, n1)


# ------------------------------------------------------------------ kernels
@jit_inline
def _cut(A, o, n):
    return as_c(A[o:o + n]), o + n


@jit_inline
def _m2(v, r, c):
    """v (r c,) as an (r, c) row-major view: ``as_strided`` costs about a tenth of ``reshape``
    in Numba (which calls its general no-copy reshape helper); ``as_c`` types it C-contiguous,
    as it is, so that the kernels' loops over it vectorise."""
    it = v.itemsize
    return as_c(as_strided(v, shape=(r, c), strides=(c * it, it)))


@jit_inline
def _m3(v, L, r, c):
    """v (L r c,) as an (L, r, c) row-major view."""
    it = v.itemsize
    return as_c(as_strided(v, shape=(L, r, c), strides=(r * c * it, c * it, it)))


@jit_inline
def _t1_views(A, o):
    """T_1's weights from offset ``o`` of A (a tuple in ``T1Weights`` order) and the offset after them."""
    ns, d, f, L = int(A[0]), int(A[1]), int(A[2]), int(A[3])
    n_heads, eps, flags = int(A[5]), A[6], int(A[7])
    scale, o = _cut(A, o, ns)
    ev, o = _cut(A, o, ns * d)
    ep, o = _cut(A, o, ns * d)
    eq, o = _cut(A, o, d)
    eqs, o = _cut(A, o, ns * d)
    ln1g, o = _cut(A, o, L * d)
    ln1b, o = _cut(A, o, L * d)
    wqkv, o = _cut(A, o, L * d * 3 * d)
    bqkv, o = _cut(A, o, L * 3 * d)
    wo, o = _cut(A, o, L * d * d)
    bo, o = _cut(A, o, L * d)
    ln2g, o = _cut(A, o, L * d)
    ln2b, o = _cut(A, o, L * d)
    w1, o = _cut(A, o, L * d * f)
    b1, o = _cut(A, o, L * f)
    w2, o = _cut(A, o, L * f * d)
    b2, o = _cut(A, o, L * d)
    lnfg, o = _cut(A, o, d)
    lnfb, o = _cut(A, o, d)
    W = (scale, _m2(ev, ns, d), _m2(ep, ns, d), eq, _m2(eqs, ns, d), (flags & 1) != 0,
         _m2(ln1g, L, d), _m2(ln1b, L, d), _m3(wqkv, L, d, 3 * d), _m2(bqkv, L, 3 * d),
         _m3(wo, L, d, d), _m2(bo, L, d), _m2(ln2g, L, d), _m2(ln2b, L, d),
         _m3(w1, L, d, f), _m2(b1, L, f), _m3(w2, L, f, d), _m2(b2, L, d), _m2(lnfg, 1, d), _m2(lnfb, 1, d),
         eps, n_heads)
    return W, o


@jit_inline
def _views(A, B):
    """The groups of ``force_numba``'s kernels as views of A and B (the order of ``layout``):
    (KBTInputs, HeadState, HeadSettings, HeadWork, key, state)."""
    ns, d, f, n1, flags = int(A[0]), int(A[1]), int(A[2]), int(A[4]), int(A[7])
    T = ns + 1
    st, o = _cut(A, HEADER, 4)
    W, o = _t1_views(A, o)
    h_mean, o = _cut(A, o, d)
    h_T, o = _cut(A, o, d * d)
    s_inv, o = _cut(A, o, ns)
    detector, o = _cut(A, o, 5)
    prior, o = _cut(A, o, 3)
    P0, o = _cut(A, o, n1 * n1)
    noise, o = _cut(A, o, 4)
    key, o = _cut(A, o, KEY)
    state, o = _cut(A, o, ns)
    h, o = _cut(A, o, d)
    x, o = _cut(A, o, T * d)
    a, o = _cut(A, o, T * d)
    qkv, o = _cut(A, o, T * 3 * d)
    ov, o = _cut(A, o, T * d)
    y, o = _cut(A, o, T * d)
    z, o = _cut(A, o, T * f)
    att, o = _cut(A, o, T)
    ws = (_m2(x, T, d), _m2(a, T, d), _m2(qkv, T, 3 * d), _m2(ov, T, d), _m2(y, T, d), _m2(z, T, f), att)
    inputs = (W, ws, h, h_mean, _m2(h_T, d, d), s_inv, (flags & 2) != 0)
    m = B[:n1]
    P = _m2(B[n1:n1 + n1 * n1], n1, n1)
    zt = B[n1 + n1 * n1:n1 * n1 + 2 * n1]
    Pz = B[n1 * n1 + 2 * n1:n1 * n1 + 3 * n1]
    settings = ((flags & 4) != 0, st[0], st[1], st[2], st[3], detector, prior, _m2(P0, n1, n1))
    return inputs, (m, P, noise), settings, (zt, Pz), key, state


@jit
def _same(a, b):
    """a and b are the same float bit for bit (NaN never is): equal, and of the same sign."""
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


@jit_inline
def _inputs_once(inputs, zt, key, state, s0, s1, s2, s3):
    """z~ of (s0, s1, s2, s3) in ``zt``: reused when the key names this state, else computed
    (``force_numba._kbt_inputs``) and the key set. False for a non-finite state (zt and key
    untouched)."""
    if key[4] != 0.0 and _same(s0, key[0]) and _same(s1, key[1]) and _same(s2, key[2]) and _same(s3, key[3]):
        return True
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    if not fn._kbt_inputs(state, inputs, zt):
        return False
    key[0], key[1], key[2], key[3] = s0, s1, s2, s3
    key[4] = 1.0
    key[5] += 1.0
    return True


@jit
def kbt_act_packed(A, B, s0, s1, s2, s3):
    """``force_numba.kbt_act`` on the packed buffers: the mean force at the state (NaN if not finite)."""
    inputs, head, _, work, key, state = _views(A, B)
    if not _inputs_once(inputs, work[0], key, state, s0, s1, s2, s3):
        return math.nan
    return fn.force_mean(head[0], work[0])


@jit
def kbt_observe_packed(A, B, s0, s1, s2, s3, y):
    """``force_numba.kbt_observe`` on the packed buffers: one update with label ``y``; the status."""
    inputs, head, settings, work, key, state = _views(A, B)
    if not _inputs_once(inputs, work[0], key, state, s0, s1, s2, s3):
        return fn.NONFINITE
    return fn.force_update(head, settings, work, y)


@jit
def kbt_tick_packed(A, B, s0, s1, s2, s3, y):
    """Act on the state, then learn its label ``y`` (one T_1 pass): (force, status), the same
    as ``kbt_act_packed`` then ``kbt_observe_packed`` on the state."""
    inputs, head, settings, work, key, state = _views(A, B)
    if not _inputs_once(inputs, work[0], key, state, s0, s1, s2, s3):
        return math.nan, fn.NONFINITE
    u = fn.force_mean(head[0], work[0])
    return u, fn.force_update(head, settings, work, y)
