"""What ``kbt run`` prints and writes for a learning method: one deployed run with
its progress table (and the live view), or several trials with their mean."""

from __future__ import annotations

import signal
import sys
from dataclasses import replace

import numpy as np

from sim.cli import flags as fl
from sim.cli.resume import load_state, save_run, save_state, stream_position
from sim.loops.methods import has_robust_head
from sim.world.experts import expert_for
from sim.world.schedule import plant_in_force

TABLE_HEAD = (f"{'samples':>8} {'success':>8} {'pred std (N)':>13} {'noise R (N^2)':>14} {'update p50 (us)':>16} "
              f"{'p99 (us)':>9} {'misses':>7} {'down-wt':>8} {'changes':>8} {'rejected':>9} {'faults':>7}")
#: the on-policy stream's extra columns: labels used, expert take-overs, falls of the plant while learning
ONPOLICY_HEAD = f" {'labels':>7} {'take-overs':>10} {'falls':>6}"


class DeferredInterrupt:
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


def table_row(row, onpolicy=False, robust=True):
    """One checkpoint row of the progress table; ``robust=False`` (a head without a robust
    weight or change detector): '-' in the down-wt and changes columns."""
    def f(v, fmt):
        return format(v, fmt) if v is not None else "-"

    dw, ch = (row.get(k, 0) if robust else "-" for k in ("downweighted", "changes"))
    text = (f"{row['samples']:>8} {row['success_rate']:>8.2f} {f(row['pred_std'], '.3f'):>13} "
            f"{f(row.get('noise_var'), '.4g'):>14} {f(row['update_p50_us'], '.0f'):>16} "
            f"{f(row['update_p99_us'], '.0f'):>9} {row['deadline_misses']:>7} {dw:>8} "
            f"{ch:>8} {row['rejected']:>9} {row['sensor_faults']:>7}")
    if onpolicy:
        text += f" {row['labels']:>7} {row['takeovers']:>10} {row['falls']:>6}"
    return text


def who_labels(cfg):
    if cfg.stream == "iid":
        return "i.i.d. states labelled by the expert"
    if cfg.labels == "always":
        return "the expert labels every visited state"
    if cfg.labels == "uncertain":
        return f"the expert takes over (acts and labels) where the epistemic std is above {cfg.ask_above:g} N"
    return f"the expert takes over (acts and labels) at random ticks, probability {cfg.label_rate:g}"


def corrupt_line(n, shift, bound):
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


def deploy_config(args, trial=None):
    """The deployed loop's settings from the flags (``trial``: the seed of that trial)."""
    from sim.loops.deploy import DeployConfig

    period = None if args.period_ms is None else args.period_ms / 1000.0
    start, data_start = stream_position(args)
    return DeployConfig(samples=args.samples, stream=args.stream, episodes=args.episodes,
                        seed=args.seed if trial is None else trial_seed(args.seed, trial), period=period,
                        changes=tuple(getattr(args, "_changes", ())),
                        fault_rate=args.fault_rate, fallback=args.fallback, sigma_data=args.sigma_data,
                        outlier_rate=args.outlier_rate, start=start, data_start=data_start, labels=args.labels,
                        ask_above=args.ask_above, label_rate=args.label_rate, probe=args.probe,
                        probe_memory=args.probe_memory, probe_max=args.probe_max)


def _probe_record(cfg, task):
    """The probing settings of a run, for its JSON (gain 0: no probing)."""
    return {"probe": cfg.probe_gain(task), "probe_memory": cfg.probe_memory, "probe_max_N": cfg.probe_max}


