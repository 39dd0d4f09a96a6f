"""tools/family_bank.py: the bank's weights and refinement against closed form, plant
identification by the experts, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest

PLANTS = np.array([(1.0, 0.1, 0.5), (1.5, 0.3, 0.8), (0.7, 0.2, 1.4)])
FAR = np.array([0.1, -0.3, 2.5, 1.0])


@pytest.fixture(scope="module")
def tool(tools_on_path):
    import family_bank

    return family_bank


@pytest.fixture(scope="module")
def task():
    from sim.world.task import SWINGUP

    return SWINGUP


def _bank(tool, task, tmp_path, seed=0):
    n = tool._readout_inputs(tool._region(task), ())(FAR).shape[1]
    W = np.random.default_rng(seed).normal(size=(len(PLANTS) + 1, n)) * 0.3
    path = tmp_path / "bank.npz"
    np.savez(path, W=W, plants=PLANTS)
    return path, W


def test_fixed_read_outs_are_weighed_by_their_own_errors(tool, task, tmp_path):
    path, W = _bank(tool, task, tmp_path)
    c = tool.BankController(task, path)
    z = c.readout_inputs(FAR)[0]
    y = float(z @ W[2])                              # the label read-out 2 gives exactly
    c.observe(FAR, y)
    np.testing.assert_allclose(c.logw, -0.5 * (y - W @ z) ** 2 / tool.NOISE_VAR, rtol=1e-12)
    assert c.best == 2
    assert c.act(FAR) == pytest.approx(y)


def test_refined_read_outs_are_each_a_kalman_filter(tool, task, tmp_path):
    from controller.region_kbt import region_prior
    from controller.weight_sets import learned_prior

    path, W = _bank(tool, task, tmp_path)
    c = tool.BankController(task, path, refine=3.0)
    m0, P0, _ = learned_prior(c.c, tool.WEIGHTS)
    P = 3.0 * region_prior(m0, P0)[1]
    z = c.readout_inputs(FAR)[0]
    c.observe(FAR, 2.0)
    S = z @ P @ z + tool.NOISE_VAR
    for k in range(len(W)):                          # closed-form Bayesian linear regression, per component
        np.testing.assert_allclose(c.W[k], W[k] + P @ z * (2.0 - z @ W[k]) / S, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(c.P, P - np.outer(P @ z, P @ z) / S, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(c.logw, -0.5 * (2.0 - W @ z) ** 2 / S, rtol=1e-12)


def test_expert_selection_finds_the_plant_whose_expert_gave_the_labels(tool, task, tmp_path):
    from sim.loops.deploy import iid_samples
    from sim.world.experts import expert_for

    path, _ = _bank(tool, task, tmp_path)
    c = tool.BankController(task, path, select="expert")
    assert c.best != 0                                # the prior's mean has no plant
    member = task.on(task.params.with_(m_c=PLANTS[1][0], m_p=PLANTS[1][1], l_p=PLANTS[1][2]))
    S, F = iid_samples(expert_for(member), 1, 0, 30, task=member)
    for s, f in zip(S, F):
        c.observe(s, f)
    assert c.best == 2                                # bank row 2 is plant 1
    assert np.isclose(c.logw[2], 0.0, atol=1e-9)


@pytest.mark.parametrize("argv, words", [
    (["check", "no/such/bank.npz"], "bank: no file"),
    (["build", "--episodes", "0"], "--episodes and --jobs must be >= 1"),
])
def test_bad_arguments_are_one_line_and_exit_2(tool, argv, words, capsys):
    with pytest.raises(SystemExit) as e:
        tool.main(argv)
    assert e.value.code == 2
    assert words in capsys.readouterr().err.strip().splitlines()[-1]
