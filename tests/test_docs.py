"""The documentation site builds with warnings as errors, reaches every page of docs/, documents the
public classes of controller/, and its checks catch a broken link and a missing docstring."""

import importlib
import inspect
import os
import pathlib
import pkgutil
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# No skip when the tools are missing: they are in the `test` extra, and a missing one is a failure.


def _sphinx(src, out, conf_dir=None, env=None):
    """Run ``python -m sphinx -W --keep-going -b html`` (a fresh process: no state shared between builds)."""
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
           "-d", str(out / ".doctrees")]
    if conf_dir is not None:
        cmd += ["-c", str(conf_dir)]
    cmd += [str(src), str(out / "html")]
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "MPLBACKEND": "Agg", **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs")
    run = _sphinx(DOCS, out)
    assert run.returncode == 0, "the documentation build warned (warnings are errors):\n" + run.stderr[-4000:]
    return out / "html"


def _pages():
    return sorted(p.relative_to(DOCS) for p in DOCS.rglob("*.md") if "_build" not in p.parts)


def test_every_docs_page_is_built(site):
    # A page no toctree reaches is a build warning (toc.not_included), so the build above fails on it;
    # here: every Markdown page of docs/ became a page of the site.
    pages = _pages()
    assert len(pages) >= 30
    missing = [str(p) for p in pages if not (site / p.with_suffix(".html")).is_file()]
    assert not missing, f"pages of docs/ not in the site: {missing}"


def test_index_reaches_every_page(site):
    """Following the site's links from the index page reaches every page of docs/."""
    seen, todo = set(), ["index.html"]
    while todo:
        page = todo.pop()
        if page in seen or not (site / page).is_file():
            continue
        seen.add(page)
        base = pathlib.PurePosixPath(page).parent
        for href in re.findall(r'href="([^"#:]+\.html)', (site / page).read_text()):
            todo.append(os.path.normpath((base / href).as_posix()))
    unreached = [str(p) for p in _pages() if p.with_suffix(".html").as_posix() not in seen]
    assert not unreached, f"not reachable from the index page: {unreached}"


def _public_classes():
    import controller
    for info in pkgutil.iter_modules(controller.__path__):
        module = importlib.import_module(f"controller.{info.name}")
        names = getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")])
        for name in names:
            obj = getattr(module, name)
            if inspect.isclass(obj) and obj.__module__ == module.__name__:
                yield f"{module.__name__}.{name}"


def test_api_reference_covers_the_public_classes(site):
    api = (site / "api.html").read_text()
    classes = list(_public_classes())
    assert "controller.kbt.KBTController" in classes and len(classes) >= 15
    missing = [c for c in classes if f'id="{c}"' not in api]
    assert not missing, f"public classes of controller/ missing from the API reference: {missing}"
    assert 'id="controller.force_controller.ForceController.observe"' in api  # members too, not just classes


def test_a_broken_link_and_a_missing_docstring_fail_the_build(tmp_path):
    """The site's own configuration (docs/conf.py) on a two-page project with one broken link, one link
    to a missing heading and one undocumented public function: the build fails and names each."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "planted_module.py").write_text(
        '"""A module."""\n\n\ndef documented():\n    """Has a docstring."""\n\n\ndef undocumented():\n    pass\n')
    (src / "index.md").write_text(
        "# Index\n\n[a page that does not exist](no-such-page.md)\n\n[a missing heading](api.md#no-such-heading)\n\n"
        "```{toctree}\napi\n```\n")
    (src / "api.md").write_text("# API\n\n```{eval-rst}\n.. automodule:: planted_module\n```\n")
    run = _sphinx(src, tmp_path / "out", conf_dir=DOCS, env={"PYTHONPATH": str(src)})
    assert run.returncode != 0
    assert "no-such-page" in run.stderr
    assert "no-such-heading" in run.stderr
    assert "missing docstring: planted_module.undocumented" in run.stderr
    assert "planted_module.documented" not in run.stderr


def test_own_plant_tutorial_runs(capsys):
    text = (DOCS / "tutorials" / "own-plant.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    exec(compile(code, "docs/tutorials/own-plant.md", "exec"), {})
    before, after = map(float, capsys.readouterr().out.split())
    assert before < 0.5 <= after, "50 labels should turn a failing controller into one that balances the plant"
