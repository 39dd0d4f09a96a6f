"""The two cart-pole tasks as Gymnasium environments.

Each environment runs one ``sim.world.task.Episode`` of its task: the reset
is the task's initial distribution drawn from ``self.np_random``, a step is
the task's saturate-integrate-wrap, termination is the task's failure rule
and truncation its episode length. The plant is chosen by keyword (a system
of the task, then ``m_c``, ``m_p``, ``l_p``, ``integrator`` override it); the
equations stay in ``sim.world.cartpole``.
"""

from __future__ import annotations

import os
from dataclasses import replace

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from controller.checks import check_choice
from sim.world.cartpole import INTEGRATORS
from sim.world.task import PLANTS, TASKS, Episode

__all__ = ["CartPoleTaskEnv", "BalanceEnv", "SwingUpEnv", "make_task"]

RENDER_MODES = ("human", "rgb_array")
#: pixels of a rendered frame (width, height)
RENDER_SIZE = (600, 400)


def make_task(task, system="target", m_c=None, m_p=None, l_p=None, integrator=None):
    """The ``Task`` an environment runs: ``task``'s rules on the plant the keywords name.

    Parameters
    ----------
    task : {'balance', 'swingup'}
    system : {'source', 'target'}
        The task's plant to start from (``sim.world.task.PLANTS``).
    m_c, m_p, l_p : float, optional
        Cart mass, pole mass (kg) and pivot-to-centre-of-mass length (m), > 0;
        None keeps the system's value.
    integrator : {'euler', 'rk4'}, optional
        None keeps the task's (balance: euler, swing-up: rk4).

    Raises
    ------
    ValueError
        Naming the argument that is not allowed.
    """
    check_choice("task", task, tuple(TASKS))
    check_choice("system", system, tuple(PLANTS[task]))
    if integrator is not None:
        check_choice("integrator", integrator, INTEGRATORS)
    plant = {k: v for k, v in (("m_c", m_c), ("m_p", m_p), ("l_p", l_p)) if v is not None}
    t = TASKS[task].on(PLANTS[task][system].with_(**plant))      # CartPoleParams checks the values
    return t if integrator is None else replace(t, params=t.params.with_(integrator=integrator))


