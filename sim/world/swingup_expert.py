"""The swing-up expert: energy pumping with cart regulation, handing over to LQR near upright.

The expert is designed for one plant (``design``) and, like the balance
task's LQR expert, is the controller whose forces label the data the learners
imitate or adapt to (docs/swingup.md). Away from upright it commands a cart
acceleration that pumps the pole's energy towards the upright energy while
pulling the cart back to the track centre, and turns that acceleration into a
force with the design plant's own equations (partial feedback linearisation);
near upright it hands over to the LQR gain of the design plant.

Switching rule, with ``theta`` wrapped to (-pi, pi] (0 upright)::

    |theta| < theta_lqr and |theta_dot| < theta_dot_lqr:   F = -K s          (LQR, Q = diag(1,1,10,1), R = 0.1)
    otherwise:                                              F = F_pfl(s, a)   (energy pumping)

with the pole's energy about the pivot (0 upright, -2 m_p g l_p hanging still)::

    E = 1/2 J theta_dot^2 + m_p g l_p (cos(theta) - 1),     J = 4/3 m_p l_p^2

and the desired cart acceleration::

    a = k_e a_E (E / (m_p g l_p)) sign(theta_dot cos(theta)) - k_x x - k_v x_dot

(``a_E`` = 10 m/s^2 sets the units; the pivot's acceleration ``a`` changes the
energy at ``dE/dt = -m_p l_p a theta_dot cos(theta)``, so with E < 0 the
first term always pumps energy in and with E > 0 it takes it out). The force
that gives the cart acceleration ``a`` on the design plant: ``x_dd`` is affine
in ``F``, so ``F = (a - x_dd(s, 0)) / (x_dd(s, 1) - x_dd(s, 0))``.

The forces are not clipped: the plant saturates at ``u_max`` (``Task.step``).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from controller.lqr import DEFAULT_Q, DEFAULT_R, LQRController
from sim.world.cartpole import CartPoleParams, dynamics

__all__ = ["SwingupExpert", "pole_energy", "expert_name"]

#: acceleration scale a_E (m/s^2) of the energy term
ACCEL_SCALE = 10.0


def pole_energy(params: CartPoleParams, states):
    """The pole's energy E (J) about the pivot, 0 upright at rest, per state ``(..., 4)``."""
    s = np.asarray(states, dtype=float)
    J = 4.0 / 3.0 * params.m_p * params.l_p**2
    # E = 1/2 J theta_dot^2 + m_p g l_p (cos(theta) - 1)
    return 0.5 * J * s[..., 3] ** 2 + params.m_p * params.g * params.l_p * (np.cos(s[..., 2]) - 1.0)


def expert_name(params: CartPoleParams) -> str:
    """'swing-up expert for (m_c=1, m_p=0.1, l_p=0.5)': the expert designed for ``params``."""
    return f"swing-up expert for (m_c={params.m_c:g}, m_p={params.m_p:g}, l_p={params.l_p:g})"


