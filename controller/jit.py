"""The one Numba decorator every kernel uses (fixed options).

``cache=True`` keeps compiled kernels on disk between runs; ``fastmath`` stays
off so the kernels agree with their NumPy references to rounding error.
Kernels take arrays and floats only; validation happens in the Python API.
"""

import numba

__all__ = ["jit"]

jit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
