"""Calibration metrics on hand-made cases with known answers."""

import numpy as np
import pytest

from controller import calibration as cal


def test_perfectly_calibrated_has_zero_ece():
    # 10 predictions at confidence 0.8, 8 of them right: accuracy 0.8 = confidence
    P = np.tile([0.8, 0.2], (10, 1))
    k = np.array([0] * 8 + [1] * 2)
    assert cal.ece(P, k) == pytest.approx(0.0, abs=1e-12)
    assert cal.accuracy(P, k) == pytest.approx(0.8)


def test_always_overconfident():
    # confidence 0.99 but only half right: ECE = 0.49
    P = np.tile([0.99, 0.01], (100, 1))
    k = np.array([0, 1] * 50)
    assert cal.ece(P, k) == pytest.approx(0.49)
    conf, acc, count = cal.reliability(P, k)
    assert count.sum() == 100 and count[-1] == 100
    assert conf[-1] == pytest.approx(0.99) and acc[-1] == pytest.approx(0.5)
    assert np.isnan(acc[:-1]).all()


def test_nll_known_values():
    P = np.array([[0.5, 0.5], [0.25, 0.75]])
    assert cal.nll(P, np.array([0, 1])) == pytest.approx(-(np.log(0.5) + np.log(0.75)) / 2)
    # a zero probability of the true bin is floored, not infinite
    assert np.isfinite(cal.nll(np.array([[1.0, 0.0]]), np.array([1])))


def test_coverage_of_gaussian_samples():
    rng = np.random.default_rng(0)
    f = rng.normal(2.0, 3.0, 200_000)
    assert cal.coverage(np.full(f.size, 2.0), np.full(f.size, 9.0), f) == pytest.approx(0.9, abs=0.003)
    # over-confident: std 10x too small covers 2 Phi(1.645 / 10) - 1 = 0.1307
    assert cal.coverage(np.full(f.size, 2.0), np.full(f.size, 0.09), f) == pytest.approx(0.1307, abs=0.003)
    assert cal.rmse(np.full(f.size, 2.0), f) == pytest.approx(3.0, rel=0.01)


@pytest.mark.parametrize("call, word", [
    (lambda: cal.ece(np.ones((3, 2)) / 2, np.array([0, 1, 2])), "bins"),
    (lambda: cal.nll(np.ones((3, 2)) / 2, np.array([0.0, 1.0, 1.0])), "bins"),
    (lambda: cal.coverage(np.zeros(2), -np.ones(2), np.zeros(2)), "var"),
    (lambda: cal.coverage(np.zeros(2), np.ones(2), np.zeros(2), level=1.5), "level"),
    (lambda: cal.rmse(np.zeros(2), np.zeros(3)), "forces"),
])
def test_bad_inputs_name_the_argument(call, word):
    with pytest.raises(ValueError, match=word):
        call()
