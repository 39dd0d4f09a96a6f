"""tools/closed_loop_prior.py: the prior a parameter vector makes, and the refusals."""

from __future__ import annotations


import numpy as np
import pytest

X = np.random.default_rng(0).normal(size=(40, 4)) * [1.0, 1.0, 2.0, 2.0]


@pytest.fixture(scope="module")
def tools(tools_on_path):
    import closed_loop_prior
    import heldout_probe

    return closed_loop_prior, heldout_probe


def test_the_start_is_the_region_read_out_with_the_start_widths_and_far_weight(tools):
    """theta's start (no mean shift, widths 3, FW 3) is ``kbt@alpaca-region``'s controller with
    P0 x 3 and far weight 3, as heldout_probe builds it: same forces, variances and weighting."""
    cl, hp = tools
    task = hp._task((1.0, 0.2913, 0.7746))
    theta = np.r_[np.zeros(2 * 5), cl.START_LOG]
    c, ref = cl.region_controller(task, cl.prior_of(theta, 5)), hp._controller(task, 3.0, (3.0, 9.0))
    np.testing.assert_allclose(c.act(X), ref.act(X), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(c.predict_split(X)[2], ref.predict_split(X)[2], rtol=1e-9)
    assert (c.far_weight, c.far_surprise) == pytest.approx((ref.far_weight, ref.far_surprise))


@pytest.mark.parametrize("index, moved", [(0, "near"), (5, "far")])
def test_a_regions_mean_moves_only_that_regions_force(tools, index, moved):
    cl, hp = tools
    task = hp._task((1.0, 0.2913, 0.7746))
    theta = np.r_[np.zeros(2 * 5), cl.START_LOG]
    start = cl.region_controller(task, cl.prior_of(theta, 5))
    theta[index] = 1.0
    c = cl.region_controller(task, cl.prior_of(theta, 5))
    near = c.near(X)
    still, shifted = (~near, near) if moved == "near" else (near, ~near)
    np.testing.assert_allclose(c.act(X[still]), start.act(X[still]), rtol=1e-12, atol=1e-12)
    assert np.min(np.abs(c.act(X[shifted]) - start.act(X[shifted]))) > 1e-6


def test_a_saved_prior_loads_back(tools, tmp_path):
    cl, _ = tools
    theta = np.r_[np.linspace(-1, 1, 6), np.log(2.0), np.log(5.0), np.log(0.5)]
    made = cl.prior_of(theta, 3)
    np.savez(tmp_path / "p.npz", theta=theta, k=3, m_near=made[0], m_far=made[1], s_near=made[2],
             s_far=made[3], far_weight=made[4])
    m_n, m_f, s_n, s_f, fw = cl.load(tmp_path / "p.npz")
    assert (s_n, s_f, fw) == pytest.approx((2.0, 5.0, 1.0))      # a far weight below 1 is 1
    np.testing.assert_array_equal(m_n, made[0])
    assert np.max(np.abs(m_n - m_f)) > 0


def test_the_directions_do_not_depend_on_lapacks_signs(tools):
    """P0 = L L', and each column's largest entry is positive: flipping an eigenvector's sign
    (which LAPACKs may do) cannot change what theta means."""
    cl, _ = tools
    m0, P0, L = cl._base()
    np.testing.assert_allclose(L @ L.T, P0, rtol=1e-8, atol=1e-12)
    assert np.all(L[np.argmax(np.abs(L), axis=0), np.arange(L.shape[1])] > 0)


@pytest.mark.parametrize("success, weight, expected", [
    ([0.2, 0.6, 1.0], 1.0, 0.6),                 # never worse: the mean
    ([1.0, 0.0, 1.0], 0.0, 2 / 3),               # no weight: the mean
    ([1.0, 0.0, 1.0], 1.0, 2 / 3 - 1 / 3),       # lost at the middle mark: its fall, over 3 marks
    ([1.0, 0.5, 0.0], 2.0, 0.5 - 2 * 1.5 / 3),   # falls measured from the best earlier mark
])
def test_the_objective_is_the_mean_less_the_falls(tools, success, weight, expected):
    cl, _ = tools
    assert cl.score_of(success, weight) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("argv, message", [(["--marks", "50", "25"], "--marks"), (["--marks", "0"], "--marks"),
                                           (["--marks", "25", "25"], "--marks"),
                                           (["--drop-weight", "-1"], "--drop-weight")])
def test_bad_marks_and_drop_weight_are_one_line_and_exit_2(tools, argv, message, capsys):
    cl, _ = tools
    with pytest.raises(SystemExit) as e:
        cl.main(argv)
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].split(": error: ")[1].startswith(message)


def test_a_search_starts_from_an_earlier_searchs_final_mean(tools, tmp_path, monkeypatch):
    cl, _ = tools
    theta = np.r_[np.linspace(-1, 1, 10), cl.START_LOG]
    np.savez(tmp_path / "p.npz", theta=theta, k=5)
    seen = []
    monkeypatch.setattr(cl, "search", seen.append)
    cl.main(["--start", str(tmp_path / "p.npz")])
    np.testing.assert_array_equal(seen[0].start, theta)


