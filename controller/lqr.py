"""LQR expert: analytic linearisation of the cart-pole at upright and
continuous-time LQR gains from python-control.

Linearising ``sim.world.cartpole.dynamics`` at ``s = 0, F = 0`` (sin th ~ th,
cos th ~ 1, th_dot^2 ~ 0), with ``M = m_c + m_p`` and
``D = l_p (4/3 - m_p / M)``::

    th_dd = (g th - F / M) / D
    x_dd  = F / M - m_p l_p th_dd / M

so ``s_dot = A s + B F`` with::

    A = [[0, 1, 0,                      0],
         [0, 0, -m_p l_p g / (M D),     0],
         [0, 0, 0,                      1],
         [0, 0, g / D,                  0]]
    B = [0, 1/M + m_p l_p / (M^2 D), 0, -1 / (M D)]^T

The design needs only the four physical parameters, so it takes any object
with ``m_c``, ``m_p``, ``l_p`` and ``g`` attributes (``PlantParams``), e.g.
``sim.world.cartpole.CartPoleParams``: the library does not import the plant, the
plant's callers pass it in (docs/architecture.md).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from controller.checks import as_float_array, check_positive

__all__ = ["DEFAULT_Q", "DEFAULT_R", "PlantParams", "linearise", "lqr_gain", "LQRController"]

#: Default state weight diag(x, x_dot, theta, theta_dot) (docs/defaults.md).
DEFAULT_Q = np.diag([1.0, 1.0, 10.0, 1.0])
#: Default force weight.
DEFAULT_R = 0.1


class PlantParams(Protocol):
    """What the LQR design reads from a cart-pole's parameters (``sim.world.cartpole.CartPoleParams`` has them)."""

    m_c: float   # cart mass (kg)
    m_p: float   # pole mass (kg)
    l_p: float   # pivot to the pole's centre of mass (m)
    g: float     # gravity (m/s^2)


_PARAM_NAMES = ("m_c", "m_p", "l_p", "g")


def _check_params(params):
    """(m_c, m_p, l_p, g) as floats, each finite and > 0; ValueError naming ``params`` otherwise."""
    missing = [n for n in _PARAM_NAMES if not hasattr(params, n)]
    if missing:
        raise ValueError(f"params: expected cart-pole parameters with attributes m_c, m_p, l_p, g "
                         f"(e.g. CartPoleParams) but found {type(params).__name__}")
    return tuple(check_positive(f"params.{n}", getattr(params, n)) for n in _PARAM_NAMES)


def linearise(params: PlantParams):
    """Continuous-time linearisation at upright.

    Parameters
    ----------
    params : PlantParams
        Any object with positive ``m_c``, ``m_p``, ``l_p``, ``g`` (e.g. ``CartPoleParams``).

    Returns
    -------
    A : ndarray, shape (4, 4)
    B : ndarray, shape (4, 1)
    """
    m_c, m_p, l_p, g = _check_params(params)
    M = m_c + m_p
    D = l_p * (4.0 / 3.0 - m_p / M)
    A = np.zeros((4, 4))
    A[0, 1] = 1.0
    A[1, 2] = -m_p * l_p * g / (M * D)
    A[2, 3] = 1.0
    A[3, 2] = g / D
    B = np.zeros((4, 1))
    B[1, 0] = 1.0 / M + m_p * l_p / (M * M * D)
    B[3, 0] = -1.0 / (M * D)
    return A, B


def lqr_gain(params: PlantParams, Q=None, R=None):
    """Continuous LQR gain ``K`` (shape (4,)) for ``u = -K s``.

    Minimises ``int s^T Q s + R u^2 dt`` on the linearisation at upright.

    Parameters
    ----------
    params : PlantParams
        Any object with positive ``m_c``, ``m_p``, ``l_p``, ``g`` (e.g. ``CartPoleParams``).
    Q : array_like, shape (4, 4), optional
        Symmetric positive semi-definite state weight; default diag(1, 1, 10, 1).
    R : float, optional
        Positive force weight; default 0.1.

    Returns
    -------
    K : ndarray, shape (4,)
    eigenvalues : ndarray, shape (4,), complex
        Closed-loop eigenvalues of ``A - B K``.
    """
    import control  # imported here: only the expert needs python-control

    A, B = linearise(params)
    Q = DEFAULT_Q if Q is None else as_float_array("Q", Q, (4, 4))
    if not np.allclose(Q, Q.T) or np.linalg.eigvalsh(0.5 * (Q + Q.T)).min() < -1e-12:
        raise ValueError("Q: expected a symmetric positive semi-definite (4, 4) matrix")
    R = DEFAULT_R if R is None else check_positive("R", R)
    K, _, E = control.lqr(A, B, Q, np.array([[R]]))
    return np.asarray(K, dtype=float).reshape(4), np.asarray(E)


class LQRController:
    """State feedback ``u = -K s`` with the controller interface of ``sim.loops.loop``.

    Parameters
    ----------
    params : PlantParams
        The system the gain is designed for (not necessarily the one it runs on).
    Q, R : see ``lqr_gain``.
    """

    name = "lqr"

    def __init__(self, params: PlantParams, Q=None, R=None):
        self.params = params
        self.K, self.eigenvalues = lqr_gain(params, Q, R)

    def act(self, states):
        """Forces for a batch of states ``(N, 4) -> (N,)`` (or ``(4,) -> ()``)."""
        # u = -K s
        return -(np.asarray(states) @ self.K)
