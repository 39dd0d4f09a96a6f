"""The deployed loop's settings (``DeployConfig``), its result (``DeployResult``) and
the names its settings take (streams, fallbacks, who labels, the probing defaults).
``sim.loops.deploy`` runs the loop and re-exports every name here."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from controller.checks import check_int, check_positive
from sim.world.schedule import check_schedule
from sim.world.task import as_task

__all__ = ["DeployConfig", "DeployResult", "checkpoints_for", "STREAMS", "FALLBACKS", "LABEL_MODES",
           "PROBE_DEFAULT", "on_policy_probe_gain"]

STREAMS = ("iid", "onpolicy")
FALLBACKS = ("hold", "lqr")
#: who labels on the on-policy stream: every tick, the ticks the controller is unsure of, random ticks
LABEL_MODES = ("always", "uncertain", "random")
#: the probing gain when ``DeployConfig.probe`` is None, per task, each chosen on tuning
#: trials (docs/onpolicy.md, "Probing")
PROBE_DEFAULT = {"balance": 1.0, "swingup": 2.0}


def on_policy_probe_gain(task_name, probe=None):
    """The probing gain on the on-policy stream of the task named ``task_name``: ``probe``, or
    the task's ``PROBE_DEFAULT`` when it is None."""
    return PROBE_DEFAULT.get(task_name, 0.0) if probe is None else float(probe)


def checkpoints_for(samples):
    """Checkpoints of the progress table: 10, 25, 50, 100, 200, 400, ... below ``samples``, and ``samples``."""
    marks = {samples}
    m = [10, 25, 50]
    while m[-1] * 2 < samples:
        m.append(m[-1] * 2)
    marks.update(x for x in m if x < samples)
    return sorted(marks)



