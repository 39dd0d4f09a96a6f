"""``kbt run``: the main job. A learning method in the deployed loop
(``sim.loops.deploy``) with its progress table, several trials of it, or a fixed
controller (lqr, expert, pretrained) evaluated over seeded episodes."""

from __future__ import annotations

from sim.cli import flags as fl
from sim.cli.flags import check_state_args
from sim.cli.resume import restore_run_settings
from sim.cli.run_learning import deploy_config, run_learning, run_trials
from sim.loops.deploy import FALLBACKS, LABEL_MODES, STREAMS
from sim.loops.deploy_config import on_policy_probe_gain
from sim.world.cartpole import SYSTEMS

HELP = "run a controller in the closed loop"
OUTPUTS = (("--json", "json", "file"), ("--save-state", "save_state", "file"), ("--csv", "csv", "file"),
           ("--plot", "plot", "plot"), ("--frames", "frames", "dir"))
MEMORY = ("retrain", "blob")


def add_arguments(p):
    fl.add_system_args(p)
    fl.add_task_arg(p)
    p.add_argument("--method", choices=fl.METHODS, default="kbt",
                   help="controller (default kbt: the pre-trained transformer adapting online)")
    p.add_argument("--design-for", choices=sorted(SYSTEMS), default=None,
                   help="lqr only: the system the gain is designed for (default: the system it runs on)")
    p.add_argument("--episodes", type=int, default=100, help="evaluation episodes (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seeds the episodes, the plant and the data (>= 0)")
    p.add_argument("--json", metavar="PATH", help="write the result as JSON (default: not written)")
    p.add_argument("--weights", metavar="PATH|NAME", help=fl.WEIGHTS_HELP)
    g = p.add_argument_group("learning methods (kbt, kbt-softmax, rls)")
    g.add_argument("--samples", type=int, default=400, help="expert-labelled samples streamed in (default 400)")
    g.add_argument("--trials", type=int, default=1, help="independent trials (data seeds); prints the mean")
    g.add_argument("--sigma-data", type=float, default=0.0, help="variance (N^2) of the label noise (default 0)")
    fl.add_head_args(g)
    g = p.add_argument_group("warm-started retraining and BLoB (retrain, blob)")
    g.add_argument("--capacity", type=int, default=10, help="FIFO memory capacity (default 10)")
    g.add_argument("--epochs", type=int, default=100, help="epochs over the memory per sample (default 100)")
    g.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: retrain 1e-3, blob 3e-3)")
    _add_deployment_args(p.add_argument_group("deployment (learning methods)"))
    p.add_argument("--csv", metavar="PATH", help="learning methods: write every checkpoint as CSV, one line per "
                                                 "trial and checkpoint (default: not written)")
    p.add_argument("--plot", metavar="PATH", help="learning methods: draw success, predictive std and learned noise "
                                                  "against samples as PNG (default: not drawn)")
    p.add_argument("--view", action="store_true", help="watch the run in a pygame window")
    p.add_argument("--frames", metavar="DIR", help="with --view: render off-screen and save every frame as PNG "
                                                   "into DIR, no window needed (default: no frames saved)")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="learning methods: hide the progress bar (the fixed ones have none)")


