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
