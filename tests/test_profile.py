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


class FakeMath:
    @staticmethod
    def exp(x):
        Counter.n += 1
        return CF(math.exp(CF._val(x)))

    @staticmethod
    def sqrt(x):
        Counter.n += 1
        return CF(math.sqrt(CF._val(x)))


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
    for name in ("_softmax_into", "_cholesky_inplace", "_solve_lower_t"):
        monkeypatch.setattr(kn, name, getattr(kn, name).py_func)
    monkeypatch.setattr(kn, "math", FakeMath)
    ws = kn.Workspace(n1, K, np.float64)
    work = [_objects(w) for w in (ws.zt, ws.g, ws.q, ws.p, ws.A, ws.G, ws.tmp, ws.v)]
    Mo, So = _objects(M), _objects(S)
    Counter.n = 0
    ok = kn.update_l1.py_func(Mo, So, _objects(h), _objects(y), _objects(C), data_cov, CF(1e-3), CF(1e-9), *work)
    count = Counter.n
    monkeypatch.undo()
    Mc, Sc = M.copy(), S.copy()
    kn.update_l1(Mc, Sc, h, y, C, data_cov, 1e-3, 1e-9, ws.zt, ws.g, ws.q, ws.p, ws.A, ws.G, ws.tmp, ws.v)
    assert ok
    np.testing.assert_allclose(np.vectorize(lambda c: c.v)(Mo).astype(float), Mc, rtol=1e-10, atol=1e-12)
    return count


@pytest.mark.parametrize("d, K, data_cov", [(1, 2, False), (2, 3, False), (3, 4, True), (16, 11, False)])
def test_head_update_flops_equal_the_counted_kernel(d, K, data_cov, monkeypatch):
    assert flops.head_update_flops(d, K, data_cov) == _counted_update(d, K, data_cov, monkeypatch)


def test_head_update_flops_hand_counted_smallest_case():
    # d = 1 (n1 = 2), K = 2:
    # g, q 2*2*6 = 24; softmax 2*8 = 16; Sigma_up 3*4 = 12; A 4*8 = 32; symmetrise 2 + 4 = 6;
    # Cholesky 2 + 3 = 5; solves 2*8 = 16; final 2*(10 + 5 + 4 + 8) = 54  -> 165
    assert flops.head_update_flops(1, 2) == 165
    assert flops.cholesky_flops(1) == 1 and flops.cholesky_flops(2) == 5
    assert flops.head_probs_flops(1, 2) == 16


def test_features_flops_tiny_transformer():
    from controller.transformer import TransformerConfig

    cfg = TransformerConfig(d_model=2, n_heads=1, d_ff=1, n_layers=1, n_state=1, state_scale=(1.0,),
                            query="constant")
    # T = 2 tokens, d = 2, f = 1: embed 2*1*2 = 4; projections 4*(2*2*4 + 4) = 80; scores 2*4*2 + 4 = 20;
    # values 16; ffn in 2*2*2*1 + 2 = 10; ffn out 2*2*1*2 + 4 = 12  -> 142
    assert flops.features_flops(cfg) == 142


# ---------------------------------------------------------------- memory
def test_memory_figures_are_the_arrays_nbytes(pretrained):
    from controller.kalman_head import HeadConfig
    from controller.kbt import KBTController

    c = KBTController(pretrained)
    parts = memory.breakdown(c)
    assert memory.bytes_of(parts["state"]) == sum(L.M.nbytes + L.S.nbytes for L in c.head.layers)
    assert memory.bytes_of(parts["params"]) == sum(a.nbytes for a in parts["params"])
    assert memory.bytes_of(parts["buffers"], 4) * 2 == sum(a.nbytes for a in parts["buffers"])
    c32 = KBTController(pretrained, HeadConfig(dtype="float32"))
    assert sum(L.M.nbytes + L.S.nbytes for L in c32.head.layers) == memory.bytes_of(parts["state"], 4)


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
    assert budgets.fits(100, 1_800_000, budgets.DEVICES[0])["est_update_ms"] == pytest.approx(10.0)
    with pytest.raises(ValueError, match="budget_kib"):
        budgets.custom_device(0)


# ---------------------------------------------------------------- the command
SCHEMA_KEYS = {"schema", "config", "machine_peak_gflops", "methods", "retrain_over_kbt_update_p50",
               "float32_vs_float64", "numba_allocations_per_call", "devices", "command"}
METHOD_KEYS = {"method", "inference_us", "update_us", "first_call_s", "memory", "flops_update",
               "flops_inference", "deadline", "gflops_inference", "gflops_update", "peak_fraction_update",
               "float32_total_with_peak_bytes", "budgets"}


def test_profile_command_json_schema(tmp_path, capsys, pretrained):
    from sim.cli import main

    path = tmp_path / "p.json"
    assert main(["profile", "--quick", "--calls", "50", "--budget-kib", "64", "--no-progress",
                 "--json", str(path), "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| method |") and "custom 64 KiB" in out
    res = json.loads(path.read_text())
    assert set(res) == SCHEMA_KEYS and res["schema"] == 1
    assert [m["method"] for m in res["methods"]] == ["pretrained", "kbt", "retrain-10", "blob-10"]
    for m in res["methods"]:
        assert set(m) == METHOD_KEYS
        assert m["inference_us"]["calls"] == (20 if m["method"].startswith("blob") else 50)
        assert m["memory"]["float32"]["total"] * 2 == m["memory"]["float64"]["total"]
    kbt = res["methods"][1]
    cfg = pretrained.config
    assert kbt["flops_update"] == flops.features_flops(cfg) + flops.head_update_flops(cfg.d_model, cfg.n_bins)
    assert kbt["flops_inference"] == flops.forward_flops(cfg)
    assert res["numba_allocations_per_call"]["head_update_kernel_inside"] == 0


def test_profile_bad_arguments(capsys):
    from sim.cli import main

    for argv, word in ((["profile", "--calls", "3"], "calls"), (["profile", "--rate", "0"], "rate_hz"),
                       (["profile", "--budget-kib", "0"], "budget_kib")):
        with pytest.raises(SystemExit) as e:
            main(argv + ["--no-progress"])
        assert e.value.code == 2 and word in capsys.readouterr().err


def test_run_profile_takes_the_plant_side_as_a_workload():
    """firmware_profile does not import the plant: the caller passes it in (sim.profile_run)."""
    from firmware_profile.profile import ProfileConfig, Workload, run_profile
    from sim.profile_run import target_workload

    with pytest.raises(ValueError, match="work"):
        run_profile(ProfileConfig.quick(), None)
    work = target_workload()
    assert isinstance(work, Workload)
    S, F = work.labelled_stream(5, 0)
    assert S.shape == (5, 4) and F.shape == (5,)
    assert work.sample_states(3, np.random.default_rng(0)).shape == (3, 4)
