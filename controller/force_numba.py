"""Numba kernels of the Gaussian force head (L = 1) and of the fused
``observe`` / ``act`` paths of the controllers built on it.

Same equations as ``ForceHead``'s NumPy reference (``KalmanHead`` with a
linear output, plus the robust weight, the change detector and the noise
rules in ``force_head.py``; docs/robust-update.md, docs/change-detection.md),
for one sample with ``z~ = [z; 1]`` (n1 entries):

    Pz   = P z~                         Cov(w, u)
    q    = z~^T P z~                    epistemic variance of u = w^T z~      (21)
    mu   = m^T z~                       predictive mean of the force         (19)
    S    = q + R (+ jitter)             innovation variance
    e    = y - mu,  x = e^2 / S         innovation and its standardised square
    change detector (Page's CUSUM of a clipped log-likelihood ratio):
         g = max(0, g + min(k x, k kappa) - nu);  g > h: a change --
         P = P0 (the prior's covariance) and the noise statistics back to their prior (m is kept),
         g = 0, and Pz, q, S, x again with the re-opened posterior
    robust weight (inverse multiquadric, WoLF): w = 1 / (1 + x / c^2), i.e. the
         update sees the innovation variance S_w = S / w = S + e^2 / c^2
    m   += Pz e / S_w                   (41) with K_w = Pz / S_w
    P   -= c Pz Pz^T,  c = min(1 / S_w, 0.999 / q)   (42); c keeps P PSD in floating point
    learned noise (discounted inverse-gamma statistics, each innovation clipped at c^2;
         held while g > h_hold = NOISE_HOLD h, the detector weighing a change):
         a = keep a + 1/2,  b = keep b + min(x, c^2) R / 2,  R = max(R_floor, b / a)

Every array is passed in, so a call allocates nothing. Status codes:
``LEARNED`` (0), ``DOWNWEIGHTED`` (1: learned with a weight w below one half,
i.e. x > c^2), ``NONFINITE`` (2: NaN or inf in the state or label; nothing
changes), ``CHANGED`` (3: a change was detected at this sample; the posterior
was re-opened, then the sample learned).

Arguments come in named groups, as in ``kalman_numba``: plain tuples whose
field order the namedtuples below define (``HeadState``, ``HeadSettings``,
``HeadWork``, ``KBTInputs``), unpacked by name in a kernel's first lines.
Callers pass plain tuples, not the namedtuples: Numba types a tuple of arrays
in C when it is called from Python but a namedtuple in Python (about 1.5 us
more per group, measured with Numba 0.68). The fused kernels take the groups a
controller binds once (``ForceController._bind``) first and the call's state
(and label) last.
"""

from __future__ import annotations

import math
from collections import namedtuple

from controller.jit import jit, jit_inline
from controller.transformer_numba import _features_one

__all__ = ["LEARNED", "DOWNWEIGHTED", "NONFINITE", "CHANGED", "NOISE_HOLD", "HeadState", "HeadSettings", "HeadWork",
           "KBTInputs", "force_update", "force_mean", "kbt_observe", "kbt_act", "rls_observe", "rls_act"]

LEARNED, DOWNWEIGHTED, NONFINITE, CHANGED = 0, 1, 2, 3
#: the noise statistics wait while the change detector's g is above this share of its threshold h
NOISE_HOLD = 0.25

