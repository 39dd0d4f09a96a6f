"""Fixed-timestep closed loop and batched success evaluation.

The controller interface (duck-typed, see ``Controller``):

* ``act(states) -> forces``: ``(N, 4) -> (N,)``, required;
* ``observe(state, expert_force)``: one learning update, learning controllers only;
* ``predict(states) -> (mean, variance)``: predictive force moments, optional.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from sim.world import cartpole
from sim.world.cartpole import CartPoleParams
from controller.checks import as_float_array, check_int, check_rng
from sim.world.task import as_task

__all__ = ["Controller", "ClosedLoop", "TickRecord", "Evaluation", "evaluate_success", "act_one"]


@runtime_checkable
class Controller(Protocol):
    """What the loop needs from a controller: a batched ``act``."""

    def act(self, states: np.ndarray) -> np.ndarray:  # pragma: no cover - protocol
        ...


def act_one(controller, state):
    """One state (4,) -> one force; controllers take their single-state fast path."""
    return float(np.asarray(controller.act(state), dtype=float).reshape(-1)[0])


def _check_controller(controller):
    if not callable(getattr(controller, "act", None)):
        raise ValueError(f"controller: expected an object with act(states) but found {type(controller).__name__}")
    return controller


@dataclass
class TickRecord:
    """What one control period did."""

    t: float               # time at the start of the period (s)
    state: np.ndarray      # state the action was computed from, (4,)
    force: float           # force the controller asked for (N)
    applied: float         # force after saturation (N)
    saturated: bool
    terminated: bool       # the state after the step is outside the bounds


class ClosedLoop:
    """One plant and one controller stepped at a fixed period ``tau``, by the task's rules.

    Parameters
    ----------
    controller : object with ``act``
    params : CartPoleParams or Task
        The plant (balancing it) or a task (``sim.world.task``): saturation,
        integration, wrapping and the failure test are the task's.
    state : array_like, shape (4,)
        Initial state.
    realtime : bool
        Pace ``tick`` to wall-clock time (for the live view); evaluation leaves
        it off and runs as fast as possible.
    """

    def __init__(self, controller, params: CartPoleParams, state, *, realtime=False):
        self.controller = _check_controller(controller)
        self.task = as_task(params)
        self.params = self.task.params
        self.reset(state)
        self.realtime = bool(realtime)
        self._next_deadline = None

    def reset(self, state):
        """Put the plant at ``state`` and the clock at zero."""
        self.state = as_float_array("state", state, (4,)).copy()
        self.t = 0.0
        self.steps = 0
        self.saturations = 0
        self._next_deadline = None

    def tick(self) -> TickRecord:
        """Act on the current state, saturate, advance one period."""
        if self.realtime:
            self._wait_for_period()
        force = float(np.asarray(self.controller.act(self.state[None, :])).reshape(-1)[0])
        applied, saturated = cartpole.saturate(self.params, force)
        record = TickRecord(self.t, self.state.copy(), force, float(applied), bool(saturated), False)
        if np.isfinite(applied):
            self.state = self.task.step(self.state, applied)[0]
        record.terminated = bool(self.task.failed(self.state))
        self.t += self.params.tau
        self.steps += 1
        self.saturations += int(saturated)
        return record

    def run(self, n_steps, *, stop_on_termination=True):
        """Tick up to ``n_steps`` times; returns the list of records."""
        n_steps = check_int("n_steps", n_steps, low=0)
        records = []
        for _ in range(n_steps):
            records.append(self.tick())
            if stop_on_termination and records[-1].terminated:
                break
        return records

    def _wait_for_period(self):
        now = time.perf_counter()
        if self._next_deadline is None:
            self._next_deadline = now
        delay = self._next_deadline - now
        if delay > 0:
            time.sleep(delay)
        # Fixed period; if we fell far behind, re-anchor instead of bursting.
        self._next_deadline = max(self._next_deadline + self.params.tau, time.perf_counter() - self.params.tau)


@dataclass
class Evaluation:
    """Result of ``evaluate_success``."""

    success_rate: float
    lengths: np.ndarray            # steps survived per episode (EPISODE_STEPS = success)
    saturation_fraction: float     # fraction of all steps with a clipped force
    seconds: float                 # wall time of the evaluation
    initial_states: np.ndarray = field(repr=False, default=None)

    @property
    def n_episodes(self):
        return len(self.lengths)


def evaluate_success(controller, task, n_episodes=100, seed=0, max_steps=None, backend="numba"):
    """Success rate of ``controller`` on a task (or, given ``CartPoleParams``, balancing that plant).

    All episodes run together: each period, one ``act`` call on the states of
    the live episodes and one step of their plants. Initial states come
    from ``task.reset(numpy.random.default_rng(seed), n_episodes)``, so the
    same seed gives every method the same episodes. An episode fails when
    ``task.failed`` (out of bounds, non-finite) or the controller returns a
    non-finite force; it succeeds when it lasts ``max_steps`` periods
    (default ``task.episode_steps``) with the pole upright during the final
    ``task.hold_steps`` of them. An episode that can no longer succeed stops.

    ``backend``: "numba" steps the plants in one kernel call per period
    (``sim.world.plant_numba.eval_step``), "numpy" with ``task.step`` and
    ``task.failed``, its reference; both give the same floats to the bit.

    Returns
    -------
    Evaluation
    """
    _check_controller(controller)
    task = as_task(task)
    n = check_int("n_episodes", n_episodes, low=1)
    max_steps = task.episode_steps if max_steps is None else check_int("max_steps", max_steps, low=1)
    if backend not in ("numba", "numpy"):
        raise ValueError(f"backend: expected 'numba' or 'numpy' but found {backend!r}")
    hold_from = max_steps - min(task.hold_steps, max_steps)
    rng = check_rng(seed)
    start = time.perf_counter()
    s0 = task.reset(rng, n)
    state = s0.copy()
    alive = np.ones(n, dtype=bool)
    lengths = np.full(n, max_steps, dtype=np.int64)
    step = _numba_step(task) if backend == "numba" else _numpy_step
    saturated_steps = 0
    total_steps = 0
    for k in range(max_steps):
        idx = np.flatnonzero(alive)
        if idx.size == 0:
            break
        force = np.asarray(controller.act(state[idx]), dtype=float).reshape(idx.size)
        saturated_steps += step(task, state, idx, force, k, hold_from, lengths, alive)
        total_steps += idx.size
    seconds = time.perf_counter() - start
    return Evaluation(
        success_rate=float(np.mean(alive)),
        lengths=lengths,
        saturation_fraction=saturated_steps / max(total_steps, 1),
        seconds=seconds,
        initial_states=s0,
    )


def _numpy_step(task, state, idx, force, k, hold_from, lengths, alive):
    """One period of the live episodes ``idx`` with ``task.step`` (the reference of
    ``plant_numba.eval_step``); returns how many forces saturated."""
    nxt, saturated = task.step(state[idx], force)
    state[idx] = nxt
    failed = task.failed(nxt) | ~np.isfinite(force)
    if k >= hold_from:
        failed |= ~task.upright(nxt)
    dead = idx[failed]
    lengths[dead] = k + 1
    alive[dead] = False
    return int(np.count_nonzero(saturated))


def _numba_step(task):
    """``_numpy_step`` by the kernel ``plant_numba.eval_step`` for ``task``."""
    from sim.world.plant_numba import eval_step, plant_args

    args = plant_args(task)

    def step(task, state, idx, force, k, hold_from, lengths, alive):
        return int(eval_step(state, idx, np.ascontiguousarray(force), args, k, hold_from, lengths, alive))

    return step
