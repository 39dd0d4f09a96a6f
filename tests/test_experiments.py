"""Methods by name, learning trials and the experiment runners (tiny sizes)."""

import json

import numpy as np
import pytest

from controller.lqr import LQRController
from sim.experiments import offline as ex
from sim.experiments import report
from sim.world.cartpole import TARGET
from sim.world.data import sample_dataset
from sim.loops.methods import MethodSettings, make_controller, parse_method
from sim.loops.stream import checkpoints_every, learning_trial


def test_parse_method():
    assert parse_method("retrain-25") == ("retrain", 25)
    assert parse_method("kbt") == ("kbt", None)
    assert parse_method("blob-100") == ("blob", 100)
    for bad in ("retrain", "retrain-0", "retrain-x", "kbt-3", "sgd", "blob", "blob-0"):
        with pytest.raises(ValueError, match="method"):
            parse_method(bad)


def test_make_controller_kinds():
    assert make_controller("retrain-7", TARGET, MethodSettings(epochs=1)).capacity == 7
    assert make_controller("pretrained", TARGET).name == "pretrained"
    assert make_controller("kbt", TARGET).name == "kbt"
    b = make_controller("blob-5", TARGET, MethodSettings(blob_rank=2, blob_samples=3))
    assert b.name == "blob-5" and b.rank == 2 and b.n_samples == 3


def test_checkpoints_every():
    assert checkpoints_every(20, 50) == [0, 20, 40, 50]
    with pytest.raises(ValueError, match="step"):
        checkpoints_every(0, 10)


def test_learning_trial_counts_and_rejections():
    S, F = sample_dataset(LQRController(TARGET), 6, seed=1)
    F[2] = np.nan                                       # a bad label is rejected, not fatal
    c = make_controller("kbt", TARGET)
    before = c.head.copy()
    res = learning_trial(c, TARGET, S, F, [0, 3, 6], episodes=2, heldout=(S, np.nan_to_num(F)))
    assert [cp.samples for cp in res.checkpoints] == [0, 3, 6]
    assert res.rejected == 1 and c.n_updates == 5
    assert res.learn_seconds.shape == (6,) and np.all(res.learn_seconds > 0)
    assert set(res.checkpoints[-1].metrics) >= {"rmse", "gnll", "crps", "coverage50", "coverage90", "pred_var"}
    soft = make_controller("kbt-softmax", TARGET)
    res = learning_trial(soft, TARGET, S, np.nan_to_num(F), [3], episodes=2, heldout=(S, np.nan_to_num(F)),
                         tokenizer=soft.tokenizer)
    assert set(res.checkpoints[-1].metrics) >= {"rmse", "gnll", "nll", "ece", "accuracy", "coverage90"}
    assert not np.array_equal(before.kernel_arrays()[0], c.head.kernel_arrays()[0])


