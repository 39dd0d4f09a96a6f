"""``kbt experiment adapt``: its settings, a tiny run's files, the non-monotone count
and the held-out metrics against a direct computation."""

import csv
import json

import numpy as np
import pytest

from sim.cli import main
from sim.experiments.adapt import (DEFAULT_VARIANTS, LABELS_AT, VARIANTS, AdaptSpec, heldout_metrics, heldout_set, make_variant,
                                   non_monotone, run_adapt)
from sim.experiments.report_adapt import CSV_HEADER, format_adapt, summarise_adapt


# ------------------------------------------------------------------ settings
def test_spec_defaults_are_the_issue_sizes():
    s = AdaptSpec()
    assert s.labels_at == LABELS_AT == (0, 1, 2, 3, 5, 10, 20, 50, 100, 200)
    assert (s.trials, s.episodes) == (20, 100) and s.variants == DEFAULT_VARIANTS
    assert set(VARIANTS) == set(DEFAULT_VARIANTS) | {"kbt@alpaca", "kbt@alpaca-region"}     # asked for by name only
    assert set(s.tasks) == {"balance", "swingup"} and set(s.streams) == {"iid", "onpolicy"}
    q = AdaptSpec.quick()
    assert q.trials == 1 and q.marks()[0] == 0


@pytest.mark.parametrize("kw, message", [
    (dict(variants=("kbt", "lqr")), "variants: expected among"),
    (dict(variants=()), "variants: expected at least one"),
    (dict(tasks=("walk",)), "tasks: expected among"),
    (dict(streams=("offline",)), "streams: expected among"),
    (dict(labels_at=(0, 5, 3)), "labels_at: expected increasing"),
    (dict(labels_at=(0,)), "labels_at: expected a label count >= 1"),
    (dict(labels_at=(-1, 2)), "labels_at: expected an integer"),
    (dict(trials=0), "trials: expected an integer"),
    (dict(episodes=0), "episodes: expected an integer"),
    (dict(heldout=0), "heldout: expected an integer"),
    (dict(weights="w.npz"), "kbt@family uses the family file made for the shipped weights"),
    (dict(variants=("kbt@alpaca",), tasks=("balance",)), "variants: kbt@alpaca runs on the swingup task only"),
    (dict(variants=("kbt@alpaca",), tasks=("swingup",), weights="w.npz"), "kbt@alpaca runs on its own weights"),
])
def test_spec_validation(kw, message):
    with pytest.raises(ValueError, match=message):
        AdaptSpec(**kw)


@pytest.mark.parametrize("argv, message", [
    (["--labels-at", "0", "5", "3"], "--labels-at: expected increasing label counts in 0..1000000"),
    (["--labels-at", "-1", "3"], "--labels-at: expected an integer in [0, 1000000] but found -1"),
    (["--labels-at", "0"], "--labels-at: expected increasing label counts"),
    (["--heldout", "0"], "--heldout: expected an integer in [1, 100000] but found 0"),
    (["--trials", "0"], "--trials: expected an integer in [1, 1000] but found 0"),
    (["--episodes", "0"], "--episodes: expected an integer in [1, 100000] but found 0"),
    (["--methods", "kbt", "retrain-10"], "--methods: adapt expected variants among kbt, kbt@family, rls, "
                                         "rls@family, kbt-softmax, kbt@alpaca, kbt@alpaca-region but found 'retrain-10'"),
    (["--samples", "10"], "--samples: does not apply to experiment adapt"),
    (["--every", "10"], "--every: does not apply to experiment adapt"),
    (["--weights", "w.npz"], "--weights: give --task too"),
    (["--weights", "nowhere.npz", "--task", "balance"],
     "--weights: expected a weights file or one of swingup-alpaca but found 'nowhere.npz' (no such file)"),
    (["--probe", "-1"], "--probe: expected a number in [0, 100]"),
])
def test_bad_flags_are_one_line_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(["experiment", "adapt", "--no-progress", *argv])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert message in err


def test_adapt_flags_do_not_apply_elsewhere(capsys):
    for flag in (["--labels-at", "1"], ["--heldout", "5"], ["--stream", "iid"]):
        with pytest.raises(SystemExit) as e:
            main(["experiment", "onpolicy", "--no-progress", *flag])
        assert e.value.code == 2 and "does not apply to experiment onpolicy" in capsys.readouterr().err


