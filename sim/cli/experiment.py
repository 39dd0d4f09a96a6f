"""``kbt experiment NAME``: the paper's Figures 3/4/5 and calibration
(``sim.experiments.offline``), and the deployed-learning experiments onpolicy,
swingup (``sim.experiments.onpolicy``), drift (``sim.experiments.drift``) and adapt
(``sim.experiments.adapt``).
Trials run in-process, on local processes or on Dask (``sim.experiments.trials``) and are kept as they
finish (``sim.experiments.trial_store``); ``--resume`` reads them back."""

from __future__ import annotations

import json
import os
import sys

from sim.cli import flags as fl

HELP = "reproduce a figure of the paper (JSON, CSV, PNG)"
OUTPUTS = (("--out", "out", "dir"),)
NAMES = ("fig3", "fig4", "fig5", "calibration", "onpolicy", "swingup", "drift", "adapt")


def add_arguments(p):
    p.add_argument("name", choices=NAMES,
                   help="fig3/fig4: success and time per sample vs samples (one run makes both); "
                        "fig5: predicted variance vs samples for several Sigma_data; "
                        "calibration: accuracy, ECE, NLL, RMSE, coverage and reliability diagrams; "
                        "onpolicy: every method learning from labels on the states it visits, and KBT asking "
                        "for labels only where it is unsure; swingup: every method adapting to the swing-up "
                        "task's changed plant; drift: every method through schedules of plant and label-noise "
                        "changes (docs/change-detection.md); adapt: success, held-out force RMSE and NLL "
                        "against the number of labels, per task and stream, trial by trial (docs/adapt.md)")
    p.add_argument("--from", dest="from_dir", metavar="DIR",
                   help="calibration: read a full (not --quick) fig3 run's results.json from DIR instead of running "
                        "anew (default: run anew)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output directory (default kbt-results/NAME; the shipped results/ are written only when named)")
    p.add_argument("--quick", action="store_true", help="CI size (under 3 minutes)")
    p.add_argument("--trials", type=int, default=None,
                   help="fig3/4: trials (default 10); adapt: trials (default 20, --quick 1)")
    p.add_argument("--samples", type=int, default=None, help="samples per trial (default fig3/4: 400, fig5: 20000)")
    p.add_argument("--episodes", type=int, default=None,
                   help="fig3/4: evaluation episodes per checkpoint (default 100, --quick 20); adapt: the same "
                        "(default 100, --quick 10)")
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
                   help="fig3/4: learning methods, e.g. kbt retrain-10 retrain-100 blob-10 (default: all of Figure 3); "
                        "adapt: variants among kbt (the shipped weights, today's prior), kbt@family (the task's family "
                        "prior: mean and covariance), rls (the SOURCE gain), rls@family (a prior from the same family "
                        "through rls's inputs), kbt-softmax (the paper's head) (default: these five), kbt@alpaca "
                        "(swing-up weights and prior), kbt@alpaca-region (a read-out per region; docs/adapt.md)")
    p.add_argument("--epochs", type=int, default=100, help="retraining epochs per sample")
    p.add_argument("--lr", type=float, default=None,
                   help="Adam learning rate of retraining and BLoB (default: retrain 1e-3, blob 3e-3)")
    p.add_argument("--sigma-data", type=float, nargs="+", default=None,
                   help="fig5: label-noise variances (N^2, default 0 10 20 50); calibration: one variance for "
                        "the stream and the held-out labels (default 0)")
    p.add_argument("--ask-above", type=float, default=None,
                   help="onpolicy: epistemic std (N) above which the expert takes over the gated variants (default 1)")
    p.add_argument("--probe", type=float, default=None, metavar="K",
                   help="onpolicy, swingup, adapt: probing gain on the learners' on-policy actions, K x epistemic std "
                        "(default: 1 on balance, 2 on swing-up; 0: off)")
    p.add_argument("--every", type=int, default=None,
                   help="onpolicy, swingup: checkpoint spacing in ticks (default 20; swingup 100; --quick 25)")
    p.add_argument("--gated", nargs="*", default=None, metavar="M",
                   help="onpolicy: methods also run asking for labels only where unsure, and at random at the same "
                        "label rate (default kbt; among kbt kbt-softmax rls; none: --gated with no name)")
    p.add_argument("--task", choices=fl.TASK_NAMES, default=None,
                   help="onpolicy: the task (default balance; swingup needs the swing-up weights); "
                        "adapt: one task (default both)")
    _add_adapt_arguments(p)
    _add_drift_arguments(p)
    p.add_argument("--method", dest="fig5_method", choices=("kbt", "kbt-softmax"), default="kbt",
                   help="fig5: the head whose predicted variance is tracked (default kbt)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")


