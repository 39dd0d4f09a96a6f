"""Host latency of the compiled export, timed inside C (``c_bench/bench.c.in``).

``time_export(controller, states, forces)`` builds the controller's export
together with a small timing harness (``c_build.build_shared``), runs ``n``
calls of ``<prefix>_act`` and then ``n`` of ``<prefix>_observe`` on a fresh
state struct, each call timed with ``clock_gettime(CLOCK_MONOTONIC)`` around
it, and returns the per-call seconds. The export allocates nothing (no
``malloc`` anywhere in it): zero allocations per call by construction.
"""

from __future__ import annotations

import ctypes
from importlib import resources

import numpy as np

from firmware_profile.c_build import CFLAGS, GCC_TUNING, build_shared, compiler, is_gcc
from firmware_profile.c_controller import state_type
from firmware_profile.export import export_params
from firmware_profile.export.emit import render

__all__ = ["time_export", "time_ticks", "host_flags"]


def host_flags():
    """The host build's compiler and flags, as one string."""
    cc = compiler()
    return " ".join([cc, *CFLAGS, *(GCC_TUNING if is_gcc(cc) else ())])


def _bench_library(controller):
    """(prefix, state struct type, the export built with the timing harness)."""
    params = export_params(controller)
    prefix = params.method
    files = render(params)
    bench = resources.files("firmware_profile.c_bench").joinpath("bench.c.in").read_text(encoding="utf-8")
    files[f"{prefix}_bench.c"] = bench.replace("PFX", prefix.upper()).replace("pfx", prefix)
    return prefix, state_type(params.ints["N1"]), ctypes.CDLL(build_shared(files))


def _stream(states, forces):
    S = np.ascontiguousarray(np.asarray(states, dtype=np.float32).reshape(-1, 4))
    F = np.ascontiguousarray(np.asarray(forces, dtype=np.float32).reshape(-1))
    n = S.shape[0]
    if F.shape != (n,) or n < 1:
        raise ValueError(f"states, forces: expected n >= 1 states and n labels but found {n}, {F.shape}")
    return S, F, n


def time_export(controller, states, forces):
    """(act seconds (n,), observe seconds (n,), forces (n,) the C code acted with) of the
    ``kbt`` or ``rls`` ``controller``'s export, timed in C on ``states`` (n, 4) and ``forces`` (n,)."""
    prefix, state, lib = _bench_library(controller)
    S, F, n = _stream(states, forces)
    st = state()
    getattr(lib, f"{prefix}_init")(ctypes.byref(st))
    act_ns, obs_ns, out = np.zeros(n), np.zeros(n), np.zeros(n, np.float32)
    fn = getattr(lib, f"{prefix}_bench")
    P = ctypes.c_void_p
    fn.restype, fn.argtypes = ctypes.c_int, [P, P, P, ctypes.c_int, P, P, P]
    fn(ctypes.addressof(st), S.ctypes.data, F.ctypes.data, n, act_ns.ctypes.data, obs_ns.ctypes.data, out.ctypes.data)
    return act_ns * 1e-9, obs_ns * 1e-9, out.astype(float)


def time_ticks(controller, states, forces):
    """(tick seconds (n,), forces (n,)) of the export's ``<prefix>_tick`` (act on state i, then
    learn its label ``forces[i]``, the input map run once), timed in C on a fresh state struct."""
    prefix, state, lib = _bench_library(controller)
    S, F, n = _stream(states, forces)
    st = state()
    getattr(lib, f"{prefix}_init")(ctypes.byref(st))
    tick_ns, out = np.zeros(n), np.zeros(n, np.float32)
    fn = getattr(lib, f"{prefix}_bench_tick")
    P = ctypes.c_void_p
    fn.restype, fn.argtypes = ctypes.c_int, [P, P, P, ctypes.c_int, P, P]
    fn(ctypes.addressof(st), S.ctypes.data, F.ctypes.data, n, tick_ns.ctypes.data, out.ctypes.data)
    return tick_ns * 1e-9, out.astype(float)
