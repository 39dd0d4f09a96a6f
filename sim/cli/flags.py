"""Flags shared by several commands, and their checks.

The checks run before any work starts (``sim.cli.main``): bounds, flags that do
not apply to the method, output paths, the display. Each raises a ValueError
whose message starts with the flag, which ``main`` prints as one line and exits 2.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from controller.kalman_head import DEFAULT_OBS_NOISE, DEFAULT_PRIOR_VAR, HeadConfig
from controller.weight_sets import WEIGHT_SETS, check_weights, weight_set
from sim.loops.run_state import HEAD_FLAGS, HEAD_FLAGS_GAUSSIAN, STATEFUL, json_value
from sim.world.cartpole import INTEGRATORS, SYSTEMS
from sim.view.display import no_display  # noqa: F401  (the commands call fl.no_display)

METHODS = ("lqr", "expert", "pretrained", "kbt", "kbt-softmax", "rls", "kbt-c", "rls-c", "retrain", "blob")
LEARNERS = ("kbt", "kbt-softmax", "rls", "kbt-c", "rls-c", "retrain", "blob")
TASK_NAMES = ("balance", "swingup")
#: methods built on the pre-trained transformer (--weights); rls starts from the SOURCE LQR gain
TRANSFORMER_METHODS = ("pretrained", "kbt", "kbt-softmax", "kbt-c", "retrain", "blob")

MAX_EPISODES = 100_000
MAX_SAMPLES = 1_000_000
MAX_TRIALS = 1_000
MAX_JOBS = 1_024

#: library argument names -> the flags that set them (for messages from the library)
FLAG_NAMES = {
    "n_episodes": "--episodes", "episodes": "--episodes", "samples": "--samples", "trials": "--trials",
    "seed": "--seed", "data_seed": "--seed", "m_c": "--m-c", "m_p": "--m-p", "l_p": "--l-p",
    "integrator": "--integrator", "sigma_data": "--sigma-data", "n_layers": "--head-layers",
    "prior_var": "--prior-var", "family": "--family", "obs_noise": "--obs-noise", "noise": "--noise", "inputs": "--inputs",
    "robust": "--robust", "change_threshold": "--detect", "update": "--update", "stream": "--stream",
    "fault_rate": "--fault-rate", "outlier_rate": "--outlier-rate", "labels": "--labels", "ask_above": "--ask-above",
    "label_rate": "--label-rate", "probe": "--probe", "probe_memory": "--probe-memory", "probe_max": "--probe-max",
    "task": "--task", "every": "--every", "gated": "--gated", "ticks": "--samples",
    "scheduler": "--scheduler", "resume": "--resume",
    "fallback": "--fallback", "jobs": "--jobs", "methods": "--methods", "steps": "--steps", "batch": "--batch",
    "lr": "--lr", "n_bins": "--bins", "sigma": "--sigma", "target": "--target", "query": "--query",
    "seconds": "--seconds", "calls": "--calls", "retrain_calls": "--retrain-calls", "capacities": "--capacities",
    "capacity": "--capacity", "budget_kib": "--budget-kib", "rate_hz": "--rate", "epochs": "--epochs", "R": "--r",
}


def flag_message(text, names=None):
    """``"n_episodes: expected ..."`` -> ``"--episodes: expected ..."`` (messages naming a flag stay as they are).
    ``names``: a command's own library-name -> flag entries, over ``FLAG_NAMES``."""
    names = FLAG_NAMES if names is None else {**FLAG_NAMES, **names}
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[[^\]]*\])?): ", text)
    if m and m.group(1) in names:
        return names[m.group(1)] + m.group(2) + text[m.end() - 2:]
    return text


def os_error_text(e):
    if getattr(e, "filename", None) and getattr(e, "strerror", None):
        return f"{e.filename}: {e.strerror}"
    return str(e) or type(e).__name__


def write_json(path, payload):
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, default=json_value)
        f.write("\n")


# ---------------------------------------------------------------- bounds
def check_int(flag, value, low, high=None):
    from controller.checks import check_int as _check

    if value is not None:
        _check(flag, value, low=low, high=high)


