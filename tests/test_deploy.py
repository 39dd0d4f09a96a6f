"""The deployed loop: action first, counted faults, deadline misses, resumable state."""

import numpy as np
import pytest

from sim.world.cartpole import TARGET
from sim.loops.deploy import DeployConfig, checkpoints_for, run_deployment
from sim.loops.methods import make_controller


class Recorder:
    """A controller that logs the order of calls and can be made slow or faulty."""

    def __init__(self, sleep=0.0, force=1.0):
        self.calls = []
        self.sleep = sleep
        self.force = force
        self.seen = []

    def act(self, states):
        self.calls.append("act")
        return np.full(np.atleast_2d(states).shape[0], self.force)

    def observe(self, state, force):
        import time

        self.calls.append("observe")
        if not (np.all(np.isfinite(state)) and np.isfinite(force)):
            raise ValueError("expert_force: expected finite values")
        self.seen.append((np.array(state), float(force)))
        if self.sleep:
            time.sleep(self.sleep)


def test_checkpoints():
    assert checkpoints_for(400) == [10, 25, 50, 100, 200, 400]
    assert checkpoints_for(30) == [10, 25, 30]
    assert checkpoints_for(5) == [5]


def test_action_comes_before_the_update_every_tick():
    c = Recorder()
    res = run_deployment(c, TARGET, DeployConfig(samples=12, episodes=1))
    # evaluation calls act in batches too; within the ticks, act and observe alternate
    ticks = [x for x in c.calls if x == "observe"]
    assert len(ticks) == 12 and res.updates == 12 and res.ticks == 12
    seq = "".join("a" if x == "act" else "o" for x in c.calls)
    assert "oo" not in seq, "two updates without an action between them"


def test_slow_update_counts_deadline_misses_and_runs():
    c = Recorder(sleep=0.004)
    res = run_deployment(c, TARGET, DeployConfig(samples=6, episodes=1, period=0.002))
    assert res.deadline_misses == 6 and res.longest_miss_run == 6
    fast = run_deployment(Recorder(), TARGET, DeployConfig(samples=6, episodes=1, period=10.0))
    assert fast.deadline_misses == 0 and fast.longest_miss_run == 0


def test_faults_are_counted_and_handled():
    c = Recorder(force=3.0)
    res = run_deployment(c, TARGET, DeployConfig(samples=300, episodes=1, fault_rate=0.2, seed=3))
    assert res.sensor_faults > 20 and res.rejected > 20
    assert res.updates + res.rejected == 300
    assert all(np.isfinite(f) for _, f in c.seen)


def test_lqr_fallback_on_sensor_fault_keeps_pole_up():
    # NaN readings 30 % of the time: the LQR fallback on the last good reading
    # keeps TARGET upright and the plant never sees a NaN force.
    c = make_controller("lqr", TARGET)
    res = run_deployment(c, TARGET, DeployConfig(samples=200, episodes=1, fault_rate=0.3, fallback="lqr", seed=1))
    assert res.sensor_faults > 30
    assert res.plant_failures == 0


def test_rejected_update_leaves_kbt_unchanged():
    """A non-finite state or label is a ValueError and changes neither the posterior
    nor the noise state; a label far outside the predictive is learned with a small weight."""
    c = make_controller("kbt", TARGET)

    def snapshot():
        return [a.copy() for L in c.head.core.layers for a in (L.M, L.S)] + [c.head.noise.copy()]

    def unchanged(before):
        return all(np.array_equal(b, a) for b, a in zip(before, snapshot()))

    before = snapshot()
    for state, force in ((np.zeros(4), np.nan), (np.zeros(4), np.inf), (np.array([0.0, np.nan, 0.0, 0.0]), 1.0)):
        with pytest.raises(ValueError):
            c.observe(state, force)
        assert unchanged(before) and c.n_updates == 0
    # far outside the predictive (hundreds of sigma), inside the valid label range (LABEL_MAX = 1e4 N)
    assert c.observe(np.zeros(4), c.act(np.zeros(4)) + 5e3) is True
    assert not unchanged(before) and c.n_updates == 1 and c.n_downweighted == 1


def test_same_seed_same_run():
    rows = []
    for _ in range(2):
        c = make_controller("kbt", TARGET)
        rows.append(run_deployment(c, TARGET, DeployConfig(samples=25, episodes=5, fault_rate=0.1)).rows)
    for a, b in zip(*rows):
        assert a["samples"] == b["samples"]
        assert a["success_rate"] == b["success_rate"], f"checkpoint {a['samples']}"
        assert a["pred_std"] == b["pred_std"], f"checkpoint {a['samples']}"


def test_onpolicy_stream_labels_visited_states():
    from controller.lqr import LQRController

    c = Recorder()
    run_deployment(c, TARGET, DeployConfig(samples=20, episodes=1, stream="onpolicy"))
    expert = LQRController(TARGET)
    for s, f in c.seen:
        assert f == pytest.approx(float(expert.act(s)))
    # visited states start near upright, not spread over the sampling box
    assert max(abs(s[2]) for s, _ in c.seen) < 0.21


def test_view_reply_replaces_the_state():
    pushed = np.array([0.0, 0.0, 0.05, 0.0])
    seen = []

    def on_tick(state, force, res):
        seen.append(state.copy())
        return pushed if res.ticks == 1 else True

    run_deployment(Recorder(force=0.0), TARGET, DeployConfig(samples=3, episodes=1), on_tick=on_tick)
    # the tick after the reply starts from the pushed state; Euler moves theta
    # by tau * theta_dot = 0 in one step
    assert seen[1][2] == pytest.approx(0.05, abs=1e-12)


@pytest.mark.parametrize("kw, word", [
    ({"samples": 0}, "samples"), ({"stream": "x"}, "stream"), ({"fallback": "x"}, "fallback"),
    ({"fault_rate": 1.0}, "fault_rate"), ({"period": 0.0}, "period"), ({"sigma_data": -1.0}, "sigma_data"),
])
def test_bad_config(kw, word):
    with pytest.raises(ValueError, match=word):
        DeployConfig(**kw)


def test_non_finite_action_falls_back_and_is_counted():
    c = Recorder(force=np.nan)
    res = run_deployment(c, TARGET, DeployConfig(samples=5, episodes=1, fallback="lqr"))
    assert res.action_faults == 5 and res.sensor_faults == 0 and res.plant_failures == 0


def test_onpolicy_tick_runs_the_input_map_once():
    # act on the reading, then learn its label: the update reuses the act's T_1 pass (docs/tick.md)
    c = make_controller("kbt", TARGET)
    passes = []
    run_deployment(c, TARGET, DeployConfig(samples=40, episodes=1, stream="onpolicy", checkpoints=(40,)),
                   on_tick=lambda s, f, res: passes.append(c.feature_passes))
    assert np.all(np.diff(passes) == 1) and c.n_updates == 40
