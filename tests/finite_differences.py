"""The directional finite-difference check the gradient tests share."""

import numpy as np

__all__ = ["check_directions"]


def check_directions(loss, arrays, rng, h=1e-5, rtol=1e-6, atol=1e-9, lower=()):
    """For each (name, array, analytic gradient) in ``arrays``: along two random directions v,
    the central difference (loss(x + h v) - loss(x - h v)) / 2h equals <gradient, v> within
    ``rtol`` x the larger plus ``atol``. ``loss()`` reads the arrays, which are moved in place
    and put back; arrays named in ``lower`` are lower-triangular parameters (v = tril(v))."""
    for name, arr, g in arrays:
        for trial in range(2):
            v = rng.normal(size=arr.shape)
            if name in lower:
                v = np.tril(v)
            arr += h * v
            lp = loss()
            arr -= 2 * h * v
            lm = loss()
            arr += h * v
            fd = (lp - lm) / (2 * h)
            an = float(np.sum(g * v))
            assert abs(fd - an) <= rtol * max(abs(fd), abs(an)) + atol, \
                f"{name} direction {trial}: fd {fd} analytic {an}"
