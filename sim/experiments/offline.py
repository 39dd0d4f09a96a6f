"""The paper's experiments as functions that return tidy results.

* ``learning`` (Figures 3 and 4): success rate, held-out force metrics and
  the wall time of each learning step versus samples seen, for KBT (the
  Gaussian force head and the paper's softmax head), ``rls`` and warm-started
  retraining and BLoB at several memory capacities; the pre-trained
  transformer and the TARGET LQR expert as reference lines.
* ``variance`` (Figure 5): KBT's predicted force variance versus samples seen
  for several label-noise variances Sigma_data.
* ``calibration``: force calibration (coverage, Gaussian NLL, CRPS, quantile
  reliability) of every method at 50/100/400 samples, optionally under label noise.

Every (method, trial) pair is one job with its own seeds, so results do not
depend on how many processes run them (``jobs``) nor on the backend
(``sim.experiments.trials.run_jobs``: in-process, a local Dask cluster or a Dask
``scheduler``); a ``store`` (``sim.experiments.trial_store``) keeps finished trials across
runs. Writing files and plotting live in ``sim/experiments/report.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from controller.calibration import QUANTILE_LEVELS
from controller.kalman_head import HeadConfig
from controller.lqr import LQRController
from sim.world.cartpole import TARGET
from controller.checks import check_int, check_positive
from sim.world.data import sample_dataset
from sim.loops.methods import MethodSettings, is_learner, make_controller, parse_method
from sim.loops.stream import checkpoints_every, learning_trial
from sim.experiments.trials import run_jobs

__all__ = ["LearningSpec", "VarianceSpec", "run_learning", "run_variance", "moving_average", "calibration_spec",
           "run_calibration", "CALIBRATION_AT", "CALIBRATION_METHODS"]

HELDOUT = 1000          # held-out TARGET samples for RMSE / NLL / calibration
VARIANCE_PROBES = 200   # held-out states at which Figure 5's predicted variance is averaged


def _data_seed(seed, trial):
    """Seed of trial ``trial``'s sample stream (independent of the method)."""
    return 1000 * seed + trial + 1


def _heldout_seed(seed):
    return 1000 * seed + 999


#: The checkpoints the README's tables summarise (samples).
SUMMARY_AT = (50, 100, 200, 400)


@dataclass(frozen=True)
class LearningSpec:
    methods: tuple = ("kbt", "kbt-softmax", "rls", "retrain-10", "retrain-20", "retrain-25", "retrain-50",
                      "retrain-75", "retrain-100", "blob-10", "blob-100")
    trials: int = 10
    samples: int = 400
    every: int = 20                 # checkpoint spacing (samples)
    episodes: int = 100             # evaluation episodes per checkpoint
    seed: int = 0
    sigma_data: float = 0.0         # label-noise variance (N^2) of the stream and the held-out labels
    settings: MethodSettings = MethodSettings()

    @classmethod
    def quick(cls, **kw):
        """CI size: two trials of 40 samples, both KBT heads, rls, retraining at C = 10 and 100, BLoB at C = 10."""
        base = dict(methods=("kbt", "kbt-softmax", "rls", "retrain-10", "retrain-100", "blob-10"), trials=2,
                    samples=40, every=20, episodes=20)
        base.update(kw)
        return cls(**base)

    def marks(self):
        """Checkpoints: every ``every`` samples, plus the README's 50/100/200/400."""
        return sorted(set(checkpoints_every(self.every, self.samples)) | {n for n in SUMMARY_AT if n <= self.samples})

    def __post_init__(self):
        self.validate()

    def validate(self):
        for m in self.methods:
            if not is_learner(m):
                raise ValueError(f"methods: {m!r} does not learn; the references are added automatically")
        check_int("trials", self.trials, low=1)
        check_int("samples", self.samples, low=1)
        check_int("every", self.every, low=1)
        check_int("episodes", self.episodes, low=1)
        check_int("seed", self.seed, low=0)
        check_positive("sigma_data", self.sigma_data, allow_zero=True)
        return self