def _add_adapt_arguments(p):
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


def _add_drift_arguments(p):
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


#: per experiment, the flags it has no use for
_DEPLOYED = ("ask_above", "gated", "task", "every", "probe")
_ADAPT = ("stream", "labels_at", "heldout", "weights")
_DRIFT = ("schedules", "swingup_trials", "detect", "change_reset", "reset_scale")
UNUSED = {"fig3": ("sigma_data", "fig5_method") + _DEPLOYED + _ADAPT + _DRIFT,
          "fig4": ("sigma_data", "fig5_method") + _DEPLOYED + _ADAPT + _DRIFT,
          "fig5": ("trials", "episodes", "methods", "epochs", "lr") + _DEPLOYED + _ADAPT + _DRIFT,
          "calibration": ("fig5_method",) + _DEPLOYED + _ADAPT + _DRIFT,
          "onpolicy": ("sigma_data", "fig5_method") + _ADAPT + _DRIFT,
          "swingup": ("sigma_data", "task", "fig5_method") + _ADAPT + _DRIFT,
          "drift": ("sigma_data", "samples", "fig5_method") + _DEPLOYED + ("stream", "labels_at", "heldout"),
          "adapt": ("sigma_data", "samples", "fig5_method", "ask_above", "gated", "every", "epochs", "lr") + _DRIFT}


def check(args):
    given = args.given
    for dest in UNUSED.get(args.name, ()):
        if dest in given:
            raise ValueError(f"{given[dest]}: does not apply to experiment {args.name}")
    if args.from_dir is not None:
        if args.name != "calibration":
            raise ValueError(f"--from: only experiment calibration reads a previous run, not {args.name}")
        if args.quick:
            raise ValueError("--from: cannot be combined with --quick (the fig3 run in --from fixed the sizes)")
        for dest in ("trials", "samples", "episodes", "methods", "epochs", "lr", "seed"):
            if dest in given:
                raise ValueError(f"{given[dest]}: the fig3 run in --from fixed it; give it only without --from")
    fl.check_int("--jobs", args.jobs, 1, fl.MAX_JOBS)
    _check_cluster_args(args, given)
    fl.check_int("--trials", args.trials, 1, fl.MAX_TRIALS)
    fl.check_int("--samples", args.samples, 1, fl.MAX_SAMPLES)
    fl.check_int("--episodes", args.episodes, 1, fl.MAX_EPISODES)
    fl.check_int("--seed", args.seed, 0)
    fl.check_int("--epochs", args.epochs, 1, 100_000)
    fl.check_real("--lr", args.lr, 0.0, 10.0, low_open=True)
    fl.check_real("--sigma-data", args.sigma_data, 0.0, 1e6)
    fl.check_real("--ask-above", args.ask_above, 0.0, 1e6, low_open=True)
    fl.check_real("--probe", args.probe, 0.0, 100.0)
    fl.check_int("--every", args.every, 1, fl.MAX_SAMPLES)
    if args.name == "adapt":
        _check_adapt(args)
    if args.name == "drift":
        _check_drift(args)


def _check_adapt(args):
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
    _adapt_spec(args)              # what is left (e.g. the combination) the spec checks


def _check_drift(args):
    """drift: the schedules, the weights (for one task) and the head's change settings."""
    from sim.experiments.drift import SCHEDULES

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
    _drift_spec(args)               # what is left (e.g. --reset-scale without --change-reset prior) the spec checks


