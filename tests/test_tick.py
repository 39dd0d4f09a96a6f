"""One on-policy tick (act on s, then learn s's label) runs the input map once, with the
results of two separate calls: bit for bit in Numba and in C, and within tolerance of the
NumPy reference (docs/tick.md)."""

from __future__ import annotations

import ctypes
import os

import numpy as np
import pytest

from controller import force_numba as fn
from controller import kbt_packed as kp
from controller.kalman_head import HeadConfig
from controller.kbt import KBTController
from controller.lqr import LQRController
from controller.model import load_pretrained
from firmware_profile import flops
from sim.world.cartpole import TARGET
from sim.world.data import sample_dataset

needs_cc = pytest.mark.skipif(not any(os.access(os.path.join(p, os.environ.get("CC", "cc")), os.X_OK)
                                      for p in os.environ.get("PATH", "").split(os.pathsep)),
                              reason="no host C compiler (cc) on PATH")


@pytest.fixture(scope="module")
def policy():
    return load_pretrained()


def _stream(n=300, nan_state=True):
    """TARGET expert samples; every 37th label 300 N off (down-weighted), from sample 150 on
    twice the expert's force plus 5 N (a change the detector finds), one NaN label and (with
    ``nan_state``; the NumPy path refuses it in ``act``) one NaN state."""
    S, F = sample_dataset(LQRController(TARGET), n, seed=3)
    S, F = np.array(S, dtype=float), np.array(F, dtype=float)
    F[::37] += 300.0
    F[150:] = 2.0 * F[150:] + 5.0
    if n > 41:
        S[40, 2] = np.nan if nan_state else S[40, 2]
        F[41] = np.nan
    return S, F


def _separate(policy, S, F, dtype="float64"):
    """Forces, statuses and the final (m, P, noise) of the grouped kernels, every call
    computing T_1 (``force_numba.kbt_act`` then ``kbt_observe``)."""
    c = KBTController(policy, HeadConfig(dtype=dtype))
    f = c._fast
    m, P, noise = (a.copy() for a in c.head.kernel_arrays())
    zt, Pz = np.zeros_like(m), np.zeros_like(m)
    inputs = (f.weights, f.workspace, f.h, c.h_mean, c.h_T, c.s_inv, c.skip)
    settings = c.head.kernel_settings()
    forces, statuses = [], []
    for s, y in zip(S, F):
        forces.append(fn.kbt_act(inputs, zt, m, s))
        statuses.append(fn.kbt_observe(inputs, (m, P, noise), settings, (zt, Pz), s, y))
    return np.array(forces), np.array(statuses), (m, P, noise)


def _ticks(c, S, F):
    """Forces and statuses of act(s) then observe(s, y) through the public API."""
    forces, statuses = [], []
    for s, y in zip(S, F):
        forces.append(c.act(s))
        d0, ch0 = c.n_downweighted, c.n_changes
        try:
            c.observe(s, y)
            statuses.append(fn.CHANGED if c.n_changes > ch0 else fn.DOWNWEIGHTED if c.n_downweighted > d0
                            else fn.LEARNED)
        except ValueError:
            statuses.append(fn.NONFINITE)
    return np.array(forces), np.array(statuses)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_numba_tick_is_bit_identical_to_separate_calls_and_runs_t1_once(policy, dtype):
    S, F = _stream()
    want_f, want_st, (m, P, noise) = _separate(policy, S, F, dtype)
    assert {fn.LEARNED, fn.DOWNWEIGHTED, fn.CHANGED, fn.NONFINITE} <= set(want_st.tolist())
    c = KBTController(policy, HeadConfig(dtype=dtype))
    got_f, got_st = _ticks(c, S, F)
    np.testing.assert_array_equal(got_f, want_f)
    np.testing.assert_array_equal(got_st, want_st)
    gm, gP, gnoise = c.head.kernel_arrays()
    np.testing.assert_array_equal(gm, m)
    np.testing.assert_array_equal(gP, P)
    np.testing.assert_array_equal(gnoise, noise)
    # one T_1 pass per finite state: the act's; the observe of that state reused it
    assert c.feature_passes == len(S) - 1


