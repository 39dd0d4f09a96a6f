import numpy as np
import pytest

from controller.lqr import LQRController, linearise, lqr_gain
from sim.world import cartpole
from sim.world.cartpole import SOURCE, TARGET, CartPoleParams


@pytest.mark.parametrize("params", [SOURCE, TARGET, CartPoleParams(m_c=0.7, m_p=0.4, l_p=2.0)])
def test_linearisation_matches_finite_difference_jacobian(params):
    A, B = linearise(params)
    h = 1e-6
    A_fd = np.zeros((4, 4))
    for j in range(4):
        e = np.zeros(4)
        e[j] = h
        A_fd[:, j] = (cartpole.dynamics(params, e, 0.0) - cartpole.dynamics(params, -e, 0.0)) / (2 * h)
    B_fd = (cartpole.dynamics(params, np.zeros(4), h) - cartpole.dynamics(params, np.zeros(4), -h)) / (2 * h)
    np.testing.assert_allclose(A, A_fd, atol=1e-7)
    np.testing.assert_allclose(B[:, 0], B_fd, atol=1e-7)


@pytest.mark.parametrize("params, expected", [
    (SOURCE, [-3.162, -5.915, -49.51, -12.84]),
    (TARGET, [-3.162, -9.586, -146.5, -114.4]),
])
def test_gains_match_spec(params, expected):
    K, E = lqr_gain(params)
    np.testing.assert_allclose(K, expected, rtol=1e-3)
    assert np.all(E.real < 0)


def test_gain_solves_the_riccati_equation():
    import scipy.linalg

    A, B = linearise(TARGET)
    Q, R = np.diag([1.0, 1.0, 10.0, 1.0]), np.array([[0.1]])
    P = scipy.linalg.solve_continuous_are(A, B, Q, R)
    K, _ = lqr_gain(TARGET)
    np.testing.assert_allclose(K, (np.linalg.solve(R, B.T @ P)).ravel(), rtol=1e-8)


def test_policy_sign_and_batching():
    ctrl = LQRController(SOURCE)
    s = np.random.default_rng(0).normal(size=(7, 4))
    np.testing.assert_allclose(ctrl.act(s), -s @ ctrl.K)
    # pole leaning towards +x: push the cart towards +x
    assert ctrl.act(np.array([0, 0, 0.1, 0])) > 0


def test_bad_weights():
    with pytest.raises(ValueError, match="R"):
        lqr_gain(SOURCE, R=0.0)
    with pytest.raises(ValueError, match="Q"):
        lqr_gain(SOURCE, Q=np.eye(3))
    with pytest.raises(ValueError, match="Q"):
        lqr_gain(SOURCE, Q=-np.eye(4))
    with pytest.raises(ValueError, match="params"):
        linearise("target")


def test_design_takes_any_object_with_the_four_parameters():
    """The library does not import the plant: anything with m_c, m_p, l_p, g will do."""
    from types import SimpleNamespace

    duck = SimpleNamespace(m_c=TARGET.m_c, m_p=TARGET.m_p, l_p=TARGET.l_p, g=TARGET.g)
    np.testing.assert_array_equal(lqr_gain(duck)[0], lqr_gain(TARGET)[0])
    np.testing.assert_array_equal(LQRController(duck).K, LQRController(TARGET).K)
    with pytest.raises(ValueError, match="params.l_p"):
        linearise(SimpleNamespace(m_c=1.0, m_p=1.0, l_p=-5.0, g=9.8))
    with pytest.raises(ValueError, match="params"):
        linearise(SimpleNamespace(m_c=1.0, m_p=1.0, l_p=5.0))