def check_real(flag, value, low=None, high=None, *, low_open=False):
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


# ---------------------------------------------------------------- output paths and the display
def check_output_file(flag, path):
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


def check_output_dir(flag, path):
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


#: the formats pygame.image.save writes, by the name's ending (any other name gets a TGA file)
SCREENSHOT_FORMATS = ("png", "jpg", "jpeg", "bmp", "tga")


def check_outputs(args, outputs):
    """``outputs``: (flag, dest, kind) of a command's output paths; kind "dir", "file", or "plot" /
    "screenshot": a file whose name ends in a format matplotlib / pygame writes."""
    for flag, dest, kind in outputs:
        path = getattr(args, dest, None)
        if path is None:
            continue
        (check_output_dir if kind == "dir" else check_output_file)(flag, path)
        if kind in ("plot", "screenshot"):
            check_image_format(flag, path, plot_formats() if kind == "plot" else SCREENSHOT_FORMATS)


def plot_formats():
    """The file formats matplotlib saves a figure in (png, pdf, svg, ...)."""
    from matplotlib.backend_bases import FigureCanvasBase

    return tuple(sorted(FigureCanvasBase.get_supported_filetypes()))


def check_image_format(flag, path, formats):
    """Checked before the work, so a long run is not lost to the name of its picture."""
    ending = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if ending not in formats:
        raise ValueError(f"{flag}: expected a file name ending in .{', .'.join(formats)} but found {path}")




# ---------------------------------------------------------------- the plant and the task
def add_system_args(p, default="target", integrator=True):
    p.add_argument("--system", choices=sorted(SYSTEMS), default=None,
                   help=f"preset cart-pole (default {default}); or give --m-c/--m-p/--l-p")
    p.add_argument("--m-c", type=float, help="cart mass (kg), > 0 (default: the --system preset's)")
    p.add_argument("--m-p", type=float, help="pole mass (kg), > 0 (default: the --system preset's)")
    p.add_argument("--l-p", type=float, help="pivot to the pole's centre of mass (m), > 0 (default: the --system preset's)")
    if integrator:
        p.add_argument("--integrator", choices=INTEGRATORS, default=None,
                       help="plant integration scheme (default: the task's, balance euler, swingup rk4)")
    p.set_defaults(_default_system=default)


def add_task_arg(p):
    p.add_argument("--task", choices=TASK_NAMES, default="balance",
                   help="balance (the pole starts upright) or swingup (it starts hanging down; docs/swingup.md); "
                        "--system source/target are the task's own plants (default balance)")


#: --weights' help, the same in every command that takes it
WEIGHTS_HELP = ("transformer weights: a file, or a shipped weight set by name (" + ", ".join(WEIGHT_SETS)
                + "; docs/adapt.md) (default: the task's shipped file)")


def check_weights_arg(args):
    """--weights: an existing file or a shipped weight set's name; a set pre-trained for another
    task than ``--task`` is refused here, before any work."""
    weights = getattr(args, "weights", None)
    check_weights(weights, "--weights")
    ws = weight_set(weights)
    task = getattr(args, "task", None) or "balance"
    if ws is not None and ws.task != task:
        raise ValueError(f"--weights: {ws.name} is pre-trained for the {ws.task} task; give --task {ws.task}")


def check_system(args):
    for flag, dest in (("--m-c", "m_c"), ("--m-p", "m_p"), ("--l-p", "l_p")):
        check_real(flag, getattr(args, dest, None), 0.0, 1e6, low_open=True)


def presets(args):
    """--system presets of the task: the balance task's SOURCE/TARGET, or the swing-up task's."""
    from sim.world.task import PLANTS

    return PLANTS[getattr(args, "task", "balance")]