class CartPoleTaskEnv(gym.Env):
    """A cart-pole task of ``sim.world.task`` as a Gymnasium environment.

    Observation: the state ``(x, x_dot, theta, theta_dot)`` as float64 (m,
    m/s, rad from upright, rad/s), the precision the project's controllers
    take. Action: the force on the cart, ``Box(-u_max, u_max, (1,), float32)``
    with ``u_max`` the task's force limit (30 N); a force outside it is
    clipped, like the task clips it, and a float64 action is used as given; a NaN or infinite
    force is a ValueError.
    ``terminated`` is the task's failure rule, ``truncated`` the end of its
    episode; ``info["success"]`` is the task's success rule at the last step
    of an episode. Subclasses fix the task and the reward.

    Parameters
    ----------
    task : {'balance', 'swingup'}
    system, m_c, m_p, l_p, integrator
        The plant (``make_task``); default the task's changed plant ``target``.
    render_mode : {None, 'human', 'rgb_array'}
        ``rgb_array``: ``render()`` returns an (H, W, 3) uint8 frame drawn by
        ``sim.view.live``; ``human``: a window, drawn at every step.
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 50}

    def __init__(self, task="balance", system="target", m_c=None, m_p=None, l_p=None, integrator=None,
                 render_mode=None):
        if render_mode is not None:
            check_choice("render_mode", render_mode, RENDER_MODES)
        self.task = make_task(task, system, m_c, m_p, l_p, integrator)
        self.render_mode = render_mode
        p = self.task.params
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / p.tau))}
        self.action_space = spaces.Box(-p.u_max, p.u_max, (1,), np.float32)
        theta = np.pi if self.task.wrap else 2 * self.task.theta_limit
        big = np.finfo(np.float64).max          # unbounded velocities, as Gymnasium's CartPole bounds them
        high = np.array([2 * self.task.x_limit, big, theta, big])
        self.observation_space = spaces.Box(-high, high, (4,), np.float64)
        self.episode = None
        self._viewer = None
        self._force = 0.0
        self._ended = {"success": 0, "fail": 0}       # episodes of this environment so far, for the view

    def reward(self, state):
        """The reward of a step that ended in ``state``."""
        raise NotImplementedError

    def reset(self, *, seed=None, options=None):
        """Start an episode from the task's initial distribution, drawn from ``self.np_random``
        (re-seeded by ``seed``, Gymnasium's convention); ``options`` are not used."""
        super().reset(seed=seed)
        self.episode = Episode(self.task, self.np_random)
        self._force = 0.0
        if self.render_mode == "human":
            self.render()
        return self.episode.state.copy(), {}

    def step(self, action):
        """Apply the force ``action[0]`` for one control period; a NaN or infinite force is a
        ValueError and changes nothing."""
        if self.episode is None:
            raise gym.error.ResetNeeded("step: call reset before the first step")
        a = np.asarray(action)
        if a.size != 1:
            raise ValueError(f"action: expected one force, shape (1,), but found shape {a.shape}")
        force = float(a.reshape(-1)[0])
        if not np.isfinite(force):      # the plant would integrate it into a NaN state without a word
            raise ValueError(f"action: expected a finite force but found {force}")
        ep = self.episode
        self._force = force
        ep.step(self._force)
        reward = float(self.reward(ep.state))
        info = {}
        if ep.done:
            info["success"] = bool(ep.succeeded)
            self._ended["success" if ep.succeeded else "fail"] += 1
        if self.render_mode == "human":
            self.render()
        return ep.state.copy(), reward, bool(ep.failed), bool(ep.done and not ep.failed), info

    def render(self):
        """The current state drawn by ``sim.view.live`` (``rgb_array``: an (H, W, 3) uint8 array)."""
        if self.render_mode is None:
            gym.logger.warn("render: no render_mode was given (e.g. gymnasium.make(id, render_mode='rgb_array'))")
            return None
        if self.episode is None:
            return None
        if self._viewer is None:
            from sim.view.live import Viewer

            name = self.spec.id if self.spec is not None else self.task.name
            self._check_display()
            self._viewer = Viewer(self.task, method=name, size=RENDER_SIZE, chart_height=0,
                                  headless=self.render_mode == "rgb_array")
            self._viewer.overlay.keys = False
            self._viewer.overlay.show_uncertainty = False
        ep = self.episode
        v = self._viewer
        if self.render_mode == "human":
            v.poll()
        v.draw(ep.state, t=ep.steps * self.task.params.tau, force=self._force,
               successes=self._ended["success"], failures=self._ended["fail"])
        if self.render_mode == "human":
            v.pace(self.task.params.tau)
            return None
        return v.pixels()

    def _check_display(self):
        """render_mode 'human' with no display: say so once and draw off-screen (SDL would print
        an error of its own, e.g. about XDG_RUNTIME_DIR, and draw nowhere)."""
        from sim.view.display import no_display

        why = no_display() if self.render_mode == "human" else ""
        if why and not why.startswith("SDL_VIDEODRIVER"):
            gym.logger.warn(f"render_mode='human': no display to open a window on ({why}); drawing off-screen")
            os.environ["SDL_VIDEODRIVER"] = "dummy"

    def close(self):
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None


class BalanceEnv(CartPoleTaskEnv):
    """Balance the pole near upright (``sim.world.task.BALANCE``): Gymnasium's
    CartPole-v1 with a continuous force.

    Starts in U(-0.05, 0.05)^4; terminates when |x| > 2.4 m or |theta| > 12
    deg; truncates after 500 steps (10 s at 50 Hz, Euler). Reward +1 for
    every step, the terminating one included (CartPole-v1's), so the return
    is the number of steps survived; surviving 500 steps is a success.
    Default plant: ``TARGET`` (m_c = 1, m_p = 1, l_p = 5).
    """

    def __init__(self, system="target", m_c=None, m_p=None, l_p=None, integrator=None, render_mode=None):
        super().__init__("balance", system, m_c, m_p, l_p, integrator, render_mode)

    def reward(self, state):
        return 1.0


class SwingUpEnv(CartPoleTaskEnv):
    """Swing the pole up from hanging and hold it (``sim.world.task.SWINGUP``).

    Starts at theta = pi +- 0.1 (x, x_dot, theta_dot in U(-0.05, 0.05));
    theta is wrapped to (-pi, pi]; terminates only when |x| > 3 m; truncates
    after 600 steps (12 s at 50 Hz, RK4). Reward 1 for every step that ends
    with the pole upright (|theta| <= 12 deg), else 0: the task's success
    rule counts the same steps (upright for each of the final 150). Default
    plant: the task's ``target`` (m_c = 1, m_p = 0.2, l_p = 1).
    """

    def __init__(self, system="target", m_c=None, m_p=None, l_p=None, integrator=None, render_mode=None):
        super().__init__("swingup", system, m_c, m_p, l_p, integrator, render_mode)

    def reward(self, state):
        return float(self.task.upright(state))
