"""``kbt experiment adapt``: how fast each learner adapts, counted in labels, and
how it behaves trial by trial (docs/adapt.md).

Per task (balance, swing-up), stream and trial, one deployed run
(``sim.loops.deploy.run_deployment``, every tick labelled, so labels = ticks)
on the task's changed plant, measured at label checkpoints (0, 1, 2, 3, 5,
10, 20, 50, 100, 200 by default):

* success: the share of ``episodes`` seeded evaluation episodes of the plant
  that succeed (the same episodes at every checkpoint of a trial);
* RMSE (N) and Gaussian NLL (nats) on a held-out set of ``heldout`` states
  drawn once per trial, without replacement, from every state the plant's
  expert visits in ``HELDOUT_EPISODES`` seeded episodes of its own (seeds
  apart from the stream's and the evaluation's), labelled by that expert's
  force clipped to +-u_max. The NLL is that of N(mean, var) with the
  controller's predictive mean and total variance (``predict``: epistemic
  plus the learned noise; ``kbt-softmax``: the mean and variance of its
  categorical predictive over the force bins, a moment-matched Gaussian),
  the variance floored at ``controller.calibration.VAR_FLOOR``.

Streams (``sim.loops.deploy``): ``iid`` -- i.i.d. states labelled by the
expert: uniform in the sampling box on balance (the paper's), uniform draws
from the states the expert visits on swing-up; ``onpolicy`` -- the states
the learner itself visits while acting (probing at the task's default gain).

Variants (``VARIANTS``): the learner and its prior.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from controller.checks import check_int, check_positive
from sim.loops.methods import MethodSettings
from sim.experiments.trial_store import JsonTrialStore, _spec_settings
from sim.world.task import TASKS

__all__ = ["AdaptSpec", "VARIANTS", "DEFAULT_VARIANTS", "SET_VARIANTS", "LABELS_AT", "run_adapt", "heldout_set", "heldout_metrics", "non_monotone",
           "trial_store", "rls_family_prior", "make_variant", "REACH", "STAY"]

#: variant -> what it is (the command's help and the docs say the same)
VARIANTS = {
    "kbt": "KBT with the shipped (paper) weights and today's prior: the pre-trained read-out w_0 with v I on "
           "balance; on swing-up the shipped default, the family covariance with mean w_0",
    "kbt@family": "KBT with the task's family prior: the family's mean read-out and Cov + eps I "
                  "(controller/data/family_TASK.npz)",
    "rls": "recursive least squares on the state, the SOURCE LQR gain with v I",
    "rls@family": "rls with a prior built from the same family: the least-squares read-outs of the family "
                  "plants' experts through rls's inputs [s_norm; 1], their mean and Cov + eps I",
    "kbt-softmax": "the paper's softmax head over force bins (its prior: the pre-trained output layer)",
    "kbt@alpaca": "KBT on the swing-up weight set swingup-alpaca (T_1 and prior trained on the ALPaCA objective "
                  "over 40 swing-up plants): the learned prior's mean and covariance, head noise fixed at R = 3 N^2; "
                  "swing-up only",
    "kbt@alpaca-region": "kbt@alpaca with a read-out of its own near upright (within the expert's hand-over "
                         "angle) and away from it, each from the learned prior, and the labels away from "
                         "upright 30x noisier unless e^2 / (q + R) > 9, a label beyond 2 sigma of the "
                         "prediction counting less (robust weight c = 2); NumPy only (no kernel, no C "
                         "export); swing-up only",
}
#: the variants a run has when not told (``--methods``); the others are asked for by name
DEFAULT_VARIANTS = ("kbt", "kbt@family", "rls", "rls@family", "kbt-softmax")
#: variant -> the shipped weight set it runs on (``controller.weight_sets``; it runs on that set's task only)
SET_VARIANTS = {"kbt@alpaca": "swingup-alpaca", "kbt@alpaca-region": "swingup-alpaca"}
LABELS_AT = (0, 1, 2, 3, 5, 10, 20, 50, 100, 200)
STREAMS = ("iid", "onpolicy")
#: per trial: once success reaches REACH, no later checkpoint may be below STAY
REACH, STAY = 0.95, 0.9
HELDOUT_EPISODES = 10


@dataclass(frozen=True)
class AdaptSpec:
    """Settings of ``kbt experiment adapt`` (validated on creation).

    variants : names of ``VARIANTS`` (default ``DEFAULT_VARIANTS``); a ``SET_VARIANTS`` one runs on its set's task only
    tasks, streams : among ("balance", "swingup") and ("iid", "onpolicy")
    labels_at : increasing label counts, >= 0 (0 is always measured); the last is the run's length
    trials, episodes, seed : trials, evaluation episodes per checkpoint, base seed (trial t: 1000 seed + t)
    heldout : held-out expert-labelled states per trial
    probe : probing gain on the on-policy stream (None: the task's default)
    weights : transformer weights of the kbt variants, a file or a shipped set's name (None: the task's shipped file)
    """

    variants: tuple = DEFAULT_VARIANTS
    tasks: tuple = ("balance", "swingup")
    streams: tuple = STREAMS
    labels_at: tuple = LABELS_AT
    trials: int = 20
    episodes: int = 100
    seed: int = 0
    heldout: int = 500
    probe: float | None = None
    weights: str | None = None

    def __post_init__(self):
        if not self.variants:
            raise ValueError("variants: expected at least one")
        for v in self.variants:
            if v not in VARIANTS:
                raise ValueError(f"variants: expected among {', '.join(VARIANTS)} but found {v!r}")
            if v == "kbt@family" and self.weights is not None:
                raise ValueError("variants: kbt@family uses the family file made for the shipped weights; "
                                 "with other weights give kbt")
            if v in SET_VARIANTS and self.weights is not None:
                raise ValueError(f"variants: {v} runs on its own weights ({SET_VARIANTS[v]}); with other weights "
                                 "give kbt")
        for name, allowed in (("tasks", tuple(TASKS)), ("streams", STREAMS)):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"{name}: expected at least one of {', '.join(allowed)}")
            for x in values:
                if x not in allowed:
                    raise ValueError(f"{name}: expected among {', '.join(allowed)} but found {x!r}")
        for v in self.variants:
            task = _set_task(v)
            if task is not None and task not in self.tasks:
                raise ValueError(f"variants: {v} runs on the {task} task only (its weights are pre-trained for it); "
                                 f"give --task {task} or leave it out")
        marks = list(self.labels_at)
        if not marks:
            raise ValueError("labels_at: expected at least one label count")
        for m in marks:
            check_int("labels_at", m, low=0, high=1_000_000)
        if marks != sorted(set(marks)):
            raise ValueError(f"labels_at: expected increasing label counts but found {' '.join(map(str, marks))}")
        if marks[-1] < 1:
            raise ValueError("labels_at: expected a label count >= 1")
        check_int("trials", self.trials, low=1)
        check_int("episodes", self.episodes, low=1)
        check_int("seed", self.seed, low=0)
        check_int("heldout", self.heldout, low=1, high=100_000)
        if self.probe is not None:
            check_positive("probe", self.probe, allow_zero=True)

    @classmethod
    def quick(cls, **kw):
        """CI size: 1 trial, 10 episodes, labels 0 1 3 10 30, 200 held-out states."""
        base = dict(trials=1, episodes=10, labels_at=(0, 1, 3, 10, 30), heldout=200)
        base.update(kw)
        return cls(**base)

    def marks(self):
        """Label checkpoints (0 always included)."""
        return sorted({0, *self.labels_at})

    def jobs(self):
        """(task, stream, variant, trial) of every trial, the heaviest task first."""
        return [(t, s, v, i) for t in sorted(self.tasks, key=lambda t: t != "swingup") for s in self.streams
                for v in self.variants if _set_task(v) in (None, t) for i in range(self.trials)]


def _set_task(variant):
    """The task a ``SET_VARIANTS`` variant runs on (None: any task)."""
    from controller.weight_sets import WEIGHT_SETS

    name = SET_VARIANTS.get(variant)
    return None if name is None else WEIGHT_SETS[name].task


def _task(name):
    from sim.world.task import PLANTS

    return TASKS[name].on(PLANTS[name]["target"])


def trial_seed(spec, trial):
    return 1000 * spec.seed + trial


@functools.lru_cache(maxsize=None)
def rls_family_prior(task_name):
    """(mean, P0) of ``rls@family`` on a task: the least-squares read-outs, through rls's
    inputs, of the experts of the plants of the task's shipped family file, fitted on the
    states the family was made from (``sim.pretraining.family``: box states on balance,
    the expert's own episodes on swing-up; the file's seed), P0 = Cov + FAMILY_EPS I.
    Computed once per process."""
    import json

    from sim.loops.family_prior import FAMILY_EPS, family_path, member_readout, prior_covariance, prior_mean
    from sim.loops.methods import make_controller
    from sim.world.cartpole import CartPoleParams
    from sim.world.experts import expert_for

    task = _task(task_name)
    with np.load(family_path(task_name)) as f:
        plants = f["plants"].astype(float)
        seed = int(json.loads(str(f["meta"])).get("seed", 0))
    c = make_controller("rls", task)
    p0 = task.params
    W = []
    for m_c, m_p, l_p in plants:
        member = task.on(CartPoleParams(m_c=float(m_c), m_p=float(m_p), l_p=float(l_p), g=p0.g, tau=p0.tau,
                                        integrator=p0.integrator, u_max=p0.u_max))
        expert = expert_for(member)
        W.append(member_readout(c, member, expert, seed, 10))
    W = np.array(W)
    return prior_mean(W), prior_covariance(W, FAMILY_EPS)


def make_variant(variant, task_name, weights=None, seed=0, task=None):
    """A fresh controller of ``variant`` (``VARIANTS``, or any ``kbt run`` method) on the task's
    changed plant, or on ``task`` (a ``Task`` of ``task_name`` on another plant)."""
    from sim.loops.methods import family_prior, make_controller

    task = _task(task_name) if task is None else task
    if variant == "kbt@alpaca-region":
        from sim.loops.methods import REGION_ROBUST, make_region_kbt

        return make_region_kbt(task, SET_VARIANTS[variant], robust=REGION_ROBUST)
    if variant in SET_VARIANTS:          # the set's learned prior and head noise (sim.loops.methods.kbt_head)
        return make_controller("kbt", task, MethodSettings(weights=SET_VARIANTS[variant]), seed=seed)
    method, _, prior = variant.partition("@")
    if method == "kbt":
        c = make_controller("kbt", task, MethodSettings(weights=weights, family=False if prior else None), seed=seed)
        if prior:
            family = family_prior(c, task, MethodSettings(weights=weights, family=True, family_mean=True))
            if family is None:
                raise ValueError(f"{variant}: the {task_name} task has no family prior for these weights")
            c.use_prior(*family)
        return c
    if method == "rls":
        c = make_controller("rls", task, MethodSettings(), seed=seed)
        if prior:
            c.use_prior(*rls_family_prior(task_name))
        return c
    return make_controller(method, task, MethodSettings(weights=weights), seed=seed)


def heldout_set(task_name, seed, n):
    """``n`` held-out (states (n, 4), forces (n,)): states drawn without replacement from every
    state the task's expert visits in ``HELDOUT_EPISODES`` episodes of the changed plant (seeded
    by ``[seed, 11]``), labelled by the expert, clipped to +-u_max."""
    from sim.world.data import trajectory_states
    from sim.world.experts import expert_for

    task = _task(task_name)
    expert = expert_for(task)
    pool = trajectory_states(task, expert, [seed, 11], episodes=HELDOUT_EPISODES)
    rng = np.random.default_rng([seed, 12])
    S = pool[rng.choice(len(pool), size=min(n, len(pool)), replace=False)]
    u = task.params.u_max
    return S, np.clip(np.asarray(expert.act(S), dtype=float).reshape(len(S)), -u, u)


def heldout_metrics(controller, S, F):
    """{"rmse": N, "nll": nats} of the controller's predictive N(mean, var) at held-out (S, F)."""
    from controller.calibration import VAR_FLOOR, gaussian_nll, rmse

    mean, var = controller.predict(S)
    mean = np.asarray(mean, dtype=float)
    if not np.all(np.isfinite(mean)):
        return {"rmse": float("nan"), "nll": float("nan")}
    return {"rmse": rmse(mean, F), "nll": gaussian_nll(mean, np.maximum(var, VAR_FLOOR), F)}


