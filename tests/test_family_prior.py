"""The KBT head's family prior (swing-up: covariance; balance: mean and covariance):
its file, its moments, where it applies."""

import json

import numpy as np
import pytest

from controller.kalman_head import HeadConfig
from sim.loops.family_prior import FAMILY_EPS, family_path, load_family, prior_covariance, prior_mean, save_family
from sim.loops.methods import MethodSettings, make_controller
from sim.pretraining.family import FAMILY_RANGE, LEFT_OUT, LEFT_OUT_FACTOR, family_plants, family_readouts
from sim.world.cartpole import TARGET
from sim.world.task import BALANCE, SWINGUP, SWINGUP_TARGET

TASK = SWINGUP.on(SWINGUP_TARGET)


@pytest.fixture(scope="module")
def isotropic():
    return make_controller("kbt", TASK, MethodSettings(family=False))


def test_swingup_kbt_starts_from_the_shipped_family_prior(isotropic, tmp_path):
    c = make_controller("kbt", TASK)
    W = load_family(family_path("swingup"), isotropic.fingerprint())
    with np.load(family_path("swingup")) as f:
        meta = json.loads(str(f["meta"]))
    assert meta["command"] == "kbt family --out controller/data/family_swingup.npz --no-progress"
    assert W.shape == (meta["plants"], isotropic.head.d_in + 1)
    # P0 = Cov(w) + eps I, written independently of prior_covariance
    D = W - W.mean(axis=0)
    np.testing.assert_allclose(c.head.prior_cov, D.T @ D / (len(W) - 1) + FAMILY_EPS * np.eye(W.shape[1]))
    np.testing.assert_allclose(c.head.core.layers[0].S[0], c.head.prior_cov)
    np.testing.assert_array_equal(c.prior_mean, isotropic.prior_mean)      # the mean stays the pre-trained read-out
    # one input map, so one fingerprint; a saved head knows its prior all the same
    assert c.fingerprint() == isotropic.fingerprint()
    isotropic.save_state(tmp_path / "iso.npz")
    c.save_state(tmp_path / "fam.npz")
    with pytest.raises(ValueError, match="another prior"):
        c.load_state(tmp_path / "iso.npz")
    with pytest.raises(ValueError, match="another prior"):
        isotropic.load_state(tmp_path / "fam.npz")
    # the same as passing prior_cov to the constructor
    from controller.kbt import KBTController

    direct = KBTController(isotropic.policy, prior_cov=c.head.prior_cov)
    assert direct.fingerprint() == c.fingerprint()
    c.observe(np.zeros(4), 1.0)
    with pytest.raises(ValueError, match="learned already"):
        c.use_prior_cov(c.head.prior_cov)


def test_balance_kbt_can_start_from_the_family_mean_and_covariance():
    iso = make_controller("kbt", TARGET)                            # the balance default: the paper's prior
    assert iso.head.prior_cov is None
    c = make_controller("kbt", TARGET, MethodSettings(family=True))
    W = load_family(family_path("balance"), iso.fingerprint())
    with np.load(family_path("balance")) as f:
        meta = json.loads(str(f["meta"]))
    assert meta["command"] == "kbt family --task balance --out controller/data/family_balance.npz --no-progress"
    assert W.shape == (meta["plants"], iso.head.d_in + 1)
    D = W - W.mean(axis=0)
    np.testing.assert_allclose(c.head.prior_cov, D.T @ D / (len(W) - 1) + FAMILY_EPS * np.eye(W.shape[1]))
    np.testing.assert_allclose(c.prior_mean, W.sum(axis=0) / len(W))
    np.testing.assert_allclose(c.head.core.layers[0].M[:, 0], c.prior_mean)
    # the option: the pre-trained read-out as the mean, the family covariance kept
    cov_only = make_controller("kbt", TARGET, MethodSettings(family=True, family_mean=False))
    np.testing.assert_array_equal(cov_only.prior_mean, iso.prior_mean)
    np.testing.assert_allclose(cov_only.head.prior_cov, c.head.prior_cov)
    # and swing-up can start from its family's mean
    sw = make_controller("kbt", TASK, MethodSettings(family_mean=True))
    np.testing.assert_allclose(sw.prior_mean, prior_mean(load_family(family_path("swingup"), sw.fingerprint())))


def test_the_paper_experiments_keep_the_paper_prior(monkeypatch):
    import sim.experiments.offline as off

    seen, real = [], off.make_controller
    monkeypatch.setattr(off, "make_controller", lambda m, t, s, **kw: seen.append(s) or real(m, t, s, **kw))
    off._learning_job((off.LearningSpec(methods=("kbt",), trials=1, samples=2, every=1, episodes=2), "kbt", 0))
    c = real("kbt", TARGET, seen[0])
    iso = make_controller("kbt", TARGET, MethodSettings(family=False))
    assert c.head.prior_cov is None
    np.testing.assert_array_equal(c.prior_mean, iso.prior_mean)


def test_where_the_family_prior_does_not_apply_the_prior_is_v_i(isotropic):
    assert isotropic.head.prior_cov is None
    assert make_controller("kbt", TARGET, MethodSettings(family=False)).head.prior_cov is None
    assert make_controller("kbt", TASK, MethodSettings(head=HeadConfig(prior_var=5.0))).head.prior_cov is None
    assert make_controller("kbt", TASK, MethodSettings(head=HeadConfig(inputs="features"))).head.prior_cov is None
    assert make_controller("rls", TASK).head.prior_cov is None