def _check_cluster_args(args, given):
    """--scheduler / --resume: where the trials run, whether finished ones are kept."""
    if args.scheduler is not None:
        if not args.scheduler.strip():
            raise ValueError("--scheduler: expected an address such as tcp://127.0.0.1:8786 but found ''")
        if "jobs" in given:
            raise ValueError(f"{given['jobs']}: does not apply with --scheduler (its workers run the trials)")
    if args.from_dir is not None:
        for dest in ("scheduler", "resume"):
            if dest in given:
                raise ValueError(f"{given[dest]}: does not apply with --from (no trials are run)")


def prepare(args):
    """Defaults that depend on other flags: --out is kbt-results/NAME, never the shipped results/."""
    if args.out is None:
        args.out = os.path.join("kbt-results", args.name)


def run(args):
    """Run the experiment; a trial that raises ends it with one line on stderr and exit 1
    (the trials finished before it stay in OUT/trials/, and ``--resume`` runs only the rest)."""
    from sim.experiments.trials import JobError

    jobs = args.jobs or (os.cpu_count() or 1)
    run_named = {"onpolicy": _deployed, "swingup": _deployed, "drift": _drift, "fig3": _learning,
                 "fig4": _learning, "calibration": _calibration, "fig5": _variance, "adapt": _adapt}[args.name]
    try:
        return run_named(args, jobs)
    except JobError as e:
        print(f"kbt experiment: error: {e}{_where(e.__cause__)}; {_kept(args)}", file=sys.stderr)
        return 1


def _where(error):
    """' (at FILE:LINE)' of the innermost frame of ``error``'s traceback ('' without one)."""
    import traceback

    frames = traceback.extract_tb(error.__traceback__) if error is not None else []
    return f" (at {os.path.relpath(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""


def _kept(args):
    trials = os.path.join(args.out, "trials")
    if os.path.isdir(trials):
        return f"the trials finished before it are kept in {trials} (--resume runs only the rest)"
    return "no trial is kept"


# ---------------------------------------------------------------- shared pieces
def _settings(args):
    """The baselines' settings the flags give: --epochs, and --lr for retraining and BLoB alike."""
    from sim.loops.methods import MethodSettings

    lr = {} if args.lr is None else {"lr": args.lr, "blob_lr": args.lr}
    return MethodSettings(epochs=args.epochs, **lr)


def _given(args, *names):
    """``{name: value}`` of the experiment's size flags that were given (None: the spec's default)."""
    return {k: getattr(args, k) for k in names if getattr(args, k) is not None}


def _trial_store(args, spec):
    """The folder OUT/trials/ that keeps every finished trial; --resume reads it back."""
    from sim.experiments.offline import VarianceSpec
    from sim.experiments.trial_store import LearningTrialStore, VarianceTrialStore

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


def _command(args):
    return "kbt " + " ".join(args.argv)


def _run_stored(args, jobs, spec, trial_store, run_spec):
    """Run an experiment of deployed trials with its resumable store OUT/trials/; the results
    record the command."""
    store = trial_store(os.path.join(args.out, "trials"), spec, resume=args.resume)
    results = run_spec(spec, jobs=jobs, progress=args.progress, scheduler=args.scheduler, store=store)
    _trial_note(args, store)
    results["command"] = _command(args)
    return results


# ---------------------------------------------------------------- deployed learning
def _deployed(args, jobs):
    """onpolicy / swingup: deployed learning runs per variant and trial."""
    from sim.experiments import onpolicy as ex
    from sim.experiments.report_deployed import format_summary, write_deployed

    kw = _given(args, "trials", "seed", "episodes", "ask_above", "every", "probe")
    if args.samples is not None:
        kw["ticks"] = args.samples
    if args.methods:
        kw["methods"] = tuple(args.methods)
    if args.gated is not None:
        kw["gated"] = tuple(args.gated)
    kw["settings"] = _settings(args)
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


