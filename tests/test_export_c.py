"""The C99 export (``kbt export``) against the Python controllers it comes from.

Tolerances, on 10 000 states after 1 000 TARGET updates (expert labels with
corrupt ones and a change of the labelling rule part-way, so that every status
occurs): the exported C (float32 throughout) gives forces within 1e-4 N of the
float32 Numba path and of the float64 NumPy reference, and the same status for
every update (learned, down-weighted, changed). Forces reach about 65 N here;
the differences measured are about 3e-5 N (float32 rounding of T_1's
activations and of the head's update).
"""

import ctypes
import os
import re
import subprocess

import numpy as np
import pytest

from controller.kalman_head import HeadConfig
from controller.lqr import LQRController
from firmware_profile import c_build, cortex_m
from firmware_profile.c_controller import CController
from firmware_profile.export import export_params, export_sources, pack_lower, unpack_lower, write_export
from firmware_profile.export.emit import c_float
from sim.world.cartpole import TARGET
from sim.world.data import sample_dataset, sample_states
from sim.loops.methods import MethodSettings, is_learner, make_controller

FORCE_TOL = 1e-4        # N
N_UPDATES, N_STATES = 1000, 10_000

needs_cc = pytest.mark.skipif(not any(os.access(os.path.join(p, os.environ.get("CC", "cc")), os.X_OK)
                                      for p in os.environ.get("PATH", "").split(os.pathsep)),
                              reason="no host C compiler (cc) on PATH")


def _stream(n=N_UPDATES):
    """TARGET expert samples; every 97th label 300 N off (down-weighted) and, from
    sample 600 on, twice the expert's force plus 5 N (a change the detector finds)."""
    S, F = sample_dataset(LQRController(TARGET), n, seed=1)
    F = np.array(F, dtype=float)
    F[::97] += 300.0
    F[600:] = 2.0 * F[600:] + 5.0
    return S, F


def _statuses(c, S, F):
    """Per update: 0 learned, 1 down-weighted, 3 changed (from the public counters)."""
    out = []
    for s, f in zip(S, F):
        d0, c0 = c.n_downweighted, c.n_changes
        assert c.observe(s, f)
        out.append(3 if c.n_changes > c0 else 1 if c.n_downweighted > d0 else 0)
    return np.array(out)


@pytest.fixture(scope="module")
def kbt_runs():
    """(C, Numba float32, NumPy float64) kbt controllers after the stream, with their statuses."""
    S, F = _stream()
    runs = {"c": CController(make_controller("kbt", TARGET)),
            "f32": make_controller("kbt", TARGET, MethodSettings(head=HeadConfig(dtype="float32"))),
            "f64": make_controller("kbt", TARGET, MethodSettings(head=HeadConfig(backend="numpy")))}
    assert runs["f32"].head.uses_numba and not runs["f64"].head.uses_numba
    statuses = {k: _statuses(c, S, F) for k, c in runs.items()}
    return runs, statuses


@pytest.fixture(scope="module")
def probe_states():
    return sample_states(N_STATES, np.random.default_rng(7))


@needs_cc
def test_kbt_statuses_identical_to_numba_float32_and_numpy_float64(kbt_runs):
    runs, st = kbt_runs
    counts = np.bincount(st["c"], minlength=4)
    assert counts[1] >= 5 and counts[3] >= 1, f"the stream should down-weight and change: {counts}"
    np.testing.assert_array_equal(st["c"], st["f32"])
    np.testing.assert_array_equal(st["c"], st["f64"])
    c = runs["c"]
    assert (c.n_updates, c.n_downweighted, c.n_changes) == (runs["f64"].n_updates, runs["f64"].n_downweighted,
                                                            runs["f64"].n_changes)


@needs_cc
def test_kbt_forces_within_1e4_newton_of_float32_and_float64_on_10000_states(kbt_runs, probe_states):
    runs, _ = kbt_runs
    fc = runs["c"].act(probe_states)
    f32 = np.array([runs["f32"].act(s) for s in probe_states])
    f64 = runs["f64"].act(probe_states)
    assert np.abs(f64).max() > 10.0                      # forces of a real size, not all near 0
    assert np.abs(fc - f32).max() < FORCE_TOL
    assert np.abs(fc - f64).max() < FORCE_TOL
    assert all(runs["c"].act(s) == fc[i] for i, s in enumerate(probe_states[:50]))   # one state = batch


