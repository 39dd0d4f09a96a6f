"""The Gymnasium environments of sim.envs follow the tasks of sim.world.task exactly."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from sim.envs import ENV_IDS
from sim.envs.cartpole_env import BalanceEnv, SwingUpEnv, make_task
from sim.loops.loop import act_one
from sim.world.cartpole import SOURCE, TARGET
from sim.world.experts import expert_for
from sim.world.task import PLANTS, SWINGUP_TARGET, TASKS, Episode

BALANCE_ID, SWINGUP_ID = "kbt/CartPoleBalance-v0", "kbt/CartPoleSwingUp-v0"
TASK_OF = {BALANCE_ID: "balance", SWINGUP_ID: "swingup"}


#: the action is the force in newtons, by choice, not normalised to [-1, 1]
NOT_NORMALISED = "ignore:.*symmetric and normalized space"


@pytest.mark.filterwarnings(NOT_NORMALISED)
@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
@pytest.mark.parametrize("render_mode", [None, "rgb_array"])
def test_check_env_passes_on_the_environment(env_id, render_mode):
    env = gym.make(env_id, render_mode=render_mode)
    check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_check_env_passes_through_make(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # the checker's note that make's wrappers are there
        check_env(gym.make(env_id))


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_module_prefixed_id_registers_on_make(env_id):
    env = gym.make(f"sim.envs:{env_id}")
    assert env.spec.id == env_id
    assert env.spec.max_episode_steps == TASKS[TASK_OF[env_id]].episode_steps


def test_spaces_are_the_tasks():
    for env_id, cls in ((BALANCE_ID, BalanceEnv), (SWINGUP_ID, SwingUpEnv)):
        env = gym.make(env_id).unwrapped
        assert type(env) is cls
        u = TASKS[TASK_OF[env_id]].params.u_max
        assert env.action_space == gym.spaces.Box(-u, u, (1,), np.float32)
        assert env.observation_space.shape == (4,) and env.observation_space.dtype == np.float64


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_reset_is_the_tasks_reset_from_the_seed(env_id):
    env = gym.make(env_id).unwrapped
    task = make_task(TASK_OF[env_id])
    for seed in (0, 7, 123):
        obs, info = env.reset(seed=seed)
        assert obs.dtype == np.float64 and info == {}
        assert np.array_equal(obs, task.reset(np.random.default_rng(seed)))


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_expert_trajectory_equals_the_tasks_episode_bit_for_bit(env_id):
    """The task's expert, float64 forces: states, end and success equal ``Episode``'s."""
    name = TASK_OF[env_id]
    env = gym.make(env_id).unwrapped
    task = make_task(name)
    assert task.params == PLANTS[name]["target"]
    expert = expert_for(task)
    episode = Episode(task, np.random.default_rng(3))
    obs, _ = env.reset(seed=3)
    assert np.array_equal(obs, episode.state)
    ret = 0.0
    while True:
        force = act_one(expert, obs)
        obs, reward, terminated, truncated, info = env.step(np.array([force]))
        episode.step(force)
        ret += reward
        assert np.array_equal(obs, episode.state)
        assert (terminated, truncated) == (episode.failed, episode.done and not episode.failed)
        if terminated or truncated:
            break
    assert episode.steps == task.episode_steps and not terminated      # the expert keeps the pole up
    assert info["success"] is episode.succeeded is True
    if name == "balance":
        assert ret == task.episode_steps                               # +1 per step
    else:
        assert task.hold_steps <= ret < task.episode_steps             # the upright steps


def test_fixed_action_sequence_equals_the_episode_and_terminates():
    """float32 actions, one saturating: the same states, and the failure ends the episode."""
    env = BalanceEnv(system="source")
    episode = Episode(make_task("balance", "source"), np.random.default_rng(11))
    obs, _ = env.reset(seed=11)
    actions = np.array([[30.0], [-12.5], [45.0], [30.0]] * 50, dtype=np.float32)
    for step, a in enumerate(actions, 1):
        obs, reward, terminated, truncated, info = env.step(a)
        episode.step(float(a[0]))
        assert np.array_equal(obs, episode.state) and reward == 1.0
        if terminated:
            break
    assert terminated and not truncated and episode.failed and info == {"success": False}
    assert step < len(actions)


def test_balance_on_source_is_gymnasiums_cartpole_v1():
    """Same seed, +-10 N: the states of Gymnasium's CartPole-v1 (float64 internally), bit for bit."""
    ours, theirs = BalanceEnv(system="source"), gym.make("CartPole-v1").unwrapped
    obs, _ = ours.reset(seed=5)
    theirs.reset(seed=5)
    assert np.array_equal(obs, theirs.state)
    for a in [1, 0, 0, 1, 1, 1, 0, 1, 0, 0] * 3:
        obs, _, terminated, *_ = ours.step(np.array([10.0 if a else -10.0]))
        assert theirs.step(a)[2] == terminated
        assert np.array_equal(obs, np.asarray(theirs.state))
        if terminated:
            break


