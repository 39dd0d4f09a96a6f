"""The README's Python API example runs as written."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_python_api_example_runs(capsys):
    text = README.read_text()
    section = text.split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md (Python API)", "exec"), {})
    success, noise = map(float, capsys.readouterr().out.split())
    assert success >= 0.9, "the example's controller should balance the example plant"
    assert noise > 0


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
