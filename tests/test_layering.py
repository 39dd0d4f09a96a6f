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

Inside ``sim`` the subpackages are layered the same way (``SIM_LAYERS``): a
module of ``sim.X`` may import its own subpackage and those of lower rank,
never a sibling of the same rank or one above. And no module of the three
packages takes part in an import cycle, lazy imports included.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Bottom to top: a package may import only packages at or below its own rank.
LAYERS = {"controller": 0, "firmware_profile": 1, "sim": 2}

#: The subpackages of ``sim``, bottom to top: ``sim.X`` may import ``sim.X`` and any
#: ``sim.Y`` of lower rank; subpackages of equal rank do not know each other.
SIM_LAYERS = {"world": 0, "loops": 1, "view": 2, "experiments": 2, "pretraining": 2, "envs": 3, "cli": 4}


def _module_parts(path: Path, root: Path):
    """``controller/sub/mod.py`` -> (['controller', 'sub', 'mod'], is_package)."""
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        return parts[:-1], True
    return parts, False


def _imported_modules(tree: ast.AST, parts, is_package, members=False):
    """(line, dotted name) of every module ``tree`` imports, relative ones resolved.

    With ``members``, ``from a import b`` also yields ``a.b`` (b may be a module).
    """
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
                if members:
                    for alias in node.names:
                        yield node.lineno, ".".join(base + node.module.split(".") + [alias.name])
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


def _sim_rank(name, sim_layers):
    parts = name.split(".")
    if parts[0] != "sim" or len(parts) < 2:
        return None, None
    return parts[1], sim_layers.get(parts[1])


def sim_upward_imports(root: Path, sim_layers=SIM_LAYERS):
    """``file:line: ...`` for every import in ``sim`` of a subpackage that is not below the importer's."""
    found = []
    for path in sorted((root / "sim").rglob("*.py")):
        parts, is_package = _module_parts(path, root)
        own, rank = _sim_rank(".".join(parts), sim_layers)
        if own is None:
            continue                # sim/__init__.py: the package's docstring
        if rank is None:
            found.append(f"{path.relative_to(root).as_posix()}:1: sim.{own} is in no layer of SIM_LAYERS")
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, name in sorted(set(_imported_modules(tree, parts, is_package))):
            other, other_rank = _sim_rank(name, sim_layers)
            if other is None or other == own:
                continue
            if other_rank is None or other_rank >= rank:
                below = ", ".join(f"sim.{p}" for p, r in sim_layers.items() if r < rank) or "none"
                found.append(f"{path.relative_to(root).as_posix()}:{line}: sim.{own} imports {name} "
                             f"(sim.{own} may import only these subpackages of sim: {below})")
    return found


