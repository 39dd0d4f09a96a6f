"""The deployed control loop: act every period, learn in the time that is left.

One plant (e.g. TARGET) runs at the fixed period ``tau``. Each tick:

1. read the sensor; a non-finite reading is a *sensor fault*: the loop holds
   the last safe force (``fallback="hold"``) or applies the LQR expert to the
   last finite reading (``fallback="lqr"``), and counts it;
2. compute and send the action -- always first, so learning never delays it;
3. advance the plant one period (episodes restart when they fail or last 500 steps);
4. run one learning update with the sample that arrived this tick (i.i.d. from
   the sampling box of ``sim.data``, as in the paper, or ``stream="onpolicy"``: the state the
   controller just saw, labelled by the expert). An update the controller
   rejects (``ValueError``, e.g. a non-finite label) leaves it unchanged and is
   counted. If action + update took longer than the period, the tick is a
   *deadline miss*: on hardware the next action would have been late.

At checkpoints the success rate is evaluated offline (not in the tick's time).
Faults can be injected (``fault_rate``: probability per tick of a NaN sensor
reading and, independently, of a NaN label) to exercise the handling.

A resumed run (``start`` > 0: a head saved after ``start`` samples) counts its
checkpoints from ``start`` and, on the i.i.d. stream, continues the seeded
sequence at ``data_start`` (``iid_samples``: positions [first, first + n) of one
sequence per data seed, so 30 + 30 samples are the same 60 as one run of 60).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from sim import cartpole
from sim.cartpole import CartPoleParams
from controller.checks import check_int, check_positive
from sim.loop import act_one, evaluate_success

__all__ = ["DeployConfig", "DeployResult", "run_deployment", "checkpoints_for", "iid_samples", "STREAMS",
           "FALLBACKS"]

STREAMS = ("iid", "onpolicy")
FALLBACKS = ("hold", "lqr")


def checkpoints_for(samples):
    """Checkpoints of the progress table: 10, 25, 50, 100, 200, 400, ... below ``samples``, and ``samples``."""
    marks = {samples}
    m = [10, 25, 50]
    while m[-1] * 2 < samples:
        m.append(m[-1] * 2)
    marks.update(x for x in m if x < samples)
    return sorted(marks)


_CHUNK = 1 << 16        # samples drawn at a time while skipping the consumed part of a stream


def iid_samples(expert, data_seed, first, n, sigma_data=0.0):
    """Samples ``first .. first + n - 1`` of the i.i.d. stream seeded by ``data_seed``.

    States are uniform in the sampling box (``sim.data.sample_states`` on
    ``default_rng(data_seed)``), labels the expert's force plus, when
    ``sigma_data > 0``, ``sqrt(sigma_data)`` times a standard normal from a
    second generator of the same seed. Both sequences are drawn in order, so
    any split of a stream into consecutive blocks gives the samples of one long
    run: a resumed run neither repeats nor skips a sample. (``first = 0`` and
    ``sigma_data = 0`` is exactly ``sim.data.sample_dataset(expert, n, data_seed)``.)

    Returns states (n, 4) and forces (n,).
    """
    from sim.data import sample_states

    data_seed = check_int("data_seed", data_seed, low=0)
    first = check_int("first", first, low=0)
    n = check_int("n", n, low=0)
    check_positive("sigma_data", sigma_data, allow_zero=True)

    def skip(draw):
        left = first
        while left:
            k = min(left, _CHUNK)
            draw(k)
            left -= k

    rng = np.random.default_rng(data_seed)
    skip(lambda k: sample_states(k, rng))
    S = sample_states(n, rng)
    F = np.asarray(expert.act(S), dtype=float).reshape(n)
    if sigma_data > 0:
        noise = np.random.default_rng(np.random.SeedSequence(data_seed, spawn_key=(1,)))
        skip(noise.standard_normal)
        F = F + np.sqrt(sigma_data) * noise.standard_normal(n)
    return S, F


@dataclass(frozen=True)
class DeployConfig:
    """Settings of one deployed run.

    samples : int        learning updates to run (ticks with a sample), >= 1
    stream : str         "iid" or "onpolicy"
    episodes : int       evaluation episodes per checkpoint
    seed : int           seeds the plant's resets, the faults and the evaluation episodes
    data_seed : int      seeds the i.i.d. stream; None: seed + 1
    period : float       control period (s); None: the plant's tau
    fault_rate : float   probability per tick of a NaN reading / of a NaN label, in [0, 1)
    outlier_rate : float probability per tick that the label is corrupt (+-1000 N), in [0, 1)
    fallback : str       "hold" or "lqr"
    sigma_data : float   variance (N^2) of Gaussian noise on the expert's labels
    start : int          samples a resumed head has seen before this run: checkpoints count from it
    data_start : int     where this run enters the i.i.d. stream of its data seed; None: start
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

    def validate(self):
        check_int("samples", self.samples, low=1)
        check_int("episodes", self.episodes, low=1)
        check_int("seed", self.seed, low=0)
        if self.data_seed is not None:
            check_int("data_seed", self.data_seed, low=0)
        if self.stream not in STREAMS:
            raise ValueError(f"stream: expected one of {', '.join(STREAMS)} but found {self.stream!r}")
        if self.fallback not in FALLBACKS:
            raise ValueError(f"fallback: expected one of {', '.join(FALLBACKS)} but found {self.fallback!r}")
        if self.period is not None:
            check_positive("period", self.period)
        rate = float(self.fault_rate)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"fault_rate: expected a probability in [0, 1) but found {self.fault_rate}")
        if not 0.0 <= float(self.outlier_rate) < 1.0:
            raise ValueError(f"outlier_rate: expected a probability in [0, 1) but found {self.outlier_rate}")
        check_positive("sigma_data", self.sigma_data, allow_zero=True)
        check_int("start", self.start, low=0)
        if self.data_start is not None:
            check_int("data_start", self.data_start, low=0)
        return self

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
    updates: int = 0                                   # accepted learning updates
    rejected: int = 0                                  # updates the controller refused (non-finite input)
    gated: int = 0                                     # labels the innovation gate refused
    sensor_faults: int = 0
    action_faults: int = 0                             # non-finite forces from the controller
    deadline_misses: int = 0
    longest_miss_run: int = 0
    plant_episodes: int = 0                            # episodes started on the plant
    plant_failures: int = 0                            # ... that left the bounds
    act_seconds: list = field(default_factory=list)
    update_seconds: list = field(default_factory=list)

    def summary(self):
        lat = np.asarray(self.update_seconds) * 1e6
        act = np.asarray(self.act_seconds) * 1e6
        return {
            "ticks": self.ticks, "updates": self.updates, "rejected_updates": self.rejected, "gated": self.gated,
            "sensor_faults": self.sensor_faults, "action_faults": self.action_faults,
            "deadline_misses": self.deadline_misses,
            "longest_miss_run": self.longest_miss_run, "plant_episodes": self.plant_episodes,
            "plant_failures": self.plant_failures,
            "act_p50_us": float(np.percentile(act, 50)) if act.size else None,
            "update_p50_us": float(np.percentile(lat, 50)) if lat.size else None,
            "update_p99_us": float(np.percentile(lat, 99)) if lat.size else None,
        }


