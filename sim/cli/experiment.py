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
from sim.cli.experiment_specs import (adapt_spec, add_spec_arguments, baseline_settings, check_adapt, check_drift,
                                      drift_spec, given_sizes)

HELP = "reproduce a figure of the paper (JSON, CSV, PNG)"
OUTPUTS = (("--out", "out", "dir"),)
FLAG_NAMES = {"method": "--methods"}      # a spec checks each --methods entry as the library's ``method``
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
                   help="fig3/4: trials (default 10); adapt, drift: the same (default 20; --quick: 1, 2)")
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
    add_spec_arguments(p)
    p.add_argument("--method", dest="fig5_method", choices=("kbt", "kbt-softmax"), default="kbt",
                   help="fig5: the head whose predicted variance is tracked (default kbt)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")


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
        check_adapt(args)
    if args.name == "drift":
        check_drift(args)


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
    from sim.experiments.trials import JobError, check_scheduler

    jobs = args.jobs or (os.cpu_count() or 1)
    run_named = {"onpolicy": _deployed, "swingup": _deployed, "drift": _drift, "fig3": _learning,
                 "fig4": _learning, "calibration": _calibration, "fig5": _variance, "adapt": _adapt}[args.name]
    try:
        if args.scheduler is not None:      # before the trial store replaces anything
            check_scheduler(args.scheduler)
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

    kw = given_sizes(args, "trials", "seed", "episodes", "ask_above", "every", "probe")
    if args.samples is not None:
        kw["ticks"] = args.samples
    if args.methods:
        kw["methods"] = tuple(args.methods)
    if args.gated is not None:
        kw["gated"] = tuple(args.gated)
    kw["settings"] = baseline_settings(args)
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

    spec = drift_spec(args)
    results = _run_stored(args, jobs, spec, ex.trial_store, ex.run_drift)
    rows = write_drift(results, args.out)
    print(f"drift: mean success 10/25/50 samples after each change over the trials ({drift_trials(spec)}); "
          f"samples to 0.99 (median over the trials that got there); held-out RMSE against the expert in force "
          f"200 samples after; labels down-weighted and changes detected (means by the end; '-': the head has neither)")
    print(format_drift(rows))
    print(f"wrote {args.out}/results.json, results.csv and drift.png")
    return 0


def _adapt(args, jobs):
    """adapt: success, held-out RMSE and NLL against labels, per task, stream, variant and trial."""
    from sim.experiments import adapt as ex
    from sim.experiments.report_adapt import format_adapt, write_adapt

    spec = adapt_spec(args)
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
    kw = given_sizes(args, "trials", "samples", "seed", "episodes")
    if args.methods:
        kw["methods"] = tuple(args.methods)
    kw["settings"] = baseline_settings(args)
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

    kw = given_sizes(args, "samples", "seed")
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
