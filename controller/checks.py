"""Argument checks for the public boundary.

Every public function validates its inputs with these helpers and raises a
``ValueError`` that names the argument and what was expected; the hot paths
behind them check nothing.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["as_float_array", "check_positive", "check_choice", "check_int", "check_rng", "check_field_types"]


def as_float_array(name, value, shape=None, *, finite=True, dtype=np.float64):
    """Convert ``value`` to a float array and check its shape and finiteness.

    Parameters
    ----------
    name : str
        Argument name used in error messages.
    value : array_like
        The value to convert.
    shape : tuple of (int or None) or list of such tuples, optional
        Allowed shapes; ``None`` in a tuple matches any length on that axis.
        With a list, any one of the shapes is accepted.
    finite : bool
        Reject NaN and infinite entries.
    dtype : numpy dtype
        The array's float type (default float64).

    Returns
    -------
    numpy.ndarray
    """
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a real number array but found {type(value).__name__}") from None
    if shape is not None:
        shapes = shape if isinstance(shape, list) else [shape]
        if not any(_shape_matches(arr.shape, s) for s in shapes):
            expected = " or ".join(_shape_str(s) for s in shapes)
            raise ValueError(f"{name}: expected shape {expected} but found {arr.shape}")
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite values but found NaN or inf")
    return arr


def _shape_matches(actual, expected):
    return len(actual) == len(expected) and all(e is None or a == e for a, e in zip(actual, expected))


def _shape_str(shape):
    return "(" + ", ".join("n" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def check_positive(name, value, *, allow_zero=False):
    """Return ``value`` as a float, raising unless it is finite and > 0 (>= 0 with allow_zero)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected a real number but found {type(value).__name__}")
    v = float(value)
    ok = np.isfinite(v) and (v >= 0.0 if allow_zero else v > 0.0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: expected a finite number {bound} but found {value!r}")
    return v


def check_int(name, value, *, low=None, high=None):
    """Return ``value`` as an int within [low, high] (either bound optional)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: expected an integer but found {value!r}")
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name}: expected an integer in [{lo}, {hi}] but found {v}")
    return v


def check_choice(name, value, choices):
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))} but found {value!r}")
    return value


def check_rng(seed_or_rng):
    """A ``numpy.random.Generator`` from a seed (int) or an existing generator."""
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    return np.random.default_rng(check_int("seed", seed_or_rng, low=0))


#: annotation name -> (accepted types, what the message calls them); bool is never an int or a real here
_FIELD_TYPES = {
    "int": ((numbers.Integral,), "an integer"),
    "float": ((numbers.Real,), "a real number"),
    "str": ((str,), "a string"),
    "bool": ((bool, np.bool_), "True or False"),
    "tuple": ((tuple, list, numbers.Real), "a number or a tuple of numbers"),
    "dict": ((dict,), "a dict"),
    "None": ((type(None),), "None"),
}


def check_field_types(obj):
    """TypeError unless every field of the dataclass ``obj`` has the type its
    annotation names (``int``, ``float``, ``str``, ``bool``, ``tuple``, ``dict``,
    unions with ``None``); the message names the field and the expected type."""
    import dataclasses

    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        kinds = [k.strip() for k in str(f.type).split("|")]
        ok = False
        for kind in kinds:
            types, _ = _FIELD_TYPES[kind]
            if isinstance(value, bool) and kind in ("int", "float", "tuple"):
                continue
            ok = ok or isinstance(value, types)
        if not ok:
            expected = " or ".join(_FIELD_TYPES[k][1] for k in kinds)
            raise TypeError(f"{f.name}: expected {expected} but found {type(value).__name__} {value!r}")
