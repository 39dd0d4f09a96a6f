"""The ``kbt`` command line.

Subcommands (each has ``--help``):

* ``kbt lqr``: LQR gain and closed-loop eigenvalues for a cart-pole;
* ``kbt run``: the main job -- a learning method (kbt, kbt-softmax, rls,
  retrain, blob) in the deployed loop (``sim.deploy``) with its progress
  table, or a fixed controller (lqr, expert, pretrained) evaluated over seeded
  episodes; ``--task balance|swingup`` (``sim.task``);
* ``kbt view``: watch a controller live in a pygame window (``sim.view``);
* ``kbt profile``: latency, memory, FLOPs and device budgets of every method
  (``firmware_profile``, fed with TARGET's data by ``sim.profile_run``);
* ``kbt experiment``: the paper's Figures 3/4/5 and calibration
  (``sim.experiments``), and the deployed-learning experiments ``onpolicy``
  and ``swingup`` (``sim.exp_onpolicy``); trials run in-process or on Dask
  (``sim.trials``) and are kept as they finish (``sim.trial_store``);
* ``kbt pretrain``: pre-train the decision transformer on SOURCE expert data
  (``sim.pretrain``, ``sim.pretrain_swingup``);
* ``kbt export``: the kbt or rls controller as C99 sources for a microcontroller
  (``firmware_profile.export``, docs/firmware-export.md).

This module is the top of the import graph: it may import ``sim``,
``controller`` and ``firmware_profile`` (docs/architecture.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys

import numpy as np

from controller.kalman_head import DEFAULT_OBS_NOISE, DEFAULT_PRIOR_VAR, HeadConfig
from controller.tokenizer import TARGET_STYLES
from controller.transformer import TransformerConfig
from sim.cartpole import INTEGRATORS, SYSTEMS
from sim.deploy import FALLBACKS, LABEL_MODES, STREAMS

__all__ = ["main", "build_parser"]

METHODS = ("lqr", "expert", "pretrained", "kbt", "kbt-softmax", "rls", "kbt-c", "rls-c", "retrain", "blob")
LEARNERS = ("kbt", "kbt-softmax", "rls", "kbt-c", "rls-c", "retrain", "blob")
STATEFUL = ("kbt", "kbt-softmax", "rls", "kbt-c", "rls-c")       # methods with --save-state / --load-state


# ---------------------------------------------------------------- helpers
def _add_system_args(p, default="target"):
    p.add_argument("--system", choices=sorted(SYSTEMS), default=None,
                   help=f"preset cart-pole (default {default}); or give --m-c/--m-p/--l-p")
    p.add_argument("--m-c", type=float, help="cart mass (kg), > 0 (default: the --system preset's)")
    p.add_argument("--m-p", type=float, help="pole mass (kg), > 0 (default: the --system preset's)")
    p.add_argument("--l-p", type=float, help="pivot to the pole's centre of mass (m), > 0 (default: the --system preset's)")
    p.add_argument("--integrator", choices=INTEGRATORS, default="euler", help="plant integration scheme")
    p.set_defaults(_default_system=default)


def _presets(args):
    """--system presets of the task: the balance task's SOURCE/TARGET, or the swing-up task's."""
    from sim.task import PLANTS

    return PLANTS[getattr(args, "task", "balance")]


def _system_from_args(args):
    """(name, CartPoleParams) from --system or --m-c/--m-p/--l-p (presets of --task)."""
    custom = {k: getattr(args, k) for k in ("m_c", "m_p", "l_p") if getattr(args, k) is not None}
    if custom and args.system:
        raise ValueError("--system: give either --system or --m-c/--m-p/--l-p, not both")
    presets = _presets(args)
    if custom:
        base = presets[args._default_system]
        params = base.with_(integrator=args.integrator, **custom)
        name = "custom(" + ",".join(f"{k}={v:g}" for k, v in sorted(custom.items())) + ")"
        return name, params
    name = args.system or args._default_system
    return name, presets[name].with_(integrator=args.integrator)


def _task_from_args(args):
    """(name, Task): --task's rules on the plant of --system / --m-c/--m-p/--l-p
    (the swing-up task keeps its own integrator, RK4)."""
    from sim.task import TASKS, as_task

    name, params = _system_from_args(args)
    task_name = getattr(args, "task", "balance")
    task = TASKS[task_name].on(params) if task_name == "swingup" else as_task(params)
    return (name if task_name == "balance" else f"{name} ({task_name})"), task


def _write_json(path, payload):
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, default=_json_default)
        f.write("\n")


def _json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ---------------------------------------------------------------- command-line robustness
# Checks that run before any work starts (flags that do not apply to the
# method, bounds, output paths, the display), Ctrl-C, and short messages for
# errors the library raises with its internal argument names.

MAX_EPISODES = 100_000
MAX_SAMPLES = 1_000_000
MAX_TRIALS = 1_000
MAX_JOBS = 1_024
OFFSCREEN_SECONDS = 10.0          # kbt view off-screen (--frames/--screenshot/--headless) without --seconds

#: library argument names -> the flags that set them (for messages from the library)
FLAG_NAMES = {
    "n_episodes": "--episodes", "episodes": "--episodes", "samples": "--samples", "trials": "--trials",
    "seed": "--seed", "data_seed": "--seed", "m_c": "--m-c", "m_p": "--m-p", "l_p": "--l-p",
    "integrator": "--integrator", "sigma_data": "--sigma-data", "n_layers": "--head-layers",
    "prior_var": "--prior-var", "obs_noise": "--obs-noise", "noise": "--noise", "inputs": "--inputs",
    "robust": "--robust", "change_threshold": "--detect", "update": "--update", "stream": "--stream", "fault_rate": "--fault-rate",
    "outlier_rate": "--outlier-rate", "labels": "--labels", "ask_above": "--ask-above", "label_rate": "--label-rate",
    "probe": "--probe", "probe_memory": "--probe-memory", "probe_max": "--probe-max",
    "task": "--task", "every": "--every", "gated": "--gated", "ticks": "--samples",
    "scheduler": "--scheduler", "resume": "--resume",
    "fallback": "--fallback", "jobs": "--jobs", "methods": "--methods", "steps": "--steps", "batch": "--batch",
    "lr": "--lr", "n_bins": "--bins", "sigma": "--sigma", "target": "--target", "query": "--query",
    "seconds": "--seconds", "calls": "--calls", "retrain_calls": "--retrain-calls", "capacities": "--capacities",
    "capacity": "--capacity", "budget_kib": "--budget-kib", "rate_hz": "--rate", "epochs": "--epochs", "R": "--r",
}

_UNSET = object()


def _flag_message(text):
    """``"n_episodes: expected ..."`` -> ``"--episodes: expected ..."`` (messages naming a flag stay as they are)."""
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[[^\]]*\])?): ", text)
    if m and m.group(1) in FLAG_NAMES:
        return FLAG_NAMES[m.group(1)] + m.group(2) + text[m.end() - 2:]
    return text


def _subparser(parser, command):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[command]
    raise KeyError(command)


def _explicit_flags(argv, command):
    """``{dest: flag}`` of the options given on the command line, whatever their value
    (abbreviations and ``--flag=value`` included): the parse is repeated with every
    default replaced by a sentinel."""
    parser = build_parser()
    sub = _subparser(parser, command)
    flags = {}
    for action in sub._actions:
        if action.option_strings and action.default is not argparse.SUPPRESS:
            flags[action.dest] = max(action.option_strings, key=len)
            # an append action adds to its default: None (not a sentinel) means not given
            action.default = None if isinstance(action, argparse._AppendAction) else _UNSET
    ns, _ = parser.parse_known_args(argv)
    return {dest: flag for dest, flag in flags.items()
            if getattr(ns, dest, _UNSET) is not _UNSET and getattr(ns, dest, _UNSET) is not None}


def _check_int(flag, value, low, high=None):
    from controller.checks import check_int

    if value is not None:
        check_int(flag, value, low=low, high=high)


def _check_real(flag, value, low=None, high=None, *, low_open=False):
    """``value`` finite and in [low, high] (``(low, high]`` with ``low_open``)."""
    if value is None:
        return
    for v in (value if isinstance(value, (list, tuple)) else [value]):
        ok = np.isfinite(v) and (low is None or (v > low if low_open else v >= low)) and (high is None or v <= high)
        if not ok:
            lo = "-inf" if low is None else f"{low:g}"
            hi = "inf" if high is None else f"{high:g}"
            what = "numbers" if isinstance(value, (list, tuple)) else "a number"
            raise ValueError(f"{flag}: expected {what} in {'(' if low_open else '['}{lo}, {hi}] but found {v:g}")


def _flag_methods(command):
    """The methods each method-specific flag of ``run`` / ``view`` applies to."""
    memory = ("retrain", "blob")
    if command == "view":
        return {"samples": LEARNERS, "capacity": memory, "allow_prior": STATEFUL,
                "weights": tuple(m for m in METHODS if m not in ("lqr", "expert"))}
    table = {dest: LEARNERS for dest in ("samples", "trials", "sigma_data", "stream", "period_ms", "fault_rate",
                                         "outlier_rate", "fallback", "labels", "ask_above", "label_rate")}
    # --save-state / --load-state: _check_state_args
    table.update({dest: STATEFUL for dest in ("head_layers", "prior_var", "obs_noise", "allow_prior")})
    # the Gaussian force head's own settings, the transformer-feature inputs, the softmax head's update
    force = ("kbt", "rls", "kbt-c", "rls-c")
    table.update({dest: force for dest in ("noise", "robust", "detect")})
    table.update(inputs=("kbt", "kbt-c"), update=("kbt-softmax",))
    table.update({dest: memory for dest in ("capacity", "epochs", "lr")})
    table.update(design_for=("lqr", "expert"), weights=tuple(m for m in METHODS if m not in ("lqr", "expert")))
    # probing needs an epistemic std (not retraining or BLoB)
    table.update({dest: STATEFUL for dest in ("probe", "probe_memory", "probe_max")})
    return table


def _check_flags_apply(args, given):
    """A method-specific flag given explicitly with a method that ignores it is an error."""
    for dest, methods in _flag_methods(args.command).items():
        if dest in given and args.method not in methods:
            raise ValueError(f"{given[dest]}: does not apply to --method {args.method} "
                             f"(only to {', '.join(methods)})")
    if "allow_prior" in given and not args.load_state:
        raise ValueError("--allow-prior: only together with --load-state")


def _check_system(args):
    for flag, dest in (("--m-c", "m_c"), ("--m-p", "m_p"), ("--l-p", "l_p")):
        _check_real(flag, getattr(args, dest, None), 0.0, 1e6, low_open=True)


def _check_output_file(flag, path):
    """``path`` can be written as a file: its folder exists and is writable, it is not a folder."""
    p = os.fspath(path)
    if not p:
        raise ValueError(f"{flag}: expected a file name but found an empty string")
    if os.path.isdir(p):
        raise ValueError(f"{flag}: cannot write {p}: is a folder")
    folder = os.path.dirname(os.path.abspath(p))
    if not os.path.exists(folder):
        raise ValueError(f"{flag}: cannot write {p}: no such folder")
    if not os.path.isdir(folder):
        raise ValueError(f"{flag}: cannot write {p}: {os.path.dirname(p)} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{flag}: cannot write {p}: folder not writable")
    if os.path.exists(p) and not os.access(p, os.W_OK):
        raise ValueError(f"{flag}: cannot write {p}: file not writable")


def _check_output_dir(flag, path):
    """``path`` is a writable folder, or one that can be created."""
    p = os.fspath(path)
    if not p:
        raise ValueError(f"{flag}: expected a folder name but found an empty string")
    if os.path.exists(p):
        if not os.path.isdir(p):
            raise ValueError(f"{flag}: cannot write into {p}: is a file, not a folder")
        if not os.access(p, os.W_OK | os.X_OK):
            raise ValueError(f"{flag}: cannot write into {p}: folder not writable")
        return
    ancestor = os.path.dirname(os.path.abspath(p))
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise ValueError(f"{flag}: cannot create {p}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(f"{flag}: cannot create {p}: {ancestor} is not writable")


#: per command: (flag, dest, "file" or "dir") of every output path
OUTPUTS = {
    "run": (("--json", "json", "file"), ("--save-state", "save_state", "file")),
    "view": (("--screenshot", "screenshot", "file"), ("--frames", "frames", "dir")),
    "profile": (("--json", "json", "file"),),
    "experiment": (("--out", "out", "dir"),),
    "pretrain": (("--out", "out", "file"),),
    "export": (("--out", "out", "dir"),),
}


def _check_outputs(args):
    for flag, dest, kind in OUTPUTS.get(args.command, ()):
        path = getattr(args, dest, None)
        if path is not None:
            (_check_output_file if kind == "file" else _check_output_dir)(flag, path)


def _no_display():
    """Why no window can be opened ('' if one can, as far as we can tell)."""
    driver = os.environ.get("SDL_VIDEODRIVER", "").strip().lower()
    if driver:
        return f"SDL_VIDEODRIVER={driver}" if driver in ("dummy", "offscreen") else ""
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")) and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "DISPLAY and WAYLAND_DISPLAY are not set"
    return ""


def _check_run_args(args, given):
    _check_state_args(args)
    _check_flags_apply(args, given)
    _check_system(args)
    _check_int("--episodes", args.episodes, 1, MAX_EPISODES)
    _check_int("--seed", args.seed, 0)
    if args.method in LEARNERS:
        _check_int("--samples", args.samples, 1, MAX_SAMPLES)
        _check_int("--trials", args.trials, 1, MAX_TRIALS)
        _check_real("--sigma-data", args.sigma_data, 0.0, 1e6)
        _check_real("--period-ms", args.period_ms, 0.0, 1e6, low_open=True)
        _check_real("--fault-rate", args.fault_rate, 0.0, 0.99)
        _check_real("--ask-above", args.ask_above, 0.0, 1e6, low_open=True)
        _check_real("--label-rate", args.label_rate, 0.0, 1.0, low_open=True)
        if args.labels != "always" and args.stream != "onpolicy":
            raise ValueError(f"--labels: {args.labels} means the expert takes over some ticks; it needs --stream onpolicy")
        _check_real("--probe", args.probe, 0.0, 100.0)
        _check_real("--probe-memory", args.probe_memory, 1.0, 1e6)
        _check_real("--probe-max", args.probe_max, 0.0, 1e3, low_open=True)
        for dest in ("probe", "probe_memory", "probe_max"):
            if dest in given and args.stream != "onpolicy":
                raise ValueError(f"{given[dest]}: probing excites the states the controller visits; "
                                 "it needs --stream onpolicy")
        if args.labels == "uncertain" and args.method in ("retrain", "blob"):
            raise ValueError(f"--labels: uncertain needs an epistemic variance; {args.method} has none "
                             "(use kbt, kbt-softmax or rls)")
    _check_int("--head-layers", getattr(args, "head_layers", None), 1, 8)
    if (getattr(args, "head_layers", None) or 1) > 1 and args.method != "kbt-softmax":
        raise ValueError(f"--head-layers: the force head of {args.method} is one layer; with 2 its prior predictive "
                         "std is about 200 N (forces are clipped at 30 N) and it does not learn TARGET in 100 samples "
                         "(docs/head-layers.md). Only kbt-softmax takes --head-layers >= 2")
    _check_real("--prior-var", getattr(args, "prior_var", None), 0.0, 1e6, low_open=True)
    _check_real("--obs-noise", getattr(args, "obs_noise", None), 1e-8, 1e6)
    _check_real("--robust", getattr(args, "robust", None), 0.0, 1e3)
    _check_real("--detect", getattr(args, "detect", None), 0.0, 1e6)
    if args.method in ("retrain", "blob"):
        _check_int("--capacity", args.capacity, 1, 100_000)
        _check_int("--epochs", args.epochs, 1, 100_000)
        _check_real("--lr", args.lr, 0.0, 10.0, low_open=True)
    if args.view and _no_display():
        raise ValueError(f"--view: no display to open a window on ({_no_display()}); run without --view, "
                         "or watch off-screen with kbt view --frames DIR")


def _check_view_args(args, given):
    _check_state_args(args)
    _check_flags_apply(args, given)
    _check_system(args)
    _check_int("--samples", args.samples, 0, MAX_SAMPLES)
    _check_int("--capacity", args.capacity, 1, 100_000)
    _check_int("--seed", args.seed, 0)
    _check_real("--seconds", args.seconds, 0.0, 1e6, low_open=True)
    offscreen = args.headless or args.frames or args.screenshot
    if not offscreen and _no_display():
        raise ValueError(f"no display to open a window on ({_no_display()}); render off-screen with "
                         f"--frames DIR, --screenshot PNG or --headless (each stops after --seconds, "
                         f"default {OFFSCREEN_SECONDS:g})")


def _check_experiment_args(args, given):
    deployed = ("ask_above", "gated", "task", "every", "probe")
    unused = {"fig3": ("sigma_data",) + deployed, "fig4": ("sigma_data",) + deployed,
              "fig5": ("trials", "episodes", "methods", "epochs", "lr") + deployed,
              "calibration": deployed, "onpolicy": ("sigma_data",),
              "swingup": ("sigma_data", "task"),
              "drift": ("sigma_data", "samples") + deployed}.get(args.name, ())
    for dest in unused:
        if dest in given:
            raise ValueError(f"{given[dest]}: does not apply to experiment {args.name}")
    if args.from_dir is not None:
        if args.name != "calibration":
            raise ValueError(f"--from: only experiment calibration reads a previous run, not {args.name}")
        if args.quick:
            raise ValueError("--from: cannot be combined with --quick (the fig3 run in --from fixed the sizes)")
        for dest in ("trials", "samples", "episodes", "methods", "epochs", "lr", "seed"):
            if dest in given:
                raise ValueError(f"{given[dest]}: the fig3 run in --from fixed it; "
                                 "give it only without --from")
    _check_int("--jobs", args.jobs, 1, MAX_JOBS)
    _check_cluster_args(args, given)
    _check_int("--trials", args.trials, 1, MAX_TRIALS)
    _check_int("--samples", args.samples, 1, MAX_SAMPLES)
    _check_int("--episodes", args.episodes, 1, MAX_EPISODES)
    _check_int("--seed", args.seed, 0)
    _check_int("--epochs", args.epochs, 1, 100_000)
    _check_real("--lr", args.lr, 0.0, 10.0, low_open=True)
    _check_real("--sigma-data", args.sigma_data, 0.0, 1e6)
    _check_real("--ask-above", args.ask_above, 0.0, 1e6, low_open=True)
    _check_real("--probe", args.probe, 0.0, 100.0)
    _check_int("--every", args.every, 1, MAX_SAMPLES)


def _check_cluster_args(args, given):
    """kbt experiment --scheduler / --resume: where the trials run, whether finished ones are kept."""
    if args.scheduler is not None:
        if not args.scheduler.strip():
            raise ValueError("--scheduler: expected an address such as tcp://127.0.0.1:8786 but found ''")
        if "jobs" in given:
            raise ValueError(f"{given['jobs']}: does not apply with --scheduler (its workers run the trials)")
    if args.from_dir is not None:
        for dest in ("scheduler", "resume"):
            if dest in given:
                raise ValueError(f"{given[dest]}: does not apply with --from (no trials are run)")


def _check_profile_args(args, given):
    _check_real("--rate", args.rate, 0.0, 1e6, low_open=True)
    _check_int("--calls", args.calls, 10, 10_000_000)
    _check_int("--retrain-calls", args.retrain_calls, 1, 100_000)
    for c in args.capacities or ():
        _check_int("--capacities", c, 1, 100_000)
    _check_int("--budget-kib", args.budget_kib, 1, 10**9)
    _check_int("--seed", args.seed, 0)


def _check_pretrain_args(args, given):
    if "dagger_rounds" in given and args.task != "swingup":
        raise ValueError(f"{given['dagger_rounds']}: does not apply to --task {args.task} (only to swingup)")
    _check_int("--dagger-rounds", args.dagger_rounds, 0, 1_000)
    _check_int("--seed", args.seed, 0)
    _check_int("--steps", args.steps, 1, 10_000_000)
    _check_int("--batch", args.batch, 1, 1_000_000)
    _check_real("--lr", args.lr, 0.0, 10.0, low_open=True)
    _check_int("--bins", args.bins, 2, 1_000)
    _check_real("--sigma", args.sigma, 0.0, 1e3, low_open=True)


def _check_lqr_args(args, given):
    _check_system(args)
    _check_real("--r", args.r, 0.0, 1e9, low_open=True)


def _preflight(args):
    """Every check that needs no work: flags, bounds, output paths, the display."""
    checks = {"run": _check_run_args, "view": _check_view_args, "experiment": _check_experiment_args,
              "profile": _check_profile_args, "pretrain": _check_pretrain_args, "lqr": _check_lqr_args}
    check = checks.get(args.command)
    if check is not None:
        check(args, _explicit_flags(args.argv, args.command))
    _check_outputs(args)
    if args.command == "view" and (args.headless or args.frames or args.screenshot) and args.seconds is None:
        args.seconds = OFFSCREEN_SECONDS
        print(f"kbt view: off-screen without --seconds: stopping after {OFFSCREEN_SECONDS:g} s of simulated time",
              file=sys.stderr)


class _DeferredInterrupt:
    """Ctrl-C during a learning run: the first press is acted on between ticks
    (``check``), so a head is never saved half-updated; a second press stops at once."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        try:
            if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
                self._old = signal.signal(signal.SIGINT, self._handle)
        except ValueError:            # not the main thread: leave Ctrl-C as it is
            self._old = None
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None
        return False

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self):
        if self.requested:
            raise KeyboardInterrupt


