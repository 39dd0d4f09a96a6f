"""Run a list of independent seeded jobs, in-process or on Dask distributed.

One job of this module: ``run_jobs(fn, jobs)`` returns ``[fn(job) for job in
jobs]``, in job order, whichever backend ran them:

* in-process (``workers=1``, no scheduler; Dask is not even imported);
* a pool of ``workers`` local processes (``concurrent.futures``, one BLAS thread
  each; Dask is not imported either: a local cluster's scheduler and nannies cost
  about a quarter of the CPU time of a two-worker swing-up run, and seconds to start);
* an existing Dask scheduler (``scheduler="tcp://host:8786"``) and whatever
  workers joined it (``dask scheduler`` / ``dask worker ADDRESS --nthreads 1``).

Every job carries its own seeds, so the results do not depend on the backend
or on the order in which the jobs finish. With a ``store`` (e.g.
``sim.experiments.trial_store.LearningTrialStore``) each result is saved the moment it
arrives and jobs already in the store are not run again: a killed run loses
no finished job.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import pickle
import uuid

from controller.checks import check_int
from sim.loops.progress import Progress

__all__ = ["run_jobs", "JobError", "THREAD_VARS"]

#: set to 1 in the worker processes: the matrices here are tiny, and several
#: multi-threaded BLAS pools on the same cores spin against each other
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
CONNECT_TIMEOUT = "10s"          # how long to wait for an external scheduler


class JobError(RuntimeError):
    """A job raised. ``index`` and ``name`` say which; the job's own exception is ``__cause__``."""

    def __init__(self, label, index, name, error):
        super().__init__(f"{label}: job {index} ({name}) failed: {type(error).__name__}: {error}")
        self.index = index
        self.name = name


def run_jobs(fn, jobs, *, workers=1, scheduler=None, label="trials", progress=True, store=None):
    """Run ``fn(job)`` for every job; results in job order.

    Parameters
    ----------
    fn : callable
        A module-level (picklable) function of one argument; workers import it
        by name, so its package must be installed where they run.
    jobs : list
        Picklable arguments, one per call; each must carry its own seeds.
    workers : int
        1 (and no ``scheduler``): run in this process. More: a pool of this many spawned
        processes (one BLAS thread each) for the call. Ignored when ``scheduler`` is given.
    scheduler : str, optional
        Address of a running Dask scheduler, e.g. ``"tcp://127.0.0.1:8786"``;
        its workers run the jobs.
    label : str
        Name of the progress bar and of the jobs in error messages.
    progress : bool
        Show a progress bar (``sim.loops.progress.Progress``, on stderr).
    store : object, optional
        Has ``key(job) -> str``, ``load(key) -> result or None`` and ``save(key, result)``.
        Jobs whose key loads are not run; every new result is saved as it arrives.

    Returns
    -------
    list
        ``fn(job)`` (or the stored result) for each job, in the order of ``jobs``.

    Raises
    ------
    ValueError
        An argument is invalid (the message names it), or ``fn`` / a job cannot be pickled.
    JobError
        A job raised; the message names the job (its store key, else its repr), the
        original exception is chained, results saved before stay saved.
    OSError
        The scheduler at ``scheduler`` cannot be reached.
    """
    jobs, workers = _check_args(fn, jobs, workers, scheduler, label, progress, store)
    keys, out = _stored(store, jobs)
    todo = [i for i, result in enumerate(out) if result is None]
    names = [_short(repr(job)) if keys is None else keys[i] for i, job in enumerate(jobs)]
    with Progress(len(jobs), label, enabled=progress) as bar:
        if len(todo) < len(jobs):
            bar.update(len(jobs) - len(todo), resumed=len(jobs) - len(todo))

        def finished(i, result):        # kept at once: an interrupted run loses no finished job
            out[i] = result
            if store is not None:
                store.save(keys[i], result)
            bar.update(1)

        if todo and workers == 1 and scheduler is None:
            _run_here(fn, jobs, todo, names, finished, label)
        elif todo and scheduler is None:
            _run_pool(fn, jobs, todo, names, finished, workers=workers, label=label)
        elif todo:
            _run_dask(fn, jobs, todo, names, finished, scheduler=scheduler, label=label)
    return out


def _stored(store, jobs):
    """Each job's store key and stored result (None and no results without a store);
    ValueError if two jobs share a key."""
    if store is None:
        return None, [None] * len(jobs)
    keys = [store.key(job) for job in jobs]
    if len(set(keys)) != len(keys):
        first = {}
        i, j = next((first[k], i) for i, k in enumerate(keys) if first.setdefault(k, i) != i)
        raise ValueError(f"store: jobs {i} and {j} have the same key {keys[i]!r}; store.key must tell jobs apart")
    return keys, [store.load(k) for k in keys]


