"""Learning on the job: who labels (always / uncertain / random) in the deployed
loop, and the on-policy experiment built on it."""

import numpy as np
import pytest

from sim.world.cartpole import TARGET
from sim.loops.deploy import DeployConfig, epistemic_std, run_deployment
from sim.experiments.onpolicy import OnPolicySpec, labels_to_reach, run_onpolicy, swingup_spec
from sim.loops.methods import make_controller


def _run(labels, **kw):
    c = make_controller("kbt", TARGET)
    cfg = DeployConfig(samples=60, episodes=2, stream="onpolicy", labels=labels, **kw)
    return c, run_deployment(c, TARGET, cfg)


def test_always_labels_every_tick_and_expert_never_acts():
    _, res = _run("always")
    assert res.labels == res.ticks == 60 and res.takeovers == 0


def test_uncertain_threshold_extremes():
    # above any std: the expert never takes over and nothing is learned;
    # below any std: it takes over every tick, and every tick is a label
    c, res = _run("uncertain", ask_above=1e6)
    assert res.labels == 0 and res.takeovers == 0 and c.n_updates == 0
    c, res = _run("uncertain", ask_above=1e-9)
    assert res.labels == res.takeovers == res.ticks == 60 and c.n_updates == 60


def test_uncertain_asks_exactly_where_the_std_is_above_the_threshold():
    """Replay: at every tick the expert took over iff the controller's epistemic
    std at that state (before the update) was above the threshold."""
    c = make_controller("kbt", TARGET)
    seen = []

    class Spy:
        def __init__(self, inner):
            self.inner = inner

        def act(self, s):
            return self.inner.act(s)

        def predict_split(self, S):
            return self.inner.predict_split(S)

        def observe(self, s, f):
            seen.append(np.array(s))
            return self.inner.observe(s, f)

    res = run_deployment(Spy(c), TARGET, DeployConfig(samples=80, episodes=2, stream="onpolicy", labels="uncertain",
                                                      ask_above=1.0))
    assert 0 < res.labels < res.ticks and len(seen) == res.labels == res.takeovers
    # after learning, the states it asked about are now known to better than the threshold... mostly
    assert np.mean([epistemic_std(c, s) for s in seen]) < 1.0


def test_random_labels_follow_the_rate():
    _, res = _run("random", label_rate=0.25)
    assert res.labels == res.takeovers and 5 <= res.labels <= 25


def test_label_modes_validated():
    with pytest.raises(ValueError, match="labels"):
        DeployConfig(labels="sometimes")
    with pytest.raises(ValueError, match="onpolicy"):
        DeployConfig(labels="uncertain")                 # the i.i.d. stream has no expert at the wheel
    with pytest.raises(ValueError, match="label_rate"):
        DeployConfig(stream="onpolicy", labels="random", label_rate=0.0)
    with pytest.raises(ValueError, match="ask_above"):
        DeployConfig(stream="onpolicy", labels="uncertain", ask_above=-1)
    with pytest.raises(ValueError, match="epistemic"):
        run_deployment(make_controller("lqr", TARGET), TARGET,
                       DeployConfig(samples=5, episodes=1, stream="onpolicy", labels="uncertain"))
    with pytest.raises(TypeError, match="config"):
        run_deployment(make_controller("lqr", TARGET), TARGET, {"samples": 5})


def test_same_seed_same_gated_run():
    a = _run("uncertain", seed=4)[1]
    b = _run("uncertain", seed=4)[1]
    for i, (ra, rb) in enumerate(zip(a.rows, b.rows)):
        assert {k: ra[k] for k in ("success_rate", "labels", "falls")} == \
               {k: rb[k] for k in ("success_rate", "labels", "falls")}, f"checkpoint {i}"


def test_labels_to_reach():
    rec = {"success_rate": [0.0, 1.0, 0.5, 1.0, 1.0], "labels": [0, 10, 20, 30, 40]}
    assert labels_to_reach(rec) == 30                       # must hold to the end
    assert labels_to_reach({"success_rate": [0.0, 0.2], "labels": [0, 5]}) is None