#: what an update changes, in place: mean weights m (n1,), covariance P (n1, n1) and the
#: noise state [R, a, b, g] (g: the change detector's statistic; ``ForceHead.kernel_arrays()``)
HeadState = namedtuple("HeadState", "m P noise")
#: the update's settings (``ForceHead.kernel_settings()``): learn (bool: learn the noise),
#: floor (R's floor), c2 (c^2 of the robust weight; 0: no weight), jitter, keep (the noise
#: statistics' discount per sample; 1: no forgetting), detector ([k, k kappa, nu, h, h_hold]:
#: the change detector; h = 0: off), prior ([v, a0, b0]: the prior's weight variance and noise
#: statistics) and P0 ((n1, n1): the prior covariance a change re-opens P to; v I, or a full one)
HeadSettings = namedtuple("HeadSettings", "learn floor c2 jitter keep detector prior P0")
#: the head's work arrays, (n1,) each: zt holds z~ = [z; 1] (the update's input; the fused
#: kernels write it), Pz = P z~ (``ForceHead.work_arrays()``)
HeadWork = namedtuple("HeadWork", "zt Pz")
#: KBT's input map z(s): W and ws (T_1's packed weights and work arrays, plain tuples in
#: ``transformer_numba.T1Weights`` / ``T1Work`` order), h (d,) T_1's output, h_mean (d,) and
#: h_T (d, d) the feature standardiser, s_inv (4,) the state scaling, skip (bool: append s_norm)
KBTInputs = namedtuple("KBTInputs", "W ws h h_mean h_T s_inv skip")


@jit
def _moments(m, P, zt, Pz):
    """Pz = P z~ in place; returns (mu, q) = (m^T z~, z~^T P z~)."""
    n1 = zt.shape[0]
    mu = 0.0
    q = 0.0
    for a in range(n1):
        acc = 0.0
        for b in range(n1):
            acc += P[a, b] * zt[b]
        Pz[a] = acc
        q += zt[a] * acc
        mu += m[a] * zt[a]
    return mu, q


@jit
def _reopen(P, noise, learn, prior, P0):
    """A detected change: P = P0 (the prior covariance) and, when the noise is learned, its
    statistics back to the prior's (a0, b0; R = b0 / a0, floored when the head was built)."""
    n1 = P.shape[0]
    for a in range(n1):
        for b in range(n1):
            P[a, b] = P0[a, b]
    if learn:
        noise[1] = prior[1]
        noise[2] = prior[2]
        noise[0] = prior[2] / prior[1]


@jit
def force_update(head, settings, work, y):
    """One sample into the weight posterior (m, P) and the noise state
    ``noise = [R, a, b, g]``, in place; z~ is read from ``work``'s zt.

    Groups (plain tuples in the field order of ``HeadState``, ``HeadSettings``,
    ``HeadWork``); ``y`` the label. Returns LEARNED, DOWNWEIGHTED, NONFINITE or CHANGED.
    """
    m, P, noise = head
    learn, floor, c2, jitter, keep, detector, prior, P0 = settings
    zt, Pz = work
    n1 = zt.shape[0]
    if not math.isfinite(y):
        return NONFINITE
    for a in range(n1):
        if not math.isfinite(zt[a]):
            return NONFINITE
    mu, q = _moments(m, P, zt, Pz)
    R = noise[0]
    e = y - mu
    S = q + R + jitter
    x = e * e / S
    status = LEARNED
    if detector[3] > 0.0:
        # CUSUM: g accumulates the clipped log-likelihood ratio of "variance lambda S"
        # against "S"; one label adds at most k kappa - nu < h, so no single label is a change
        g = noise[3] + min(detector[0] * x, detector[1]) - detector[2]
        if g < 0.0:
            g = 0.0
        if g > detector[3]:
            _reopen(P, noise, learn, prior, P0)
            mu, q = _moments(m, P, zt, Pz)
            R = noise[0]
            S = q + R + jitter
            x = e * e / S
            g = 0.0
            status = CHANGED
        noise[3] = g
    # robust weight w = 1 / (1 + x / c^2): the update sees S_w = S / w = S + e^2 / c^2
    Sw = S
    if c2 > 0.0:
        Sw = S + e * e / c2
        if x > c2 and status == LEARNED:
            status = DOWNWEIGHTED
    # (41) m += K_w e with K_w = Pz / S_w
    for a in range(n1):
        m[a] += Pz[a] * e / Sw
    # (42) P -= c Pz Pz^T; exact c = 1 / S_w, capped at 0.999 / q so P stays PSD when R << q
    c = 1.0 / Sw
    if q > 0.0 and c > 0.999 / q:
        c = 0.999 / q
    for a in range(n1):
        ca = c * Pz[a]
        for b in range(a + 1):
            v = P[a, b] - ca * Pz[b]
            P[a, b] = v
            P[b, a] = v
    if learn and (detector[3] <= 0.0 or noise[3] <= detector[4]):
        # inverse-gamma statistics of the noise (held while the detector holds evidence of a
        # change, so that a changed plant is not taken for noisier labels), discounted by keep per sample; each
        # innovation counts with the share R / S of its variance that is noise, e^2 R / S = x R,
        # and x clipped at c^2, so that one absurd label raises b by at most c^2 R / 2
        xc = x
        if c2 > 0.0 and xc > c2:
            xc = c2
        noise[1] = keep * noise[1] + 0.5
        noise[2] = keep * noise[2] + 0.5 * R * xc
        r = noise[2] / noise[1]
        noise[0] = r if r > floor else floor
    return status


