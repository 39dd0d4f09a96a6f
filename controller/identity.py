"""Which model a file belongs to: the same answer on every machine.

A state file, a family file or a trial store must say which controller it
belongs to, and a file made on one computer must load on another. Two rules
(docs/portable-files.md):

* **Identity from inputs.** ``digest`` hashes what *defines* a controller:
  arrays as they were stored or given (the transformer weights read from
  their file, the box that scales the state) and plain settings (names,
  numbers written as text). It never hashes a float computed here: the last
  bits of a least-squares fit or a feature mean depend on the BLAS kernel
  the CPU gets (two CPUs of one kind already disagree at 1e-14).
* **Computed arrays by tolerance.** Where a file records a computed array
  (the prior mean, a prior covariance), ``check_close`` compares it with
  this machine's value within ``COMPUTED_RTOL`` of the array's scale: far
  above BLAS rounding (~1e-15 relative), far below any real difference
  (another weight file moves the prior mean by 1e-3 or more).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

__all__ = ["COMPUTED_RTOL", "digest", "max_relative_difference", "check_close"]

#: computed arrays a file records must match this machine's within this share of the array's scale
COMPUTED_RTOL = 1e-9


def digest(settings, arrays=()):
    """16 hex digits of SHA-256 over ``settings`` (JSON, keys sorted) and ``arrays``
    (``(name, array)`` pairs, each hashed with its name, shape and float64 bytes).

    Pass only stored or given values: a float computed on this machine makes the
    digest machine-dependent."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for name, arr in arrays:
        a = np.ascontiguousarray(arr, dtype=np.float64)
        h.update(f"\0{name}{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def max_relative_difference(saved, current):
    """``max |saved - current| / max(1, max |current|)``; inf for another shape."""
    saved, current = np.asarray(saved, dtype=float), np.asarray(current, dtype=float)
    if saved.shape != current.shape:
        return np.inf
    scale = max(1.0, float(np.max(np.abs(current), initial=0.0)))
    return float(np.max(np.abs(saved - current), initial=0.0)) / scale


def check_close(path, what, saved, current, rtol=COMPUTED_RTOL):
    """ValueError naming ``path`` and ``what`` unless ``saved`` equals ``current``
    within ``rtol`` of the array's scale (``max_relative_difference``)."""
    diff = max_relative_difference(saved, current)
    if not diff <= rtol:
        raise ValueError(f"{path}: its {what} differs from this controller's (relative difference "
                         f"{diff:.3g} > {rtol:g}): the file belongs to another prior")
