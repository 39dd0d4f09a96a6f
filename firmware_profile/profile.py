"""``kbt profile``: per-sample latency, memory and arithmetic of every method.

Methods: the pre-trained transformer (inference only), ``kbt`` (the default:
frozen T_1 + the Gaussian force head, fused Numba ``observe`` / ``act``),
``kbt-softmax`` (the paper's softmax Kalman head), ``rls`` (the force head on
the state alone), warm-started retraining at each memory capacity and BLoB.
For each:

* inference latency of one state (``act``) and learning latency of one sample
  (``observe``; percentiles over ``calls`` calls after a warm-up; retraining and BLoB,
  whose update is 100 epochs over its memory, over ``retrain_calls`` calls
  with a full memory; BLoB's 10-sample inference over ``blob_infer_calls``),
  and the first call's time (JIT compile or cache load) apart;
* deadline analysis at ``rate_hz``: ticks where inference + update exceed the period;
* memory (parameters, learning state, buffers: each controller's
  ``memory_arrays()``) in float64 and float32, the traced transient peak of
  one update, Numba allocations per call (inside the fused kernels and from Python);
* analytic FLOPs per update and inference, achieved GFLOP/s, and the ratio to
  this machine's measured matrix-multiply peak;
* which device budgets each method fits (float32);
* what float32 costs kbt: success and force difference after ``f32_samples`` updates;
* kbt's on-policy tick (act on s, then learn s's label, the input map once) from
  Python with Numba, in C and in plain NumPy on the same states and labels, with
  its FLOPs, their share of the machine peak, and ratios to C (``tick_profile``);
* the C export (``kbt-c``, ``rls-c``): rows called from Python through ctypes,
  the same calls timed inside C (``c_profile``), and, where the ARM cross
  toolchain and QEMU are installed, flash, RAM and instructions per call of
  the Cortex-M4F and Cortex-M7 builds, which replace the FLOP-based device
  estimates of those rows (``budgets.fits``).

This package does not import the plant (``sim``): the states, the
expert-labelled stream, the closed-loop success rate and the BLoB and rls
controllers come in through a ``Workload`` that the caller builds.
``sim.experiments.profile_run.run_profile`` does that for TARGET, and ``kbt profile``
(``sim/cli/profile.py``) calls it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from firmware_profile import budgets, flops, memory, tick_profile, timing
from firmware_profile.c_profile import device_cycles, profile_exports
from controller.checks import check_int, check_positive

__all__ = ["ProfileConfig", "Workload", "run_profile", "format_text", "format_markdown", "SCHEMA_VERSION"]

#: 2: methods kbt (force head), kbt-softmax and rls; the allocation probe's keys per fused kernel;
#: 3: methods kbt-c and rls-c, "c_export", each budget's "source"
#: 4: each budget's "est_tick_ms" (act + observe) replaces "est_update_ms" (observe only)
#: 5: "tick" (kbt's on-policy tick: Numba, C and NumPy side by side), kbt's "flops_tick", the devices'
#:    "tick" instructions; a learner's budget tick is its on-policy tick where it has one
SCHEMA_VERSION = 5


@dataclass(frozen=True)
class ProfileConfig:
    calls: int = 10_000            # timed calls for inference and the kbt, kbt-softmax and rls updates
    retrain_calls: int = 20        # timed retraining updates per capacity (each is 100 epochs)
    capacities: tuple = (10, 20, 25, 50, 75, 100)
    blob_capacities: tuple = (10, 100)
    blob_infer_calls: int = 1000   # BLoB inference averages 10 weight samples in NumPy: ms per call
    rate_hz: float = 50.0
    budget_kib: int | None = None
    f32_samples: int = 400
    episodes: int = 100
    seed: int = 0
    epochs: int = 100
    batch: int = 32
    allocations: bool = True       # run the Numba allocation probe (a subprocess)
    c_export: bool = True          # profile the C export (needs a host C compiler; Cortex-M: the ARM toolchain)
    device_samples: int = 8        # samples the Cortex-M builds act on and learn from (each call traced)

    @classmethod
    def quick(cls, **kw):
        base = dict(calls=300, retrain_calls=2, capacities=(10,), blob_capacities=(10,), blob_infer_calls=20,
                    f32_samples=40, episodes=10, epochs=5, device_samples=3)
        base.update(kw)
        return cls(**base)

    def __post_init__(self):
        self.validate()

    def validate(self):
        check_int("calls", self.calls, low=10)
        check_int("retrain_calls", self.retrain_calls, low=1)
        if not self.capacities:
            raise ValueError("capacities: expected at least one capacity")
        for c in self.capacities:
            check_int("capacities", c, low=1)
        for c in self.blob_capacities:
            check_int("blob_capacities", c, low=1)
        check_int("blob_infer_calls", self.blob_infer_calls, low=1)
        check_positive("rate_hz", self.rate_hz)
        if self.budget_kib is not None:
            budgets.custom_device(self.budget_kib)
        check_int("f32_samples", self.f32_samples, low=1)
        check_int("episodes", self.episodes, low=1)
        check_int("epochs", self.epochs, low=1)
        check_int("batch", self.batch, low=1)
        check_int("device_samples", self.device_samples, low=1, high=1000)
        return self


@dataclass(frozen=True)
class Workload:
    """The plant side of a profile, supplied by the caller (``sim.experiments.profile_run.target_workload``).

    Attributes
    ----------
    sample_states : callable ``(n, rng) -> ndarray (n, 4)``
        States to run inference on (numpy Generator ``rng``).
    labelled_stream : callable ``(n, seed) -> (states (n, 4), forces (n,))``
        The expert-labelled samples the learners are updated with.
    success_rate : callable ``(controller, episodes, seed) -> float``
        Closed-loop success of a controller on the plant the stream comes from.
    make_blob : callable ``(capacity, epochs, batch, seed) -> BLoBController``
        A fresh BLoB controller with the settings the experiments use.
    make_rls : callable ``() -> RLSController``, optional
        A fresh ``rls`` controller (its prior gain comes from the design
        plant); without it the profile has no rls row.
    """

    sample_states: Callable[[int, np.random.Generator], Any]
    labelled_stream: Callable[[int, int], tuple]
    success_rate: Callable[[Any, int, int], float]
    make_blob: Callable[[int, int, int, int], Any]
    make_rls: Callable[[], Any] | None = None


def _memory_entry(controller, update=None):
    parts = memory.breakdown(controller)
    out = {}
    for name, itemsize in (("float64", 8), ("float32", 4)):
        out[name] = {k: memory.bytes_of(v, itemsize) for k, v in parts.items()}
        out[name]["total"] = sum(out[name].values())
    out["update_traced_peak_bytes"] = memory.traced_peak(update) if update is not None else 0
    return out


def _entry(name, infer, update, first_call_s, mem, fl_update, fl_infer, rate, peak, downweighted=None):
    e = {"method": name, "inference_us": timing.percentiles(infer), "first_call_s": first_call_s,
         "memory": mem, "flops_update": fl_update, "flops_inference": fl_infer, "downweighted_updates": downweighted,
         "flops_tick": None}
    e["update_us"] = timing.percentiles(update) if update is not None else None
    e["deadline"] = timing.deadline_analysis(infer, update if update is not None else np.zeros(len(infer)), rate)
    e["gflops_inference"] = fl_infer / (e["inference_us"]["p50"] * 1e3)
    e["gflops_update"] = fl_update / (e["update_us"]["p50"] * 1e3) if update is not None else None
    e["peak_fraction_update"] = e["gflops_update"] / peak if update is not None else None
    return e


def _f32_cost(cfg, work, S, F):
    """kbt (the force head) in float64 and float32 on the same stream: success,
    force difference and labels down-weighted below one half. Both run the fused Numba
    kernels; float32 stores the head's posterior (m, P) and inputs z~ in float32."""
    from controller.kalman_head import HeadConfig
    from controller.kbt import KBTController
    from controller.model import load_pretrained

    pol = load_pretrained()
    out, forces = {}, {}
    probe = work.sample_states(1000, np.random.default_rng(cfg.seed + 7))
    for dt in ("float64", "float32"):
        c = KBTController(pol, HeadConfig(dtype=dt))
        for i in range(cfg.f32_samples):
            c.observe(S[i], F[i])
        out[f"success_{dt}"] = work.success_rate(c, cfg.episodes, cfg.seed)
        out[f"downweighted_{dt}"] = int(c.n_downweighted)
        out[f"backend_{dt}"] = "numba" if c.head.uses_numba else "numpy"
        forces[dt] = np.array([c.act(s) for s in probe])
    d = np.abs(forces["float64"] - forces["float32"])
    out.update(method="kbt", samples=cfg.f32_samples, max_force_diff_N=float(d.max()),
               mean_force_diff_N=float(d.mean()))
    return out


