"""The flags only ``kbt experiment adapt`` and ``kbt experiment drift`` read: their
arguments, their checks, and the ``AdaptSpec`` / ``DriftSpec`` they give (with the
size and baseline flags every experiment shares)."""

from __future__ import annotations

from sim.cli import flags as fl


def given_sizes(args, *names):
    """``{name: value}`` of the experiment's size flags that were given (None: the spec's default)."""
    return {k: getattr(args, k) for k in names if getattr(args, k) is not None}


def baseline_settings(args):
    """The baselines' settings the flags give: --epochs, and --lr for retraining and BLoB alike."""
    from sim.loops.methods import MethodSettings

    lr = {} if args.lr is None else {"lr": args.lr, "blob_lr": args.lr}
    return MethodSettings(epochs=args.epochs, **lr)


def add_spec_arguments(p):
    """The flags only ``kbt experiment adapt`` or ``kbt experiment drift`` reads."""
    add_adapt_arguments(p)
    add_drift_arguments(p)


def add_adapt_arguments(p):
    """The flags only ``kbt experiment adapt`` reads."""
    p.add_argument("--stream", choices=("iid", "onpolicy"), default=None,
                   help="adapt: one stream (default both): iid, expert-labelled i.i.d. states (balance: the "
                        "sampling box; swing-up: states the expert visits); onpolicy, the states the learner visits")
    p.add_argument("--labels-at", type=int, nargs="+", default=None, metavar="N",
                   help="adapt: label checkpoints, increasing, 0..%d (default 0 1 2 3 5 10 20 50 100 200; "
                        "--quick 0 1 3 10 30); the last is the run's length" % fl.MAX_SAMPLES)
    p.add_argument("--heldout", type=int, default=None, metavar="N",
                   help="adapt: held-out expert-labelled states per trial for RMSE and NLL, 1..100000 "
                        "(default 500, --quick 200)")
    p.add_argument("--weights", metavar="PATH|NAME", default=None,
                   help="adapt: transformer weights of the kbt and kbt-softmax variants, with --task; drift: of kbt "
                        "and kbt-softmax, with --schedules of one task: a file or a shipped weight set by name "
                        "(swingup-alpaca) (default: the task's shipped file)")


def add_drift_arguments(p):
    """The flags only ``kbt experiment drift`` reads."""
    from controller.kalman_head import HeadConfig
    from sim.experiments.drift import DEFAULT_SCHEDULES, SCHEDULES

    p.add_argument("--schedules", nargs="+", default=None, metavar="NAME",
                   help=f"drift: schedules among {', '.join(SCHEDULES)} (default {' '.join(DEFAULT_SCHEDULES)}; "
                        "swingup-swap: swingup's plants with the change between episodes)")
    p.add_argument("--swingup-trials", type=int, default=None,
                   help="drift: trials on the swing-up schedules, at most --trials (default 5, --quick 1; each "
                        "costs about five balance trials)")
    p.add_argument("--detect", type=float, default=None,
                   help=f"drift: threshold of kbt's and rls's change detector (default "
                        f"{HeadConfig.change_threshold:g}; 0: off)")
    p.add_argument("--change-reset", choices=("covariance", "prior"), default=None,
                   help="drift: what a detected change resets in kbt's and rls's head: the covariance (default) or "
                        "the whole head, which learns the detector's run again (docs/change-reset.md)")
    p.add_argument("--reset-scale", type=float, default=None,
                   help="drift, with --change-reset prior: the covariance the head restarts with, times the "
                        "prior's (default 1)")


def _adapt_variants():
    from sim.experiments.adapt import VARIANTS

    return VARIANTS


def check_adapt(args):
    """adapt: the label checkpoints, the held-out size, the variants and the weights."""
    fl.check_int("--heldout", args.heldout, 1, 100_000)
    if args.labels_at is not None:
        for n in args.labels_at:
            fl.check_int("--labels-at", n, 0, fl.MAX_SAMPLES)
        if list(args.labels_at) != sorted(set(args.labels_at)) or max(args.labels_at) < 1:
            raise ValueError(f"--labels-at: expected increasing label counts in 0..{fl.MAX_SAMPLES}, the last >= 1, "
                             f"but found {' '.join(map(str, args.labels_at))}")
    variants = _adapt_variants()
    for m in args.methods or ():
        if m not in variants:
            raise ValueError(f"--methods: adapt expected variants among {', '.join(variants)} but found {m!r}")
    if args.weights is not None:
        if args.task is None:
            raise ValueError("--weights: give --task too (weights are pre-trained for one task)")
        fl.check_weights_arg(args)
        from sim.experiments.adapt import DEFAULT_VARIANTS

        if "kbt@family" in (args.methods or DEFAULT_VARIANTS):
            raise ValueError("--weights: the family prior (kbt@family) belongs to the shipped weights; "
                             "give --methods without kbt@family")
    adapt_spec(args)              # what is left (e.g. the combination) the spec checks


