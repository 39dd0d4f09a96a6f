"""Learning on the job: every method learning from expert labels on the
states it visits itself (the on-policy stream of the deployed loop).

Each trial is one deployed run (``sim.loops.deploy.run_deployment``) of ``ticks``
control periods on the task's changed plant, the learning controller acting
from the first tick. Three ways to ask for labels (``labels``):

* ``always``: the expert labels every visited state (one label per tick);
* ``uncertain``: the expert (the safety pilot) takes over a tick only when
  the controller's epistemic standard deviation at the state is above
  ``ask_above`` N; its action is applied and is the label;
* ``random``: the expert takes over at random ticks, with the probability
  that gives the same expected number of labels as ``uncertain`` did on the
  same trial (equal label budgets).

Per checkpoint (tick count): success over seeded evaluation episodes, labels
used, expert take-overs, and falls (episodes of the deployed plant that
failed while learning). Variants are named ``method`` (always) and
``method+uncertain`` / ``method+random``.

The same runs make ``kbt experiment swingup`` (``swingup_spec``): every
method adapting to the swing-up task's changed plant, on the on-policy
stream (DAgger-style: the learner acts, the expert labels what it visits)
and, as ``method@iid``, on i.i.d. draws from the states the TARGET expert
visits in its own episodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from controller.checks import check_int, check_positive
from sim.loops.methods import MethodSettings, is_learner, make_controller, parse_method
from sim.loops.stream import checkpoints_every
from sim.experiments.trial_store import JsonTrialStore, _spec_settings
from sim.world.task import TASKS

__all__ = ["OnPolicySpec", "run_onpolicy", "labels_to_reach", "swingup_spec", "trial_store", "DeployedTrialStore", "ONPOLICY_METHODS", "SWINGUP_METHODS"]

ONPOLICY_METHODS = ("kbt", "kbt-softmax", "rls", "retrain-10", "retrain-25", "retrain-100", "blob-10", "blob-100")
#: methods with an epistemic variance, which can ask for labels only where they are unsure
GATED_METHODS = ("kbt", "kbt-softmax", "rls")
SWINGUP_METHODS = ("kbt", "kbt-softmax", "rls", "retrain-10", "retrain-100", "blob-10")
STREAMS = ("onpolicy", "iid")


@dataclass(frozen=True)
class OnPolicySpec:
    """Settings of ``kbt experiment onpolicy`` (validated on creation).

    methods : learners that label every tick
    gated : learners also run with ``uncertain`` and ``random`` labels
    task : "balance" (TARGET) or "swingup" (its changed plant)
    streams : "onpolicy" and/or "iid" (the latter: variants ``method@iid``)
    trials, ticks, every, episodes, seed : trial count, ticks per trial,
        checkpoint spacing (ticks), evaluation episodes per checkpoint, base seed
    ask_above : float  the epistemic standard deviation (N) above which the expert takes over
    probe : float      gain of the probing force on the learner's on-policy actions
        (``sim.loops.deploy.DeployConfig.probe``), >= 0; None: the task's default (balance 1, swing-up 2)
    """

    methods: tuple = ONPOLICY_METHODS
    gated: tuple = ("kbt",)
    task: str = "balance"
    streams: tuple = ("onpolicy",)
    trials: int = 20
    ticks: int = 400
    every: int = 20
    episodes: int = 100
    seed: int = 0
    ask_above: float = 1.0
    probe: float | None = None
    settings: MethodSettings = MethodSettings()

    def __post_init__(self):
        for m in self.methods:
            if not is_learner(m):
                raise ValueError(f"methods: {m!r} does not learn")
        for m in self.gated:
            if m not in GATED_METHODS:
                raise ValueError(f"gated: expected methods among {', '.join(GATED_METHODS)} but found {m!r}")
        for st in self.streams:
            if st not in STREAMS:
                raise ValueError(f"streams: expected among {', '.join(STREAMS)} but found {st!r}")
        if self.gated and "onpolicy" not in self.streams:
            raise ValueError("gated: asking for labels needs the on-policy stream in streams")
        if self.task not in TASKS:
            raise ValueError(f"task: expected one of {', '.join(TASKS)} but found {self.task!r}")
        for name in ("trials", "ticks", "every", "episodes"):
            check_int(name, getattr(self, name), low=1)
        check_int("seed", self.seed, low=0)
        check_positive("ask_above", self.ask_above)
        if self.probe is not None:
            check_positive("probe", self.probe, allow_zero=True)

    @classmethod
    def quick(cls, **kw):
        """CI size: KBT, rls and retraining at C = 10, 2 trials of 100 ticks."""
        base = dict(methods=("kbt", "rls", "retrain-10"), trials=2, ticks=100, every=25, episodes=10)
        base.update(kw)
        return cls(**base)

    def marks(self):
        """Checkpoints (ticks): every ``every`` ticks and the last; 0 is always measured."""
        return [m for m in checkpoints_every(self.every, self.ticks) if m > 0]

    def variants(self):
        out = list(self.methods) if "onpolicy" in self.streams else []
        out += [f"{m}@iid" for m in self.methods] if "iid" in self.streams else []
        return out + [f"{m}+{mode}" for m in self.gated for mode in ("uncertain", "random")]


def swingup_spec(quick=False, **kw):
    """``kbt experiment swingup``: every method on the swing-up task's changed plant,
    10 trials of 1000 samples on both streams (quick: 2 trials of 200, three methods)."""
    base = dict(methods=SWINGUP_METHODS, gated=(), task="swingup", streams=STREAMS, trials=10, ticks=1000,
                every=100, episodes=100)
    if quick:
        base.update(methods=("kbt", "rls", "retrain-10"), trials=2, ticks=200, every=100, episodes=10)
    base.update(kw)
    return OnPolicySpec(**base)


def _trial_seed(spec, trial):
    return 1000 * spec.seed + trial


def _task(spec):
    from sim.world.task import PLANTS

    return TASKS[spec.task].on(PLANTS[spec.task]["target"])


def _onpolicy_job(args):
    """One trial: (spec, variant, trial, label_rate) -> (variant, trial, record)."""
    from sim.loops.deploy import DeployConfig, run_deployment

    spec, variant, trial, label_rate = args
    variant_stream, _, iid = variant.partition("@")
    method, _, labels = variant_stream.partition("+")
    task = _task(spec)
    controller = make_controller(method, task, spec.settings, seed=trial)
    cfg = DeployConfig(samples=spec.ticks, stream="iid" if iid else "onpolicy", episodes=spec.episodes,
                       seed=_trial_seed(spec, trial), labels=labels or "always", ask_above=spec.ask_above, label_rate=label_rate or 0.5,
                       probe=spec.probe, checkpoints=tuple(spec.marks()))
    res = run_deployment(controller, task, cfg)
    rows = res.rows
    lat = np.asarray(res.update_seconds)
    return variant, trial, {
        "ticks": [r["samples"] for r in rows],
        "success_rate": [r["success_rate"] for r in rows],
        "labels": [r["labels"] for r in rows],
        "takeovers": [r["takeovers"] for r in rows],
        "falls": [r["falls"] for r in rows],
        "downweighted": [r["downweighted"] for r in rows],
        "changes": [r["changes"] for r in rows],
        "ms_per_label": float(np.median(lat) * 1e3) if lat.size else None,
        "label_rate": label_rate,
    }


def labels_to_reach(record, level=0.99):
    """Labels used at the first checkpoint whose success is >= ``level`` and
    stays so to the end of the trial (None if it never does)."""
    succ = np.asarray(record["success_rate"])
    ok = succ >= level
    for j in range(len(ok)):
        if ok[j:].all():
            return int(record["labels"][j])
    return None


def run_onpolicy(spec: OnPolicySpec, jobs=1, progress=True, scheduler=None, store=None):
    """Run every variant and trial; returns a JSON-ready dict.

    ``random`` trials run after the ``uncertain`` ones, with the label rate
    of the matching ``uncertain`` trial (labels / ticks).
    """
    from sim.experiments.trials import run_jobs
    from sim.loops.deploy import DeployConfig

    jobs = check_int("jobs", jobs, low=1)
    # heaviest methods first so the tail of the run is short
    first = sorted((v for v in spec.variants() if not v.endswith("+random")),
                   key=lambda v: -(parse_method(v.partition("@")[0].partition("+")[0])[1] or 0))
    work = [(spec, v, t, None) for v in first for t in range(spec.trials)]
    results = run_jobs(_onpolicy_job, work, workers=jobs, scheduler=scheduler, label="on-policy trials",
                       progress=progress, store=store)
    by = {(v, t): r for v, t, r in results}
    work = [(spec, f"{m}+random", t, max(by[(f"{m}+uncertain", t)]["labels"][-1], 1) / spec.ticks)
            for m in spec.gated for t in range(spec.trials)]
    if work:
        results += run_jobs(_onpolicy_job, work, workers=jobs, scheduler=scheduler, label="random-label trials",
                            progress=progress, store=store)
    out = {"experiment": "swingup" if spec.task == "swingup" else "onpolicy", "task": spec.task,
           "seed": spec.seed, "trials": spec.trials, "ticks": spec.ticks, "episodes": spec.episodes, "ask_above": spec.ask_above,
           "probe": DeployConfig(stream="onpolicy", probe=spec.probe).probe_gain(_task(spec)),
           "checkpoints": spec.marks(), "variants": {}}
    for v in spec.variants():
        runs = sorted((r for r in results if r[0] == v), key=lambda r: r[1])
        recs = [r[2] for r in runs]
        out["variants"][v] = {key: [rec[key] for rec in recs] for key in recs[0]}
        out["variants"][v]["labels_to_099"] = [labels_to_reach(rec) for rec in recs]
    return out


class DeployedTrialStore(JsonTrialStore):
    """Trials of ``run_onpolicy``: jobs ``(spec, variant, trial, label_rate)``,
    results ``(variant, trial, record)``, files ``VARIANT-TRIAL.json``."""

    def key(self, job):
        _, variant, trial, _ = job
        return f"{variant}-{int(trial)}"

    def encode(self, result):
        variant, trial, record = result
        return {"variant": variant, "trial": int(trial), "record": record}

    def decode(self, data):
        return data["variant"], data["trial"], data["record"]


def trial_store(directory, spec, *, resume=False):
    """The resumable folder of an on-policy / swing-up run (``sim.experiments.trial_store``):
    the methods, gated methods, trial count and streams may grow on resume."""
    return DeployedTrialStore(directory, _spec_settings("deployed", spec, ("methods", "gated", "trials", "streams")),
                              resume=resume)
