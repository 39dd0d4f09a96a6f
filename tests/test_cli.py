import json

import pytest

from sim.cli import main


def test_lqr_command_prints_gain(capsys):
    assert main(["lqr", "--system", "target"]) == 0
    out = capsys.readouterr().out
    assert "-146.4968" in out and "eigenvalues" in out


def test_run_lqr_writes_json(tmp_path, capsys):
    path = tmp_path / "out.json"
    assert main(["run", "--method", "lqr", "--system", "target", "--episodes", "20", "--seed", "0",
                 "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    for key in ("method", "system", "episodes", "seed", "success_rate"):
        assert key in data
    assert data["success_rate"] == 1.0 and data["episodes"] == 20
    assert "success 1.000" in capsys.readouterr().out


def test_run_source_gain_on_target_fails(capsys):
    main(["run", "--method", "lqr", "--design-for", "source", "--system", "target", "--episodes", "20"])
    assert "success 0.000" in capsys.readouterr().out


def test_custom_system(capsys):
    main(["run", "--method", "lqr", "--m-c", "1", "--m-p", "0.5", "--l-p", "2", "--episodes", "10"])
    assert "custom(" in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["run", "--m-p", "0"], "--m-p"),
    (["run", "--m-p", "1", "--system", "source"], "--system"),
    (["run", "--episodes", "0"], "--episodes"),
    (["run", "--method", "lqr", "--episodes", "0"], "--episodes"),
])
def test_bad_arguments_exit_2_with_message(argv, words, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert words in capsys.readouterr().err


def test_pretrain_command_writes_loadable_weights(tmp_path, capsys):
    from controller.model import TransformerPolicy

    out = tmp_path / "w.npz"
    assert main(["pretrain", "--out", str(out), "--seed", "3", "--steps", "20", "--batch", "16"]) == 0
    text = capsys.readouterr().out
    assert "held-out force RMSE on SOURCE data" in text
    pol = TransformerPolicy.load(str(out))
    assert pol.meta["command"] == f"kbt pretrain --out {out} --seed 3 --steps 20 --batch 16"
    assert pol.meta["seed"] == 3


def test_run_pretrained_on_source_and_target(capsys):
    main(["run", "--method", "pretrained", "--system", "source", "--episodes", "20"])
    assert "pretrained on source: success 1.000" in capsys.readouterr().out
    main(["run", "--method", "pretrained", "--system", "target", "--episodes", "20"])
    assert "pretrained on target: success 0.000" in capsys.readouterr().out


def test_run_with_corrupt_weights_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    with pytest.raises(SystemExit) as e:
        main(["run", "--method", "pretrained", "--weights", str(bad)])
    assert e.value.code == 2 and "corrupt" in capsys.readouterr().err


def test_run_kbt_prints_checkpoints_and_writes_json(tmp_path, capsys):
    path = tmp_path / "kbt.json"
    assert main(["run", "--samples", "30", "--episodes", "10", "--no-progress", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "update p50 (us)" in out and "kbt on target" in out
    data = json.loads(path.read_text())
    assert data["method"] == "kbt" and data["samples"] == 30
    assert [r["samples"] for r in data["checkpoints"]] == [0, 10, 25, 30]
    assert all(0.0 <= r["success_rate"] <= 1.0 for r in data["checkpoints"])


def test_run_kbt_trials_mean(tmp_path, capsys):
    path = tmp_path / "t.json"
    assert main(["run", "--samples", "10", "--episodes", "5", "--trials", "2", "--no-progress",
                 "--json", str(path)]) == 0
    assert "mean success" in capsys.readouterr().out
    data = json.loads(path.read_text())
    assert len(data["success_per_trial"]) == 2


@pytest.mark.parametrize("argv, words", [
    (["run", "--samples", "0"], "--samples"),
    (["run", "--prior-var", "-1"], "--prior-var"),
    (["run", "--sigma-data", "-2"], "--sigma-data"),
])
def test_kbt_bad_arguments(argv, words, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv + ["--no-progress"])
    assert e.value.code == 2 and words in capsys.readouterr().err


def test_run_retrain(capsys):
    assert main(["run", "--method", "retrain", "--capacity", "5", "--epochs", "2", "--samples", "10",
                 "--episodes", "5", "--no-progress"]) == 0
    assert "retrain on target" in capsys.readouterr().out


def test_run_save_then_resume_state(tmp_path, capsys):
    path = tmp_path / "head.npz"
    assert main(["run", "--samples", "12", "--episodes", "3", "--no-progress", "--save-state", str(path)]) == 0
    assert path.exists()
    capsys.readouterr()
    out_json = tmp_path / "r.json"
    assert main(["run", "--samples", "5", "--episodes", "3", "--no-progress", "--load-state", str(path),
                 "--json", str(out_json)]) == 0
    assert "(12 updates so far)" in capsys.readouterr().out
    data = json.loads(out_json.read_text())
    assert data["resumed"] == "resumed" and data["updates"] == 5


@pytest.mark.parametrize("content", [None, b"not an npz"])
def test_missing_or_corrupt_state_is_a_clear_error(tmp_path, capsys, content):
    path = tmp_path / "head.npz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SystemExit) as e:
        main(["run", "--samples", "5", "--episodes", "2", "--no-progress", "--load-state", str(path)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--load-state" in err and "--allow-prior" in err and "Traceback" not in err
    # ... and the prior only when asked for
    assert main(["run", "--samples", "5", "--episodes", "2", "--no-progress", "--load-state", str(path),
                 "--allow-prior"]) == 0
    assert "starting from the prior" in capsys.readouterr().err


def test_state_flags_need_kbt(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "--method", "lqr", "--save-state", "x.npz"])
    assert e.value.code == 2 and "only kbt, kbt-softmax, rls, kbt-c, rls-c have a state" in capsys.readouterr().err


def test_run_onpolicy_with_faults_reports_counts(tmp_path, capsys):
    path = tmp_path / "r.json"
    assert main(["run", "--samples", "60", "--episodes", "3", "--stream", "onpolicy", "--fault-rate", "0.2",
                 "--fallback", "lqr", "--no-progress", "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    assert data["stream"] == "onpolicy" and data["sensor_faults"] > 0 and data["rejected_updates"] > 0
    assert data["updates"] + data["rejected_updates"] == 60
    assert "rejected" in capsys.readouterr().out


def test_run_blob(tmp_path, capsys):
    path = tmp_path / "b.json"
    assert main(["run", "--method", "blob", "--capacity", "4", "--epochs", "2", "--samples", "10",
                 "--episodes", "3", "--no-progress", "--json", str(path)]) == 0
    assert "blob on target" in capsys.readouterr().out
    assert json.loads(path.read_text())["updates"] == 10


def test_run_writes_csv_and_plot_of_its_checkpoints(tmp_path, capsys):
    csv_path, png = tmp_path / "run.csv", tmp_path / "run.png"
    assert main(["run", "--samples", "20", "--episodes", "3", "--no-progress", "--trials", "2",
                 "--csv", str(csv_path), "--plot", str(png), "--json", str(tmp_path / "run.json")]) == 0
    import csv
    import json

    rows = list(csv.DictReader(open(csv_path)))
    data = json.load(open(tmp_path / "run.json"))
    assert [int(r["trial"]) for r in rows] == [t for t in range(2) for _ in data["checkpoints"]]
    assert [int(r["seed"]) for r in rows[:: len(data["checkpoints"])]] == data["trial_seeds"]
    for r, want in zip(rows, [row for rows_ in data["per_trial"] for row in rows_]):
        assert int(r["samples"]) == want["samples"] and float(r["success_rate"]) == want["success_rate"]
        assert float(r["pred_std"]) == pytest.approx(want["pred_std"])
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_run_view_frames_renders_the_learning_run_off_screen(tmp_path, capsys):
    assert main(["run", "--samples", "6", "--episodes", "2", "--view", "--frames", str(tmp_path / "f")]) == 0
    assert len(list((tmp_path / "f").glob("frame_*.png"))) == 6
    with pytest.raises(SystemExit) as e:
        main(["run", "--samples", "6", "--frames", str(tmp_path / "g")])
    assert e.value.code == 2 and "--frames: renders the view off-screen; give it with --view" in capsys.readouterr().err
