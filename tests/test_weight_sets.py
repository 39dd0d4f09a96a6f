"""Named weight sets (``controller.weight_sets``): the shipped swing-up ALPaCA set loads by
name, a KBT controller on it starts from its learned prior (as ``kbt_prior`` carries it) with
the head noise fixed at the set's R, ``kbt experiment adapt``'s ``kbt@alpaca`` is that
controller, and a bad name is refused with one line and exit 2."""

import hashlib
import pathlib

import numpy as np
import pytest

from controller.kalman_head import HeadConfig
from controller.kbt import KBTController
from controller.model import load_pretrained
from controller.weight_sets import (WEIGHT_SETS, check_weights, kbt_prior, learned_prior, read_prior, weight_set,
                                    weights_path)
from sim.cli import main
from sim.loops.methods import MethodSettings, make_controller
from sim.world.task import SWINGUP, SWINGUP_TARGET

ROOT = pathlib.Path(__file__).resolve().parents[1]
NAME = "swingup-alpaca"
TASK = SWINGUP.on(SWINGUP_TARGET)


def _states(n, seed=0):
    """Swing-up states: hanging, swinging and near upright."""
    rng = np.random.default_rng(seed)
    return np.c_[rng.uniform(-1, 1, n), rng.uniform(-2, 2, n), rng.uniform(-np.pi, np.pi, n), rng.uniform(-6, 6, n)]


def test_the_set_loads_by_name_and_is_the_measured_run():
    ws = weight_set(NAME)
    assert ws.task == "swingup" and ws.head_noise == 3.0 and weights_path(NAME) == ws.path
    policy = load_pretrained(NAME)
    assert policy.meta["task"] == "swingup"
    assert policy.meta["alpaca"]["recipe"]["steps"] == 15000 and policy.meta["alpaca"]["family_seed"] == 1
    # the shipped files are the measured run 2 (docs/family-pretraining.md), byte for byte
    for shipped, measured in ((ws.path, "alpaca_long.npz"), (ws.prior_path, "alpaca_long.npz.prior.npz")):
        ref = ROOT / "results" / "alpaca" / measured
        if ref.exists():
            assert hashlib.sha256(pathlib.Path(shipped).read_bytes()).digest() == \
                hashlib.sha256(ref.read_bytes()).digest()
    assert weights_path("some/file.npz") == "some/file.npz" and weight_set("some/file.npz") is None