def _real(name, value, low, high, *, low_open=False):
    """``value`` as a float in [low, high] (or (low, high]); TypeError for a non-number, ValueError out of range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number but found {type(value).__name__}")
    v = float(value)
    inside = math.isfinite(v) and (v > low if low_open else v >= low) and v <= high
    if not inside:
        raise ValueError(f"{name}: expected a number in {'(' if low_open else '['}{low:g}, {high:g}] but found {value!r}")
    return v


class SwingupExpert:
    """Energy-pumping swing-up with LQR hand-over, designed for the plant ``design``.

    Parameters
    ----------
    design : CartPoleParams
        The plant whose equations (PFL force) and linearisation (LQR gain) the expert uses.
    k_e : float
        Energy-pumping gain, in (0, 10]; 0.5 by default (k_e >= 1 fails on most plants, docs/swingup.md).
    k_x, k_v : float
        Cart position (1/s^2) and velocity (1/s) regulation gains, in [0, 100].
    theta_lqr : float
        Hand-over half-width in |theta| (rad), in (0, pi/2).
    theta_dot_lqr : float
        Hand-over half-width in |theta_dot| (rad/s), in (0, 100].
    Q, R : LQR weights (``controller.lqr.lqr_gain``), default diag(1, 1, 10, 1) and 0.1.

    ``act(states)`` maps ``(N, 4) -> (N,)`` and ``(4,) -> float``; deterministic, no clipping.
    """

    def __init__(self, design: CartPoleParams, k_e=0.5, *, k_x=1.0, k_v=1.5, theta_lqr=0.35,
                 theta_dot_lqr=3.0, Q=None, R=None):
        if not isinstance(design, CartPoleParams):
            raise TypeError(f"design: expected CartPoleParams but found {type(design).__name__}")
        self.design = design
        self.k_e = _real("k_e", k_e, 0.0, 10.0, low_open=True)
        self.k_x = _real("k_x", k_x, 0.0, 100.0)
        self.k_v = _real("k_v", k_v, 0.0, 100.0)
        self.theta_lqr = _real("theta_lqr", theta_lqr, 0.0, math.pi / 2, low_open=True)
        if self.theta_lqr >= math.pi / 2:
            raise ValueError(f"theta_lqr: expected a number in (0, pi/2) but found {theta_lqr!r}")
        self.theta_dot_lqr = _real("theta_dot_lqr", theta_dot_lqr, 0.0, 100.0, low_open=True)
        self.lqr = LQRController(design, DEFAULT_Q if Q is None else Q, DEFAULT_R if R is None else R)
        self.K = self.lqr.K
        self.name = expert_name(design)

    def __repr__(self):
        return f"SwingupExpert({self.name}, k_e={self.k_e:g})"

    # ------------------------------------------------------------ pieces
    def energy(self, states):
        """E (J) of the design plant's pole, per state."""
        return pole_energy(self.design, states)

    def desired_acceleration(self, states):
        """The energy-pumping cart acceleration a (m/s^2), per state ``(N, 4)``."""
        s = np.asarray(states, dtype=float)
        p = self.design
        theta = _wrap(s[..., 2])
        E = self.energy(s)
        # a = k_e a_E (E / (m_p g l_p)) sign(theta_dot cos(theta)) - k_x x - k_v x_dot
        return (self.k_e * ACCEL_SCALE * E / (p.m_p * p.g * p.l_p) * np.sign(s[..., 3] * np.cos(theta))
                - self.k_x * s[..., 0] - self.k_v * s[..., 1])

    def pfl_force(self, states, accel):
        """The force giving cart acceleration ``accel`` on the design plant (partial feedback linearisation)."""
        s = np.asarray(states, dtype=float)
        # x_dd is affine in F: x_dd(F) = x_dd(0) + F (x_dd(1) - x_dd(0))
        xdd0 = dynamics(self.design, s, 0.0)[..., 1]
        xdd1 = dynamics(self.design, s, 1.0)[..., 1]
        # F = (a - x_dd(0)) / (x_dd(1) - x_dd(0))
        return (accel - xdd0) / (xdd1 - xdd0)

    def in_lqr_region(self, states):
        """Where the LQR takes over: |theta| < theta_lqr and |theta_dot| < theta_dot_lqr."""
        s = np.asarray(states, dtype=float)
        return (np.abs(_wrap(s[..., 2])) < self.theta_lqr) & (np.abs(s[..., 3]) < self.theta_dot_lqr)

    # ------------------------------------------------------------ controller
    def act(self, states):
        """Forces (N) for states ``(N, 4)``, or one float for a state ``(4,)``."""
        s = np.asarray(states, dtype=float)
        single = s.ndim == 1
        s = np.atleast_2d(s)
        local = s.copy()
        local[:, 2] = _wrap(s[:, 2])
        # F = -K s near upright (theta wrapped), the energy-pumping PFL force elsewhere
        force = np.where(self.in_lqr_region(local), -(local @ self.K),
                         self.pfl_force(local, self.desired_acceleration(local)))
        return float(force[0]) if single else force


def _wrap(theta):
    # theta to (-pi, pi], as sim.world.task.wrap_angle
    return np.pi - np.mod(np.pi - np.asarray(theta, dtype=float), 2.0 * np.pi)
