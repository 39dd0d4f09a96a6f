import numpy as np
import pytest

from controller.retrain import RetrainController


def test_starts_as_the_pretrained_model_and_does_not_modify_it(pretrained):
    pol = pretrained
    before = pol.params["head.w"].copy()
    c = RetrainController(pol, capacity=3, epochs=2)
    s = np.random.default_rng(0).uniform(-0.05, 0.05, (5, 4))
    np.testing.assert_array_equal(c.act(s), pol.act(s))
    c.observe(s[0], 10.0)
    np.testing.assert_array_equal(pol.params["head.w"], before)
    assert not np.array_equal(c.policy.params["head.w"], before)


def test_fifo_memory_keeps_the_last_capacity_samples(pretrained):
    c = RetrainController(pretrained, capacity=3, epochs=1)
    for i in range(5):
        c.observe(np.full(4, 0.01 * i), float(i))
    assert len(c.memory) == 3
    np.testing.assert_allclose([m[0] for m in c.memory.states], [0.02, 0.03, 0.04])
    assert c.n_updates == 5


def test_retraining_fits_the_memory_and_is_deterministic(pretrained):
    rng = np.random.default_rng(1)
    S = rng.uniform(-0.1, 0.1, (5, 4))
    F = rng.uniform(-20, 20, 5)
    runs = []
    for _ in range(2):
        c = RetrainController(pretrained, capacity=5, epochs=50, lr=3e-3, seed=4)
        for s, f in zip(S, F):
            c.observe(s, f)
        runs.append(c)
    np.testing.assert_array_equal(runs[0].policy.params["head.w"], runs[1].policy.params["head.w"])
    before = np.abs(pretrained.act(S) - F).mean()
    after = np.abs(runs[0].act(S) - F).mean()
    assert after < 0.5 * before


@pytest.mark.parametrize("kwargs, name", [({"capacity": 0}, "capacity"), ({"epochs": 0}, "epochs"),
                                          ({"lr": -1.0}, "lr"), ({"batch": 0}, "batch")])
def test_bad_settings(kwargs, name, pretrained):
    with pytest.raises(ValueError, match=name):
        RetrainController(pretrained, **kwargs)


def test_single_state_fast_path_follows_the_training(pretrained):
    from controller.retrain import RetrainController

    c = RetrainController(pretrained, capacity=3, epochs=3, lr=1e-2)
    s = np.array([0.1, -0.2, 0.05, 0.1])
    before = c.act(s)
    for f in (5.0, -3.0, 8.0):
        c.observe(s, f)
    assert c.act(s) != pytest.approx(before, abs=1e-6)
    assert c.act(s) == pytest.approx(float(c.act(s[None, :])[0]), abs=1e-10)
    c.remember(s, 1.0)
    assert len(c.memory) == 3 and c.n_updates == 3