def _drift(args, jobs):
    """drift: every method through schedules of changes."""
    from sim.experiments import drift as ex
    from sim.experiments.report_drift import format_drift, write_drift

    spec = _drift_spec(args)
    results = _run_stored(args, jobs, spec, ex.trial_store, ex.run_drift)
    rows = write_drift(results, args.out)
    print(f"drift: mean success 10/25/50 samples after each change over the trials ({drift_trials(spec)}); "
          f"samples to 0.99 (median over the trials that got there); held-out RMSE against the expert in force "
          f"200 samples after; labels down-weighted and changes detected (means by the end; '-': the head has neither)")
    print(format_drift(rows))
    print(f"wrote {args.out}/results.json, results.csv and drift.png")
    return 0


def _drift_spec(args):
    """The ``DriftSpec`` the flags give: sizes, methods, schedules, and for the methods with the
    force head the weights and the change detector's settings."""
    from dataclasses import replace

    from sim.experiments.drift import DriftSpec

    kw = _given(args, "trials", "seed", "episodes", "swingup_trials")
    if args.methods:
        kw["methods"] = tuple(args.methods)
    if args.schedules:
        kw["schedules"] = tuple(dict.fromkeys(args.schedules))
    settings = _settings(args)
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


def _adapt_spec(args):
    """The ``AdaptSpec`` the flags give (its own checks name the flag)."""
    from sim.experiments.adapt import AdaptSpec

    kw = _given(args, "trials", "seed", "episodes", "heldout", "probe", "weights")
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


def _adapt(args, jobs):
    """adapt: success, held-out RMSE and NLL against labels, per task, stream, variant and trial."""
    from sim.experiments import adapt as ex
    from sim.experiments.report_adapt import format_adapt, write_adapt

    spec = _adapt_spec(args)
    results = _run_stored(args, jobs, spec, ex.trial_store, ex.run_adapt)
    summary = write_adapt(results, args.out)
    first = 1000 * spec.seed
    print(f"adapt: {spec.trials} trial{'s' * (spec.trials != 1)} (seeds {first}..{first + spec.trials - 1}), "
          f"success over {spec.episodes} episodes of the changed plant, held-out set of {spec.heldout} expert states; "
          f"non-monotone: the trial reached {ex.REACH} and later fell below {ex.STAY}")
    print(format_adapt(results, summary))
    print(f"wrote {args.out}/results.json, results.csv and adapt.png")
    return 0


def drift_trials(spec):
    """The trials each method of a drift run ran, e.g. "kbt, rls: 2 trials, 1 on swing-up"."""
    groups = {}
    for m in spec.methods:
        n = {s: spec.trials_of(m, s) for s in spec.schedules}
        swing, other = n.pop("swingup", None), set(n.values())
        most = max(other) if other else swing
        text = f"{most} trial{'s' * (most != 1)}"
        if other and swing is not None and swing != max(other):
            text += f", {swing} on swing-up"
        groups.setdefault(text, []).append(m)
    return "; ".join(f"{', '.join(ms)}: {text}" for text, ms in groups.items())


# ---------------------------------------------------------------- the paper's figures
def _learning_kw(args):
    kw = _given(args, "trials", "samples", "seed", "episodes")
    if args.methods:
        kw["methods"] = tuple(args.methods)
    kw["settings"] = _settings(args)
    return kw


def _learning(args, jobs):
    """fig3 / fig4: success and time per sample against samples."""
    from sim.experiments import offline as ex
    from sim.experiments import report

    kw = _learning_kw(args)
    spec = ex.LearningSpec.quick(**kw) if args.quick else ex.LearningSpec(**kw)
    store = _trial_store(args, spec)
    results = ex.run_learning(spec, jobs=jobs, progress=args.progress, scheduler=args.scheduler, store=store)
    _trial_note(args, store)
    results["command"] = _command(args)
    table = report.write_learning(results, args.out)
    at = report.summary_marks(results)
    print(f"mean success at checkpoints over {spec.trials} trials; median learning time per sample")
    print(f"{'method':>12} " + " ".join(f"{'@' + str(n):>7}" for n in at) + f" {'ms/sample':>10}")
    for m, row in table.items():
        cells = " ".join(f"{row[f'success_{n}']:>7.2f}" for n in at)
        print(f"{m:>12} {cells} {row['ms_per_sample']:>10.3f}")
    for ref, v in results["references"].items():
        print(f"{ref:>12} success {v:.2f} (reference)")
    print(f"wrote {args.out}/results.json, results.csv and plots")
    return 0