def test_tick_kernel_equals_act_then_observe(policy):
    S, F = _stream(120)
    a, b = KBTController(policy), KBTController(policy)
    for s, y in zip(S, F):
        u, status = kp.kbt_tick_packed(a._A, a._B, *s.tolist(), float(y))
        u2 = kp.kbt_act_packed(b._A, b._B, *s.tolist())
        status2 = kp.kbt_observe_packed(b._A, b._B, *s.tolist(), float(y))
        assert (u == u2 or (np.isnan(u) and np.isnan(u2))) and status == status2
    np.testing.assert_array_equal(a._B, b._B)
    np.testing.assert_array_equal(a.head.noise, b.head.noise)


def test_the_key_is_exact(policy):
    c = KBTController(policy)
    s = np.array([0.0, 0.1, 0.02, -0.1])
    c.act(s)
    assert c.feature_passes == 1
    c.act(s.copy())
    assert c.feature_passes == 1                        # the same bits: reused
    neg = s.copy()
    neg[0] = -0.0
    c.act(neg)
    assert c.feature_passes == 2                        # -0.0 is not 0.0
    c.act(np.array([np.nan, 0.0, 0.0, 0.0]))
    assert c.feature_passes == 2                        # a non-finite state runs nothing, keeps the key
    c.observe(neg, 1.0)
    assert c.feature_passes == 2
    nxt = np.nextafter(neg, 1.0)
    c.observe(nxt, 1.0)
    assert c.feature_passes == 3


def test_numpy_reference_tick_reuses_inputs_and_matches_numba(policy):
    S, F = _stream(150, nan_state=False)
    ref = KBTController(policy, HeadConfig(backend="numpy"))
    calls = []
    inputs = ref.inputs
    ref.inputs = lambda X: calls.append(len(X)) or inputs(X)
    ref_f, ref_st = _ticks(ref, S, F)
    assert len(calls) == len(S)                          # one input map per tick
    c = KBTController(policy)
    got_f, got_st = _ticks(c, S, F)
    np.testing.assert_array_equal(got_st, ref_st)
    ok = np.isfinite(got_f)
    assert np.array_equal(ok, np.isfinite(ref_f)) and np.abs(got_f[ok] - ref_f[ok]).max() < 1e-6
    np.testing.assert_allclose(c.head.kernel_arrays()[0], ref.head.kernel_arrays()[0], rtol=1e-6, atol=1e-8)


def test_packed_buffers_hold_the_head_and_its_files(policy, tmp_path):
    c = KBTController(policy)
    S, F = _stream(30)
    for s, y in zip(S[:20], F[:20]):
        if np.all(np.isfinite(s)):
            c.observe(s, y)
    m, P, noise = c.head.kernel_arrays()
    assert np.shares_memory(m, c._B) and np.shares_memory(P, c._B) and np.shares_memory(noise, c._A)
    c.save_state(tmp_path / "h.npz")
    d = KBTController(policy)
    d.load_state(tmp_path / "h.npz")
    for s, y in zip(S[20:], F[20:]):
        assert c.act(s) == d.act(s)
        c.observe(s, y)
        d.observe(s, y)
    np.testing.assert_array_equal(c._B, d._B)
    # the reference update on a kernel head keeps the views (it writes the covariance in place)
    z = c.inputs(S[25:26])[0]
    c.head.update_reference(z, 1.0)
    assert np.shares_memory(c.head.kernel_arrays()[1], c._B)


def test_tick_flops(policy):
    cfg = policy.config
    d_in = cfg.d_model + cfg.n_state
    assert flops.kbt_tick_flops(cfg) == flops.kbt_act_flops(cfg) + flops.force_update_flops(d_in)
    assert flops.kbt_tick_flops(cfg) <= 35_000 < flops.kbt_act_flops(cfg) + flops.kbt_observe_flops(cfg)


@needs_cc
def test_c_tick_is_bit_identical_to_act_then_observe(policy):
    from firmware_profile.c_controller import CController, kept_type, state_type

    S, F = _stream(120)
    a = CController(KBTController(policy))          # act + observe_kept through the key
    b = CController(KBTController(policy))
    lib = b._lib
    lib.kbt_tick.restype, lib.kbt_tick.argtypes = ctypes.c_float, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_float,
                                                                   ctypes.c_void_p]
    lib.kbt_act.restype, lib.kbt_act.argtypes = ctypes.c_float, [ctypes.c_void_p, ctypes.c_void_p]
    lib.kbt_observe_status.restype = ctypes.c_int
    lib.kbt_observe_status.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_float]
    st_sep, st_tick = state_type(21)(), state_type(21)()
    lib.kbt_init(ctypes.byref(st_sep))
    lib.kbt_init(ctypes.byref(st_tick))
    status = ctypes.c_int()
    assert ctypes.sizeof(kept_type(21)) == 4 * 21 + 4
    for s, y in zip(S, F):
        s32 = np.ascontiguousarray(s, dtype=np.float32)
        p = s32.ctypes.data
        u_sep = lib.kbt_act(ctypes.byref(st_sep), p)
        st_sep_status = lib.kbt_observe_status(ctypes.byref(st_sep), p, float(y))
        u_tick = lib.kbt_tick(ctypes.byref(st_tick), p, float(y), ctypes.byref(status))
        assert np.float32(u_sep).tobytes() == np.float32(u_tick).tobytes()
        assert status.value == st_sep_status
        u_a = a.act(s)
        assert np.float32(u_a).tobytes() == np.float32(u_sep).tobytes()
        assert a.observe_status(s, y) == st_sep_status
    assert bytes(st_sep) == bytes(st_tick) == bytes(a._st)


