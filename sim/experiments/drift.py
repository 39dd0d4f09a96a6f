"""Continual adaptation: every method learning through a schedule of changes.

Each trial is one deployed run (``sim.loops.deploy.run_deployment``) with a
schedule of ``sim.world.schedule.Change``: the plant or the label noise changes at
fixed ticks, the labels come from the expert of the plant in force, and every
checkpoint is measured on the plant in force: success over seeded episodes and
the held-out force RMSE against that plant's expert (``rmse_expert_N``), with
the labels down-weighted and the changes the head detected so far.

Schedules (``SCHEDULES``):

* ``balance``: TARGET (1, 1, 5) -> (1, 0.5, 2) at 400 -> TARGET at 800, i.i.d.;
* ``balance-cart``: TARGET -> a heavier cart with a shorter pole (2, 0.5, 2.5)
  at 400, i.i.d.;
* ``swingup``: the swing-up task's TARGET -> its second shift (3, 0.1, 0.5)
  at 1000, on-policy (``swingup_trials`` trials: each costs about five balance trials);
  the change comes mid-episode, the pole balanced upright;
* ``swingup-swap``: the same plants and ticks, the change between episodes (a swapped cart
  and pole): a new episode starts hanging at 1000 (not run unless asked for);
* ``noise``: balancing TARGET, label noise 0 -> 4 N^2 at 400 -> 0 at 1200, i.i.d.

After each change: the samples until the mean success is >= 0.99 and stays so
until the next change (``samples_to_099``), and the RMSE 200 samples after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from controller.checks import check_int
from sim.loops.methods import MethodSettings, is_learner, make_controller, parse_method
from sim.world.schedule import Change
from sim.experiments.trial_store import JsonTrialStore, _spec_settings

__all__ = ["DriftSpec", "SCHEDULES", "DEFAULT_SCHEDULES", "run_drift", "trial_store", "samples_to_level"]

#: name -> (task, stream, samples, changes); a change is (tick, plant (m_c, m_p, l_p) or None,
#: label-noise variance or None[, True: between episodes])
SCHEDULES = {
    "balance": ("balance", "iid", 1200, ((400, (1.0, 0.5, 2.0), None), (800, (1.0, 1.0, 5.0), None))),
    "balance-cart": ("balance", "iid", 800, ((400, (2.0, 0.5, 2.5), None),)),
    "swingup": ("swingup", "onpolicy", 2000, ((1000, (3.0, 0.1, 0.5), None),)),
    "noise": ("balance", "iid", 1600, ((400, None, 4.0), (1200, None, 0.0))),
    "swingup-swap": ("swingup", "onpolicy", 2000, ((1000, (3.0, 0.1, 0.5), None, True),)),
}
#: the schedules a run has when not told
DEFAULT_SCHEDULES = ("balance", "balance-cart", "swingup", "noise")
DRIFT_METHODS = ("kbt", "kbt-softmax", "rls", "retrain-10", "blob-10")
#: methods that cost about 10 ms or more per sample: they run ``heavy_trials``
HEAVY = ("retrain", "blob")
#: checkpoints after each change (samples since the change)
AFTER = (10, 25, 50, 100, 200, 400)


@dataclass(frozen=True)
class DriftSpec:
    """Settings of ``kbt experiment drift`` (validated on creation)."""

    methods: tuple = DRIFT_METHODS
    schedules: tuple = DEFAULT_SCHEDULES
    trials: int = 20
    heavy_trials: int = 3
    swingup_trials: int = 5     # a swing-up trial costs about five balance trials
    episodes: int = 100
    seed: int = 0
    scale: float = 1.0          # quick runs shorten every schedule by this factor
    settings: MethodSettings = MethodSettings()

    def __post_init__(self):
        for m in self.methods:
            if not is_learner(m):
                raise ValueError(f"methods: {m!r} does not learn")
        for s in self.schedules:
            if s not in SCHEDULES:
                raise ValueError(f"schedules: expected among {', '.join(SCHEDULES)} but found {s!r}")
        for name in ("trials", "heavy_trials", "swingup_trials", "episodes"):
            check_int(name, getattr(self, name), low=1)
        check_int("seed", self.seed, low=0)
        if not 0 < self.scale <= 1:
            raise ValueError(f"scale: expected a factor in (0, 1] but found {self.scale}")

    @classmethod
    def quick(cls, **kw):
        """CI size: kbt and rls, 2 trials, every schedule at a quarter of its length, 10 episodes."""
        base = dict(methods=("kbt", "rls"), trials=2, heavy_trials=1, swingup_trials=1, episodes=10, scale=0.25)
        base.update(kw)
        return cls(**base)

    def trials_of(self, method, schedule):
        """Trials of ``method`` on ``schedule``: the fewest of the counts that apply."""
        n = self.heavy_trials if parse_method(method)[0] in HEAVY else self.trials
        return min(n, self.swingup_trials) if SCHEDULES[schedule][0] == "swingup" else n

    def schedule(self, name):
        """(task, stream, samples, changes as ``Change``, checkpoints) of schedule ``name``."""
        from sim.world.task import PLANTS, TASKS

        task_name, stream, samples, changes = SCHEDULES[name]
        task = TASKS[task_name].on(PLANTS[task_name]["target"])
        base = task.params
        n = max(int(round(samples * self.scale)), 20)
        out, marks = [], set()
        ticks = [0] + [max(int(round(c[0] * self.scale)), 10) for c in changes] + [n]
        for (_, plant, noise, *swap), tick in zip(changes, ticks[1:-1]):
            params = None if plant is None else base.with_(m_c=plant[0], m_p=plant[1], l_p=plant[2])
            out.append(Change(tick, params=params, sigma_data=noise, restart=bool(swap and swap[0])))
        for a, b in zip(ticks[:-1], ticks[1:]):
            marks.update(a + d for d in AFTER if a + d < b)
            marks.add(b)
        return task, stream, n, tuple(out), tuple(sorted(m for m in marks if m > 0))


def _trial_seed(spec, trial):
    return 1000 * spec.seed + trial


def _drift_job(args):
    """One trial: (spec, schedule, method, trial) -> (schedule, method, trial, record)."""
    from sim.loops.deploy import DeployConfig, run_deployment

    spec, name, method, trial = args
    task, stream, n, changes, marks = spec.schedule(name)
    controller = make_controller(method, task, spec.settings, seed=trial)
    cfg = DeployConfig(samples=n, stream=stream, episodes=spec.episodes, seed=_trial_seed(spec, trial),
                       changes=changes, checkpoints=marks)
    rows = run_deployment(controller, task, cfg).rows
    return name, method, trial, {key: [r[key] for r in rows] for key in
                                 ("samples", "success_rate", "rmse_expert_N", "downweighted", "changes", "falls")}


def samples_to_level(record, change_ticks, end, level=0.99):
    """Per change at tick c: samples from c to the first checkpoint after it whose success is
    >= ``level`` and stays so until the next change (None if never)."""
    ticks = np.asarray(record["samples"])
    succ = np.asarray(record["success_rate"])
    out = []
    for c, nxt in zip(change_ticks, list(change_ticks[1:]) + [end + 1]):
        idx = np.flatnonzero((ticks > c) & (ticks < nxt))
        got = None
        for j in range(len(idx)):
            if np.all(succ[idx[j:]] >= level):
                got = int(ticks[idx[j]] - c)
                break
        out.append(got)
    return out


def run_drift(spec: DriftSpec, jobs=1, progress=True, scheduler=None, store=None):
    """Run every schedule, method and trial; returns a JSON-ready dict."""
    from sim.experiments.trials import run_jobs

    jobs = check_int("jobs", jobs, low=1)
    work = [(spec, s, m, t) for m in sorted(spec.methods, key=lambda m: -(parse_method(m)[1] or 0))
            for s in spec.schedules for t in range(spec.trials_of(m, s))]
    results = run_jobs(_drift_job, work, workers=jobs, scheduler=scheduler, label="drift trials",
                       progress=progress, store=store)
    out = {"experiment": "drift", "seed": spec.seed, "trials": spec.trials, "heavy_trials": spec.heavy_trials,
           "swingup_trials": spec.swingup_trials,
           "episodes": spec.episodes, "schedules": {}}
    for s in spec.schedules:
        task, stream, n, changes, marks = spec.schedule(s)
        entry = {"task": task.name, "stream": stream, "samples": n, "checkpoints": [0] + list(marks),
                 "changes": [c.describe() for c in changes], "change_ticks": [c.at for c in changes],
                 "methods": {}}
        for m in spec.methods:
            recs = [r[3] for r in sorted((r for r in results if r[0] == s and r[1] == m), key=lambda r: r[2])]
            e = {key: [rec[key] for rec in recs] for key in recs[0]}
            e["samples_to_099"] = [samples_to_level(rec, entry["change_ticks"], n) for rec in recs]
            entry["methods"][m] = e
        out["schedules"][s] = entry
    return out


class DriftTrialStore(JsonTrialStore):
    """Trials of ``run_drift``: files ``SCHEDULE-METHOD-TRIAL.json``."""

    def key(self, job):
        _, schedule, method, trial = job
        return f"{schedule}-{method}-{int(trial)}"

    def encode(self, result):
        schedule, method, trial, record = result
        return {"schedule": schedule, "method": method, "trial": int(trial), "record": record}

    def decode(self, data):
        return data["schedule"], data["method"], data["trial"], data["record"]


def trial_store(directory, spec, *, resume=False):
    """The resumable folder of a drift run: methods, schedules and trial counts may grow on resume."""
    return DriftTrialStore(directory, _spec_settings("drift", spec, ("methods", "schedules", "trials",
                                                                     "heavy_trials", "swingup_trials")),
                           resume=resume)
