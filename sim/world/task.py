"""Tasks: the episode rules on top of the plant.

A ``Task`` is a plant (``CartPoleParams``) plus the rules of an episode: how
it starts, how long it lasts, when it fails and when it counts as a success.
Two are defined (docs/swingup.md for the second):

* ``balance`` (the paper's): the pole starts near upright, the episode fails
  when |x| > 2.4 m or |theta| > 12 deg and succeeds when it survives 500 steps
  (Gymnasium's CartPole-v1, Euler at 50 Hz);
* ``swingup``: the pole starts hanging down (theta = pi +- 0.1), theta is
  wrapped to (-pi, pi], the episode fails only when the cart leaves the track
  (|x| > 3 m) and succeeds when the pole is upright (|theta| <= 12 deg) for
  the whole final 3 s of a 12 s episode (RK4 at 50 Hz, |F| <= 30 N).

``Task.step`` (saturate, integrate, wrap) and ``Task.failed`` are the only
place the episode rules live: the deployed loop, the learning trials, the
view and the batched success evaluation (``sim.loops.loop.evaluate_success``) all
call them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from controller.checks import check_choice, check_int, check_positive, check_rng
from controller.features import wrap_angle
from sim.world import cartpole
from sim.world.cartpole import SOURCE, SYSTEMS, CartPoleParams

__all__ = ["Task", "Episode", "BALANCE", "SWINGUP", "SWINGUP_TARGET", "SWINGUP_SHIFT2", "TASK_RULES", "TASKS", "PLANTS", "as_task", "wrap_angle", "UPRIGHT"]

#: |theta| <= 12 deg is "upright" (Gymnasium's bound)
UPRIGHT = cartpole.THETA_THRESHOLD


@dataclass(frozen=True)
class Task:
    """A plant and the rules of one episode on it (validated on creation).

    Attributes
    ----------
    name : {'balance', 'swingup'}
    params : CartPoleParams
        The plant (its integrator, period and force limit included).
    episode_steps : int
        Control periods per episode.
    x_limit : float
        The cart fails the episode beyond |x| > x_limit (m).
    theta_limit : float or None
        The episode fails beyond |theta| > theta_limit (rad); None: never.
    hold_steps : int
        Success needs |theta| <= ``UPRIGHT`` during the final ``hold_steps``
        periods (0: surviving the episode is success).
    start_angle : float
        Centre of the initial pole angle (rad): 0 upright, pi hanging down.
    start_half_width : float
        Initial x, x_dot, theta_dot ~ U(-w, w) and theta ~ start_angle + U(-w_theta, w_theta).
    start_angle_half_width : float
    wrap : bool
        Wrap theta to (-pi, pi] after every step.
    """

    name: str = "balance"
    params: CartPoleParams = SOURCE
    episode_steps: int = cartpole.EPISODE_STEPS
    x_limit: float = cartpole.X_THRESHOLD
    theta_limit: float | None = cartpole.THETA_THRESHOLD
    hold_steps: int = 0
    start_angle: float = 0.0
    start_half_width: float = cartpole.RESET_HALF_WIDTH
    start_angle_half_width: float = cartpole.RESET_HALF_WIDTH
    wrap: bool = False

    def __post_init__(self):
        check_choice("name", self.name, tuple(TASK_RULES))
        if not isinstance(self.params, CartPoleParams):
            raise TypeError(f"params: expected CartPoleParams but found {type(self.params).__name__}")
        check_int("episode_steps", self.episode_steps, low=1)
        check_positive("x_limit", self.x_limit)
        if self.theta_limit is not None:
            check_positive("theta_limit", self.theta_limit)
        check_int("hold_steps", self.hold_steps, low=0, high=self.episode_steps)
        check_positive("start_half_width", self.start_half_width, allow_zero=True)
        check_positive("start_angle_half_width", self.start_angle_half_width, allow_zero=True)

    def on(self, params: CartPoleParams) -> "Task":
        """The same rules on another plant; the task's integrator and force limit are kept."""
        if not isinstance(params, CartPoleParams):
            raise TypeError(f"params: expected CartPoleParams but found {type(params).__name__}")
        return replace(self, params=params.with_(integrator=self.params.integrator, tau=self.params.tau,
                                                 u_max=self.params.u_max))

    @property
    def seconds(self):
        return self.episode_steps * self.params.tau

    def reset(self, rng, n=None):
        """Initial states, (4,) or (n, 4), from ``rng`` (a Generator or a seed)."""
        rng = check_rng(rng)
        size = (4,) if n is None else (n, 4)
        s = rng.uniform(-self.start_half_width, self.start_half_width, size=size)
        if self.start_angle != 0.0 or self.start_angle_half_width != self.start_half_width:
            # a separate draw keeps the balance task's states identical to Gymnasium's reset
            s[..., 2] = self.start_angle + rng.uniform(-self.start_angle_half_width, self.start_angle_half_width,
                                                       size=size[:-1])
        return self._wrapped(s)

    def _wrapped(self, s):
        if self.wrap:
            s[..., 2] = wrap_angle(s[..., 2])
        return s

    def step(self, state, force):
        """Saturate, integrate one period, wrap: ``(next_state, saturated)``; no checks."""
        applied, saturated = cartpole.saturate(self.params, force)
        return self._wrapped(cartpole.advance(self.params, state, applied)), saturated

    def failed(self, state):
        """Outside the bounds or not finite (per row of a batch)."""
        state = np.asarray(state)
        bad = (np.abs(state[..., 0]) > self.x_limit) | ~np.isfinite(state).all(axis=-1)
        if self.theta_limit is not None:
            bad = bad | (np.abs(state[..., 2]) > self.theta_limit)
        return bad

    def upright(self, state):
        return np.abs(np.asarray(state)[..., 2]) <= UPRIGHT