@pytest.mark.parametrize("which", ["missing", "other k"])
def test_a_bad_start_is_one_line_and_exit_2(tools, tmp_path, which, capsys):
    cl, _ = tools
    np.savez(tmp_path / "p.npz", theta=np.zeros(9), k=3)
    path = tmp_path / ("p.npz" if which == "other k" else "none.npz")
    with pytest.raises(SystemExit) as e:
        cl.main(["--start", str(path)])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].split(": error: ")[1].startswith("--start")


@pytest.mark.parametrize("argv", [["--population", "3"], ["--plants", "41"], ["--k", "22"], ["--sigma", "0"]])
def test_bad_options_are_one_line_and_exit_2(tools, argv, capsys):
    cl, _ = tools
    with pytest.raises(SystemExit) as e:
        cl.main(argv)
    assert e.value.code == 2
    assert "--population even >= 2" in capsys.readouterr().err.strip().splitlines()[-1]


class _Counter:
    """A controller that acts with its name and counts the labels it learned."""

    def __init__(self, name):
        self.name, self.labels = name, []

    def act(self, states):
        return self.name

    def observe(self, state, force):
        self.labels.append(force)
        return len(self.labels)


def test_a_hand_off_acts_with_first_until_switch_labels_and_both_learn_each(tools):
    cl, _ = tools
    first, then = _Counter("first"), _Counter("then")
    c = cl.HandOff(first, then, switch=3)
    seen = [c.act(None)]
    for f in range(5):
        c.observe(None, float(f))
        seen.append(c.act(None))
    assert seen == ["first"] * 3 + ["then"] * 3          # 0, 1, 2 labels learned: first; 3, 4, 5: then
    assert first.labels == then.labels == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert c.name == "then" and c.learned == 5


def test_a_hand_off_copies(tools):
    """copy and pickle build a HandOff without __init__: its delegation must not recurse."""
    import copy
    import pickle

    cl, _ = tools
    c = pickle.loads(pickle.dumps(cl.HandOff(_Counter("a"), _Counter("b"), 1)))
    assert c.act(None) == "a" and c.switch == 1
    d = copy.deepcopy(c)
    d.observe(None, 1.0)
    assert (d.act(None), c.act(None)) == ("b", "a")


def test_a_hand_off_search_scores_what_the_probes_then_runs(tools):
    """``--handoff N`` scores a candidate as ``heldout_probe.py --regions 30:9 --then FILE --switch N``
    runs it: the same forces after each label, before and after the switch."""
    from pathlib import Path

    cl, probe = tools
    path = str(Path(__file__).resolve().parents[1] / "results/closed_loop_prior/keep/seed3/prior.npz")
    task = probe._task((1.0, 0.2913, 0.7746))
    ours = cl._learner(task, cl.load(path), handoff=2)
    theirs = probe._controller(task, 1.0, (30.0, 9.0), variant=(None, 0, False, None, None, (path, 2)))
    labels = [(np.array([0.2, -0.5, 2.0, 1.5]), 4.0), (np.array([0.0, 0.3, 0.1, -0.2]), -2.0),
              (np.array([0.1, 0.0, 3.0, 0.5]), 1.0)]
    forces = []
    for s, f in labels:
        ours.observe(s, f), theirs.observe(s, f)
        np.testing.assert_allclose(ours.act(X), theirs.act(X), rtol=1e-12, atol=1e-12)
        forces.append(ours.act(X))
    assert np.max(np.abs(forces[0] - forces[1])) > 1e-3       # the switch changed the acting read-out


@pytest.mark.parametrize("argv", [["--handoff", "0"], ["--handoff", "100"], ["--handoff", "200", "--marks", "50", "200"]])
def test_a_bad_handoff_is_one_line_and_exit_2(tools, argv, capsys):
    cl, _ = tools
    with pytest.raises(SystemExit) as e:
        cl.main(argv)
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].split(": error: ")[1].startswith("--handoff")


@pytest.mark.parametrize("robust", [None, 2.0])
def test_a_files_robust_weight_builds_the_probes_read_outs(tools, tmp_path, robust):
    """A search run with ``--robust C`` stores C, and heldout_probe's ``--prior`` and ``--then``
    read-outs are built with it; a file without it keeps the head's own c = 8."""
    cl, probe = tools
    theta = np.r_[np.zeros(6), cl.START_LOG]
    made = cl.prior_of(theta, 3)
    np.savez(tmp_path / "p.npz", m_near=made[0], m_far=made[1], s_near=made[2], s_far=made[3],
             far_weight=made[4], **({} if robust is None else {"robust": robust}))
    path = str(tmp_path / "p.npz")
    assert cl.robust_of(path) == robust
    task = probe._task((1.0, 0.2, 1.0))
    alone = probe._controller(task, 1.0, None, variant=(None, 0, False, path, None, None))
    then = probe._controller(task, 1.0, (30.0, 9.0), variant=(None, 0, False, None, None, (path, 1))).heads[1]
    assert alone.head.config.robust == then.head.config.robust == (8.0 if robust is None else robust)


def test_a_bad_robust_is_one_line_and_exit_2(tools, capsys):
    cl, _ = tools
    with pytest.raises(SystemExit) as e:
        cl.main(["--robust", "0"])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].split(": error: ")[1].startswith("--robust")