def system_from_args(args):
    """(name, CartPoleParams) from --system or --m-c/--m-p/--l-p (presets of --task), with
    --integrator if given (else the preset's own)."""
    custom = {k: getattr(args, k) for k in ("m_c", "m_p", "l_p") if getattr(args, k) is not None}
    if custom and args.system:
        raise ValueError("--system: give either --system or --m-c/--m-p/--l-p, not both")
    plants = presets(args)
    integrator = getattr(args, "integrator", None)
    if custom:
        params = plants[args._default_system].with_(**custom)
        name = "custom(" + ",".join(f"{k}={v:g}" for k, v in sorted(custom.items())) + ")"
    else:
        name = args.system or args._default_system
        params = plants[name]
    return name, (params if integrator is None else params.with_(integrator=integrator))


def task_from_args(args):
    """(name, Task): --task's rules on the plant of --system / --m-c/--m-p/--l-p, integrated
    by --integrator if given (else the task's own: balance euler, swingup rk4)."""
    from dataclasses import replace

    from sim.world.task import TASKS, as_task

    name, params = system_from_args(args)
    task_name = getattr(args, "task", "balance")
    if task_name == "balance":
        return name, as_task(params)
    task = TASKS[task_name].on(params)
    if getattr(args, "integrator", None) is not None:
        task = replace(task, params=task.params.with_(integrator=args.integrator))
    return f"{name} ({task_name})", task


# ---------------------------------------------------------------- methods and their flags
def add_head_args(g):
    """The Bayesian heads' settings (defaults: the head's own, docs/head-v2.md)."""
    g.add_argument("--head-layers", type=int, default=None, help="Bayesian head layers L (default 1)")
    g.add_argument("--prior-var", type=float, nargs="+", default=None,
                   help="prior weight variance per head layer (default: kbt and rls "
                        f"{DEFAULT_PRIOR_VAR['gaussian']:g}, kbt-softmax {DEFAULT_PRIOR_VAR['softmax']:g}; kbt on "
                        "swingup: the family prior covariance, docs/family-prior.md, which a given value replaces by v I)")
    g.add_argument("--family", choices=("on", "off"), default=None,
                   help="kbt: start from the task's family prior (docs/family-prior.md; default on for "
                        "swingup, off for balance; a given --prior-var means off), or with a weight set that has "
                        "one (--weights swingup-alpaca) from its learned prior (default on)")
    g.add_argument("--obs-noise", type=float, default=None,
                   help="kbt, rls: known noise R or the learned noise's initial guess (N^2, default "
                        f"{DEFAULT_OBS_NOISE['gaussian']:g}); kbt-softmax: measurement noise R "
                        f"(default {DEFAULT_OBS_NOISE['softmax']:g})")
    g.add_argument("--noise", choices=("learned", "known"), default=None,
                   help="kbt, rls: learn the label-noise variance online (default) or take it as known "
                        "(= --sigma-data if given, else --obs-noise); kbt on a weight set with a learned prior: "
                        "known, its tuned R (swingup-alpaca: 3 N^2) plus --sigma-data, unless --noise or "
                        "--obs-noise is given")
    g.add_argument("--inputs", choices=("features+state", "features"), default=None,
                   help="kbt: head inputs, T_1 features with the state as a skip path (default) or features only")
    g.add_argument("--robust", type=float, default=None,
                   help=f"kbt, rls: c of the robust weight 1 / (1 + x / c^2) of a label x = e^2 / S from the "
                        f"prediction (default {HeadConfig.robust:g}; 0: every label at full weight)")
    g.add_argument("--detect", type=float, default=None,
                   help=f"kbt, rls: threshold of the change detector that re-opens the posterior "
                        f"(default {HeadConfig.change_threshold:g}; 0: off)")
    g.add_argument("--update", choices=("kalman", "paper"), default=None, help="kbt-softmax: output update (default kalman)")