def test_spec_validation():
    with pytest.raises(ValueError, match="methods"):
        OnPolicySpec(methods=("lqr",))
    with pytest.raises(ValueError, match="gated"):
        OnPolicySpec(gated=("retrain-10",))
    with pytest.raises(ValueError, match="streams"):
        OnPolicySpec(streams=("sometimes",))
    with pytest.raises(ValueError, match="task"):
        OnPolicySpec(task="juggle")
    assert swingup_spec().variants()[:2] == ["kbt", "kbt-softmax"] and "kbt@iid" in swingup_spec().variants()


def test_small_onpolicy_run_is_deterministic_and_complete(tmp_path):
    spec = OnPolicySpec.quick(methods=("kbt", "rls"), trials=2, ticks=40, every=20, episodes=3)
    a = run_onpolicy(spec, progress=False)
    b = run_onpolicy(spec, progress=False)
    assert set(a["variants"]) == {"kbt", "rls", "kbt+uncertain", "kbt+random"}
    for v in a["variants"]:
        for key in ("success_rate", "labels", "falls", "takeovers"):
            assert a["variants"][v][key] == b["variants"][v][key], f"{v} {key}"
    # the random variant gets the label rate of the uncertain one, trial by trial
    for t in range(2):
        unc = a["variants"]["kbt+uncertain"]["labels"][t][-1]
        assert a["variants"]["kbt+random"]["label_rate"][t] == pytest.approx(max(unc, 1) / 40)
    assert a["variants"]["kbt"]["labels"][0] == [0, 20, 40]


# ---------------------------------------------------------------- probing (persistent excitation)
from sim.loops.deploy import probe_force  # noqa: E402
from sim.world.task import BALANCE, SWINGUP, as_task  # noqa: E402


def test_probe_force_follows_the_epistemic_std_and_stays_in_its_limits():
    task, s = as_task(TARGET), np.zeros(4)
    # proportional to the epistemic std (and the gain, and the signal) while below the cap
    assert probe_force(0.5, 2.0, 1.0, 5.0, s, task) == pytest.approx(1.0)
    assert probe_force(0.5, 4.0, 1.0, 5.0, s, task) == pytest.approx(2.0)
    assert probe_force(-0.5, 4.0, 0.5, 5.0, s, task) == pytest.approx(-1.0)
    assert probe_force(1.0, 0.0, 1.0, 5.0, s, task) == 0.0          # a known state is not probed
    # never above the cap
    assert probe_force(3.0, 100.0, 1.0, 5.0, s, task) == 5.0
    assert probe_force(-3.0, 100.0, 1.0, 5.0, s, task) == -5.0
    # none beyond half of a failure bound
    near_edge_x = np.array([0.51 * task.x_limit, 0, 0, 0])
    near_edge_theta = np.array([0, 0, -0.51 * task.theta_limit, 0])
    assert probe_force(1.0, 3.0, 1.0, 5.0, near_edge_x, task) == 0.0
    assert probe_force(1.0, 3.0, 1.0, 5.0, near_edge_theta, task) == 0.0


class _Recorder:
    """The controller, recording (state, mean force, epistemic std) at each of its single-state actions."""

    def __init__(self, inner):
        self.inner, self.seen = inner, []

    def act_split(self, s):
        mu, q = self.inner.act_split(s)
        self.seen.append((np.array(s), mu, np.sqrt(q)))
        return mu, q

    def act(self, s):
        return self.inner.act(s)

    def predict_split(self, S):
        return self.inner.predict_split(S)

    def observe(self, s, f):
        return self.inner.observe(s, f)