# ---------------------------------------------------------------- several trials
def run_trials(args, task, name):
    """Several deployed learning runs, each with its own seed (``trial_seed``); mean success per checkpoint."""
    from sim.loops.deploy import run_deployment
    from sim.loops.progress import Progress

    results = []
    with Progress(args.trials, f"{args.method} trials", enabled=args.progress) as bar:
        for t in range(args.trials):
            args.interrupted_after = f"{t} of {args.trials} trials"     # for the Ctrl-C message
            controller = fl.make_controller(args, task)
            results.append(run_deployment(controller, task, deploy_config(args, trial=t)))
            bar.update(1)
    per_trial = [res.rows for res in results]
    downweighted = [res.downweighted for res in results]
    changes = [res.changes for res in results]
    corrupt = [(res.corrupt, res.corrupt_shift, res.corrupt_bound) for res in results]
    marks = [r["samples"] for r in per_trial[0]]
    succ = np.array([[r["success_rate"] for r in rows] for rows in per_trial])      # [trials, checkpoints]
    p50 = np.array([rows[-1]["update_p50_us"] for rows in per_trial], dtype=float)
    print(f"{args.method} on {name}, {args.trials} trials x {args.samples} samples, {args.episodes} episodes each")
    print(f"{'samples':>8} {'mean success':>13} {'min':>6} {'max':>6}")
    for j, m in enumerate(marks):
        print(f"{m:>8} {succ[:, j].mean():>13.3f} {succ[:, j].min():>6.2f} {succ[:, j].max():>6.2f}")
    robust = (f"; labels down-weighted below 1/2: {sum(downweighted)} in all ({max(downweighted)} at most in one "
              f"trial); changes detected: {sum(changes)} in all ({max(changes)} at most in one trial)"
              if has_robust_head(args.method) else "")
    print(f"update latency p50 (median over trials): {np.nanmedian(p50):.0f} us{robust}")
    if sum(n for n, _, _ in corrupt):
        _, shift, bound = max(corrupt, key=lambda t: t[1] / t[2] if t[2] else -1.0)
        print(corrupt_line(sum(n for n, _, _ in corrupt), shift, bound))
    if args.json:
        fl.write_json(args.json, {
            "method": args.method, "system": name, "episodes": args.episodes, "seed": args.seed,
            "trials": args.trials, "samples": args.samples, "stream": args.stream,
            **_probe_record(deploy_config(args), task), "trial_seeds": [trial_seed(args.seed, t) for t in range(args.trials)],
            "checkpoints": marks, "success_rate": succ[:, -1].mean(),
            "success_per_trial": succ, "downweighted_per_trial": downweighted, "changes_per_trial": changes,
            "corrupt_per_trial": [dict(zip(("labels", "shift_N", "bound_N"), t)) for t in corrupt],
            "per_trial": per_trial})
    _write_files(args, per_trial, [trial_seed(args.seed, t) for t in range(args.trials)],
                 f"{args.method} on {name}, {args.trials} trials (mean, band = min..max)")
    return 0


def _write_files(args, per_trial, seeds, title):
    """--csv and --plot."""
    from sim.cli.run_files import write_csv, write_plot

    if args.csv:
        write_csv(args.csv, per_trial, seeds)
        print(f"wrote {args.csv}")
    if args.plot:
        write_plot(args.plot, per_trial, title)
        print(f"wrote {args.plot}")


# ---------------------------------------------------------------- one run
def run_learning(args, task, name):
    """One deployed learning run with the progress table."""
    controller = fl.make_controller(args, task)
    resumed = load_state(args, controller)
    cfg = deploy_config(args)
    _print_header(args, task, name, cfg)
    res = _deploy_with_table(args, task, controller, cfg)
    _print_summary(args, name, controller, cfg, res)
    save_state(args, controller, res.ticks)
    if args.json:
        fl.write_json(args.json, {
            "method": args.method, "system": name, "episodes": cfg.episodes, "seed": args.seed,
            "samples": cfg.samples, "start": cfg.start, "stream": cfg.stream, "fault_rate": cfg.fault_rate,
            "fallback": cfg.fallback, **_probe_record(cfg, task), "resumed": resumed, "success_rate": res.rows[-1]["success_rate"],
            "checkpoints": res.rows, **res.summary(),
        })
    _write_files(args, [res.rows], [args.seed], f"{args.method} on {name}")
    return 0


def _print_header(args, task, name, cfg):
    tau_ms = 1000 * task.params.tau
    deadline = "" if cfg.period is None else f", a deadline of {1000 * cfg.period:g} ms per tick"
    after = f" after the saved run's {cfg.start}" if cfg.start else ""
    print(f"{args.method} on {name}: {cfg.samples} ticks{after} ({who_labels(cfg)}); the plant steps every "
          f"{tau_ms:g} ms{deadline}; success over {cfg.episodes} episodes at each checkpoint")
    for change in cfg.changes:
        print(f"  change {change.describe()}")
    print(TABLE_HEAD + (ONPOLICY_HEAD if cfg.stream == "onpolicy" else ""))


