"""One rule for flags: every flag of ``kbt run``, ``kbt view`` and ``kbt lqr``, for every
method and task, either changes what runs or is refused with exit 2.

"What runs" is observed, not read from the flags: the controller each run builds
is rebuilt and probed (its actions and predictions on fixed states, before and
after a few labels, one of them far off), and the settings reach the deployed
loop, the evaluation, the view and the files are recorded where they are used
(``run_deployment``, ``evaluate_success``, ``watch``, ``Viewer``, the output
folder, stderr's progress lines). A flag that leaves all of that as the run
without it is a flag that silently does nothing, and fails here.
"""

from __future__ import annotations

import copy
import re
import shutil

import numpy as np
import pytest

import sim.loops.deploy as deploy_mod
import sim.loops.loop as loop_mod
import sim.loops.methods as methods_mod
import sim.view.live as live_mod
from sim.cli import build_parser, main
from sim.cli.flags import METHODS, STATEFUL
from sim.cli.parser import subparser

TASKS = ("balance", "swingup")
PROBE = np.array([[0.1, -0.2, 0.05, -0.05], [-0.3, 0.1, -0.08, 0.1], [0.0, 0.4, 0.02, 0.0]])
MEMORY = ("retrain", "blob")


def _base(command, method, task):
    """The smallest valid command line for this method and task (every flag below is added to it)."""
    args = [command, "--method", method, "--task", task]
    learner = method not in ("lqr", "expert", "pretrained")
    if command == "run":
        args += ["--episodes", "1"] + (["--samples", "4"] if learner else [])
    else:
        args += ["--seconds", "0.04"] + (["--samples", "3"] if learner else [])
    if method in MEMORY:
        args += ["--capacity", "2", "--epochs", "1"]
    return args


def _state_file(files, method, task):
    return str(files / f"{method}-{task}.npz")


# flag -> (extra arguments of both runs, the flag's arguments); a callable gets (method, task, files)
RUN_VALUES = {
    "--system": ([], ["--system", "source"]),
    "--m-c": ([], ["--m-c", "2.5"]),
    "--m-p": ([], ["--m-p", "0.3"]),
    "--l-p": ([], ["--l-p", "3"]),
    "--integrator": lambda m, t, f: ([], ["--integrator", "rk4" if t == "balance" else "euler"]),
    "--design-for": ([], ["--design-for", "source"]),
    "--episodes": ([], ["--episodes", "2"]),
    "--seed": ([], ["--seed", "3"]),
    "--json": lambda m, t, f: ([], ["--json", str(f / "out" / "run.json")]),
    "--weights": lambda m, t, f: ([], ["--weights", str(f / f"weights-{t}.npz")]),
    "--samples": ([], ["--samples", "6"]),
    "--trials": ([], ["--trials", "2"]),
    "--sigma-data": ([], ["--sigma-data", "4"]),
    "--head-layers": ([], ["--head-layers", "2"]),
    "--prior-var": ([], ["--prior-var", "0.37"]),
    "--family": lambda m, t, f: ([], ["--family", "on" if t == "balance" else "off"]),
    "--obs-noise": ([], ["--obs-noise", "0.3"]),
    "--noise": ([], ["--noise", "known"]),
    "--inputs": ([], ["--inputs", "features"]),
    "--robust": ([], ["--robust", "0"]),
    "--detect": ([], ["--detect", "1"]),
    "--update": ([], ["--update", "paper"]),
    "--capacity": ([], ["--capacity", "3"]),
    "--epochs": ([], ["--epochs", "2"]),
    "--lr": ([], ["--lr", "0.01"]),
    "--stream": ([], ["--stream", "onpolicy"]),
    "--period-ms": ([], ["--period-ms", "5"]),
    "--fault-rate": ([], ["--fault-rate", "0.5"]),
    "--change": ([], ["--change", "2:1,0.5,2"]),
    "--outlier-rate": ([], ["--outlier-rate", "0.5"]),
    "--labels": (["--stream", "onpolicy"], ["--labels", "random"]),
    "--ask-above": (["--stream", "onpolicy", "--labels", "uncertain"], ["--ask-above", "0.5"]),
    "--label-rate": (["--stream", "onpolicy", "--labels", "random"], ["--label-rate", "0.2"]),
    "--fallback": ([], ["--fallback", "lqr"]),
    "--probe": (["--stream", "onpolicy"], ["--probe", "0.5"]),
    "--probe-memory": (["--stream", "onpolicy"], ["--probe-memory", "3"]),
    "--probe-max": (["--stream", "onpolicy"], ["--probe-max", "1"]),
    "--save-state": lambda m, t, f: ([], ["--save-state", str(f / "out" / "saved.npz")]),
    "--load-state": lambda m, t, f: ([], ["--load-state", _state_file(f, m, t)]),
    "--allow-prior": lambda m, t, f: (["--load-state", str(f / "corrupt.npz")], ["--allow-prior"]),
    "--view": ([], ["--view"]),
    "--frames": lambda m, t, f: (["--view"], ["--frames", str(f / "out" / "frames")]),
    "--csv": lambda m, t, f: ([], ["--csv", str(f / "out" / "run.csv")]),
    "--plot": lambda m, t, f: ([], ["--plot", str(f / "out" / "run.png")]),
    "--no-progress": ([], ["--no-progress"]),
}
VIEW_VALUES = {k: RUN_VALUES[k] for k in ("--system", "--m-c", "--m-p", "--l-p", "--integrator", "--seed",
                                          "--weights", "--samples", "--capacity", "--load-state", "--allow-prior",
                                          "--no-progress")}