def check_head_args(args):
    check_int("--head-layers", getattr(args, "head_layers", None), 1, 8)
    if (getattr(args, "head_layers", None) or 1) > 1 and args.method != "kbt-softmax":
        raise ValueError(f"--head-layers: the force head of {args.method} is one layer; with 2 its prior predictive "
                         "std is about 200 N (forces are clipped at 30 N) and it does not learn TARGET in 100 samples "
                         "(docs/head-layers.md). Only kbt-softmax takes --head-layers >= 2")
    check_real("--prior-var", getattr(args, "prior_var", None), 0.0, 1e6, low_open=True)
    layers = getattr(args, "head_layers", None) or 1
    resumed = getattr(args, "load_state", None) and getattr(args, "head_layers", None) is None   # file's layers
    if len(getattr(args, "prior_var", None) or ()) > layers and not resumed:   # one per layer is read, no more
        many = "one variance" if layers == 1 else f"1 to {layers} variances"
        raise ValueError(f"--prior-var: expected {many} (one per head layer, --head-layers {layers}) "
                         f"but found {len(args.prior_var)}")
    check_real("--obs-noise", getattr(args, "obs_noise", None), 1e-8, 1e6)
    check_real("--robust", getattr(args, "robust", None), 0.0, 1e3)
    check_real("--detect", getattr(args, "detect", None), 0.0, 1e6)


def head_config(args, softmax=False):
    """The head settings the flags give (unset flags keep the head's defaults)."""
    kw = {k: v for k, v in (("n_layers", getattr(args, "head_layers", None)),
                            ("obs_noise", getattr(args, "obs_noise", None)),
                            ("prior_var", tuple(args.prior_var) if getattr(args, "prior_var", None) else None))
          if v is not None}
    if softmax:
        if getattr(args, "update", None):
            kw["update"] = args.update
        return HeadConfig(output="softmax", **kw)
    for key, field in HEAD_FLAGS_GAUSSIAN.items():      # the force head's own flags (dest -> HeadConfig field)
        if key not in HEAD_FLAGS and getattr(args, key, None) is not None:
            kw[field] = getattr(args, key)
    return HeadConfig(**kw)


def method_name(args):
    return f"{args.method}-{args.capacity}" if args.method in ("retrain", "blob") else args.method


def make_controller(args, task):
    """The controller of ``--method`` on ``task``, through the one factory every command uses."""
    from sim.loops.methods import MethodSettings, make_controller as _make

    kw = {}
    if getattr(args, "lr", None) is not None:
        kw["lr" if args.method == "retrain" else "blob_lr"] = args.lr
    if getattr(args, "epochs", None) is not None:
        kw["epochs"] = args.epochs
    if getattr(args, "design_for", None):
        kw["lqr_design"] = presets(args)[args.design_for]
    if "prior_var" in getattr(args, "given", {}):
        kw["family"] = False                # a given prior variance is the prior: v I
    elif getattr(args, "family", None) is not None:
        kw["family"] = args.family == "on"
    if any(k in getattr(args, "given", {}) for k in ("noise", "obs_noise")):
        kw["set_noise"] = False             # a given head noise replaces a weight set's fixed one
    settings = MethodSettings(weights=args.weights, head=head_config(args), softmax_head=head_config(args, True),
                              sigma_data=getattr(args, "sigma_data", 0.0) or 0.0, **kw)
    return _make(method_name(args), task, settings, seed=args.seed)


def check_flags_apply(args, table):
    """A method-specific flag given explicitly with a method that ignores it is an error.

    ``table``: ``{dest: methods the flag applies to}`` of the command.
    """
    for dest, methods in table.items():
        if dest in args.given and args.method not in methods:
            raise ValueError(f"{args.given[dest]}: does not apply to --method {args.method} "
                             f"(only to {', '.join(methods)})")
    if "allow_prior" in args.given and not args.load_state:
        raise ValueError("--allow-prior: only together with --load-state")


def parse_changes(args, params, steps, unit="samples"):
    """``--change`` entries as a checked ``sim.world.schedule`` schedule (sorted, one per tick,
    each before ``steps``, counted in ``unit``); ValueError naming the flag otherwise."""
    from sim.world.schedule import check_schedule, parse_change

    try:
        changes = [parse_change(text, params) for text in args.change or ()]
        return check_schedule(changes, steps, unit)
    except ValueError as e:
        raise ValueError(f"--change: {str(e).removeprefix('changes: ')}") from None


def check_state_args(args):
    if (args.save_state or args.load_state) and args.method not in STATEFUL:
        raise ValueError(f"--save-state/--load-state: only {', '.join(STATEFUL)} have a state to save, "
                         f"not {args.method}")
