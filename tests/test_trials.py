"""sim.experiments.trials.run_jobs (in-process, a local process pool, a Dask scheduler address) and the resumable
trial store."""

import dataclasses
import json
import math
import os
import subprocess
import sys
from importlib.metadata import version

import numpy as np
import pytest

from sim.experiments import offline as ex
from sim.loops.stream import Checkpoint, TrialResult
from sim.experiments.trial_store import LearningTrialStore, VarianceTrialStore
from sim.experiments.trials import THREAD_VARS, JobError, run_jobs

TINY = ex.LearningSpec.quick(methods=("kbt", "rls"), trials=2, samples=20, episodes=5)


def _without_timing(results):
    """A learning result as JSON text without the wall-clock field (NaN compares equal as text)."""
    methods = {m: {k: v for k, v in s.items() if k != "learn_seconds"} for m, s in results["methods"].items()}
    return json.dumps({**results, "methods": methods}, sort_keys=True)


class DictStore:
    """An in-memory store: keys are the jobs' repr."""

    def __init__(self):
        self.data = {}

    def key(self, job):
        return repr(job)

    def load(self, key):
        return self.data.get(key)

    def save(self, key, result):
        self.data[key] = result


# ---------------------------------------------------------------- in-process
def test_in_process_results_in_job_order_and_no_dask_import():
    code = ("import sys, math; from sim.experiments.trials import run_jobs; "
            "print(run_jobs(math.factorial, [3, 0, 5], progress=False), 'distributed' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[6,", "1,", "120]", "False"]


def test_job_error_names_the_job_and_keeps_finished_results():
    store = DictStore()
    with pytest.raises(JobError, match=r"squares: job 2 \(-1.0\) failed: ValueError: math domain error") as e:
        run_jobs(math.sqrt, [4.0, 9.0, -1.0, 16.0], label="squares", progress=False, store=store)
    assert isinstance(e.value.__cause__, ValueError) and e.value.index == 2
    assert store.data == {"4.0": 2.0, "9.0": 3.0}          # saved as they finished, before the failure


def test_bad_arguments():
    cases = [(dict(fn=3), "fn"), (dict(jobs=iter([1])), "jobs"), (dict(workers=0), "workers"),
             (dict(workers=1.5), "workers"), (dict(scheduler=""), "scheduler"), (dict(scheduler=8786), "scheduler"),
             (dict(label=None), "label"), (dict(progress="yes"), "progress"), (dict(store=object()), "store")]
    for kw, name in cases:
        args = {"fn": math.sqrt, "jobs": [1.0], **kw}
        with pytest.raises(ValueError, match=f"^{name}: "):
            run_jobs(args.pop("fn"), args.pop("jobs"), **args)

    class SameKey(DictStore):
        def key(self, job):
            return "k"

    with pytest.raises(ValueError, match="^store: jobs 0 and 1 have the same key"):
        run_jobs(math.sqrt, [1.0, 2.0], store=SameKey(), progress=False)
    # an unpicklable function is refused before any cluster starts
    with pytest.raises(ValueError, match="^fn: cannot be pickled"):
        run_jobs(lambda x: x, [1], workers=2, progress=False)


# ---------------------------------------------------------------- the local pool
def test_local_pool_results_errors_threads_and_no_dask_import():
    code = ("import sys, math, os; from sim.experiments.trials import run_jobs, THREAD_VARS, JobError\n"
            "print(run_jobs(math.factorial, [3, 0, 5, 4], workers=2, progress=False))\n"
            "print(run_jobs(os.getenv, list(THREAD_VARS), workers=2, progress=False) == ['1'] * len(THREAD_VARS))\n"
            "print([os.getenv(k) for k in THREAD_VARS])\n"
            "saved = {}\n"
            "class S:\n"
            "    key = staticmethod(repr)\n"
            "    load = staticmethod(lambda k: None)\n"
            "    save = staticmethod(saved.__setitem__)\n"
            "try:\n"
            "    run_jobs(math.sqrt, [4.0, -1.0], workers=2, progress=False, store=S())\n"
            "except JobError as e:\n"
            "    print(e.index, type(e.__cause__).__name__)\n"
            "print('distributed' in sys.modules)\n")
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                         timeout=120).stdout.splitlines()
    assert out == ["[6, 1, 120, 24]", "True", "[None, None, None]", "1 ValueError", "False"]


