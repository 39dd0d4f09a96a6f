"""The README's Python API example and the Gymnasium tutorial's example run as written; the README's
links resolve and it stays short."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GYM = ROOT / "docs" / "tutorials" / "gymnasium.md"


def test_gymnasium_example_runs(capsys):
    code = re.search(r"```python\n(.*?)```", GYM.read_text(), re.S).group(1)
    exec(compile(code, "docs/tutorials/gymnasium.md", "exec"), {})
    lines = capsys.readouterr().out.split("\n")
    episodes = [line.split() for line in lines if line.strip()]
    assert len(episodes) == 3
    assert all(ret == "500.0" and success == "True" for _, ret, success in episodes), \
        "KBT adapting inside the environment should balance TARGET"


def test_gymnasium_example_pretrained_alone_falls(capsys):
    """The tutorial's comparison: the same loop with the pre-trained transformer and no learning
    falls within 100 steps in each of the three episodes."""
    code = re.search(r"```python\n(.*?)```", GYM.read_text(), re.S).group(1)
    code = code.replace('make_controller("kbt", task)', 'make_controller("pretrained", task)')
    code = code.replace("        kbt.observe(state, expert.act(state))\n", "")
    assert "observe" not in code and '"pretrained"' in code
    exec(compile(code, "docs/tutorials/gymnasium.md (pre-trained only)", "exec"), {})
    episodes = [line.split() for line in capsys.readouterr().out.split("\n") if line.strip()]
    assert len(episodes) == 3 and all(float(ret) < 100 and success == "False" for _, ret, success in episodes)


def test_python_api_example_runs_and_prints_what_the_readme_says(capsys):
    """The README states what its Python API example prints; the run prints that."""
    text = README.read_text()
    section = text.split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md (Python API)", "exec"), {})
    printed = capsys.readouterr().out.strip()
    stated = re.search(r"It prints `([^`]*)`", section).group(1)
    assert printed == stated, f"the README says {stated}, the example printed {printed}"
    success, noise = map(float, printed.split())
    assert success >= 0.9, "the example's controller should balance the example plant"
    assert noise > 0


def test_readme_links_resolve():
    """Every relative link and image of the README names a file of the repository (and a heading that
    exists, for a link to a page's section): they must work on GitHub as on a clone."""
    text = README.read_text()
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert len(local) >= 10
    for link in local:
        path, _, anchor = link.partition("#")
        target = ROOT / path
        assert target.is_file(), f"README links to {link}, which does not exist"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", target.read_text(), re.M)
            slugs = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
            assert anchor in slugs, f"README links to {link}: no such heading"


def test_readme_is_short_and_talks_about_the_project_as_it_is():
    text = README.read_text()
    assert len(text.splitlines()) < 400
    for word in ("SPEC", "../shared", "this round", "issue #"):
        assert word not in text, f"the README mentions {word!r}"
