import numpy as np
import pytest

from controller.lqr import LQRController
from sim.world import cartpole
from sim.world.cartpole import SOURCE, TARGET
from sim.world.data import DEFAULT_BOX, sample_dataset
from sim.loops.loop import ClosedLoop, evaluate_success


class Zero:
    def act(self, states):
        return np.zeros(len(states))


def test_target_expert_solves_target_and_source_expert_fails():
    assert evaluate_success(LQRController(TARGET), TARGET, 100, seed=0).success_rate == 1.0
    assert evaluate_success(LQRController(SOURCE), TARGET, 100, seed=0).success_rate == 0.0
    assert evaluate_success(LQRController(SOURCE), SOURCE, 100, seed=0).success_rate == 1.0


def test_evaluation_is_deterministic_and_seeded():
    a = evaluate_success(LQRController(SOURCE), TARGET, 50, seed=4)
    b = evaluate_success(LQRController(SOURCE), TARGET, 50, seed=4)
    c = evaluate_success(LQRController(SOURCE), TARGET, 50, seed=5)
    np.testing.assert_array_equal(a.lengths, b.lengths)
    np.testing.assert_array_equal(a.initial_states, b.initial_states)
    assert not np.array_equal(a.initial_states, c.initial_states)


def test_batched_evaluation_equals_sequential_closed_loop():
    ctrl = LQRController(SOURCE)
    ev = evaluate_success(ctrl, TARGET, 8, seed=2)
    for i, s0 in enumerate(ev.initial_states):
        loop = ClosedLoop(ctrl, TARGET, s0)
        records = loop.run(cartpole.EPISODE_STEPS)
        assert len(records) == ev.lengths[i], f"episode {i}"
        assert records[-1].terminated == (ev.lengths[i] < cartpole.EPISODE_STEPS)


def test_uncontrolled_pole_falls_quickly():
    ev = evaluate_success(Zero(), SOURCE, 20, seed=0)
    assert ev.success_rate == 0.0
    assert ev.lengths.max() < 100


def test_non_finite_force_fails_the_episode():
    class Bad:
        def act(self, states):
            return np.full(len(states), np.nan)

    ev = evaluate_success(Bad(), SOURCE, 5, seed=0)
    assert ev.success_rate == 0.0 and np.all(ev.lengths == 1)


def test_closed_loop_counts_saturation_and_time():
    class Push:
        def act(self, states):
            return np.full(len(states), 100.0)

    loop = ClosedLoop(Push(), SOURCE, np.zeros(4))
    rec = loop.tick()
    assert rec.saturated and rec.applied == 30.0 and rec.force == 100.0
    assert loop.saturations == 1 and loop.t == pytest.approx(0.02)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_episodes"):
        evaluate_success(Zero(), SOURCE, 0)
    with pytest.raises(ValueError, match="controller"):
        evaluate_success(object(), SOURCE, 3)
    with pytest.raises(ValueError, match="seed"):
        evaluate_success(Zero(), SOURCE, 3, seed=-1)
    with pytest.raises(ValueError, match="state"):
        ClosedLoop(Zero(), SOURCE, [0, 0, 0])


def test_sampler_box_labels_noise_and_seed():
    expert = LQRController(TARGET)
    s, f = sample_dataset(expert, 2000, seed=0)
    assert s.shape == (2000, 4) and f.shape == (2000,)
    assert np.all(np.abs(s) <= DEFAULT_BOX)
    np.testing.assert_allclose(f, expert.act(s))
    s2, f2 = sample_dataset(expert, 2000, seed=0)
    np.testing.assert_array_equal(s, s2)
    sn, fn = sample_dataset(expert, 20000, seed=1, sigma_data=20.0)
    resid = fn - expert.act(sn)
    # sample variance of 20000 normals: relative standard error sqrt(2/20000) = 1 %
    assert abs(resid.var() / 20.0 - 1) < 0.05
    with pytest.raises(ValueError, match="sigma_data"):
        sample_dataset(expert, 10, seed=0, sigma_data=-1.0)
    with pytest.raises(ValueError, match="box"):
        sample_dataset(expert, 10, seed=0, box=[1, 1, 0, 1])
