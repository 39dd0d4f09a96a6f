"""The C export is safe on any input, and the Python paths refuse what it refuses.

A state or label outside its valid range (``kbt.h``), or NaN / inf, is refused
with a status and leaves the state byte for byte unchanged; an intermediate
that would leave float32 is refused the same way (``KBT_OVERFLOW``); the force
of ``kbt_act_status`` is limited to +-u_max. The reproducers of a garbled
frame (one state component of 4e18, a label of +-FLT_MAX) are regression
tests here; the fuzz test runs 10^5 random-bit calls per method under ASan and
UBSan and under -Ofast (``firmware_profile.c_fuzz``).
"""

import ctypes
import os
import shutil

import numpy as np
import pytest

from controller.force_controller import LABEL_MAX, STATE_RANGE
from controller.kalman_head import HeadConfig
from firmware_profile import c_fuzz
from firmware_profile.c_controller import BAD_STATE, NONFINITE, OUT_OF_RANGE, OVERFLOW, REFUSED, CController
from firmware_profile.export import export_params, export_sources
from sim.loops.methods import MethodSettings, make_controller
from sim.world.cartpole import TARGET
from sim.world.data import sample_dataset
from controller.lqr import LQRController

FLT_MAX = float(np.finfo(np.float32).max)
HAVE_CC = shutil.which(os.environ.get("CC", "cc")) is not None
needs_cc = pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc) on PATH")
SAN = c_fuzz.sanitizers_work() if HAVE_CC else "no host C compiler"


def _trained(method, n=40):
    c = CController(make_controller(method, TARGET))
    S, F = sample_dataset(LQRController(TARGET), n, seed=3)
    for s, f in zip(S, F):
        c.observe(s, f)
    return c, S


def _snapshot(c):
    return bytes(c._st)


@needs_cc
@pytest.mark.parametrize("method", ["kbt", "rls"])
def test_a_garbled_frame_is_refused_and_the_head_is_unchanged(method):
    c, S = _trained(method)
    before = _snapshot(c)
    f0 = c.act(S[0])
    for s, y, want in (([4e18, 0, 0, 0], 1.0, OUT_OF_RANGE), ([0, 0, 0, -4e18], 1.0, OUT_OF_RANGE),
                       (S[1], FLT_MAX, OUT_OF_RANGE), (S[1], -FLT_MAX, OUT_OF_RANGE),
                       (S[1], 1.5 * LABEL_MAX, OUT_OF_RANGE), (S[1], np.nan, NONFINITE),
                       ([0, np.inf, 0, 0], 1.0, NONFINITE)):
        assert c.observe_status(np.array(s, float), y) == want
        assert _snapshot(c) == before
        with pytest.raises(ValueError, match="range|finite"):
            c.observe(np.array(s, float), y)
    assert c.act(S[0]) == f0 and np.isfinite(f0)
    assert c.act_status(np.array([4e18, 0, 0, 0])) == (OUT_OF_RANGE, 0.0)
    assert np.isnan(c.act(np.array([4e18, 0, 0, 0])))
    assert c.check() == 0


@needs_cc
def test_the_limits_are_the_python_controllers_and_the_force_is_limited():
    py = make_controller("kbt", TARGET)
    p = export_params(py, u_max=12.5)
    lim = py.state_max()
    assert [p.limits[k] for k in ("X_MAX", "XDOT_MAX", "THETA_MAX", "THETADOT_MAX")] == list(lim)
    np.testing.assert_allclose(lim * py.s_inv, STATE_RANGE, rtol=1e-7)
    assert p.limits["FORCE_MAX"] == LABEL_MAX and p.limits["U_MAX"] == 12.5
    c = CController(make_controller("rls", TARGET), u_max=12.5)
    far = 0.9 * c._py.state_max()                    # valid, and far: a force of thousands of N
    assert abs(c.act(far)) > 100.0
    status, u = c.act_status(far)
    assert status == 0 and abs(u) == 12.5 and np.sign(u) == np.sign(c.act(far))
    near = np.array([0.01, 0.0, 0.01, 0.0])
    status, u = c.act_status(near)
    assert status == 0 and u == pytest.approx(c.act(near), abs=1e-6) and abs(u) < 12.5


