"""Resumable experiment output: one JSON file per finished trial.

``sim.experiments.trials.run_jobs(..., store=...)`` saves each result the moment it
arrives and skips the jobs whose file is already there. The files live in one
folder (``kbt experiment ... --out DIR`` uses ``DIR/trials/``):

* ``_settings.json``: the experiment's settings and their fingerprint;
* ``kbt-3.json`` (learning: method ``kbt``, trial 3) or ``sigma-20.0.json``
  (variance: Sigma_data = 20): the result, with the same fingerprint.

Only settings that change a single trial's result enter the fingerprint: the
list of methods, the number of trials and the Sigma_data values of Figure 5
do not, so a resumed run may add methods, trials or variances. The code
that shapes a trial does (``code_version``: the package version and a hash of
the sources and data files a trial runs), and every trial file records it:
a resume after an upgrade or an edit is refused with one line instead of
mixing trials of two versions in one table. Floats are
written with ``repr`` (JSON's own), so a result read back is bit-identical to
the one computed; NaN and infinities are kept.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import hashlib
import json
import os
from importlib.metadata import PackageNotFoundError, version


from sim.loops.stream import TrialResult, to_plain

__all__ = ["JsonTrialStore", "LearningTrialStore", "VarianceTrialStore", "SETTINGS_FILE", "code_version"]

SETTINGS_FILE = "_settings.json"     # no method or variance key starts with "_"

#: what a trial runs, relative to the folder holding the packages: the library, its
#: shipped weights, the world, the loops, the experiments' runners, the C export
#: (kbt-c, rls-c); not the command line, the view or the reports, which shape no result
TRIAL_SOURCES = ("controller/**/*.py", "controller/data/*.npz", "sim/world/*.py", "sim/loops/*.py",
                 "sim/pretraining/*.py", "sim/experiments/drift.py", "sim/experiments/offline.py",
                 "sim/experiments/onpolicy.py", "sim/experiments/adapt.py", "sim/experiments/trials.py", "firmware_profile/**/*.py",
                 "firmware_profile/export/templates/*")


@functools.lru_cache(maxsize=None)
def code_version():
    """``"VERSION+HASH"``: the package version and 12 hex digits of SHA-256 over the files
    of ``TRIAL_SOURCES`` (paths and contents, line endings as LF), the code a trial ran."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    root = os.path.dirname(root)                      # sim/experiments -> sim -> the packages' folder
    files = sorted({os.path.relpath(p, root).replace(os.sep, "/")
                    for pattern in TRIAL_SOURCES
                    for p in glob.glob(os.path.join(root, pattern), recursive=True) if os.path.isfile(p)})
    h = hashlib.sha256()
    for rel in files:
        with open(os.path.join(root, rel), "rb") as f:
            h.update(rel.encode() + b"\0" + f.read().replace(b"\r\n", b"\n") + b"\0")
    try:
        v = version("kbt")
    except PackageNotFoundError:      # pragma: no cover - a tree that was never installed
        v = "unknown"
    return f"{v}+{h.hexdigest()[:12]}"