@jit
def force_mean(m, zt):
    """mu = m^T z~."""
    acc = 0.0
    for a in range(zt.shape[0]):
        acc += m[a] * zt[a]
    return acc


@jit
def _state_inputs(state, s_inv, zt, offset):
    """zt[offset:offset+4] = s / (box / sqrt 3) (the normalised state); False if not finite."""
    for i in range(state.shape[0]):
        if not math.isfinite(state[i]):
            return False
        zt[offset + i] = state[i] * s_inv[i]
    return True


@jit_inline
def _kbt_inputs(state, inputs, zt):
    """z~ = [T (h(s) - mean); s_norm (if skip); 1] into ``zt``; False if the state is not finite.
    ``inputs``: a plain tuple in ``KBTInputs`` order."""
    W, ws, h, h_mean, h_T, s_inv, skip = inputs
    for i in range(state.shape[0]):
        if not math.isfinite(state[i]):
            return False
    _features_one(state, W, ws, h)
    d = h.shape[0]
    # h' = T (h - mean)   (feature standardisation, docs/feature-scaling.md)
    for a in range(d):
        acc = 0.0
        for b in range(d):
            acc += h_T[a, b] * (h[b] - h_mean[b])
        zt[a] = acc
    if skip:
        _state_inputs(state, s_inv, zt, d)
    zt[zt.shape[0] - 1] = 1.0
    return True


@jit
def kbt_observe(inputs, head, settings, work, state, y):
    """Features of ``state`` and one head update with label ``y``: the whole of
    ``KBTController.observe``. Groups in ``KBTInputs``, ``HeadState``,
    ``HeadSettings``, ``HeadWork`` order."""
    zt, _ = work                                   # (zt, Pz): Pz is force_update's
    if not _kbt_inputs(state, inputs, zt):
        return NONFINITE
    return force_update(head, settings, work, y)


@jit
def kbt_act(inputs, zt, m, state):
    """Predictive mean force at one state (NaN for a non-finite state); ``inputs`` in
    ``KBTInputs`` order, zt the head's z~ work array, m its mean weights."""
    if not _kbt_inputs(state, inputs, zt):
        return math.nan
    return force_mean(m, zt)


@jit
def rls_observe(s_inv, head, settings, work, state, y):
    """z~ = [s_norm; 1] and one update with label ``y``: the whole of
    ``RLSController.observe``. Groups in ``HeadState``, ``HeadSettings``, ``HeadWork`` order."""
    zt, _ = work                                   # (zt, Pz): Pz is force_update's
    if not _state_inputs(state, s_inv, zt, 0):
        return NONFINITE
    zt[zt.shape[0] - 1] = 1.0
    return force_update(head, settings, work, y)


@jit
def rls_act(s_inv, zt, m, state):
    """Predictive mean force u = m^T [s_norm; 1] (NaN for a non-finite state)."""
    if not _state_inputs(state, s_inv, zt, 0):
        return math.nan
    zt[zt.shape[0] - 1] = 1.0
    return force_mean(m, zt)
