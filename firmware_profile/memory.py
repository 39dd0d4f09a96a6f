"""Memory of each method: which arrays it holds, their bytes, traced peaks.

``breakdown(controller)`` sorts a controller's arrays into

* ``params``: the model it runs (transformer weights, feature standardiser);
* ``state``: what learning changes besides the weights it runs with -- the
  Kalman head's means and covariances, or Adam's moments for retraining;
* ``buffers``: work arrays, the retraining memory, inference workspaces.

``bytes_of(arrays, itemsize)`` is the sum of ``size * itemsize`` (float64: 8,
float32: 4), so the figures equal the arrays' ``nbytes`` in that precision.
Transient NumPy allocations during an update (activations of the backward
pass, temporaries) are measured with ``tracemalloc``; allocations inside the
Numba kernels (its own allocator) are counted by ``alloc_probe`` in a
subprocess with ``NUMBA_NRT_STATS=1``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc

import numpy as np

__all__ = ["breakdown", "bytes_of", "traced_peak", "nrt_allocations"]


def bytes_of(arrays, itemsize=8):
    """Bytes of ``arrays`` stored with ``itemsize`` bytes per element."""
    return int(sum(np.asarray(a).size for a in arrays) * itemsize)


def _policy_arrays(policy):
    return list(policy.params.values())


def _fast_arrays(fast):
    return list(fast._ws) + [fast.h, fast.p, fast._state]


def breakdown(controller):
    """{category: [arrays]} for a KBT, retraining, BLoB or pre-trained controller."""
    from controller.kbt import KBTController
    from controller.model import TransformerPolicy
    from controller.retrain import RetrainController
    from controller.transformer_numba import FastInference

    if isinstance(controller, KBTController):
        head = controller.head
        ws = head._ws
        buffers = [controller._h64, controller._h]
        if ws is not None:
            buffers += [ws.zt, ws.g, ws.q, ws.p, ws.A, ws.G, ws.tmp, ws.v]
        if controller._fast is not None:
            buffers += _fast_arrays(controller._fast)
        return {"params": _policy_arrays(controller.policy) + [controller.h_mean, controller.h_T],
                "state": [a for L in head.layers for a in (L.M, L.S)],
                "buffers": buffers}
    if isinstance(controller, RetrainController):
        params = _policy_arrays(controller.policy)
        K = controller.tokenizer.n_bins
        memory = [np.empty((controller.capacity, 4)), np.empty((controller.capacity, K))]
        return {"params": params,
                "state": [np.empty_like(p) for p in params] * 2,        # Adam m and v
                "buffers": memory + _fast_arrays(controller._fast)}
    from controller.blob import BLoBController

    if isinstance(controller, BLoBController):
        adapters = list(controller.parameters().values())
        K = controller.tokenizer.n_bins
        memory = [np.empty((controller.capacity, 4)), np.empty((controller.capacity, K))]
        return {"params": _policy_arrays(controller.policy),
                "state": adapters + [np.empty_like(a) for a in adapters] * 2,   # (M, G, B) and Adam m, v
                "buffers": memory}
    if isinstance(controller, TransformerPolicy):
        return {"params": _policy_arrays(controller), "state": [],
                "buffers": _fast_arrays(FastInference(controller))}
    raise ValueError(f"controller: no memory breakdown for {type(controller).__name__}")


def traced_peak(fn, repeats=3):
    """Largest extra Python/NumPy memory (bytes) traced during one ``fn()``."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        worst = 0
        for _ in range(repeats):
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            fn()
            worst = max(worst, tracemalloc.get_traced_memory()[1] - base)
        return int(worst)
    finally:
        if started:
            tracemalloc.stop()


def nrt_allocations(timeout=300):
    """Allocations per call inside Numba code (``alloc_probe`` in a subprocess);
    None when the probe cannot run."""
    env = dict(os.environ, NUMBA_NRT_STATS="1")
    try:
        out = subprocess.run([sys.executable, "-m", "firmware_profile.alloc_probe"], env=env, timeout=timeout,
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError):
        return None