def run_profile(cfg: ProfileConfig, work: Workload, progress=None):
    """All figures as a JSON-ready dict (see ``format_text`` for the reading).

    ``work`` supplies the states, the labelled stream, the success rate and
    the BLoB and rls controllers (see ``Workload``); ``progress`` is called
    with a message before each stage.
    """
    from controller.kbt import KBTController
    from controller.kbt_softmax import SoftmaxKBTController
    from controller.model import load_pretrained
    from controller.retrain import RetrainController
    from controller.transformer_numba import FastInference

    if not isinstance(work, Workload):
        raise ValueError(f"work: expected a Workload but found {type(work).__name__}")
    say = progress or (lambda msg: None)
    pol = load_pretrained()
    tcfg = pol.config
    d, K = tcfg.d_model, tcfg.n_bins
    states = work.sample_states(cfg.calls, np.random.default_rng(cfg.seed))
    S, F = work.labelled_stream(max(cfg.calls, max(cfg.capacities) + cfg.retrain_calls + 1, cfg.f32_samples), cfg.seed + 1)
    say("measuring this machine's matrix-multiply peak")
    peak = timing.matmul_peak_gflops()
    fl_infer = flops.forward_flops(tcfg)
    methods = []

    # pre-trained: inference only
    say("pre-trained inference")
    fast = FastInference(pol)
    t0 = time.perf_counter()
    fast.act_one(states[0])
    first = time.perf_counter() - t0
    infer = timing.time_calls(lambda i: fast.act_one(states[i]), cfg.calls)
    methods.append(_entry("pretrained", infer, None, first, _memory_entry(pol), 0, fl_infer, cfg.rate_hz, peak))

    def online_method(name, c, fl_upd, fl_inf, fl_tick=None):
        """Latencies (``act``, ``observe`` on the stream) and memory of a closed-form learner."""
        say(f"{name}: {cfg.calls} updates and inferences")
        t0 = time.perf_counter()
        c.warm_up()
        first = time.perf_counter() - t0
        infer = timing.time_calls(lambda i: c.act(states[i]), cfg.calls)
        dw0 = getattr(c, "n_downweighted", None)
        upd = timing.time_calls(lambda i: c.observe(S[i], F[i]), cfg.calls, warmup=0)
        dw = None if dw0 is None else int(c.n_downweighted - dw0)
        mem = _memory_entry(c, lambda: c.observe(S[0], F[0]))
        methods.append(_entry(name, infer, upd, first, mem, fl_upd, fl_inf, cfg.rate_hz, peak, dw))
        methods[-1]["flops_tick"] = fl_tick

    # kbt (the default: force head, fused kernels), the paper's softmax head, rls
    c = KBTController(pol)
    online_method("kbt", c, flops.kbt_observe_flops(tcfg, skip=c.skip), flops.kbt_act_flops(tcfg, skip=c.skip),
                  flops.kbt_tick_flops(tcfg, skip=c.skip))
    say(f"kbt tick: Numba, C and NumPy on the same {cfg.calls} states and labels")
    tick = tick_profile.compare(pol, states, S, F, peak, cfg.calls, c_export=cfg.c_export)
    online_method("kbt-softmax", SoftmaxKBTController(pol),
                  flops.features_flops(tcfg) + flops.head_update_flops(d, K), fl_infer)
    if work.make_rls is not None:
        online_method("rls", work.make_rls(), flops.rls_observe_flops(tcfg.n_state),
                      flops.rls_act_flops(tcfg.n_state))
    c_export = _c_export(cfg, pol, work, states, S, F, say) if cfg.c_export else {"skipped": "c_export=False"}
    if "skipped" not in c_export:
        from firmware_profile.c_controller import CController

        # the same calls through ctypes, from Python: what the deployed loop pays
        online_method("kbt-c", CController(KBTController(pol)), flops.kbt_observe_flops(tcfg, skip=c.skip),
                      flops.kbt_act_flops(tcfg, skip=c.skip), flops.kbt_tick_flops(tcfg, skip=c.skip))
        if "rls" in c_export:
            online_method("rls-c", CController(work.make_rls()), flops.rls_observe_flops(tcfg.n_state),
                          flops.rls_act_flops(tcfg.n_state))

    def memory_method(c, cap, infer_calls):
        """Latencies and memory of a FIFO-memory baseline with a full memory."""
        for i in range(cap):
            c.remember(S[i], F[i])
        t0 = time.perf_counter()
        c.act(states[0])
        first = time.perf_counter() - t0
        # infer_calls may exceed the ``calls`` sampled states (BLoB's count is its own): cycle them
        infer = timing.time_calls(lambda i: c.act(states[i % len(states)]), infer_calls)
        upd = timing.time_calls(lambda i: c.observe(S[cap + i], F[cap + i]), cfg.retrain_calls, warmup=1)
        return infer, upd, first, _memory_entry(c, lambda: c.observe(S[0], F[0]))

    # retraining and BLoB at each capacity
    for cap in cfg.capacities:
        say(f"retrain-{cap}: {cfg.retrain_calls} updates of {cfg.epochs} epochs")
        r = RetrainController(pol, capacity=cap, epochs=cfg.epochs, batch=cfg.batch, seed=cfg.seed)
        infer, upd, first, mem = memory_method(r, cap, cfg.calls)
        fl_upd = flops.retrain_update_flops(tcfg, cap, cfg.epochs, cfg.batch)
        methods.append(_entry(f"retrain-{cap}", infer, upd, first, mem, fl_upd, fl_infer, cfg.rate_hz, peak))
    for cap in cfg.blob_capacities:
        say(f"blob-{cap}: {cfg.retrain_calls} updates of {cfg.epochs} epochs")
        b = work.make_blob(cap, cfg.epochs, cfg.batch, cfg.seed)
        infer, upd, first, mem = memory_method(b, cap, cfg.blob_infer_calls)
        n_trained = sum(a.size for a in b.parameters().values())
        fl_upd = flops.blob_update_flops(tcfg, cap, cfg.epochs, cfg.batch, b.rank, n_trained)
        fl_inf = b.n_samples * (fl_infer + flops.lora_flops(tcfg, b.rank))
        methods.append(_entry(f"blob-{cap}", infer, upd, first, mem, fl_upd, fl_inf, cfg.rate_hz, peak))

    devices = list(budgets.DEVICES) + ([budgets.custom_device(cfg.budget_kib)] if cfg.budget_kib else [])
    for e in methods:
        total = e["memory"]["float32"]["total"] + e["memory"]["update_traced_peak_bytes"] // 2
        e["float32_total_with_peak_bytes"] = int(total)
        exported = e["method"][:-2] if e["method"].endswith("-c") else None
        # one act + one observe; the on-policy tick (the input map once) where the method has one
        fl_tick = e.get("flops_tick") or (e["flops_update"] or 0) + (e["flops_inference"] or 0)
        e["budgets"] = [budgets.fits(total, fl_tick or None, dev,
                                     counted=device_cycles(c_export, exported, dev.core) if exported else None)
                        for dev in devices]
    kbt = next(e for e in methods if e["method"] == "kbt")
    ratios = {e["method"]: e["update_us"]["p50"] / kbt["update_us"]["p50"]
              for e in methods if e["method"].startswith(("retrain", "blob"))}
    say(f"float32 vs float64 after {cfg.f32_samples} updates")
    f32 = _f32_cost(cfg, work, S, F)
    allocs = memory.nrt_allocations() if cfg.allocations else None
    return {"schema": SCHEMA_VERSION, "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
            "machine_peak_gflops": peak, "methods": methods, "retrain_over_kbt_update_p50": ratios,
            "float32_vs_float64": f32, "numba_allocations_per_call": allocs, "c_export": c_export, "tick": tick,
            "devices": [{"name": dev.name, "ram_kib": dev.ram_kib, "clock_mhz": dev.clock_mhz, "core": dev.core}
                        for dev in devices]}


