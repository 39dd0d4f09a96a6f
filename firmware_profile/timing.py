"""Latency measurement: per-call timings, percentiles, deadlines, machine peak."""

from __future__ import annotations

import time

import numpy as np

__all__ = ["time_calls", "percentiles", "deadline_analysis", "matmul_peak_gflops", "PERCENTILES"]

PERCENTILES = (50, 90, 99, 99.9)


def time_calls(fn, n, warmup=10):
    """Seconds of each of ``n`` calls ``fn(i)`` after ``warmup`` untimed calls."""
    for i in range(warmup):
        fn(i)
    out = np.empty(n)
    clock = time.perf_counter_ns
    for i in range(n):
        t0 = clock()
        fn(i)
        out[i] = clock() - t0
    return out * 1e-9


def percentiles(seconds):
    """p50, p90, p99, p99.9, max and mean in microseconds, and the number of calls."""
    us = np.asarray(seconds, dtype=float) * 1e6
    if us.size == 0:
        raise ValueError("seconds: expected at least one timing")
    out = {f"p{q:g}": float(np.percentile(us, q)) for q in PERCENTILES}
    out.update(max=float(us.max()), mean=float(us.mean()), calls=int(us.size))
    return out


def deadline_analysis(infer_seconds, update_seconds, rate_hz):
    """Ticks whose inference + update exceed the period ``1 / rate_hz``.

    Tick i pairs the i-th inference with the i-th update (the shorter series
    sets the number of ticks). Returns the miss fraction, the number of misses
    and the longest run of consecutive misses.
    """
    if rate_hz <= 0:
        raise ValueError(f"rate_hz: expected a positive rate but found {rate_hz}")
    n = min(len(infer_seconds), len(update_seconds))
    tick = np.asarray(infer_seconds[:n]) + np.asarray(update_seconds[:n])
    miss = tick > 1.0 / rate_hz
    longest = run = 0
    for m in miss:
        run = run + 1 if m else 0
        longest = max(longest, run)
    return {"rate_hz": float(rate_hz), "ticks": int(n), "misses": int(miss.sum()),
            "miss_fraction": float(miss.mean()) if n else 0.0, "longest_miss_run": int(longest),
            "worst_tick_us": float(tick.max() * 1e6) if n else 0.0}


def matmul_peak_gflops(n=512, repeats=5, dtype=np.float64):
    """Best GFLOP/s of an n x n matrix product (2 n^3 FLOPs) over ``repeats``:
    the practical peak of this machine's BLAS (all its threads)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    a @ b
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9