def test_swingup_reward_counts_upright_steps():
    env = SwingUpEnv()
    obs, _ = env.reset(seed=0)
    _, reward, *_ = env.step(np.zeros(1))
    assert reward == 0.0                        # hanging down
    env.episode.state = np.array([0.0, 0.0, 0.05, 0.0])
    _, reward, *_ = env.step(np.zeros(1))
    assert reward == 1.0


def _next_state(**kwargs):
    env = gym.make(BALANCE_ID, **kwargs).unwrapped
    env.reset(seed=0)
    return env.step(np.array([5.0], dtype=np.float32))[0], env.unwrapped.task


def test_plant_keywords_change_the_dynamics():
    base, task = _next_state()
    assert task.params == TARGET
    assert _next_state(system="source")[1].params == SOURCE
    for kwargs in (dict(m_c=2.0), dict(m_p=0.3), dict(l_p=1.0), dict(integrator="rk4"), dict(system="source")):
        state, task = _next_state(**kwargs)
        assert not np.array_equal(state, base), kwargs
        for k, v in kwargs.items():
            if k != "system":
                assert getattr(task.params, k) == v
    swing = gym.make(SWINGUP_ID, system="source", l_p=0.8).unwrapped.task
    assert swing.params == SWINGUP_TARGET.with_(m_p=SOURCE.m_p, l_p=0.8)
    assert swing.params.integrator == "rk4" and swing.wrap


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_render_returns_a_frame_that_is_not_blank(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 3
    env.step(np.array([30.0], dtype=np.float32))
    env.unwrapped.episode.state = np.array([1.0, 0.0, 0.1, 0.0])
    assert not np.array_equal(env.render(), frame)
    env.close()


@pytest.mark.filterwarnings("ignore:.*not in the possible render_modes")
@pytest.mark.parametrize("kwargs, name", [
    (dict(m_c=0.0), "m_c"), (dict(m_p=-1.0), "m_p"), (dict(l_p="long"), "l_p"),
    (dict(integrator="leapfrog"), "integrator"), (dict(system="moon"), "system"),
    (dict(render_mode="ascii"), "render_mode"),
])
@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_bad_keywords_raise_naming_the_argument(env_id, kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        gym.make(env_id, **kwargs)


def test_bad_action_raises_and_step_needs_reset():
    env = BalanceEnv()
    with pytest.raises(gym.error.ResetNeeded):
        env.step(np.zeros(1))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="^action:"):
        env.step(np.zeros(2))


def test_human_render_mode_draws_a_window():
    """The dummy video driver of conftest.py stands in for the display."""
    env = gym.make(SWINGUP_ID, render_mode="human")
    env.reset(seed=0)
    for _ in range(3):
        env.step(np.zeros(1, dtype=np.float32))
    assert env.render() is None and env.unwrapped._viewer.frames == 5     # reset, three steps, render()
    env.close()
    assert env.unwrapped._viewer is None


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_action_is_an_error_and_changes_nothing(env_id, bad):
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    before, steps = env.episode.state.copy(), env.episode.steps
    with pytest.raises(ValueError, match="^action: expected a finite force"):
        env.step(np.array([bad], dtype=np.float32))
    assert np.array_equal(env.episode.state, before) and env.episode.steps == steps
    obs, reward, *_ = env.step(np.zeros(1, dtype=np.float32))        # the episode goes on
    assert np.all(np.isfinite(obs))


def test_human_render_mode_without_a_display_warns_and_draws_off_screen(monkeypatch):
    for var in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    if not __import__("sys").platform.startswith("linux"):
        pytest.skip("the display check is for X11/Wayland platforms")
    env = gym.make(BALANCE_ID, render_mode="human")
    with pytest.warns(UserWarning, match="no display to open a window on"):
        env.reset(seed=0)
    import os

    assert os.environ["SDL_VIDEODRIVER"] == "dummy"       # SDL never tries X11 / Wayland (and complains)
    env.close()
