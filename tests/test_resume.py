"""Resuming a saved head: ``kbt run --load-state`` continues the sample count and
the i.i.d. stream where the saved run stopped, and takes the saved run's
settings unless the command line gives them (docs/deployed-loop.md)."""

import json
import re

import numpy as np
import pytest

from controller.lqr import LQRController
from sim.cli import run_learning as cli_run_learning
from sim.world.cartpole import TARGET
from sim.cli import main
from sim.world.data import sample_dataset
from sim.loops.deploy import DeployConfig, iid_samples, run_deployment

QUICK = ["--episodes", "1", "--no-progress"]


def _run(argv, capsys):
    assert main(["run", *argv, *QUICK]) == 0
    return capsys.readouterr()


def _rows(out):
    """The 'samples' column of the progress table."""
    return [int(line.split()[0]) for line in out.splitlines() if re.match(r"^\s+\d+\s+\d\.\d\d\s", line)]


def _record(path):
    with np.load(path) as data:
        return json.loads(str(data["__run__"]))


def _posterior(path):
    with np.load(path) as data:
        return {k: data[k] for k in data.files if k.startswith("layer") or k == "__noise__"}


def _same_head(a, b):
    pa, pb = _posterior(a), _posterior(b)
    assert sorted(pa) == sorted(pb) and any(k.startswith("layer") for k in pa)
    for k in pa:
        np.testing.assert_allclose(pa[k], pb[k], rtol=0, atol=1e-12, err_msg=k)


# ------------------------------------------------------------------ the stream
def test_iid_samples_in_blocks_are_one_long_stream():
    expert = LQRController(TARGET)
    for sigma in (0.0, 4.0):
        S, F = iid_samples(expert, 7, 0, 100, sigma_data=sigma)
        blocks = [iid_samples(expert, 7, a, b - a, sigma_data=sigma) for a, b in ((0, 13), (13, 60), (60, 100))]
        assert np.array_equal(S, np.vstack([s for s, _ in blocks]))
        assert np.array_equal(F, np.concatenate([f for _, f in blocks]))
    S0, F0 = sample_dataset(expert, 50, seed=7)            # the stream before resuming existed
    S, F = iid_samples(expert, 7, 0, 50)
    assert np.array_equal(S, S0) and np.array_equal(F, F0)


def test_noise_is_the_same_draw_whatever_sigma_data():
    expert = LQRController(TARGET)
    _, F0 = iid_samples(expert, 3, 10, 20)
    _, F1 = iid_samples(expert, 3, 10, 20, sigma_data=1.0)
    _, F4 = iid_samples(expert, 3, 10, 20, sigma_data=4.0)
    np.testing.assert_allclose(F4 - F0, 2.0 * (F1 - F0), atol=1e-12)


def test_deployed_rows_count_from_start():
    from sim.loops.methods import make_controller

    res = run_deployment(make_controller("kbt", TARGET), TARGET, DeployConfig(samples=30, episodes=1, start=30))
    assert [r["samples"] for r in res.rows] == [30, 40, 55, 60]
    assert res.ticks == 30 and res.start == 30


# ------------------------------------------------------------------ resume = one long run
@pytest.mark.parametrize("method, extra", [("kbt", []), ("kbt", ["--sigma-data", "4"]), ("rls", []),
                                           ("kbt-softmax", [])])
def test_30_saved_then_30_resumed_is_one_run_of_60(method, extra, tmp_path, capsys):
    first, resumed, whole = (tmp_path / n for n in ("first.npz", "resumed.npz", "whole.npz"))
    _run(["--method", method, "--samples", "30", "--seed", "2", *extra, "--save-state", str(first)], capsys)
    out = _run(["--samples", "30", "--load-state", str(first), "--save-state", str(resumed)], capsys)
    _run(["--method", method, "--samples", "60", "--seed", "2", *extra, "--save-state", str(whole)], capsys)
    _same_head(resumed, whole)
    assert _rows(out.out) == [30, 40, 55, 60]                # the table counts from the saved 30
    assert "(30 updates so far)" in out.out and "continues at sample 30" in out.out
    assert out.err == ""                                     # nothing given differs from the saved run
    rec = _record(resumed)
    assert rec["method"] == method and rec["seed"] == 2 and rec["samples"] == 60
    assert rec["positions"] == {"3": 60} and rec["stream_position"] == 60 and rec["data_seed"] == 3


