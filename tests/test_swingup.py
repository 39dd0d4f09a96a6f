"""The swing-up task, its expert (sim.world.swingup_expert) and the pre-trained swing-up transformer."""

import math

import numpy as np
import pytest

from controller.lqr import LQRController
from sim.world.cartpole import CartPoleParams, advance, dynamics
from sim.loops.loop import evaluate_success
from sim.world.swingup_expert import SwingupExpert, expert_name, pole_energy
from sim.world.task import SWINGUP, SWINGUP_SHIFT2, SWINGUP_TARGET, wrap_angle

SRC = SWINGUP.params


@pytest.fixture(scope="module")
def expert():
    return SwingupExpert(SRC)


def _states(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, 4)) * [2.5, 3.0, math.pi, 8.0]


# ---------------------------------------------------------------- the expert's pieces
@pytest.mark.parametrize("design", [SRC, SWINGUP_TARGET, SWINGUP_SHIFT2])
def test_pfl_force_gives_the_desired_cart_acceleration(design):
    ex = SwingupExpert(design)
    s = _states(200)
    a = np.random.default_rng(1).uniform(-20, 20, 200)
    F = ex.pfl_force(s, a)
    np.testing.assert_allclose(dynamics(design, s, F)[:, 1], a, rtol=0, atol=1e-9)
    # and for the expert's own desired acceleration
    a = ex.desired_acceleration(s)
    np.testing.assert_allclose(dynamics(design, s, ex.pfl_force(s, a))[:, 1], a, rtol=0, atol=1e-9)


def test_energy_upright_and_hanging():
    p = SRC                                   # m_p 0.1, l_p 0.5, g 9.8
    assert pole_energy(p, [0.0, 0.0, 0.0, 0.0]) == 0.0
    # hanging still: m_p g l_p (cos(pi) - 1) = -2 * 0.1 * 9.8 * 0.5 = -0.98 J
    assert pole_energy(p, [0.3, -1.0, math.pi, 0.0]) == pytest.approx(-0.98, abs=1e-12)
    # the kinetic part: 1/2 * (4/3 * 0.1 * 0.25) * 2^2 = 0.0666...
    assert pole_energy(p, [0.0, 0.0, 0.0, 2.0]) == pytest.approx(0.2 / 3.0, abs=1e-12)
    # the cart's state does not enter
    assert pole_energy(p, [1.0, 2.0, 0.5, 1.0]) == pole_energy(p, [-1.0, 0.0, 0.5, 1.0])


@pytest.mark.parametrize("design", [SRC, SWINGUP_TARGET])
@pytest.mark.parametrize("theta,theta_dot", [(math.pi - 0.05, 0.5), (math.pi - 0.05, -0.5), (-math.pi + 0.1, 1.0),
                                             (2.5, -2.0), (-2.0, 1.5)])
def test_pumping_increases_the_energy_from_hanging(design, theta, theta_dot):
    ex = SwingupExpert(design)
    s = np.array([0.0, 0.0, theta, theta_dot])
    assert ex.energy(s) < 0 and not ex.in_lqr_region(s)
    nxt = advance(design, s, ex.act(s))
    coast = advance(design, s, 0.0)
    assert ex.energy(nxt) > ex.energy(s)
    assert ex.energy(nxt) > ex.energy(coast)


def test_hand_over_to_lqr_inside_the_region(expert):
    lqr = LQRController(SRC)
    s = _states(500) * [1, 1, 0.35 / math.pi, 3.0 / 8.0]       # |theta| < 0.35, |theta_dot| < 3
    assert expert.in_lqr_region(s).all()
    np.testing.assert_allclose(expert.act(s), lqr.act(s), rtol=1e-12, atol=1e-12)
    # just outside it, the energy-pumping force
    out = s.copy()
    out[:, 3] = 3.0 + np.abs(out[:, 3])
    assert not expert.in_lqr_region(out).any()
    np.testing.assert_allclose(expert.act(out), expert.pfl_force(out, expert.desired_acceleration(out)))


def test_theta_is_wrapped_before_the_switch(expert):
    s = np.array([0.1, 0.0, 0.1, 0.2])
    assert expert.act(s + [0, 0, 2 * math.pi, 0]) == pytest.approx(expert.act(s), abs=1e-9)
    assert expert.act(s - [0, 0, 4 * math.pi, 0]) == pytest.approx(expert.act(s), abs=1e-9)


def test_batched_equals_single_state_and_deterministic(expert):
    s = _states(64, seed=3)
    batch = expert.act(s)
    assert batch.shape == (64,)
    single = np.array([expert.act(row) for row in s])
    assert all(isinstance(expert.act(row), float) for row in s[:3])
    np.testing.assert_allclose(batch, single, rtol=1e-12, atol=1e-12)   # BLAS may round a batch differently
    np.testing.assert_array_equal(SwingupExpert(SRC).act(s), batch)


def test_name_and_arguments():
    assert expert_name(SRC) == "swing-up expert for (m_c=1, m_p=0.1, l_p=0.5)"
    assert SwingupExpert(SWINGUP_TARGET).name == "swing-up expert for (m_c=1, m_p=0.2, l_p=1)"
    with pytest.raises(TypeError, match="design"):
        SwingupExpert((1.0, 0.1, 0.5))
    with pytest.raises(TypeError, match="k_e"):
        SwingupExpert(SRC, "0.5")
    for bad in (0.0, -1.0, 11.0, float("nan")):
        with pytest.raises(ValueError, match=r"k_e: expected a number in \(0, 10\]"):
            SwingupExpert(SRC, bad)
    with pytest.raises(ValueError, match="theta_lqr"):
        SwingupExpert(SRC, theta_lqr=2.0)
    with pytest.raises(ValueError, match="theta_dot_lqr"):
        SwingupExpert(SRC, theta_dot_lqr=0)
    with pytest.raises(ValueError, match="k_x"):
        SwingupExpert(SRC, k_x=-1)
    with pytest.raises(TypeError, match="k_v"):
        SwingupExpert(SRC, k_v=None)