@needs_cc
def test_an_intermediate_that_would_overflow_is_refused_and_changes_nothing():
    c, S = _trained("rls", 5)
    for i in range(5):                               # P's diagonal at 3e38: q = z' P z overflows
        c._st.P[i * (i + 3) // 2] = 3e38
    assert c.check() == 0                            # a finite state: the update must catch it
    before = _snapshot(c)
    assert c.observe_status(np.array([0.5, 0.5, 0.1, 0.1]), 1.0) == OVERFLOW
    assert _snapshot(c) == before


@needs_cc
def test_a_state_of_another_model_is_refused():
    c, S = _trained("rls", 5)
    other = CController(make_controller("rls", TARGET), u_max=20.0)       # another export's id
    assert export_params(other._py, u_max=20.0).model_id != export_params(c._py).model_id
    ctypes.memmove(ctypes.addressof(c._st), ctypes.addressof(other._st), ctypes.sizeof(c._st))
    before = _snapshot(c)
    assert c.check() == BAD_STATE and c.observe_status(S[0], 1.0) == BAD_STATE
    assert c.act_status(S[0]) == (BAD_STATE, 0.0) and np.isnan(c.act(S[0]))
    assert _snapshot(c) == before
    c2, _ = _trained("rls", 5)
    c2._st.m[0] = float("nan")
    assert c2.check() == BAD_STATE


def test_the_model_id_is_of_stored_values_and_settings():
    a = export_params(make_controller("kbt", TARGET)).model_id
    assert a == export_params(make_controller("kbt", TARGET)).model_id and len(a) == 16
    assert export_params(make_controller("kbt", TARGET, MethodSettings(head=HeadConfig(robust=4.0)))).model_id != a
    # the C has no dtype or backend: the Numba float32 and the NumPy head export as the same model
    assert export_params(make_controller("kbt", TARGET, MethodSettings(head=HeadConfig(backend="numpy")))).model_id == a
    # a learned head is a state of the same model
    py = make_controller("kbt", TARGET)
    py.observe(np.zeros(4) + 0.01, 1.0)
    assert export_params(py).model_id == a


def _random_inputs(n, lim, rng):
    """(states (n, 4), labels (n,)): random 32-bit patterns read as float32, values at
    the limits and plausible ones, as float64."""
    with np.errstate(invalid="ignore"):                 # NaN patterns, widened
        bits = rng.integers(0, 2**32, size=(n, 5), dtype=np.uint64).astype(np.uint32).view(np.float32).astype(float)
    lims = np.append(lim, LABEL_MAX)
    plain = rng.uniform(-1, 1, size=(n, 5)) * lims / 1000.0
    edge = lims * rng.choice([1.0, -1.0, 1.0000001, 1e-3], size=(n, 5))
    pick = rng.integers(0, 3, size=(n, 5))
    X = np.where(pick == 0, bits, np.where(pick == 1, plain, edge))
    return X[:, :4], X[:, 4]


@needs_cc
@pytest.mark.parametrize("method", ["kbt", "rls"])
def test_numba_and_numpy_paths_refuse_exactly_what_the_c_refuses(method):
    c = CController(make_controller(method, TARGET))
    runs = {"numba": make_controller(method, TARGET),
            "numpy": make_controller(method, TARGET, MethodSettings(head=HeadConfig(backend="numpy")))}
    S, Y = _random_inputs(600, runs["numba"].state_max(), np.random.default_rng(5))
    with np.errstate(over="ignore", invalid="ignore"):
        refused_c = np.array([c.observe_status(s, y) in REFUSED for s, y in zip(S, Y)])
    assert 100 < refused_c.sum() < 550
    for name, py in runs.items():
        refused = []
        for s, y in zip(S, Y):
            try:
                py.observe(s, y)
                refused.append(False)
            except ValueError:
                refused.append(True)
        np.testing.assert_array_equal(refused, refused_c, err_msg=name)
        assert py.n_updates == c.n_updates
        acts = np.array([py.act(s) for s in S])
        np.testing.assert_array_equal(np.isnan(acts), np.isnan(c.act(S)), err_msg=name)


@pytest.mark.skipif(bool(SAN), reason=f"fuzzing under sanitizers: {SAN}")
@pytest.mark.parametrize("method", ["kbt", "rls"])
def test_1e5_random_bit_calls_under_asan_and_ubsan_leave_no_non_finite_value(method):
    r = c_fuzz.run_fuzz(export_sources(make_controller(method, TARGET)), 100_000, seed=11)
    assert r["calls"] == 100_000
    # every path was taken: learned, down-weighted, changed, refused (not finite, out of range)
    assert min(r["learned"], r["downweighted"], r["changed"], r["nonfinite"], r["out_of_range"]) > 0
    assert r["max_u"] <= 30.0 and r["updates"] == r["learned"] + r["downweighted"] + r["changed"]


@needs_cc
def test_a_fast_math_build_stays_safe():
    """-Ofast lets the compiler drop isfinite and NaN compares: the export's bit tests stay,
    so NaN labels and states are still refused and no value goes non-finite."""
    r = c_fuzz.run_fuzz(export_sources(make_controller("kbt", TARGET)), 20_000, seed=3, flags=c_fuzz.FAST_MATH)
    assert r["nonfinite"] > 0 and r["learned"] > 0
