"""The deployed control loop: act every period, learn in the time that is left.

One plant (a ``sim.world.task.Task``, e.g. balancing TARGET) runs at the fixed
period ``tau``, episode after episode (``sim.world.task.Episode``). Each tick:

1. ``_sense``: read the sensor; a non-finite reading is a *sensor fault*: the
   loop holds the last safe force (``fallback="hold"``) or applies the expert
   to the last finite reading (``fallback="lqr"``), and counts it;
2. ``_act``: compute and send the action -- always first, so learning never
   delays it. With ``labels="uncertain"`` the expert (the safety pilot) takes
   over the tick when the controller's epistemic standard deviation at the
   reading is above ``ask_above``; with ``labels="random"`` it takes over with
   probability ``label_rate``. Its action is then both applied and the label;
3. advance the plant one period (a failed or finished episode restarts);
4. ``_label`` and ``_learn``: one learning update with this tick's sample --
   i.i.d. from the sampling box (as in the paper) or, ``stream="onpolicy"``,
   the state the controller just saw labelled by the expert (every tick with
   ``labels="always"``, only the pilot's ticks otherwise). The on-policy update
   gets the very reading the action was computed on, so kbt (and kbt-c) learn
   from the inputs their ``act`` kept: one T_1 pass per tick (docs/tick.md). An update the
   controller rejects (``ValueError``, e.g. a non-finite label) leaves it
   unchanged and is counted. If action + update took longer than the period,
   the tick is a *deadline miss*: on hardware the next action would have been late.

At checkpoints (tick counts) the success rate is evaluated offline (not in
the tick's time) with ``sim.loops.loop.evaluate_success`` on the same task. Faults
can be injected (``fault_rate``: probability per tick of a NaN sensor reading
and, independently, of a NaN label; ``outlier_rate``: a +-1000 N label).

A resumed run (``start`` > 0: a head saved after ``start`` samples) counts its
checkpoints from ``start`` and, on the i.i.d. stream, continues the seeded
sequence at ``data_start`` (``iid_samples``: positions [first, first + n) of one
sequence per data seed, so 30 + 30 samples are the same 60 as one run of 60).
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from controller.checks import check_int, check_positive
from sim.loops.deploy_config import (FALLBACKS, LABEL_MODES, PROBE_DEFAULT, STREAMS, DeployConfig, DeployResult,
                                     checkpoints_for)
from sim.loops.loop import act_one, evaluate_success
from sim.world.experts import expert_for
from sim.world.task import Episode, as_task

__all__ = ["DeployConfig", "DeployResult", "run_deployment", "checkpoints_for", "iid_samples", "STREAMS",
           "FALLBACKS", "LABEL_MODES", "epistemic_std", "probe_force", "PROBE_DEFAULT"]

_CHUNK = 1 << 16        # samples drawn at a time while skipping the consumed part of a stream


def iid_samples(expert, data_seed, first, n, sigma_data=0.0, task=None):
    """Samples ``first .. first + n - 1`` of the i.i.d. stream seeded by ``data_seed``.

    States are uniform in the sampling box (``sim.world.data.sample_states`` on
    ``default_rng(data_seed)``) -- or, for the swing-up task, uniform draws
    from the states the expert visits in seeded episodes of the task
    (``sim.world.data.trajectory_states``) --, labels the expert's force plus, when
    ``sigma_data > 0``, ``sqrt(sigma_data)`` times a standard normal from a
    second generator of the same seed. Both sequences are drawn in order, so
    any split of a stream into consecutive blocks gives the samples of one long
    run: a resumed run neither repeats nor skips a sample. (``first = 0`` and
    ``sigma_data = 0`` is exactly ``sim.world.data.sample_dataset(expert, n, data_seed)``.)

    Returns states (n, 4) and forces (n,).
    """
    from sim.world.data import sample_states, trajectory_states

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
    if task is not None and as_task(task).name == "swingup":
        pool = trajectory_states(as_task(task), expert, [data_seed, 7])
        draw = lambda k: pool[rng.integers(len(pool), size=k)]          # noqa: E731
    else:
        draw = lambda k: sample_states(k, rng)                           # noqa: E731
    skip(draw)
    S = draw(n)
    F = np.asarray(expert.act(S), dtype=float).reshape(n)
    if sigma_data > 0:
        noise = np.random.default_rng(np.random.SeedSequence(data_seed, spawn_key=(1,)))
        skip(noise.standard_normal)
        F = F + np.sqrt(sigma_data) * noise.standard_normal(n)
    return S, F


def probe_states(task, expert, seed, n=200):
    """States where the predictive spread is measured: ``n`` from the balance box, or, for
    the swing-up task, ``n`` drawn from the states its expert visits (seeded)."""
    from sim.world.data import sample_states, trajectory_states

    rng = np.random.default_rng([seed, 4])
    if task.name != "swingup":
        return sample_states(n, rng)
    pool = trajectory_states(task, expert, seed + 4, episodes=5)
    return pool[rng.integers(len(pool), size=n)]


def _mean_pred_std(controller, probe):
    """The mean over ``probe`` of the predictive standard deviation sqrt(q + R) (N)."""
    if not hasattr(controller, "predict"):
        return None
    return float(np.mean(np.sqrt(controller.predict(probe)[1])))


def probe_force(xi, epi_std, gain, cap, state, task):
    """The probing force (N) at ``state``: ``gain`` x ``epi_std`` x ``xi``, clipped to
    +-``cap`` and to what keeps the total within the actuator (the caller adds it to the
    learner's force and clips the sum at +-u_max); 0 beyond half of any failure bound of
    ``task`` (|x| > x_limit / 2, |theta| > theta_limit / 2), where excitation is not worth a fall."""
    if abs(state[0]) > 0.5 * task.x_limit or (task.theta_limit is not None
                                               and abs(state[2]) > 0.5 * task.theta_limit):
        return 0.0
    return float(np.clip(gain * epi_std * xi, -cap, cap))


def epistemic_std(controller, state):
    """The controller's epistemic standard deviation (N) of the force at one state:
    what it does not know, without the label noise it has learned to expect."""
    return float(np.sqrt(max(controller.predict_split(state[None, :])[2][0], 0.0)))


class _Loop:
    """The state of one deployed run between ticks (see ``run_deployment``)."""

    def __init__(self, controller, task, cfg, expert, samples=None):
        self.controller, self.task, self.cfg = controller, task, cfg
        if cfg.changes and expert is not None:
            raise ValueError("expert: a run with changes labels with the expert of the plant in force; pass none")
        self.expert = expert_for(task) if expert is None else expert
        self.sigma = cfg.sigma_data                  # the label noise in force
        self.pending = list(cfg.changes)
        self.learns = callable(getattr(controller, "observe", None))
        if callable(getattr(controller, "warm_up", None)):
            controller.warm_up()          # the JIT compile is not a deadline miss of the first tick
        self.counters0 = {k: int(getattr(controller, k, 0)) for k in ("n_downweighted", "n_changes")}
        if cfg.labels == "uncertain" and not callable(getattr(controller, "predict_split", None)):
            raise ValueError(f"labels: 'uncertain' needs a controller with an epistemic variance (predict_split); "
                             f"{type(controller).__name__} has none")

        def tick_rng(k):  # a resumed run does not replay the first run's resets, faults and outliers
            return np.random.default_rng([cfg.seed, k] if cfg.start == 0 else [cfg.seed, k, cfg.start])

        rng_plant, self.rng_fault, self.rng_label, self.rng_outlier, self.rng_ask, self.rng_probe = (
            tick_rng(k) for k in (1, 2, 3, 5, 6, 8))
        self.probe_gain = cfg.probe_gain(task)
        if not callable(getattr(controller, "predict_split", None)):
            self.probe_gain = 0.0          # no epistemic variance (retraining, BLoB): nothing to probe with
        self.probe_a = 1.0 - 1.0 / float(cfg.probe_memory)
        self.xi = 0.0                      # the probing signal's AR(1) state
        if samples is not None:
            self.S, self.F = samples
        elif cfg.stream == "iid":
            self.S, self.F = iid_samples(self.expert, cfg.stream_seed, cfg.stream_start, cfg.samples,
                                         sigma_data=cfg.sigma_data, task=task)
        self.probe = probe_states(task, self.expert, cfg.seed)
        self.marks = set(cfg.checkpoints or checkpoints_for(cfg.samples))
        self.res = DeployResult(start=cfg.start)
        self.plant = Episode(task, rng_plant)
        self.last_force, self.last_good = 0.0, self.plant.state.copy()
        self.miss_run = 0
        self.corrupt = False
        self.res.plant_episodes = 1

    def checkpoint(self, n, on_checkpoint, measure=None):
        cfg, res, controller = self.cfg, self.res, self.controller
        ev = evaluate_success(controller, self.task, n_episodes=cfg.episodes, seed=cfg.seed)
        p = self.task.params
        lat = np.asarray(res.update_seconds) * 1e6
        row = {"samples": cfg.start + n, "success_rate": ev.success_rate,
               # offline, no extra prediction: a sampling controller (BLoB) would draw from its inference rng
               "pred_std": _mean_pred_std(controller, self.probe) if cfg.plant else None,
               "update_p50_us": float(np.percentile(lat, 50)) if lat.size else None,
               "update_p99_us": float(np.percentile(lat, 99)) if lat.size else None,
               "deadline_misses": res.deadline_misses, "rejected": res.rejected,
               "downweighted": res.downweighted, "changes": res.changes,
               "noise_var": getattr(controller, "noise_var", None), "sensor_faults": res.sensor_faults,
               "labels": res.labels, "takeovers": res.takeovers, "falls": res.plant_failures,
               "plant": [p.m_c, p.m_p, p.l_p], "sigma_data": self.sigma,
               "rmse_expert_N": float(np.sqrt(np.mean((controller.act(self.probe) - self.expert.act(self.probe)) ** 2)))
               if cfg.changes else None,
               "metrics": {} if measure is None else measure(controller)}
        res.rows.append(row)
        if on_checkpoint is not None:
            on_checkpoint(row)

    def apply_changes(self):
        """Changes due at this tick: the plant (the state carries over, or a new episode starts
        for a change between episodes) and its expert, the label noise; what is left of an
        i.i.d. stream is relabelled by the new expert."""
        tick = self.res.ticks
        while self.pending and self.pending[0].at == tick:
            change = self.pending.pop(0)
            if change.params is not None:
                self.task = replace(self.task, params=change.params)
                self.plant.task = self.task
                self.expert = expert_for(self.task)
            if change.sigma_data is not None:
                self.sigma = change.sigma_data
            if change.restart and self.cfg.plant:       # swapped between episodes: a new one starts
                self.plant.reset()
                self.last_good = self.plant.state.copy()
            if self.cfg.stream == "iid":
                rest = self.S[tick:]
                noise = np.random.default_rng([self.cfg.seed, 7, tick]).standard_normal(len(rest))
                self.F = self.F.copy()
                self.F[tick:] = self.expert.act(rest) + np.sqrt(self.sigma) * noise

    def sense(self):
        """1. The sensor reading: the state, or NaN in one component on a fault."""
        reading = self.plant.state.copy()
        if self.cfg.fault_rate and self.rng_fault.random() < self.cfg.fault_rate:
            reading[self.rng_fault.integers(4)] = np.nan
        return reading

    def _pilot_asked(self, reading):
        """(the expert takes over, the epistemic std at ``reading`` if it was computed)."""
        cfg = self.cfg
        if cfg.labels == "random":
            return self.rng_ask.random() < cfg.label_rate, None
        if cfg.labels == "uncertain":
            epi = epistemic_std(self.controller, reading)
            return epi > cfg.ask_above, epi
        return False, None

    def _probe(self, reading, epi):
        """The probing force added to the learner's action this tick (N)."""
        if self.probe_gain == 0.0:
            return 0.0
        a = self.probe_a
        self.xi = a * self.xi + np.sqrt(1.0 - a * a) * self.rng_probe.standard_normal()
        epi = epistemic_std(self.controller, reading) if epi is None else epi
        return probe_force(self.xi, epi, self.probe_gain, self.cfg.probe_max, reading, self.task)

    def act(self, reading):
        """2. The force to send, and whether the expert (the safety pilot) sent it."""
        cfg, res = self.cfg, self.res
        fallback = (lambda s: act_one(self.expert, s)) if cfg.fallback == "lqr" else (lambda s: self.last_force)
        pilot = False
        if np.all(np.isfinite(reading)):
            pilot, epi = self._pilot_asked(reading)
            probing = self.probe_gain and not pilot
            if probing and epi is None and callable(getattr(self.controller, "act_split", None)):
                force, q = self.controller.act_split(reading)        # one input map for both
                epi = float(np.sqrt(q))
            else:
                force = act_one(self.expert if pilot else self.controller, reading)
            if not np.isfinite(force):
                res.action_faults += 1
                force = fallback(reading)
            elif probing:
                u_max = self.task.params.u_max
                force = float(np.clip(force + self._probe(reading, epi), -u_max, u_max))
                res.probe_ticks += 1
            self.last_good = reading
        else:
            res.sensor_faults += 1
            force = fallback(self.last_good)
        self.last_force = force
        res.takeovers += int(pilot)
        return force, pilot

    def label(self, reading, force, pilot):
        """4. This tick's sample ``(state, label)``, or None when nobody labels it."""
        cfg = self.cfg
        if cfg.stream == "iid":
            s, f = self.S[self.res.ticks], float(self.F[self.res.ticks])
        elif cfg.labels != "always" and not pilot:
            return None
        else:
            s = reading
            if pilot:
                f = force
            else:
                f = act_one(self.expert, reading) if np.all(np.isfinite(reading)) else np.nan
            if self.sigma > 0:
                f += float(self.rng_label.normal(0.0, np.sqrt(self.sigma)))
        if cfg.fault_rate and self.rng_fault.random() < cfg.fault_rate:
            f = np.nan
        self.corrupt = bool(cfg.outlier_rate and self.rng_outlier.random() < cfg.outlier_rate)
        if self.corrupt:
            f = float(self.rng_outlier.choice((-1000.0, 1000.0)))     # a corrupt label
        return s, f

    def learn(self, sample):
        """One update with ``sample``; returns its wall time (s)."""
        if sample is None or not self.learns:
            return 0.0
        res = self.res
        res.labels += 1
        measured = self.corrupt and callable(getattr(self.controller, "shift_bound", None))
        if measured:
            before, bound = self.controller.act(self.probe), self.controller.shift_bound(self.probe)
        t1 = time.perf_counter()
        try:
            self.controller.observe(*sample)
            res.updates += 1
        except ValueError:
            res.rejected += 1
        t_upd = time.perf_counter() - t1
        res.update_seconds.append(t_upd)
        res.corrupt += int(self.corrupt)
        if measured:
            if self._counter("n_changes") > res.changes:       # this label completed a detected change
                bound = self.controller.shift_bound(self.probe, reopened=True)
            shift = np.abs(self.controller.act(self.probe) - before)
            j = int(np.argmax(shift / bound))
            if shift[j] / bound[j] > (res.corrupt_shift / res.corrupt_bound if res.corrupt_bound else -1.0):
                res.corrupt_shift, res.corrupt_bound = float(shift[j]), float(bound[j])
        res.downweighted, res.changes = (self._counter(k) for k in ("n_downweighted", "n_changes"))
        return t_upd

    def _counter(self, name):
        """A controller counter since this run started (0 for a controller without it)."""
        return int(getattr(self.controller, name, 0)) - self.counters0[name]

    def account(self, t_act, t_upd, period):
        res = self.res
        res.ticks += 1
        res.act_seconds.append(t_act)
        if not self.cfg.plant:
            return
        if t_act + t_upd > period:
            res.deadline_misses += 1
            self.miss_run += 1
            res.longest_miss_run = max(res.longest_miss_run, self.miss_run)
        else:
            self.miss_run = 0

    def restart_if_done(self):
        if self.plant.restart_if_done():
            self.last_good = self.plant.state.copy()
        self.res.plant_episodes, self.res.plant_failures = self.plant.episodes, self.plant.failures


def run_deployment(controller, task, config: DeployConfig = DeployConfig(), *, expert=None,
                   on_checkpoint=None, on_tick=None, samples=None, measure=None):
    """Run the deployed loop for ``config.samples`` ticks.

    Parameters
    ----------
    controller
        ``act``; ``observe`` to learn (a controller without it only acts).
    task : Task or CartPoleParams
        The plant and its episode rules (``CartPoleParams``: balancing that plant).
    config : DeployConfig
    expert : object with ``act``, optional
        Labels samples and is the fallback / safety pilot (default: the task's
        expert designed for its plant, ``sim.world.experts.expert_for``).
    on_checkpoint : callable(dict), optional
        Called with each checkpoint row (the progress table).
    on_tick : callable(state, force, result), optional
        Called after every tick (the live view); returning False stops the
        run, returning a state (4,) replaces the plant's (a reset or a push).
    samples : (states (n, 4), forces (n,)), optional
        The i.i.d. stream to learn from, instead of drawing it (``iid_samples``).
    measure : callable(controller) -> dict, optional
        Extra metrics at each checkpoint, after the success rate (row ``"metrics"``).

    Returns
    -------
    DeployResult
        Its rows count samples from ``config.start`` (a resumed head's count).
    """
    if not isinstance(config, DeployConfig):
        raise TypeError(f"config: expected DeployConfig but found {type(config).__name__}")
    task = as_task(task)
    cfg = config
    period = task.params.tau if cfg.period is None else float(cfg.period)
    if samples is not None and (cfg.stream != "iid" or len(samples[0]) < cfg.samples):
        raise ValueError(f"samples: expected an i.i.d. stream of at least {cfg.samples} samples")
    loop = _Loop(controller, task, cfg, expert, samples)
    loop.checkpoint(0, on_checkpoint, measure)
    while loop.res.ticks < cfg.samples:
        loop.apply_changes()
        t0 = time.perf_counter()
        reading, force, pilot = None, 0.0, False
        if cfg.plant:
            reading = loop.sense()
            force, pilot = loop.act(reading)
        t_act = time.perf_counter() - t0
        if cfg.plant:
            loop.plant.step(force)
        t_upd = loop.learn(loop.label(reading, force, pilot))
        loop.account(t_act, t_upd, period)
        if on_tick is not None:
            reply = on_tick(loop.plant.state, force, loop.res)
            if reply is False:
                break
            if isinstance(reply, np.ndarray):    # the view's reset / push
                loop.plant.state = reply
        loop.restart_if_done()
        if loop.res.ticks in loop.marks:
            loop.checkpoint(loop.res.ticks, on_checkpoint, measure)
    return loop.res
