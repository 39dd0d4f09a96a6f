"""The profiler on tiny configurations: FLOP counts, memory sums, percentiles, JSON schema."""

import json
import math

import numpy as np
import pytest

from controller import kalman_numba as kn
from firmware_profile import budgets, flops, memory, timing


# ---------------------------------------------------------------- FLOP counts
class Counter:
    n = 0


class CF:
    """A float that counts arithmetic: + - * / (and exp, sqrt through FakeMath)."""

    __slots__ = ("v",)

    def __init__(self, v):
        self.v = float(v)

    @staticmethod
    def _val(o):
        return o.v if isinstance(o, CF) else o

    def _op(self, o, f):
        Counter.n += 1
        return CF(f(self.v, self._val(o)))

    def __add__(self, o): return self._op(o, lambda a, b: a + b)
    def __radd__(self, o): return self._op(o, lambda a, b: b + a)
    def __sub__(self, o): return self._op(o, lambda a, b: a - b)
    def __rsub__(self, o): return self._op(o, lambda a, b: b - a)
    def __mul__(self, o): return self._op(o, lambda a, b: a * b)
    def __rmul__(self, o): return self._op(o, lambda a, b: b * a)
    def __truediv__(self, o): return self._op(o, lambda a, b: a / b)
    def __rtruediv__(self, o): return self._op(o, lambda a, b: b / a)
    def __neg__(self): return CF(-self.v)
    def __lt__(self, o): return self.v < self._val(o)
    def __le__(self, o): return self.v <= self._val(o)
    def __gt__(self, o): return self.v > self._val(o)
    def __ge__(self, o): return self.v >= self._val(o)
    def __int__(self): return int(self.v)


class FakeMath:
    @staticmethod
    def exp(x):
        Counter.n += 1
        return CF(math.exp(CF._val(x)))

    @staticmethod
    def sqrt(x):
        Counter.n += 1
        return CF(math.sqrt(CF._val(x)))

    @staticmethod
    def isfinite(x):
        return math.isfinite(CF._val(x))

    nan = math.nan


def _objects(a):
    out = np.empty(a.shape, dtype=object)
    for idx in np.ndindex(a.shape):
        out[idx] = CF(a[idx])
    return out


def _counted_update(d, K, data_cov, monkeypatch):
    """Run the kernel's Python source on counting floats; returns (count, M) and the compiled M."""
    rng = np.random.default_rng(d * 10 + K)
    n1 = d + 1
    M = rng.normal(size=(n1, K))
    S = np.stack([np.eye(n1) * 0.1 for _ in range(K)])
    h = rng.normal(size=d)
    y = np.full(K, 1.0 / K)
    C = np.eye(K) * 0.01
    from controller import numba_ops as ops

    for mod, names in ((kn, ("_augment", "_logits_softmax", "_gain_inputs", "_innovation_cov", "_gain",
                             "_weights_step", "softmax_inplace", "cholesky_inplace", "solve_cholesky_inplace")),
                       (ops, ("softmax_inplace", "cholesky_inplace", "solve_cholesky_inplace"))):
        for name in names:
            monkeypatch.setattr(mod, name, getattr(mod, name).py_func)
    monkeypatch.setattr(ops, "math", FakeMath)
    ws = kn.new_work(n1, K, np.float64)
    work = tuple(_objects(w) for w in ws)
    Mo, So = _objects(M), _objects(S)
    Counter.n = 0
    ok = kn.update_one_layer.py_func((Mo, So), (_objects(h), _objects(y), _objects(C), data_cov),
                                     (CF(1e-3), CF(1e-9)), work)
    count = Counter.n
    monkeypatch.undo()
    Mc, Sc = M.copy(), S.copy()
    kn.update_one_layer((Mc, Sc), (h, y, C, data_cov), (1e-3, 1e-9), tuple(ws))
    assert ok
    np.testing.assert_allclose(np.vectorize(lambda c: c.v)(Mo).astype(float), Mc, rtol=1e-10, atol=1e-12)
    return count