def _add_deployment_args(g):
    g.add_argument("--stream", choices=STREAMS, default="iid",
                   help="iid: states uniform in |x|, |x_dot| <= 0.5, |theta|, |theta_dot| <= 0.1 (the paper); "
                        "onpolicy: the states the controller visits")
    g.add_argument("--period-ms", type=float, default=None, help="control period for the deadline (default: tau)")
    g.add_argument("--fault-rate", type=float, default=0.0,
                   help="inject NaN sensor readings and NaN labels with this probability per tick (default 0)")
    g.add_argument("--change", action="append", default=None, metavar="TICK:M_C,M_P,L_P",
                   help="from tick TICK on, the plant has these masses (kg) and pole length (m); or "
                        "TICK:noise=VAR, the labels' noise variance (N^2). Repeat for a schedule, e.g. "
                        "--change 400:1,0.5,2 --change 800:1,1,5; every checkpoint is measured on the plant in "
                        "force (default: no change)")
    g.add_argument("--outlier-rate", type=float, default=0.0,
                   help="replace the label by a corrupt one (+-1000 N) with this probability per tick (default 0)")
    g.add_argument("--labels", choices=LABEL_MODES, default="always",
                   help="on-policy stream: who labels. always: the expert labels every tick; uncertain: the expert "
                        "takes over (acts and labels) only the ticks where the controller's epistemic std is above "
                        "--ask-above; random: it takes over at random ticks with probability --label-rate "
                        "(default always)")
    g.add_argument("--ask-above", type=float, default=1.0,
                   help="--labels uncertain: epistemic standard deviation (N) above which the expert takes over "
                        "(default 1)")
    g.add_argument("--label-rate", type=float, default=0.5,
                   help="--labels random: probability per tick that the expert takes over, in (0, 1] (default 0.5)")
    g.add_argument("--probe", type=float, default=None, metavar="K",
                   help="on-policy stream: add K x (epistemic std) x a slow unit Gaussian to the learner's force, "
                        "to excite the directions the visited states leave unlearned; 0: off "
                        "(default: 1 on balance, 2 on swing-up; docs/onpolicy.md)")
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


def flag_methods():
    """The methods each method-specific flag of ``kbt run`` applies to (--save-state / --load-state:
    ``check_state_args``)."""
    table = {dest: fl.LEARNERS for dest in ("samples", "trials", "sigma_data", "stream", "period_ms", "fault_rate",
                                            "outlier_rate", "fallback", "labels", "ask_above", "label_rate",
                                            "change", "progress", "csv", "plot")}
    table.update({dest: fl.STATEFUL for dest in ("head_layers", "prior_var", "obs_noise", "allow_prior")})
    # the Gaussian force head's own settings, the transformer-feature inputs, the softmax head's update
    force = ("kbt", "rls", "kbt-c", "rls-c")
    table.update({dest: force for dest in ("noise", "robust", "detect")})
    table.update(inputs=("kbt", "kbt-c"), family=("kbt", "kbt-c"), update=("kbt-softmax",))
    table.update({dest: MEMORY for dest in ("capacity", "epochs", "lr")})
    table.update(design_for=("lqr", "expert"), weights=fl.TRANSFORMER_METHODS)
    # probing needs an epistemic std (not retraining or BLoB)
    table.update({dest: fl.STATEFUL for dest in ("probe", "probe_memory", "probe_max")})
    return table


def check(args):
    check_state_args(args)
    fl.check_flags_apply(args, flag_methods())
    fl.check_system(args)
    fl.check_weights_arg(args)
    fl.check_int("--episodes", args.episodes, 1, fl.MAX_EPISODES)
    fl.check_int("--seed", args.seed, 0)
    if args.method in fl.LEARNERS:
        _check_learning_args(args)
    fl.check_head_args(args)
    if args.method in MEMORY:
        fl.check_int("--capacity", args.capacity, 1, 100_000)
        fl.check_int("--epochs", args.epochs, 1, 100_000)
        fl.check_real("--lr", args.lr, 0.0, 10.0, low_open=True)
    if args.frames is not None and not args.view:
        raise ValueError("--frames: renders the view off-screen; give it with --view")
    if args.view and args.frames is None and fl.no_display():
        raise ValueError(f"--view: no display to open a window on ({fl.no_display()}); run without --view, "
                         "or render it off-screen with kbt run --view --frames DIR")