@needs_cc
def test_kbt_posterior_and_predictive_variances_follow_the_reference(kbt_runs, probe_states):
    runs, _ = kbt_runs
    m, P, noise = runs["c"].head_arrays()
    m64, P64, noise64 = runs["f64"].head.kernel_arrays()
    np.testing.assert_allclose(m, m64, atol=2e-4 * np.abs(m64).max())
    np.testing.assert_allclose(P, P64, atol=1e-4 * np.abs(P64).max())
    np.testing.assert_allclose(noise, noise64, rtol=1e-4, atol=1e-6)
    assert runs["c"].noise_var == pytest.approx(runs["f64"].noise_var, rel=1e-4)
    mean, ale, epi = runs["c"].predict_split(probe_states[:500])
    mean64, ale64, epi64 = runs["f64"].predict_split(probe_states[:500])
    assert np.abs(mean - mean64).max() < FORCE_TOL
    np.testing.assert_allclose(ale, ale64, rtol=1e-4)
    np.testing.assert_allclose(epi, epi64, rtol=2e-3, atol=1e-6 * epi64.max())
    mean2, var = runs["c"].predict(probe_states[:5])
    np.testing.assert_array_equal(mean2, mean[:5])
    np.testing.assert_allclose(var, ale[:5] + epi[:5], rtol=1e-6)


@needs_cc
def test_rls_export_matches_float32_and_float64():
    S, F = _stream()
    runs = {"c": CController(make_controller("rls", TARGET)),
            "f32": make_controller("rls", TARGET, MethodSettings(head=HeadConfig(dtype="float32"))),
            "f64": make_controller("rls", TARGET, MethodSettings(head=HeadConfig(backend="numpy")))}
    st = {k: _statuses(c, S, F) for k, c in runs.items()}
    np.testing.assert_array_equal(st["c"], st["f32"])
    np.testing.assert_array_equal(st["c"], st["f64"])
    X = sample_states(2000, np.random.default_rng(3))
    fc = runs["c"].act(X)
    assert np.abs(fc - np.array([runs["f32"].act(s) for s in X])).max() < FORCE_TOL
    assert np.abs(fc - runs["f64"].act(X)).max() < FORCE_TOL
    assert runs["c"].name == "rls-c" and runs["c"].prefix == "rls"


@needs_cc
def test_swingup_kbt_with_its_family_prior_reopens_to_it_in_c_as_in_numpy():
    """Swing-up KBT carries a full prior covariance (the family prior): the export holds it
    (``prior_P``) and a detected change re-opens P to it, as the NumPy reference does."""
    from sim.loops.deploy import iid_samples
    from sim.world.experts import expert_for
    from sim.world.task import SWINGUP, SWINGUP_TARGET

    task = SWINGUP.on(SWINGUP_TARGET)
    S, F = iid_samples(expert_for(task), 1, 0, 400, task=task)
    F = np.array(F, dtype=float)
    F[250:] = -3.0 * F[250:] + 40.0                        # a change the detector finds
    runs = {"c": CController(make_controller("kbt", task)),
            "f64": make_controller("kbt", task, MethodSettings(head=HeadConfig(backend="numpy")))}
    P0 = runs["f64"].head.prior_cov
    assert P0 is not None and np.abs(P0 - np.diag(np.diag(P0))).max() > 0.1       # full, not v I
    p = runs["c"]._params
    assert p.ints["PRIOR_FULL"] == 1
    np.testing.assert_allclose(unpack_lower(p.arrays["prior_P"], P0.shape[0]), P0)
    assert export_params(make_controller("kbt", TARGET)).ints["PRIOR_FULL"] == 0
    assert export_params(make_controller("kbt", TARGET, MethodSettings(family=True))).ints["PRIOR_FULL"] == 1
    st = {k: _statuses(c, S, F) for k, c in runs.items()}
    assert np.count_nonzero(st["f64"] == 3) >= 1
    np.testing.assert_array_equal(st["c"], st["f64"])
    _, P, _ = runs["c"].head_arrays()
    _, P64, _ = runs["f64"].head.kernel_arrays()
    np.testing.assert_allclose(P, P64, atol=1e-4 * np.abs(P64).max())
    X = S[:300]
    assert np.abs(runs["c"].act(X) - runs["f64"].act(X)).max() < 1e-3