def check_drift(args):
    """drift: the schedules, the weights (for one task) and the head's change settings."""
    from sim.experiments.drift import SCHEDULES
    from sim.loops.methods import has_robust_head

    fl.check_int("--swingup-trials", args.swingup_trials, 1, fl.MAX_TRIALS)
    fl.check_real("--detect", args.detect, 0.0, 1e6)
    fl.check_real("--reset-scale", args.reset_scale, 0.0, 1e6, low_open=True)
    for name in args.schedules or ():
        if name not in SCHEDULES:
            raise ValueError(f"--schedules: expected among {', '.join(SCHEDULES)} but found {name!r}")
    if args.reset_scale not in (None, 1.0) and args.change_reset != "prior":
        raise ValueError("--reset-scale: applies only with --change-reset prior")
    if args.weights is not None:
        tasks = {SCHEDULES[name][0] for name in args.schedules or ()}
        if len(tasks) != 1:
            raise ValueError("--weights: give --schedules of one task (weights are pre-trained for one task)")
        task = tasks.pop()
        fl.check_weights(args.weights, "--weights")
        ws = fl.weight_set(args.weights)
        if ws is not None and ws.task != task:
            of_task = " ".join(name for name, spec in SCHEDULES.items() if spec[0] == ws.task)
            raise ValueError(f"--weights: {ws.name} is pre-trained for the {ws.task} task; give --schedules among "
                             f"{of_task}")
    spec = drift_spec(args)        # what is left (e.g. the methods) the spec checks
    if args.swingup_trials is not None and args.swingup_trials > spec.trials:
        raise ValueError(f"--swingup-trials: expected at most --trials ({spec.trials}) but found {args.swingup_trials}")
    if not any(has_robust_head(m) for m in spec.methods):
        for flag, value in (("--detect", args.detect), ("--change-reset", args.change_reset),
                            ("--reset-scale", args.reset_scale)):
            if value is not None:
                raise ValueError(f"{flag}: applies to kbt and rls (the force head), and --methods gives neither")


def adapt_spec(args):
    """The ``AdaptSpec`` the flags give (its own checks name the flag)."""
    from sim.experiments.adapt import AdaptSpec

    kw = given_sizes(args, "trials", "seed", "episodes", "heldout", "probe", "weights")
    if args.methods:
        kw["variants"] = tuple(dict.fromkeys(args.methods))
    if args.task:
        kw["tasks"] = (args.task,)
    if args.stream:
        kw["streams"] = (args.stream,)
    if args.labels_at:
        kw["labels_at"] = tuple(args.labels_at)
    try:
        return AdaptSpec.quick(**kw) if args.quick else AdaptSpec(**kw)
    except ValueError as e:
        names = {"variants": "--methods", "tasks": "--task", "streams": "--stream", "labels_at": "--labels-at",
                 "heldout": "--heldout"}
        name, sep, rest = str(e).partition(": ")
        raise ValueError(f"{names.get(name, name)}{sep}{rest}") from None


def drift_spec(args):
    """The ``DriftSpec`` the flags give: sizes, methods, schedules, and for the methods with the
    force head the weights and the change detector's settings."""
    from dataclasses import replace

    from sim.experiments.drift import DriftSpec

    kw = given_sizes(args, "trials", "seed", "episodes", "swingup_trials")
    if args.methods:
        kw["methods"] = tuple(args.methods)
    if args.schedules:
        kw["schedules"] = tuple(dict.fromkeys(args.schedules))
    settings = baseline_settings(args)
    head = {field: getattr(args, dest) for dest, field in (("detect", "change_threshold"),
                                                           ("change_reset", "change_reset"),
                                                           ("reset_scale", "change_reset_scale"))
            if getattr(args, dest) is not None}
    try:
        kw["settings"] = replace(settings, weights=args.weights, head=replace(settings.head, **head))
        return DriftSpec.quick(**kw) if args.quick else DriftSpec(**kw)
    except ValueError as e:
        names = {"change_threshold": "--detect", "change_reset": "--change-reset",
                 "change_reset_scale": "--reset-scale", "swingup_trials": "--swingup-trials"}
        name, sep, rest = str(e).partition(": ")
        raise ValueError(f"{names.get(name, name)}{sep}{rest}") from None
