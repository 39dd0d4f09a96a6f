import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.integrate import solve_ivp

from sim.world import cartpole
from sim.world.cartpole import SOURCE, TARGET, CartPoleParams


def gymnasium_step(params, state, force):
    """Scalar port of Gymnasium's CartPoleEnv.step physics (explicit Euler),
    written from its published source with its own variable names."""
    x, x_dot, theta, theta_dot = state
    gravity, masscart, masspole, length, tau = params.g, params.m_c, params.m_p, params.l_p, params.tau
    total_mass = masspole + masscart
    polemass_length = masspole * length
    costheta, sintheta = math.cos(theta), math.sin(theta)
    temp = (force + polemass_length * theta_dot**2 * sintheta) / total_mass
    thetaacc = (gravity * sintheta - costheta * temp) / (
        length * (4.0 / 3.0 - masspole * costheta**2 / total_mass))
    xacc = temp - polemass_length * thetaacc * costheta / total_mass
    x = x + tau * x_dot
    x_dot = x_dot + tau * xacc
    theta = theta + tau * theta_dot
    theta_dot = theta_dot + tau * thetaacc
    return np.array([x, x_dot, theta, theta_dot])


def test_hand_computed_accelerations_source():
    # Upright, at rest, F = 1 N on SOURCE: temp = 1/1.1, D = 0.5 (4/3 - 1/11) = 41/66,
    # th_dd = -(10/11) / (41/66) = -60/41, x_dd = 10/11 + 0.05 (60/41) / 1.1 = 40/41.
    d = cartpole.dynamics(SOURCE, np.zeros(4), 1.0)
    np.testing.assert_allclose(d, [0.0, 40 / 41, 0.0, -60 / 41], rtol=0, atol=1e-14)


def test_hand_computed_accelerations_target_gravity_only():
    # theta = pi/2 (pole horizontal), at rest, F = 0 on TARGET: cos = 0, so
    # temp = 0, th_dd = g / (l (4/3)) = 9.8 * 3 / 20 = 1.47, x_dd = 0 (times cos = 0).
    d = cartpole.dynamics(TARGET, np.array([0.0, 0.0, math.pi / 2, 0.0]), 0.0)
    np.testing.assert_allclose(d, [0.0, 0.0, 0.0, 1.47], atol=1e-13)


def test_polemass_length_is_mass_times_half_length():
    assert TARGET.polemass_length == pytest.approx(5.0)
    assert SOURCE.polemass_length == pytest.approx(0.05)


@pytest.mark.parametrize("params", [SOURCE, TARGET, CartPoleParams(m_c=2.0, m_p=0.3, l_p=1.2, tau=0.01)])
def test_euler_matches_gymnasium(params):
    rng = np.random.default_rng(1)
    for _ in range(200):
        s = rng.uniform([-2, -3, -0.5, -3], [2, 3, 0.5, 3])
        f = rng.uniform(-25, 25)
        nxt, sat = cartpole.step(params, s, f)
        np.testing.assert_allclose(nxt, gymnasium_step(params, s, f), rtol=0, atol=1e-12)
        assert not sat


def test_rk4_matches_accurate_ode_solution():
    p = TARGET.with_(integrator="rk4")
    s = np.array([0.1, -0.2, 0.15, 0.4])
    f = 7.0
    sol = solve_ivp(lambda t, y: cartpole.dynamics(p, y, f), (0, p.tau), s, rtol=1e-12, atol=1e-12)
    nxt, _ = cartpole.step(p, s, f)
    # RK4 local error is O(h^5): far below 1e-8 at h = 0.02 for these rates.
    np.testing.assert_allclose(nxt, sol.y[:, -1], atol=1e-9)
    # and it is more accurate than Euler
    eul, _ = cartpole.step(TARGET, s, f)
    assert np.abs(eul - sol.y[:, -1]).max() > 100 * np.abs(nxt - sol.y[:, -1]).max()


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 20), seed=st.integers(0, 2**31), integrator=st.sampled_from(cartpole.INTEGRATORS))
def test_batch_step_equals_single_steps(n, seed, integrator):
    p = TARGET.with_(integrator=integrator)
    rng = np.random.default_rng(seed)
    s = rng.uniform(-1, 1, size=(n, 4))
    f = rng.uniform(-40, 40, size=n)
    nxt, sat = cartpole.step(p, s, f)
    for i in range(n):
        one, one_sat = cartpole.step(p, s[i], f[i])
        # NumPy's vectorised sin/cos may round an ulp differently from the scalar path
        np.testing.assert_allclose(nxt[i], one, rtol=1e-14, atol=1e-15, err_msg=f"row {i}")
        assert sat[i] == one_sat


def test_scalar_force_broadcasts_over_batch():
    s = np.random.default_rng(0).uniform(-1, 1, size=(5, 4))
    a, _ = cartpole.step(SOURCE, s, 3.0)
    b, _ = cartpole.step(SOURCE, s, np.full(5, 3.0))
    np.testing.assert_array_equal(a, b)


def test_saturation_is_applied_and_reported():
    s = np.zeros((3, 4))
    nxt, sat = cartpole.step(SOURCE, s, np.array([100.0, -100.0, 10.0]))
    ref, _ = cartpole.step(SOURCE, s, np.array([30.0, -30.0, 10.0]))
    np.testing.assert_array_equal(nxt, ref)
    np.testing.assert_array_equal(sat, [True, True, False])


def test_termination_bounds_are_gymnasiums():
    th = 12 * 2 * math.pi / 360
    states = np.array([
        [2.4, 0, 0, 0], [2.4000001, 0, 0, 0], [-2.4000001, 0, 0, 0],
        [0, 0, th, 0], [0, 0, th + 1e-9, 0], [0, 0, -th - 1e-9, 0], [0, 9, 0, 9],
    ])
    np.testing.assert_array_equal(cartpole.terminated(states), [False, True, True, False, True, True, False])


def test_reset_distribution_and_determinism():
    a = cartpole.reset(np.random.default_rng(3), 1000)
    b = cartpole.reset(3, 1000)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (1000, 4) and np.all(np.abs(a) <= 0.05)
    assert cartpole.reset(0).shape == (4,)


@pytest.mark.parametrize("field", ["m_c", "m_p", "l_p", "tau", "g", "u_max"])
@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_parameters_name_the_argument(field, bad):
    with pytest.raises(ValueError, match=field):
        CartPoleParams(**{field: bad})


def test_unknown_integrator():
    with pytest.raises(ValueError, match="integrator"):
        CartPoleParams(integrator="leapfrog")


@pytest.mark.parametrize("state, force, name", [
    ([0, 0, float("nan"), 0], 0.0, "state"),
    ([0, 0, 0, float("inf")], 0.0, "state"),
    ([0, 0, 0, 0], float("nan"), "force"),
    ([0, 0, 0], 0.0, "state"),
    (np.zeros((2, 3)), 0.0, "state"),
    (np.zeros((2, 4)), np.zeros(3), "force"),
    (np.zeros(4), np.zeros(2), "force"),
    ("abc", 0.0, "state"),
])
def test_bad_state_or_force(state, force, name):
    with pytest.raises(ValueError, match=name):
        cartpole.step(SOURCE, state, force)


def test_step_rejects_non_params():
    with pytest.raises(ValueError, match="params"):
        cartpole.step({"m_c": 1}, np.zeros(4), 0.0)
