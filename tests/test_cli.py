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
    main(["run", "--design-for", "source", "--system", "target", "--episodes", "20"])
    assert "success 0.000" in capsys.readouterr().out


def test_custom_system(capsys):
    main(["run", "--m-c", "1", "--m-p", "0.5", "--l-p", "2", "--episodes", "10"])
    assert "custom(" in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["run", "--m-p", "0"], "m_p"),
    (["run", "--m-p", "1", "--system", "source"], "--system"),
    (["run", "--episodes", "0"], "n_episodes"),
])
def test_bad_arguments_exit_2_with_message(argv, words, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert words in capsys.readouterr().err