@pytest.mark.parametrize("d, K, data_cov", [(1, 2, False), (2, 3, False), (3, 4, True), (16, 11, False)])
def test_head_update_flops_equal_the_counted_kernel(d, K, data_cov, monkeypatch):
    assert flops.head_update_flops(d, K, data_cov) == _counted_update(d, K, data_cov, monkeypatch)


def _values(a):
    return np.vectorize(lambda c: c.v if isinstance(c, CF) else c, otypes=[float])(a)


def _force_args(d_in, rng, R=0.5, learn=True, detect=True, robust=True, floor=1e-4):
    """(head, settings, work, y) for ``force_update`` (plain tuples in ``HeadState``,
    ``HeadSettings``, ``HeadWork`` order) with a sample within two sigma of the
    prediction (no change, full weight); P is a random SPD matrix."""
    n1 = d_in + 1
    m = rng.normal(size=n1)
    A = rng.normal(size=(n1, n1))
    P = A @ A.T / n1 + 0.1 * np.eye(n1)
    zt = np.append(rng.normal(size=d_in), 1.0)
    y = float(m @ zt + 0.3)
    noise = np.array([R, 3.0, 3.0 * R, 1.0])
    detector = np.array([0.45, 7.2, 1.15, 20.0 if detect else 0.0, 5.0 if detect else 0.0])
    settings = (learn, floor, 64.0 if robust else 0.0, 1e-9, 0.999, detector, np.array([10.0, 1.0, 10.0]),
                10.0 * np.eye(n1))
    return (m, P, noise), settings, (zt, np.zeros(n1)), y


def _counting(group, at=None):
    """``group`` (a tuple) with its entries at positions ``at`` (all: None) as counting
    floats: arrays as object arrays of ``CF``, scalars as one ``CF``."""
    return tuple((_objects(np.asarray(a)) if np.ndim(a) else CF(a)) if at is None or i in at else a
                 for i, a in enumerate(group))


def _copies(group):
    return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in group)


def _counted_force(fn_name, args, monkeypatch):
    """Run ``force_numba.<fn_name>``'s Python source (and its helpers') on ``args``
    (the counting ones made by ``_counting``); returns (count, result). Undoes every
    monkeypatch when done."""
    from controller import force_numba as fnb

    source = getattr(fnb, fn_name).py_func
    for name in ("force_update", "force_mean", "_state_inputs", "_kbt_inputs", "_moments", "_reopen"):
        monkeypatch.setattr(fnb, name, getattr(fnb, name).py_func)
    monkeypatch.setattr(fnb, "math", FakeMath)
    Counter.n = 0
    out = source(*args)
    count = Counter.n
    monkeypatch.undo()
    return count, out


@pytest.mark.parametrize("d_in, detect, robust, learn", [(1, True, True, True), (2, False, True, True),
                                                     (4, True, False, False), (20, True, True, True)])
def test_force_update_flops_equal_the_counted_kernel(d_in, detect, robust, learn, monkeypatch):
    from controller import force_numba as fnb

    head, settings, work, y = _force_args(d_in, np.random.default_rng(d_in), learn=learn, detect=detect,
                                          robust=robust)
    counted = _counting(head)
    count, status = _counted_force("force_update", (counted, settings, _counting(work), CF(y)), monkeypatch)
    compiled = _copies(head)
    assert status == fnb.force_update(compiled, settings, _copies(work), y) == fnb.LEARNED
    assert count == flops.force_update_flops(d_in, detect=detect, robust=robust, learn=learn)
    for got, want in zip(counted, compiled):      # m, P and the noise state agree with the compiled kernel
        np.testing.assert_allclose(_values(got), want, rtol=1e-12, atol=1e-14)