def import_cycles(root: Path, packages=tuple(LAYERS)):
    """Every import cycle among the modules of ``packages`` (lazy imports included), as lists of names."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts, is_package = _module_parts(path, root)
            modules[".".join(parts)] = (path, parts, is_package)
    graph = {}
    for name, (path, parts, is_package) in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges = set()
        for _, target in _imported_modules(tree, parts, is_package, members=True):
            # ``from a.b import c``: the module a.b.c if there is one, else a.b
            while target and target not in modules:
                target = target.rpartition(".")[0]
            # a module's own parent packages are imported on the way to it: not an edge
            if target and target != name and not name.startswith(target + "."):
                edges.add(target)
        graph[name] = edges
    # Tarjan's strongly connected components: a component of more than one module is a cycle
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_sim_subpackages_run_one_way():
    found = sim_upward_imports(ROOT)
    assert not found, "upward imports inside sim (see docs/architecture.md):\n" + "\n".join(found)


def test_no_import_cycle():
    cycles = import_cycles(ROOT)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_sim_checker_catches_upward_and_sibling_imports(tmp_path):
    def write(rel, text):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)

    for pkg in ("sim", "sim/world", "sim/loops", "sim/view", "sim/experiments"):
        write(f"{pkg}/__init__.py", "")
    write("sim/world/task.py", "from sim.world import cartpole\nfrom . import data\n")
    write("sim/world/bad.py", "def f():\n    from sim.loops.deploy import run_deployment\n")
    write("sim/loops/ok.py", "from sim.world.task import Task\nfrom ..world import data\n")
    write("sim/view/bad.py", "import sim.experiments.trials\n")
    write("sim/experiments/bad.py", "from ..view import live\nfrom sim.loops import ok\n")
    write("sim/stray/mod.py", "")

    assert sim_upward_imports(tmp_path) == [
        "sim/experiments/bad.py:1: sim.experiments imports sim.view "
        "(sim.experiments may import only these subpackages of sim: sim.world, sim.loops)",
        "sim/stray/mod.py:1: sim.stray is in no layer of SIM_LAYERS",
        "sim/view/bad.py:1: sim.view imports sim.experiments.trials "
        "(sim.view may import only these subpackages of sim: sim.world, sim.loops)",
        "sim/world/bad.py:2: sim.world imports sim.loops.deploy "
        "(sim.world may import only these subpackages of sim: none)",
    ]


def test_cycle_finder(tmp_path):
    for rel, text in {"controller/__init__.py": "", "controller/a.py": "from controller import b\n",
                      "controller/b.py": "def f():\n    from .c import x\n",
                      "controller/c.py": "import controller.a\n", "controller/d.py": "import controller.a\n",
                      "firmware_profile/__init__.py": "", "sim/__init__.py": ""}.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    assert import_cycles(tmp_path) == [["controller.a", "controller.b", "controller.c"]]
    (tmp_path / "controller/c.py").write_text("")
    assert import_cycles(tmp_path) == []


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
    write("controller/ok.py", '"""Mentions sim.world.data in a docstring only."""\n'
                              "import numpy\nimport simulation\nfrom . import other\nfrom .sub import x\n"
                              "from controller.checks import check_int\n")
    write("controller/bad.py", "import numpy as np\n\n\ndef f():\n    from sim.world.data import sample_states\n"
                               "    return sample_states\n")
    write("controller/sub/deep.py", "import firmware_profile.timing\n")
    write("controller/sub/rel.py", "from ... import sim\nfrom ...sim import cartpole\n")
    write("firmware_profile/bad.py", "import importlib\nimport controller\n\n\nclass A:\n"
                                     "    def m(self):\n        return importlib.import_module('sim.loops.loop')\n")
    write("firmware_profile/bad2.py", "x = __import__('sim')\n")
    write("sim/ok.py", "from controller import lqr\nfrom firmware_profile.profile import run_profile\n"
                       "from . import cartpole\n")

    found = upward_imports(tmp_path)
    assert found == [
        "controller/bad.py:5: controller imports sim.world.data (controller may import only controller of these packages)",
        "controller/sub/deep.py:1: controller imports firmware_profile.timing "
        "(controller may import only controller of these packages)",
        "controller/sub/rel.py:1: controller imports sim (controller may import only controller of these packages)",
        "controller/sub/rel.py:2: controller imports sim (controller may import only controller of these packages)",
        "firmware_profile/bad.py:7: firmware_profile imports sim.loops.loop "
        "(firmware_profile may import only controller, firmware_profile of these packages)",
        "firmware_profile/bad2.py:1: firmware_profile imports sim "
        "(firmware_profile may import only controller, firmware_profile of these packages)",
    ]
    # and the clean tree passes
    for rel in ("controller/bad.py", "controller/sub/deep.py", "controller/sub/rel.py",
                "firmware_profile/bad.py", "firmware_profile/bad2.py"):
        (tmp_path / rel).unlink()
    assert upward_imports(tmp_path) == []


MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def oversized(root: Path, package="sim"):
    """``path: ...`` for every module of ``package`` over MAX_MODULE_LINES lines and every
    function over MAX_FUNCTION_LINES (docstring included)."""
    found = []
    for path in sorted((root / package).rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(root).as_posix()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            found.append(f"{rel}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    found.append(f"{rel}:{node.lineno}: {node.name} is {n} lines")
    return found


def test_sim_modules_and_functions_stay_small():
    found = oversized(ROOT)
    assert not found, f"over {MAX_MODULE_LINES} lines a module or {MAX_FUNCTION_LINES} a function:\n" + "\n".join(found)


def test_size_checker_catches_a_long_function(tmp_path):
    (tmp_path / "sim").mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    (tmp_path / "sim" / "m.py").write_text(f"def f():\n{body}\n\n\ndef g():\n    return 1\n")
    assert oversized(tmp_path) == ["sim/m.py:1: f is 62 lines"]