#: the rules of each task, as keyword arguments of ``Task`` (the plant aside)
TASK_RULES = {
    "balance": dict(),
    "swingup": dict(episode_steps=600, x_limit=3.0, theta_limit=None, hold_steps=150, start_angle=math.pi,
                    start_half_width=0.05, start_angle_half_width=0.1, wrap=True),
}

#: the swing-up task's changed plant: a heavier, longer pole (docs/swingup.md)
SWINGUP_TARGET = CartPoleParams(m_c=1.0, m_p=0.2, l_p=1.0, integrator="rk4")
#: a second swing-up shift, the other way: a three times heavier cart, SOURCE's pole (docs/swingup.md)
SWINGUP_SHIFT2 = CartPoleParams(m_c=3.0, m_p=0.1, l_p=0.5, integrator="rk4")

BALANCE = Task("balance", SOURCE)
SWINGUP = Task("swingup", SOURCE.with_(integrator="rk4"), **TASK_RULES["swingup"])
TASKS = {"balance": BALANCE, "swingup": SWINGUP}
#: each task's plants by name: the one the expert data come from and the changed one
PLANTS = {"balance": SYSTEMS, "swingup": {"source": SWINGUP.params, "target": SWINGUP_TARGET}}


def as_task(task_or_params) -> Task:
    """A ``Task``; a bare ``CartPoleParams`` means the balance task on that plant (as given)."""
    if isinstance(task_or_params, Task):
        return task_or_params
    if isinstance(task_or_params, CartPoleParams):
        return replace(BALANCE, params=task_or_params)
    raise TypeError(f"task: expected a Task or CartPoleParams but found {type(task_or_params).__name__}")


class Episode:
    """One plant running episode after episode of a task: the single-state twin of
    ``sim.loops.loop.evaluate_success`` (the deployed loop and the view use it).

    ``step(force)`` saturates, integrates and wraps; when the state fails or
    the episode reaches ``task.episode_steps`` periods, ``done`` is set and the
    next ``restart_if_done()`` draws a new initial state from ``rng``.

    Attributes
    ----------
    state : ndarray (4,)       the plant's state now
    steps : int                periods of the current episode so far
    episodes : int             episodes started
    failures : int             episodes that ended by ``task.failed``
    done, failed : bool        how the last step ended the episode (if it did)
    succeeded : bool           the episode ended by the task's success rule (lasted, upright at the end)
    """

    def __init__(self, task: Task, rng):
        self.task = as_task(task)
        self.rng = check_rng(rng)
        self.episodes = 0
        self.failures = 0
        self.reset()

    def reset(self, state=None):
        """Start an episode (from ``state`` or the task's initial distribution)."""
        self.state = self.task.reset(self.rng) if state is None else np.array(state, dtype=float)
        self.steps = 0
        self.episodes += 1
        self.done = self.failed = False
        self._held = True                # upright at every step of the final hold so far

    def step(self, force):
        """Advance one period with ``force``; returns whether the episode failed."""
        self.state = self.task.step(self.state, float(force))[0]
        self.steps += 1
        self.failed = bool(self.task.failed(self.state))
        if self.steps > self.task.episode_steps - self.task.hold_steps and not self.task.upright(self.state):
            self._held = False
        self.done = self.failed or self.steps >= self.task.episode_steps
        return self.failed

    @property
    def succeeded(self):
        return self.done and not self.failed and self._held

    def restart_if_done(self):
        """Count the ended episode and start the next one; True if it restarted."""
        if not self.done:
            return False
        self.failures += int(self.failed)
        self.reset()
        return True
