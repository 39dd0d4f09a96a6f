"""What a saved head records about its run, and how a resumed run continues it.

A state file keeps, next to the head, a ``__run__`` record (JSON): the run's
settings (method, task, plant, stream, label noise, seed, head settings) and
where its sample stream stopped. A run resumed from it continues the sample
count, and the i.i.d. stream of its data seed from the sample after the last
one the head saw (docs/deployed-loop.md). The command line maps its flags onto
these fields (``sim.cli.resume``); this module knows only the record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from sim.loops.deploy import STREAMS
from sim.world.cartpole import INTEGRATORS

__all__ = ["RUN_RECORD_VERSION", "STATEFUL", "HEAD_FLAGS", "HEAD_FLAGS_GAUSSIAN", "HEAD_FLAGS_SOFTMAX",
           "RUN_SETTINGS", "Resume", "json_value", "data_seed", "head_flags", "run_record", "save_run_state", "valid_record",
           "peek_state"]

RUN_RECORD_VERSION = 1
#: methods with a head to save and resume
STATEFUL = ("kbt", "kbt-softmax", "rls", "kbt-c", "rls-c")
#: head settings in the record (their flags' dest) -> HeadConfig field, per head output
HEAD_FLAGS = {"head_layers": "n_layers", "prior_var": "prior_var", "obs_noise": "obs_noise"}
HEAD_FLAGS_GAUSSIAN = dict(HEAD_FLAGS, noise="noise", inputs="inputs", robust="robust", detect="change_threshold")
HEAD_FLAGS_SOFTMAX = dict(HEAD_FLAGS, update="update")
#: run settings in the record -> the flags that set them
RUN_SETTINGS = {"stream": "--stream", "sigma_data": "--sigma-data", "seed": "--seed", "integrator": "--integrator"}


def head_flags(method):
    """The head settings a record of ``method`` keeps."""
    return HEAD_FLAGS_SOFTMAX if method == "kbt-softmax" else HEAD_FLAGS_GAUSSIAN


def data_seed(seed):
    """The i.i.d. stream's data seed of a run with ``seed`` (one more, as in the experiments)."""
    return seed + 1


@dataclass
class Resume:
    """Where a resumed run stands: ``start`` samples seen before it, ``positions``
    {data seed: next sample of its i.i.d. stream}, the ``record`` read (None: none,
    "invalid": unusable) and ``notes`` (flag, given, saved) of settings that differ."""

    start: int = 0
    positions: dict = field(default_factory=dict)
    record: object = None
    notes: list = field(default_factory=list)

    def position(self, seed):
        """``(start, data_start)``: samples seen, and where the i.i.d. stream of ``seed`` continues."""
        return self.start, self.positions.get(str(data_seed(seed)), 0)

    def continue_from(self, n_updates, seed):
        """After a head loaded: take the count and positions from the record, or, without a
        usable record, count from the ``n_updates`` labels the head has seen (taken as the
        first of the stream of ``seed``). Returns whether the record gave them."""
        if isinstance(self.record, dict):
            self.start = self.record["samples"]
            self.positions = {k: int(v) for k, v in self.record["positions"].items()}
            return True
        self.start = n_updates
        self.positions = {str(data_seed(seed)): n_updates}
        return False


def run_record(*, method, task, system, params, stream, sigma_data, seed, head, consumed, resume=None):
    """The ``__run__`` record of a state file written after ``consumed`` samples of this run.

    ``params`` is the plant (``CartPoleParams``), ``head`` {setting: value} (``head_flags``).
    """
    resume = resume or Resume()
    start, data_start = resume.position(seed)
    positions = dict(resume.positions)
    if stream == "iid":
        positions[str(data_seed(seed))] = data_start + consumed
    return {"version": RUN_RECORD_VERSION, "method": method, "task": task, "system": system,
            "m_c": params.m_c, "m_p": params.m_p, "l_p": params.l_p, "integrator": params.integrator,
            "stream": stream, "sigma_data": float(sigma_data or 0.0), "seed": seed,
            "samples": start + consumed, "data_seed": data_seed(seed),
            "stream_position": positions.get(str(data_seed(seed)), 0), "positions": positions, "head": head}


def save_run_state(controller, path, record):
    """Save the controller's head to ``path`` with the run ``record`` (atomic, as every state file)."""
    text = json.dumps(record, default=json_value)
    controller.save_state(path, extra={"__run__": np.array(text)})


def json_value(o):
    """``json.dump``'s ``default``: NumPy arrays and scalars as plain lists and numbers."""
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def valid_record(run):
    """The ``__run__`` record if it is one this kbt can use, else None."""
    def number(v, low=0.0):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and v >= low

    def count(v):
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    try:
        ok = (isinstance(run, dict) and run.get("version") == RUN_RECORD_VERSION
              and run.get("method") in STATEFUL and isinstance(run.get("system"), str)
              and all(number(run.get(k)) and run[k] > 0 for k in ("m_c", "m_p", "l_p"))
              and run.get("integrator") in INTEGRATORS and run.get("stream") in STREAMS
              and number(run.get("sigma_data")) and count(run.get("seed")) and count(run.get("samples"))
              and isinstance(run.get("positions"), dict)
              and all(k.isdigit() and count(v) for k, v in run["positions"].items())
              and isinstance(run.get("head"), dict) and set(run["head"]) <= set(head_flags(run["method"])))
    except (TypeError, AttributeError):
        ok = False
    return run if ok else None


def peek_state(path):
    """``(record, method)`` of a state file: its ``__run__`` record (None if it has
    none, "invalid" if unusable) and the method it names (None if it does not).
    A file that cannot be read gives (None, None): loading it explains why."""
    try:
        with np.load(path, allow_pickle=False) as data:
            text = str(data["__run__"]) if "__run__" in data.files else None
            method = str(data["__method__"]) if "__method__" in data.files else None
    except Exception:               # noqa: BLE001 - any unreadable file; loading it reports why
        return None, None
    if text is None:
        return None, method
    try:
        run = valid_record(json.loads(text))
    except ValueError:
        run = None
    return (run if run is not None else "invalid"), method