def _check_learning_args(args):
    fl.check_int("--samples", args.samples, 1, fl.MAX_SAMPLES)
    fl.check_int("--trials", args.trials, 1, fl.MAX_TRIALS)
    fl.check_real("--sigma-data", args.sigma_data, 0.0, 1e6)
    fl.check_real("--period-ms", args.period_ms, 0.0, 1e6, low_open=True)
    fl.check_real("--fault-rate", args.fault_rate, 0.0, 0.99)
    fl.check_real("--ask-above", args.ask_above, 0.0, 1e6, low_open=True)
    fl.check_real("--label-rate", args.label_rate, 0.0, 1.0, low_open=True)
    if args.labels != "always" and args.stream != "onpolicy":
        raise ValueError(f"--labels: {args.labels} means the expert takes over some ticks; it needs --stream onpolicy")
    for dest, mode in (("ask_above", "uncertain"), ("label_rate", "random")):
        if dest in args.given and args.labels != mode:
            raise ValueError(f"{args.given[dest]}: applies only with --labels {mode} (here --labels {args.labels})")
    fl.check_real("--probe", args.probe, 0.0, 100.0)
    fl.check_real("--probe-memory", args.probe_memory, 1.0, 1e6)
    fl.check_real("--probe-max", args.probe_max, 0.0, 1e3, low_open=True)
    for dest in ("probe", "probe_memory", "probe_max"):
        if dest in args.given and args.stream != "onpolicy":
            raise ValueError(f"{args.given[dest]}: probing excites the states the controller visits; "
                             "it needs --stream onpolicy")
    gain = on_policy_probe_gain(getattr(args, "task", "balance"), args.probe)
    for dest in ("probe_memory", "probe_max"):
        if dest in args.given and gain == 0.0:
            raise ValueError(f"{args.given[dest]}: shapes the probing force, which is off here "
                             f"(--probe {gain:g}; give --probe K > 0)")
    if args.labels == "uncertain" and args.method in MEMORY:
        raise ValueError(f"--labels: uncertain needs an epistemic variance; {args.method} has none "
                         "(use kbt, kbt-softmax or rls)")


def run(args):
    restore_run_settings(args)    # --load-state: the saved run's settings the command line does not give
    name, task = fl.task_from_args(args)
    check_state_args(args)
    if args.method not in fl.LEARNERS:
        return _evaluate_fixed(args, task, name)
    args._changes = fl.parse_changes(args, task.params, args.samples)
    deploy_config(args)           # bad settings fail before any work
    if args.trials > 1:
        if args.save_state or args.load_state or args.view:
            raise ValueError("--trials: a multi-trial run cannot save, load or view a state; use --trials 1")
        return run_trials(args, task, name)
    return run_learning(args, task, name)


def _evaluate_fixed(args, task, name):
    """A controller that does not learn, over ``--episodes`` seeded episodes."""
    from sim.loops.loop import evaluate_success

    params = task.params
    controller = fl.make_controller(args, task)
    ev = evaluate_success(controller, task, n_episodes=args.episodes, seed=args.seed)
    design = args.design_for or name
    label = f"{args.method} (designed for {design})" if args.method in ("lqr", "expert") else args.method
    print(f"{label} on {name}: success {ev.success_rate:.3f} over {ev.n_episodes} episodes "
          f"(mean length {ev.lengths.mean():.1f} steps, saturated {100 * ev.saturation_fraction:.2f} % of steps, "
          f"{ev.seconds:.3f} s)")
    if args.json:
        fl.write_json(args.json, {
            "method": args.method, "system": name, "design_for": design,
            "params": {k: getattr(params, k) for k in ("m_c", "m_p", "l_p", "g", "tau", "integrator", "u_max")},
            "episodes": ev.n_episodes, "seed": args.seed, "success_rate": ev.success_rate,
            "mean_length": float(ev.lengths.mean()), "saturation_fraction": ev.saturation_fraction,
            "seconds": ev.seconds, "samples": 0,
        })
    if args.view:
        from sim.view.live import watch

        watch(controller, task, method=args.method, seconds=None, seed=args.seed, frames_dir=args.frames,
              headless=args.frames is not None)
    return 0