@pytest.mark.parametrize("method", ["kbt", "rls"])
def test_probing_size_follows_the_std_within_limits_and_is_seeded(method):
    forces = []
    rec = _Recorder(make_controller(method, TARGET))
    cfg = DeployConfig(samples=120, episodes=2, stream="onpolicy", probe=1.0, probe_max=2.0, seed=3)
    res = run_deployment(rec, TARGET, cfg, on_tick=lambda s, f, r: forces.append(f))
    assert res.probe_ticks == res.ticks == 120 and res.plant_failures == 0
    d = np.array(forces) - np.array([mu for _, mu, _ in rec.seen])
    std = np.array([e for _, _, e in rec.seen])
    assert np.all(np.abs(forces) <= TARGET.u_max)
    assert np.all(np.abs(d) <= 2.0 + 1e-12)                        # the cap
    assert np.all(np.abs(d) <= 1.0 * std * 5.0)                    # k x std x xi, |xi| < 5
    assert np.std(d) > 0.05                                        # it does probe
    # the size follows the std: the probe shrinks as the head learns
    assert np.mean(np.abs(d[-40:])) < np.mean(np.abs(d[:40]))
    # the same seed, the same probing; another seed, other probing
    again = []
    run_deployment(make_controller(method, TARGET), TARGET, cfg, on_tick=lambda s, f, r: again.append(f))
    assert again == forces
    other = []
    run_deployment(make_controller(method, TARGET), TARGET, DeployConfig(**{**cfg.__dict__, "seed": 4}),
                   on_tick=lambda s, f, r: other.append(f))
    assert other != forces


def test_probe_off_and_iid_stream_act_with_the_mean_force():
    for cfg in (DeployConfig(samples=50, episodes=2, stream="onpolicy", probe=0.0),
                DeployConfig(samples=50, episodes=2, stream="iid", probe=1.0)):
        forces, c = [], make_controller("kbt", TARGET)
        res = run_deployment(c, TARGET, cfg, on_tick=lambda s, f, r: forces.append(f))
        assert res.probe_ticks == 0
    assert DeployConfig(stream="iid").probe_gain(TARGET) == 0.0
    # the defaults, each chosen on tuning trials of its task
    assert DeployConfig(stream="onpolicy").probe_gain(BALANCE) == 1.0
    assert DeployConfig(stream="onpolicy").probe_gain(SWINGUP) == 2.0
    assert DeployConfig(stream="onpolicy", probe=0.3).probe_gain(SWINGUP) == 0.3


def test_probe_settings_validated():
    for kw, name in (({"probe": -0.1}, "probe"), ({"probe_memory": 0.5}, "probe_memory"),
                     ({"probe_max": 0.0}, "probe_max")):
        with pytest.raises(ValueError, match=name):
            DeployConfig(stream="onpolicy", **kw)
    with pytest.raises(ValueError, match="probe"):
        OnPolicySpec(probe=-1.0)


@pytest.mark.parametrize("method", ["kbt", "rls"])
def test_act_split_is_act_and_predict_split(method):
    c = make_controller(method, TARGET)
    rng = np.random.default_rng(0)
    for _ in range(5):
        c.observe(rng.uniform(-0.05, 0.05, 4), rng.normal())
    for s in rng.uniform(-0.1, 0.1, (4, 4)):
        mu, q = c.act_split(s)
        m, _, e = c.predict_split(s[None])
        assert mu == pytest.approx(c.act(s), abs=1e-9) and q == pytest.approx(e[0], rel=1e-9)


def test_probing_rescues_an_under_excited_on_policy_run():
    """A tuning seed whose visited states leave the read-out unlearned: without probing
    the learned controller fails the evaluation episodes; with the default probing it
    succeeds, and the deployed plant never falls either way (docs/onpolicy.md)."""
    out = {}
    for probe in (0.0, None):
        cfg = DeployConfig(samples=400, episodes=20, stream="onpolicy", seed=120, probe=probe, checkpoints=(400,))
        res = run_deployment(make_controller("kbt", TARGET), TARGET, cfg)
        out[probe] = res.rows[-1]["success_rate"]
        assert res.plant_failures == 0
    assert out[0.0] < 0.5 and out[None] == 1.0