def test_a_deep_copy_or_a_pickle_learns_in_its_own_head():
    """The head's posterior is a view of the kernels' buffers; a copy must keep it so (else its
    kernels would write memory its head no longer reads) and must not share it with the original."""
    import copy
    import pickle

    from sim.loops.methods import make_controller
    from sim.world.cartpole import TARGET

    a = make_controller("kbt", TARGET)
    s = np.array([0.1, -0.2, 0.05, 0.02])
    for b in (copy.deepcopy(a), pickle.loads(pickle.dumps(a))):
        m0 = a.head.core.layers[0].M.copy()
        b.observe(s, 5.0)
        assert not np.array_equal(b.head.core.layers[0].M, m0)        # the copy's head learned
        np.testing.assert_array_equal(a.head.core.layers[0].M, m0)   # the original did not
        assert b.n_updates == 1 and a.n_updates == 0
        assert b.act(s) == pytest.approx(float(b.head.mean(b.inputs(s[None, :]))[0]), abs=1e-9)


def _make(kind, policy):
    from sim.loops.methods import make_controller

    if kind == "rls":
        return make_controller("rls", TARGET)
    return KBTController(policy, HeadConfig(**kind))


@pytest.mark.parametrize("kind", [{}, {"dtype": "float32"}, {"backend": "numpy"}, "rls"],
                         ids=["numba", "numba-f32", "numpy", "rls"])
def test_step_is_act_then_observe(policy, kind):
    """``step(s, y)`` returns act(s) and leaves the posterior of act(s); observe(s, y), bit for bit;
    a refused state or label is a ValueError that changes nothing."""
    S, F = _stream(160, nan_state=False)
    F[41] = 0.5                                   # no NaN label: step and observe refuse it alike (below)
    a, b = _make(kind, policy), _make(kind, policy)
    for s, y in zip(S, F):
        u = a.step(s, y)
        u2 = b.act(s)
        b.observe(s, y)
        assert u == u2
    for x, y in zip(a.head.kernel_arrays(), b.head.kernel_arrays()):
        np.testing.assert_array_equal(x, y)
    assert (a.n_updates, a.n_downweighted, a.n_changes) == (b.n_updates, b.n_downweighted, b.n_changes)
    before = [x.copy() for x in a.head.kernel_arrays()]
    for s, y in [(np.array([np.nan, 0, 0, 0.0]), 1.0), (S[0], np.inf), (S[0] * 0 + 1e18, 1.0), (S[0], 2e4)]:
        with pytest.raises(ValueError):
            a.step(s, y)
    for x, y in zip(a.head.kernel_arrays(), before):
        np.testing.assert_array_equal(x, y)
    assert a.n_updates == b.n_updates


def test_as_c_views_the_buffer_it_is_given():
    """``numba_ops.as_c``: the packed kernels' row-major views typed C-contiguous and borrowed
    read and write the buffer itself (same values, writes land in it)."""
    import numba
    from numpy.lib.stride_tricks import as_strided

    from controller.numba_ops import as_c

    @numba.njit
    def view_and_write(v, r, c):
        it = v.itemsize
        m = as_c(as_strided(v[2:], shape=(r, c), strides=(c * it, it)))
        m[1, 2] = -1.0
        return m.sum(), m[0, 1]

    v = np.arange(12.0)
    total, m01 = view_and_write(v, 2, 3)
    assert (total, m01) == (float(np.arange(2.0, 8.0).sum()) - 7.0 - 1.0, 3.0)
    assert v[7] == -1.0 and v[6] == 6.0