def _paper(settings):
    """The paper's experiments start KBT from the paper's prior -- the pre-trained read-out
    and v I -- not from the balance family prior (docs/family-prior.md)."""
    return replace(settings, family=False)


def _learning_job(args):
    spec, method, trial = args
    expert = LQRController(TARGET)
    states, forces = sample_dataset(expert, spec.samples, seed=_data_seed(spec.seed, trial), sigma_data=spec.sigma_data)
    heldout = sample_dataset(expert, HELDOUT, seed=_heldout_seed(spec.seed), sigma_data=spec.sigma_data)
    controller = make_controller(method, TARGET, _paper(spec.settings), seed=trial)
    res = learning_trial(controller, TARGET, states, forces, spec.marks(),
                         episodes=spec.episodes, eval_seed=spec.seed, heldout=heldout,
                         tokenizer=getattr(controller, "tokenizer", None))
    return method, trial, res


def _reference(spec, method):
    controller = make_controller(method, TARGET, _paper(spec.settings))
    from sim.loops.loop import evaluate_success

    return evaluate_success(controller, TARGET, n_episodes=spec.episodes, seed=spec.seed).success_rate


#: per-checkpoint series stored for every method and trial (NaN where a method has no such metric)
SERIES = ("success_rate", "rmse", "coverage50", "coverage90", "gnll", "crps", "pred_var", "nll", "ece", "accuracy")


def run_learning(spec: LearningSpec, jobs=1, progress=True, scheduler=None, store=None):
    """Figures 3 and 4. Returns a dict (JSON-ready) with per-trial series.

    ``jobs`` local worker processes (1: in this process), or the workers of
    the Dask ``scheduler`` at that address; ``store`` (e.g.
    ``sim.experiments.trial_store.LearningTrialStore``) saves each trial as it finishes
    and skips the ones it holds (``sim.experiments.trials.run_jobs``).
    """
    jobs = check_int("jobs", jobs, low=1)
    # heaviest jobs first so the pool's tail is short
    order = sorted(spec.methods, key=lambda m: -(parse_method(m)[1] or 0))
    work = [(spec, m, t) for m in order for t in range(spec.trials)]
    results = run_jobs(_learning_job, work, workers=jobs, scheduler=scheduler, label="learning trials",
                       progress=progress, store=store)
    marks = spec.marks()
    out = {"experiment": "learning", "seed": spec.seed, "trials": spec.trials, "samples": spec.samples,
           "sigma_data": spec.sigma_data,
           "episodes": spec.episodes, "checkpoints": marks, "methods": {}, "references": {}}
    for m in spec.methods:
        runs = sorted((r for r in results if r[0] == m), key=lambda r: r[1])
        out["methods"][m] = {key: [r[2].series(key).tolist() for r in runs] for key in SERIES}
        out["methods"][m].update({
            "quantiles": [[c.metrics.get("quantiles") for c in r[2].checkpoints] for r in runs],
            "reliability": [[c.metrics.get("reliability") for c in r[2].checkpoints] for r in runs],
            "downweighted": [r[2].downweighted for r in runs],
            "changes": [r[2].changes for r in runs],
            "learn_seconds": [r[2].learn_seconds.tolist() for r in runs],
        })
    for ref in ("pretrained", "lqr"):
        out["references"][ref] = _reference(spec, ref)
    return out


