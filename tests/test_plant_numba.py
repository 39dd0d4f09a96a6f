"""The evaluation's plant kernel (``sim.world.plant_numba``) against its NumPy
reference (``Task.step`` / ``Task.failed``): the same floats to the bit."""

import numpy as np
import pytest

from controller.lqr import LQRController
from sim.loops.loop import _numba_step, _numpy_step, evaluate_success
from sim.world.cartpole import SOURCE, TARGET
from sim.world.experts import expert_for
from sim.world.task import BALANCE, PLANTS, SWINGUP, TASKS
from same_floats import LIBM, assert_same_floats


SWING_TARGET = TASKS["swingup"].on(PLANTS["swingup"]["target"])


def _random_case(rng, n):
    state = np.column_stack([rng.uniform(-3.5, 3.5, n), rng.normal(0, 3, n), rng.uniform(-4, 4, n),
                             rng.normal(0, 8, n)])
    force = rng.normal(0, 25, n)
    force[rng.random(n) < 0.05] = np.nan
    force[rng.random(n) < 0.02] = np.inf
    force[rng.random(n) < 0.02] = -0.0
    return state, force


@pytest.mark.parametrize("task", [BALANCE, BALANCE.on(TARGET), SWINGUP, SWING_TARGET], ids=["bal", "bal-t", "sw", "sw-t"])
@pytest.mark.parametrize("k, hold_from", [(0, 5), (7, 5)])
def test_kernel_step_equals_numpy_step_to_the_bit(task, k, hold_from):
    rng = np.random.default_rng(3)
    state, force = _random_case(rng, 400)
    idx = np.flatnonzero(rng.random(400) < 0.8)
    f = force[:idx.size]
    outs = []
    for step in (_numpy_step, _numba_step(task)):
        s, lengths, alive = state.copy(), np.full(400, 99, dtype=np.int64), np.ones(400, dtype=bool)
        with np.errstate(all="ignore"):
            sat = step(task, s, idx, f, k, hold_from, lengths, alive)
        outs.append((s, lengths, alive, sat))
    (s0, l0, a0, n0), (s1, l1, a1, n1) = outs
    assert_same_floats(s0, s1)
    np.testing.assert_array_equal(l0, l1)
    np.testing.assert_array_equal(a0, a1)
    assert n0 == n1 and not a0.all() and a0.any()


class _Noisy:
    """A controller whose forces depend on every bit of the state (and sometimes NaN)."""

    def __init__(self, inner):
        self.inner = inner

    def act(self, states):
        f = self.inner.act(states) + 3.0 * np.sin(97.0 * states[:, 1])
        f[np.abs(states[:, 3]) > 9.0] = np.nan
        return f


@pytest.mark.parametrize("task, controller", [
    (BALANCE.on(TARGET), LQRController(TARGET)), (BALANCE.on(TARGET), _Noisy(LQRController(SOURCE))),
    (SWING_TARGET, expert_for(SWING_TARGET)), (SWING_TARGET, _Noisy(expert_for(SWINGUP)))])
def test_evaluation_backends_agree_to_the_bit(task, controller):
    if not LIBM:
        pytest.skip("this NumPy's float64 sin/cos are not the C library's: the backends agree to rounding only")
    a = evaluate_success(controller, task, 40, seed=2, backend="numpy")
    b = evaluate_success(controller, task, 40, seed=2, backend="numba")
    assert a.success_rate == b.success_rate
    np.testing.assert_array_equal(a.lengths, b.lengths)
    assert a.saturation_fraction == b.saturation_fraction


def test_bad_backend_is_refused():
    with pytest.raises(ValueError, match="backend"):
        evaluate_success(LQRController(SOURCE), SOURCE, 2, backend="jax")
