"""One on-policy control tick of kbt, three ways side by side, on the same states and labels.

A tick acts on a state s and then learns s's label (the deployed loop's on-policy
stream). ``compare(policy, states, S, F, peak)`` times, in one run:

* ``numba``: ``KBTController`` called from Python (the fused Numba kernels);
* ``c``: the C export, each call timed inside C (``c_timing``);
* ``numpy``: the same math in plain NumPy (``KBTController`` with
  ``HeadConfig(backend="numpy")``: ``TransformerPolicy.features`` and the head's
  NumPy reference update);

each on its own controller: ``act`` p50 on ``states``, ``observe`` p50 on the
stream (S, F) with no ``act`` before (the input map computed by the update), and
``tick`` p50: ``step(S[i], F[i])``, act on the state and learn its label in one call
(the input map once; ``<prefix>_tick`` in C), the three measured in alternating
rounds (``ROUNDS``) so that the machine's load drifting during the run weighs on all
three. ``two_calls`` = act p50 + observe p50 is what a tick cost when every call ran
the input map. FLOP per tick (``flops.kbt_tick_flops``: the fused kernels, Numba and
C, compute only the query row in the last block; the NumPy reference every row,
``all_rows=True``) over the tick's p50 gives GFLOP/s and its share of ``peak`` (the
machine's matrix-multiply GFLOP/s). Ratios: each path's p50 over the C export's.
"""

from __future__ import annotations

import time

import numpy as np

from firmware_profile import flops, timing

__all__ = ["compare", "tick_lines"]


#: the three measurements of a path alternate in this many rounds, so that a change of this
#: shared machine's load during the run falls on all three alike
ROUNDS = 5


def _rounds(n):
    """Index ranges of ``ROUNDS`` consecutive blocks of range(n)."""
    edges = np.linspace(0, n, ROUNDS + 1).astype(int)
    return [range(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _time_each(fn, idx):
    out = np.empty(len(idx))
    clock = time.perf_counter_ns
    for j, i in enumerate(idx):
        t0 = clock()
        fn(i)
        out[j] = clock() - t0
    return out * 1e-9


def _python_path(make, states, S, F, n):
    """p50 (us) of act, observe and tick of controllers from ``make()`` called from Python."""
    c_act, c_obs, c_tick = make(), make(), make()
    for c in (c_act, c_obs, c_tick):
        c.warm_up()

    def tick(i):
        c_tick.step(S[i], F[i])

    c_act.act(states[0])
    times = {"act": [], "observe": [], "tick": []}
    for idx in _rounds(n):
        times["act"].append(_time_each(lambda i: c_act.act(states[i]), idx))
        times["observe"].append(_time_each(lambda i: c_obs.observe(S[i], F[i]), idx))
        times["tick"].append(_time_each(tick, idx))
    return {f"{k}_us": timing.percentiles(np.concatenate(v))["p50"] for k, v in times.items()}


def _c_path(controller, states, S, F):
    from firmware_profile.c_timing import time_export, time_ticks

    times = {"act": [], "observe": [], "tick": []}
    for idx in _rounds(len(S)):
        # each call on a fresh state struct: the stream's first labels of each round
        times["act"].append(time_export(controller, states[idx], np.zeros(len(idx)))[0])
        times["observe"].append(time_export(controller, S[idx], F[idx])[1])
        times["tick"].append(time_ticks(controller, S[idx], F[idx])[0])
    return {f"{k}_us": timing.percentiles(np.concatenate(v))["p50"] for k, v in times.items()}


def compare(policy, states, S, F, peak, calls, c_export=True):
    """The side-by-side figures (see the module doc) as a JSON-ready dict."""
    from controller.kalman_head import HeadConfig
    from controller.kbt import KBTController

    n = min(calls, len(states), len(S))
    cfg = policy.config
    paths = {"numba": _python_path(lambda: KBTController(policy), states, S, F, n)}
    if c_export:
        from firmware_profile.c_build import compiler

        try:
            compiler()
            paths["c"] = _c_path(KBTController(policy), states[:n], S[:n], F[:n])
        except RuntimeError as e:
            paths["c"] = {"skipped": str(e)}
    paths["numpy"] = _python_path(lambda: KBTController(policy, HeadConfig(backend="numpy")), states, S, F, n)
    fl = {"tick": flops.kbt_tick_flops(cfg), "act": flops.kbt_act_flops(cfg),
          "observe": flops.kbt_observe_flops(cfg), "numpy_tick": flops.kbt_tick_flops(cfg, all_rows=True)}
    for name, p in paths.items():
        if "skipped" in p:
            continue
        p["two_calls_us"] = p["act_us"] + p["observe_us"]
        p["tick_over_two_calls"] = p["tick_us"] / p["two_calls_us"]
        p["gflops_tick"] = fl["numpy_tick" if name == "numpy" else "tick"] / (p["tick_us"] * 1e3)
        p["peak_fraction_tick"] = p["gflops_tick"] / peak
    c = paths.get("c", {})
    ratios = {}
    if "tick_us" in c:
        for name in ("numba", "numpy"):
            ratios[name] = {k: paths[name][f"{k}_us"] / c[f"{k}_us"] for k in ("act", "observe", "tick")}
    return {"calls": n, "flops": fl, "machine_peak_gflops": peak, "paths": paths, "over_c": ratios}


def tick_lines(t):
    """The profile report's lines for ``compare``'s result."""
    if not t:
        return []
    f = t["flops"]
    lines = [f"kbt tick (act on s, then learn s's label; same {t['calls']} states and labels for each path): "
             f"{f['tick']:,} FLOP per tick with the input map once in the Numba and C kernels (two calls: "
             f"{f['act'] + f['observe']:,}; the NumPy reference, every row of the last block: {f['numpy_tick']:,})"]
    names = {"numba": "Numba from Python", "c": "C export, timed in C", "numpy": "plain NumPy"}
    for name, p in t["paths"].items():
        if "skipped" in p:
            lines.append(f"  {names[name]}: not measured ({p['skipped']})")
            continue
        over = t["over_c"].get(name)
        vs = "" if over is None else (f"; over C: act {over['act']:.1f}x, observe {over['observe']:.1f}x, "
                                      f"tick {over['tick']:.1f}x")
        lines.append(f"  {names[name]}: act p50 {p['act_us']:.2f} us, observe p50 {p['observe_us']:.2f} us, "
                     f"tick p50 {p['tick_us']:.2f} us = {p['tick_over_two_calls']:.2f} x act + observe "
                     f"({p['two_calls_us']:.2f} us); {p['gflops_tick']:.2f} GFLOP/s per tick, "
                     f"{100 * p['peak_fraction_tick']:.2f} % of the machine peak{vs}")
    return lines
