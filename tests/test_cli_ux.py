"""Command-line robustness: output paths checked before any work, Ctrl-C,
headless view, flags that do not apply, bounds, state-file and --from messages,
--version and help texts. Every error is one line naming the flag, exit 2
(1 for an OSError at run time, 130 for Ctrl-C), never a traceback."""

import argparse
import json
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from sim import cli
from sim.cli import flags as cli_flags, resume as cli_resume, run_learning as cli_run_learning
from sim.cli import main

REPO = Path(__file__).resolve().parents[1]


def _fails(argv, capsys, code=2):
    """Run ``kbt argv``; expect SystemExit(code) and return stderr (one line, no traceback)."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    out, err = capsys.readouterr()
    assert e.value.code == code, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return out, err


# ------------------------------------------------------------------ 1. output paths
@pytest.mark.parametrize("argv, words", [
    (["run", "--method", "lqr", "--json", "nodir/x.json"],
     "kbt run: error: --json: cannot write nodir/x.json: no such folder"),
    (["run", "--method", "lqr", "--json", "{tmp}"], "--json: cannot write {tmp}: is a folder"),
    (["run", "--method", "lqr", "--json", "{file}/x.json"], "--json: cannot write {file}/x.json: {file} is not a folder"),
    (["run", "--samples", "5", "--save-state", "nodir/h.npz"], "--save-state: cannot write nodir/h.npz: no such folder"),
    (["view", "--method", "lqr", "--screenshot", "nodir/v.png"], "--screenshot: cannot write nodir/v.png: no such folder"),
    (["view", "--method", "lqr", "--frames", "{file}"], "--frames: cannot write into {file}: is a file"),
    (["experiment", "fig3", "--quick", "--out", "{file}"], "--out: cannot write into {file}: is a file"),
    (["experiment", "fig5", "--quick", "--out", "{file}/sub/dir"], "--out: cannot create {file}/sub/dir: "),
    (["pretrain", "--out", "nodir/w.npz"], "kbt pretrain: error: --out: cannot write nodir/w.npz: no such folder"),
    (["profile", "--quick", "--json", "nodir/p.json"], "kbt profile: error: --json: cannot write nodir/p.json: no such folder"),
    (["profile", "--quick", "--json", "{tmp}"], "--json: cannot write {tmp}: is a folder"),
])
def test_output_paths_are_checked_before_any_work(argv, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    fill = {"tmp": str(tmp_path), "file": "afile"}
    out, err = _fails([a.format(**fill) for a in argv], capsys)
    assert words.format(**fill) in err
    assert out == ""                     # nothing ran
    assert not (tmp_path / "nodir").exists()


def test_out_folder_that_can_be_created_is_accepted(tmp_path):
    cli_flags.check_output_dir("--out", str(tmp_path / "new" / "deeper"))       # no error, nothing created
    assert not (tmp_path / "new").exists()
    cli_flags.check_output_file("--json", str(tmp_path / "x.json"))


def test_os_error_at_run_time_is_one_line_exit_1(tmp_path, capsys, monkeypatch):
    def refuse(path, payload):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(cli_flags, "write_json", refuse)
    _, err = _fails(["run", "--method", "lqr", "--episodes", "2", "--json", str(tmp_path / "r.json")], capsys, code=1)
    assert err.strip() == f"kbt run: error: {tmp_path / 'r.json'}: Permission denied"


# ------------------------------------------------------------------ 2. Ctrl-C
def test_keyboard_interrupt_is_one_line_exit_130(capsys, monkeypatch):
    import sim.loops.loop

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(sim.loops.loop, "evaluate_success", interrupted)
    _, err = _fails(["run", "--method", "lqr", "--episodes", "2"], capsys, code=130)
    assert err.strip() == "kbt run: interrupted"


def test_deferred_interrupt_waits_for_check_then_a_second_press_stops_at_once():
    with cli_run_learning.DeferredInterrupt() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)                 # the handler runs between bytecodes: nothing raised yet
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            stop.check()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _lines(stream, q):
    for line in iter(stream.readline, ""):
        q.put(line)
    q.put(None)


def test_ctrl_c_during_kbt_run_saves_the_head_learned_so_far(tmp_path, capsys):
    state = tmp_path / "head.npz"
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "sim.cli", "run", "--samples", "100000", "--episodes", "2",
                             "--no-progress", "--save-state", str(state)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    q = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, q), daemon=True).start()
    seen, deadline = [], time.monotonic() + 240
    try:
        while time.monotonic() < deadline:           # wait until it has learned (the 25-sample checkpoint row)
            line = q.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "kbt run ended before it was interrupted:\n" + "".join(seen)
            seen.append(line)
            if line.split()[:1] == ["25"]:
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert re.search(r"^kbt run: interrupted after \d+ samples$", err, re.M), err
    assert f"saved the head learned so far" in err and str(state) in err
    assert state.exists()
    assert main(["run", "--samples", "1", "--episodes", "1", "--no-progress", "--load-state", str(state)]) == 0
    m = re.search(r"\((\d+) updates so far\)", capsys.readouterr().out)
    assert m and int(m.group(1)) >= 25


# ------------------------------------------------------------------ 3. headless view
def test_view_without_a_display_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    _, err = _fails(["view", "--method", "lqr"], capsys)
    assert "no display" in err and "--frames" in err and "--headless" in err
    monkeypatch.delenv("SDL_VIDEODRIVER")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if sys.platform.startswith("linux"):
        _, err = _fails(["view", "--method", "lqr"], capsys)
        assert "DISPLAY" in err
        _, err = _fails(["run", "--method", "lqr", "--episodes", "1", "--view"], capsys)
        assert "--view: no display" in err


def test_offscreen_view_without_seconds_stops_after_ten_seconds(tmp_path, capsys):
    shot = tmp_path / "v.png"
    assert main(["view", "--method", "lqr", "--screenshot", str(shot)]) == 0
    out, err = capsys.readouterr()
    assert "stopping after 10 s" in err
    assert "10.0 s simulated" in out and shot.exists()
    assert "10 s" in _subparsers()["view"].format_help()


# ------------------------------------------------------------------ 4. silent acceptance becomes errors
@pytest.mark.parametrize("argv, message", [
    (["run", "--trials", "0"], "--trials: expected an integer in [1, 1000] but found 0"),
    (["run", "--episodes", "0"], "--episodes: expected an integer in [1, 100000] but found 0"),
    (["run", "--method", "lqr", "--episodes", "0"], "--episodes: expected an integer in [1, 100000] but found 0"),
    (["run", "--method", "lqr", "--episodes", "100001"], "--episodes: expected an integer in [1, 100000]"),
    (["run", "--samples", "1000001"], "--samples: expected an integer in [1, 1000000] but found 1000001"),
    (["run", "--samples", "0"], "--samples: expected an integer in [1, 1000000] but found 0"),
    (["run", "--obs-noise", "1e-9"], "--obs-noise: expected a number in [1e-08, "),
    (["run", "--obs-noise", "nan"], "--obs-noise: expected a number"),
    (["run", "--prior-var", "0"], "--prior-var: expected numbers in (0, 1e+06] but found 0"),
    (["run", "--prior-var", "1", "2e6"], "--prior-var: expected numbers in (0, 1e+06] but found 2e+06"),
    (["run", "--sigma-data", "-2"], "--sigma-data: expected a number in [0, "),
    (["run", "--m-p", "0"], "--m-p: expected a number in (0, "),
    (["lqr", "--m-c", "-1"], "--m-c: expected a number in (0, "),
    (["view", "--method", "lqr", "--seconds", "0", "--headless"], "--seconds: expected a number in (0, "),
    (["experiment", "fig3", "--jobs", "0"], "--jobs: expected an integer in [1, 1024] but found 0"),
    (["experiment", "calibration", "--from", "x", "--quick"], "--from: cannot be combined with --quick"),
    (["experiment", "fig3", "--from", "x"], "--from: only experiment calibration reads a previous run"),
    (["experiment", "fig5", "--trials", "3"], "--trials: does not apply to experiment fig5"),
    (["experiment", "fig3", "--samples", "0"], "--samples: expected an integer in [1, 1000000] but found 0"),
    (["experiment", "adapt", "--schedules", "swingup"], "--schedules: does not apply to experiment adapt"),
    (["experiment", "drift", "--schedules", "swing"], "--schedules: expected among balance, balance-cart, "),
    (["experiment", "drift", "--reset-scale", "3"], "--reset-scale: applies only with --change-reset prior"),
    (["experiment", "drift", "--change-reset", "prior", "--reset-scale", "0"], "--reset-scale: expected a number in (0, "),
    (["experiment", "drift", "--detect", "-1"], "--detect: expected a number in [0, "),
    (["experiment", "drift", "--swingup-trials", "0"], "--swingup-trials: expected an integer in [1, 1000]"),
    (["experiment", "drift", "--trials", "3", "--swingup-trials", "4"], "--swingup-trials: expected at most --trials (3)"),
    (["experiment", "drift", "--methods", "kbt-softmax", "--change-reset", "prior"],
     "--change-reset: applies to kbt and rls (the force head), and --methods gives neither"),
    (["experiment", "drift", "--weights", "swingup-alpaca"], "--weights: give --schedules of one task"),
    (["experiment", "drift", "--weights", "swingup-alpaca", "--schedules", "balance"],
     "--weights: swingup-alpaca is pre-trained for the swingup task; give --schedules among swingup swingup-swap"),
    (["pretrain", "--out", "w.npz", "--steps", "0"], "--steps: expected an integer in [1, "),
    (["profile", "--rate", "0"], "--rate: expected a number in (0, "),
    (["run", "--allow-prior"], "--allow-prior: only together with --load-state"),
    (["run", "--method", "lqr", "--samp", "5"], "--samples: does not apply to --method lqr"),       # abbreviated
    (["run", "--method=pretrained", "--episodes=0"], "--episodes: expected an integer"),
])
def test_bad_values_name_the_flag(argv, message, capsys):
    fixed = any(a in argv for a in ("lqr", "--method=lqr", "expert", "pretrained", "--method=pretrained"))
    quiet = argv[0] in ("experiment", "profile") or (argv[0] in ("run", "view") and not fixed)
    _, err = _fails(argv + (["--no-progress"] if quiet else []), capsys)   # no progress bar, no --no-progress
    assert message in err
    assert not re.search(r"error: (n_episodes|m_c|m_p|prior_var|obs_noise|sigma_data|n_layers):", err)


LEARNER_ONLY = [("--samples", "10"), ("--trials", "2"), ("--sigma-data", "1"), ("--head-layers", "2"),
                ("--prior-var", "1"), ("--obs-noise", "1"), ("--update", "paper"), ("--capacity", "5"),
                ("--epochs", "2"), ("--lr", "0.01"), ("--stream", "onpolicy"), ("--save-state", "h.npz"),
                ("--load-state", "h.npz")]


@pytest.mark.parametrize("method", ["lqr", "pretrained"])
@pytest.mark.parametrize("flag, value", LEARNER_ONLY)
def test_learner_flags_with_a_fixed_controller_are_errors(method, flag, value, capsys):
    # given explicitly -- even with the default value -- they are an error
    _, err = _fails(["run", "--method", method, flag, value], capsys)
    if flag in ("--save-state", "--load-state"):
        assert f"error: --save-state/--load-state: only kbt" in err and f"not {method}" in err
    else:
        assert f"error: {flag}: does not apply to --method {method}" in err


def test_learner_flags_with_their_default_value_are_still_explicit(capsys):
    _, err = _fails(["run", "--method", "lqr", "--samples", "400"], capsys)
    assert "--samples: does not apply" in err
    _, err = _fails(["run", "--method", "kbt", "--capacity", "10"], capsys)
    assert "--capacity: does not apply to --method kbt (only to retrain, blob)" in err
    _, err = _fails(["view", "--method", "lqr", "--samples", "3", "--headless"], capsys)
    assert "--samples: does not apply to --method lqr" in err


def test_library_messages_are_mapped_to_flags(capsys):
    assert cli_flags.flag_message("n_episodes: expected an integer in [1, inf] but found 0") == \
        "--episodes: expected an integer in [1, inf] but found 0"
    assert cli_flags.flag_message("m_c: expected a finite number > 0") == "--m-c: expected a finite number > 0"
    assert cli_flags.flag_message("prior_var[1]: expected > 0") == "--prior-var[1]: expected > 0"
    assert cli_flags.flag_message("--seed: unchanged") == "--seed: unchanged"
    assert cli_flags.flag_message("somefile.npz: corrupt") == "somefile.npz: corrupt"
    # a command's own names (kbt experiment checks each --methods entry as the library's ``method``)
    assert cli_flags.flag_message("method: unknown", {"method": "--methods"}) == "--methods: unknown"
    assert cli_flags.flag_message("method: unknown") == "method: unknown"


# ------------------------------------------------------------------ 5. state files
def test_state_saved_with_other_settings_names_the_differing_flag(tmp_path, capsys):
    path = tmp_path / "head.npz"
    assert main(["run", "--samples", "12", "--episodes", "2", "--no-progress", "--obs-noise", "2",
                 "--save-state", str(path)]) == 0
    capsys.readouterr()
    # without --obs-noise the file's setting is taken (tests/test_resume.py); a different one given is an error
    _, err = _fails(["run", "--samples", "5", "--episodes", "2", "--no-progress", "--obs-noise", "10",
                     "--load-state", str(path)], capsys)
    assert "other head settings" in err and "--obs-noise 2" in err
    assert "HeadConfig(" not in err
    assert err.count(str(path)) == 1


def test_config_difference_from_the_library_message():
    msg = ("/x/h.npz: saved head config HeadConfig(output='gaussian', n_layers=1, prior_var=(1.0, 2.0), "
           "obs_noise=2.0, dtype='float64') does not match the expected HeadConfig(output='gaussian', n_layers=2, "
           "prior_var=(1.0, 2.0), obs_noise=1.0, dtype='float64')")
    text = cli_resume.state_error_text("/x/h.npz", ValueError(msg))
    assert text == ("it was saved with other head settings: --head-layers 1 in the file, 2 now; "
                    "--obs-noise 2.0 in the file, 1.0 now")


@pytest.mark.parametrize("content", [random.Random(0).randbytes(512), b"", b"PK\x03\x04 truncated zip"],
                         ids=["random-bytes", "empty", "truncated-zip"])
def test_random_bytes_as_state_file_is_one_short_line(content, tmp_path, capsys):
    path = tmp_path / "head.npz"
    path.write_bytes(content)
    _, err = _fails(["run", "--samples", "5", "--episodes", "2", "--no-progress", "--load-state", str(path)], capsys)
    assert "allow_pickle" not in err and "pickle" not in err
    assert err.count(str(path)) == 1
    assert "corrupt" in err and "--allow-prior" in err


def test_read_npz_never_advises_allow_pickle(tmp_path):
    import numpy as np

    from controller.model import _read_npz

    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object))
    np.save(tmp_path / "arr.npy", np.zeros(3))
    for p in (tmp_path / "obj.npz", tmp_path / "arr.npy", tmp_path):
        with pytest.raises(ValueError) as e:
            _read_npz(str(p))
        assert "allow_pickle" not in str(e.value) and str(e.value).count(str(p)) == 1


# ------------------------------------------------------------------ 6. calibration --from
def _fake_fig3(folder, checkpoints):
    folder.mkdir()
    rel = [[{"count": [1], "conf_sum": [0.5], "correct": [1]} for _ in checkpoints]]
    series = {k: [[0.5] * len(checkpoints)] for k in ("success_rate", "rmse", "nll", "ece", "accuracy",
                                                      "coverage90", "pred_var")}
    (folder / "results.json").write_text(json.dumps({
        "experiment": "learning", "seed": 0, "trials": 1, "samples": checkpoints[-1], "checkpoints": checkpoints,
        "methods": {"kbt": dict(series, reliability=rel, learn_seconds=[[0.001]])}, "references": {}}))
    return folder


def test_calibration_from_a_quick_fig3_run_says_what_to_do(tmp_path, capsys):
    quick = _fake_fig3(tmp_path / "quick", [20, 40])
    _, err = _fails(["experiment", "calibration", "--from", str(quick), "--out", str(tmp_path / "cal"),
                     "--no-progress"], capsys)
    assert "re-run fig3 without --quick, or run calibration without --from" in err
    assert not (tmp_path / "cal").exists()


@pytest.mark.parametrize("results, words", [
    ({"experiment": "variance", "seed": 0, "runs": {}}, "holds a fig5 run, not a fig3 run"),
    ({"experiment": "learning", "seed": 0}, "incomplete fig3 result"),
    (None, "has no results.json"),
    ("{not json", "is not valid JSON"),
])
def test_calibration_from_a_wrong_folder_is_one_line(results, words, tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    if results is not None:
        (folder / "results.json").write_text(results if isinstance(results, str) else json.dumps(results))
    _, err = _fails(["experiment", "calibration", "--from", str(folder), "--out", str(tmp_path / "cal"),
                     "--no-progress"], capsys)
    assert err.startswith("kbt experiment: error: --from: ") and words in err
    _, err = _fails(["experiment", "calibration", "--from", str(tmp_path / "none"), "--no-progress"], capsys)
    assert "no such folder" in err


# ------------------------------------------------------------------ 7. version, --no-progress, help
def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"kbt {version('kbt')}" == "kbt 0.1.0"


def test_pretrain_no_progress(tmp_path, capsys):
    out = tmp_path / "w.npz"
    assert main(["pretrain", "--out", str(out), "--steps", "3", "--batch", "8", "--no-progress"]) == 0
    assert capsys.readouterr().err == "" and out.exists()


def _subparsers():
    parser = cli.build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


@pytest.mark.parametrize("command", ["lqr", "run", "view", "profile", "experiment", "pretrain"])
def test_every_flag_has_help_showing_its_default(command):
    sub = _subparsers()[command]
    fmt = sub._get_formatter()
    for action in sub._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"kbt {command} {action.option_strings[0]} has no help"
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            continue                                     # an on/off switch: off unless given
        text = fmt._expand_help(action)
        assert "default" in text, f"kbt {command} {action.option_strings[0]}: {text!r} shows no default"


def test_help_shows_defaults_the_help_text_did_not_name():
    text = " ".join(_subparsers()["experiment"].format_help().split())
    assert "retraining epochs per sample (default: 100)" in text
    assert "(default: all cores)" in text


# ------------------------------------------------------------------ 8. first ten minutes
@pytest.mark.parametrize("argv, words", [
    (["run", "--method", "foo"], "kbt run: error: argument --method: invalid choice: 'foo'"),
    (["run", "--samples", "1e3"], "kbt run: error: argument --samples: invalid int value: '1e3'"),
    (["experiment", "fig9"], "kbt experiment: error: argument name: invalid choice: 'fig9'"),
    (["run", "--zzz"], "kbt run: error: unrecognized arguments: --zzz"),
    (["bogus"], "kbt: error: argument command: invalid choice: 'bogus'"),
    ([], "kbt: error: the following arguments are required: command"),
])
def test_a_command_line_argparse_cannot_parse_is_one_line(argv, words, capsys):
    """argparse's own errors: one line pointing at -h, not the usage block."""
    out, err = _fails(argv, capsys)
    assert err.startswith(words) and err.rstrip().endswith("-h)") and "usage:" not in err
    assert out == ""