def test_interrupted_run_saves_its_stream_position(tmp_path, capsys, monkeypatch):
    """Ctrl-C after 20 samples saves the head and the position; resuming for 40
    more gives the head of one run of 60."""
    cut, resumed, whole = (tmp_path / n for n in ("cut.npz", "resumed.npz", "whole.npz"))
    calls, original = [], cli_run_learning.DeferredInterrupt

    class InterruptAfter20(original):
        def check(self):
            calls.append(1)
            if len(calls) == 20:
                raise KeyboardInterrupt

    monkeypatch.setattr(cli_run_learning, "DeferredInterrupt", InterruptAfter20)
    with pytest.raises(SystemExit) as e:
        main(["run", "--samples", "60", "--save-state", str(cut), *QUICK])
    assert e.value.code == 130
    assert "saved the head learned so far (20 updates)" in capsys.readouterr().err
    rec = _record(cut)
    assert rec["samples"] == 20 and rec["positions"] == {"1": 20}
    monkeypatch.setattr(cli_run_learning, "DeferredInterrupt", original)
    out = _run(["--samples", "40", "--load-state", str(cut), "--save-state", str(resumed)], capsys)
    assert _rows(out.out)[0] == 20 and _rows(out.out)[-1] == 60
    _run(["--samples", "60", "--save-state", str(whole)], capsys)
    _same_head(resumed, whole)


# ------------------------------------------------------------------ settings
def test_saved_settings_are_restored_and_a_given_one_that_differs_is_noted(tmp_path, capsys):
    first, second = tmp_path / "first.npz", tmp_path / "second.npz"
    _run(["--method", "rls", "--system", "source", "--seed", "3", "--obs-noise", "2", "--robust", "0",
          "--samples", "12", "--save-state", str(first)], capsys)
    out = _run(["--samples", "5", "--sigma-data", "10", "--load-state", str(first), "--save-state", str(second)],
               capsys)
    assert out.out.splitlines()[1].startswith("rls on source: 5 ticks after the saved run's 12 (i.i.d. states")
    assert out.err.strip() == "note: --sigma-data 10 differs from the saved run (0); using 10"
    rec = _record(second)
    assert (rec["method"], rec["system"], rec["seed"], rec["sigma_data"]) == ("rls", "source", 3, 10.0)
    assert rec["head"]["obs_noise"] == 2.0 and rec["head"]["robust"] == 0.0
    assert rec["samples"] == 17 and rec["positions"] == {"4": 17}


def test_several_differences_are_one_line_and_a_new_seed_starts_its_own_stream(tmp_path, capsys):
    first, second = tmp_path / "first.npz", tmp_path / "second.npz"
    _run(["--samples", "12", "--save-state", str(first)], capsys)
    out = _run(["--samples", "5", "--seed", "4", "--system", "source", "--load-state", str(first),
                "--save-state", str(second)], capsys)
    assert out.err.strip() == ("note: --system source, --seed 4 differ from the saved run (target, 0); "
                               "using the values given")
    assert "data seed 5) continues at sample 0" in out.out
    rec = _record(second)
    assert rec["positions"] == {"1": 12, "5": 5} and rec["samples"] == 17


def test_a_different_head_setting_given_is_still_an_error(tmp_path, capsys):
    path = tmp_path / "head.npz"
    _run(["--samples", "12", "--robust", "4", "--save-state", str(path)], capsys)
    out = _run(["--samples", "3", "--load-state", str(path)], capsys)         # restored: loads
    assert "(12 updates so far)" in out.out
    with pytest.raises(SystemExit) as e:
        main(["run", "--samples", "3", "--robust", "8", "--load-state", str(path), *QUICK])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "other head settings: --robust 4.0 in the file, 8.0 now" in err and "note:" not in err


def test_onpolicy_resume_continues_the_count(tmp_path, capsys):
    first, second = tmp_path / "first.npz", tmp_path / "second.npz"
    _run(["--samples", "12", "--stream", "onpolicy", "--save-state", str(first)], capsys)
    rec = _record(first)
    assert rec["stream"] == "onpolicy" and rec["samples"] == 12 and rec["positions"] == {}
    out = _run(["--samples", "10", "--load-state", str(first), "--save-state", str(second)], capsys)
    assert _rows(out.out) == [12, 22] and "on-policy stream has no stored position" in out.out
    assert _record(second)["samples"] == 22


def test_old_state_file_without_a_run_record_still_loads(tmp_path, capsys):
    from sim.loops.methods import make_controller

    path = tmp_path / "old.npz"
    c = make_controller("kbt", TARGET)
    S, F = sample_dataset(LQRController(TARGET), 15, seed=1)
    for s, f in zip(S, F):
        c.observe(s, f)
    c.save_state(path)                                    # as kbt saved it before the run record
    with np.load(path) as data:
        assert "__run__" not in data.files
    out = _run(["--samples", "10", "--load-state", str(path)], capsys)
    assert "(15 updates so far)" in out.out
    assert _rows(out.out) == [15, 25]
    assert out.err.startswith("warning: ") and "stream position" in out.err and "unknown" in out.err
    assert len(out.err.strip().splitlines()) == 1


def test_view_resumes_with_the_saved_settings(tmp_path, capsys):
    path = tmp_path / "head.npz"
    _run(["--samples", "12", "--obs-noise", "2", "--save-state", str(path)], capsys)
    assert main(["view", "--load-state", str(path), "--samples", "3", "--seconds", "0.1", "--headless",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "(12 updates so far)" in out and "continues at sample 12" in out