def _c_export(cfg, pol, work, states, S, F, say):
    """``c_profile.profile_exports`` for a fresh kbt (and rls, when the workload has one)."""
    from controller.kbt import KBTController

    controllers = {"kbt": KBTController(pol)}
    if work.make_rls is not None:
        controllers["rls"] = work.make_rls()
    return profile_exports(controllers, states, S, F, cfg.device_samples, progress=say)


# ------------------------------------------------------------------ output
def _kib(b):
    return f"{b / 1024:.1f}"


def _rows(res):
    """Table rows (header first) shared by the text and Markdown outputs."""
    head = ["method", "infer p50 us", "infer p99 us", "update p50 us", "p90", "p99", "p99.9", "max",
            "calls", f"miss @{res['config']['rate_hz']:g}Hz", "params KiB f32", "state KiB f32",
            "buffers KiB f32", "update GFLOP/s"]
    rows = [head]
    for e in res["methods"]:
        u = e["update_us"]
        m = e["memory"]["float32"]
        rows.append([_label(res, e["method"]), f"{e['inference_us']['p50']:.1f}", f"{e['inference_us']['p99']:.1f}",
                     *(["-"] * 6 if u is None else [f"{u['p50']:.1f}", f"{u['p90']:.1f}", f"{u['p99']:.1f}",
                                                    f"{u['p99.9']:.1f}", f"{u['max']:.1f}", str(u["calls"])]),
                     f"{100 * e['deadline']['miss_fraction']:.1f} %", _kib(m["params"]), _kib(m["state"]),
                     _kib(m["buffers"]), "-" if e["gflops_update"] is None else f"{e['gflops_update']:.2f}"])
    return rows