def _boom(job):
    if job == 1:
        raise ZeroDivisionError("division by zero")
    return job


def test_a_failing_trial_is_one_line_exit_1(tmp_path, capsys, monkeypatch):
    """A trial that raises ends the experiment with one line naming the trial and where, exit 1."""
    from sim.experiments import offline
    from sim.experiments.trials import run_jobs

    def run_learning(spec, jobs, progress, scheduler, store):
        return run_jobs(_boom, [0, 1, 2], progress=False)

    monkeypatch.setattr(offline, "run_learning", run_learning)
    assert main(["experiment", "fig3", "--quick", "--jobs", "1", "--out", str(tmp_path / "o")]) == 1
    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("kbt experiment: error: trials: job 1 (1) failed: ZeroDivisionError: division by zero")
    assert "(at tests/test_cli_ux.py:" in err and f"kept in {tmp_path / 'o' / 'trials'} (--resume" in err


def test_the_run_view_error_names_the_matching_command(capsys, monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    _, err = _fails(["run", "--method", "kbt", "--samples", "5", "--view"], capsys)
    assert "kbt run --view --frames DIR" in err


def test_heads_without_the_mechanisms_show_no_counts():
    """kbt-softmax, retraining and BLoB have no robust weight or change detector: '-', not 0."""
    from sim.cli.run_learning import table_row
    from sim.loops.methods import has_robust_head

    assert [has_robust_head(m) for m in ("kbt", "rls", "kbt-c", "rls-c", "kbt+uncertain", "rls@iid")] == [True] * 6
    assert [has_robust_head(m) for m in ("kbt-softmax", "kbt-softmax@iid", "retrain-10", "blob-10", "lqr", "x")] == \
        [False] * 6
    row = {"samples": 5, "success_rate": 1.0, "pred_std": 0.1, "update_p50_us": 3.0, "update_p99_us": 4.0,
           "deadline_misses": 0, "downweighted": 0, "changes": 0, "rejected": 0, "sensor_faults": 0}
    assert table_row(row, robust=False).split()[7:9] == ["-", "-"]
    assert table_row(row).split()[7:9] == ["0", "0"]
    from sim.experiments.report_deployed import format_summary, summarise_deployed
    from sim.experiments.report_drift import format_drift, summarise_drift

    results = json.loads((REPO / "results" / "swingup" / "results.json").read_text())
    rows = {line.split()[0]: line.split() for line in format_summary(results, summarise_deployed(results)).splitlines()}
    assert rows["kbt-softmax"][-2:] == ["-", "-"] and rows["kbt"][-2:] != ["-", "-"]
    drift = json.loads((REPO / "results" / "drift" / "results.json").read_text())
    for r in summarise_drift(drift):
        assert (r["downweighted"] is None) == (not has_robust_head(r["method"]))
    assert " -        -" in format_drift(summarise_drift(drift))


def test_drift_header_names_the_trials_that_ran():
    from sim.cli.experiment import drift_trials
    from sim.experiments.drift import DriftSpec

    assert drift_trials(DriftSpec.quick()) == "kbt, rls: 2 trials, 1 on swing-up"
    assert drift_trials(DriftSpec()) == "kbt, kbt-softmax, rls: 20 trials, 5 on swing-up; retrain-10, blob-10: 3 trials"
    assert drift_trials(DriftSpec(methods=("kbt",), schedules=("swingup",))) == "kbt: 5 trials"


def test_progress_rate_leaves_out_the_first_unit():
    """The first unit carries Numba's compilation: no time remaining until a second is done."""
    import io

    from sim.loops.progress import Progress

    clock = [0.0]
    stream = io.StringIO()
    with Progress(100, "x", stream=stream, interval=0) as bar:
        bar._bar._time = lambda: clock[0]
        bar._bar.start_t = bar._bar.last_print_t = 0.0
        clock[0] = 5.0                          # a slow first unit (compiling)
        bar.update(1)
        first = stream.getvalue().splitlines()[-1]
        clock[0] = 5.1                          # then 0.1 s per unit
        bar.update(1)
        second = stream.getvalue().splitlines()[-1]
    assert "<?" in first and "?it/s" in first
    assert "00:09" in second and "10.00it/s" in second      # 98 units left at 10 per second, not 39:40
