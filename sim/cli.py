"""The ``kbt`` command line.

Subcommands (each has ``--help``):

* ``kbt lqr``: LQR gain and closed-loop eigenvalues for a cart-pole;
* ``kbt run``: the main job -- a learning method (kbt, retrain, blob) in the
  deployed loop (``sim.deploy``) with its progress table, or a fixed
  controller (lqr, pretrained) evaluated over seeded episodes;
* ``kbt view``: watch a controller live in a pygame window (``sim.view``);
* ``kbt profile``: latency, memory, FLOPs and device budgets of every method
  (``firmware_profile``, fed with TARGET's data by ``sim.profile_run``);
* ``kbt experiment``: the paper's Figures 3/4/5 and calibration (``sim.experiments``);
* ``kbt pretrain``: pre-train the decision transformer on SOURCE LQR data (``sim.pretrain``).

This module is the top of the import graph: it may import ``sim``,
``controller`` and ``firmware_profile`` (docs/architecture.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from controller.kalman_head import HeadConfig
from controller.tokenizer import TARGET_STYLES
from controller.transformer import TransformerConfig
from sim.cartpole import INTEGRATORS, SYSTEMS
from sim.deploy import FALLBACKS, STREAMS

__all__ = ["main", "build_parser"]

METHODS = ("lqr", "pretrained", "kbt", "retrain", "blob")
LEARNERS = ("kbt", "retrain", "blob")


# ---------------------------------------------------------------- helpers
def _add_system_args(p, default="target"):
    p.add_argument("--system", choices=sorted(SYSTEMS), default=None,
                   help=f"preset cart-pole (default {default}); or give --m-c/--m-p/--l-p")
    p.add_argument("--m-c", type=float, help="cart mass (kg), > 0")
    p.add_argument("--m-p", type=float, help="pole mass (kg), > 0")
    p.add_argument("--l-p", type=float, help="pivot to the pole's centre of mass (m), > 0")
    p.add_argument("--integrator", choices=INTEGRATORS, default="euler")
    p.set_defaults(_default_system=default)


def _system_from_args(args):
    """(name, CartPoleParams) from --system or --m-c/--m-p/--l-p."""
    custom = {k: getattr(args, k) for k in ("m_c", "m_p", "l_p") if getattr(args, k) is not None}
    if custom and args.system:
        raise ValueError("--system: give either --system or --m-c/--m-p/--l-p, not both")
    if custom:
        base = SYSTEMS[args._default_system]
        params = base.with_(integrator=args.integrator, **custom)
        name = "custom(" + ",".join(f"{k}={v:g}" for k, v in sorted(custom.items())) + ")"
        return name, params
    name = args.system or args._default_system
    return name, SYSTEMS[name].with_(integrator=args.integrator)


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


# ---------------------------------------------------------------- commands
def cmd_lqr(args):
    from controller.lqr import lqr_gain

    name, params = _system_from_args(args)
    K, E = lqr_gain(params, R=args.r)
    print(f"system {name}: m_c={params.m_c:g} m_p={params.m_p:g} l_p={params.l_p:g}")
    print("K = [" + ", ".join(f"{k:.4f}" for k in K) + "]   (u = -K x)")
    print("closed-loop eigenvalues: " + ", ".join(f"{e.real:.4f}{e.imag:+.4f}j" for e in E))
    return 0


def _make_controller(args, params):
    from controller.lqr import LQRController

    if args.method == "lqr":
        design = SYSTEMS[args.design_for] if args.design_for else params
        return LQRController(design)
    if args.method == "pretrained":
        from controller.model import load_pretrained

        return load_pretrained(args.weights)
    if args.method == "kbt":
        from controller.kalman_head import HeadConfig
        from controller.kbt import KBTController
        from controller.model import load_pretrained

        head = HeadConfig(n_layers=args.head_layers, prior_var=tuple(args.prior_var), obs_noise=args.obs_noise,
                          update=args.update)
        return KBTController(load_pretrained(args.weights), head, sigma_data=args.sigma_data)
    if args.method in ("retrain", "blob"):
        from sim.methods import MethodSettings, make_controller

        kw = {"lr" if args.method == "retrain" else "blob_lr": args.lr} if args.lr is not None else {}
        settings = MethodSettings(weights=args.weights, epochs=args.epochs, **kw)
        return make_controller(f"{args.method}-{args.capacity}", params, settings, seed=args.seed)
    raise ValueError(f"--method: expected one of {', '.join(METHODS)} but found {args.method!r}")


def _deploy_config(args, trial=None):
    from sim.deploy import DeployConfig

    period = None if args.period_ms is None else args.period_ms / 1000.0
    return DeployConfig(samples=args.samples, stream=args.stream, episodes=args.episodes, seed=args.seed,
                        data_seed=None if trial is None else args.seed + 1 + trial, period=period,
                        fault_rate=args.fault_rate, fallback=args.fallback, sigma_data=args.sigma_data).validate()


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
        why = "no such file" if isinstance(e, FileNotFoundError) else str(e)
        if not args.allow_prior:
            raise ValueError(f"--load-state: cannot resume from {args.load_state}: {why}. "
                             "Pass --allow-prior to start from the pre-trained prior instead") from None
        print(f"warning: cannot resume from {args.load_state}: {why}; starting from the prior (--allow-prior)",
              file=sys.stderr)
        return "prior"
    print(f"resumed the head from {args.load_state} ({controller.n_updates} updates so far)")
    return "resumed"


def _save_state(args, controller):
    if args.save_state:
        controller.save_state(args.save_state)
        print(f"saved the head to {args.save_state}")


def _check_state_args(args):
    if (args.save_state or args.load_state) and args.method != "kbt":
        raise ValueError(f"--save-state/--load-state: only the kbt method has a state to save, not {args.method}")


TABLE_HEAD = (f"{'samples':>8} {'success':>8} {'pred std (N)':>13} {'update p50 (us)':>16} {'p99 (us)':>9} "
              f"{'misses':>7} {'rejected':>9} {'faults':>7}")


def _table_row(row):
    def f(v, fmt):
        return format(v, fmt) if v is not None else "-"

    return (f"{row['samples']:>8} {row['success_rate']:>8.2f} {f(row['pred_std'], '.3f'):>13} "
            f"{f(row['update_p50_us'], '.0f'):>16} {f(row['update_p99_us'], '.0f'):>9} "
            f"{row['deadline_misses']:>7} {row['rejected']:>9} {row['sensor_faults']:>7}")


def _run_trials(args, params, name):
    """Several deployed learning runs (data seeds seed+1 .. seed+trials); mean success per checkpoint."""
    from sim.deploy import run_deployment
    from sim.progress import Progress

    per_trial = []
    with Progress(args.trials, f"{args.method} trials", enabled=args.progress) as bar:
        for t in range(args.trials):
            controller = _make_controller(args, params)
            if hasattr(controller, "warm_up"):
                controller.warm_up()
            res = run_deployment(controller, params, _deploy_config(args, trial=t))
            per_trial.append(res.rows)
            bar.update(1)
    marks = [r["samples"] for r in per_trial[0]]
    succ = np.array([[r["success_rate"] for r in rows] for rows in per_trial])      # [trials, checkpoints]
    p50 = np.array([rows[-1]["update_p50_us"] for rows in per_trial], dtype=float)
    print(f"{args.method} on {name}, {args.trials} trials x {args.samples} samples, {args.episodes} episodes each")
    print(f"{'samples':>8} {'mean success':>13} {'min':>6} {'max':>6}")
    for j, m in enumerate(marks):
        print(f"{m:>8} {succ[:, j].mean():>13.3f} {succ[:, j].min():>6.2f} {succ[:, j].max():>6.2f}")
    print(f"update latency p50 (median over trials): {np.nanmedian(p50):.0f} us")
    if args.json:
        _write_json(args.json, {"method": args.method, "system": name, "episodes": args.episodes, "seed": args.seed,
                                "trials": args.trials, "samples": args.samples, "stream": args.stream,
                                "checkpoints": marks, "success_rate": succ[:, -1].mean(),
                                "success_per_trial": succ, "per_trial": per_trial})
    return 0


def _run_learning(args, params, name):
    """One deployed learning run with the progress table."""
    from sim.deploy import run_deployment
    from sim.progress import Progress

    controller = _make_controller(args, params)
    resumed = _load_state(args, controller)
    if hasattr(controller, "warm_up"):
        controller.warm_up()
    cfg = _deploy_config(args)
    period_ms = 1000 * (params.tau if cfg.period is None else cfg.period)
    print(f"{args.method} on {name}: {cfg.samples} {cfg.stream} expert samples, one per {period_ms:g} ms tick; "
          f"success over {cfg.episodes} episodes at each checkpoint")
    print(TABLE_HEAD)
    view = None
    with Progress(cfg.samples, f"{args.method} learning", enabled=args.progress and not args.view) as bar:
        def on_checkpoint(row):
            bar.clear()
            print(_table_row(row), flush=True)

        def on_tick(state, force, res):
            bar.update(1)
            if view is not None:
                return view.show(state, force, learned=res.updates, force_std=force_std(controller, state))
            return True

        if args.view:
            from sim.view import Viewer, force_std

            view = Viewer(params, method=args.method)
        try:
            res = run_deployment(controller, params, cfg, on_checkpoint=on_checkpoint, on_tick=on_tick)
        finally:
            if view is not None:
                view.close()
    last = res.rows[-1]
    s = res.summary()
    print(f"{args.method} on {name}: success {last['success_rate']:.3f} after {res.updates} updates "
          f"({res.rejected} rejected, {res.sensor_faults} sensor faults, {res.deadline_misses} deadline misses of "
          f"{res.ticks} ticks; update p50 {s['update_p50_us']:.0f} us)")
    _save_state(args, controller)
    if args.json:
        _write_json(args.json, {
            "method": args.method, "system": name, "episodes": cfg.episodes, "seed": args.seed,
            "samples": cfg.samples, "stream": cfg.stream, "fault_rate": cfg.fault_rate, "fallback": cfg.fallback,
            "resumed": resumed, "success_rate": last["success_rate"], "checkpoints": res.rows, **s,
        })
    return 0


def cmd_run(args):
    from sim.loop import evaluate_success

    name, params = _system_from_args(args)
    _check_state_args(args)
    if args.method in LEARNERS:
        _deploy_config(args)      # bad settings fail before any work
    if args.method in LEARNERS and args.trials > 1:
        if args.save_state or args.load_state or args.view:
            raise ValueError("--trials: a multi-trial run cannot save, load or view a state; use --trials 1")
        return _run_trials(args, params, name)
    if args.method in LEARNERS:
        return _run_learning(args, params, name)
    controller = _make_controller(args, params)
    ev = evaluate_success(controller, params, n_episodes=args.episodes, seed=args.seed)
    design = args.design_for or name
    label = f"{args.method} (designed for {design})" if args.method == "lqr" else args.method
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

        watch(controller, params, method=args.method, seconds=None, seed=args.seed)
    return 0


def cmd_view(args):
    from controller.lqr import LQRController
    from sim.data import sample_dataset
    from sim.methods import MethodSettings, make_controller
    from sim.progress import Progress
    from sim.view import watch

    name, params = _system_from_args(args)
    method = f"{args.method}-{args.capacity}" if args.method in ("retrain", "blob") else args.method
    controller = make_controller(method, params, MethodSettings(weights=args.weights), seed=args.seed)
    _check_state_args(args)
    _load_state(args, controller)
    learned = None
    if callable(getattr(controller, "observe", None)):
        samples = args.samples if args.samples is not None else 400
        if samples < 0:
            raise ValueError(f"--samples: expected an integer >= 0 but found {samples}")
        S, F = sample_dataset(LQRController(params), samples, seed=args.seed + 1) if samples else (None, None)
        with Progress(samples, f"{method} adapting before the view", enabled=args.progress and samples > 0) as bar:
            for i in range(samples):
                controller.observe(S[i], F[i])
                bar.update(1)
        learned = getattr(controller, "n_updates", samples)   # includes a resumed head's updates
    out = watch(controller, params, method=method, seconds=args.seconds, seed=args.seed, frames_dir=args.frames,
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
    cfg = (ProfileConfig.quick(**kw) if args.quick else ProfileConfig(**kw)).validate()
    res = run_profile(cfg, progress=(lambda m: print(f"... {m}", file=sys.stderr, flush=True))
                      if args.progress else None)
    res["command"] = "kbt " + " ".join(args.argv)
    print(format_markdown(res) if args.markdown else format_text(res))
    if args.json:
        _write_json(args.json, res)
    return 0


def cmd_experiment(args):
    from controller.kalman_head import HeadConfig
    from sim import experiments as ex
    from sim import report
    from sim.methods import MethodSettings

    jobs = args.jobs or (os.cpu_count() or 1)
    if args.name in ("fig3", "fig4"):
        kw = {k: v for k, v in (("trials", args.trials), ("samples", args.samples), ("seed", args.seed),
                                ("episodes", args.episodes)) if v is not None}
        if args.methods:
            kw["methods"] = tuple(args.methods)
        kw["settings"] = MethodSettings(epochs=args.epochs, lr=args.lr)
        spec = ex.LearningSpec.quick(**kw) if args.quick else ex.LearningSpec(**kw)
        results = ex.run_learning(spec, jobs=jobs, progress=args.progress)
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
        spec = ex.calibration_spec(quick=args.quick, **kw)
        learning = None
        if args.from_dir:
            path = os.path.join(args.from_dir, "results.json")
            try:
                with open(path) as f:
                    learning = json.load(f)
            except (OSError, ValueError) as e:
                raise ValueError(f"--from: cannot read {path}: {e}") from None
        results = ex.run_calibration(spec, jobs=jobs, progress=args.progress, learning=learning)
        results["command"] = "kbt " + " ".join(args.argv)
        rows = report.write_calibration(results, args.out)
        print(f"{'method':>12} {'samples':>7} {'accuracy':>8} {'ECE':>6} {'NLL':>6} {'RMSE':>6} {'cover90':>7}")
        for r in rows:
            print(f"{r['method']:>12} {r['samples']:>7} {r['accuracy']:>8.3f} {r['ece']:>6.3f} {r['nll']:>6.3f} "
                  f"{r['rmse']:>6.2f} {r['coverage90']:>7.3f}")
    else:  # fig5
        kw = {k: v for k, v in (("samples", args.samples), ("seed", args.seed)) if v is not None}
        if args.sigma_data:
            kw["sigma_data"] = tuple(args.sigma_data)
        spec = ex.VarianceSpec.quick(**kw) if args.quick else ex.VarianceSpec(**kw)
        results = ex.run_variance(spec, jobs=jobs, progress=args.progress)
        results["command"] = "kbt " + " ".join(args.argv)
        settled = report.write_variance(results, args.out)
        for s, v in settled.items():
            print(f"Sigma_data = {s:>4}: settled predicted variance {v:8.2f} N^2")
    files = "calibration.csv and reliability.png" if args.name == "calibration" else "results.csv and plots"
    print(f"wrote {args.out}/results.json, {files}")
    return 0


def cmd_pretrain(args):
    import shlex

    from sim.pretrain import pretrain
    from controller.transformer import TransformerConfig
    from sim.cartpole import SOURCE, TARGET
    from sim.loop import evaluate_success

    cfg = TransformerConfig(n_bins=args.bins, target=args.target, sigma=args.sigma, query=args.query,
                            final_ln=args.final_ln)
    policy, history = pretrain(cfg, seed=args.seed, steps=args.steps, batch=args.batch, lr=args.lr)
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


# ---------------------------------------------------------------- parser
def build_parser():
    parser = argparse.ArgumentParser(prog="kbt", description="Kalman Bayesian Transformer cart-pole controller")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("lqr", help="LQR gain and closed-loop eigenvalues")
    _add_system_args(p)
    p.add_argument("--r", type=float, default=None, help="force weight R (default 0.1)")
    p.set_defaults(func=cmd_lqr)

    p = sub.add_parser("run", help="run a controller in the closed loop")
    _add_system_args(p)
    p.add_argument("--method", choices=METHODS, default="kbt",
                   help="controller (default kbt: the pre-trained transformer adapting online)")
    p.add_argument("--design-for", choices=sorted(SYSTEMS), default=None,
                   help="lqr only: the system the gain is designed for (default: the system it runs on)")
    p.add_argument("--episodes", type=int, default=100, help="evaluation episodes (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="write the result as JSON")
    p.add_argument("--weights", metavar="PATH", help="transformer weights (default: the shipped pre-trained file)")
    g = p.add_argument_group("learning methods (kbt)")
    g.add_argument("--samples", type=int, default=400, help="expert-labelled samples streamed in (default 400)")
    g.add_argument("--trials", type=int, default=1, help="independent trials (data seeds); prints the mean")
    g.add_argument("--sigma-data", type=float, default=0.0, help="variance (N^2) of the label noise (default 0)")
    g.add_argument("--head-layers", type=int, default=HeadConfig.n_layers, help="Bayesian head layers L")
    g.add_argument("--prior-var", type=float, nargs="+", default=list(HeadConfig.prior_var),
                   help="prior weight variance per head layer")
    g.add_argument("--obs-noise", type=float, default=HeadConfig.obs_noise, help="measurement noise R (kalman update)")
    g.add_argument("--update", choices=("kalman", "paper"), default=HeadConfig.update, help="output update")
    g = p.add_argument_group("warm-started retraining and BLoB (retrain, blob)")
    g.add_argument("--capacity", type=int, default=10, help="FIFO memory capacity (default 10)")
    g.add_argument("--epochs", type=int, default=100, help="epochs over the memory per sample (default 100)")
    g.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: retrain 1e-3, blob 3e-3)")
    g = p.add_argument_group("deployment (learning methods)")
    g.add_argument("--stream", choices=STREAMS, default="iid",
                   help="iid: samples from the SPEC box (the paper); onpolicy: the states the controller visits")
    g.add_argument("--period-ms", type=float, default=None, help="control period for the deadline (default: tau)")
    g.add_argument("--fault-rate", type=float, default=0.0,
                   help="inject NaN sensor readings and NaN labels with this probability per tick (default 0)")
    g.add_argument("--fallback", choices=FALLBACKS, default="hold",
                   help="on a non-finite reading: hold the last force, or LQR on the last good reading")
    g.add_argument("--save-state", metavar="PATH", help="kbt: save the head's posterior at the end")
    g.add_argument("--load-state", metavar="PATH", help="kbt: resume the head from a saved posterior")
    g.add_argument("--allow-prior", action="store_true",
                   help="if --load-state cannot be read, start from the pre-trained prior instead of stopping")
    p.add_argument("--view", action="store_true", help="watch the run in a pygame window")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("view", help="watch a controller live in a pygame window")
    _add_system_args(p)
    p.add_argument("--method", choices=METHODS, default="kbt", help="controller (default kbt)")
    p.add_argument("--capacity", type=int, default=10, help="retrain, blob: FIFO memory capacity")
    p.add_argument("--samples", type=int, default=None,
                   help="learning methods: i.i.d. expert samples learned before the view opens (default 400)")
    p.add_argument("--seconds", type=float, default=None, help="stop after this much simulated time")
    p.add_argument("--frames", metavar="DIR", help="render off-screen and save every frame as PNG into DIR")
    p.add_argument("--headless", action="store_true", help="no window (off-screen surface)")
    p.add_argument("--screenshot", metavar="PNG", help="render off-screen and save the last frame as PNG")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", metavar="PATH", help="transformer weights (default: the shipped pre-trained file)")
    p.add_argument("--load-state", metavar="PATH", help="kbt: start from a saved head")
    p.add_argument("--allow-prior", action="store_true", help="if --load-state cannot be read, use the prior")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    p.set_defaults(func=cmd_view, save_state=None)

    p = sub.add_parser("profile", help="per-sample latency, memory and FLOPs of every method")
    p.add_argument("--rate", type=float, default=50.0, help="control rate (Hz) for the deadline analysis")
    p.add_argument("--calls", type=int, default=None, help="timed calls for inference and KBT updates (10000)")
    p.add_argument("--retrain-calls", type=int, default=None, help="timed retraining updates per capacity (20)")
    p.add_argument("--capacities", type=int, nargs="+", default=None, help="retraining capacities (10 ... 100)")
    p.add_argument("--budget-kib", type=int, default=None, help="add a custom device with this much RAM")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="small sizes (seconds), for checks")
    p.add_argument("--json", metavar="PATH", help="write every figure as JSON")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables (for docs)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress messages")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("experiment", help="reproduce a figure of the paper (JSON, CSV, PNG)")
    p.add_argument("name", choices=("fig3", "fig4", "fig5", "calibration"),
                   help="fig3/fig4: success and time per sample vs samples (one run makes both); "
                        "fig5: predicted variance vs samples for several Sigma_data; "
                        "calibration: accuracy, ECE, NLL, RMSE, coverage and reliability diagrams")
    p.add_argument("--from", dest="from_dir", metavar="DIR",
                   help="calibration: read a fig3 run's results.json from DIR instead of running anew")
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (default results/NAME)")
    p.add_argument("--quick", action="store_true", help="CI size (under 3 minutes)")
    p.add_argument("--trials", type=int, default=None, help="fig3/4: trials (default 10)")
    p.add_argument("--samples", type=int, default=None, help="samples per trial (fig3/4: 400, fig5: 20000)")
    p.add_argument("--episodes", type=int, default=None, help="fig3/4: evaluation episodes per checkpoint")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--jobs", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--methods", nargs="+", default=None, metavar="M",
                   help="fig3/4: learning methods, e.g. kbt retrain-10 retrain-100 blob-10")
    p.add_argument("--epochs", type=int, default=100, help="retraining epochs per sample")
    p.add_argument("--lr", type=float, default=1e-3, help="retraining learning rate")
    p.add_argument("--sigma-data", type=float, nargs="+", default=None, help="fig5: label-noise variances (N^2)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    p.set_defaults(func=cmd_experiment)

    p = sub.add_parser("pretrain", help="pre-train the decision transformer on SOURCE LQR data")
    p.add_argument("--out", required=True, metavar="PATH", help="where to write the .npz")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=4000, help="Adam steps (default 4000)")
    p.add_argument("--batch", type=int, default=256, help="samples per step (default 256)")
    p.add_argument("--lr", type=float, default=3e-3, help="initial learning rate (default 3e-3)")
    p.add_argument("--bins", type=int, default=TransformerConfig.n_bins, help="action bins")
    p.add_argument("--target", choices=TARGET_STYLES, default=TransformerConfig.target, help="training target style")
    p.add_argument("--sigma", type=float, default=TransformerConfig.sigma, help="std (N) of the gaussian target")
    p.add_argument("--query", choices=("state", "constant"), default=TransformerConfig.query,
                   help="action-query token: embeds the whole state, or a constant vector")
    p.add_argument("--final-ln", action=argparse.BooleanOptionalAction, default=TransformerConfig.final_ln,
                   help="final LayerNorm on H_dec")
    p.set_defaults(func=cmd_pretrain)
    return parser


def main(argv=None):
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    if getattr(args, "command", None) == "experiment" and args.out is None:
        args.out = os.path.join("results", args.name)
    try:
        return args.func(args)
    except ValueError as e:
        parser.exit(2, f"kbt {args.command}: error: {e}\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
