"""The README's Python API example runs as written."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_python_api_example_runs(capsys):
    text = README.read_text()
    section = text.split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    printed = re.search(r"It prints `([^`]*)`", section).group(1)
    exec(compile(code, "README.md (Python API)", "exec"), {})
    assert capsys.readouterr().out.strip() == printed, "the README says what the example prints"


def test_gymnasium_example_runs(capsys):
    text = README.read_text()
    section = text.split("## Gymnasium environments", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md (Gymnasium environments)", "exec"), {})
    lines = capsys.readouterr().out.split("\n")
    episodes = [line.split() for line in lines if line.strip()]
    assert len(episodes) == 3
    assert all(ret == "500.0" and success == "True" for _, ret, success in episodes), \
        "KBT adapting inside the environment should balance TARGET"


def test_gymnasium_example_pretrained_alone_falls(capsys):
    """The README's comparison: the same loop with the pre-trained transformer and no learning
    falls within 100 steps in each of the three episodes."""
    text = README.read_text()
    section = text.split("## Gymnasium environments", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code = code.replace('make_controller("kbt", task)', 'make_controller("pretrained", task)')
    code = code.replace("        kbt.observe(state, expert.act(state))\n", "")
    assert "observe" not in code and '"pretrained"' in code
    exec(compile(code, "README.md (Gymnasium environments, pre-trained only)", "exec"), {})
    episodes = [line.split() for line in capsys.readouterr().out.split("\n") if line.strip()]
    assert len(episodes) == 3 and all(float(ret) < 100 and success == "False" for _, ret, success in episodes)
