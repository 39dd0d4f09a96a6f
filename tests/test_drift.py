"""Changes during a run: the schedule, the deployed loop on the plant in force, the drift experiment."""

import json

import numpy as np
import pytest

from sim.world.cartpole import TARGET
from sim.loops.deploy import DeployConfig, run_deployment
from sim.world.experts import expert_for
from sim.loops.methods import make_controller
from sim.world.schedule import Change, check_schedule, parse_change
from sim.world.task import as_task

P1 = TARGET.with_(m_c=1.0, m_p=0.5, l_p=2.0)


def test_parse_change_forms_and_errors():
    c = parse_change("400:1,0.5,2", TARGET)
    assert c.at == 400 and c.params == P1 and c.sigma_data is None
    assert parse_change("800:noise=4", TARGET) == Change(800, sigma_data=4.0)
    for bad in ("400", "x:1,2,3", "400:1,2", "400:1,-2,3", "400:noise=-1", "0:1,1,1"):
        with pytest.raises(ValueError):
            parse_change(bad, TARGET)
    with pytest.raises(ValueError, match="found noise 'abc'"):       # the form, not Python's float() text
        parse_change("400:noise=abc", TARGET)
    with pytest.raises(ValueError, match="past the run"):
        check_schedule([Change(500, sigma_data=1.0)], 400)
    with pytest.raises(ValueError, match="two changes"):
        check_schedule([Change(5, sigma_data=1.0), Change(5, params=P1)], 400)


def test_a_plant_change_is_learned_and_measured_on_the_plant_in_force():
    c = make_controller("kbt", TARGET)
    cfg = DeployConfig(samples=500, episodes=20, seed=3, changes=(Change(300, params=P1),),
                       checkpoints=(300, 305, 500))
    rows = run_deployment(c, TARGET, cfg).rows
    assert [r["plant"] for r in rows] == [[1.0, 1.0, 5.0]] * 2 + [[1.0, 0.5, 2.0]] * 2
    # just before the change the head fits TARGET; just after, it is wrong about the new plant
    assert rows[1]["rmse_expert_N"] < 0.2 < rows[2]["rmse_expert_N"]
    assert rows[-1]["rmse_expert_N"] < 0.1 and rows[-1]["success_rate"] == 1.0
    assert rows[-1]["changes"] == 1 and c.n_changes == 1
    # the labels after the change are the new plant's expert's
    probe = np.random.default_rng(0).uniform(-0.05, 0.05, (50, 4))
    err_new = np.abs(c.act(probe) - expert_for(as_task(P1)).act(probe)).max()
    err_old = np.abs(c.act(probe) - expert_for(as_task(TARGET)).act(probe)).max()
    assert err_new < 0.1 < err_old


def test_no_change_leaves_the_run_as_it_was():
    runs = [run_deployment(make_controller("rls", TARGET), TARGET,
                           DeployConfig(samples=60, episodes=5, seed=1, changes=ch)).rows
            for ch in ((), (Change(59, sigma_data=0.0),))]
    assert [r["success_rate"] for r in runs[0]] == [r["success_rate"] for r in runs[1]]
    assert runs[0][-1]["noise_var"] == runs[1][-1]["noise_var"]


def test_label_noise_change_is_followed_by_the_learned_noise():
    c = make_controller("kbt", TARGET)
    cfg = DeployConfig(samples=3000, episodes=5, seed=2, changes=(Change(500, sigma_data=4.0),),
                       checkpoints=(500, 3000))
    rows = run_deployment(c, TARGET, cfg).rows
    assert rows[1]["noise_var"] < 0.5 and rows[-1]["noise_var"] == pytest.approx(4.0, rel=0.2)
    assert rows[-1]["sigma_data"] == 4.0


def test_kbt_run_change_flag_reports_the_detection(capsys):
    from sim.cli import main

    assert main(["run", "--samples", "300", "--episodes", "10", "--no-progress",
                 "--change", "150:1,0.5,2"]) == 0
    out = capsys.readouterr().out
    assert "1 changes detected" in out
    with pytest.raises(SystemExit) as stop:
        main(["run", "--change", "500:1,1,1", "--samples", "100"])
    assert stop.value.code == 2
    assert "--change: a change at tick 500 is past the run's 100 samples" in capsys.readouterr().err