def test_force_update_flops_capped_downweighted_and_changed(monkeypatch):
    from controller import force_numba as fnb

    # R << q and no robust weight: c = 1 / S is capped at 0.999 / q (one more division);
    # the noise floor below R, so the learned R stays tiny
    head, settings, work, y = _force_args(3, np.random.default_rng(1), R=1e-12, floor=1e-14, robust=False)
    count, status = _counted_force("force_update", (_counting(head), settings, _counting(work), CF(y)),
                                   monkeypatch)
    assert status == fnb.LEARNED and count == flops.force_update_flops(3, robust=False, capped=True)
    # a label far outside the predictive: learned with a small weight; the detector's
    # evidence passes h_hold, so the noise statistics wait
    head, settings, work, y = _force_args(3, np.random.default_rng(2))
    count, status = _counted_force("force_update", (_counting(head), settings, _counting(work), CF(y + 1e3)),
                                   monkeypatch)
    assert status == fnb.DOWNWEIGHTED and count == flops.force_update_flops(3, held=True)
    # the detector's statistic just below its threshold: a far label is a change
    head, settings, work, y = _force_args(3, np.random.default_rng(3))
    head[2][3] = 19.0
    reopen = _counting(settings, at={6})        # the prior re-opened to: counting floats, so its FLOPs count
    count, status = _counted_force("force_update", (_counting(head), reopen, _counting(work), CF(y + 1e3)),
                                   monkeypatch)
    assert status == fnb.CHANGED and count == flops.force_update_flops(3, change=True)


def _fused_args(pretrained, skip):
    """A KBT controller's fused-kernel groups (public attributes) for one state:
    (controller, state, y, inputs, head, settings, work), plain tuples in ``KBTInputs``,
    ``HeadState``, ``HeadSettings``, ``HeadWork`` order; fresh copies and work arrays."""
    from controller.kalman_head import HeadConfig
    from controller.kbt import KBTController
    from controller.transformer_numba import FastInference

    c = KBTController(pretrained, HeadConfig(inputs="features+state" if skip else "features"))
    f = FastInference(pretrained)
    n1 = c.head.d_in + 1
    state = np.array([0.1, -0.2, 0.03, 0.05])
    y = float(c.act(state)) + 0.5
    inputs = (f.weights, f.workspace, f.h, c.h_mean, c.h_T, c.s_inv, c.skip)
    head = _copies(c.head.kernel_arrays())
    return c, state, y, inputs, head, c.head.kernel_settings(), (np.zeros(n1), np.zeros(n1))


def _features_stub():
    """T_1 without counting (features_flops is an estimate of it): the compiled
    kernel on the float values, written into the counted ``h``."""
    from controller.transformer_numba import _features_one

    def stub(state, *rest):
        h = rest[-1]
        out = np.zeros(h.shape[0])
        _features_one(_values(np.asarray(state, dtype=object)), *rest[:-1], out)
        for j in range(h.shape[0]):
            h[j] = CF(out[j])

    return stub


@pytest.mark.parametrize("skip", [True, False])
def test_kbt_observe_and_act_flops_equal_the_counted_fused_kernels(pretrained, skip, monkeypatch):
    """The fused kernels' source on counting floats, T_1 stubbed out: the count is
    kbt_*_flops minus features_flops, and the posterior equals the compiled kernel's."""
    from controller import force_numba as fnb

    c, state, y, inputs, head, settings, work = _fused_args(pretrained, skip)
    cfg = pretrained.config
    monkeypatch.setattr(fnb, "_features_one", _features_stub())
    counted = _counting(head)
    count, status = _counted_force("kbt_observe", (_counting(inputs, at={2}), counted, settings, _counting(work),
                                                   *_counting((state, y))), monkeypatch)
    assert status == fnb.LEARNED
    assert count == flops.kbt_observe_flops(cfg, skip=skip, all_rows=True) - flops.features_flops(cfg)
    compiled = _copies(head)
    fresh = (*inputs[:2], np.zeros_like(inputs[2]), *inputs[3:])        # a zeroed h
    fnb.kbt_observe(fresh, compiled, settings, _copies(work), state, y)
    for got, want in zip(counted, compiled):      # m, P and the noise state
        np.testing.assert_allclose(_values(got), want, rtol=1e-9, atol=1e-12)

    monkeypatch.setattr(fnb, "_features_one", _features_stub())
    m = head[0]
    count, force = _counted_force("kbt_act", (_counting(inputs, at={2}), *_counting((work[0], m, state))),
                                  monkeypatch)
    assert count == flops.kbt_act_flops(cfg, skip=skip, all_rows=True) - flops.features_flops(cfg)
    assert CF._val(force) == pytest.approx(fnb.kbt_act(fresh, np.zeros_like(work[0]), m, state), rel=1e-10)


