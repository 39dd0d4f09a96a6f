"""Numba kernel of one period of the batched success evaluation's plants.

``eval_step`` does for the live episodes of ``sim.loops.loop.evaluate_success``
what its NumPy reference does with ``Task.step``, ``Task.failed`` and
``Task.upright``: saturate each force, integrate one period (Euler or RK4, the
equations of ``sim.world.cartpole.dynamics``), wrap the angle, and end the
episodes that failed. Every float operation is the reference's, in its order
(no fused multiply-add: ``controller.jit`` leaves ``fastmath`` off), and
``math.sin`` / ``math.cos`` are the C library's, as NumPy's are on float64
here: the kernel's states are the reference's to the bit, which
``tests/test_plant_numba.py`` checks (docs/fast-evaluation.md). It saves the
NumPy calls on arrays of a hundred rows, about 200 us per period on 2 cores.
"""

from __future__ import annotations

import math

import numpy as np

from controller.jit import jit
from sim.world.cartpole import INTEGRATORS, THETA_THRESHOLD

__all__ = ["plant_args", "eval_step"]


def plant_args(task):
    """The task's plant and episode rules as the flat tuple ``eval_step`` takes:
    ``(m_c, m_p, l_p, g, tau, u_max, rk4, wrap, x_limit, theta_limit, upright)``;
    ``theta_limit`` is inf when the task has none."""
    p = task.params
    theta_limit = math.inf if task.theta_limit is None else float(task.theta_limit)
    return (float(p.m_c), float(p.m_p), float(p.l_p), float(p.g), float(p.tau), float(p.u_max),
            INTEGRATORS.index(p.integrator) == 1, bool(task.wrap), float(task.x_limit), theta_limit,
            float(THETA_THRESHOLD))


@jit
def _dynamics(m_c, m_p, l_p, g, x_dot, theta, theta_dot, force):
    """``cartpole.dynamics`` of one state, each operation in the reference's order."""
    sin = math.sin(theta)
    cos = math.cos(theta)
    M = m_c + m_p
    mpl = m_p * l_p
    temp = (force + mpl * (theta_dot * theta_dot) * sin) / M
    th_dd = (g * sin - cos * temp) / (l_p * (4.0 / 3.0 - m_p * (cos * cos) / M))
    x_dd = temp - mpl * th_dd * cos / M
    return x_dot, x_dd, theta_dot, th_dd


@jit
def _advance(m_c, m_p, l_p, g, h, rk4, x, x_dot, theta, theta_dot, f):
    """``cartpole.advance`` of one state: Euler (every component with the old
    derivative) or classical RK4 with the force held."""
    a0, a1, a2, a3 = _dynamics(m_c, m_p, l_p, g, x_dot, theta, theta_dot, f)
    if not rk4:
        return x + h * a0, x_dot + h * a1, theta + h * a2, theta_dot + h * a3
    c = 0.5 * h
    b0, b1, b2, b3 = _dynamics(m_c, m_p, l_p, g, x_dot + c * a1, theta + c * a2, theta_dot + c * a3, f)
    c0, c1, c2, c3 = _dynamics(m_c, m_p, l_p, g, x_dot + c * b1, theta + c * b2, theta_dot + c * b3, f)
    d0, d1, d2, d3 = _dynamics(m_c, m_p, l_p, g, x_dot + h * c1, theta + h * c2, theta_dot + h * c3, f)
    w = h / 6.0
    return (x + w * (a0 + 2.0 * b0 + 2.0 * c0 + d0), x_dot + w * (a1 + 2.0 * b1 + 2.0 * c1 + d1),
            theta + w * (a2 + 2.0 * b2 + 2.0 * c2 + d2), theta_dot + w * (a3 + 2.0 * b3 + 2.0 * c3 + d3))


@jit
def _wrap(theta):
    """``task.wrap_angle``: pi - (pi - theta) mod 2 pi, NumPy's float remainder (sign of the divisor)."""
    two_pi = 2.0 * np.pi
    m = np.fmod(np.pi - theta, two_pi)
    if m != 0.0:
        if m < 0.0:
            m += two_pi
    else:
        m = 0.0
    return np.pi - m


@jit
def eval_step(state, idx, force, args, step, hold_from, lengths, alive):
    """One period of the live episodes ``idx`` (in place); returns how many forces saturated.

    Parameters
    ----------
    state : ndarray (n, 4)
        Every episode's state; rows ``idx`` advance.
    idx : ndarray of int64
        The live episodes.
    force : ndarray (len(idx),)
        The controller's force per live episode.
    args : tuple
        ``plant_args(task)``.
    step : int
        The period's index k (0-based); an episode that fails gets ``lengths = k + 1``.
    hold_from : int
        From this period on, a pole that is not upright fails the episode.
    lengths, alive : ndarray
        Updated for the episodes that failed (non-finite or out of bounds state,
        non-finite force, or not upright during the hold).
    """
    m_c, m_p, l_p, g, tau, u_max, rk4, wrap, x_limit, theta_limit, upright = args
    saturated = 0
    for j in range(idx.size):
        i = idx[j]
        f = force[j]
        if f != f:                      # np.clip keeps a NaN
            a = f
        elif f > u_max:
            a = u_max
        elif f < -u_max:
            a = -u_max
        else:
            a = f
        if a != f:                      # NaN too, as the reference's applied != force
            saturated += 1
        x, x_dot, theta, theta_dot = _advance(m_c, m_p, l_p, g, tau, rk4, state[i, 0], state[i, 1],
                                              state[i, 2], state[i, 3], a)
        if wrap:
            theta = _wrap(theta)
        state[i, 0], state[i, 1], state[i, 2], state[i, 3] = x, x_dot, theta, theta_dot
        finite = math.isfinite(x) and math.isfinite(x_dot) and math.isfinite(theta) and math.isfinite(theta_dot)
        failed = abs(x) > x_limit or not finite or abs(theta) > theta_limit or not math.isfinite(f)
        if step >= hold_from and not abs(theta) <= upright:
            failed = True
        if failed:
            lengths[i] = step + 1
            alive[i] = False
    return saturated