def _label(res, method):
    """The method's row label; retraining and BLoB name their epochs when the run used fewer than 100."""
    epochs = res["config"]["epochs"]
    return f"{method} ({epochs} ep)" if epochs != 100 and method.startswith(("retrain", "blob")) else method


def _budget_rows(res):
    head = ["method", "f32 total KiB"] + [d["name"] for d in res["devices"]]
    rows = [head]
    for e in res["methods"]:
        cells = []
        for b in e["budgets"]:
            mark = "=" if b.get("source") == "counted" else "~"
            est = "" if b["est_tick_ms"] is None else f" ({mark}{b['est_tick_ms']:.2g} ms/tick)"
            cells.append(("fits" if b["fits"] else "no") + f" {100 * b['ram_used']:.0f} %" + est)
        rows.append([_label(res, e["method"]), _kib(e["float32_total_with_peak_bytes"])] + cells)
    return rows


def _method(res, name):
    return next((e for e in res["methods"] if e["method"] == name), None)


def _allocation_lines(a):
    if not a:
        return ["Numba allocations per call: not measured (the probe did not run)"]
    lines = []
    if "kbt_observe" in a:
        inside = max(a["kbt_observe_kernel_inside"], a["kbt_act_kernel_inside"])
        lines.append(f"Numba allocations per call: observe() {a['kbt_observe']:g}, act() {a['kbt_act']:g} "
                     f"(inside the fused kernels: {inside:g})")
        lines.append(f"kbt: the fused observe kernel called from Python allocates "
                     f"{a['kbt_observe_kernel_from_python']:g} argument wrappers per call (none in a jitted caller)")
    if "kbt_softmax_observe" in a:
        lines.append(f"kbt-softmax: Numba allocations per update: {a['kbt_softmax_update_kernel_inside']:g} inside "
                     f"the kernel; {a['kbt_softmax_update_kernel_from_python']:g} argument wrappers per call from "
                     f"Python; observe() {a['kbt_softmax_observe']:g}, act() {a['kbt_softmax_act']:g}")
    return lines