def test_rls_flops_equal_the_counted_fused_kernels(monkeypatch):
    from controller import force_numba as fnb
    from controller.rls import RLSController

    r = RLSController([-1.0, -2.0, -30.0, -5.0])
    head = _copies(r.head.kernel_arrays())
    state = np.array([0.1, -0.2, 0.03, 0.05])
    y = float(r.act(state)) + 0.1
    obs = (r.s_inv, _counting(head), r.head.kernel_settings(), _counting((np.zeros(5), np.zeros(5))),
           *_counting((state, y)))
    count, status = _counted_force("rls_observe", obs, monkeypatch)
    assert status == fnb.LEARNED and count == flops.rls_observe_flops()
    count, _ = _counted_force("rls_act", (r.s_inv, *_counting((np.zeros(5), head[0], state))), monkeypatch)
    assert count == flops.rls_act_flops() == 14


def test_force_flops_hand_counted_smallest_case():
    # d_in = 1 (n1 = 2): Pz, q, mu 2*4 + 4*2 = 16; e, S, x 5; detector 3; robust weight 3;
    # m 3*2 = 6; c and the cap test 2; P 2 + 2*3 = 8; learned noise 7  -> 50
    assert flops.force_update_flops(1) == 50
    assert flops.force_update_flops(1, detect=False, robust=False, learn=False) == 37
    assert flops.force_mean_flops(1) == 4 and flops.standardise_flops(2) == 12


def test_head_update_flops_hand_counted_smallest_case():
    # d = 1 (n1 = 2), K = 2:
    # g, q 2*2*6 = 24; softmax 2*8 = 16; Sigma_up 3*4 = 12; A 4*8 = 32; symmetrise 2 + 4 = 6;
    # Cholesky 2 + 3 = 5; solves 2*8 = 16; final 2*(10 + 5 + 4 + 8) = 54  -> 165
    assert flops.head_update_flops(1, 2) == 165
    assert flops.cholesky_flops(1) == 1 and flops.cholesky_flops(2) == 5
    assert flops.head_probs_flops(1, 2) == 16


def test_skipped_rows_flops_are_the_last_blocks_other_rows(pretrained):
    cfg = pretrained.config                       # d 16, f 8, 2 heads, 4 state values
    per_row = 2 * (2 * 16 * 16 + 16) + 2 * 5 * 16 + 2 * 5 + 2 * 5 * 16 + 2 * 16 * 8 + 8 + 2 * 8 * 16 + 16
    assert flops.skipped_rows_flops(cfg) == 4 * per_row
    assert flops.kbt_act_flops(cfg) == flops.kbt_act_flops(cfg, all_rows=True) - 4 * per_row


def test_features_flops_tiny_transformer():
    from controller.transformer import TransformerConfig

    cfg = TransformerConfig(d_model=2, n_heads=1, d_ff=1, n_layers=1, n_state=1, state_scale=(1.0,),
                            query="constant")
    # T = 2 tokens, d = 2, f = 1: embed 2*1*2 = 4; projections 4*(2*2*4 + 4) = 80; scores 2*4*2 + 4 = 20;
    # values 16; ffn in 2*2*2*1 + 2 = 10; ffn out 2*2*1*2 + 4 = 12  -> 142
    assert flops.features_flops(cfg) == 142