VIEW_VALUES.update({
    "--seconds": ([], ["--seconds", "0.06"]),
    "--change": ([], ["--change", "1:1,0.5,2"]),
    "--frames": lambda m, t, f: ([], ["--frames", str(f / "out" / "frames")]),  # no --view in kbt view
    "--headless": ([], ["--headless"]),
    "--screenshot": lambda m, t, f: ([], ["--screenshot", str(f / "out" / "shot.png")]),
})
#: flags that are the axes of the table, not its entries
AXES = ("--method", "--task")


def _options(command):
    sub = subparser(build_parser(), command)
    return sorted(max(a.option_strings, key=len) for a in sub._actions
                  if a.option_strings and a.dest != "help")


@pytest.mark.parametrize("command, table", [("run", RUN_VALUES), ("view", VIEW_VALUES)])
def test_the_table_names_every_flag(command, table):
    missing = sorted(set(_options(command)) - set(table) - set(AXES))
    assert not missing, f"kbt {command}: flags with no entry in the table: {missing}"


# ---------------------------------------------------------------- what a run does, observed
class _Stub:
    """The live view's window, recorded instead of opened."""

    def __init__(self, seen, *a, **kw):
        seen.append(("Viewer", a[1:], sorted(kw.items())))

    def show(self, *a, **kw):
        return True

    def change(self, *a, **kw):
        pass

    def close(self):
        pass


def _behaviour(controller):
    """Actions and predictions on fixed states, before and after four labels (the last far off)."""
    out = [np.asarray(controller.act(PROBE), dtype=float).round(9)]
    predict = getattr(controller, "predict", None)
    if callable(predict):
        out += [np.asarray(v, dtype=float).round(9) for v in predict(PROBE)]
    if callable(getattr(controller, "observe", None)):
        for i, s in enumerate(PROBE):
            controller.observe(s, float(controller.act(s[None])[0]) + 0.5 * (i + 1))
        controller.observe(PROBE[0], 60.0)
        out.append(np.asarray(controller.act(PROBE), dtype=float).round(9))
        if callable(predict):
            out += [np.asarray(v, dtype=float).round(9) for v in predict(PROBE)]
    return [a.tolist() for a in out]


_BUILT = {}          # (method, task, settings, seed) -> (controller, its behaviour): built once per session


def _built(make, name, task, settings, seed):
    """The controller ``make`` builds and its behaviour, from a cache (a deep copy of the cached one;
    controllers that cannot be copied, the C ones, are built anew)."""
    # the factory reads the plant only for lqr and expert; the others take the task's weights file
    # alone, so their cache ignores the plant (the plant's flags still show in the loop's records)
    plant = repr(task) if name in ("lqr", "expert") else task.name
    key = (name, plant, repr(settings), seed)
    if key not in _BUILT:
        controller = make(name, task, settings, seed=seed)
        try:
            twin = copy.deepcopy(controller)
        except Exception:       # noqa: BLE001 - ctypes state of a C controller
            twin = make(name, task, settings, seed=seed)
        _BUILT[key] = (controller, _behaviour(twin))
    controller, behaviour = _BUILT[key]
    try:
        return copy.deepcopy(controller), behaviour
    except Exception:           # noqa: BLE001 - ctypes state of a C controller
        return make(name, task, settings, seed=seed), behaviour