def _mean_pred_std(controller, probe):
    if not hasattr(controller, "predict"):
        return None
    return float(np.sqrt(np.mean(controller.predict(probe)[1])))


def run_deployment(controller, params: CartPoleParams, config: DeployConfig = DeployConfig(), *,
                   on_checkpoint=None, on_tick=None):
    """Run the deployed loop until ``config.samples`` samples have arrived.

    Parameters
    ----------
    controller
        ``act``; ``observe`` to learn (a controller without it only acts).
    params : CartPoleParams
        The plant (and the expert that labels samples: LQR designed for it).
    on_checkpoint : callable(dict), optional
        Called with each checkpoint row (the progress table).
    on_tick : callable(state, force, result), optional
        Called after every tick (the live view); returning False stops the
        run, returning a state (4,) replaces the plant's (a reset or a push).

    Returns
    -------
    DeployResult
        Its rows count samples from ``config.start`` (a resumed head's count).
    """
    from controller.lqr import LQRController
    from sim.data import sample_states

    cfg = config.validate()
    period = params.tau if cfg.period is None else float(cfg.period)
    expert = LQRController(params)
    learns = callable(getattr(controller, "observe", None))

    def tick_rng(k):      # a resumed run does not replay the first run's resets, faults and outliers
        return np.random.default_rng([cfg.seed, k] if cfg.start == 0 else [cfg.seed, k, cfg.start])

    rng_plant, rng_fault, rng_label, rng_outlier = (tick_rng(k) for k in (1, 2, 3, 5))
    if cfg.stream == "iid":
        S, F = iid_samples(expert, cfg.stream_seed, cfg.stream_start, cfg.samples, sigma_data=cfg.sigma_data)
    probe = sample_states(200, np.random.default_rng([cfg.seed, 4]))
    marks = set(checkpoints_for(cfg.samples))
    res = DeployResult(start=cfg.start)

    def checkpoint(n):
        ev = evaluate_success(controller, params, n_episodes=cfg.episodes, seed=cfg.seed)
        lat = np.asarray(res.update_seconds) * 1e6
        row = {"samples": cfg.start + n, "success_rate": ev.success_rate, "pred_std": _mean_pred_std(controller, probe),
               "update_p50_us": float(np.percentile(lat, 50)) if lat.size else None,
               "update_p99_us": float(np.percentile(lat, 99)) if lat.size else None,
               "deadline_misses": res.deadline_misses, "rejected": res.rejected, "gated": res.gated,
               "noise_var": getattr(controller, "noise_var", None), "sensor_faults": res.sensor_faults}
        res.rows.append(row)
        if on_checkpoint is not None:
            on_checkpoint(row)

    checkpoint(0)
    state = cartpole.reset(rng_plant)
    res.plant_episodes = 1
    steps_in_episode = 0
    last_force, last_good = 0.0, state.copy()
    miss_run = 0
    arrived = 0
    while arrived < cfg.samples:
        t0 = time.perf_counter()
        # 1. sensor
        reading = state.copy()
        if cfg.fault_rate and rng_fault.random() < cfg.fault_rate:
            reading[rng_fault.integers(4)] = np.nan
        # 2. action first
        if np.all(np.isfinite(reading)):
            force = act_one(controller, reading)
            if not np.isfinite(force):
                res.action_faults += 1
                force = act_one(expert, reading) if cfg.fallback == "lqr" else last_force
            last_good = reading
        else:
            res.sensor_faults += 1
            force = act_one(expert, last_good) if cfg.fallback == "lqr" else last_force
        last_force = force
        t_act = time.perf_counter() - t0
        res.act_seconds.append(t_act)
        # 3. plant
        applied, _ = cartpole.saturate(params, force)
        state = cartpole.advance(params, state, float(applied))
        steps_in_episode += 1
        failed = bool(cartpole.terminated(state)) or not np.all(np.isfinite(state))
        # 4. learning, after the action
        if cfg.stream == "iid":
            s, f = S[arrived], float(F[arrived])
        else:
            s = reading
            f = act_one(expert, reading) if np.all(np.isfinite(reading)) else np.nan
            if cfg.sigma_data > 0:
                f += float(rng_label.normal(0.0, np.sqrt(cfg.sigma_data)))
        if cfg.fault_rate and rng_fault.random() < cfg.fault_rate:
            f = np.nan
        if cfg.outlier_rate and rng_outlier.random() < cfg.outlier_rate:
            f = float(rng_outlier.choice((-1000.0, 1000.0)))     # a corrupt label
        arrived += 1
        t_upd = 0.0
        if learns:
            t1 = time.perf_counter()
            try:
                if controller.observe(s, f) is False:
                    res.gated += 1
                else:
                    res.updates += 1
            except ValueError:
                res.rejected += 1
            t_upd = time.perf_counter() - t1
            res.update_seconds.append(t_upd)
        res.ticks += 1
        if t_act + t_upd > period:
            res.deadline_misses += 1
            miss_run += 1
            res.longest_miss_run = max(res.longest_miss_run, miss_run)
        else:
            miss_run = 0
        if on_tick is not None:
            reply = on_tick(state, force, res)
            if reply is False:
                break
            if isinstance(reply, np.ndarray):    # the view's reset / push
                state = reply
        if failed or steps_in_episode >= cartpole.EPISODE_STEPS:
            res.plant_failures += int(failed)
            state = cartpole.reset(rng_plant)
            res.plant_episodes += 1
            steps_in_episode = 0
            last_good = state.copy()
        if arrived in marks:
            checkpoint(arrived)
    return res
