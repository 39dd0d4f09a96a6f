"""The command line on both tasks, and who labels in kbt run."""

import json

import pytest

from sim.cli import main


def test_swingup_expert_table_cells(capsys):
    # the TARGET-designed expert swings TARGET up; the SOURCE-designed one does not (docs/swingup.md)
    assert main(["run", "--task", "swingup", "--method", "expert", "--episodes", "10"]) == 0
    assert main(["run", "--task", "swingup", "--method", "expert", "--design-for", "source", "--episodes", "10"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "target (swingup): success 1.000" in out[0]
    assert "target (swingup): success 0.000" in out[1]


def test_run_gated_labels_reports_takeovers(tmp_path, capsys):
    path = tmp_path / "run.json"
    assert main(["run", "--stream", "onpolicy", "--labels", "uncertain", "--samples", "60", "--episodes", "5",
                 "--no-progress", "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    assert 0 < data["labels"] == data["takeovers"] < data["ticks"] == 60
    assert [r["samples"] for r in data["checkpoints"]] == [0, 10, 25, 50, 60]


@pytest.mark.parametrize("argv, words", [
    (["run", "--labels", "uncertain"], "--stream onpolicy"),
    (["run", "--stream", "onpolicy", "--labels", "uncertain", "--method", "retrain"], "epistemic"),
    (["run", "--stream", "onpolicy", "--labels", "random", "--label-rate", "0"], "--label-rate"),
    (["run", "--stream", "onpolicy", "--labels", "uncertain", "--ask-above", "-1"], "--ask-above"),
    (["run", "--method", "lqr", "--labels", "random"], "--labels"),
    (["experiment", "fig3", "--ask-above", "1"], "--ask-above"),
    # a setting of the other label mode, or of none, would be silently ignored
    (["run", "--ask-above", "1"], "--ask-above: applies only with --labels uncertain"),
    (["run", "--stream", "onpolicy", "--labels", "random", "--ask-above", "1"], "--labels uncertain"),
    (["run", "--stream", "onpolicy", "--label-rate", "0.3"], "--label-rate: applies only with --labels random"),
    (["run", "--prior-var", "1", "2"], "--prior-var: expected one variance"),
    (["experiment", "onpolicy", "--quick", "--methods", "foo"], "--methods: expected one of"),
    (["experiment", "fig3", "--quick", "--methods", "blob-x"], "--methods: expected blob-C"),
    # a picture's name is checked before the run it would draw
    (["run", "--plot", "run.txt"], "--plot: expected a file name ending in"),
    (["view", "--screenshot", "view.txt", "--seconds", "0.1"], "--screenshot: expected a file name ending in .png"),
])
def test_bad_label_flags_fail_before_work(argv, words, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_swingup_experiment_writes_its_files(tmp_path, capsys):
    out = tmp_path / "sw"
    assert main(["experiment", "swingup", "--quick", "--methods", "kbt", "rls", "--trials", "1", "--samples", "40",
                 "--every", "20", "--episodes", "3", "--jobs", "1", "--out", str(out), "--no-progress"]) == 0
    data = json.loads((out / "results.json").read_text())
    assert data["experiment"] == "swingup" and data["task"] == "swingup"
    assert set(data["variants"]) == {"kbt", "rls", "kbt@iid", "rls@iid"}
    assert data["variants"]["kbt@iid"]["ticks"][0] == [0, 20, 40]
    assert (out / "results.csv").exists() and (out / "success.png").exists()
    assert len(list((out / "trials").glob("*-0.json"))) == 4
    assert "kbt@iid" in capsys.readouterr().out