# ------------------------------------------------------------------ Figure 5
@dataclass(frozen=True)
class VarianceSpec:
    sigma_data: tuple = (0.0, 10.0, 20.0, 50.0)
    samples: int = 20000
    window: int = 500               # moving-average window (samples)
    record_every: int = 10          # predicted variance recorded every this many samples
    seed: int = 0
    method: str = "kbt"             # kbt (Gaussian force head, learned noise) or kbt-softmax (the paper's)
    head: HeadConfig | None = None  # None: the method's default head

    @classmethod
    def quick(cls, **kw):
        base = dict(samples=2000, window=100, record_every=10)
        base.update(kw)
        return cls(**base)

    def __post_init__(self):
        self.validate()

    def validate(self):
        for s in self.sigma_data:
            if not np.isfinite(s) or s < 0:
                raise ValueError(f"sigma_data: expected variances >= 0 but found {s}")
        check_int("samples", self.samples, low=1)
        check_int("window", self.window, low=1)
        check_int("record_every", self.record_every, low=1)
        check_int("seed", self.seed, low=0)
        if self.method not in ("kbt", "kbt-softmax"):
            raise ValueError(f"method: expected 'kbt' or 'kbt-softmax' but found {self.method!r}")
        return self


def _variance_job(args):
    spec, sigma_data = args
    expert = LQRController(TARGET)
    states, forces = sample_dataset(expert, spec.samples, seed=_data_seed(spec.seed, 0), sigma_data=sigma_data)
    probe, _ = sample_dataset(expert, VARIANCE_PROBES, seed=_heldout_seed(spec.seed))
    heads = {} if spec.head is None else {"head" if spec.method == "kbt" else "softmax_head": spec.head}
    c = make_controller(spec.method, TARGET, MethodSettings(sigma_data=sigma_data, family=False, **heads))
    c.warm_up()
    Z = c.inputs(probe)                        # T_1 is frozen: the probes' inputs never change
    steps, total, aleatoric, epistemic = [], [], [], []

    def record(i):
        # mean over the probe states of the force variance under the head's predictive
        _, ale, epi = c.predict_split_inputs(Z)
        ale, epi = ale.mean(), epi.mean()
        steps.append(i)
        aleatoric.append(float(ale))
        epistemic.append(float(epi))
        total.append(float(ale + epi))

    for i in range(spec.samples):
        if i % spec.record_every == 0:
            record(i)
        c.observe(states[i], forces[i])
    record(spec.samples)
    return sigma_data, {"samples": steps, "pred_var": total, "aleatoric": aleatoric, "epistemic": epistemic,
                        "noise_var": getattr(c, "noise_var", None), "realised_var": float(np.var(forces - expert.act(states))),
                        "downweighted": getattr(c, "n_downweighted", 0), "changes": getattr(c, "n_changes", 0)}


def moving_average(x, window):
    """Trailing moving average; the first ``window - 1`` values average what exists."""
    x = np.asarray(x, dtype=float)
    c = np.cumsum(np.insert(x, 0, 0.0))
    n = np.arange(1, len(x) + 1)
    lo = np.maximum(n - window, 0)
    return (c[n] - c[lo]) / (n - lo)


