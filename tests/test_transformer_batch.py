"""``controller.transformer_batch`` against its NumPy reference ``controller.transformer``:
the same floats to the bit (the success evaluation's T_1 on a batch)."""

import numpy as np
import pytest

from controller import transformer as tf
from controller import transformer_batch as tb
from controller.model import load_pretrained
from controller.transformer import TransformerConfig
from sim.loops.methods import task_weights
from sim.world.task import TASKS
from same_floats import assert_same_floats


def _states(rng, n):
    return np.column_stack([rng.uniform(-3, 3, n), rng.normal(0, 3, n), rng.uniform(-np.pi, np.pi, n),
                            rng.normal(0, 8, n)])


@pytest.mark.parametrize("task", ["balance", "swingup"])
@pytest.mark.parametrize("n", [1, 2, 7, 100, 257])
def test_features_equal_the_reference_to_the_bit_on_the_shipped_weights(task, n):
    policy = load_pretrained(task_weights(TASKS[task]))
    S = _states(np.random.default_rng(n), n)
    ref = tf.features(policy.params, policy.config, S)
    assert_same_floats(tb.features(policy.params, policy.config, S), ref)
    assert_same_floats(policy.features(S), ref)


@pytest.mark.parametrize("cfg", [TransformerConfig(), TransformerConfig(d_model=24, n_heads=3, d_ff=40, n_layers=3,
                                                                        final_ln=True, query="constant")],
                         ids=["default", "wide-final-ln"])
def test_features_equal_the_reference_to_the_bit_on_random_weights(cfg):
    rng = np.random.default_rng(1)
    P = tf.init_params(cfg, rng)
    P = {k: v + rng.normal(0, 0.3, v.shape) for k, v in P.items()}        # LayerNorm gains and biases too
    S = _states(rng, 300)
    assert_same_floats(tb.features(P, cfg, S), tf.features(P, cfg, S))


@pytest.mark.parametrize("n", [1, 5, 7, 8, 9, 16, 17, 31, 64, 127, 128])
def test_pairwise_sum_is_numpys_sum(n):
    rng = np.random.default_rng(n)
    a = rng.normal(size=n) * np.exp(rng.normal(0, 4, n))     # wide magnitudes: the order shows
    assert tb.pairwise_sum(a, 0, n) == a.sum()
    assert tb.pairwise_sum(np.concatenate([[7.0], a]), 1, n) == a.sum()


def test_layer_norm_and_softmax_equal_the_reference_to_the_bit():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 5, 16)) * np.exp(rng.normal(0, 2, (50, 5, 16)))
    g, b = rng.normal(size=16), rng.normal(size=16)
    ref = tf.layer_norm(x, g, b, 1e-5)[0]
    out = np.empty((250, 16))
    tb.layer_norm(x.reshape(-1, 16), g, b, 1e-5, out, np.empty(32))
    assert out.tobytes() == ref.reshape(-1, 16).tobytes()
    y = rng.normal(size=(40, 2, 5, 5)) * 9.0
    ref = tf.softmax(y * 0.35)
    out = np.empty((400, 5))
    tb.softmax_rows(y.reshape(-1, 5).copy(), 0.35, out)
    assert_same_floats(out, ref.reshape(-1, 5))
