"""RegionKBTController: a read-out per region, labels away from upright weighted, checked
against KBT itself and against closed-form Bayesian linear regression."""

import numpy as np
import pytest

from controller.kalman_head import HeadConfig
from controller.kbt import KBTController
from controller.model import load_pretrained
from controller.region_kbt import RegionKBTController, region_prior

NEAR = np.array([0.1, -0.2, 0.2, 0.3])      # |theta| <= 0.35
FAR = np.array([-0.3, 0.5, 2.5, -1.0])       # |theta| > 0.35
CFG = HeadConfig(noise="known", obs_noise=3.0, robust=0.0, change_threshold=0.0, backend="numpy")


@pytest.fixture(scope="module")
def policy():
    return load_pretrained()


def _prior(n, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n)) * 0.1
    return rng.normal(size=n), A @ A.T + 0.05 * np.eye(n)


def _pair(policy, **kw):
    """(KBT with the prior N(m0, P0), the region controller with each region from it)."""
    base = KBTController(policy, CFG)
    m0, P0 = _prior(base.prior_mean.size)
    base.use_prior(m0, P0)
    reg = RegionKBTController(policy, CFG, catch_angle=0.35, **kw)
    reg.use_region_prior(m0, P0)
    return base, reg, m0, P0


def test_each_region_starts_from_kbts_prior_mean_and_variance(policy):
    base, reg, _, _ = _pair(policy)
    for s in (NEAR, FAR):
        mb, _, qb = base.predict_split(s[None, :])
        mr, _, qr = reg.predict_split(s[None, :])
        np.testing.assert_allclose(mr, mb, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(qr, qb, rtol=1e-10, atol=1e-12)
    # and the regions are independent a priori: the prior covariance of the near and the far force is 0
    m, P = region_prior(*_prior(base.prior_mean.size))
    zn = np.r_[reg.inputs(NEAR[None, :])[0], 1.0]
    zf = np.r_[reg.inputs(FAR[None, :])[0], 1.0]
    assert abs(zn @ P @ zf) < 1e-12
    assert reg.near(np.array([[0, 0, np.pi - 0.1, 0], [0, 0, 2 * np.pi - 0.3, 0]])).tolist() == [False, True]


def test_a_far_covariance_of_its_own_sets_only_the_far_regions_prior(policy):
    base, _, m0, P0 = _pair(policy)
    _, P_far = _prior(base.prior_mean.size, seed=1)
    far_base = KBTController(policy, CFG)
    far_base.use_prior(m0, P_far)
    reg = RegionKBTController(policy, CFG, catch_angle=0.35)
    reg.use_region_prior(m0, P0, P_far)
    for s, ref in ((NEAR, base), (FAR, far_base)):
        mb, _, qb = ref.predict_split(s[None, :])
        mr, _, qr = reg.predict_split(s[None, :])
        np.testing.assert_allclose(mr, mb, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(qr, qb, rtol=1e-10, atol=1e-12)
    # P0_far = P0 is the one-covariance prior
    for a, b in zip(region_prior(m0, P0, P0), region_prior(m0, P0)):
        np.testing.assert_array_equal(a, b)


def _blr(z, y, m, P, R):
    """One closed-form Bayesian linear-regression update (the independent reference)."""
    S = z @ P @ z + R
    K = P @ z / S
    return m + K * (y - z @ m), P - np.outer(K, z @ P)


@pytest.mark.parametrize("far_weight, surprise, x, scale", [
    (30.0, 0.0, 0.5, 30.0),      # far label, weighted
    (30.0, 4.0, 3.5, 30.0),      # far label, e^2 / (q + R) = 3.5 <= 4: weighted
    (30.0, 4.0, 4.5, 1.0),       # far label, surprising: counts as any label
    (1.0, 0.0, 0.5, 1.0),        # no weighting
])
def test_far_label_update_is_closed_form_blr_with_the_scaled_noise(policy, far_weight, surprise, x, scale):
    _, reg, _, _ = _pair(policy, far_weight=far_weight, far_surprise=surprise)
    m, P = reg.head.kernel_arrays()[0].copy(), reg.head.kernel_arrays()[1].copy()
    z = np.r_[reg.inputs(FAR[None, :])[0], 1.0]
    y = float(z @ m) + np.sqrt(x * (z @ P @ z + 3.0))      # the label's e^2 / (q + R) is x
    reg.observe(FAR, y)
    m_ref, P_ref = _blr(z, y, m, P, scale * 3.0)
    np.testing.assert_allclose(reg.head.kernel_arrays()[0], m_ref, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(reg.head.kernel_arrays()[1], P_ref, rtol=1e-9, atol=1e-10)


def test_near_label_counts_as_any_and_leaves_the_far_readout_alone(policy):
    _, reg, _, _ = _pair(policy, far_weight=30.0)
    far_before = reg.act(FAR)
    m, P = reg.head.kernel_arrays()[0].copy(), reg.head.kernel_arrays()[1].copy()
    z = np.r_[reg.inputs(NEAR[None, :])[0], 1.0]
    y = reg.act(NEAR) + 2.0
    u = reg.step(NEAR, y)
    m_ref, _ = _blr(z, y, m, P, 3.0)
    np.testing.assert_allclose(reg.head.kernel_arrays()[0], m_ref, rtol=1e-9, atol=1e-10)
    assert u == pytest.approx(y - 2.0)
    assert reg.act(FAR) == pytest.approx(far_before, abs=1e-9)



def test_the_regions_are_two_independent_kbt_readouts(policy):
    """[z g; g; z (1 - g)] from independent region priors is a reparametrisation: through a
    mixed stream, the forces are those of two plain KBT heads on the same T_1, each from
    N(m0, P0) and fed only its region's labels (the far one with noise far_weight R)."""
    from dataclasses import replace

    _, reg, m0, P0 = _pair(policy, far_weight=30.0)
    near, far = KBTController(policy, CFG), KBTController(policy, replace(CFG, obs_noise=90.0))
    for c in (near, far):
        c.use_prior(m0, P0)
    rng = np.random.default_rng(3)
    for k in range(24):
        theta = rng.uniform(-0.3, 0.3) if k % 3 else rng.uniform(0.5, 3.0)
        s = np.array([rng.normal() * 0.3, rng.normal() * 0.5, theta, rng.normal()])
        own = near if reg.near(s)[0] else far
        y = own.act(s) + rng.normal() * 3.0
        assert reg.act(s) == pytest.approx(own.act(s), abs=1e-8), f"label {k}"
        reg.observe(s, y)
        own.observe(s, y)
    assert reg.act(NEAR) == pytest.approx(near.act(NEAR), abs=1e-8)
    assert reg.act(FAR) == pytest.approx(far.act(FAR), abs=1e-8)


REST = np.array([0.2, -0.1, np.pi - 0.3, 1.5])       # hanging near rest


def _label_with(reg, s, x):
    """(z with its 1, the head's mean and covariance, a label at s whose e^2 / (q + R) is x)."""
    m, P = reg.head.kernel_arrays()[0].copy(), reg.head.kernel_arrays()[1].copy()
    z = np.r_[reg.inputs(s[None, :])[0], 1.0]
    return z, m, P, float(z @ m) + np.sqrt(x * (z @ P @ z + 3.0))


def test_a_label_at_the_hanging_rest_counts_rest_weight_noisier_even_when_surprising(policy):
    _, reg, _, _ = _pair(policy, far_weight=30.0, far_surprise=4.0, rest_weight=1000.0)
    assert reg.at_rest(np.array([REST, [0, 0, -np.pi + 0.4, -1.9], [0, 0, np.pi - 0.6, 0.0],
                                 [0, 0, np.pi, 2.5], FAR])).tolist() == [True, True, False, False, False]
    z, m, P, y = _label_with(reg, REST, 50.0)
    reg.observe(REST, y)
    m_ref, P_ref = _blr(z, y, m, P, 1000.0 * 3.0)
    np.testing.assert_allclose(reg.head.kernel_arrays()[0], m_ref, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(reg.head.kernel_arrays()[1], P_ref, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("against", [1.0, -1.0])
def test_rest_against_counts_only_a_rest_label_opposite_to_the_prediction_noisier(policy, against):
    """With rest_against, a rest label of the prediction's sign is any far label (here surprising:
    counted fully); one of the other sign counts rest_weight noisier."""
    _, reg, _, _ = _pair(policy, far_weight=30.0, far_surprise=4.0, rest_weight=1000.0, rest_against=True)
    m, P = reg.head.kernel_arrays()[0].copy(), reg.head.kernel_arrays()[1].copy()
    z = np.r_[reg.inputs(REST[None, :])[0], 1.0]
    mu = float(z @ m)
    y = against * np.sign(mu) * (abs(mu) + 3.0 * np.sqrt(z @ P @ z + 3.0))     # e^2 / (q + R) >= 9
    reg.observe(REST, y)
    m_ref, _ = _blr(z, y, m, P, (1.0 if against > 0 else 1000.0) * 3.0)
    np.testing.assert_allclose(reg.head.kernel_arrays()[0], m_ref, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("far_run", [1, 2, 3])
def test_a_surprising_far_label_counts_fully_only_at_the_end_of_a_run_of_far_run(policy, far_run):
    """Far labels with e^2 / (q + R) = 9, 9, (a near label), 9, 1, 9 against surprise 4: the
    k-th surprising one in a row counts as any label when k >= far_run, else far_weight noisier;
    the near label leaves the run alone and the unsurprising one ends it."""
    _, reg, _, _ = _pair(policy, far_weight=30.0, far_surprise=4.0, far_run=far_run)
    run = 0
    for s, x in ((FAR, 9.0), (FAR, 9.0), (NEAR, 9.0), (FAR, 9.0), (FAR, 1.0), (FAR, 9.0)):
        z, m, P, y = _label_with(reg, s, x)
        reg.observe(s, y)
        if not reg.near(s)[0]:
            run = run + 1 if x > 4.0 else 0
        scale = 1.0 if reg.near(s)[0] or (run >= far_run and x > 4.0) else 30.0
        m_ref, _ = _blr(z, y, m, P, scale * 3.0)
        np.testing.assert_allclose(reg.head.kernel_arrays()[0], m_ref, rtol=1e-9, atol=1e-10)


def test_settings_are_checked_and_the_c_export_refuses_it(policy):
    for kw, word in (({"catch_angle": 0.0}, "catch_angle"), ({"catch_angle": 0.3, "far_weight": 0.5}, "far_weight"),
                     ({"catch_angle": 0.3, "far_surprise": -1.0}, "far_surprise"),
                     ({"catch_angle": 0.3, "far_run": 0}, "far_run"), ({"catch_angle": 0.3, "far_run": 1.5}, "far_run"),
                     ({"catch_angle": 0.3, "rest_weight": 0.5}, "rest_weight"),
                     ({"catch_angle": 0.3, "rest_angle": 0.0}, "rest_angle"),
                     ({"catch_angle": 0.3, "rest_speed": -1.0}, "rest_speed")):
        with pytest.raises(ValueError, match=word):
            RegionKBTController(policy, CFG, **kw)
    from firmware_profile.export import export_params

    with pytest.raises(ValueError, match="RegionKBTController"):
        export_params(RegionKBTController(policy, CFG, catch_angle=0.35))