@needs_cc
def test_nonfinite_state_or_label_changes_nothing():
    c = CController(make_controller("rls", TARGET))
    c.observe(np.full(4, 0.01), 1.0)
    before = [a.copy() for a in c.head_arrays()], c.n_updates
    assert np.isnan(c.act(np.array([np.nan, 0, 0, 0])))
    for s, f in ((np.array([0.0, np.inf, 0, 0]), 1.0), (np.zeros(4), np.nan)):
        with pytest.raises(ValueError, match="finite"):
            c.observe(s, f)
        assert c.observe_status(s, f) == 2
    after = c.head_arrays(), c.n_updates
    assert after[1] == before[1]
    for x, y in zip(after[0], before[0]):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="shape"):
        c.act(np.zeros(3))
    with pytest.raises(ValueError, match="real number"):
        c.observe(np.zeros(4), "a lot")


def test_export_is_byte_identical_and_every_float_round_trips():
    a = export_sources(make_controller("kbt", TARGET))
    b = export_sources(make_controller("kbt", TARGET))
    assert a == b and set(a) == {"kbt.h", "kbt.c"}
    text = a["kbt.c"]
    assert "malloc" not in text and "#include <stdio.h>" not in text
    assert re.findall(r"#include <(\w+)\.h>", text) == ["math"]
    p = export_params(make_controller("kbt", TARGET))
    # the initial mean weights as printed, read back as float32
    block = text[text.index("kbt_init_m["):].split("};")[0]
    values = np.array([float(v.rstrip("f")) for v in re.findall(r"-?[\d.]+(?:e[-+]?\d+)?f", block)], np.float32)
    np.testing.assert_array_equal(values, p.arrays["init_m"].astype(np.float32))
    for v in (1.0, -0.0, 1e-30, 3.4e38, 0.1, 123456.789):
        assert np.float32(float(c_float(v).rstrip("f"))) == np.float32(v)
    with pytest.raises(ValueError, match="finite"):
        c_float(1e39)


def test_pack_lower_round_trips_a_symmetric_matrix():
    A = np.random.default_rng(0).normal(size=(5, 5))
    A = A + A.T
    p = pack_lower(A)
    assert p.shape == (15,) and p[2] == A[1, 1] and p[3] == A[2, 0]
    np.testing.assert_array_equal(unpack_lower(p, 5), A)


def test_export_refuses_what_it_cannot_run():
    with pytest.raises(ValueError, match="kbt or rls"):
        export_params(make_controller("lqr", TARGET))
    deep = make_controller("kbt", TARGET, MethodSettings(head=HeadConfig(n_layers=2)))
    with pytest.raises(ValueError, match="one-layer"):
        export_params(deep)
    resets = make_controller("kbt", TARGET, MethodSettings(head=HeadConfig(change_reset="prior")))
    with pytest.raises(ValueError, match="change_reset='prior' is not exported"):
        export_params(resets)