# ---------------------------------------------------------------- memory
def test_memory_figures_are_the_arrays_nbytes(pretrained):
    from controller import kbt_packed as kp
    from controller.kalman_head import HeadConfig
    from controller.kbt import KBTController
    from controller.transformer_numba import FastInference

    c = KBTController(pretrained)
    parts = memory.breakdown(c)
    m, P, noise = c.head.kernel_arrays()
    # the learning state: the weight posterior and the noise statistics, the kernels' own arrays
    assert memory.bytes_of(parts["state"]) == sum(L.M.nbytes + L.S.nbytes for L in c.head.core.layers) + noise.nbytes
    assert any(np.shares_memory(a, P) for a in parts["state"]) and any(a is noise for a in parts["state"])
    assert memory.bytes_of(parts["params"]) == sum(a.nbytes for a in parts["params"])
    assert memory.bytes_of(parts["buffers"], 4) * 2 == sum(a.nbytes for a in parts["buffers"])
    # params: buffer A's frozen part (kbt_packed.layout): header and settings, the packed T_1 weights the
    # fused kernels read, the standardiser, the state scale, the detector settings, the re-open prior and P0
    assert len(parts["params"]) == 1 and np.shares_memory(parts["params"][0], c._A)
    n_t1 = sum(a.size for a in FastInference(pretrained).weight_arrays())   # the policy's packed T_1 weights
    n1 = c.head.d_in + 1
    assert memory.bytes_of(parts["params"]) == 8 * (kp.HEADER + 4 + n_t1 + c.h_mean.size + c.h_T.size + 4
                                                    + c.head.detector.size + c.head.reopen_to.size + n1 * n1)
    # buffers: A's work part (key, state, h, T_1's work arrays) and z~, P z~ in B
    assert any(np.shares_memory(a, c._B) for a in parts["buffers"])
    c32 = KBTController(pretrained, HeadConfig(dtype="float32"))
    parts32 = memory.breakdown(c32)
    assert c32.head.core.layers[0].M.dtype == np.float32
    # float32 figures are the float32 controller's nbytes (its noise state stays float64: 4 x 4 bytes counted)
    assert (sum(L.M.nbytes + L.S.nbytes for L in c32.head.core.layers) + 4 * 4
            == memory.bytes_of(parts["state"], 4) == memory.bytes_of(parts32["state"], 4))


def test_memory_breakdown_of_every_method(pretrained):
    from controller.kbt_softmax import SoftmaxKBTController
    from controller.rls import RLSController

    s = SoftmaxKBTController(pretrained)
    parts = memory.breakdown(s)
    assert memory.bytes_of(parts["state"]) == sum(L.M.nbytes + L.S.nbytes for L in s.head.layers)
    d = pretrained.config.d_model
    assert memory.bytes_of(parts["params"]) == sum(a.nbytes for a in pretrained.params.values()) + 8 * (d + d * d)
    r = RLSController([-1.0, -2.0, -30.0, -5.0])
    parts = memory.breakdown(r)
    assert memory.bytes_of(parts["state"]) == 8 * (5 + 25 + 4)           # m, P, [R, a, b, g]
    assert memory.bytes_of(parts["buffers"]) == 8 * (5 + 5)              # z~, P z~
    parts = memory.breakdown(pretrained)
    assert parts["state"] == [] and memory.bytes_of(parts["params"]) == sum(a.nbytes for a in pretrained.params.values())
    with pytest.raises(ValueError, match="memory_arrays"):
        memory.breakdown(object())


def test_retrain_memory_counts_adam_and_fifo(pretrained):
    from controller.retrain import RetrainController

    pol = pretrained
    r = RetrainController(pol, capacity=7, epochs=1)
    r.observe(np.zeros(4), 1.0)
    parts = memory.breakdown(r)
    n_params = sum(a.size for a in pol.params.values())
    assert memory.bytes_of(parts["state"]) == 2 * 8 * n_params
    assert sum(a.nbytes for a in r.opt.m.values()) * 2 == memory.bytes_of(parts["state"])
    assert memory.bytes_of(parts["buffers"][:2]) == 8 * 7 * (4 + pol.config.n_bins)


def test_blob_memory_counts_adapters_and_adam(pretrained):
    from controller.blob import BLoBController

    b = BLoBController(pretrained, capacity=4, epochs=1, rank=2)
    b.observe(np.zeros(4), 1.0)
    parts = memory.breakdown(b)
    adapters = sum(a.nbytes for a in b.parameters().values())
    adam = sum(a.nbytes for a in b.opt.m.values()) + sum(a.nbytes for a in b.opt.v.values())
    assert memory.bytes_of(parts["state"]) == adapters + adam


def test_traced_peak_sees_an_allocation():
    assert memory.traced_peak(lambda: np.ones(100_000)) >= 800_000
    assert memory.traced_peak(lambda: None) < 1000