def non_monotone(success, reach=REACH, stay=STAY):
    """True when a trial's success series, once at or above ``reach``, later falls below ``stay``."""
    reached = False
    for s in success:
        if reached and s < stay:
            return True
        reached = reached or s >= reach
    return False


def _adapt_job(args):
    """One trial: (spec, task, stream, variant, trial) -> (task, stream, variant, trial, record)."""
    from sim.loops.deploy import DeployConfig, run_deployment

    spec, task_name, stream, variant, trial = args
    seed = trial_seed(spec, trial)
    S, F = heldout_set(task_name, seed, spec.heldout)
    controller = make_variant(variant, task_name, spec.weights, seed=trial)
    marks = spec.marks()
    cfg = DeployConfig(samples=marks[-1], stream=stream, episodes=spec.episodes, seed=seed, labels="always",
                       probe=spec.probe, checkpoints=tuple(m for m in marks if m > 0))
    res = run_deployment(controller, _task(task_name), cfg, measure=lambda c: heldout_metrics(c, S, F))
    rows = res.rows
    return task_name, stream, variant, trial, {
        "labels": [r["labels"] for r in rows],
        "success": [r["success_rate"] for r in rows],
        "rmse": [r["metrics"]["rmse"] for r in rows],
        "nll": [r["metrics"]["nll"] for r in rows],
        "falls": [r["falls"] for r in rows],
        "rejected": res.rejected,
    }