@needs_cc
def test_a_c_program_with_only_the_header_reproduces_the_float32_path(tmp_path):
    """The README's check: a plain C program (it includes kbt.h and nothing of the
    export else) learns from the stream and acts on held-out states."""
    write_export(make_controller("kbt", TARGET), tmp_path)
    main = tmp_path / "main.c"
    main.write_text("""#include <stdio.h>
#include "kbt.h"
int main(void)
{
    static kbt_state st;
    int n, m, i;
    float s[4], f;
    kbt_init(&st);
    if (scanf("%d %d", &n, &m) != 2) return 1;
    for (i = 0; i < n; ++i) {
        if (scanf("%f %f %f %f %f", &s[0], &s[1], &s[2], &s[3], &f) != 5) return 1;
        printf("%d\\n", kbt_observe_status(&st, s, f));
    }
    printf("%d\\n", kbt_observe(&st, s, 0.0f / 0.0f));   /* a NaN label: refused, 0 */
    for (i = 0; i < m; ++i) {
        if (scanf("%f %f %f %f", &s[0], &s[1], &s[2], &s[3]) != 4) return 1;
        printf("%.9g\\n", kbt_act(&st, s));
    }
    return 0;
}
""")
    exe = tmp_path / "check"
    subprocess.run([c_build.compiler(), *c_build.CFLAGS, "-o", str(exe), str(main), str(tmp_path / "kbt.c"), "-lm"],
                   check=True, capture_output=True)
    S, F = _stream()                                   # the 1000 TARGET samples
    X = sample_states(1000, np.random.default_rng(11))  # 1000 held-out states
    lines = [f"{len(S)} {len(X)}"] + [" ".join("%.9g" % v for v in (*s, f)) for s, f in zip(S, F)]
    lines += [" ".join("%.9g" % v for v in s) for s in X]
    out = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
    values = out.stdout.split()
    statuses = np.array(values[:len(S)], dtype=int)
    assert values[len(S)] == "0"
    forces = np.array(values[len(S) + 1:], dtype=float)
    ref = make_controller("kbt", TARGET, MethodSettings(head=HeadConfig(dtype="float32")))
    want = []
    for s, f in zip(S, F):
        d0, c0 = ref.n_downweighted, ref.n_changes
        ref.observe(s, f)
        want.append(3 if ref.n_changes > c0 else 1 if ref.n_downweighted > d0 else 0)
    np.testing.assert_array_equal(statuses, want)
    assert np.abs(forces - np.array([ref.act(s) for s in X])).max() < FORCE_TOL


@needs_cc
def test_load_state_export_starts_from_the_saved_head(tmp_path):
    S, F = _stream(60)
    py = make_controller("kbt", TARGET)
    for s, f in zip(S, F):
        py.observe(s, f)
    path = tmp_path / "head.npz"
    py.save_state(path)
    c = make_controller("kbt-c", TARGET)
    c.load_state(path)
    assert c.n_updates == 60
    X = sample_states(200, np.random.default_rng(5))
    assert np.abs(c.act(X) - py.act(X)).max() < FORCE_TOL
    # and back: the C head saved, loaded into Python
    c.observe(S[0], F[0])
    c.save_state(tmp_path / "c.npz")
    back = make_controller("kbt", TARGET)
    back.load_state(tmp_path / "c.npz")
    assert back.n_updates == 61
    assert np.abs(back.act(X) - c.act(X)).max() < FORCE_TOL


@needs_cc
def test_methods_kbt_c_and_rls_c_run_in_the_deployed_loop_like_their_python_methods():
    from sim.loops.deploy import DeployConfig, run_deployment

    cfg = DeployConfig(samples=50, episodes=10, seed=0)
    for m in ("rls", "kbt"):
        c = make_controller(f"{m}-c", TARGET)
        assert isinstance(c, CController) and is_learner(f"{m}-c")
        res_c = run_deployment(c, TARGET, cfg)
        res_py = run_deployment(make_controller(m, TARGET), TARGET, cfg)
        assert [r["success_rate"] for r in res_c.rows] == [r["success_rate"] for r in res_py.rows]
        assert res_c.updates == res_py.updates == 50


@needs_cc
def test_cli_export_writes_the_files_and_reports_errors(tmp_path, capsys):
    from sim.cli import main

    out = tmp_path / "fw"
    assert main(["export", "--method", "rls", "--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["CMakeLists.txt", "examples", "library.json", "library.properties", "rls.c",
                                       "rls.h"]                     # the sources and the kit (test_export_kit.py)
    want = export_sources(make_controller("rls", TARGET), source="the rls prior (the SOURCE LQR gain)")
    assert (out / "rls.c").read_text() == want["rls.c"]
    assert "rls.h" in capsys.readouterr().out
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SystemExit) as e:
        main(["export", "--out", str(blocker)])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["export", "--out", str(out), "--load-state", str(tmp_path / "missing.npz")])
    assert e.value.code == 2
    assert "--load-state" in capsys.readouterr().err