# ------------------------------------------------------------------ the non-monotone rule
def test_non_monotone_rule():
    assert not non_monotone([0.0, 0.5, 0.96, 0.9, 0.92])          # 0.9 is not below 0.9
    assert non_monotone([0.0, 0.95, 1.0, 0.89])                    # reached 0.95, then below 0.9
    assert not non_monotone([0.94, 0.2, 0.94])                     # never reached 0.95
    assert not non_monotone([1.0])
    assert non_monotone([0.3, 0.97, 0.0, 1.0])                     # recovering later does not undo it


def test_summary_counts_non_monotone_trials_and_names_the_worst():
    succ = [[0.0, 0.96, 0.5, 1.0], [0.0, 0.2, 0.9, 1.0], [0.1, 1.0, 1.0, 0.8]]
    cell = {"trial": [3, 4, 5], "success": succ, "rmse": [[1.0, 0.5, 0.4, 0.1]] * 3, "nll": [[2.0] * 4] * 3,
            "falls": [[0] * 4] * 3, "non_monotone": [non_monotone(s) for s in succ]}
    results = {"variants": ["kbt"], "checkpoints": [0, 1, 5, 10], "trials": 3,
               "runs": {"balance": {"iid": {"kbt": cell}}}}
    s = summarise_adapt(results)["balance"]["iid"]["kbt"]
    assert s["non_monotone"] == 2 and s["non_monotone_trials"] == [3, 5]
    assert s["success_worst"] == [0.0, 0.2, 0.5, 0.8] and s["worst_trial"] == [3, 4, 3, 5]
    assert np.allclose(s["success_mean"], np.mean(succ, axis=0))
    table = format_adapt(results, summarise_adapt(results))
    assert "2/3" in table and "0.72/0.20" in table


# ------------------------------------------------------------------ held-out metrics
def test_heldout_rmse_and_nll_against_a_direct_computation():
    S, F = heldout_set("balance", 7, 50)
    assert S.shape == (50, 4) and F.shape == (50,)
    S2, F2 = heldout_set("balance", 7, 50)
    assert np.array_equal(S, S2) and np.array_equal(F, F2)        # fixed per trial seed
    c = make_variant("rls", "balance")
    rng = np.random.default_rng(0)
    for s in S[:5] + 0.01 * rng.standard_normal((5, 4)):
        c.observe(s, float(F[0]) + 1.0)
    m = heldout_metrics(c, S, F)
    mean, ale, epi = c.predict_split(S)
    var = ale + epi
    rmse = np.sqrt(np.mean((mean - F) ** 2))
    nll = np.mean(0.5 * np.log(2 * np.pi * var) + (F - mean) ** 2 / (2 * var))
    assert m["rmse"] == pytest.approx(rmse, rel=1e-12) and m["nll"] == pytest.approx(nll, rel=1e-12)


def test_family_variants_have_the_family_mean():
    from sim.loops.family_prior import family_path, load_family, prior_mean

    plain, fam = make_variant("kbt", "balance"), make_variant("kbt@family", "balance")
    W = load_family(family_path("balance"), fam.fingerprint())
    assert np.allclose(fam.prior_mean, prior_mean(W)) and not np.allclose(plain.prior_mean, fam.prior_mean)
    # on balance the family lives in the state weights: kbt@family and rls@family predict alike
    S, _ = heldout_set("balance", 1, 30)
    assert np.allclose(make_variant("rls@family", "balance").act(S), fam.act(S), atol=1e-6)


