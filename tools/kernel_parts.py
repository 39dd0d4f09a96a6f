"""Where the Numba act's time goes, against the C export's act, in one run.

Times, per call, on the shipped balancing weights and 2 000 states (|s| ~ 0.05):

* ``kbt.act`` from Python, and the packed act kernel called from Python directly
  (the difference is the Python method's checks and dispatch);
* the packed act kernel in a jitted loop (no Python at all), and in the same kind of loop
  T_1 alone (``_features_one``); T_1 on copies of its weights and work arrays in float64 and
  in float32 (the same code, its scalar sums still float64: does the arrays' dtype alone
  make the C faster?); and the parts of T_1 on its own work arrays: the layer norm of the
  five token rows, the fused q|k|v affine map of five rows, attention over five rows, and
  the MLP with the attention's output projection for five rows (one block's worth each;
  the last block runs the query row only);
* the C export's act, timed in C (``c_timing``).

Each figure is the best of ``--repeats`` runs (the machine is shared and noisy).

    python tools/kernel_parts.py
"""

import argparse
import time

import numba
import numpy as np

from controller import kbt_packed as kp
from controller import transformer_numba as tn
from controller.kbt import KBTController
from controller.model import load_pretrained


@numba.njit
def _act_loop(A, B, S, n):
    acc = 0.0
    for i in range(n):
        acc += kp.kbt_act_packed(A, B, S[i, 0], S[i, 1], S[i, 2], S[i, 3])
    return acc


@numba.njit
def _t1_loop(A, B, S, n):
    inputs, _, _, _, _, state = kp._views(A, B)
    W, ws, h = inputs[0], inputs[1], inputs[2]
    for i in range(n):
        state[0], state[1], state[2], state[3] = S[i, 0], S[i, 1], S[i, 2], S[i, 3]
        tn._features_one(state, W, ws, h)
    return h[0]


@numba.njit
def _t1_loop_copy(W, ws, h, S, n):
    s = np.zeros(4, h.dtype)
    for i in range(n):
        s[0], s[1], s[2], s[3] = S[i, 0], S[i, 1], S[i, 2], S[i, 3]
        tn._features_one(s, W, ws, h)
    return h[0]


def _as_dtype(group, dtype):
    """A tuple of T_1's weights or work arrays with every float array in ``dtype`` (scalars kept)."""
    return tuple(np.ascontiguousarray(v, dtype=dtype) if isinstance(v, np.ndarray) else v for v in group)


@numba.njit
def _part_loop(A, B, S, n, part):
    inputs, _, _, _, _, _ = kp._views(A, B)
    W, ws = inputs[0], inputs[1]
    x, a, qkv, o, y, z, att = ws
    d, f, heads, eps = W[1].shape[1], W[14].shape[2], W[21], W[20]
    T = x.shape[0]
    for _ in range(n):
        if part == 0:
            for t in range(T):
                tn._layer_norm_row(x, t, W[6], W[7], 0, eps, a)
        elif part == 1:
            tn._affine(a, W[8], W[9], 0, qkv, 0, T, 0, 3 * d)
        elif part == 2:
            tn._attention_rows(qkv, d, heads, 0, att, o)
        else:
            tn._affine(o, W[10], W[11], 0, y, 0, T, 0, d)
            tn._affine(a, W[14], W[15], 0, z, 0, T, 0, f)
            tn._affine(z, W[16], W[17], 0, y, 0, T, 0, d)
    return a[0, 0] + qkv[0, 0] + o[0, 0] + y[0, 0]


def _best(run, n, repeats):
    run(10)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(n)
        times.append((time.perf_counter() - t0) / n * 1e6)
    return min(times)


def _per_call(fn_i, n, repeats):
    def run(m):
        for i in range(m):
            fn_i(i % n)
    return _best(run, n, repeats)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    c = KBTController(load_pretrained())
    c.warm_up()
    n = 2000
    S = np.random.default_rng(0).normal(size=(n, 4)) * 0.05
    X = S.tolist()
    A, B = c._A, c._B
    rows = [("act from Python (kbt.act)", _per_call(lambda i: c.act(S[i]), n, a.repeats)),
            ("packed act kernel from Python", _per_call(
                lambda i: kp.kbt_act_packed(A, B, X[i][0], X[i][1], X[i][2], X[i][3]), n, a.repeats)),
            ("packed act kernel, jitted loop", _best(lambda m: _act_loop(A, B, S, m), n, a.repeats)),
            ("  T_1 alone, jitted loop", _best(lambda m: _t1_loop(A, B, S, m), n, a.repeats))]
    fi = tn.FastInference(c.policy)
    for dtype in (np.float64, np.float32):     # the same code on its own copies, in each dtype
        W, ws = _as_dtype(fi.weights, dtype), _as_dtype(fi.workspace, dtype)
        h, Sd = np.zeros(W[1].shape[1], dtype), S.astype(dtype)
        rows.append((f"  T_1 on copies, {np.dtype(dtype).name}", _best(lambda m: _t1_loop_copy(W, ws, h, Sd, m), n,
                                                                        a.repeats)))
    for k, name in enumerate(("layer norm, 5 rows", "q|k|v affine, 5 rows", "attention, 5 rows",
                              "MLP + W_o, 5 rows")):
        rows.append((f"    {name}", _best(lambda m, k=k: _part_loop(A, B, S, m, k), n, a.repeats)))
    from firmware_profile.c_timing import time_export
    c_act = min(float(np.median(time_export(c, S, np.zeros(n))[0])) for _ in range(a.repeats)) * 1e6
    rows.append(("C export act, timed in C (p50)", c_act))
    for name, us in rows:
        print(f"{name:>34}: {us:6.2f} us  ({us / c_act:.1f}x C)")


if __name__ == "__main__":
    main()