# ---------------------------------------------------------------- timing
def test_percentiles_are_ordered():
    rng = np.random.default_rng(0)
    p = timing.percentiles(rng.exponential(1e-5, 10_000))
    assert p["p50"] <= p["p90"] <= p["p99"] <= p["p99.9"] <= p["max"] and p["calls"] == 10_000
    with pytest.raises(ValueError, match="seconds"):
        timing.percentiles([])


def test_deadline_analysis_counts_runs():
    infer = np.full(8, 0.001)
    upd = np.array([0.0, 0.03, 0.03, 0.0, 0.03, 0.03, 0.03, 0.0])
    d = timing.deadline_analysis(infer, upd, 50.0)
    assert d["misses"] == 5 and d["longest_miss_run"] == 3 and d["miss_fraction"] == pytest.approx(5 / 8)
    with pytest.raises(ValueError, match="rate"):
        timing.deadline_analysis(infer, upd, 0.0)


def test_budgets():
    dev = budgets.custom_device(1)
    assert budgets.fits(1024, None, dev)["fits"] and not budgets.fits(1025, None, dev)["fits"]
    assert budgets.fits(100, 1_800_000, budgets.DEVICES[0])["est_tick_ms"] == pytest.approx(10.0)
    counted = budgets.fits(10**9, 1, budgets.DEVICES[0], counted=(90_000, 4096))
    assert counted["source"] == "counted" and counted["fits"] and counted["est_tick_ms"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="budget_kib"):
        budgets.custom_device(0)


# ---------------------------------------------------------------- the command
SCHEMA_KEYS = {"schema", "config", "machine_peak_gflops", "methods", "retrain_over_kbt_update_p50",
               "float32_vs_float64", "numba_allocations_per_call", "c_export", "devices", "command", "tick"}
METHOD_KEYS = {"method", "inference_us", "update_us", "first_call_s", "memory", "flops_update", "flops_tick",
               "flops_inference", "deadline", "gflops_inference", "gflops_update", "peak_fraction_update",
               "float32_total_with_peak_bytes", "budgets", "downweighted_updates"}
ALLOC_KEYS = {"kbt_observe_kernel_inside", "kbt_act_kernel_inside", "kbt_observe_kernel_from_python",
              "kbt_observe", "kbt_act", "kbt_softmax_update_kernel_inside",
              "kbt_softmax_update_kernel_from_python", "kbt_softmax_observe", "kbt_softmax_act"}