# ---------------------------------------------------------------- the store
def test_trial_result_round_trips_exactly_through_json():
    res = TrialResult(checkpoints=[Checkpoint(0, 0.25, {"rmse": 0.1 + 0.2, "nll": np.nan, "quantiles": [1 / 3, np.inf],
                                                        "reliability": {"count": [np.int64(3)]}})],
                      learn_seconds=np.array([1e-5, 2.0 / 3.0]), rejected=1, downweighted=2, changes=1)
    back = TrialResult.from_dict(json.loads(json.dumps(res.to_dict())))
    assert back.learn_seconds.tolist() == res.learn_seconds.tolist()
    assert back.checkpoints[0].metrics["rmse"] == 0.1 + 0.2 and np.isnan(back.checkpoints[0].metrics["nll"])
    assert json.dumps(back.to_dict()) == json.dumps(res.to_dict())
    assert (back.rejected, back.downweighted, back.checkpoints[0].samples) == (1, 2, 0)


def test_resume_recomputes_only_missing_trials(tmp_path, monkeypatch):
    calls = []
    job = ex._learning_job

    def counted(args):
        calls.append(args[1:])
        return job(args)

    monkeypatch.setattr(ex, "_learning_job", counted)
    out = tmp_path / "trials"
    first = ex.run_learning(TINY, progress=False, store=LearningTrialStore(out, TINY))
    assert len(calls) == 4
    assert sorted(p.name for p in out.iterdir()) == ["_settings.json", "kbt-0.json", "kbt-1.json", "rls-0.json",
                                                     "rls-1.json"]
    (out / "kbt-1.json").unlink()
    calls.clear()
    store = LearningTrialStore(out, TINY, resume=True)
    second = ex.run_learning(TINY, progress=False, store=store)
    assert calls == [("kbt", 1)] and (store.loaded, store.saved) == (3, 1)
    assert _without_timing(second) == _without_timing(first)
    for m, t in (("kbt", 0), ("rls", 0), ("rls", 1)):        # read back: bit-identical, timings included
        assert second["methods"][m]["learn_seconds"][t] == first["methods"][m]["learn_seconds"][t]
    calls.clear()
    third = ex.run_learning(TINY, progress=False, store=LearningTrialStore(out, TINY, resume=True))
    assert calls == [] and json.dumps(third) == json.dumps(second)
    # more trials resume too; other settings are refused in one line; without resume the folder is replaced
    more = LearningTrialStore(out, dataclasses.replace(TINY, trials=3), resume=True)
    assert more.load("kbt-0") is not None
    with pytest.raises(ValueError, match=r"^resume: .* other settings \(samples 20 -> 30\)[^\n]*$"):
        LearningTrialStore(out, dataclasses.replace(TINY, samples=30), resume=True)
    fresh = LearningTrialStore(out, dataclasses.replace(TINY, samples=30))
    assert fresh.discarded == 4 and os.listdir(out) == ["_settings.json"]


def test_variance_store_resumes(tmp_path):
    spec = ex.VarianceSpec(sigma_data=(0.0, 20.0), samples=30, window=10, record_every=5)
    first = ex.run_variance(spec, progress=False, store=VarianceTrialStore(tmp_path, spec))
    assert sorted(os.listdir(tmp_path)) == ["_settings.json", "sigma-0.0.json", "sigma-20.0.json"]
    store = VarianceTrialStore(tmp_path, spec, resume=True)
    again = ex.run_variance(spec, progress=False, store=store)
    assert (store.loaded, store.saved) == (2, 0) and json.dumps(again) == json.dumps(first)


# ---------------------------------------------------------------- local pool and Dask
@pytest.mark.slow
def test_local_pool_matches_in_process():
    a = ex.run_learning(TINY, jobs=1, progress=False)
    b = ex.run_learning(TINY, jobs=2, progress=False)
    assert _without_timing(a) == _without_timing(b)
    assert [len(t) for t in b["methods"]["kbt"]["learn_seconds"]] == [20, 20]


