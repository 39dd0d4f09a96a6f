"""Tasks and episodes: one set of episode rules for the batched evaluation,
the single-plant Episode, the deployed loop and the view."""

import math

import numpy as np
import pytest

from controller.lqr import LQRController
from sim.world import cartpole
from sim.world.cartpole import SOURCE, TARGET
from sim.loops.loop import evaluate_success
from sim.world.task import BALANCE, SWINGUP, Episode, Task, as_task, wrap_angle


class Constant:
    def __init__(self, force):
        self.force = force

    def act(self, states):
        return np.full(np.atleast_2d(states).shape[0], self.force) if np.ndim(states) == 2 else self.force


def test_wrap_angle_range():
    th = np.array([np.pi, -np.pi, 3 * np.pi, -3 * np.pi, 0.0, 2 * np.pi + 0.1, -0.1])
    w = wrap_angle(th)
    assert np.all(w > -np.pi) and np.all(w <= np.pi)
    np.testing.assert_allclose(np.cos(w), np.cos(th), atol=1e-12)
    np.testing.assert_allclose(np.sin(w), np.sin(th), atol=1e-12)
    assert w[0] == np.pi and w[1] == np.pi


def test_balance_task_is_gymnasium_rules():
    # the same initial states as cartpole.reset, the same failure test as cartpole.terminated
    np.testing.assert_array_equal(BALANCE.reset(3, 7), cartpole.reset(3, 7))
    rng = np.random.default_rng(0)
    S = rng.uniform(-3, 3, size=(500, 4))
    np.testing.assert_array_equal(BALANCE.failed(S), cartpole.terminated(S))
    s, f = BALANCE.step(S[:3], np.array([50.0, -50.0, 1.0]))
    np.testing.assert_array_equal(f, [True, True, False])
    np.testing.assert_allclose(s, cartpole.advance(SOURCE, S[:3], np.array([30.0, -30.0, 1.0])))


def test_params_mean_balancing_that_plant():
    t = as_task(TARGET)
    assert t.name == "balance" and t.params == TARGET
    with pytest.raises(TypeError, match="task"):
        as_task("target")


def test_swingup_rules():
    assert SWINGUP.params.integrator == "rk4" and SWINGUP.episode_steps == 600 and SWINGUP.hold_steps == 150
    s0 = SWINGUP.reset(0, 200)
    assert np.all(np.abs(np.abs(s0[:, 2]) - np.pi) <= 0.1 + 1e-12)          # hanging down, +-0.1
    assert np.all(np.abs(s0[:, [0, 1, 3]]) <= 0.05)
    # off the track fails; any angle does not
    assert SWINGUP.failed(np.array([3.01, 0, 0, 0])) and not SWINGUP.failed(np.array([2.9, 0, np.pi, 0]))
    # theta is wrapped after a step
    s, _ = SWINGUP.step(np.array([0.0, 0.0, np.pi - 1e-4, 5.0]), 0.0)
    assert -np.pi < s[2] <= np.pi and s[2] < 0
    on = SWINGUP.on(TARGET)
    assert on.params.integrator == "rk4" and on.params.m_p == TARGET.m_p and on.x_limit == 3.0


def test_task_validation():
    with pytest.raises(ValueError, match="name"):
        Task("cartwheel")
    with pytest.raises(TypeError, match="params"):
        Task("balance", params="source")
    with pytest.raises(ValueError, match="hold_steps"):
        Task("balance", hold_steps=600)


def test_episode_matches_batched_evaluation():
    """Episode (one plant) and evaluate_success (a batch) apply the same rules:
    the same initial states and controller give the same lengths and outcomes."""
    for task, ctrl in ((as_task(TARGET), LQRController(SOURCE)), (as_task(TARGET), LQRController(TARGET)),
                       (SWINGUP, Constant(5.0))):
        ev = evaluate_success(ctrl, task, n_episodes=4, seed=1)
        for i, s0 in enumerate(ev.initial_states):
            ep = Episode(task, 0)
            ep.reset(s0)
            while not ep.done:
                ep.step(ctrl.act(ep.state))
                if task.hold_steps and ep.steps > task.episode_steps - task.hold_steps and not task.upright(ep.state):
                    break          # the batched evaluation stops an episode that can no longer succeed
            assert ep.steps == ev.lengths[i], f"{task.name} episode {i}: {ep.steps} vs {ev.lengths[i]}"


def test_swingup_success_needs_upright_hold():
    # a controller that never swings up never succeeds; the expert does (docs/swingup.md)
    assert evaluate_success(Constant(0.0), SWINGUP, n_episodes=5, seed=0).success_rate == 0.0
    ep = Episode(SWINGUP, 0)
    while not ep.done:
        ep.step(0.0)
    assert ep.done and not ep.failed and not ep.succeeded and ep.steps == 600
    # held upright at the end (a state placed upright and balanced by LQR) succeeds
    lqr = LQRController(SWINGUP.params)
    ep.reset(np.zeros(4))
    while not ep.done:
        ep.step(lqr.act(ep.state))
    assert ep.succeeded


def test_episode_restart_counts_failures():
    ep = Episode(as_task(TARGET), 0)
    ep.reset(np.array([2.39, 5.0, 0.0, 0.0]))
    ep.step(0.0)
    assert ep.failed and ep.done
    assert ep.restart_if_done() and ep.failures == 1 and ep.episodes == 3 and ep.steps == 0
    assert not ep.restart_if_done()


def test_upright_threshold_is_twelve_degrees():
    assert math.isclose(np.degrees(cartpole.THETA_THRESHOLD), 12.0)
    assert SWINGUP.upright(np.array([0, 0, np.radians(11.9), 0])) and not SWINGUP.upright(np.array([0, 0, np.radians(12.1), 0]))