def _parse_config_repr(text):
    """``{field: value text}`` of a dataclass repr ``Name(a=1, b=(2, 3))``."""
    body = text[text.index("(") + 1:-1]
    fields, depth, start = {}, 0, 0
    for i, ch in enumerate(body + ","):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            key, _, value = body[start:i].strip().partition("=")
            if key:
                fields[key] = value
            start = i + 1
    return fields


def _config_reprs(text):
    """The ``HeadConfig(...)`` reprs in ``text``, balanced parentheses."""
    out = []
    for m in re.finditer(r"HeadConfig\(", text):
        depth = 0
        for j in range(m.end() - 1, len(text)):
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            if depth == 0:
                out.append(text[m.start():j + 1])
                break
    return out


def _state_error_text(path, error):
    """Why ``--load-state path`` failed, in one short line naming the file once."""
    if isinstance(error, FileNotFoundError):
        return "no such file"
    text = str(error)
    for prefix in (f"{path}: ", f"{os.fspath(path)}: "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    if "does not match" in text:
        reprs = _config_reprs(text)
        if len(reprs) == 2:
            saved, now = (_parse_config_repr(r) for r in reprs)
            diff = [f"{FLAG_NAMES.get(k, k)} {saved.get(k, '-')} in the file, {now.get(k, '-')} now"
                    for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]
            if diff:
                return "it was saved with other head settings: " + "; ".join(diff)
        return "it was saved with other head settings"
    return text


def _read_fig3_results(from_dir):
    """``results.json`` of a full ``kbt experiment fig3`` run in ``from_dir``, checked for calibration."""
    from sim.experiments import CALIBRATION_AT

    if not os.path.isdir(from_dir):
        why = "is not a folder" if os.path.exists(from_dir) else "no such folder"
        raise ValueError(f"--from: {from_dir}: {why}")
    path = os.path.join(from_dir, "results.json")
    if not os.path.isfile(path):
        raise ValueError(f"--from: {from_dir} has no results.json; give the --out folder of kbt experiment fig3")
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as e:
        raise ValueError(f"--from: cannot read {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise ValueError(f"--from: {path} is not valid JSON ({e})") from None
    kind = data.get("experiment") if isinstance(data, dict) else None
    if kind != "learning":
        made_by = {"variance": "a fig5 run", "calibration": "a calibration run"}.get(kind, "not a kbt experiment")
        raise ValueError(f"--from: {path} holds {made_by}, not a fig3 run; give the --out folder of "
                         "kbt experiment fig3")
    methods, marks = data.get("methods"), data.get("checkpoints")
    if not isinstance(methods, dict) or not methods or not isinstance(marks, list) or "seed" not in data:
        raise ValueError(f"--from: {path} is an incomplete fig3 result; re-run kbt experiment fig3")
    have = [n for n in CALIBRATION_AT if n in marks]
    if not have:
        raise ValueError(f"--from: {from_dir} has none of the checkpoints calibration needs "
                         f"({', '.join(map(str, CALIBRATION_AT))} samples; it has {', '.join(map(str, marks))}, "
                         "as a --quick run does): re-run fig3 without --quick, or run calibration without --from")
    missing = [n for n in CALIBRATION_AT if n not in marks]
    if missing:
        print(f"kbt experiment: note: {from_dir} lacks checkpoints {', '.join(map(str, missing))}; "
              f"calibrating at {', '.join(map(str, have))} only", file=sys.stderr)
    if not all(isinstance(s, dict) and "reliability" in s for s in methods.values()):
        raise ValueError(f"--from: {path} holds no reliability data (made by an older kbt); re-run kbt experiment fig3")
    return data


def _version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kbt")
    except PackageNotFoundError:      # pragma: no cover - running from a tree that was never installed
        return "unknown (not installed)"


def _os_error_text(e):
    if getattr(e, "filename", None) and getattr(e, "strerror", None):
        return f"{e.filename}: {e.strerror}"
    return str(e) or type(e).__name__


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` after every option whose help does not already name its default."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or not action.option_strings
                or any(action.default is v for v in (None, False, True, argparse.SUPPRESS))
                or isinstance(action, (argparse._HelpAction, argparse._VersionAction))):
            return text
        return text + " (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """``kbt``'s parser: every subcommand shows the defaults in its help."""

    def __init__(self, *a, **kw):
        kw.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*a, **kw)


# ---------------------------------------------------------------- commands
def cmd_lqr(args):
    from controller.lqr import lqr_gain

    name, params = _system_from_args(args)
    K, E = lqr_gain(params, R=args.r)
    print(f"system {name}: m_c={params.m_c:g} m_p={params.m_p:g} l_p={params.l_p:g}")
    print("K = [" + ", ".join(f"{k:.4f}" for k in K) + "]   (u = -K x)")
    print("closed-loop eigenvalues: " + ", ".join(f"{e.real:.4f}{e.imag:+.4f}j" for e in E))
    return 0


def _head_config(args, softmax=False):
    """The head settings the flags give (unset flags keep the head's defaults)."""
    kw = {k: v for k, v in (("n_layers", getattr(args, "head_layers", None)), ("obs_noise", getattr(args, "obs_noise", None)),
                            ("prior_var", tuple(args.prior_var) if getattr(args, "prior_var", None) else None))
          if v is not None}
    if softmax:
        if getattr(args, "update", None):
            kw["update"] = args.update
        return HeadConfig(output="softmax", **kw)
    for key, field in _HEAD_FLAGS_GAUSSIAN.items():      # the force head's own flags (dest -> HeadConfig field)
        if key not in _HEAD_FLAGS and getattr(args, key, None) is not None:
            kw[field] = getattr(args, key)
    return HeadConfig(**kw)


def _method_name(args):
    return f"{args.method}-{args.capacity}" if args.method in ("retrain", "blob") else args.method


def _make_controller(args, task):
    """The controller of ``--method`` on ``task``, through the one factory every command uses."""
    from sim.methods import MethodSettings, make_controller

    kw = {}
    if getattr(args, "lr", None) is not None:
        kw["lr" if args.method == "retrain" else "blob_lr"] = args.lr
    if getattr(args, "epochs", None) is not None:
        kw["epochs"] = args.epochs
    if getattr(args, "design_for", None):
        kw["lqr_design"] = _presets(args)[args.design_for]
    settings = MethodSettings(weights=args.weights, head=_head_config(args), softmax_head=_head_config(args, True),
                              sigma_data=getattr(args, "sigma_data", 0.0) or 0.0, **kw)
    return make_controller(_method_name(args), task, settings, seed=args.seed)


def _deploy_config(args, trial=None):
    from sim.deploy import DeployConfig

    period = None if args.period_ms is None else args.period_ms / 1000.0
    start, data_start = _stream_position(args)
    return DeployConfig(samples=args.samples, stream=args.stream, episodes=args.episodes,
                        seed=args.seed if trial is None else trial_seed(args.seed, trial), period=period,
                        changes=tuple(getattr(args, "_changes", ())),
                        fault_rate=args.fault_rate, fallback=args.fallback, sigma_data=args.sigma_data,
                        outlier_rate=args.outlier_rate, start=start, data_start=data_start, labels=args.labels,
                        ask_above=args.ask_above, label_rate=args.label_rate, probe=args.probe,
                        probe_memory=args.probe_memory, probe_max=args.probe_max)


# ---------------------------------------------------------------- resuming a saved run
# A state file keeps, next to the head, a ``__run__`` record (JSON): the run's
# settings and where its sample stream stopped. ``--load-state`` takes every
# setting the command line does not give from it, and the deployed loop
# continues the count and the i.i.d. stream (docs/deployed-loop.md).

RUN_RECORD_VERSION = 1
#: head flags (args dest) -> HeadConfig field, per head output
_HEAD_FLAGS = {"head_layers": "n_layers", "prior_var": "prior_var", "obs_noise": "obs_noise"}
_HEAD_FLAGS_GAUSSIAN = dict(_HEAD_FLAGS, noise="noise", inputs="inputs", robust="robust", detect="change_threshold")
_HEAD_FLAGS_SOFTMAX = dict(_HEAD_FLAGS, update="update")
#: run settings restored from the record: args dest -> flag
_RUN_FLAGS = {"stream": "--stream", "sigma_data": "--sigma-data", "seed": "--seed"}
_SYSTEM_FLAGS = {"system": "--system", "m_c": "--m-c", "m_p": "--m-p", "l_p": "--l-p"}


def _head_flags(method):
    return _HEAD_FLAGS_SOFTMAX if method == "kbt-softmax" else _HEAD_FLAGS_GAUSSIAN


def _data_seed(args):
    return args.seed + 1


def _run_record(args, consumed):
    """The ``__run__`` record for a state file written after ``consumed`` samples of this run."""
    name, params = _system_from_args(args)
    cfg = _head_config(args, softmax=args.method == "kbt-softmax")
    head = {dest: getattr(cfg, field) for dest, field in _head_flags(args.method).items()}
    resume = getattr(args, "_resume", None) or {}
    start, data_start = _stream_position(args)
    positions = dict(resume.get("positions", {}))
    stream = getattr(args, "stream", "iid")
    if stream == "iid":
        positions[str(_data_seed(args))] = data_start + consumed
    return {"version": RUN_RECORD_VERSION, "method": args.method, "task": getattr(args, "task", "balance"),
            "system": name, "m_c": params.m_c,
            "m_p": params.m_p, "l_p": params.l_p, "integrator": params.integrator, "stream": stream,
            "sigma_data": float(getattr(args, "sigma_data", 0.0) or 0.0), "seed": args.seed,
            "samples": start + consumed, "data_seed": _data_seed(args),
            "stream_position": positions.get(str(_data_seed(args)), 0), "positions": positions, "head": head}


def _save_run_state(args, controller, consumed):
    """Save the head with the ``__run__`` record of this run after ``consumed`` samples."""
    record = json.dumps(_run_record(args, consumed), default=_json_default)
    controller.save_state(args.save_state, extra={"__run__": np.array(record)})


def _valid_record(run):
    """The ``__run__`` record if it is one this kbt can use, else None."""
    def number(v, low=0.0):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and v >= low

    def count(v):
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    try:
        ok = (isinstance(run, dict) and run.get("version") == RUN_RECORD_VERSION
              and run.get("method") in STATEFUL and isinstance(run.get("system"), str)
              and all(number(run.get(k)) and run[k] > 0 for k in ("m_c", "m_p", "l_p"))
              and run.get("integrator") in INTEGRATORS and run.get("stream") in STREAMS
              and number(run.get("sigma_data")) and count(run.get("seed")) and count(run.get("samples"))
              and isinstance(run.get("positions"), dict)
              and all(k.isdigit() and count(v) for k, v in run["positions"].items())
              and isinstance(run.get("head"), dict) and set(run["head"]) <= set(_head_flags(run["method"])))
    except (TypeError, AttributeError):
        ok = False
    return run if ok else None


def _peek_state(path):
    """``(record, method)`` of a state file: its ``__run__`` record (None if it has
    none, "invalid" if unusable) and the method it names (None if it does not).
    A file that cannot be read gives (None, None): loading it explains why."""
    try:
        with np.load(path, allow_pickle=False) as data:
            text = str(data["__run__"]) if "__run__" in data.files else None
            method = str(data["__method__"]) if "__method__" in data.files else None
    except Exception:               # noqa: BLE001 - any unreadable file; _load_state reports it
        return None, None
    if text is None:
        return None, method
    try:
        run = _valid_record(json.loads(text))
    except ValueError:
        run = None
    return (run if run is not None else "invalid"), method


def _shown(v):
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return " ".join(_shown(x) for x in v)
    return str(v)


def _restore_run_settings(args):
    """``--load-state``: every run setting the command line does not give (method,
    system, stream, sigma_data, seed, head settings) comes from the file's run
    record. A given setting that differs is used, and noted once the head has
    loaded; given head settings that differ stay an error (the head's config)."""
    args._resume = {"start": 0, "positions": {}, "record": None, "notes": []}
    if not getattr(args, "load_state", None):
        return
    run, saved_method = _peek_state(args.load_state)
    given = _explicit_flags(getattr(args, "argv", []), args.command)
    method = run["method"] if isinstance(run, dict) else saved_method
    if method in STATEFUL and "method" not in given:
        args.method = method
    args._resume["record"] = run
    if not isinstance(run, dict):
        return
    notes = args._resume["notes"]
    saved_task = run.get("task", "balance")       # files written before tasks existed: balance
    if "task" not in given:
        args.task = saved_task
    elif args.task != saved_task:
        notes.append(("--task", args.task, saved_task))
    system_given = [flag for dest, flag in _SYSTEM_FLAGS.items() if dest in given]
    if not system_given:
        preset = _presets(args).get(run["system"])
        if preset is not None and (preset.m_c, preset.m_p, preset.l_p) == (run["m_c"], run["m_p"], run["l_p"]):
            args.system = run["system"]
        else:
            args.system, args.m_c, args.m_p, args.l_p = None, run["m_c"], run["m_p"], run["l_p"]
    else:
        name, params = _system_from_args(args)
        if (params.m_c, params.m_p, params.l_p) != (run["m_c"], run["m_p"], run["l_p"]):
            notes.append(("/".join(system_given), name, run["system"]))
    settings = dict(_RUN_FLAGS, integrator="--integrator")
    for dest, flag in settings.items():
        saved = run[dest]
        if dest not in given:
            setattr(args, dest, saved)
        elif getattr(args, dest) != saved:
            notes.append((flag, getattr(args, dest), saved))
    for dest, value in run["head"].items():
        if dest not in given:
            setattr(args, dest, list(value) if isinstance(value, (list, tuple)) else value)


def _stream_position(args):
    """``(start, data_start)``: samples the resumed head has seen, and where this run
    enters the i.i.d. stream of its data seed (0, 0 without --load-state)."""
    resume = getattr(args, "_resume", None) or {}
    positions = resume.get("positions", {})
    return resume.get("start", 0), positions.get(str(_data_seed(args)), 0)


def _note_differences(notes):
    if len(notes) == 1:
        flag, given, saved = notes[0]
        return f"note: {flag} {_shown(given)} differs from the saved run ({_shown(saved)}); using {_shown(given)}"
    return (f"note: {', '.join(f'{flag} {_shown(g)}' for flag, g, _ in notes)} differ from the saved run "
            f"({', '.join(_shown(s) for _, _, s in notes)}); using the values given")


def _resume_position(args, controller):
    """After a successful load: where the count and the i.i.d. stream continue, in words."""
    resume = args._resume if getattr(args, "_resume", None) is not None else {"record": None, "notes": []}
    args._resume = resume
    run = resume.get("record")
    if isinstance(run, dict):
        resume["start"] = run["samples"]
        resume["positions"] = {k: int(v) for k, v in run["positions"].items()}
    else:
        seen = controller.n_updates
        resume["start"] = seen
        resume["positions"] = {str(_data_seed(args)): seen}
        why = "has an unreadable run record" if run == "invalid" else "was saved by an older kbt"
        print(f"warning: {args.load_state} {why}: its stream position is unknown; counting from the {seen} "
              f"labels the head has seen, taken as the first {seen} of the i.i.d. stream of --seed {args.seed}",
              file=sys.stderr)
    start, data_start = _stream_position(args)
    if args.command != "run" or args.stream == "iid":       # kbt view learns from the i.i.d. stream
        return (f"samples count from {start}; the i.i.d. stream (data seed {_data_seed(args)}) "
                f"continues at sample {data_start}")
    return f"samples count from {start}; the on-policy stream has no stored position"


def _load_state(args, controller):
    """``--load-state``: resume the head, or explain why not (and start from
    the prior only with ``--allow-prior``)."""
    if not args.load_state:
        return None
    if not callable(getattr(controller, "load_state", None)):
        raise ValueError(f"--load-state: the {args.method} method has no saved state (only kbt)")
    try:
        controller.load_state(args.load_state)
    except (OSError, ValueError, KeyError, EOFError) as e:
        why = _state_error_text(args.load_state, e)
        if not args.allow_prior:
            raise ValueError(f"--load-state: cannot resume from {args.load_state}: {why}. "
                             "Pass --allow-prior to start from the pre-trained prior instead") from None
        print(f"warning: cannot resume from {args.load_state}: {why}; starting from the prior (--allow-prior)",
              file=sys.stderr)
        return "prior"
    where = _resume_position(args, controller)
    print(f"resumed the head from {args.load_state} ({controller.n_updates} updates so far); {where}")
    if args._resume["notes"]:
        print(_note_differences(args._resume["notes"]), file=sys.stderr)
    return "resumed"


def _save_state(args, controller, consumed):
    if args.save_state:
        _save_run_state(args, controller, consumed)
        print(f"saved the head to {args.save_state}")


def _check_state_args(args):
    if (args.save_state or args.load_state) and args.method not in STATEFUL:
        raise ValueError(f"--save-state/--load-state: only {', '.join(STATEFUL)} have a state to save, "
                         f"not {args.method}")


TABLE_HEAD = (f"{'samples':>8} {'success':>8} {'pred std (N)':>13} {'noise R (N^2)':>14} {'update p50 (us)':>16} "
              f"{'p99 (us)':>9} {'misses':>7} {'down-wt':>8} {'changes':>8} {'rejected':>9} {'faults':>7}")
#: the on-policy stream's extra columns: labels used, expert take-overs, falls of the plant while learning
ONPOLICY_HEAD = f" {'labels':>7} {'take-overs':>10} {'falls':>6}"


def _table_row(row, onpolicy=False):
    def f(v, fmt):
        return format(v, fmt) if v is not None else "-"

    text = (f"{row['samples']:>8} {row['success_rate']:>8.2f} {f(row['pred_std'], '.3f'):>13} "
            f"{f(row.get('noise_var'), '.4g'):>14} {f(row['update_p50_us'], '.0f'):>16} {f(row['update_p99_us'], '.0f'):>9} "
            f"{row['deadline_misses']:>7} {row.get('downweighted', 0):>8} {row.get('changes', 0):>8} "
            f"{row['rejected']:>9} {row['sensor_faults']:>7}")
    if onpolicy:
        text += f" {row['labels']:>7} {row['takeovers']:>10} {row['falls']:>6}"
    return text


def _who_labels(cfg):
    if cfg.stream == "iid":
        return "i.i.d. states labelled by the expert"
    if cfg.labels == "always":
        return "the expert labels every visited state"
    if cfg.labels == "uncertain":
        return f"the expert takes over (acts and labels) where the epistemic std is above {cfg.ask_above:g} N"
    return f"the expert takes over (acts and labels) at random ticks, probability {cfg.label_rate:g}"


def _probe_record(cfg, task):
    """The probing settings of a run, for its JSON (gain 0: no probing)."""
    return {"probe": cfg.probe_gain(task), "probe_memory": cfg.probe_memory, "probe_max_N": cfg.probe_max}


def _corrupt_line(n, shift, bound):
    """The corrupt labels' effect: the largest shift of the predicted force one made, against its bound."""
    if not bound:
        return f"corrupt labels: {n}; this method has no bound on their effect"
    return (f"corrupt labels (+-1000 N): {n}; the largest shift of the predicted force by one of them: "
            f"{shift:.3g} N, against its bound (c/2) x epistemic std {bound:.3g} N at that state")


def trial_seed(seed, trial):
    """The seed of trial ``trial`` of ``kbt run --seed SEED --trials N``: 1000 SEED + trial (its
    plant, faults and evaluation episodes; its i.i.d. data seed is one more), as in the
    experiments; so trial t of seed 0 is ``kbt run --seed t``."""
    return 1000 * seed + trial


def _run_trials(args, task, name):
    """Several deployed learning runs, each with its own seed (``trial_seed``); mean success per checkpoint."""
    from sim.deploy import run_deployment
    from sim.progress import Progress

    per_trial, downweighted, changes, corrupt = [], [], [], []
    with Progress(args.trials, f"{args.method} trials", enabled=args.progress) as bar:
        for t in range(args.trials):
            args.interrupted_after = f"{t} of {args.trials} trials"     # for the Ctrl-C message
            controller = _make_controller(args, task)
            res = run_deployment(controller, task, _deploy_config(args, trial=t))
            per_trial.append(res.rows)
            downweighted.append(res.downweighted)
            changes.append(res.changes)
            corrupt.append((res.corrupt, res.corrupt_shift, res.corrupt_bound))
            bar.update(1)
    marks = [r["samples"] for r in per_trial[0]]
    succ = np.array([[r["success_rate"] for r in rows] for rows in per_trial])      # [trials, checkpoints]
    p50 = np.array([rows[-1]["update_p50_us"] for rows in per_trial], dtype=float)
    print(f"{args.method} on {name}, {args.trials} trials x {args.samples} samples, {args.episodes} episodes each")
    print(f"{'samples':>8} {'mean success':>13} {'min':>6} {'max':>6}")
    for j, m in enumerate(marks):
        print(f"{m:>8} {succ[:, j].mean():>13.3f} {succ[:, j].min():>6.2f} {succ[:, j].max():>6.2f}")
    print(f"update latency p50 (median over trials): {np.nanmedian(p50):.0f} us; "
          f"labels down-weighted below 1/2: {sum(downweighted)} in all ({max(downweighted)} at most in one trial); "
          f"changes detected: {sum(changes)} in all ({max(changes)} at most in one trial)")
    if sum(n for n, _, _ in corrupt):
        _, shift, bound = max(corrupt, key=lambda t: t[1] / t[2] if t[2] else -1.0)
        print(_corrupt_line(sum(n for n, _, _ in corrupt), shift, bound))
    if args.json:
        _write_json(args.json, {"method": args.method, "system": name, "episodes": args.episodes, "seed": args.seed,
                                "trials": args.trials, "samples": args.samples, "stream": args.stream,
                                **_probe_record(_deploy_config(args), task),
                                "trial_seeds": [trial_seed(args.seed, t) for t in range(args.trials)],
                                "checkpoints": marks, "success_rate": succ[:, -1].mean(),
                                "success_per_trial": succ, "downweighted_per_trial": downweighted,
                                "changes_per_trial": changes,
                                "corrupt_per_trial": [dict(zip(("labels", "shift_N", "bound_N"), t)) for t in corrupt],
                                "per_trial": per_trial})
    return 0


def _run_learning(args, task, name):
    """One deployed learning run with the progress table."""
    from sim.deploy import run_deployment
    from sim.progress import Progress

    controller = _make_controller(args, task)
    resumed = _load_state(args, controller)
    cfg = _deploy_config(args)
    tau_ms = 1000 * task.params.tau
    deadline = "" if cfg.period is None else f", a deadline of {1000 * cfg.period:g} ms per tick"
    after = f" after the saved run's {cfg.start}" if cfg.start else ""
    onpolicy = cfg.stream == "onpolicy"
    print(f"{args.method} on {name}: {cfg.samples} ticks{after} ({_who_labels(cfg)}); the plant steps every "
          f"{tau_ms:g} ms{deadline}; success over {cfg.episodes} episodes at each checkpoint")
    for change in cfg.changes:
        print(f"  change {change.describe()}")
    print(TABLE_HEAD + (ONPOLICY_HEAD if onpolicy else ""))
    view = None
    done = [0]                        # samples this run has learned (for a save on Ctrl-C)
    taken = [0]                       # expert take-overs so far (the view marks a new one)
    stop = _DeferredInterrupt()       # Ctrl-C stops between ticks, never inside an update
    with Progress(cfg.samples, f"{args.method} learning", enabled=args.progress and not args.view) as bar:
        def on_checkpoint(row):
            bar.clear()
            print(_table_row(row, onpolicy), flush=True)

        def on_tick(state, force, res):
            bar.update(1)
            args.interrupted_after = f"{res.ticks} samples"
            done[0] = res.ticks
            stop.check()
            if view is not None:
                pilot = res.takeovers > taken[0]
                taken[0] = res.takeovers
                return view.show(state, force, learned=res.updates, force_std=force_std(controller, state),
                                 pilot=pilot, takeovers=res.takeovers if cfg.labels != "always" else None)
            return True

        if args.view:
            from sim.view import Viewer, force_std

            view = Viewer(task, method=args.method)
        try:
            with stop:
                res = run_deployment(controller, task, cfg, on_checkpoint=on_checkpoint, on_tick=on_tick)
                stop.check()
        except KeyboardInterrupt:
            if args.save_state:       # what was learned so far, and where the stream stopped; atomic
                _save_run_state(args, controller, done[0])
                print(f"saved the head learned so far ({controller.n_updates} updates) to {args.save_state}",
                      file=sys.stderr)
            raise
        finally:
            if view is not None:
                view.close()
    last = res.rows[-1]
    s = res.summary()
    total = f", {cfg.start + res.ticks} samples with the saved run's" if cfg.start else ""
    robust = (f"{res.downweighted} down-weighted below 1/2, {res.changes} changes detected, "
              if hasattr(controller, "n_downweighted") else "")
    who = (f" from {res.labels} labels ({res.takeovers} expert take-overs, {res.plant_failures} falls while "
           f"learning)" if onpolicy else "")
    print(f"{args.method} on {name}: success {last['success_rate']:.3f} after {res.updates} updates{who}{total} "
          f"({robust}{res.rejected} rejected as non-finite, {res.sensor_faults} sensor faults, "
          f"{res.action_faults} action faults, {res.deadline_misses} deadline misses of {res.ticks} ticks, "
          f"longest run {res.longest_miss_run}; act p50 {s['act_p50_us']:.0f} us, update p50 "
          f"{s['update_p50_us']:.0f} us)")
    if res.corrupt:
        print(_corrupt_line(res.corrupt, res.corrupt_shift, res.corrupt_bound))
    _save_state(args, controller, res.ticks)
    if args.json:
        _write_json(args.json, {
            "method": args.method, "system": name, "episodes": cfg.episodes, "seed": args.seed,
            "samples": cfg.samples, "start": cfg.start, "stream": cfg.stream, "fault_rate": cfg.fault_rate,
            "fallback": cfg.fallback, **_probe_record(cfg, task),
            "resumed": resumed, "success_rate": last["success_rate"], "checkpoints": res.rows, **s,
        })
    return 0


def _parse_changes(args, params):
    """``--change`` entries as ``sim.schedule.Change`` (ValueError naming the flag otherwise)."""
    from sim.schedule import check_schedule, parse_change

    try:
        changes = [parse_change(text, params) for text in args.change or ()]
        return check_schedule(changes, args.samples)
    except ValueError as e:
        raise ValueError(f"--change: {str(e).removeprefix('changes: ')}") from None


def cmd_run(args):
    from sim.loop import evaluate_success

    _restore_run_settings(args)   # --load-state: the saved run's settings the command line does not give
    name, task = _task_from_args(args)
    params = task.params
    _check_state_args(args)
    if args.method in LEARNERS:
        args._changes = _parse_changes(args, params)
        _deploy_config(args)      # bad settings fail before any work
    if args.method in LEARNERS and args.trials > 1:
        if args.save_state or args.load_state or args.view:
            raise ValueError("--trials: a multi-trial run cannot save, load or view a state; use --trials 1")
        return _run_trials(args, task, name)
    if args.method in LEARNERS:
        return _run_learning(args, task, name)
    controller = _make_controller(args, task)
    ev = evaluate_success(controller, task, n_episodes=args.episodes, seed=args.seed)
    design = args.design_for or name
    label = f"{args.method} (designed for {design})" if args.method in ("lqr", "expert") else args.method
    print(f"{label} on {name}: success {ev.success_rate:.3f} over {ev.n_episodes} episodes "
          f"(mean length {ev.lengths.mean():.1f} steps, saturated {100 * ev.saturation_fraction:.2f} % of steps, "
          f"{ev.seconds:.3f} s)")
    if args.json:
        _write_json(args.json, {
            "method": args.method, "system": name, "design_for": design,
            "params": {k: getattr(params, k) for k in ("m_c", "m_p", "l_p", "g", "tau", "integrator", "u_max")},
            "episodes": ev.n_episodes, "seed": args.seed, "success_rate": ev.success_rate,
            "mean_length": float(ev.lengths.mean()), "saturation_fraction": ev.saturation_fraction,
            "seconds": ev.seconds, "samples": 0,
        })
    if args.view:
        from sim.view import watch

        watch(controller, task, method=args.method, seconds=None, seed=args.seed)
    return 0


def cmd_view(args):
    from sim.deploy import iid_samples
    from sim.experts import expert_for
    from sim.progress import Progress
    from sim.view import watch

    _restore_run_settings(args)   # --load-state: the saved run's settings the command line does not give
    name, task = _task_from_args(args)
    method = _method_name(args)
    controller = _make_controller(args, task)
    _check_state_args(args)
    _load_state(args, controller)
    learned = None
    if callable(getattr(controller, "observe", None)):
        samples = args.samples if args.samples is not None else 400
        if samples < 0:
            raise ValueError(f"--samples: expected an integer >= 0 but found {samples}")
        first = _stream_position(args)[1]         # a resumed head continues its i.i.d. stream
        S, F = (iid_samples(expert_for(task), args.seed + 1, first, samples, task=task) if samples
                else (None, None))
        with Progress(samples, f"{method} adapting before the view", enabled=args.progress and samples > 0) as bar:
            for i in range(samples):
                controller.observe(S[i], F[i])
                bar.update(1)
        learned = getattr(controller, "n_updates", samples)   # includes a resumed head's updates
    out = watch(controller, task, method=method, seconds=args.seconds, seed=args.seed, frames_dir=args.frames,
                headless=args.headless or bool(args.frames) or bool(args.screenshot), learned=learned,
                screenshot=args.screenshot)
    print(f"{method} on {name}: {out['seconds']:.1f} s simulated, {out['frames']} frames, "
          f"{out['successes']} successes, {out['failures']} failures"
          + (f"; frames in {args.frames}" if args.frames else "")
          + (f"; last frame in {args.screenshot}" if args.screenshot else ""))
    return 0


def cmd_profile(args):
    from firmware_profile.profile import ProfileConfig, format_markdown, format_text
    from sim.profile_run import run_profile

    kw = {k: v for k, v in (("calls", args.calls), ("retrain_calls", args.retrain_calls),
                            ("capacities", tuple(args.capacities) if args.capacities else None),
                            ("budget_kib", args.budget_kib), ("seed", args.seed)) if v is not None}
    kw["rate_hz"] = args.rate
    cfg = ProfileConfig.quick(**kw) if args.quick else ProfileConfig(**kw)
    res = run_profile(cfg, progress=(lambda m: print(f"... {m}", file=sys.stderr, flush=True))
                      if args.progress else None)
    res["command"] = "kbt " + " ".join(args.argv)
    print(format_markdown(res) if args.markdown else format_text(res))
    if args.json:
        _write_json(args.json, res)
    return 0


def _trial_store(args, spec):
    """The folder OUT/trials/ that keeps every finished trial (``sim.trial_store``); --resume reads it back."""
    from sim.experiments import VarianceSpec
    from sim.trial_store import LearningTrialStore, VarianceTrialStore

    kind = VarianceTrialStore if isinstance(spec, VarianceSpec) else LearningTrialStore
    store = kind(os.path.join(args.out, "trials"), spec, resume=args.resume)
    if store.discarded:
        print(f"kbt experiment: note: replaced {store.discarded} trial files in {store.directory} "
              "(--resume keeps them)", file=sys.stderr)
    return store


def _trial_note(args, store):
    if args.resume:
        print(f"kbt experiment: {store.loaded} trials resumed from {store.directory}, {store.saved} run",
              file=sys.stderr)


def _run_stored(args, jobs, spec, trial_store, run):
    """Run an experiment of deployed trials with its resumable store OUT/trials/; the results
    record the command."""
    store = trial_store(os.path.join(args.out, "trials"), spec, resume=args.resume)
    results = run(spec, jobs=jobs, progress=args.progress, scheduler=args.scheduler, store=store)
    _trial_note(args, store)
    results["command"] = "kbt " + " ".join(args.argv)
    return results


def _experiment_deployed(args, jobs):
    """kbt experiment onpolicy / swingup: deployed learning runs per variant and trial."""
    from sim import exp_onpolicy as ex
    from sim.methods import MethodSettings
    from sim.report_deployed import format_summary, write_deployed

    kw = {k: v for k, v in (("trials", args.trials), ("ticks", args.samples), ("seed", args.seed),
                            ("episodes", args.episodes), ("ask_above", args.ask_above), ("every", args.every),
                            ("probe", args.probe))
          if v is not None}
    if args.methods:
        kw["methods"] = tuple(args.methods)
    if args.gated is not None:
        kw["gated"] = tuple(args.gated)
    kw["settings"] = MethodSettings(epochs=args.epochs, lr=args.lr)
    if args.name == "swingup":
        spec = ex.swingup_spec(quick=args.quick, **kw)
    else:
        kw["task"] = args.task or "balance"
        spec = ex.OnPolicySpec.quick(**kw) if args.quick else ex.OnPolicySpec(**kw)
    results = _run_stored(args, jobs, spec, ex.trial_store, ex.run_onpolicy)
    summary = write_deployed(results, args.out)
    print(f"{args.name} on {spec.task}: mean success over {spec.trials} trials at tick checkpoints; labels and "
          f"falls while learning (means at the end); labels to 0.99: median over the trials that reached it")
    print(format_summary(results, summary))
    print(f"wrote {args.out}/results.json, results.csv and success.png")
    return 0


def _experiment_drift(args, jobs):
    """kbt experiment drift: every method through schedules of changes (``sim.exp_drift``)."""
    from sim import exp_drift as ex
    from sim.methods import MethodSettings
    from sim.report_drift import format_drift, write_drift

    kw = {k: v for k, v in (("trials", args.trials), ("seed", args.seed), ("episodes", args.episodes))
          if v is not None}
    if args.methods:
        kw["methods"] = tuple(args.methods)
    kw["settings"] = MethodSettings(epochs=args.epochs, lr=args.lr)
    spec = ex.DriftSpec.quick(**kw) if args.quick else ex.DriftSpec(**kw)
    results = _run_stored(args, jobs, spec, ex.trial_store, ex.run_drift)
    rows = write_drift(results, args.out)
    print(f"drift: mean success 10/25/50 samples after each change over {spec.trials} trials "
          f"({spec.heavy_trials} for retraining and BLoB, at most {spec.swingup_trials} on swing-up); samples to 0.99 (median over the trials that got there); "
          f"held-out RMSE against the expert in force 200 samples after; labels down-weighted and changes "
          f"detected (means by the end)")
    print(format_drift(rows))
    print(f"wrote {args.out}/results.json, results.csv and drift.png")
    return 0


def cmd_experiment(args):
    from sim import experiments as ex
    from sim import report
    from sim.methods import MethodSettings

    jobs = args.jobs or (os.cpu_count() or 1)
    if args.name in ("onpolicy", "swingup"):
        return _experiment_deployed(args, jobs)
    if args.name == "drift":
        return _experiment_drift(args, jobs)
    if args.name in ("fig3", "fig4"):
        kw = {k: v for k, v in (("trials", args.trials), ("samples", args.samples), ("seed", args.seed),
                                ("episodes", args.episodes)) if v is not None}
        if args.methods:
            kw["methods"] = tuple(args.methods)
        kw["settings"] = MethodSettings(epochs=args.epochs, lr=args.lr)
        spec = ex.LearningSpec.quick(**kw) if args.quick else ex.LearningSpec(**kw)
        store = _trial_store(args, spec)
        results = ex.run_learning(spec, jobs=jobs, progress=args.progress, scheduler=args.scheduler, store=store)
        _trial_note(args, store)
        results["command"] = "kbt " + " ".join(args.argv)
        table = report.write_learning(results, args.out)
        at = report.summary_marks(results)
        print(f"mean success at checkpoints over {spec.trials} trials; median learning time per sample")
        print(f"{'method':>12} " + " ".join(f"{'@' + str(n):>7}" for n in at) + f" {'ms/sample':>10}")
        for m, row in table.items():
            cells = " ".join(f"{row[f'success_{n}']:>7.2f}" for n in at)
            print(f"{m:>12} {cells} {row['ms_per_sample']:>10.3f}")
        for ref, v in results["references"].items():
            print(f"{ref:>12} success {v:.2f} (reference)")
    elif args.name == "calibration":
        kw = {k: v for k, v in (("trials", args.trials), ("samples", args.samples), ("seed", args.seed),
                                ("episodes", args.episodes)) if v is not None}
        if args.methods:
            kw["methods"] = tuple(args.methods)
        kw["settings"] = MethodSettings(epochs=args.epochs, lr=args.lr)
        if args.sigma_data:
            if len(args.sigma_data) != 1:
                raise ValueError("--sigma-data: calibration takes one label-noise variance")
            kw["sigma_data"] = args.sigma_data[0]
        learning = _read_fig3_results(args.from_dir) if args.from_dir else None
        if learning is not None:
            kw["seed"] = learning["seed"]      # the pre-trained reference on the fig3 run's held-out data
        spec = ex.calibration_spec(quick=args.quick, **kw)
        if learning is None:
            store = _trial_store(args, spec)
            learning = ex.run_learning(spec, jobs=jobs, progress=args.progress, scheduler=args.scheduler,
                                       store=store)
            _trial_note(args, store)
        results = ex.run_calibration(spec, jobs=jobs, progress=args.progress, learning=learning)
        results["command"] = "kbt " + " ".join(args.argv)
        rows = report.write_calibration(results, args.out)
        print(f"{'method':>12} {'samples':>7} {'RMSE (N)':>9} {'cover50':>7} {'cover90':>7} {'NLL':>7} "
              f"{'CRPS (N)':>8} {'accuracy':>8} {'ECE':>6}")
        for r in rows:
            print(f"{r['method']:>12} {r['samples']:>7} {r['rmse']:>9.3f} {r['coverage50']:>7.3f} "
                  f"{r['coverage90']:>7.3f} {r['gnll']:>7.3f} {r['crps']:>8.3f} {r['accuracy']:>8.3f} {r['ece']:>6.3f}")
    else:  # fig5
        kw = {k: v for k, v in (("samples", args.samples), ("seed", args.seed)) if v is not None}
        if args.sigma_data:
            kw["sigma_data"] = tuple(dict.fromkeys(args.sigma_data))     # each variance once
        spec = (ex.VarianceSpec.quick if args.quick else ex.VarianceSpec)(method=args.fig5_method, **kw)
        store = _trial_store(args, spec)
        results = ex.run_variance(spec, jobs=jobs, progress=args.progress, scheduler=args.scheduler, store=store)
        _trial_note(args, store)
        results["command"] = "kbt " + " ".join(args.argv)
        settled = report.write_variance(results, args.out)
        for s, v in settled.items():
            noise = results["runs"][s].get("noise_var")
            extra = f", learned noise R {noise:8.2f} N^2" if noise is not None else ""
            print(f"Sigma_data = {s:>4}: settled predicted variance {v:8.2f} N^2{extra}")
    files = "calibration.csv and reliability.png" if args.name == "calibration" else "results.csv and plots"
    print(f"wrote {args.out}/results.json, {files}")
    return 0


def cmd_pretrain(args):
    import shlex

    from sim.pretrain import pretrain
    from controller.transformer import TransformerConfig
    from sim.cartpole import SOURCE, TARGET
    from sim.loop import evaluate_success

    if args.task == "swingup":
        return _pretrain_swingup(args)
    cfg = TransformerConfig(n_bins=args.bins, target=args.target, sigma=args.sigma, query=args.query,
                            final_ln=args.final_ln)
    policy, history = pretrain(cfg, seed=args.seed, steps=args.steps, batch=args.batch, lr=args.lr,
                               progress=args.progress)
    policy.meta["command"] = "kbt " + " ".join(shlex.quote(a) for a in args.argv)
    for name, system in (("source", SOURCE), ("target", TARGET)):
        policy.meta[f"success_{name}"] = evaluate_success(policy, system, 100, seed=0).success_rate
    policy.save(args.out)
    m = policy.meta
    print(f"held-out force RMSE on SOURCE data: {m['val_rmse']:.4f} N (final loss {m['final_loss']:.4f}, "
          f"{m['train_seconds']:.1f} s)")
    print(f"success over 100 episodes (seed 0): SOURCE {m['success_source']:.2f}, TARGET {m['success_target']:.2f}")
    print(f"wrote {args.out}")
    return 0


def _pretrain_swingup(args):
    """kbt pretrain --task swingup: noisy expert rollouts + DAgger on SOURCE (``sim.pretrain_swingup``)."""
    import shlex

    from controller.transformer import TransformerConfig
    from sim.pretrain_swingup import SWINGUP_CONFIG, pretrain_swingup

    cfg = TransformerConfig(n_bins=args.bins, target=args.target, sigma=args.sigma, query=args.query,
                            final_ln=args.final_ln, state_scale=SWINGUP_CONFIG.state_scale)
    rounds = 4 if args.dagger_rounds is None else args.dagger_rounds
    policy, history = pretrain_swingup(cfg, seed=args.seed, steps_initial=args.steps, batch=args.batch,
                                       lr=args.lr, dagger_rounds=rounds, progress=args.progress)
    policy.meta["command"] = "kbt " + " ".join(shlex.quote(a) for a in args.argv)
    policy.save(args.out)
    m = policy.meta
    print(f"held-out force RMSE on clean SOURCE swing-up expert episodes: {m['val_rmse']:.4f} N "
          f"(final loss {m['final_loss']:.4f}, {m['n_data']} labelled states, {m['train_seconds']:.1f} s)")
    print(f"swing-up success over 100 episodes (seed 0): SOURCE {m['success_source']:.2f}, "
          f"TARGET {m['success_target']:.2f}, SHIFT2 {m['success_shift2']:.2f}")
    print(f"wrote {args.out}")
    return 0


# ---------------------------------------------------------------- parser
def _cmd_export(args):
    """``kbt export``: write the C99 export of ``--method`` (its prior, or ``--load-state``'s head,
    with the head settings saved in that file)."""
    from dataclasses import replace

    from controller.kalman_head import KalmanHead
    from firmware_profile.export import file_names, write_export
    from sim.cartpole import TARGET
    from sim.methods import MethodSettings, make_controller

    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"--out: cannot write into {args.out}: is a file, not a folder")
    settings = MethodSettings(weights=args.weights)
    if args.load_state:
        try:
            saved = KalmanHead.load(args.load_state).config
        except (OSError, ValueError, KeyError) as e:
            raise ValueError(f"--load-state: {e}") from None
        settings = MethodSettings(weights=args.weights, head=replace(saved, backend="numba"))
    controller = make_controller(args.method, TARGET, settings)
    source = (f"the kbt prior ({args.weights or 'the shipped pre-trained weights'})" if args.method == "kbt"
              else "the rls prior (the SOURCE LQR gain)")
    if args.load_state:
        try:
            controller.load_state(args.load_state)
        except (OSError, ValueError) as e:
            raise ValueError(f"--load-state: {e}") from None
        source = f"{args.method} head {os.path.basename(args.load_state)} ({controller.n_updates} updates)"
    paths = write_export(controller, args.out, source=source)
    header, body = file_names(args.method)
    print(f"wrote {', '.join(paths)} ({args.method}: {controller.head.d_in + 1} head inputs); "
          f"include {header} and compile {body} with any C99 compiler")
    return 0


def _add_head_args(g):
    """The Bayesian heads' settings (defaults: the head's own, docs/head-v2.md)."""
    g.add_argument("--head-layers", type=int, default=None, help="Bayesian head layers L (default 1)")
    g.add_argument("--prior-var", type=float, nargs="+", default=None,
                   help="prior weight variance per head layer (default: kbt and rls "
                        f"{DEFAULT_PRIOR_VAR['gaussian']:g}, kbt-softmax {DEFAULT_PRIOR_VAR['softmax']:g})")
    g.add_argument("--obs-noise", type=float, default=None,
                   help="kbt, rls: known noise R or the learned noise's initial guess (N^2, default "
                        f"{DEFAULT_OBS_NOISE['gaussian']:g}); kbt-softmax: measurement noise R "
                        f"(default {DEFAULT_OBS_NOISE['softmax']:g})")
    g.add_argument("--noise", choices=("learned", "known"), default=None,
                   help="kbt, rls: learn the label-noise variance online (default) or take it as known "
                        "(= --sigma-data if given, else --obs-noise)")
    g.add_argument("--inputs", choices=("features+state", "features"), default=None,
                   help="kbt: head inputs, T_1 features with the state as a skip path (default) or features only")
    g.add_argument("--robust", type=float, default=None,
                   help=f"kbt, rls: c of the robust weight 1 / (1 + x / c^2) of a label x = e^2 / S from the "
                        f"prediction (default {HeadConfig.robust:g}; 0: every label at full weight)")
    g.add_argument("--detect", type=float, default=None,
                   help=f"kbt, rls: threshold of the change detector that re-opens the posterior "
                        f"(default {HeadConfig.change_threshold:g}; 0: off)")
    g.add_argument("--update", choices=("kalman", "paper"), default=None, help="kbt-softmax: output update (default kalman)")


def build_parser():
    parser = _Parser(prog="kbt", description="Kalman Bayesian Transformer cart-pole controller")
    parser.add_argument("--version", action="version", version=f"kbt {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("lqr", help="LQR gain and closed-loop eigenvalues")
    _add_system_args(p)
    p.add_argument("--r", type=float, default=None, help="force weight R (default 0.1)")
    p.set_defaults(func=cmd_lqr)

    p = sub.add_parser("run", help="run a controller in the closed loop")
    _add_system_args(p)
    p.add_argument("--task", choices=("balance", "swingup"), default="balance",
                   help="balance (the pole starts upright) or swingup (it starts hanging down; docs/swingup.md); "
                        "--system source/target are the task's own plants (default balance)")
    p.add_argument("--method", choices=METHODS, default="kbt",
                   help="controller (default kbt: the pre-trained transformer adapting online)")
    p.add_argument("--design-for", choices=sorted(SYSTEMS), default=None,
                   help="lqr only: the system the gain is designed for (default: the system it runs on)")
    p.add_argument("--episodes", type=int, default=100, help="evaluation episodes (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seeds the episodes, the plant and the data (>= 0)")
    p.add_argument("--json", metavar="PATH", help="write the result as JSON (default: not written)")
    p.add_argument("--weights", metavar="PATH", help="transformer weights (default: the shipped pre-trained file)")
    g = p.add_argument_group("learning methods (kbt, kbt-softmax, rls)")
    g.add_argument("--samples", type=int, default=400, help="expert-labelled samples streamed in (default 400)")
    g.add_argument("--trials", type=int, default=1, help="independent trials (data seeds); prints the mean")
    g.add_argument("--sigma-data", type=float, default=0.0, help="variance (N^2) of the label noise (default 0)")
    _add_head_args(g)
    g = p.add_argument_group("warm-started retraining and BLoB (retrain, blob)")
    g.add_argument("--capacity", type=int, default=10, help="FIFO memory capacity (default 10)")
    g.add_argument("--epochs", type=int, default=100, help="epochs over the memory per sample (default 100)")
    g.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: retrain 1e-3, blob 3e-3)")
    g = p.add_argument_group("deployment (learning methods)")
    g.add_argument("--stream", choices=STREAMS, default="iid",
                   help="iid: states uniform in |x|, |x_dot| <= 0.5, |theta|, |theta_dot| <= 0.1 (the paper); "
                        "onpolicy: the states the controller visits")
    g.add_argument("--period-ms", type=float, default=None, help="control period for the deadline (default: tau)")
    g.add_argument("--fault-rate", type=float, default=0.0,
                   help="inject NaN sensor readings and NaN labels with this probability per tick (default 0)")
    g.add_argument("--change", action="append", default=None, metavar="TICK:M_C,M_P,L_P",
                   help="from tick TICK on, the plant has these masses (kg) and pole length (m); or "
                        "TICK:noise=VAR, the labels' noise variance (N^2). Repeat for a schedule, e.g. "
                        "--change 400:1,0.5,2 --change 800:1,1,5; every checkpoint is measured on the plant in force (default: no change)")
    g.add_argument("--outlier-rate", type=float, default=0.0,
                   help="replace the label by a corrupt one (+-1000 N) with this probability per tick (default 0)")
    g.add_argument("--labels", choices=LABEL_MODES, default="always",
                   help="on-policy stream: who labels. always: the expert labels every tick; uncertain: the expert "
                        "takes over (acts and labels) only the ticks where the controller's epistemic std is above "
                        "--ask-above; random: it takes over at random ticks with probability --label-rate "
                        "(default always)")
    g.add_argument("--ask-above", type=float, default=1.0,
                   help="--labels uncertain: epistemic standard deviation (N) above which the expert takes over (default 1)")
    g.add_argument("--label-rate", type=float, default=0.5,
                   help="--labels random: probability per tick that the expert takes over, in (0, 1] (default 0.5)")
    g.add_argument("--probe", type=float, default=None, metavar="K",
                   help="on-policy stream: add K x (epistemic std) x a slow unit Gaussian to the learner's force, "
                        "to excite the directions the visited states leave unlearned; 0: off "
                        "(default: 1 on balance, 0 on swing-up; docs/onpolicy.md)")
    g.add_argument("--probe-memory", type=float, default=10.0, metavar="TICKS",
                   help="--probe: correlation time of the probing signal in ticks, >= 1; 1: white (default 10)")
    g.add_argument("--probe-max", type=float, default=5.0, metavar="N",
                   help="--probe: largest probing force (N), > 0 (default 5)")
    g.add_argument("--fallback", choices=FALLBACKS, default="hold",
                   help="on a non-finite reading: hold the last force, or LQR on the last good reading")
    g.add_argument("--save-state", metavar="PATH",
                   help="save the head's posterior, the run's settings and its place in the sample stream at the "
                        "end, or on Ctrl-C what was learned so far (default: not saved)")
    g.add_argument("--load-state", metavar="PATH",
                   help="resume the head from a saved posterior: the sample count and the i.i.d. stream continue, "
                        "and settings not given are the saved run's (default: start from the pre-trained prior)")
    g.add_argument("--allow-prior", action="store_true",
                   help="if --load-state cannot be read, start from the pre-trained prior instead of stopping")
    p.add_argument("--view", action="store_true", help="watch the run in a pygame window")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("view", help="watch a controller live in a pygame window")
    _add_system_args(p)
    p.add_argument("--task", choices=("balance", "swingup"), default="balance",
                   help="balance (the pole starts upright) or swingup (it starts hanging down; docs/swingup.md); "
                        "--system source/target are the task's own plants (default balance)")
    p.add_argument("--method", choices=METHODS, default="kbt", help="controller (default kbt)")
    p.add_argument("--capacity", type=int, default=10, help="retrain, blob: FIFO memory capacity")
    p.add_argument("--samples", type=int, default=None,
                   help="learning methods: i.i.d. expert samples learned before the view opens (default 400)")
    p.add_argument("--seconds", type=float, default=None,
                   help="stop after this much simulated time (default: a window runs until q or Esc; "
                        f"off-screen, with --frames, --screenshot or --headless, {OFFSCREEN_SECONDS:g} s)")
    p.add_argument("--frames", metavar="DIR", help="render off-screen and save every frame as PNG into DIR (default: no frames saved)")
    p.add_argument("--headless", action="store_true", help="no window (off-screen surface)")
    p.add_argument("--screenshot", metavar="PNG", help="render off-screen and save the last frame as PNG (default: none)")
    p.add_argument("--seed", type=int, default=0, help="seeds the episodes and the samples learned first (>= 0)")
    p.add_argument("--weights", metavar="PATH", help="transformer weights (default: the shipped pre-trained file)")
    p.add_argument("--load-state", metavar="PATH", help="start from a saved head (default: the pre-trained prior)")
    p.add_argument("--allow-prior", action="store_true", help="if --load-state cannot be read, use the prior")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    p.set_defaults(func=cmd_view, save_state=None)

    p = sub.add_parser("profile", help="per-sample latency, memory and FLOPs of every method")
    p.add_argument("--rate", type=float, default=50.0, help="control rate (Hz) for the deadline analysis")
    p.add_argument("--calls", type=int, default=None, help="timed calls for inference and KBT updates (default 10000, --quick 300)")
    p.add_argument("--retrain-calls", type=int, default=None, help="timed retraining updates per capacity (default 20, --quick 2)")
    p.add_argument("--capacities", type=int, nargs="+", default=None, help="retraining capacities (default 10 20 25 50 75 100, --quick 10)")
    p.add_argument("--budget-kib", type=int, default=None, help="add a custom device with this much RAM (default: none)")
    p.add_argument("--seed", type=int, default=None, help="seeds the measured data (default 0)")
    p.add_argument("--quick", action="store_true", help="small sizes (seconds), for checks")
    p.add_argument("--json", metavar="PATH", help="write every figure as JSON (default: not written)")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables (for docs)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress messages")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("experiment", help="reproduce a figure of the paper (JSON, CSV, PNG)")
    p.add_argument("name", choices=("fig3", "fig4", "fig5", "calibration", "onpolicy", "swingup", "drift"),
                   help="fig3/fig4: success and time per sample vs samples (one run makes both); "
                        "fig5: predicted variance vs samples for several Sigma_data; "
                        "calibration: accuracy, ECE, NLL, RMSE, coverage and reliability diagrams; "
                        "onpolicy: every method learning from labels on the states it visits, and KBT asking "
                        "for labels only where it is unsure; swingup: every method adapting to the swing-up "
                        "task's changed plant; drift: every method through schedules of plant and label-noise "
                        "changes (docs/change-detection.md)")
    p.add_argument("--from", dest="from_dir", metavar="DIR",
                   help="calibration: read a full (not --quick) fig3 run's results.json from DIR instead of running anew "
                        "(default: run anew)")
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (default kbt-results/NAME; the shipped results/ are written only when named)")
    p.add_argument("--quick", action="store_true", help="CI size (under 3 minutes)")
    p.add_argument("--trials", type=int, default=None, help="fig3/4: trials (default 10)")
    p.add_argument("--samples", type=int, default=None, help="samples per trial (default fig3/4: 400, fig5: 20000)")
    p.add_argument("--episodes", type=int, default=None, help="fig3/4: evaluation episodes per checkpoint (default 100, --quick 20)")
    p.add_argument("--seed", type=int, default=None, help="seeds the data of every trial (default 0)")
    p.add_argument("--jobs", type=int, default=None, help="processes, >= 1; not with --scheduler (default: all cores)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="run the trials on the workers of this Dask scheduler, e.g. tcp://127.0.0.1:8786 "
                        "(default: --jobs local processes)")
    p.add_argument("--resume", action="store_true",
                   help="every trial is saved in OUT/trials/ as it finishes (fig5: one file per Sigma_data); "
                        "--resume keeps those and runs only the missing ones, refusing trials made with other "
                        "settings (more --trials or --methods are fine). Default: OUT/trials/ is replaced")
    p.add_argument("--methods", nargs="+", default=None, metavar="M",
                   help="fig3/4: learning methods, e.g. kbt retrain-10 retrain-100 blob-10 (default: all of Figure 3)")
    p.add_argument("--epochs", type=int, default=100, help="retraining epochs per sample")
    p.add_argument("--lr", type=float, default=1e-3, help="retraining learning rate")
    p.add_argument("--sigma-data", type=float, nargs="+", default=None,
                   help="fig5: label-noise variances (N^2, default 0 10 20 50); calibration: one variance for "
                        "the stream and the held-out labels (default 0)")
    p.add_argument("--ask-above", type=float, default=None,
                   help="onpolicy: epistemic std (N) above which the expert takes over for the gated variants (default 1)")
    p.add_argument("--probe", type=float, default=None, metavar="K",
                   help="onpolicy, swingup: probing gain on the learners' on-policy actions, K x epistemic std "
                        "(default: 1 on balance, 0 on swing-up; 0: off)")
    p.add_argument("--every", type=int, default=None,
                   help="onpolicy, swingup: checkpoint spacing in ticks (default 20; swingup 100; --quick 25)")
    p.add_argument("--gated", nargs="*", default=None, metavar="M",
                   help="onpolicy: methods also run asking for labels only where unsure, and at random at the same "
                        "label rate (default kbt; among kbt kbt-softmax rls; none: --gated with no name)")
    p.add_argument("--task", choices=("balance", "swingup"), default=None,
                   help="onpolicy: the task (default balance; swingup needs the swing-up weights)")
    p.add_argument("--method", dest="fig5_method", choices=("kbt", "kbt-softmax"), default="kbt",
                   help="fig5: the head whose predicted variance is tracked (default kbt)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    p.set_defaults(func=cmd_experiment)

    p = sub.add_parser("pretrain", help="pre-train the decision transformer on SOURCE expert data "
                                        "(balance: LQR, swingup: the swing-up expert)")
    p.add_argument("--out", required=True, metavar="PATH", help="where to write the .npz (required, no default; its folder must exist)")
    p.add_argument("--task", choices=("balance", "swingup"), default="balance",
                   help="balance: i.i.d. box states with LQR labels (sim.pretrain); swingup: noisy expert "
                        "rollouts + DAgger (sim.pretrain_swingup, docs/swingup.md) (default balance)")
    p.add_argument("--dagger-rounds", type=int, default=None,
                   help="swingup only: DAgger rounds after the expert-data phase (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seeds the initialisation and the data")
    p.add_argument("--steps", type=int, default=4000,
                   help="Adam steps (default 4000; swingup: of the expert-data phase, each DAgger round adds 2000)")
    p.add_argument("--batch", type=int, default=256, help="samples per step (default 256)")
    p.add_argument("--lr", type=float, default=3e-3, help="initial learning rate (default 3e-3)")
    p.add_argument("--bins", type=int, default=TransformerConfig.n_bins, help="action bins")
    p.add_argument("--target", choices=TARGET_STYLES, default=TransformerConfig.target, help="training target style")
    p.add_argument("--sigma", type=float, default=TransformerConfig.sigma, help="std (N) of the gaussian target")
    p.add_argument("--query", choices=("state", "constant"), default=TransformerConfig.query,
                   help="action-query token: embeds the whole state, or a constant vector")
    p.add_argument("--final-ln", action=argparse.BooleanOptionalAction, default=TransformerConfig.final_ln,
                   help="final LayerNorm on H_dec (default: off)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    p.set_defaults(func=cmd_pretrain)
    p = sub.add_parser("export", help="write the kbt or rls controller as C99 sources (kbt.h + kbt.c)")
    p.add_argument("--method", choices=("kbt", "rls"), default="kbt", help="controller to export (default kbt)")
    p.add_argument("--out", metavar="DIR", required=True, help="folder for the header and the source, created if missing (no default: required)")
    p.add_argument("--load-state", metavar="HEAD.npz", default=None,
                   help="export this saved head (kbt run --save-state; default: the prior)")
    p.add_argument("--weights", metavar="PATH", help="kbt: transformer weights (default: the shipped pre-trained file)")
    p.set_defaults(func=_cmd_export)
    return parser


def main(argv=None):
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    if getattr(args, "command", None) == "experiment" and args.out is None:
        args.out = os.path.join("kbt-results", args.name)    # never the shipped results/
    prog = f"kbt {args.command}"
    try:
        _preflight(args)            # flags, bounds, output paths, display: before any work
        return args.func(args)
    except ValueError as e:
        parser.exit(2, f"{prog}: error: {_flag_message(str(e))}\n")
    except KeyboardInterrupt:
        after = getattr(args, "interrupted_after", None)
        parser.exit(130, f"{prog}: interrupted" + (f" after {after}" if after else "") + "\n")
    except BrokenPipeError:         # e.g. kbt run | head: stop quietly, and let Python not complain at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as e:
        parser.exit(1, f"{prog}: error: {_os_error_text(e)}\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
