"""Count Numba runtime allocations per call (run with NUMBA_NRT_STATS=1).

    NUMBA_NRT_STATS=1 python -m firmware_profile.alloc_probe

Prints one JSON line with allocations per call:

* ``kbt_observe_kernel_inside`` / ``kbt_act_kernel_inside``: the default KBT
  controller's fused kernels (``kbt_packed.kbt_observe_packed`` / ``kbt_act_packed``:
  features, standardisation, force head, on the two packed buffers) called n
  times from a jitted loop -- what firmware calling the kernels would see;
* ``kbt_observe_kernel_from_python``: ``kbt_observe_packed`` called from Python --
  each array argument gets a small wrapper (MemInfo) per call: two buffers, the
  state comes as four floats;
* ``kbt_observe`` / ``kbt_act``: ``KBTController.observe`` / ``act`` from
  Python (Numba side only; NumPy temporaries are measured by ``memory.traced_peak``);
* ``kbt_softmax_*``: the same for the paper's softmax head
  (``SoftmaxKBTController``): its update kernel ``kalman_numba.update_one_layer``
  inside a jitted loop and from Python, and its ``observe`` / ``act``.

The kernels get fresh work arrays of the right shapes (kbt: ``kbt_packed.pack``
of the controller's own weights and head).
"""

from __future__ import annotations

import json

import numpy as np

from controller import kalman_numba as kn
from controller import kbt_packed as kp
from controller.jit import jit


@jit
def _repeat_kbt_observe(n, A, B, s0, s1, s2, s3, y):
    for i in range(n):
        # a new state every call (the input map runs), as kbt_observe on a stream
        kp.kbt_observe_packed(A, B, s0 + 1e-9 * i, s1, s2, s3, y)


@jit
def _repeat_kbt_act(n, A, B, s0, s1, s2, s3):
    acc = 0.0
    for i in range(n):
        acc += kp.kbt_act_packed(A, B, s0 + 1e-9 * i, s1, s2, s3)
    return acc


@jit
def _repeat_update_one_layer(n, post, sample, noise, work):
    for _ in range(n):
        kn.update_one_layer(post, sample, noise, work)


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

    c = KBTController(policy)
    c.warm_up()
    head = c.head
    m, P, noise = head.kernel_arrays()
    # fresh buffers of the same layout (the controller's own stay untouched)
    pk = kp.pack(c._fast.weights, c.h_mean, c.h_T, c.s_inv, c.skip, head.kernel_settings(), noise, m, P,
                 head.core.dtype)
    y = float(c.act(s)) + 0.1
    sv = tuple(float(v) for v in s)
    S = s + 1e-6 * np.arange(1, 402)[:, None]         # a new state every call: the input map runs
    it = iter(range(10**9))
    return {"kbt_observe_kernel_inside": inside(_repeat_kbt_observe, (pk.A, pk.B, *sv, y)),
            "kbt_act_kernel_inside": inside(_repeat_kbt_act, (pk.A, pk.B, *sv)),
            "kbt_observe_kernel_from_python": per_call(lambda: kp.kbt_observe_packed(pk.A, pk.B, *sv, y)),
            "kbt_observe": per_call(lambda: c.observe(S[next(it) % len(S)], y)),
            "kbt_act": per_call(lambda: c.act(S[next(it) % len(S)]))}


def softmax_counts(policy, s):
    from controller.kbt_softmax import SoftmaxKBTController

    c = SoftmaxKBTController(policy)
    c.warm_up()
    dt = np.dtype(c.head_config.dtype)
    layer = c.head.layers[0]
    M, S = layer.M.copy(), layer.S.copy()
    n1, K = M.shape
    h = c.features(s[None, :])[0].astype(dt)
    y = c.tokenizer.encode(np.array([1.0]))[0].astype(dt)
    C = np.zeros((K, K), dt)
    # Posterior, Sample, Noise, Work
    groups = ((M, S), (h, y, C, False), (dt.type(c.head_config.obs_noise), dt.type(c.head_config.jitter)),
              tuple(kn.new_work(n1, K, dt)))
    return {"kbt_softmax_update_kernel_inside": inside(_repeat_update_one_layer, groups),
            "kbt_softmax_update_kernel_from_python": per_call(lambda: kn.update_one_layer(*groups)),
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
