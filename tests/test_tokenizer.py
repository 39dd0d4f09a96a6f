import numpy as np
import pytest
from hypothesis import given, strategies as st

from controller.tokenizer import ActionTokenizer


def test_centres_edges_and_index():
    tok = ActionTokenizer(11, 30.0)
    np.testing.assert_allclose(tok.centres, np.arange(-30, 31, 6))
    np.testing.assert_allclose(tok.edges, np.arange(-27, 28, 6))
    np.testing.assert_array_equal(tok.index([-100, -27.1, -26.9, 0, 2.9, 3.1, 100]), [0, 0, 1, 5, 5, 6, 10])


@given(st.floats(-50, 50), st.sampled_from([2, 5, 11, 41]))
def test_twohot_preserves_the_clipped_force(force, n_bins):
    tok = ActionTokenizer(n_bins, 30.0, target="twohot")
    y = tok.encode([force])
    assert y.min() >= 0 and y.sum() == pytest.approx(1.0)
    assert np.count_nonzero(y) <= 2
    assert tok.decode(y)[0] == pytest.approx(np.clip(force, -30, 30), abs=1e-9)


def test_onehot_and_mode_decoding():
    tok = ActionTokenizer(11, 30.0, target="onehot", decode="mode")
    y = tok.encode([7.0, -14.0])
    np.testing.assert_array_equal(y.argmax(axis=1), [6, 3])
    np.testing.assert_allclose(tok.decode(y), [6.0, -12.0])


def test_gaussian_masses_are_bin_integrals():
    tok = ActionTokenizer(41, 30.0, target="gaussian", sigma=3.0)
    y = tok.encode([0.0, 10.0, 29.0])
    np.testing.assert_allclose(y.sum(axis=1), 1.0)
    # symmetric about a centre
    np.testing.assert_allclose(y[0], y[0][::-1], atol=1e-15)
    # far from the edges the mean is preserved; the masses match a Monte Carlo histogram
    assert tok.decode(y[1:2])[0] == pytest.approx(10.0, abs=1e-6)
    rng = np.random.default_rng(0)
    draws = np.clip(rng.normal(10.0, 3.0, 200_000), -30, 30)
    hist = np.bincount(tok.index(draws), minlength=41) / draws.size
    np.testing.assert_allclose(y[1], hist, atol=4e-3)
    assert np.allclose(tok.gaussian_masses([5.0], 0.0), tok.encode([5.0], "onehot"))


def test_categorical_variance():
    tok = ActionTokenizer(3, 1.0)
    assert tok.variance(np.array([[0.5, 0.0, 0.5]]))[0] == pytest.approx(1.0)
    assert tok.variance(np.array([[0.0, 1.0, 0.0]]))[0] == 0.0


@pytest.mark.parametrize("kwargs, name", [
    ({"n_bins": 1}, "n_bins"), ({"u_max": 0}, "u_max"), ({"target": "soft"}, "target"),
    ({"decode": "median"}, "decode"), ({"sigma": -1}, "sigma"),
])
def test_bad_settings(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ActionTokenizer(**kwargs)


def test_bad_forces():
    with pytest.raises(ValueError, match="forces"):
        ActionTokenizer().encode([np.nan])