def _deploy_with_table(args, task, controller, cfg):
    """``run_deployment`` with a table row per checkpoint, the progress bar or the view, and
    Ctrl-C between ticks (saving what was learned so far with ``--save-state``)."""
    from sim.loops.deploy import run_deployment
    from sim.loops.progress import Progress

    onpolicy = cfg.stream == "onpolicy"
    view = None
    done = [0]                        # samples this run has learned (for a save on Ctrl-C)
    stop = DeferredInterrupt()        # Ctrl-C stops between ticks, never inside an update
    with Progress(cfg.samples, f"{args.method} learning", enabled=args.progress and not args.view) as bar:
        def on_checkpoint(row):
            bar.clear()
            print(table_row(row, onpolicy, has_robust_head(args.method)), flush=True)

        def on_tick(state, force, res):
            bar.update(1)
            args.interrupted_after = f"{res.ticks} samples"
            done[0] = res.ticks
            stop.check()
            return True if view is None else view.tick(state, force, res)

        if args.view:
            view = _LiveView(task, controller, cfg, args.method, args.frames)
        try:
            with stop:
                res = run_deployment(controller, task, cfg, on_checkpoint=on_checkpoint, on_tick=on_tick)
                stop.check()
        except KeyboardInterrupt:
            if args.save_state:       # what was learned so far, and where the stream stopped; atomic
                save_run(args, controller, done[0])
                print(f"saved the head learned so far ({controller.n_updates} updates) to {args.save_state}",
                      file=sys.stderr)
            raise
        finally:
            if view is not None:
                view.close()
    return res


class _LiveView:
    """``kbt run --view``: the viewer once per tick, with the strip chart's figures measured at
    the state the force was computed for, against the expert of the plant in force."""

    def __init__(self, task, controller, cfg, method, frames=None):
        from sim.view.live import Viewer

        self.viewer = Viewer(task, method=method, headless=frames is not None, frames_dir=frames, changes=cfg.changes)
        self.task, self.controller, self.cfg = task, controller, cfg
        self.expert, self.plant_at = None, None
        self.taken = 0                  # expert take-overs so far (the view marks a new one)
        self.before = None              # the state the tick's force was computed for

    def _expert(self, tick):
        """The expert of the plant in force at ``tick`` (rebuilt after a plant change)."""
        params = plant_in_force(self.cfg.changes, tick, self.task.params)
        if params is not self.plant_at:
            self.expert, self.plant_at = expert_for(replace(self.task, params=params)), params
        return self.expert

    def tick(self, state, force, res):
        from sim.loops.loop import act_one
        from sim.view.live import force_std, noise_of

        at = state if self.before is None else self.before
        for change in (c for c in self.cfg.changes if c.at == res.ticks - 1):     # drawn and marked from now on
            self.viewer.change(change, res.ticks * self.task.params.tau)     # the time show() records
        pilot = res.takeovers > self.taken
        self.taken = res.takeovers
        reply = self.viewer.show(state, force, learned=res.updates, force_std=force_std(self.controller, at),
                                 pilot=pilot, takeovers=res.takeovers if self.cfg.labels != "always" else None,
                                 expert_force=act_one(self._expert(res.ticks - 1), at),
                                 noise=noise_of(self.controller))
        self.before = reply if isinstance(reply, np.ndarray) else np.array(state, dtype=float)
        return reply

    def close(self):
        self.viewer.close()


def _us(v):
    """A latency in microseconds, or '-' when nothing was timed (no update in the run)."""
    return "-" if v is None or not np.isfinite(v) else f"{v:.0f} us"


def _print_summary(args, name, controller, cfg, res):
    last = res.rows[-1]
    s = res.summary()
    total = f", {cfg.start + res.ticks} samples with the saved run's" if cfg.start else ""
    robust = (f"{res.downweighted} down-weighted below 1/2, {res.changes} changes detected, "
              if hasattr(controller, "n_downweighted") else "")
    who = (f" from {res.labels} labels ({res.takeovers} expert take-overs, {res.plant_failures} falls while "
           f"learning)" if cfg.stream == "onpolicy" else "")
    print(f"{args.method} on {name}: success {last['success_rate']:.3f} after {res.updates} updates{who}{total} "
          f"({robust}{res.rejected} rejected as non-finite, {res.sensor_faults} sensor faults, "
          f"{res.action_faults} action faults, {res.deadline_misses} deadline misses of {res.ticks} ticks, "
          f"longest run {res.longest_miss_run}; act p50 {_us(s['act_p50_us'])}, update p50 "
          f"{_us(s['update_p50_us'])})")
    if res.corrupt:
        print(corrupt_line(res.corrupt, res.corrupt_shift, res.corrupt_bound))
