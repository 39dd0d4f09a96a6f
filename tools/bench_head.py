"""Latency of one Kalman-head update: Numba kernel vs the NumPy reference.

    python tools/bench_head.py [--updates 20000]

Times ``KalmanHead.update_unchecked`` (the head alone) and
``KBTController.observe`` (features + target encoding + update) on real TARGET
samples, after a JIT warm-up; prints p50 / p99 in microseconds.
"""

import argparse
import time

import numpy as np

from controller.kalman_head import HeadConfig
from controller.kbt_softmax import SoftmaxKBTController
from controller.lqr import LQRController
from controller.model import load_pretrained
from sim.world.cartpole import TARGET
from sim.world.data import sample_dataset


def percentiles(fn, n):
    t = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        t[i] = time.perf_counter() - t0
    return np.percentile(t, [50, 99]) * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--updates", type=int, default=20000)
    args = ap.parse_args()
    pol = load_pretrained()
    S, F = sample_dataset(LQRController(TARGET), 2000, seed=0)
    res = {}
    for backend in ("numba", "numpy"):
        n = args.updates if backend == "numba" else max(args.updates // 20, 200)
        c = SoftmaxKBTController(pol, HeadConfig(output="softmax", backend=backend))
        c.warm_up()
        H, Y = c.features(S), c.tokenizer.encode(F)
        head = c.head
        res[backend, "head"] = percentiles(lambda i: head.update_unchecked(H[i % 2000], Y[i % 2000]), n)
        c = SoftmaxKBTController(pol, HeadConfig(output="softmax", backend=backend))
        c.warm_up()
        res[backend, "observe"] = percentiles(lambda i: c.observe(S[i % 2000], F[i % 2000]), n)
    for (backend, what), (p50, p99) in res.items():
        print(f"{backend:6s} {what:8s} p50 {p50:8.1f} us   p99 {p99:8.1f} us")
    print(f"head update speed-up numba vs numpy (p50): {res['numpy', 'head'][0] / res['numba', 'head'][0]:.1f}x")


if __name__ == "__main__":
    main()