def test_profile_command_json_schema(tmp_path, capsys, pretrained):
    from sim.cli import main

    path = tmp_path / "p.json"
    # --calls 10, the fewest allowed: fewer states than BLoB's 20 inference calls under --quick
    assert main(["profile", "--quick", "--calls", "10", "--budget-kib", "64", "--no-progress",
                 "--json", str(path), "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| method |") and "custom 64 KiB" in out
    res = json.loads(path.read_text())
    assert set(res) == SCHEMA_KEYS and res["schema"] == 5
    c_rows = [] if "skipped" in res["c_export"] else ["kbt-c", "rls-c"]
    assert [m["method"] for m in res["methods"]] == ["pretrained", "kbt", "kbt-softmax", "rls", *c_rows,
                                                    "retrain-10", "blob-10"]
    for m in res["methods"]:
        assert set(m) == METHOD_KEYS
        assert m["inference_us"]["calls"] == (20 if m["method"].startswith("blob") else 10)
        assert m["memory"]["float32"]["total"] * 2 == m["memory"]["float64"]["total"]
    by = {m["method"]: m for m in res["methods"]}
    cfg = pretrained.config
    assert by["kbt"]["flops_update"] == flops.kbt_observe_flops(cfg)
    assert by["kbt"]["flops_inference"] == flops.kbt_act_flops(cfg)
    assert by["kbt"]["downweighted_updates"] is not None and by["retrain-10"]["downweighted_updates"] is None
    assert by["kbt-softmax"]["flops_update"] == (flops.features_flops(cfg)
                                                 + flops.head_update_flops(cfg.d_model, cfg.n_bins))
    assert by["kbt-softmax"]["flops_inference"] == flops.forward_flops(cfg)
    assert by["rls"]["flops_update"] == flops.rls_observe_flops()
    assert set(res["retrain_over_kbt_update_p50"]) == {"retrain-10", "blob-10"}
    f32 = res["float32_vs_float64"]
    assert f32["method"] == "kbt" and f32["backend_float32"] == "numba" and f32["max_force_diff_N"] < 1e-2
    allocs = res["numba_allocations_per_call"]
    assert set(allocs) == ALLOC_KEYS
    assert allocs["kbt_observe_kernel_inside"] == allocs["kbt_act_kernel_inside"] == 0
    assert allocs["kbt_softmax_update_kernel_inside"] == 0
    assert "kbt: observe p50 " in out and "Numba allocations per call: observe() " in out
    assert "(inside the fused kernels: 0)" in out
    # --quick retrains with 5 epochs: said in the rows and in a note; the device time is one tick (act + observe)
    assert "| retrain-10 (5 ep) |" in out and "5 epochs per update in this run (--quick)" in out
    for m in res["methods"]:
        for b, dev in zip(m["budgets"], res["devices"]):
            if b["source"] == "flops" and dev["clock_mhz"]:
                tick = m["flops_tick"] or (m["flops_update"] or 0) + m["flops_inference"]
                assert b["est_tick_ms"] == pytest.approx(tick / (dev["clock_mhz"] * 1e3))
    if c_rows:
        host = res["c_export"]["kbt"]["host"]
        assert host["allocations_per_call"] == 0 and host["observe_us"]["calls"] == 10
        assert host["max_force_diff_vs_python_N"] < 1e-4
        assert by["kbt-c"]["flops_update"] == by["kbt"]["flops_update"]
        assert "kbt C export, host, timed in C: observe p50 " in out
        for core, dev in res["c_export"]["kbt"]["devices"].items():
            counted = [b for b in by["kbt-c"]["budgets"] if b["source"] == "counted"]
            assert ("skipped" in dev) == (not counted)
    assert all(b["source"] == "flops" for b in by["kbt"]["budgets"])
    # the on-policy tick side by side: Numba from Python, C (when built) and NumPy on the same stream
    tick = res["tick"]
    assert by["kbt"]["flops_tick"] == tick["flops"]["tick"] == flops.kbt_tick_flops(cfg)
    assert set(tick["paths"]) == {"numba", "numpy"} | ({"c"} if c_rows else set())
    for name, p in tick["paths"].items():
        assert p["two_calls_us"] == pytest.approx(p["act_us"] + p["observe_us"])
        assert 0 < p["peak_fraction_tick"] == pytest.approx(p["gflops_tick"] / res["machine_peak_gflops"])
    if c_rows:
        assert tick["over_c"]["numba"]["tick"] == pytest.approx(tick["paths"]["numba"]["tick_us"]
                                                              / tick["paths"]["c"]["tick_us"])
        assert "kbt tick (act on s, then learn s's label" in out and "C export, timed in C: act p50" in out
        for core, dev in res["c_export"]["kbt"]["devices"].items():
            if "skipped" not in dev:
                assert dev["tick"]["instructions_mean"] < dev["act"]["instructions_mean"] + dev["observe"][
                    "instructions_mean"]


def test_profile_bad_arguments(capsys):
    from sim.cli import main

    for argv, word in ((["profile", "--calls", "3"], "calls"), (["profile", "--rate", "0"], "rate"),
                       (["profile", "--budget-kib", "0"], "budget")):
        with pytest.raises(SystemExit) as e:
            main(argv + ["--no-progress"])
        assert e.value.code == 2 and word in capsys.readouterr().err


def test_run_profile_takes_the_plant_side_as_a_workload():
    """firmware_profile does not import the plant: the caller passes it in (sim.experiments.profile_run)."""
    from firmware_profile.profile import ProfileConfig, Workload, run_profile
    from sim.experiments.profile_run import target_workload

    with pytest.raises(ValueError, match="work"):
        run_profile(ProfileConfig.quick(), None)
    work = target_workload()
    assert isinstance(work, Workload)
    S, F = work.labelled_stream(5, 0)
    assert S.shape == (5, 4) and F.shape == (5,)
    assert work.sample_states(3, np.random.default_rng(0)).shape == (3, 4)