def test_kbt_on_the_set_starts_from_the_learned_prior_with_the_fixed_noise():
    """Installed prior = ``kbt_prior``'s output: the same predictive mean and epistemic variance
    at swing-up states as the learned prior in its training coordinates (rtol 1e-8 and 1e-7)."""
    from sim.pretraining.alpaca import alpaca_inputs

    c = make_controller("kbt", TASK, MethodSettings(weights=NAME))
    assert c.head_config.noise == "known" and c.head_config.obs_noise == 3.0
    prior, std = read_prior(weight_set(NAME).prior_path)
    m, P, R_learned = kbt_prior(c, prior, std)
    assert R_learned == pytest.approx(0.1799, abs=1e-4)           # the family's noise, not the head's
    np.testing.assert_array_equal(c.prior_mean, m)
    S = _states(40)
    mean, ale, epi = c.predict_split(S)
    Zt = alpaca_inputs(c.policy.features(S), S, std)
    n = Zt.shape[1]
    P0 = prior["alpaca.L"] @ prior["alpaca.L"].T + 1e-4 * np.eye(n)
    np.testing.assert_allclose(mean, Zt @ prior["alpaca.m0"], rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(epi, np.einsum("qi,ij,qj->q", Zt, P0, Zt), rtol=1e-7)
    np.testing.assert_allclose(ale, 3.0)
    # and the same in the head's own inputs, through the covariance it was given
    Zk = np.c_[c.inputs(S), np.ones(len(S))]
    np.testing.assert_allclose(epi, np.einsum("qi,ij,qj->q", Zk, P, Zk), rtol=1e-7)


def test_settings_that_leave_the_set_prior_or_its_noise():
    v_i = make_controller("kbt", TASK, MethodSettings(weights=NAME, family=False))
    plain = KBTController(load_pretrained(NAME))
    np.testing.assert_allclose(v_i.prior_mean, plain.prior_mean)          # pre-trained read-out, v I
    assert v_i.head_config.noise == "learned"
    learned = make_controller("kbt", TASK, MethodSettings(weights=NAME, set_noise=False))
    assert learned.head_config.noise == "learned"
    np.testing.assert_array_equal(learned.prior_mean, learned_prior(learned, NAME)[0])
    noisy = make_controller("kbt", TASK, MethodSettings(weights=NAME, sigma_data=2.0))
    assert noisy.head_config.obs_noise == 5.0                             # misfit R plus the label noise
    with pytest.raises(ValueError, match="pre-trained for the swingup task, not balance"):
        make_controller("kbt", SWINGUP_TARGET, MethodSettings(weights=NAME))
    with pytest.raises(ValueError, match="has no learned prior"):
        learned_prior(plain, "nope")


def test_the_adapt_variant_is_the_tuned_controller_and_learns():
    """``kbt@alpaca`` acts as the controller ``tools/alpaca.py eval --noise known --R 3`` measured on
    the tuning trials (weights, learned prior installed with ``use_prior``, known R = 3), label by label."""
    from sim.experiments.adapt import make_variant

    c = make_variant("kbt@alpaca", "swingup")
    ref = KBTController(load_pretrained(str(weight_set(NAME).path)), HeadConfig(obs_noise=3.0, noise="known"))
    m, P, _ = learned_prior(ref, NAME)
    ref.use_prior(prior_mean=m, prior_cov=P)
    S = _states(8, seed=3)
    F = np.linspace(-5.0, 5.0, 8)
    for s, f in zip(S, F):
        assert c.act(s) == pytest.approx(ref.act(s), rel=1e-12, abs=1e-12)
        c.observe(s, f)
        ref.observe(s, f)
    assert c.n_updates == 8
    np.testing.assert_allclose(c.predict(S)[0], ref.predict(S)[0], rtol=1e-10, atol=1e-10)


def test_library_check_names_the_argument_and_the_sets(tmp_path):
    with pytest.raises(ValueError, match=r"^weights: expected a weights file or one of swingup-alpaca but found "
                                         r"'swingup-alpacca' \(no such file\)$"):
        check_weights("swingup-alpacca")
    f = tmp_path / "w.npz"
    f.write_bytes(b"")
    assert check_weights(str(f)) == str(f) and check_weights(NAME) == NAME and check_weights(None) is None
    assert set(WEIGHT_SETS) == {NAME}


@pytest.mark.parametrize("argv, message", [
    (["run", "--task", "swingup", "--weights", "swingup-alpacca"],
     "--weights: expected a weights file or one of swingup-alpaca but found 'swingup-alpacca' (no such file)"),
    (["run", "--weights", NAME], "--weights: swingup-alpaca is pre-trained for the swingup task; give --task swingup"),
    (["experiment", "adapt", "--task", "swingup", "--weights", "nowhere"],
     "--weights: expected a weights file or one of swingup-alpaca but found 'nowhere'"),
    (["experiment", "adapt", "--methods", "kbt@alpaca", "--task", "balance"],
     "--methods: kbt@alpaca runs on the swingup task only"),
    (["experiment", "adapt", "--methods", "kbt@alpaca", "--task", "swingup", "--weights", NAME],
     "--methods: kbt@alpaca runs on its own weights (swingup-alpaca)"),
])
def test_bad_names_are_one_line_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main([*argv, "--no-progress"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert message in err


def test_kbt_run_with_the_set(capsys):
    assert main(["run", "--task", "swingup", "--weights", NAME, "--samples", "3", "--episodes", "1",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "success" in out and "after 3 updates" in out
