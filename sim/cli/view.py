"""``kbt view``: watch a controller live in a pygame window (``sim.view.live``),
or render it off-screen into frames or one screenshot."""

from __future__ import annotations

import sys

from sim.cli import flags as fl
from sim.cli.resume import load_state, restore_run_settings, stream_position

HELP = "watch a controller live in a pygame window"
OUTPUTS = (("--screenshot", "screenshot", "screenshot"), ("--frames", "frames", "dir"))
OFFSCREEN_SECONDS = 10.0          # off-screen (--frames/--screenshot/--headless) without --seconds


def add_arguments(p):
    fl.add_system_args(p)
    fl.add_task_arg(p)
    p.add_argument("--method", choices=fl.METHODS, default="kbt", help="controller (default kbt)")
    p.add_argument("--capacity", type=int, default=10, help="retrain, blob: FIFO memory capacity")
    p.add_argument("--samples", type=int, default=None,
                   help="learning methods: i.i.d. expert samples learned before the view opens (default 400)")
    p.add_argument("--seconds", type=float, default=None,
                   help="stop after this much simulated time (default: a window runs until q or Esc; "
                        f"off-screen, with --frames, --screenshot or --headless, {OFFSCREEN_SECONDS:g} s)")
    p.add_argument("--frames", metavar="DIR",
                   help="render off-screen and save every frame as PNG into DIR (default: no frames saved)")
    p.add_argument("--headless", action="store_true", help="no window (off-screen surface)")
    p.add_argument("--screenshot", metavar="PNG",
                   help="render off-screen and save the last frame as PNG (default: none)")
    p.add_argument("--change", action="append", default=None, metavar="STEP:M_C,M_P,L_P",
                   help="from simulated step STEP on, the plant has these masses (kg) and pole length (m); repeat "
                        "for a schedule; the strip chart's expert follows the plant in force (default: no change)")
    p.add_argument("--seed", type=int, default=0, help="seeds the episodes and the samples learned first (>= 0)")
    p.add_argument("--weights", metavar="PATH|NAME", help=fl.WEIGHTS_HELP)
    p.add_argument("--load-state", metavar="PATH", help="start from a saved head (default: the pre-trained prior)")
    p.add_argument("--allow-prior", action="store_true", help="if --load-state cannot be read, use the prior")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="learning methods: hide the progress bar (the fixed ones have none)")
    p.set_defaults(save_state=None)


def flag_methods():
    return {"samples": fl.LEARNERS, "progress": fl.LEARNERS, "capacity": ("retrain", "blob"), "allow_prior": fl.STATEFUL,
            "weights": fl.TRANSFORMER_METHODS}


def _offscreen(args):
    return args.headless or bool(args.frames) or bool(args.screenshot)


def check(args):
    fl.check_state_args(args)
    fl.check_flags_apply(args, flag_methods())
    fl.check_system(args)
    fl.check_weights_arg(args)
    fl.check_int("--samples", args.samples, 0, fl.MAX_SAMPLES)
    fl.check_int("--capacity", args.capacity, 1, 100_000)
    fl.check_int("--seed", args.seed, 0)
    fl.check_real("--seconds", args.seconds, 0.0, 1e6, low_open=True)
    if not _offscreen(args) and fl.no_display():
        raise ValueError(f"no display to open a window on ({fl.no_display()}); render off-screen with "
                         f"--frames DIR, --screenshot PNG or --headless (each stops after --seconds, "
                         f"default {OFFSCREEN_SECONDS:g})")


def _adapt_first(args, task, controller, method):
    """A learning method learns ``--samples`` i.i.d. expert samples before the view opens;
    returns the samples it has learned (None for a fixed controller)."""
    from sim.loops.deploy import iid_samples
    from sim.loops.progress import Progress
    from sim.world.experts import expert_for

    if not callable(getattr(controller, "observe", None)):
        return None
    samples = args.samples if args.samples is not None else 400
    first = stream_position(args)[1]         # a resumed head continues its i.i.d. stream
    S, F = (iid_samples(expert_for(task), args.seed + 1, first, samples, task=task) if samples
            else (None, None))
    with Progress(samples, f"{method} adapting before the view", enabled=args.progress and samples > 0) as bar:
        for i in range(samples):
            controller.observe(S[i], F[i])
            bar.update(1)
    return getattr(controller, "n_updates", samples)   # includes a resumed head's updates


def prepare(args):
    """Off-screen without --seconds: stop after OFFSCREEN_SECONDS of simulated time."""
    if _offscreen(args) and args.seconds is None:
        args.seconds = OFFSCREEN_SECONDS


def _changes(args, task):
    """``--change`` entries: plant changes only (nothing learns during the view), each before
    the last step of ``--seconds`` when it is given."""
    steps = fl.MAX_SAMPLES if args.seconds is None else max(int(round(args.seconds / task.params.tau)), 1)
    changes = fl.parse_changes(args, task.params, steps, unit="simulated steps")
    for change in changes:
        if change.params is None:
            raise ValueError(f"--change: at {change.at}: the view learns nothing while it runs, so a label-noise "
                             "change does nothing here; give STEP:M_C,M_P,L_P")
        if change.at % task.episode_steps == 0:
            print(f"kbt view: note: --change at step {change.at}: episodes that last their full "
                  f"{task.episode_steps} steps end there, so the new plant may start on a fresh episode; "
                  f"e.g. step {change.at + task.episode_steps // 5} changes it mid-episode", file=sys.stderr)
    return changes


def run(args):
    from sim.view.live import watch

    if _offscreen(args) and "seconds" not in args.given:
        print(f"kbt view: off-screen without --seconds: stopping after {OFFSCREEN_SECONDS:g} s of simulated time",
              file=sys.stderr)
    restore_run_settings(args)   # --load-state: the saved run's settings the command line does not give
    name, task = fl.task_from_args(args)
    changes = _changes(args, task)
    method = fl.method_name(args)
    controller = fl.make_controller(args, task)
    fl.check_state_args(args)
    load_state(args, controller)
    learned = _adapt_first(args, task, controller, method)
    out = watch(controller, task, method=method, seconds=args.seconds, seed=args.seed, frames_dir=args.frames,
                headless=_offscreen(args), learned=learned, screenshot=args.screenshot, changes=changes)
    if args.screenshot:
        print(f"last frame: {out['figures']}")
    print(f"{method} on {name}: {out['seconds']:.1f} s simulated, {out['frames']} frames, "
          f"{out['successes']} successes, {out['failures']} failures"
          + (f"; frames in {args.frames}" if args.frames else "")
          + (f"; last frame in {args.screenshot}" if args.screenshot else ""))
    return 0