def run_adapt(spec: AdaptSpec, jobs=1, progress=True, scheduler=None, store=None):
    """Run every (task, stream, variant, trial); returns a JSON-ready dict:
    ``runs[task][stream][variant]`` = {"success": [[per checkpoint] per trial], "rmse", "nll", ...}."""
    from sim.experiments.trials import run_jobs

    jobs = check_int("jobs", jobs, low=1)
    work = [(spec, *j) for j in spec.jobs()]
    results = run_jobs(_adapt_job, work, workers=jobs, scheduler=scheduler, label="adapt trials",
                       progress=progress, store=store)
    out = {"experiment": "adapt", "seed": spec.seed, "trials": spec.trials, "episodes": spec.episodes,
           "heldout": spec.heldout, "heldout_episodes": HELDOUT_EPISODES, "weights": spec.weights,
           "trial_seeds": [trial_seed(spec, t) for t in range(spec.trials)],
           "checkpoints": spec.marks(), "reach": REACH, "stay": STAY, "variants": list(spec.variants),
           "descriptions": {v: VARIANTS[v] for v in spec.variants}, "runs": {}}
    for task, stream, variant, trial, rec in results:
        marks = spec.marks()
        if rec["labels"] != marks:
            raise RuntimeError(f"{task} {stream} {variant} trial {trial}: labels {rec['labels']} at checkpoints "
                               f"{marks} (a label was refused)")
        cell = out["runs"].setdefault(task, {}).setdefault(stream, {}).setdefault(
            variant, {"trial": [], "success": [], "rmse": [], "nll": [], "falls": [], "rejected": []})
        cell["trial"].append(trial)
        for k in ("success", "rmse", "nll", "falls", "rejected"):
            cell[k].append(rec[k])
    for task in out["runs"].values():
        for stream in task.values():
            for cell in stream.values():
                cell["non_monotone"] = [bool(non_monotone(s)) for s in cell["success"]]
    return out


class AdaptTrialStore(JsonTrialStore):
    """Trials of ``run_adapt``: jobs ``(spec, task, stream, variant, trial)``, files
    ``TASK-STREAM-VARIANT-TRIAL.json``."""

    def key(self, job):
        _, task, stream, variant, trial = job
        return f"{task}-{stream}-{variant}-{int(trial)}"

    def encode(self, result):
        task, stream, variant, trial, record = result
        return {"task": task, "stream": stream, "variant": variant, "trial": int(trial), "record": record}

    def decode(self, data):
        return data["task"], data["stream"], data["variant"], data["trial"], data["record"]


def trial_store(directory, spec, *, resume=False):
    """The resumable folder of an adapt run: variants, tasks, streams and trials may grow on resume."""
    return AdaptTrialStore(directory, _spec_settings("adapt", spec, ("variants", "tasks", "streams", "trials")),
                           resume=resume)
