"""Count Numba runtime allocations per call (run with NUMBA_NRT_STATS=1).

    NUMBA_NRT_STATS=1 python -m firmware_profile.alloc_probe

Prints one JSON line with allocations per call:

* ``head_update_kernel_inside``: the KBT update kernel called n times from a
  jitted loop (what firmware calling the kernel would see);
* ``head_update_kernel_from_python``: the same kernel called from Python --
  each array argument gets a small wrapper (MemInfo) per call;
* ``kbt_observe`` / ``kbt_act_one``: the full Python methods (Numba side only;
  NumPy temporaries are measured by ``memory.traced_peak``).
"""

from __future__ import annotations

import json

import numpy as np


def per_call(fn, n=200):
    from numba.core.runtime import rtsys

    fn()
    before = rtsys.get_allocation_stats().alloc
    for _ in range(n):
        fn()
    return (rtsys.get_allocation_stats().alloc - before) / n


def _repeat_kernel():
    from controller import kalman_numba as kn
    from controller.jit import jit

    @jit
    def repeat(n, M, S, h, y, C, r, jit_, zt, g, q, p, A, G, tmp, v):
        for _ in range(n):
            kn.update_l1(M, S, h, y, C, False, r, jit_, zt, g, q, p, A, G, tmp, v)

    return repeat


def main():
    from controller import kalman_numba as kn
    from controller.kbt import KBTController
    from controller.model import load_pretrained

    c = KBTController(load_pretrained())
    c.warm_up()
    head, w = c.head, c.head._ws
    L = head.layers[0]
    h = c._features_one(np.full(4, 0.01))
    y = c.tokenizer.encode(np.array([1.0]))[0]
    C = head._zero_cov
    r, jit = head.dtype.type(head.config.obs_noise), head.dtype.type(head.config.jitter)

    def kernel():
        kn.update_l1(L.M, L.S, h, y, C, False, r, jit, w.zt, w.g, w.q, w.p, w.A, w.G, w.tmp, w.v)

    from numba.core.runtime import rtsys

    repeat = _repeat_kernel()
    args = (L.M, L.S, h, y, C, r, jit, w.zt, w.g, w.q, w.p, w.A, w.G, w.tmp, w.v)
    repeat(1, *args)
    a0 = rtsys.get_allocation_stats().alloc
    repeat(0, *args)
    a1 = rtsys.get_allocation_stats().alloc
    repeat(500, *args)
    a2 = rtsys.get_allocation_stats().alloc
    inside = ((a2 - a1) - (a1 - a0)) / 500

    s = np.array([0.01, 0.0, 0.02, 0.0])
    out = {"head_update_kernel_inside": inside, "head_update_kernel_from_python": per_call(kernel), "kbt_observe": per_call(lambda: c.observe(s, 1.0)),
           "kbt_act_one": per_call(lambda: c.act(s))}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