class JsonTrialStore:
    """A folder of JSON trial files for ``run_jobs`` (``key``, ``load``, ``save``).

    Parameters
    ----------
    directory : str
        Created if missing.
    settings : dict
        ``{name: text}`` of every setting a trial's result depends on.
    resume : bool
        True: keep the files there and load them; refuse (ValueError) a folder
        written with other settings. False: delete the trial files there
        (``discarded`` counts them) and start afresh.

    Subclasses define ``key(job)``, ``encode(result) -> dict`` and
    ``decode(dict) -> result``. ``loaded`` and ``saved`` count the trials read
    back and written.
    """

    def __init__(self, directory, settings, *, resume=False):
        if not isinstance(directory, (str, os.PathLike)) or not os.fspath(directory):
            raise ValueError(f"directory: expected a folder name but found {directory!r}")
        self.directory = os.fspath(directory)
        self.settings = {str(k): str(v) for k, v in settings.items()}
        self.settings["code"] = code_version()
        self.fingerprint = hashlib.sha256(json.dumps(self.settings, sort_keys=True).encode()).hexdigest()[:16]
        self.resume = bool(resume)
        self.loaded = self.saved = self.discarded = 0
        os.makedirs(self.directory, exist_ok=True)
        manifest = os.path.join(self.directory, SETTINGS_FILE)
        old = _read_json(manifest)
        if self.resume and old is not None and (old.get("fingerprint"), old.get("settings")) != (
                self.fingerprint, self.settings):
            self._refuse(old.get("settings", {}))
        if not self.resume:
            for path in glob.glob(os.path.join(glob.escape(self.directory), "*.json")):
                if os.path.basename(path) != SETTINGS_FILE:
                    os.remove(path)
                    self.discarded += 1
            for path in glob.glob(os.path.join(glob.escape(self.directory), "*.json.*.tmp")):
                os.remove(path)          # left by a kill during a write
        if old != {"fingerprint": self.fingerprint, "settings": self.settings}:
            _write_json(manifest, {"fingerprint": self.fingerprint, "settings": self.settings})

    def _refuse(self, old):
        code = old.get("code", "an earlier version")
        if code != self.settings["code"] and {k: v for k, v in old.items() if k != "code"} == {
                k: v for k, v in self.settings.items() if k != "code"}:
            raise ValueError(f"resume: {self.directory} holds trials made by other code ({code}; this is "
                             f"{self.settings['code']}); start afresh without --resume, or resume with that code")
        changed = []
        for k in sorted(set(old) | set(self.settings)):
            a, b = old.get(k, "(none)"), self.settings.get(k, "(none)")
            if a != b:
                changed.append(f"{k} {a} -> {b}" if len(a) + len(b) < 40 else k)
        raise ValueError(f"resume: {self.directory} holds trials made with other settings "
                         f"({'; '.join(changed) or 'unknown'}); resume with the same settings, or start afresh")

    def path(self, key):
        return os.path.join(self.directory, f"{key}.json")

    def load(self, key):
        """The stored result of ``key``, or None if absent or unreadable (a file cut short by a kill)."""
        data = _read_json(self.path(key)) if self.resume else None
        if not isinstance(data, dict) or "result" not in data:
            return None
        if data.get("fingerprint") != self.fingerprint:
            raise ValueError(f"resume: {self.path(key)} was made with other settings; resume with the same "
                             "settings, or start afresh")
        self.loaded += 1
        return self.decode(data["result"])

    def save(self, key, result):
        _write_json(self.path(key), {"fingerprint": self.fingerprint, "code": self.settings["code"], "key": key,
                                     "result": self.encode(result)})
        self.saved += 1

    def key(self, job):
        raise NotImplementedError

    def encode(self, result):
        raise NotImplementedError

    def decode(self, data):
        raise NotImplementedError


def _spec_settings(kind, spec, skip):
    """``{field: repr}`` of a frozen spec dataclass, without the fields in ``skip``."""
    out = {"experiment": kind}
    out.update({f.name: repr(getattr(spec, f.name)) for f in dataclasses.fields(spec) if f.name not in skip})
    return out


class LearningTrialStore(JsonTrialStore):
    """Trials of ``sim.experiments.offline.run_learning``: jobs ``(spec, method, trial)``,
    results ``(method, trial, TrialResult)``, files ``METHOD-TRIAL.json``."""

    def __init__(self, directory, spec, *, resume=False):
        super().__init__(directory, _spec_settings("learning", spec, ("methods", "trials")), resume=resume)
        self.spec = spec

    def key(self, job):
        spec, method, trial = job
        if spec != self.spec:
            raise ValueError("store: a job's spec differs from the store's")
        return f"{method}-{int(trial)}"

    def encode(self, result):
        method, trial, res = result
        return {"method": method, "trial": int(trial), **res.to_dict()}

    def decode(self, data):
        return data["method"], data["trial"], TrialResult.from_dict(data)


class VarianceTrialStore(JsonTrialStore):
    """Runs of ``sim.experiments.offline.run_variance``: jobs ``(spec, sigma_data)``,
    results ``(sigma_data, dict)``, files ``sigma-S.json`` (S exact, as ``repr``)."""

    def __init__(self, directory, spec, *, resume=False):
        super().__init__(directory, _spec_settings("variance", spec, ("sigma_data",)), resume=resume)
        self.spec = spec

    def key(self, job):
        spec, sigma_data = job
        if spec != self.spec:
            raise ValueError("store: a job's spec differs from the store's")
        return f"sigma-{float(sigma_data)!r}"

    def encode(self, result):
        sigma_data, run = result
        return {"sigma_data": float(sigma_data), "run": to_plain(run)}

    def decode(self, data):
        return data["sigma_data"], data["run"]




def _read_json(path):
    """The JSON in ``path``, or None if it is missing or not valid JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _write_json(path, payload):
    """Write atomically (temporary file, then rename): a kill leaves the old file or the new one."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f)
    os.replace(tmp, path)