# ------------------------------------------------------------------ a tiny run
def test_tiny_run_writes_json_csv_png_and_resumes(tmp_path, capsys):
    out = tmp_path / "adapt"
    argv = ["experiment", "adapt", "--quick", "--task", "balance", "--methods", "kbt", "rls", "--labels-at", "0",
            "2", "--episodes", "2", "--heldout", "20", "--jobs", "1", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "balance, iid" in printed and "balance, onpolicy" in printed and "non-mono" in printed
    data = json.loads((out / "results.json").read_text())
    assert data["experiment"] == "adapt" and data["checkpoints"] == [0, 2] and data["heldout"] == 20
    for stream in ("iid", "onpolicy"):
        for v in ("kbt", "rls"):
            cell = data["runs"]["balance"][stream][v]
            assert set(cell) >= {"trial", "success", "rmse", "nll", "non_monotone"}
            assert len(cell["success"]) == 1 and len(cell["success"][0]) == 2
            summ = data["summary"]["balance"][stream][v]
            assert set(summ) >= {"success_mean", "success_worst", "worst_trial", "rmse_mean", "nll_mean",
                                 "non_monotone"}
    rows = list(csv.reader(open(out / "results.csv")))
    assert tuple(rows[0]) == CSV_HEADER and len(rows) == 1 + 2 * 2 * 1 * 2
    assert (out / "adapt.png").stat().st_size > 10_000
    # --resume runs nothing again and gives the same numbers
    assert main(argv + ["--resume"]) == 0
    assert "4 trials resumed" in capsys.readouterr().err
    assert json.loads((out / "results.json").read_text())["runs"] == data["runs"]


def test_set_variant_runs_on_its_task_only():
    spec = AdaptSpec(variants=("kbt", "kbt@alpaca"), trials=2)
    jobs = spec.jobs()
    assert {(t, v) for t, _, v, _ in jobs} == {("swingup", "kbt"), ("swingup", "kbt@alpaca"), ("balance", "kbt")}
    assert len(jobs) == 3 * 2 * 2


def test_run_adapt_is_deterministic():
    spec = AdaptSpec(variants=("rls@family",), tasks=("balance",), streams=("onpolicy",), labels_at=(0, 3),
                     trials=1, episodes=2, heldout=10)
    a, b = run_adapt(spec, progress=False), run_adapt(spec, progress=False)
    assert a["runs"] == b["runs"]
    assert a["runs"]["balance"]["onpolicy"]["rls@family"]["success"][0][-1] == 1.0


def test_help_names_every_variant():
    from sim.cli.parser import subparser
    from sim.cli import build_parser

    text = "".join(subparser(build_parser(), "experiment").format_help().split())     # argparse wraps at "-"
    for v in VARIANTS:
        assert f"{v}(" in text


def test_rls_family_prior_is_the_measured_balance_family():
    """rls@family on balance: the prior tools/balance_family.py measured (family_readouts through
    rls's inputs, 60 plants, seed 0), here rebuilt from the shipped file's plants."""
    from sim.experiments.adapt import rls_family_prior
    from sim.loops.family_prior import prior_covariance
    from sim.loops.methods import MethodSettings, make_controller
    from sim.pretraining.family import family_readouts
    from sim.world.cartpole import TARGET
    from sim.world.task import as_task

    W, _ = family_readouts(make_controller("rls", TARGET, MethodSettings(family=False)), as_task(TARGET), n=60, seed=0)
    mean, P0 = rls_family_prior("balance")
    assert np.allclose(mean, W.mean(axis=0), rtol=1e-12, atol=1e-12)
    assert np.allclose(P0, prior_covariance(W), rtol=1e-12, atol=1e-12)


def test_the_region_variant_counts_a_label_beyond_2_sigma_less():
    """``kbt@alpaca-region``'s robust weight c = 2: a near-upright label at x = e^2 / S = 9 moves the
    mean as a Kalman update with innovation variance S + e^2 / 4 (the tools' region read-out keeps
    the head's c = 8)."""
    from sim.experiments.adapt import _task, make_variant
    from sim.loops.methods import make_region_kbt

    c = make_variant("kbt@alpaca-region", "swingup")
    assert c.head.config.robust == 2.0
    assert make_region_kbt(_task("swingup"), "swingup-alpaca").head.config.robust == 8.0
    s = np.array([0.1, 0.0, 0.05, 0.1])
    assert c.near(s[None, :])[0]
    m, P = c.head.kernel_arrays()[0].copy(), c.head.kernel_arrays()[1].copy()
    z = np.r_[c.inputs(s[None, :])[0], 1.0]
    S = z @ P @ z + c.head.noise_var
    e = 3.0 * np.sqrt(S)
    c.observe(s, float(z @ m) + e)
    np.testing.assert_allclose(c.head.kernel_arrays()[0], m + P @ z * e / (S + e ** 2 / 4.0), rtol=1e-8, atol=1e-10)
