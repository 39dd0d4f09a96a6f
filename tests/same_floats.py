"""Float comparisons the kernel tests share: to the bit where the Numba kernel and NumPy
call the same math library, to rounding where they do not."""

import math

import numpy as np

__all__ = ["LIBM", "assert_same_floats"]


def _numpy_calls_libm():
    """Whether this NumPy's float64 exp, sin and cos are the C library's (what a Numba
    kernel's math.exp / math.sin / math.cos call); an AVX-512 build has its own."""
    x = np.linspace(-40.0, 40.0, 20001)
    return all(np.array_equal(f(x), np.array([g(v) for v in x]))
               for f, g in ((np.exp, math.exp), (np.sin, math.sin), (np.cos, math.cos)))


LIBM = _numpy_calls_libm()


def assert_same_floats(a, b):
    """Equal to the bit; to rounding only where NumPy's exp/sin/cos are not the C library's."""
    a, b = np.asarray(a), np.asarray(b)
    if LIBM:
        assert a.tobytes() == b.tobytes()
    else:
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