def _calibration(args, jobs):
    """calibration: RMSE, coverage, NLL, CRPS (and accuracy, ECE for the softmax head)."""
    from sim.experiments import offline as ex
    from sim.experiments import report

    kw = _learning_kw(args)
    if args.sigma_data:
        if len(args.sigma_data) != 1:
            raise ValueError("--sigma-data: calibration takes one label-noise variance")
        kw["sigma_data"] = args.sigma_data[0]
    learning = read_fig3_results(args.from_dir) if args.from_dir else None
    if learning is not None:
        kw["seed"] = learning["seed"]      # the pre-trained reference on the fig3 run's held-out data
    spec = ex.calibration_spec(quick=args.quick, **kw)
    if learning is None:
        store = _trial_store(args, spec)
        learning = ex.run_learning(spec, jobs=jobs, progress=args.progress, scheduler=args.scheduler, store=store)
        _trial_note(args, store)
    results = ex.run_calibration(spec, jobs=jobs, progress=args.progress, learning=learning)
    results["command"] = _command(args)
    rows = report.write_calibration(results, args.out)
    print(f"{'method':>12} {'samples':>7} {'RMSE (N)':>9} {'cover50':>7} {'cover90':>7} {'NLL':>7} "
          f"{'CRPS (N)':>8} {'accuracy':>8} {'ECE':>6}")
    for r in rows:
        print(f"{r['method']:>12} {r['samples']:>7} {r['rmse']:>9.3f} {r['coverage50']:>7.3f} "
              f"{r['coverage90']:>7.3f} {r['gnll']:>7.3f} {r['crps']:>8.3f} {_cell(r['accuracy'], 8)} "
              f"{_cell(r['ece'], 6)}")
    drawn = "reliability.png, quantiles.png" if os.path.exists(os.path.join(args.out, "reliability.png")) else \
        "quantiles.png (no method has force bins for reliability.png)"
    print(f"wrote {args.out}/results.json, calibration.csv, {drawn}")
    return 0


def _cell(v, width):
    """A table cell of a figure some heads do not have (accuracy and ECE of a force head: '-')."""
    import math

    return f"{'-':>{width}}" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:>{width}.3f}"


def _variance(args, jobs):
    """fig5: the predicted variance against samples for several label-noise variances."""
    from sim.experiments import offline as ex
    from sim.experiments import report

    kw = _given(args, "samples", "seed")
    if args.sigma_data:
        kw["sigma_data"] = tuple(dict.fromkeys(args.sigma_data))     # each variance once
    spec = (ex.VarianceSpec.quick if args.quick else ex.VarianceSpec)(method=args.fig5_method, **kw)
    store = _trial_store(args, spec)
    results = ex.run_variance(spec, jobs=jobs, progress=args.progress, scheduler=args.scheduler, store=store)
    _trial_note(args, store)
    results["command"] = _command(args)
    settled = report.write_variance(results, args.out)
    for s, v in settled.items():
        noise = results["runs"][s].get("noise_var")
        extra = f", learned noise R {noise:8.2f} N^2" if noise is not None else ""
        print(f"Sigma_data = {s:>4}: settled predicted variance {v:8.2f} N^2{extra}")
    print(f"wrote {args.out}/results.json, results.csv and plots")
    return 0


def read_fig3_results(from_dir):
    """``results.json`` of a full ``kbt experiment fig3`` run in ``from_dir``, checked for calibration."""
    from sim.experiments.offline import CALIBRATION_AT

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