@pytest.fixture
def observed(monkeypatch, tmp_path_factory):
    """``run(argv) -> (exit code, what ran)`` with every place a setting is used recorded."""
    seen = []
    make, deploy, evaluate = methods_mod.make_controller, deploy_mod.run_deployment, loop_mod.evaluate_success

    def make_controller(name, task, settings=None, seed=0):
        controller, behaviour = _built(make, name, task, settings, seed)
        seen.append(("controller", name, type(controller).__name__, repr(task), behaviour))
        return controller

    def run_deployment(controller, task, config, **kw):
        seen.append(("deploy", repr(task), repr(config)))
        return deploy(controller, task, config, **kw)

    def evaluate_success(controller, task, n_episodes=100, seed=0, max_steps=None):
        seen.append(("evaluate", repr(task), n_episodes, seed, max_steps))
        return evaluate(controller, task, n_episodes=n_episodes, seed=seed, max_steps=5)   # short: recorded above

    def watch(controller, task, **kw):
        seen.append(("watch", repr(task), sorted((k, v) for k, v in kw.items())))
        return {"frames": 1, "steps": 1, "successes": 0, "failures": 0, "seconds": 0.02, "figures": "-"}

    monkeypatch.setattr(methods_mod, "make_controller", make_controller)
    monkeypatch.setattr(deploy_mod, "run_deployment", run_deployment)
    monkeypatch.setattr(loop_mod, "evaluate_success", evaluate_success)
    monkeypatch.setattr(deploy_mod, "evaluate_success", evaluate_success)     # the loop's checkpoints
    monkeypatch.setattr(live_mod, "watch", watch)
    monkeypatch.setattr(live_mod, "Viewer", lambda *a, **kw: _Stub(seen, *a, **kw))
    monkeypatch.setenv("DISPLAY", ":0")                 # a window could open: watch and Viewer are recorded
    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)

    def run(argv, capsys, out_dir):
        seen.clear()
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir()
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
        err = capsys.readouterr().err
        monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
        files = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*"))
        monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
        progress = [re.sub(r"[\d.]+", "#", line) for line in err.splitlines() if "|" in line]
        return code, (list(seen), files, progress), err

    return run


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Weights and state files the flags point at: perturbed copies of the shipped weights,
    a state file per stateful method and task, a corrupt one."""
    from controller.model import load_pretrained

    d = tmp_path_factory.mktemp("flag-files")
    for task in TASKS:
        from sim.world.task import TASKS as _TASKS

        policy = load_pretrained(methods_mod.task_weights(_TASKS[task]))
        for v in policy.params.values():
            v += 1e-3
        policy.save(str(d / f"weights-{task}.npz"))
        for method in STATEFUL:
            code = main(["run", "--method", method, "--task", task, "--samples", "3", "--episodes", "1",
                         "--no-progress", "--save-state", _state_file(d, method, task)])
            assert code == 0
    (d / "corrupt.npz").write_bytes(b"not a state file")
    return d


def _cases(command, table):
    for method in METHODS:
        for task in TASKS:
            for flag in sorted(table):
                yield pytest.param(command, method, task, flag, id=f"{command}-{method}-{task}-{flag}")


def _entry(table, flag, method, task, files):
    entry = table[flag]
    return entry(method, task, files) if callable(entry) else entry


_BASE_RUNS = {}


def _check(observed, capsys, files, command, method, task, flag, table):
    extra, given = _entry(table, flag, method, task, files)
    out = files / "out"
    base = _base(command, method, task) + extra
    if tuple(base) not in _BASE_RUNS:            # the run without the flag, once per session
        _BASE_RUNS[tuple(base)] = observed(base, capsys, out)
    code0, ran0, err0 = _BASE_RUNS[tuple(base)]
    code1, ran1, err1 = observed(base + given, capsys, out)
    if code1 == 2:
        lines = [line for line in err1.splitlines() if line.startswith(f"kbt {command}: error:")
                 or line.startswith("kbt: error:")]
        assert lines, f"{' '.join(base + given)}: exit 2 without a one-line reason:\n{err1}"
        return "refused"
    assert code1 == 0, f"{' '.join(base + given)}: exit {code1}\n{err1}"
    assert (code1, ran1) != (code0, ran0), f"{' '.join(given)} changes nothing for {command} --method {method} " \
                                        f"--task {task} (and is not refused)"
    return "changes"


@pytest.mark.slow
@pytest.mark.parametrize("command, method, task, flag", list(_cases("run", RUN_VALUES)))
def test_every_run_flag_changes_the_run_or_is_refused(observed, capsys, files, command, method, task, flag):
    _check(observed, capsys, files, command, method, task, flag, RUN_VALUES)


@pytest.mark.slow
@pytest.mark.parametrize("command, method, task, flag", list(_cases("view", VIEW_VALUES)))
def test_every_view_flag_changes_the_view_or_is_refused(observed, capsys, files, command, method, task, flag):
    _check(observed, capsys, files, command, method, task, flag, VIEW_VALUES)


LQR_VALUES = {"--system": ["--system", "source"], "--m-c": ["--m-c", "2.5"], "--m-p": ["--m-p", "0.3"],
              "--l-p": ["--l-p", "3"], "--task": ["--task", "swingup"], "--r": ["--r", "1"]}


def test_every_lqr_flag_changes_the_gain(capsys):
    assert set(_options("lqr")) == set(LQR_VALUES)
    assert main(["lqr"]) == 0
    base = capsys.readouterr().out
    for flag, given in LQR_VALUES.items():
        assert main(["lqr", *given]) == 0
        out = capsys.readouterr().out
        gain = [line for line in out.splitlines() if line.startswith("K = ")]
        assert gain and gain[0] not in base, f"kbt lqr {' '.join(given)} gives the default gain"
