"""One learning trial of the experiments: stream expert-labelled samples into
a controller and measure it at checkpoints.

It serves ``kbt experiment fig3`` / ``fig4`` and ``calibration``
(``sim.experiments.offline.run_learning``, one trial per method and data seed). It is
the deployed loop (``sim.loops.deploy.run_deployment``) in its offline protocol
(``plant=False``: the paper's setting, where the samples arrive with no plant
running), with held-out calibration metrics measured at each checkpoint: one
learning loop and one checkpoint rule for ``kbt run`` and the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from controller.calibration import calibration_report
from controller.checks import check_int

__all__ = ["Checkpoint", "TrialResult", "checkpoints_every", "learning_trial", "to_plain"]


def checkpoints_every(step, samples):
    """[0, step, 2 step, ..., samples] (``samples`` always included)."""
    step = check_int("step", step, low=1)
    samples = check_int("samples", samples, low=1)
    return sorted(set(range(0, samples, step)) | {samples})


def to_plain(v):
    """NumPy scalars and arrays inside dicts, lists and tuples -> plain Python (for JSON)."""
    if isinstance(v, dict):
        return {k: to_plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [to_plain(x) for x in v]
    return v.item() if isinstance(v, np.generic) else v


@dataclass
class Checkpoint:
    samples: int
    success_rate: float
    metrics: dict                      # calibration_report on the held-out data (when given)


@dataclass
class TrialResult:
    checkpoints: list = field(default_factory=list)   # [Checkpoint]
    learn_seconds: np.ndarray | None = None           # (samples,) wall time of each observe()
    rejected: int = 0                                 # updates the controller refused (ValueError)
    downweighted: int = 0                             # labels learned with a robust weight below 1/2
    changes: int = 0                                  # changes the head detected

    def series(self, key):
        """One figure per checkpoint: ``"success_rate"`` or a metric name."""
        if key == "success_rate":
            return np.array([c.success_rate for c in self.checkpoints])
        return np.array([c.metrics.get(key, np.nan) for c in self.checkpoints])

    def to_dict(self):
        """JSON-ready copy (plain ints, floats, lists, dicts; NaN kept): ``from_dict`` inverts it exactly."""
        return {"checkpoints": [{"samples": int(c.samples), "success_rate": float(c.success_rate),
                                 "metrics": to_plain(c.metrics)} for c in self.checkpoints],
                "learn_seconds": None if self.learn_seconds is None else to_plain(self.learn_seconds),
                "rejected": int(self.rejected),
                "downweighted": int(self.downweighted), "changes": int(self.changes)}

    @classmethod
    def from_dict(cls, d):
        """The ``TrialResult`` of ``to_dict()`` (e.g. read back from JSON)."""
        seconds = d["learn_seconds"]
        return cls(checkpoints=[Checkpoint(int(c["samples"]), float(c["success_rate"]), dict(c["metrics"]))
                                for c in d["checkpoints"]],
                   learn_seconds=None if seconds is None else np.asarray(seconds, dtype=float),
                   rejected=int(d["rejected"]), downweighted=int(d.get("downweighted", 0)),
                   changes=int(d.get("changes", 0)))


def learning_trial(controller, params, states, forces, checkpoints, *, episodes=100, eval_seed=0,
                   heldout=None, tokenizer=None, on_checkpoint=None, on_sample=None):
    """Stream ``(states[i], forces[i])`` into ``controller.observe`` in order.

    Parameters
    ----------
    controller
        Has ``act``; learning controllers also ``observe``; ``probs`` and
        ``predict`` are used for the held-out metrics when present.
    params : CartPoleParams or Task
        Where the success rate is measured.
    checkpoints : list of int
        Sample counts after which to measure (0 = before any sample).
    episodes, eval_seed
        Success rate over ``episodes`` seeded episodes of ``params``.
    heldout : (states, forces), optional
        Held-out expert data for RMSE, NLL, ECE, coverage, mean predicted variance.
    on_checkpoint : callable(Checkpoint), optional
    on_sample : callable(i, seconds), optional
        Called after every update (progress bars).

    Returns
    -------
    TrialResult
        ``learn_seconds[i]`` is the wall time of the i-th ``observe`` alone.
    """
    from sim.loops.deploy import DeployConfig, run_deployment

    n = max(checkpoints)
    if n > len(states):
        raise ValueError(f"checkpoints: the last checkpoint {n} exceeds the {len(states)} samples")
    marks = set(checkpoints)
    result = TrialResult()

    def measure(c):
        if heldout is not None and hasattr(c, "predict"):
            return calibration_report(c, *heldout, tokenizer=tokenizer)
        return {}

    def checkpoint(row):
        if row["samples"] in marks:
            cp = Checkpoint(row["samples"], row["success_rate"], row["metrics"])
            result.checkpoints.append(cp)
            if on_checkpoint is not None:
                on_checkpoint(cp)

    def tick(state, force, res):
        if on_sample is not None:
            on_sample(res.ticks - 1, res.update_seconds[-1] if res.update_seconds else 0.0)
        return True

    cfg = DeployConfig(samples=n, stream="iid", episodes=episodes, seed=eval_seed, plant=False,
                       checkpoints=tuple(sorted(m for m in marks if m > 0)))
    res = run_deployment(controller, params, cfg, samples=(states, forces), measure=measure,
                         on_checkpoint=checkpoint, on_tick=tick if on_sample is not None else None)
    result.learn_seconds = np.asarray(res.update_seconds, dtype=float)
    result.rejected, result.downweighted, result.changes = res.rejected, res.downweighted, res.changes
    return result