def test_learning_experiment_is_independent_of_jobs(tmp_path):
    spec = ex.LearningSpec(methods=("kbt", "retrain-3"), trials=2, samples=6, every=3, episodes=3,
                           settings=MethodSettings(epochs=2))
    a = ex.run_learning(spec, jobs=1, progress=False)
    b = ex.run_learning(spec, jobs=2, progress=False)
    for m in spec.methods:
        for key in ("success_rate", "rmse", "gnll", "nll"):
            np.testing.assert_array_equal(a["methods"][m][key], b["methods"][m][key], err_msg=f"{m} {key}")
    table = report.write_learning(a, str(tmp_path))
    for name in ("results.json", "results.csv", "fig3_success.png", "fig3_heldout.png", "fig4_time.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert json.loads((tmp_path / "results.json").read_text())["checkpoints"] == [0, 3, 6]
    rows = (tmp_path / "results.csv").read_text().splitlines()
    assert rows[0] == "experiment,method,trial,samples,metric,value"
    # 2 methods x 2 trials x (7 metrics x 3 checkpoints + 6 update times) + 2 references
    assert len(rows) - 1 == 2 * 2 * (len(ex.SERIES) * 3 + 6) + 2   # metrics x checkpoints + learn_seconds, + references
    assert set(table) == {"kbt", "retrain-3"}


def test_learning_spec_rejects_references():
    with pytest.raises(ValueError, match="methods"):
        ex.run_learning(ex.LearningSpec(methods=("lqr",)), progress=False)


def test_variance_experiment(tmp_path):
    spec = ex.VarianceSpec(sigma_data=(0.0, 20.0), samples=30, window=10, record_every=5)
    res = ex.run_variance(spec, progress=False)
    r0 = res["runs"]["0"]
    assert r0["samples"] == [0, 5, 10, 15, 20, 25, 30]
    assert np.allclose(np.array(r0["aleatoric"]) + r0["epistemic"], r0["pred_var"])
    # before any sample both runs start from the same prior
    assert res["runs"]["0"]["pred_var"][0] == res["runs"]["20"]["pred_var"][0]
    settled = report.write_variance(res, str(tmp_path))
    assert set(settled) == {"0", "20"} and (tmp_path / "fig5_variance.png").exists()
    with pytest.raises(ValueError, match="sigma_data"):
        ex.run_variance(ex.VarianceSpec(sigma_data=(-1.0,)), progress=False)


def test_moving_average():
    assert np.allclose(ex.moving_average([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])


def test_calibration_experiment_pools_trials(tmp_path):
    spec = ex.calibration_spec(methods=("kbt", "kbt-softmax", "retrain-3"), trials=2, samples=50, every=50,
                               episodes=2, settings=MethodSettings(epochs=1))
    res = ex.run_calibration(spec, progress=False)
    assert [r["method"] for r in res["rows"]] == ["pretrained", "kbt", "kbt-softmax", "retrain-3"]
    assert res["checkpoints"] == [50]
    rel = res["reliability"]["kbt-softmax"]["50"]
    assert sum(rel["count"]) == 2 * ex.HELDOUT          # both trials' held-out predictions pooled
    assert all(0 <= c <= n for c, n in zip(rel["correct"], rel["count"]))
    assert res["reliability"]["kbt"] == {}             # the force head has no bins
    q = np.asarray(res["quantiles"]["kbt"]["50"])
    assert q.shape == (len(res["quantile_levels"]),) and np.all(np.diff(q) >= 0) and 0 <= q.min() <= q.max() <= 1
    for r in res["rows"]:
        assert 0 <= r["coverage50"] <= r["coverage90"] <= 1 and r["crps"] > 0 and np.isfinite(r["gnll"])
        if r["method"] != "kbt":
            assert 0 <= r["accuracy"] <= 1 and 0 <= r["ece"] <= 1 and r["nll"] > 0
    report.write_calibration(res, str(tmp_path))
    for name in ("reliability.png", "quantiles.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "calibration.csv").read_text().count("\n") == 5
    # results without reliability data (an older run) are refused with a clear message
    old = {"seed": 0, "checkpoints": [0, 50], "methods": {"kbt": {"success_rate": [[0, 1]]}}}
    with pytest.raises(ValueError, match="reliability"):
        ex.run_calibration(spec, learning=old)


@pytest.mark.slow
def test_quick_experiments_from_the_command_line(tmp_path, capsys):
    """What CI can afford: the --quick sizes write their files, KBT learns
    faster per sample than retraining, and the variance runs are finite."""
    from sim.cli import main

    out = tmp_path / "fig3"
    assert main(["experiment", "fig3", "--quick", "--out", str(out), "--no-progress", "--jobs", "2"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert set(res["methods"]) == {"kbt", "kbt-softmax", "rls", "retrain-10", "retrain-100", "blob-10"}
    table = report.summarise_learning(res)
    for m in ("retrain-10", "retrain-100", "blob-10"):
        assert table["kbt"]["ms_per_sample"] < table[m]["ms_per_sample"], m
    assert res["checkpoints"] == [0, 20, 40]
    for name in ("fig3_success.png", "fig3_heldout.png", "fig4_time.png", "results.csv"):
        assert (out / name).stat().st_size > 0
    out5 = tmp_path / "fig5"
    assert main(["experiment", "fig5", "--quick", "--out", str(out5), "--no-progress", "--jobs", "2"]) == 0
    res5 = json.loads((out5 / "results.json").read_text())
    for r in res5["runs"].values():
        assert np.all(np.isfinite(r["pred_var"])) and min(r["pred_var"]) >= 0
        assert r["samples"] == sorted(r["samples"])
    assert (out5 / "fig5_variance.png").stat().st_size > 0
    # the quick run has no checkpoint at 50/100/400: calibration --from explains instead of crashing
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["experiment", "calibration", "--from", str(out), "--out", str(tmp_path / "cal"), "--no-progress"])
    assert e.value.code == 2 and "none of the checkpoints" in capsys.readouterr().err


def test_figure5_smoothing_has_no_step_at_a_window_length():
    """The prior (217 N^2) and then a settled variance: a fixed trailing window of 100 steps down
    at sample 101, the plotted mean over the last 10 % leaves the prior behind at once."""
    from sim.experiments.report import proportional_average

    x = np.r_[217.0, np.full(999, 10.0)]
    fixed = ex.moving_average(x, 100)
    assert fixed[99] > 11.0 and fixed[100] == 10.0           # the step the old plot had
    smooth = proportional_average(x)
    assert smooth[0] == 217.0 and np.all(smooth[1:] == 10.0)
    assert np.allclose(proportional_average(np.arange(1.0, 101.0))[[9, 99]], [10.0, 95.5])


# ------------------------------------------------------------------ figures a person can read
def _calibration_results(with_bins):
    levels = [0.1, 0.5, 0.9]
    bins = {"count": [3, 0, 2], "conf_sum": [1.2, 0, 1.6], "correct": [1, 0, 2]}
    rel = {"pretrained": {"0": bins}, "kbt": {}, "rls": {}}
    if with_bins:
        rel["kbt-softmax"] = {"50": bins}
    return {"experiment": "calibration", "rows": [], "checkpoints": [50], "quantile_levels": levels,
            "quantiles": {"pretrained": {"0": [0.2, 0.5, 0.8]}, "kbt": {"50": [0.0, 0.5, 1.0]},
                          "rls": {"50": [0.0, 0.5, 1.0]}}, "reliability": rel, "sigma_data": 0.0}


def test_no_reliability_figure_for_methods_without_force_bins(tmp_path):
    """kbt and rls have no force bins: with only the pre-trained reference to draw there is no
    reliability.png (and one left by an earlier run in the folder is removed)."""
    (tmp_path / "reliability.png").write_bytes(b"old")
    report.write_calibration(_calibration_results(False), str(tmp_path))
    assert (tmp_path / "quantiles.png").stat().st_size > 0 and not (tmp_path / "reliability.png").exists()
    report.write_calibration(_calibration_results(True), str(tmp_path))
    assert (tmp_path / "reliability.png").stat().st_size > 0


def test_coinciding_lines_each_keep_visible_markers():
    """Lines that lie on top of each other (success 1.00 for several methods) still show every
    method: each line's markers sit at points no other line marks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    from sim.experiments import plotting as P

    for x in (np.arange(22) * 20.0, np.array([0, 10, 25, 50, 100, 200, 400, 410, 425, 450, 500, 600, 800.0])):
        fig, ax = pyplot.subplots()
        series = [(m, x, np.ones_like(x), P.style(m, i)) for i, m in enumerate(("kbt", "rls", "retrain-10", "blob-10"))]
        handles = P.lines(ax, series)
        marks = [tuple(line.get_xdata()) for line in ax.lines if line.get_linestyle() == "None"]
        pyplot.close(fig)
        assert len(handles) == 4 and len(marks) == 4 and all(marks)
        assert all(not set(a) & set(b) for i, a in enumerate(marks) for b in marks[i + 1:])     # no shared point
    fig, ax = pyplot.subplots()                         # fewer points than lines: nested marker sizes
    P.lines(ax, [(str(i), [0, 1], [0, 0], P.style(str(i), i)) for i in range(5)])
    sizes = [line.get_markersize() for line in ax.lines if line.get_linestyle() == "None"]
    pyplot.close(fig)
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 5


@pytest.mark.parametrize("folder", ["fig3_head", "fig5", "calibration_noise10", "onpolicy_large", "swingup_memory",
                                    "drift"])
def test_replot_redraws_every_kind_of_shipped_results(folder, tmp_path):
    """tools/replot.py redraws each experiment's pictures from its results.json."""
    import importlib.util
    import shutil

    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("replot", root / "tools" / "replot.py")
    replot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(replot)
    shutil.copyfile(root / "results" / folder / "results.json", tmp_path / "results.json")
    replot.replot(str(tmp_path))
    kind = __import__("json").loads((tmp_path / "results.json").read_text())["experiment"]
    drawn = sorted(p.name for p in tmp_path.glob("*.png"))
    assert drawn and set(drawn) <= set(replot.PICTURES[kind])
    assert all((tmp_path / n).stat().st_size > 10_000 for n in drawn)