def _run_here(fn, jobs, todo, names, finished, label):
    """The jobs of ``todo`` one after another in this process."""
    for i in todo:
        try:
            result = fn(jobs[i])
        except Exception as e:
            raise JobError(label, i, names[i], e) from e
        finished(i, result)


def _check_args(fn, jobs, workers, scheduler, label, progress, store):
    if not callable(fn):
        raise ValueError(f"fn: expected a callable but found {type(fn).__name__}")
    if not isinstance(jobs, (list, tuple)):
        raise ValueError(f"jobs: expected a list but found {type(jobs).__name__}")
    workers = check_int("workers", workers, low=1)
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise ValueError(f"scheduler: expected an address such as 'tcp://127.0.0.1:8786' but found {scheduler!r}")
    if not isinstance(label, str):
        raise ValueError(f"label: expected a string but found {type(label).__name__}")
    if not isinstance(progress, bool):
        raise ValueError(f"progress: expected True or False but found {progress!r}")
    if store is not None:
        missing = [m for m in ("key", "load", "save") if not callable(getattr(store, m, None))]
        if missing:
            raise ValueError(f"store: expected an object with key, load and save but it lacks {', '.join(missing)}")
    return list(jobs), workers


def _short(text, limit=120):
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _payload(fn, job, index, name):
    """``(fn, job)`` pickled here, so an unpicklable one fails before any work with a clear message.

    The payload is opaque bytes: Dask does not look inside it (a tuple argument
    whose first item is callable would otherwise be read as a task).
    """
    try:
        pickle.dumps(fn, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:
        raise ValueError(f"fn: cannot be pickled for the workers (use a module-level function): {e}") from None
    try:
        return pickle.dumps((fn, job), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:
        raise ValueError(f"jobs[{index}]: job {name} cannot be pickled for the workers: {e}") from None


def _call(payload):
    """What a worker runs: unpickle ``(fn, job)`` and call."""
    fn, job = pickle.loads(payload)
    return fn(job)


@contextlib.contextmanager
def _one_blas_thread():
    """``THREAD_VARS`` set to 1 in this process's environment while the block runs (a spawned
    worker inherits it before it imports NumPy), restored after."""
    saved = {k: os.environ.get(k) for k in THREAD_VARS}
    os.environ.update({k: "1" for k in THREAD_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run_pool(fn, jobs, todo, names, finished, *, workers, label):
    """The jobs of ``todo`` on a pool of ``workers`` spawned processes; ``finished(i, result)``
    as each arrives. An error or an interrupt cancels the jobs not started and does not wait
    for the running ones."""
    payloads = [_payload(fn, jobs[i], i, names[i]) for i in todo]
    with _one_blas_thread():
        pool = cf.ProcessPoolExecutor(max_workers=min(workers, len(todo)),
                                      mp_context=multiprocessing.get_context("spawn"))
        futures = {pool.submit(_call, p): i for i, p in zip(todo, payloads)}
    clean = False
    try:
        for future in cf.as_completed(futures):
            i = futures.pop(future)
            try:
                result = future.result()
            except Exception as e:
                raise JobError(label, i, names[i], e) from e
            finished(i, result)
        clean = True
    finally:
        pool.shutdown(wait=clean, cancel_futures=True)


def check_scheduler(scheduler):
    """Connect to the Dask scheduler at ``scheduler`` once and disconnect: what a caller does
    before it changes anything (e.g. replaces stored trials), so a bad address loses nothing.

    Raises
    ------
    ValueError
        ``scheduler`` is not an address (e.g. no port).
    OSError
        The scheduler cannot be reached within ``CONNECT_TIMEOUT``.
    """
    with _client(scheduler):
        pass


@contextlib.contextmanager
def _client(scheduler):
    """A ``distributed.Client`` on the Dask scheduler at ``scheduler``; closed at exit."""
    from distributed import Client

    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT)
    except ValueError as e:         # distributed's words for a malformed address, e.g. no port
        raise ValueError(f"scheduler: {e}; expected an address such as tcp://127.0.0.1:8786") from e
    with client:
        yield client


def _run_dask(fn, jobs, todo, names, finished, *, scheduler, label):
    """Submit one future per job of ``todo`` to the Dask scheduler at ``scheduler``;
    ``finished(i, result)`` as each arrives."""
    payloads = [_payload(fn, jobs[i], i, names[i]) for i in todo]
    from distributed import as_completed

    token = uuid.uuid4().hex[:8]
    with _client(scheduler) as client:
        futures = {client.submit(_call, p, key=f"{label.replace(' ', '-')}-{token}-{i}", pure=False): i
                   for i, p in zip(todo, payloads)}
        try:
            for future in as_completed(futures):
                i = futures[future]
                try:
                    result = future.result()
                except Exception as e:
                    raise JobError(label, i, names[i], e) from e
                finished(i, result)
                future.release()
        finally:
            client.cancel([f for f in futures if not f.done()])
