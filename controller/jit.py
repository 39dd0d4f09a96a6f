"""The one Numba decorator every kernel uses (fixed options).

``cache=True`` keeps compiled kernels on disk between runs; ``fastmath`` stays
off so the kernels agree with their NumPy references to rounding error.
Kernels take arrays and floats only; validation happens in the Python API.
``jit_inline`` is the same with Numba-level inlining into every caller, for small
helpers whose result is a large tuple of views (inlined, the unused ones cost nothing).
"""

import numba

__all__ = ["jit", "jit_inline"]

jit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")

jit_inline = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy", inline="always")
