"""``kbt profile``'s figures of the C export: host latency timed in C, and the Cortex-M builds.

``profile_exports(controllers, states, S, F, device_samples)`` returns, for each
exported method (``kbt``, ``rls``):

* ``host``: p50 / p90 / p99 / p99.9 / max of ``act`` and ``observe`` timed
  inside C (``c_timing``), the compiler command, the largest force difference
  from the Python controller it was exported from (same states, before any
  update), and allocations per call: 0 (the export has no allocator);
* ``devices``: per core (``cortex_m.TARGETS``) the flash, RAM and instructions
  per call measured in QEMU (``cortex_m.measure`` on ``device_samples``
  samples), or ``{"skipped": reason}`` when the cross toolchain or QEMU is missing.

Without a host C compiler the whole entry is ``{"skipped": reason}``.
"""

from __future__ import annotations

import numpy as np

from firmware_profile import cortex_m, timing
from firmware_profile.c_build import compiler
from firmware_profile.c_timing import host_flags, time_export
from firmware_profile.export import export_sources

__all__ = ["profile_exports", "device_cycles"]


def _host(controller, states, S, F):
    n = min(len(states), len(S))
    # the harness acts on its rows, then learns from them: act timed on the probe states
    # (the prior), observe on the labelled stream, each on a fresh state struct
    act_s, _, forces = time_export(controller, states[:n], np.zeros(n))
    _, obs_s, _ = time_export(controller, S[:n], F[:n])
    py = np.array([controller.act(s) for s in states[:min(n, 1000)]])
    return {"act_us": timing.percentiles(act_s), "observe_us": timing.percentiles(obs_s),
            "compiler": host_flags(), "allocations_per_call": 0,
            "max_force_diff_vs_python_N": float(np.abs(forces[:len(py)] - py).max())}


def profile_exports(controllers, states, S, F, device_samples=8, progress=None):
    """{method: {"host": ..., "devices": {core: ...}}} for ``controllers`` {method: controller}
    (fresh ``kbt`` / ``rls`` controllers: their prior is exported)."""
    say = progress or (lambda msg: None)
    try:
        compiler()
    except RuntimeError as e:
        return {"skipped": str(e)}
    why = cortex_m.missing()
    out = {}
    for name, c in controllers.items():
        say(f"{name} C export: host timing in C")
        entry = {"host": _host(c, states, S, F), "devices": {}}
        files = export_sources(c)
        for core in cortex_m.TARGETS:
            if why:
                entry["devices"][core] = {"skipped": why}
                continue
            say(f"{name} C export: {core} build, instruction count in QEMU")
            r = cortex_m.measure(files, S[:device_samples], F[:device_samples], core)
            r.pop("forces", None)
            r.pop("tick_forces", None)
            entry["devices"][core] = r
        out[name] = entry
    return out


def device_cycles(c_export, method, core):
    """(estimated cycles per control tick, RAM bytes) of ``method`` on ``core`` if measured, else
    None. The tick is the on-policy one (``<prefix>_tick``: act, then learn that state's label, the
    input map once)."""
    dev = (c_export or {}).get(method, {}).get("devices", {}).get(core)
    if not dev or "skipped" in dev:
        return None
    return dev["tick"]["cycles_est"], dev["ram_bytes"]