# ---------------------------------------------------------------- the task's rules
def test_task_wraps_theta_and_fails_only_off_track():
    task = SWINGUP
    s = np.array([0.0, 0.0, math.pi - 0.001, 2.0])       # about to swing through hanging-down
    nxt, _ = task.step(s, 0.0)
    assert -math.pi < nxt[2] < -math.pi + 0.1
    np.testing.assert_allclose(wrap_angle([math.pi, -math.pi, 3 * math.pi, 0.5 - 2 * math.pi]),
                               [math.pi, math.pi, math.pi, 0.5])
    states = np.array([[0.0, 0.0, math.pi, 0.0],       # hanging: not a failure
                       [2.9, 5.0, 1.0, 9.0],            # on the track, pole anywhere
                       [3.01, 0.0, 0.0, 0.0],           # off the track
                       [-3.5, 0.0, 0.0, 0.0],
                       [0.0, np.nan, 0.0, 0.0]])
    np.testing.assert_array_equal(task.failed(states), [False, False, True, True, True])
    starts = task.reset(0, 1000)
    assert np.all(np.abs(wrap_angle(starts[:, 2] - math.pi)) <= 0.1 + 1e-12)
    assert np.all(np.abs(starts[:, [0, 1, 3]]) <= 0.05)


def test_evaluate_success_needs_upright_at_the_end():
    class Nothing:
        def act(self, states):
            return np.zeros(len(states))

    assert evaluate_success(Nothing(), SWINGUP, 5, seed=0).success_rate == 0.0


# ---------------------------------------------------------------- closed loop
def test_source_expert_swings_up_source(expert):
    assert evaluate_success(expert, SWINGUP, 20, seed=0).success_rate >= 0.95


def test_target_is_a_shift_for_the_expert(expert):
    target = SWINGUP.on(SWINGUP_TARGET)
    assert evaluate_success(expert, target, 20, seed=0).success_rate <= 0.1
    assert evaluate_success(SwingupExpert(SWINGUP_TARGET), target, 20, seed=0).success_rate >= 0.99


# ---------------------------------------------------------------- the pre-trained swing-up transformer
TINY = dict(expert_episodes=3, dagger_rounds=1, dagger_episodes=2, steps_initial=10, steps_per_round=10, batch=32,
            eval_episodes=2, n_val_episodes=1, report_episodes=2, progress=False)


def test_pretrain_swingup_is_deterministic_and_records_its_recipe():
    from sim.pretraining.swingup import SWINGUP_CONFIG, pretrain_swingup

    a, hist = pretrain_swingup(seed=5, **TINY)
    b, _ = pretrain_swingup(seed=5, **TINY)
    c, _ = pretrain_swingup(seed=6, **TINY)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert not all(np.array_equal(a.params[k], c.params[k]) for k in a.params)
    assert a.config == SWINGUP_CONFIG
    assert [h["round"] for h in hist] == [0, 1] and hist[1]["n_data"] > hist[0]["n_data"]
    for key in ("seed", "success_source", "success_target", "success_shift2", "val_rmse", "dagger_rounds"):
        assert key in a.meta
    with pytest.raises(ValueError, match="beta0"):
        pretrain_swingup(beta0=1.5, **TINY)
    with pytest.raises(TypeError, match="system"):
        pretrain_swingup(system="source", **TINY)


def test_collect_labels_visited_states_with_the_clean_expert(expert):
    from sim.pretraining.swingup import collect

    s, f = collect(SWINGUP, expert, 3, np.random.default_rng(0), noise_std=5.0)
    assert s.shape == (3 * SWINGUP.episode_steps, 4) and f.shape == (len(s),)
    np.testing.assert_allclose(f, expert.act(s), rtol=1e-12, atol=1e-12)


def test_pretrain_flag_only_for_swingup(tmp_path):
    from sim.cli import main

    with pytest.raises(SystemExit):
        main(["pretrain", "--out", str(tmp_path / "w.npz"), "--dagger-rounds", "2"])
    assert not (tmp_path / "w.npz").exists()


def test_shipped_swingup_weights_and_their_metadata():
    import os

    from controller.model import PRETRAINED_PATH, TransformerPolicy

    policy = TransformerPolicy.load(os.path.join(os.path.dirname(PRETRAINED_PATH), "pretrained_swingup.npz"))
    m = policy.meta
    assert m["command"] == "kbt pretrain --task swingup --out controller/data/pretrained_swingup.npz --seed 0 --no-progress"
    assert m["seed"] == 0 and m["task"] == "swingup"
    assert m["success_source"] >= 0.95 and m["success_target"] <= 0.1
    assert policy.config.state_scale == pytest.approx((2.0, 3.5, math.pi, 8.0))
    assert policy.config.u_max == 30.0 and policy.config.d_model == 16


@pytest.mark.slow
def test_shipped_swingup_policy_swings_up_source_not_target():
    import os

    from controller.model import PRETRAINED_PATH, TransformerPolicy

    policy = TransformerPolicy.load(os.path.join(os.path.dirname(PRETRAINED_PATH), "pretrained_swingup.npz"))
    assert evaluate_success(policy, SWINGUP, 100, seed=0).success_rate >= 0.95
    assert evaluate_success(policy, SWINGUP.on(SWINGUP_TARGET), 100, seed=0).success_rate <= 0.1
