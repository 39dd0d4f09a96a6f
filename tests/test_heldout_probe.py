"""tools/heldout_probe.py: the mirrored labels, the far region's own prior, and the refusals."""

from __future__ import annotations

import argparse

import numpy as np
import pytest


@pytest.fixture(scope="module")
def tool(tools_on_path):
    import heldout_probe

    return heldout_probe


@pytest.mark.parametrize("cell", [(1.0, 0.2, 1.0), (1.0, 0.2913, 0.3936), (0.6389, 0.2, 1.0)])
def test_the_experts_are_odd_so_a_mirrored_label_is_a_label(tool, cell):
    """The premise of ``--mirror``: the plant's own swing-up expert gives -u at -s, on the states
    its i.i.d. stream labels (1e-9 N: the two are the same formula on negated inputs)."""
    from sim.loops.deploy import iid_samples
    from sim.world.experts import expert_for

    task = tool._task(cell)
    expert = expert_for(task)
    S, F = iid_samples(expert, 1, 0, 200, task=task)
    mirrored = np.array([expert.act(-s) for s in S]).ravel()
    np.testing.assert_allclose(mirrored, -F, rtol=0, atol=1e-9)


def test_mirror_learns_the_label_and_its_mirror_image(tool):
    task = tool._task((1.0, 0.2913, 0.7746))
    c = tool._controller(task, 1.0, None, variant=(None, 0, True, None, None, None))
    ref = tool._controller(task, 1.0, None)
    s = np.array([0.2, -0.5, 2.0, 1.5])
    c.observe(s, 4.0)
    ref.observe(s, 4.0), ref.observe(-s, -4.0)
    X = np.random.default_rng(0).normal(size=(20, 4)) * [1.0, 1.0, 2.0, 2.0]
    np.testing.assert_allclose(c.act(X), ref.act(X), rtol=1e-12, atol=1e-12)
    # and not the label twice: the mirror's sign matters
    twice = tool._controller(task, 1.0, None)
    twice.observe(s, 4.0), twice.observe(s, 4.0)
    assert np.max(np.abs(c.act(X) - twice.act(X))) > 1e-3


def test_far_rank_narrows_only_the_far_region(tool):
    task = tool._task((1.0, 0.2913, 0.7746))
    full = tool._controller(task, 10.0, (1.0, 0.0))
    cut = tool._controller(task, 10.0, (1.0, 0.0), variant=(None, 2, False, None, None, None))
    near = np.array([[0.1, 0.0, 0.2, 0.1]])
    far = np.array([[0.1, 0.0, 2.5, 0.1]])
    np.testing.assert_allclose(cut.predict_split(near)[2], full.predict_split(near)[2], rtol=1e-9)
    assert cut.predict_split(far)[2][0] < full.predict_split(far)[2][0]


@pytest.mark.parametrize("argv, words", [
    (["scale", "--near-scale", "3"], "need --regions"),
    (["scale", "--regions", "1:0", "--far-rank", "-1"], "--far-rank >= 0"),
    (["target", "--regions", "1:0", "--near-scale", "0"], "--near-scale must be > 0"),
    (["scale", "--prior", "no/such/file.npz"], "--prior: no file"),
    (["scale", "--prior", __file__, "--regions", "1:0"], "drop --regions"),
    (["scale", "--bank", __file__], "--scales other than 1"),
    (["target", "--bank", __file__, "--scales", "1", "--bank-select", "expert", "--bank-refine", "1"],
     "0 with --bank-select expert"),
    (["scale", "--regions", "30:9", "--then", "no/such/file.npz"], "--then: no file"),
    (["scale", "--then", __file__, "--switch", "0"], "--switch >= 1"),
    (["target", "--bank", __file__, "--scales", "1", "--then", __file__], "not with --bank"),
    (["target", "--regions", "30"], "two to six numbers"),
    (["target", "--regions", "30:9:2:2:1000:1:1"], "two to six numbers"),
    (["target", "--regions", "30:9:x"], "two to six numbers"),
    (["target", "--regions", "30:9:2:2:1000:0.5"], "A 0 or 1"),
    (["target", "--regions", "30:9:0"], "C > 0"),
    (["target", "--regions", "30:9:2:1.5"], "K a whole number >= 1"),
    (["target", "--regions", "30:9:2:0"], "K a whole number >= 1"),
    (["target", "--regions", "30:9:2:2:0.5"], "RW >= 1"),
])
def test_bad_options_are_one_line_and_exit_2(tool, argv, words, capsys):
    with pytest.raises(SystemExit) as e:
        tool.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert words in err


def test_regions_sets_the_robust_weight_the_run_and_the_rest_weight(tool):
    ap = argparse.ArgumentParser()
    assert tool._region_settings(ap, "30:9") == (30.0, 9.0, None, 1, 1.0, False)
    assert tool._region_settings(ap, "30:9:2") == (30.0, 9.0, 2.0, 1, 1.0, False)
    settings = tool._region_settings(ap, "30:9:1:2:1000")
    assert tool._regions_text(settings) == "30:9:1:2:1000"
    assert tool._regions_text((30.0, 9.0, None, 1, 1.0, False)) == "30:9"
    assert tool._regions_text(tool._region_settings(ap, "30:9:2:1:1000:1")) == "30:9:2:1:1000:1"
    c = tool._controller(tool._task((1.0, 0.2913, 0.7746)), 1.0, settings)
    assert (c.head.config.robust, c.far_run, c.rest_weight, c.far_weight, c.far_surprise) == (1.0, 2, 1000.0, 30.0, 9.0)
    assert not c.rest_against
    against = tool._region_settings(ap, "30:9:2:1:1000:1")
    assert tool._controller(tool._task((1.0, 0.2913, 0.7746)), 1.0, against).rest_against
    plain = tool._controller(tool._task((1.0, 0.2913, 0.7746)), 1.0, (30.0, 9.0))
    assert (plain.head.config.robust, plain.far_run, plain.rest_weight, plain.rest_against) == (8.0, 1, 1.0, False)


def test_then_hands_off_after_switch_labels_and_both_learn_every_label(tool):
    """``--then F --switch 2``: the learner acts for the first label, the closed-loop prior's
    read-out from the second on, and it has learned the first label too."""
    from pathlib import Path

    from closed_loop_prior import load, region_controller

    prior = str(Path(__file__).resolve().parents[1] / "results/closed_loop_prior/keep/seed3/prior.npz")
    task = tool._task((1.0, 0.2913, 0.7746))
    c = tool._controller(task, 1.0, (30.0, 9.0), variant=(None, 0, False, None, None, (prior, 2)))
    first, then = tool._controller(task, 1.0, (30.0, 9.0)), region_controller(task, load(prior))
    X = np.random.default_rng(1).normal(size=(20, 4)) * [1.0, 1.0, 2.0, 2.0]
    labels = [(np.array([0.2, -0.5, 2.0, 1.5]), 4.0), (np.array([0.0, 0.3, 0.1, -0.2]), -2.0)]
    for k, (s, f) in enumerate(labels):
        c.observe(s, f), first.observe(s, f), then.observe(s, f)
        acting = first if k == 0 else then
        np.testing.assert_allclose(c.act(X), acting.act(X), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(c.predict_split(X)[2], acting.predict_split(X)[2], rtol=1e-12)
    assert np.max(np.abs(first.act(X) - then.act(X))) > 1e-3
