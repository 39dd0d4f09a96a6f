"""Memory of each method: which arrays it holds, their bytes, traced peaks.

``breakdown(controller)`` returns the controller's own ``memory_arrays()``:

* ``params``: the model it runs (transformer weights, feature standardiser,
  state scaling, the force head's change-detector settings);
* ``state``: what learning changes besides the weights it runs with -- the
  Kalman heads' means and covariances (and the force head's noise
  statistics), or Adam's moments for retraining and BLoB (plus BLoB's adapters);
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

__all__ = ["CATEGORIES", "breakdown", "bytes_of", "traced_peak", "nrt_allocations"]


def bytes_of(arrays, itemsize=8):
    """Bytes of ``arrays`` stored with ``itemsize`` bytes per element."""
    return int(sum(np.asarray(a).size for a in arrays) * itemsize)


CATEGORIES = ("params", "state", "buffers")


def breakdown(controller):
    """{category: [arrays]} of any controller with a ``memory_arrays()`` method
    (the pre-trained policy, kbt, kbt-softmax, rls, retraining, BLoB)."""
    get = getattr(controller, "memory_arrays", None)
    if not callable(get):
        raise ValueError(f"controller: no memory breakdown for {type(controller).__name__} "
                         f"(it has no memory_arrays() method)")
    parts = get()
    if not isinstance(parts, dict) or set(parts) != set(CATEGORIES):
        raise ValueError(f"controller: {type(controller).__name__}.memory_arrays() must return the keys "
                         f"{', '.join(CATEGORIES)}")
    return {k: list(parts[k]) for k in CATEGORIES}


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
