"""Single-state inference latency of the pre-trained transformer: NumPy vs Numba.

    python tools/bench_inference.py [--calls 20000]

Prints p50 / p99 per call after a JIT warm-up (compile time reported apart).
"""

import argparse
import time

import numpy as np

from controller.model import load_pretrained
from controller.transformer_numba import FastInference


def bench(fn, states, calls):
    for s in states[:200]:
        fn(s)
    t = np.empty(calls)
    for i in range(calls):
        s = states[i % len(states)]
        t0 = time.perf_counter()
        fn(s)
        t[i] = time.perf_counter() - t0
    return np.percentile(t, [50, 99]) * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000)
    args = ap.parse_args()
    pol = load_pretrained()
    t0 = time.perf_counter()
    fast = FastInference(pol)
    fast.act_one(np.zeros(4))
    compile_s = time.perf_counter() - t0
    states = np.random.default_rng(0).uniform(-0.05, 0.05, (1000, 4))
    numpy_p = bench(pol.act, states, args.calls // 4)
    numba_p = bench(fast.act_one, states, args.calls)
    print(f"JIT compile/load: {compile_s:.2f} s")
    print(f"numpy  single-state act: p50 {numpy_p[0]:7.1f} us  p99 {numpy_p[1]:7.1f} us")
    print(f"numba  single-state act: p50 {numba_p[0]:7.1f} us  p99 {numba_p[1]:7.1f} us")
    print(f"speed-up (p50): {numpy_p[0] / numba_p[0]:.1f}x")


if __name__ == "__main__":
    main()
