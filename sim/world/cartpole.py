"""Nonlinear cart-pole with continuous force (Gymnasium's equations).

State ``s = [x, x_dot, theta, theta_dot]``: cart position (m), cart velocity
(m/s), pole angle from upright (rad, positive when the pole leans towards +x)
and its rate (rad/s). The pole is a uniform rod; ``l_p`` is the distance from
the pivot to its centre of mass (Gymnasium's ``length``, *half* the pole).

With ``M = m_c + m_p`` and force ``F`` on the cart (docs/defaults.md)::

    temp    = (F + m_p l_p theta_dot^2 sin(theta)) / M
    th_dd   = (g sin(theta) - cos(theta) temp) / (l_p (4/3 - m_p cos^2(theta) / M))
    x_dd    = temp - m_p l_p th_dd cos(theta) / M

``m_p l_p`` is Gymnasium's ``polemass_length``: the pole's mass times the
distance to its centre of mass, not the full pole length.

Integrators: ``euler`` is Gymnasium's explicit Euler (positions advance with
the *old* velocities), ``rk4`` is classical Runge-Kutta with the force held
over the step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from controller.checks import as_float_array, check_choice, check_positive, check_rng

__all__ = [
    "CartPoleParams", "SOURCE", "TARGET", "SYSTEMS", "INTEGRATORS",
    "X_THRESHOLD", "THETA_THRESHOLD", "EPISODE_STEPS", "RESET_HALF_WIDTH",
    "dynamics", "advance", "saturate", "step", "terminated", "reset",
]

INTEGRATORS = ("euler", "rk4")
#: Gymnasium's termination bounds: |x| > 2.4 m or |theta| > 12 degrees.
X_THRESHOLD = 2.4
THETA_THRESHOLD = 12 * 2 * math.pi / 360
#: Gymnasium's CartPole-v1 episode length; surviving it counts as success.
EPISODE_STEPS = 500
#: Gymnasium's reset distribution U(-0.05, 0.05)^4.
RESET_HALF_WIDTH = 0.05


@dataclass(frozen=True)
class CartPoleParams:
    """Physical and numerical parameters of the cart-pole (validated on creation).

    Attributes
    ----------
    m_c, m_p : float
        Cart and pole mass (kg), > 0.
    l_p : float
        Pivot to the pole's centre of mass (m), > 0.
    g : float
        Gravity (m/s^2), > 0.
    tau : float
        Control period and integration step (s), > 0.
    integrator : {'euler', 'rk4'}
    u_max : float
        Actuator saturation (N): forces are clipped to [-u_max, u_max].
    """

    m_c: float = 1.0
    m_p: float = 0.1
    l_p: float = 0.5
    g: float = 9.8
    tau: float = 0.02
    integrator: str = "euler"
    u_max: float = 30.0

    def __post_init__(self):
        for name in ("m_c", "m_p", "l_p", "g", "tau", "u_max"):
            object.__setattr__(self, name, check_positive(name, getattr(self, name)))
        check_choice("integrator", self.integrator, INTEGRATORS)

    @property
    def total_mass(self) -> float:
        return self.m_c + self.m_p

    @property
    def polemass_length(self) -> float:
        """m_p * l_p (Gymnasium's name)."""
        return self.m_p * self.l_p

    def with_(self, **changes) -> "CartPoleParams":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


#: Pre-training system: Gymnasium's defaults.
SOURCE = CartPoleParams(m_c=1.0, m_p=0.1, l_p=0.5)
#: The changed plant the controller must adapt to.
TARGET = CartPoleParams(m_c=1.0, m_p=1.0, l_p=5.0)
SYSTEMS = {"source": SOURCE, "target": TARGET}


def dynamics(p: CartPoleParams, state, force):
    """Time derivative of the state; pure NumPy, no checks.

    ``state`` is ``[..., 4]``, ``force`` broadcasts against ``state[..., 0]``.
    """
    x_dot, theta, theta_dot = state[..., 1], state[..., 2], state[..., 3]
    sin, cos = np.sin(theta), np.cos(theta)
    M = p.m_c + p.m_p
    temp = (force + p.m_p * p.l_p * theta_dot**2 * sin) / M
    th_dd = (p.g * sin - cos * temp) / (p.l_p * (4.0 / 3.0 - p.m_p * cos**2 / M))
    x_dd = temp - p.m_p * p.l_p * th_dd * cos / M
    return np.stack([x_dot, x_dd, theta_dot, th_dd], axis=-1)


def advance(p: CartPoleParams, state, force):
    """One integration step of length ``tau`` with the force held; no checks, no saturation."""
    if p.integrator == "euler":
        # Gymnasium: x += tau x_dot; x_dot += tau x_dd; theta += tau theta_dot; ...
        # i.e. every component advances with the derivative at the old state.
        return state + p.tau * dynamics(p, state, force)
    h = p.tau
    k1 = dynamics(p, state, force)
    k2 = dynamics(p, state + 0.5 * h * k1, force)
    k3 = dynamics(p, state + 0.5 * h * k2, force)
    k4 = dynamics(p, state + h * k3, force)
    return state + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def saturate(p: CartPoleParams, force):
    """Clip to the actuator range: returns ``(applied, saturated)`` where
    ``saturated`` is True where the requested force was outside [-u_max, u_max]."""
    applied = np.clip(force, -p.u_max, p.u_max)
    return applied, applied != force


def _check_state_force(state, force):
    s = as_float_array("state", state, [(4,), (None, 4)])
    shapes = [()] if s.ndim == 1 else [(), (s.shape[0],)]
    return s, as_float_array("force", force, shapes)


def step(p: CartPoleParams, state, force):
    """Advance one control period: saturate the force, then integrate.

    Parameters
    ----------
    p : CartPoleParams
    state : array_like, shape (4,) or (N, 4)
    force : array_like, shape () for one state, () or (N,) for a batch

    Returns
    -------
    next_state : ndarray, same shape as ``state``
    saturated : bool or ndarray of bool
        Whether the requested force was clipped at ``u_max``.
    """
    if not isinstance(p, CartPoleParams):
        raise ValueError(f"params: expected CartPoleParams but found {type(p).__name__}")
    s, f = _check_state_force(state, force)
    applied, saturated = saturate(p, f)
    return advance(p, s, applied), saturated


def terminated(state):
    """Gymnasium's failure test: |x| > 2.4 or |theta| > 12 deg (per row of a batch)."""
    state = np.asarray(state)
    return (np.abs(state[..., 0]) > X_THRESHOLD) | (np.abs(state[..., 2]) > THETA_THRESHOLD)


def reset(rng, n=None):
    """Initial states from U(-0.05, 0.05)^4 (Gymnasium's reset).

    ``rng`` is a ``numpy.random.Generator`` or an integer seed; ``n`` gives a
    batch ``(n, 4)``, ``None`` a single state ``(4,)``.
    """
    rng = check_rng(rng)
    size = (4,) if n is None else (n, 4)
    return rng.uniform(-RESET_HALF_WIDTH, RESET_HALF_WIDTH, size=size)
