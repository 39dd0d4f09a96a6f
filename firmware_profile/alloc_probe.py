"""Count Numba runtime allocations per call (run with NUMBA_NRT_STATS=1).

    NUMBA_NRT_STATS=1 python -m firmware_profile.alloc_probe

Prints one JSON line with allocations per call:

* ``kbt_observe_kernel_inside`` / ``kbt_act_kernel_inside``: the default KBT
  controller's fused kernels (``force_numba.kbt_observe`` / ``kbt_act``:
  features, standardisation, force head) called n times from a jitted loop --
  what firmware calling the kernels would see;
* ``kbt_observe_kernel_from_python``: ``kbt_observe`` called from Python --
  each array argument gets a small wrapper (MemInfo) per call;
* ``kbt_observe`` / ``kbt_act``: ``KBTController.observe`` / ``act`` from
  Python (Numba side only; NumPy temporaries are measured by ``memory.traced_peak``);
* ``kbt_softmax_*``: the same for the paper's softmax head
  (``SoftmaxKBTController``): its update kernel ``kalman_numba.update_l1``
  inside a jitted loop and from Python, and its ``observe`` / ``act``.

Only public attributes of the controllers are used; the kernels get fresh
work arrays of the right shapes.
"""

from __future__ import annotations

import json

import numpy as np

from controller import force_numba as fn
from controller import kalman_numba as kn
from controller.jit import jit


@jit
def _repeat_kbt_observe(n, state, y, W, ws, h, h_mean, h_T, s_inv, skip, zt, m, P, noise, learn, floor, gate,
                        jitter, Pz):
    for _ in range(n):
        fn.kbt_observe(state, y, W, ws, h, h_mean, h_T, s_inv, skip, zt, m, P, noise, learn, floor, gate, jitter, Pz)


@jit
def _repeat_kbt_act(n, state, W, ws, h, h_mean, h_T, s_inv, skip, zt, m):
    acc = 0.0
    for _ in range(n):
        acc += fn.kbt_act(state, W, ws, h, h_mean, h_T, s_inv, skip, zt, m)
    return acc


@jit
def _repeat_update_l1(n, M, S, h, y, C, r, jit_, zt, g, q, p, A, G, tmp, v):
    for _ in range(n):
        kn.update_l1(M, S, h, y, C, False, r, jit_, zt, g, q, p, A, G, tmp, v)


def _allocs():
    from numba.core.runtime import rtsys

    return rtsys.get_allocation_stats().alloc


def per_call(fn_, n=200):
    """Allocations per call of ``fn_()`` from Python (after one warm-up call)."""
    fn_()
    before = _allocs()
    for _ in range(n):
        fn_()
    return (_allocs() - before) / n


def inside(repeat, args, n=500):
    """Allocations per iteration of ``repeat(n, *args)``: the jitted loop's count
    minus that of ``repeat(0, *args)`` (the argument wrappers of the one call from Python)."""
    repeat(1, *args)
    a0 = _allocs()
    repeat(0, *args)
    a1 = _allocs()
    repeat(n, *args)
    a2 = _allocs()
    return ((a2 - a1) - (a1 - a0)) / n


def kbt_counts(policy, s):
    from controller.kbt import KBTController
    from controller.transformer_numba import FastInference

    c = KBTController(policy)
    c.warm_up()
    f = FastInference(policy)
    m, P, noise = (a.copy() for a in c.head.kernel_arrays())
    zt, Pz = np.zeros(c.head.d_in + 1), np.zeros(c.head.d_in + 1)
    inputs = (f.weights, f.workspace, f.h, c.h_mean, c.h_T, c.s_inv, c.skip, zt)
    y = float(c.act(s)) + 0.1
    tail = (m, P, noise, *c.head.kernel_settings(), Pz)
    return {"kbt_observe_kernel_inside": inside(_repeat_kbt_observe, (s, y, *inputs, *tail)),
            "kbt_act_kernel_inside": inside(_repeat_kbt_act, (s, *inputs, m)),
            "kbt_observe_kernel_from_python": per_call(lambda: fn.kbt_observe(s, y, *inputs, *tail)),
            "kbt_observe": per_call(lambda: c.observe(s, y)),
            "kbt_act": per_call(lambda: c.act(s))}


def softmax_counts(policy, s):
    from controller.kbt_softmax import SoftmaxKBTController

    c = SoftmaxKBTController(policy)
    c.warm_up()
    dt = np.dtype(c.head_config.dtype)
    layer = c.head.layers[0]
    M, S = layer.M.copy(), layer.S.copy()
    n1, K = M.shape
    w = kn.Workspace(n1, K, dt)
    h = c.features(s[None, :])[0].astype(dt)
    y = c.tokenizer.encode(np.array([1.0]))[0].astype(dt)
    C = np.zeros((K, K), dt)
    r, jit_ = dt.type(c.head_config.obs_noise), dt.type(c.head_config.jitter)
    args = (M, S, h, y, C, r, jit_, w.zt, w.g, w.q, w.p, w.A, w.G, w.tmp, w.v)
    return {"kbt_softmax_update_kernel_inside": inside(_repeat_update_l1, args),
            "kbt_softmax_update_kernel_from_python":
                per_call(lambda: kn.update_l1(M, S, h, y, C, False, r, jit_, *args[7:])),
            "kbt_softmax_observe": per_call(lambda: c.observe(s, 1.0)),
            "kbt_softmax_act": per_call(lambda: c.act(s))}


def main():
    from controller.model import load_pretrained

    pol = load_pretrained()
    s = np.array([0.01, 0.0, 0.02, 0.0])
    out = kbt_counts(pol, s)
    out.update(softmax_counts(pol, s))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