def run_variance(spec: VarianceSpec, jobs=1, progress=True, scheduler=None, store=None):
    """Figure 5. Returns a dict (JSON-ready). ``jobs``, ``scheduler``, ``store``: as in ``run_learning``
    (a store such as ``sim.experiments.trial_store.VarianceTrialStore``)."""
    jobs = check_int("jobs", jobs, low=1)
    results = run_jobs(_variance_job, [(spec, s) for s in spec.sigma_data], workers=jobs, scheduler=scheduler,
                       label="variance runs", progress=progress, store=store)
    out = {"experiment": "variance", "seed": spec.seed, "method": spec.method, "samples": spec.samples,
           "window": spec.window,
           "record_every": spec.record_every, "runs": {}}
    win = max(1, spec.window // spec.record_every)
    for s, r in results:
        r["pred_var_ma"] = moving_average(r["pred_var"], win).tolist()
        tail = np.asarray(r["pred_var"])[-max(1, len(r["pred_var"]) // 5):]
        r["settled"] = float(np.mean(tail))          # mean over the last fifth of the run
        out["runs"][f"{s:g}"] = r
    return out


# ------------------------------------------------------------------ calibration
CALIBRATION_AT = (50, 100, 400)
CALIBRATION_METHODS = ("kbt", "kbt-softmax", "rls", "retrain-10", "retrain-100", "blob-10", "blob-100")
#: the columns of a calibration row (trial means); bin metrics are NaN for the Gaussian heads
CALIBRATION_KEYS = ("rmse", "coverage50", "coverage90", "gnll", "crps", "accuracy", "ece", "nll", "success_rate")


def calibration_spec(quick=False, **kw):
    """The learning run behind ``kbt experiment calibration``: checkpoints at
    50, 100 and 400 samples for KBT, retraining (C = 10, 100) and BLoB."""
    if quick:
        base = dict(methods=("kbt", "kbt-softmax", "rls", "retrain-10", "blob-10"), trials=2, samples=50, every=50,
                    episodes=10)
    else:
        base = dict(methods=CALIBRATION_METHODS, every=50)
    base.update(kw)
    return LearningSpec(**base)


def _pretrained_calibration(spec):
    from controller.calibration import calibration_report

    policy = make_controller("pretrained", TARGET, spec.settings)
    hs, hf = sample_dataset(LQRController(TARGET), HELDOUT, seed=_heldout_seed(spec.seed), sigma_data=spec.sigma_data)
    return calibration_report(policy, hs, hf, policy.tokenizer)


def run_calibration(spec: LearningSpec, jobs=1, progress=True, learning=None):
    """Calibration of every method at the checkpoints of ``CALIBRATION_AT``
    the run has, from a learning experiment's results (``learning``, e.g. a
    saved Figure 3 run) or from a new run of ``spec``.

    Returns ``{"rows": [...], "reliability": {...}, "pretrained": {...}}``:
    one row per (method, samples) with the trial means of accuracy, ECE, NLL,
    RMSE and 90 % coverage, and reliability sums pooled over trials.
    """
    if learning is None:
        learning = run_learning(spec, jobs=jobs, progress=progress)
    if "quantiles" not in next(iter(learning["methods"].values()), {}):
        raise ValueError("learning: these results hold no reliability data (made by an older kbt); re-run them")
    marks = learning["checkpoints"]
    at = [n for n in CALIBRATION_AT if n in marks]
    if not at:
        raise ValueError(f"learning: none of the checkpoints {CALIBRATION_AT} were measured")
    pre = _pretrained_calibration(spec)
    rows = [dict(method="pretrained", samples=0, trials=1, success_rate=np.nan,
                 **{k: pre[k] for k in CALIBRATION_KEYS if k != "success_rate"})]
    reliability = {"pretrained": {"0": pre["reliability"]}}
    quantiles = {"pretrained": {"0": pre["quantiles"]}}
    for m, series in learning["methods"].items():
        reliability[m], quantiles[m] = {}, {}
        for n in at:
            j = marks.index(n)
            row = {"method": m, "samples": n, "trials": len(series["success_rate"])}
            for k in CALIBRATION_KEYS:
                row[k] = float(np.mean([t[j] for t in series[k]]))
            rows.append(row)
            quantiles[m][str(n)] = np.mean([t[j] for t in series["quantiles"]], axis=0).tolist()
            if series["reliability"][0][j] is None:
                continue
            pooled = {"count": 0, "conf_sum": 0, "correct": 0}
            for t in series["reliability"]:
                for k in pooled:
                    pooled[k] = pooled[k] + np.asarray(t[j][k])
            reliability[m][str(n)] = {k: np.asarray(v).tolist() for k, v in pooled.items()}
    return {"experiment": "calibration", "seed": learning["seed"], "sigma_data": learning.get("sigma_data", 0.0),
            "checkpoints": at, "rows": rows, "reliability": reliability, "quantiles": quantiles,
            "quantile_levels": list(QUANTILE_LEVELS),
            "pretrained": {k: v for k, v in pre.items() if k != "reliability"}}