@pytest.fixture(scope="module")
def scheduler():
    """The address of a one-worker Dask LocalCluster whose worker has one BLAS thread (as
    ``dask worker ADDRESS --nthreads 1`` started with ``THREAD_VARS`` set)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                      env={k: "1" for k in THREAD_VARS}) as cluster:
        yield cluster.scheduler_address


def test_scheduler_address_runs_saves_and_names_errors(scheduler):
    store = DictStore()
    assert run_jobs(math.factorial, [5, 0, 3], scheduler=scheduler, progress=False, store=store) == [120, 1, 6]
    assert store.data == {"5": 120, "0": 1, "3": 6}
    store.data.pop("0")
    assert run_jobs(math.sqrt, [5, 0, 3], scheduler=scheduler, progress=False, store=store) == [120, 0.0, 6]
    with pytest.raises(JobError, match=r"job 1 \(-4.0\) failed: ValueError: math domain error"):
        run_jobs(math.sqrt, [1.0, -4.0], scheduler=scheduler, progress=False)
    # the worker processes run with one BLAS thread
    assert run_jobs(os.getenv, list(THREAD_VARS), scheduler=scheduler, progress=False) == ["1"] * len(THREAD_VARS)


# ---------------------------------------------------------------- the command line
def test_cli_resume_and_scheduler_flags(tmp_path, capsys):
    from sim.cli import main

    out = tmp_path / "fig3"
    base = ["experiment", "fig3", "--methods", "kbt", "--trials", "1", "--episodes", "2", "--jobs", "1",
            "--no-progress", "--out", str(out)]
    assert main(base + ["--samples", "20"]) == 0
    first = json.loads((out / "results.json").read_text())
    assert sorted(os.listdir(out / "trials")) == ["_settings.json", "kbt-0.json"]
    capsys.readouterr()
    assert main(base + ["--samples", "20", "--resume"]) == 0
    assert "kbt experiment: 1 trials resumed from" in capsys.readouterr().err
    again = json.loads((out / "results.json").read_text())
    assert again["methods"] == first["methods"]                  # timings included: read back, not re-run
    for extra, message in ((["--samples", "30", "--resume"], "--resume: "),
                           (["--scheduler", "tcp://127.0.0.1:1"], "--jobs: does not apply with --scheduler"),
                           (["--scheduler", " "], "--scheduler: expected an address")):
        with pytest.raises(SystemExit) as e:
            main(base + extra)
        err = capsys.readouterr().err
        assert e.value.code == 2 and f"kbt experiment: error: {message}" in err and err.count("\n") == 1, err
    with pytest.raises(SystemExit) as e:
        main(["experiment", "calibration", "--from", str(out), "--resume", "--out", str(tmp_path / "cal")])
    assert e.value.code == 2 and "--resume: does not apply with --from" in capsys.readouterr().err


def test_a_bad_scheduler_loses_no_stored_trial(tmp_path, capsys):
    """The scheduler is reached before the trial store replaces anything: a malformed address is one
    line naming --scheduler (exit 2), an unreachable one exits 1, and the finished trials stay."""
    from sim.cli import main

    out = tmp_path / "fig3"
    base = ["experiment", "fig3", "--methods", "rls", "--trials", "1", "--samples", "10", "--episodes", "2",
            "--no-progress", "--out", str(out)]
    assert main(base + ["--jobs", "1"]) == 0
    kept = sorted(os.listdir(out / "trials"))
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(base + ["--scheduler", "foo"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("kbt experiment: error: --scheduler: ") and err.count("\n") == 1
    # a port nothing listens on: given up after the connect timeout (10 s)
    with pytest.raises(SystemExit) as e:
        main(base + ["--scheduler", "tcp://127.0.0.1:1"])
    assert e.value.code == 1 and capsys.readouterr().err.count("\n") == 1
    assert sorted(os.listdir(out / "trials")) == kept and "rls-0.json" in kept


def test_a_store_written_by_other_code_is_refused_in_one_line(tmp_path, capsys):
    """Every trial records the code it ran; a resume across code versions is refused (exit 2, one line)."""
    from sim.cli import main
    from sim.experiments.trial_store import code_version

    out = tmp_path / "fig3"
    argv = ["experiment", "fig3", "--methods", "rls", "--trials", "1", "--samples", "10", "--episodes", "3",
            "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    trial = json.loads((out / "trials" / "rls-0.json").read_text())
    assert trial["code"] == code_version() and code_version().startswith(version("kbt") + "+")
    manifest = out / "trials" / "_settings.json"
    old = json.loads(manifest.read_text())
    old["settings"]["code"] = "0.0.9+0123456789ab"          # as an earlier release would have written it
    manifest.write_text(json.dumps(old))
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(argv + ["--resume"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1
    assert f"holds trials made by other code (0.0.9+0123456789ab; this is {code_version()})" in err
    # the same code resumes it, reading its trial back
    old["settings"]["code"] = code_version()
    manifest.write_text(json.dumps(old))
    assert main(argv + ["--resume"]) == 0
    assert json.loads((out / "trials" / "rls-0.json").read_text()) == trial


def test_code_version_hashes_the_sources_a_trial_runs(monkeypatch, tmp_path):
    """Another byte in a source a trial runs is another version; a file outside them is not."""
    import shutil

    from sim.experiments import trial_store

    root = tmp_path / "pkgs"
    for pkg in ("controller", "sim", "firmware_profile"):
        shutil.copytree(os.path.join(os.path.dirname(os.path.dirname(trial_store.__file__)), "..", pkg),
                        root / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    here = root / "sim" / "experiments" / "trial_store.py"
    monkeypatch.setattr(trial_store, "__file__", str(here))
    versions = []
    for edit in (None, root / "sim" / "cli" / "run.py", root / "controller" / "kbt.py"):
        if edit is not None:
            edit.write_text(edit.read_text() + "\n# one more line\n")
        trial_store.code_version.cache_clear()
        versions.append(trial_store.code_version())
    trial_store.code_version.cache_clear()
    assert versions[0] == versions[1] != versions[2]          # the CLI shapes no trial; the controller does