def _notes(res):
    f = res["float32_vs_float64"]
    lines = [f"machine matrix-multiply peak: {res['machine_peak_gflops']:.1f} GFLOP/s (float64, all BLAS threads)"]
    kbt = _method(res, "kbt")
    lines.append(f"kbt: observe p50 {kbt['update_us']['p50']:.1f} us, act p50 {kbt['inference_us']['p50']:.1f} us")
    lines.append(f"kbt: first call (JIT compile or cache load) {kbt['first_call_s']:.2f} s; "
                 f"{kbt['flops_update']} FLOP per observe, {kbt['flops_inference']} per act; "
                 f"observe at {100 * kbt['peak_fraction_update']:.2f} % of the machine peak")
    for name in ("kbt-softmax", "rls"):
        e = _method(res, name)
        if e is not None:
            lines.append(f"{name}: observe p50 {e['update_us']['p50']:.1f} us, act p50 "
                         f"{e['inference_us']['p50']:.1f} us; first call {e['first_call_s']:.2f} s; "
                         f"{e['flops_update']} FLOP per observe, {e['flops_inference']} per act")
    for e in res["methods"]:
        if e.get("downweighted_updates") is not None:
            lines.append(f"{e['method']}: {e['downweighted_updates']} of "
                         f"{e['update_us']['calls']} labels down-weighted below 1/2 during the timed updates")
    for m, r in res["retrain_over_kbt_update_p50"].items():
        lines.append(f"{m} update p50 / kbt update p50 = {r:,.0f}x")
    lines.append("Numba paths: pretrained, kbt and rls (fused observe / act), kbt-softmax, retrain inference; "
                 "NumPy: retrain and blob updates, blob inference")
    lines.append(f"float32 vs float64 after {f['samples']} kbt updates (float32 posterior and inputs, "
                 f"{f.get('backend_float32', 'numba')} kernels): success {f['success_float32']:.2f} vs "
                 f"{f['success_float64']:.2f}, force difference max {f['max_force_diff_N']:.2e} N, "
                 f"mean {f['mean_force_diff_N']:.2e} N, labels down-weighted below 1/2 "
                 f"{f.get('downweighted_float32', '-')} vs {f.get('downweighted_float64', '-')}")
    lines += tick_profile.tick_lines(res.get("tick"))
    lines += _allocation_lines(res["numba_allocations_per_call"])
    lines += _c_lines(res.get("c_export"), res)
    for e in res["methods"]:
        lines.append(f"{e['method']}: traced NumPy peak during one update "
                     f"{e['memory']['update_traced_peak_bytes'] / 1024:.1f} KiB (float64)")
    return lines