@needs_cc
def test_cli_kbt_c_saves_a_head_that_kbt_resumes_and_export_writes(tmp_path, capsys):
    from sim.cli import main

    head = tmp_path / "h.npz"
    common = ["--samples", "10", "--episodes", "3", "--no-progress", "--obs-noise", "2"]
    assert main(["run", "--method", "kbt-c", *common, "--save-state", str(head)]) == 0
    assert main(["run", "--method", "kbt", "--samples", "10", "--episodes", "3", "--no-progress",
                 "--load-state", str(head)]) == 0
    assert "20 samples with the saved run's" in capsys.readouterr().out
    assert main(["export", "--out", str(tmp_path / "fw"), "--load-state", str(head)]) == 0
    text = (tmp_path / "fw" / "kbt.c").read_text()
    assert "#define KBT_INIT_UPDATES 10u" in text and "head h.npz (10 updates)" in text


@needs_cc
def test_host_build_is_cached_and_strict(tmp_path, monkeypatch):
    monkeypatch.setenv("KBT_C_CACHE", str(tmp_path))
    files = export_sources(make_controller("rls", TARGET))
    lib = c_build.build_shared(files)
    assert c_build.build_shared(files) == lib and os.path.exists(lib)
    ctypes.CDLL(lib)
    bad = dict(files, **{"rls.c": files["rls.c"] + "\nstatic int unused;\n"})
    with pytest.raises(RuntimeError, match="did not compile"):
        c_build.build_shared(bad)


def test_cortex_m_says_what_is_missing(monkeypatch):
    monkeypatch.setattr(cortex_m.shutil, "which", lambda name: None)
    assert "qemu-system-arm" in cortex_m.missing() and "apt-get install" in cortex_m.missing()
    with pytest.raises(RuntimeError, match="cannot measure on cortex-m7: arm-none-eabi-gcc"):
        cortex_m.measure({"kbt.h": "", "kbt.c": ""}, np.zeros((1, 4)), np.zeros(1))
    with pytest.raises(ValueError, match="core"):
        cortex_m.measure({}, np.zeros((1, 4)), np.zeros(1), core="cortex-a53")


def test_instruction_classes():
    assert cortex_m.classify("vfma.f32", "s0, s1, s2") == ("fp_mac", 1)
    assert cortex_m.classify("vpush", "{s16-s23}") == ("fp_multi", 9)
    assert cortex_m.classify("pop", "{r4, r5, pc}") == ("load_multi", 5)
    assert cortex_m.classify("bne.n", "1f4 <x>") == ("branch", 1)
    assert cortex_m.classify("vldr", "s0, [r3]") == ("fp_load", 1)
    assert cortex_m.classify("vsqrt.f32", "s0, s0") == ("fp_div_sqrt", 1)
    assert cortex_m.classify("adds", "r0, #1") == ("alu", 1)


def test_kbt_c_without_a_compiler_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler-here")
    with pytest.raises(ValueError, match="method kbt-c: no C compiler"):
        make_controller("kbt-c", TARGET)


@pytest.mark.skipif(bool(cortex_m.missing()), reason=f"Cortex-M measurement: {cortex_m.missing()}")
def test_cortex_m7_build_fits_the_budget_and_computes_the_host_forces():
    S, F = _stream(4)
    files = export_sources(make_controller("kbt", TARGET))
    r = cortex_m.measure(files, S, F, "cortex-m7")
    assert r["flash_bytes"] <= 64 * 1024 and r["data"] == 0 and r["bss"] == 0
    assert r["ram_bytes"] <= 8 * 1024 and r["state_bytes"] == 4 * (21 + 231 + 4) + 20
    assert 10_000 < r["observe"]["instructions_mean"] <= 50_000
    assert r["act"]["instructions_mean"] < r["observe"]["instructions_mean"]
    host = CController(make_controller("kbt", TARGET))
    want = []
    for s, f in zip(S, F):
        want.append(host.act(s))
        host.observe(s, f)
    assert np.abs(np.array(r["forces"]) - want).max() < FORCE_TOL     # FMA on the device: not bit-equal
    assert sum(r["observe"]["mix"].values()) == pytest.approx(r["observe"]["instructions_mean"] + 1, abs=40)
    # the on-policy tick (kbt_tick on a second state): act's forces bit for bit, the input map once
    assert r["tick_forces"] == r["forces"]
    assert r["observe"]["instructions_mean"] < r["tick"]["instructions_mean"] <= 45_000
    assert r["tick"]["instructions_mean"] < r["observe"]["instructions_mean"] + 1_000
