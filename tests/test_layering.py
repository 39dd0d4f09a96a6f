"""The import graph runs one way (docs/architecture.md).

Layers, bottom to top::

    controller        the library: model, heads, baselines, checks
    firmware_profile  latency, memory, FLOPs, budgets (imports controller)
    sim               plant, experts, loops, view, CLI, experiments (imports both)

A module may import its own layer and the layers below it, never one above:
no ``controller -> sim``, ``controller -> firmware_profile`` or
``firmware_profile -> sim``. Every ``.py`` file is parsed with ``ast``, so
imports inside functions, relative imports and ``importlib.import_module`` /
``__import__`` with a literal name count as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Bottom to top: a package may import only packages at or below its own rank.
LAYERS = {"controller": 0, "firmware_profile": 1, "sim": 2}


def _module_parts(path: Path, root: Path):
    """``controller/sub/mod.py`` -> (['controller', 'sub', 'mod'], is_package)."""
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        return parts[:-1], True
    return parts, False


def _imported_modules(tree: ast.AST, parts, is_package):
    """(line, dotted name) of every module ``tree`` imports, relative ones resolved."""
    package = parts if is_package else parts[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # ``from .. import x`` in package a.b -> a; beyond the top it is resolved
                # against the root, so nothing escapes the check.
                base = package[:max(len(package) - (node.level - 1), 0)]
            else:
                base = []
            if node.module:
                yield node.lineno, ".".join(base + node.module.split("."))
            else:
                # ``from . import x``: x may be a module of the package (or a top-level one)
                for alias in node.names:
                    yield node.lineno, ".".join(base + [alias.name])
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
            if name in ("import_module", "__import__") and not node.args[0].value.startswith("."):
                yield node.lineno, node.args[0].value


def upward_imports(root: Path, layers=LAYERS):
    """``file:line: ...`` for every import of a higher layer by a module under ``root``."""
    found = []
    for package, rank in layers.items():
        for path in sorted((root / package).rglob("*.py")):
            parts, is_package = _module_parts(path, root)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for line, name in sorted(set(_imported_modules(tree, parts, is_package))):
                top = name.split(".")[0]
                if layers.get(top, -1) > rank:
                    allowed = ", ".join(p for p, r in layers.items() if r <= rank)
                    found.append(f"{path.relative_to(root).as_posix()}:{line}: {package} imports {name} "
                                 f"({package} may import only {allowed} of these packages)")
    return found


def test_imports_run_one_way():
    found = upward_imports(ROOT)
    assert not found, "upward imports (see docs/architecture.md):\n" + "\n".join(found)


def test_checker_catches_upward_imports(tmp_path):
    def write(rel, text):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)

    for pkg in ("controller", "controller/sub", "firmware_profile", "sim"):
        write(f"{pkg}/__init__.py", "")
    write("controller/ok.py", '"""Mentions sim.data in a docstring only."""\n'
                              "import numpy\nimport simulation\nfrom . import other\nfrom .sub import x\n"
                              "from controller.checks import check_int\n")
    write("controller/bad.py", "import numpy as np\n\n\ndef f():\n    from sim.data import sample_states\n"
                               "    return sample_states\n")
    write("controller/sub/deep.py", "import firmware_profile.timing\n")
    write("controller/sub/rel.py", "from ... import sim\nfrom ...sim import cartpole\n")
    write("firmware_profile/bad.py", "import importlib\nimport controller\n\n\nclass A:\n"
                                     "    def m(self):\n        return importlib.import_module('sim.loop')\n")
    write("firmware_profile/bad2.py", "x = __import__('sim')\n")
    write("sim/ok.py", "from controller import lqr\nfrom firmware_profile.profile import run_profile\n"
                       "from . import cartpole\n")

    found = upward_imports(tmp_path)
    assert found == [
        "controller/bad.py:5: controller imports sim.data (controller may import only controller of these packages)",
        "controller/sub/deep.py:1: controller imports firmware_profile.timing "
        "(controller may import only controller of these packages)",
        "controller/sub/rel.py:1: controller imports sim (controller may import only controller of these packages)",
        "controller/sub/rel.py:2: controller imports sim (controller may import only controller of these packages)",
        "firmware_profile/bad.py:7: firmware_profile imports sim.loop "
        "(firmware_profile may import only controller, firmware_profile of these packages)",
        "firmware_profile/bad2.py:1: firmware_profile imports sim "
        "(firmware_profile may import only controller, firmware_profile of these packages)",
    ]
    # and the clean tree passes
    for rel in ("controller/bad.py", "controller/sub/deep.py", "controller/sub/rel.py",
                "firmware_profile/bad.py", "firmware_profile/bad2.py"):
        (tmp_path / rel).unlink()
    assert upward_imports(tmp_path) == []