def _c_lines(c, res):
    """The C export's notes: host latency timed in C, and the Cortex-M builds."""
    if not c:
        return []
    if "skipped" in c:
        return [f"C export: not profiled ({c['skipped']})"]
    lines = []
    for name, e in c.items():
        h = e["host"]
        py = _method(res, name)
        beside = "" if py is None else (f" (Numba {name} in this run: observe p50 {py['update_us']['p50']:.2f} us, "
                                        f"act p50 {py['inference_us']['p50']:.2f} us, called from Python)")
        lines.append(f"{name} C export, host, timed in C: observe p50 {h['observe_us']['p50']:.2f} us, "
                     f"p99 {h['observe_us']['p99']:.2f} us; act p50 {h['act_us']['p50']:.2f} us, "
                     f"p99 {h['act_us']['p99']:.2f} us; 0 allocations per call{beside}")
        for core, d in e["devices"].items():
            if "skipped" in d:
                lines.append(f"{name} C export, {core}: not measured ({d['skipped']})")
                continue
            lines.append(f"{name} C export, {core} ({d['qemu_machine']}, -O2): flash {d['flash_bytes']} B "
                         f"(text {d['text']}, data {d['data']}, bss {d['bss']}), RAM {d['ram_bytes']} B "
                         f"(state {d['state_bytes']} + stack {d['stack_bytes']}); instructions per observe "
                         f"{d['observe']['instructions_mean']:,.0f}, per act {d['act']['instructions_mean']:,.0f}, "
                         f"per on-policy tick {d['tick']['instructions_mean']:,.0f} (act + observe as two calls: "
                         f"{d['act']['instructions_mean'] + d['observe']['instructions_mean']:,.0f}; counted in "
                         f"QEMU); ~{d['observe']['cycles_est']:,.0f} cycles per observe, "
                         f"~{d['tick']['cycles_est']:,.0f} per tick (cost model)")
    lines.append("budget table: RAM share, and the time of one control tick (act + observe; kbt and kbt-c: "
                 "the on-policy tick, the input map once; act alone for a method that does not learn): ~ estimated at 1 FLOP per cycle from the FLOP count; = from the "
                 "instructions counted on the device's core (cycles by the cost model, docs/firmware-export.md) "
                 "and RAM measured (state + stack)")
    if res["config"]["epochs"] != 100:
        lines.append(f"retrain and blob rows: {res['config']['epochs']} epochs per update in this run (--quick), "
                     "not the 100 of the full profile; their latency, misses and ratios are not the method's")
    return lines


def format_text(res):
    def table(rows):
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(str(c).rjust(w) for c, w in zip(r, widths)) for r in rows)

    return "\n\n".join([table(_rows(res)), table(_budget_rows(res)), "\n".join(_notes(res))])


def format_markdown(res):
    def table(rows):
        out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        return "\n".join(out)

    return "\n\n".join([table(_rows(res)), table(_budget_rows(res)), "\n".join(f"- {n}" for n in _notes(res))])