@dataclass(frozen=True)
class DeployConfig:
    """Settings of one deployed run (validated on creation).

    samples : int        ticks to run, >= 1; every tick brings a sample unless ``labels`` says otherwise
    stream : str         "iid" or "onpolicy"
    episodes : int       evaluation episodes per checkpoint
    seed : int           seeds the plant's resets, the faults and the evaluation episodes
    data_seed : int      seeds the i.i.d. stream; None: seed + 1
    period : float       control period (s); None: the plant's tau
    fault_rate : float   probability per tick of a NaN reading / of a NaN label, in [0, 1)
    outlier_rate : float probability per tick that the label is corrupt (+-1000 N), in [0, 1)
    fallback : str       "hold" or "lqr" (the task's expert)
    sigma_data : float   variance (N^2) of Gaussian noise on the expert's labels
    start : int          samples a resumed head has seen before this run: checkpoints count from it
    data_start : int     where this run enters the i.i.d. stream of its data seed; None: start
    labels : str         "always", "uncertain" or "random" (the last two: on-policy only; the expert takes over the tick)
    ask_above : float    "uncertain": the expert takes over when the epistemic std (N) at the state exceeds it
    label_rate : float   "random": probability per tick that the expert takes over, in (0, 1]
    probe : float        on-policy: gain k of the probing force k x (epistemic std) x xi added to the
                         learner's action (xi: unit AR(1) Gaussian), >= 0; 0: off; None: the
                         task's ``PROBE_DEFAULT`` (balance 1, swing-up 2)
    probe_memory : float correlation time of xi in ticks (xi_t = a xi_t-1 + sqrt(1 - a^2) e_t,
                         a = 1 - 1 / probe_memory), >= 1; 1: white
    probe_max : float    largest probing force (N), > 0
    checkpoints : tuple  tick counts at which to evaluate; empty: 10, 25, 50, 100, 200, ... and ``samples``
    changes : tuple      ``sim.world.schedule.Change`` entries: the plant or the label noise from a tick on
                         (every checkpoint is evaluated on the plant in force)
    plant : bool         False: the offline protocol of the learning experiments -- the i.i.d. samples
                         arrive with no plant running (nothing acts between checkpoints, no
                         deadline or fault accounting); the same loop, checkpoints and result
    """

    samples: int = 400
    stream: str = "iid"
    episodes: int = 100
    seed: int = 0
    data_seed: int | None = None
    period: float | None = None
    fault_rate: float = 0.0
    outlier_rate: float = 0.0
    fallback: str = "hold"
    sigma_data: float = 0.0
    start: int = 0
    data_start: int | None = None
    labels: str = "always"
    ask_above: float = 1.0
    label_rate: float = 0.5
    probe: float | None = None
    probe_memory: float = 10.0
    probe_max: float = 5.0
    checkpoints: tuple = ()
    changes: tuple = ()
    plant: bool = True

    def __post_init__(self):
        check_int("samples", self.samples, low=1)
        check_int("episodes", self.episodes, low=1)
        check_int("seed", self.seed, low=0)
        if self.data_seed is not None:
            check_int("data_seed", self.data_seed, low=0)
        for name, value, allowed in (("stream", self.stream, STREAMS), ("fallback", self.fallback, FALLBACKS),
                                     ("labels", self.labels, LABEL_MODES)):
            if value not in allowed:
                raise ValueError(f"{name}: expected one of {', '.join(allowed)} but found {value!r}")
        if self.period is not None:
            check_positive("period", self.period)
        for name in ("fault_rate", "outlier_rate"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                raise ValueError(f"{name}: expected a probability in [0, 1) but found {getattr(self, name)}")
        check_positive("sigma_data", self.sigma_data, allow_zero=True)
        check_int("start", self.start, low=0)
        if self.data_start is not None:
            check_int("data_start", self.data_start, low=0)
        check_positive("ask_above", self.ask_above)
        if not 0.0 < float(self.label_rate) <= 1.0:
            raise ValueError(f"label_rate: expected a probability in (0, 1] but found {self.label_rate}")
        if self.probe is not None:
            check_positive("probe", self.probe, allow_zero=True)
        if not float(self.probe_memory) >= 1.0:
            raise ValueError(f"probe_memory: expected a correlation time in ticks >= 1 but found {self.probe_memory}")
        check_positive("probe_max", self.probe_max)
        for n in self.checkpoints:
            check_int("checkpoints", n, low=1, high=self.samples)
        object.__setattr__(self, "changes", check_schedule(self.changes, self.samples))
        if not self.plant and self.stream != "iid":
            raise ValueError("plant: the offline protocol (plant=False) needs the i.i.d. stream")
        if self.labels != "always" and self.stream != "onpolicy":
            raise ValueError(f"labels: {self.labels!r} needs the on-policy stream (stream='onpolicy')")

    def probe_gain(self, task):
        """The probing gain in force on ``task``: 0 off the on-policy stream."""
        if self.stream != "onpolicy":
            return 0.0
        return on_policy_probe_gain(as_task(task).name, self.probe)

    @property
    def stream_seed(self):
        """The seed of the i.i.d. stream."""
        return self.seed + 1 if self.data_seed is None else self.data_seed

    @property
    def stream_start(self):
        """The i.i.d. stream position of this run's first sample."""
        return self.start if self.data_start is None else self.data_start


@dataclass
class DeployResult:
    """Counters and checkpoint rows of a deployed run."""

    rows: list = field(default_factory=list)          # one dict per checkpoint
    start: int = 0                                     # samples seen before this run (resumed head)
    ticks: int = 0
    labels: int = 0                                    # samples offered to the controller
    takeovers: int = 0                                 # ticks the expert acted ("uncertain" / "random" labels)
    probe_ticks: int = 0                               # learner's ticks that carried a probing force
    updates: int = 0                                   # accepted learning updates
    rejected: int = 0                                  # updates the controller refused (non-finite input)
    downweighted: int = 0                              # labels learned with a robust weight below 1/2
    changes: int = 0                                   # changes of plant or noise the head detected
    corrupt: int = 0                                   # corrupt labels fed (outlier_rate)
    corrupt_shift: float = 0.0                         # largest |change| of the predicted force one made (N)
    corrupt_bound: float = 0.0                         # ... and its bound (c / 2) x epistemic std there (N)
    sensor_faults: int = 0
    action_faults: int = 0                             # non-finite forces from the controller
    deadline_misses: int = 0
    longest_miss_run: int = 0
    plant_episodes: int = 0                            # episodes started on the plant
    plant_failures: int = 0                            # ... that failed (the falls while learning)
    act_seconds: list = field(default_factory=list)
    update_seconds: list = field(default_factory=list)

    def summary(self):
        lat = np.asarray(self.update_seconds) * 1e6
        act = np.asarray(self.act_seconds) * 1e6
        return {
            "ticks": self.ticks, "labels": self.labels, "takeovers": self.takeovers, "probe_ticks": self.probe_ticks,
            "updates": self.updates,
            "rejected_updates": self.rejected, "downweighted": self.downweighted, "changes": self.changes,
            "corrupt_labels": self.corrupt, "corrupt_shift_N": self.corrupt_shift,
            "corrupt_bound_N": self.corrupt_bound,
            "sensor_faults": self.sensor_faults, "action_faults": self.action_faults,
            "deadline_misses": self.deadline_misses,
            "longest_miss_run": self.longest_miss_run, "plant_episodes": self.plant_episodes,
            "plant_failures": self.plant_failures,
            "act_p50_us": float(np.percentile(act, 50)) if act.size else None,
            "update_p50_us": float(np.percentile(lat, 50)) if lat.size else None,
            "update_p99_us": float(np.percentile(lat, 99)) if lat.size else None,
        }