def test_a_family_file_of_other_weights_is_refused(tmp_path, isotropic):
    path = tmp_path / "f.npz"
    save_family(path, np.ones((3, 21)), np.ones((3, 3)), "0" * 16, {})
    with pytest.raises(ValueError, match="other pre-trained weights"):
        load_family(path, isotropic.fingerprint())
    (tmp_path / "bad.npz").write_text("not a file")
    with pytest.raises(ValueError, match="not a readable family file"):
        load_family(tmp_path / "bad.npz", isotropic.fingerprint())
    with pytest.raises(ValueError, match="eps"):
        prior_covariance(np.ones((3, 21)), eps=-1.0)


def test_family_plants_are_in_range_and_leave_the_evaluated_plants_out():
    gen = family_plants(TASK, np.random.default_rng(0))
    lo, hi = FAMILY_RANGE["swingup"]
    f = LEFT_OUT_FACTOR
    for _ in range(300):
        p = next(gen)
        v = (p.m_c, p.m_p, p.l_p)
        assert all(a <= x <= b for a, x, b in zip(lo, v, hi))
        for q in LEFT_OUT["swingup"]:
            assert not all(1 / f <= x / y <= f for x, y in zip(v, (q.m_c, q.m_p, q.l_p)))
        assert p.integrator == TASK.params.integrator and p.u_max == TASK.params.u_max


def test_family_readouts_fit_each_members_expert(isotropic):
    from sim.world.data import trajectory_states
    from sim.world.experts import expert_for

    W, plants = family_readouts(isotropic, TASK, n=2, seed=3, episodes=2)
    assert W.shape == (2, isotropic.head.d_in + 1) and plants.shape == (2, 3)
    member = TASK.on(TASK.params.with_(m_c=plants[0, 0], m_p=plants[0, 1], l_p=plants[0, 2]))
    S = trajectory_states(member, expert_for(member), 4, episodes=2)
    Zt = np.hstack([isotropic.inputs(S), np.ones((len(S), 1))])
    F = expert_for(member).act(S)
    # the member's read-out fits its expert on fresh episodes better than the pre-trained read-out does
    assert np.sqrt(np.mean((Zt @ W[0] - F) ** 2)) < 0.8 * np.sqrt(np.mean((Zt @ isotropic.prior_mean - F) ** 2))


def test_balance_family_readouts_are_the_members_lqr_gains():
    """The LQR expert is linear in the state and rls reads the state: its read-out is -K exactly."""
    from controller.lqr import LQRController

    rls = make_controller("rls", TARGET)
    W, plants = family_readouts(rls, BALANCE.on(TARGET), n=3, seed=2)
    for w, p in zip(W, plants):
        K = LQRController(TARGET.with_(m_c=p[0], m_p=p[1], l_p=p[2])).K
        np.testing.assert_allclose(w, np.append(-K / rls.s_inv, 0.0), atol=1e-8)
    lo, hi = FAMILY_RANGE["balance"]
    assert np.all((plants >= lo) & (plants <= hi))
    assert not any(all(1 / LEFT_OUT_FACTOR <= x / y <= LEFT_OUT_FACTOR for x, y in zip(p, (1.0, 1.0, 5.0)))
                   for p in plants)


def test_cli_family_checks_its_flags_and_writes_a_file(tmp_path, capsys, isotropic):
    from sim.cli import main

    out = tmp_path / "fam.npz"
    with pytest.raises(SystemExit) as e:
        main(["family", "--out", str(out), "--plants", "1"])
    assert e.value.code == 2 and "--plants" in capsys.readouterr().err and not out.exists()
    assert main(["family", "--out", str(out), "--plants", "2", "--no-progress"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert load_family(out, isotropic.fingerprint()).shape == (2, isotropic.head.d_in + 1)


def test_a_given_prior_var_on_the_command_line_replaces_the_family_prior():
    from sim.cli import build_parser
    from sim.cli.flags import make_controller as cli_controller
    from sim.cli.parser import explicit_flags

    for argv, family in ((["run", "--task", "swingup"], True), (["run", "--task", "swingup", "--prior-var", "10"], False),
                         (["run", "--task", "swingup", "--family", "off"], False), (["run"], False),
                         (["run", "--family", "on"], True), (["run", "--family", "on", "--prior-var", "10"], False)):
        args = build_parser().parse_args(argv)
        args.argv, args.given = argv, explicit_flags(build_parser(), argv, "run")
        c = cli_controller(args, TASK if "swingup" in argv else TARGET)
        assert (c.head.prior_cov is not None) == family, argv


def test_use_prior_sets_mean_and_covariance_of_a_fresh_head():
    rls = make_controller("rls", TARGET)
    w = np.arange(5.0)
    P = np.diag([1.0, 2.0, 3.0, 4.0, 5.0]) + 0.1
    rls.use_prior(prior_mean=w, prior_cov=P)
    np.testing.assert_array_equal(rls.prior_mean, w)
    np.testing.assert_array_equal(rls.head.core.layers[0].M[:, 0], w)
    np.testing.assert_array_equal(rls.head.prior_cov, P)
    s = np.array([0.1, -0.2, 0.03, 0.01])
    assert rls.act(s) == pytest.approx(np.append(s * rls.s_inv, 1.0) @ w)
    with pytest.raises(ValueError, match="prior_mean"):
        rls.use_prior(prior_mean=np.ones(3))
    rls.observe(s, 1.0)
    with pytest.raises(ValueError, match="learned already"):
        rls.use_prior(prior_mean=w)