def test_drift_experiment_quick_writes_its_files(tmp_path, capsys):
    from sim.cli import main

    out = tmp_path / "drift"
    assert main(["experiment", "drift", "--quick", "--jobs", "1", "--no-progress", "--out", str(out),
                 "--methods", "kbt", "rls", "--trials", "1"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert set(res["schedules"]) == {"balance", "balance-cart", "swingup", "noise"}
    bal = res["schedules"]["balance"]
    assert bal["change_ticks"] == [100, 200] and len(bal["methods"]["kbt"]["samples_to_099"][0]) == 2
    assert (out / "results.csv").stat().st_size > 0 and (out / "drift.png").stat().st_size > 0
    text = capsys.readouterr().out
    assert "to 0.99" in text and "plant (1, 0.5, 2)" in text


def test_drift_flags_reach_the_spec_and_the_head():
    from sim.cli import build_parser
    from sim.cli.experiment_specs import drift_spec

    args = build_parser().parse_args(["experiment", "drift", "--schedules", "swingup-swap", "--methods", "kbt",
                                      "--weights", "swingup-alpaca", "--change-reset", "prior", "--reset-scale", "10",
                                      "--detect", "200", "--trials", "3", "--swingup-trials", "2"])
    spec = drift_spec(args)
    head = spec.settings.head
    assert spec.schedules == ("swingup-swap",) and spec.trials_of("kbt", "swingup-swap") == 2
    assert spec.settings.weights == "swingup-alpaca"
    assert (head.change_reset, head.change_reset_scale, head.change_threshold) == ("prior", 10.0, 200.0)


def test_onpolicy_trials_differ_and_repeat(tmp_path):
    from sim.cli import main

    paths = [tmp_path / f"run{k}.json" for k in range(2)]
    for p in paths:
        assert main(["run", "--stream", "onpolicy", "--trials", "3", "--samples", "30", "--episodes", "10",
                     "--no-progress", "--json", str(p)]) == 0
    a, b = (json.loads(p.read_text()) for p in paths)
    assert a["success_per_trial"] == b["success_per_trial"], "a re-run is identical"
    assert a["trial_seeds"] == [0, 1, 2]
    pred = [[r["pred_std"] for r in rows] for rows in a["per_trial"]]
    assert len({tuple(p) for p in pred}) == 3, "each trial is its own run"


def test_plant_in_force_is_the_last_plant_change_due():
    from sim.world.cartpole import SOURCE, TARGET
    from sim.world.schedule import Change, plant_in_force

    a, b = TARGET.with_(m_p=0.5), TARGET.with_(l_p=2.0)
    changes = (Change(3, params=a), Change(5, sigma_data=4.0), Change(7, params=b))
    assert [plant_in_force(changes, t, SOURCE) for t in (0, 2, 3, 6, 7, 100)] == [SOURCE, SOURCE, a, a, b, b]
    assert plant_in_force((), 10, TARGET) is TARGET


def test_a_change_between_episodes_starts_a_new_episode_at_its_tick():
    from sim.experiments.drift import DriftSpec

    episodes, states = [], []
    for restart in (False, True):
        seen = {}
        cfg = DeployConfig(samples=60, episodes=2, seed=1, changes=(Change(40, params=P1, restart=restart),))
        res = run_deployment(make_controller("lqr", TARGET), TARGET, cfg,
                             on_tick=lambda state, force, r: seen.setdefault(r.ticks, state.copy()))
        episodes.append(res.plant_episodes)
        states.append(seen)
    # one more episode, and the same ticks until the change (the new one draws from the plant's rng)
    assert episodes[1] == episodes[0] + 1
    np.testing.assert_array_equal(states[0][40], states[1][40])
    assert np.abs(states[0][41] - states[1][41]).max() > 1e-3
    assert "between episodes" in Change(40, params=P1, restart=True).describe()
    spec = DriftSpec()
    assert [c.restart for c in spec.schedule("swingup-swap")[3]] == [True]
    assert [c.restart for c in spec.schedule("swingup")[3]] == [False]
    assert "swingup-swap" not in spec.schedules
