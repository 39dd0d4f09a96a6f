import numpy as np
import pytest

from controller.kalman_head import HeadConfig, KalmanHead
from controller.kbt_softmax import SoftmaxKBTController, data_covariance
from controller.lqr import LQRController
from controller.tokenizer import ActionTokenizer
from sim.world.cartpole import TARGET
from sim.world.data import sample_dataset


def _pair(seed):
    W0 = np.random.default_rng(seed).normal(size=(17, 11))
    fast = KalmanHead.from_pretrained(W0, HeadConfig(output="softmax"))
    ref = KalmanHead.from_pretrained(W0, HeadConfig(output="softmax", backend="numpy"))
    assert fast.uses_numba and not ref.uses_numba
    return fast, ref


@pytest.mark.parametrize("with_cov", [False, True])
def test_numba_update_matches_numpy_reference(with_cov):
    fast, ref = _pair(0)
    rng = np.random.default_rng(1)
    tok = ActionTokenizer()
    for i in range(40):
        h = rng.normal(size=16) * 2
        y = rng.dirichlet(np.full(11, 0.5))
        C = data_covariance(tok, rng.uniform(-25, 25), 20.0) if with_cov else None
        # each step from an identical state: the kernels must agree to rounding
        ref.layers[0].M[:] = fast.layers[0].M
        ref.layers[0].S[:] = fast.layers[0].S
        fast.update(h, y, C)
        ref.update(h, y, C)
        np.testing.assert_allclose(fast.layers[0].M, ref.layers[0].M, atol=1e-10, rtol=0, err_msg=f"step {i}")
        np.testing.assert_allclose(fast.layers[0].S, ref.layers[0].S, atol=1e-10, rtol=0, err_msg=f"step {i}")


def test_numba_and_numpy_controllers_learn_identically(pretrained):
    pol = pretrained
    a = SoftmaxKBTController(pol)
    b = SoftmaxKBTController(pol, HeadConfig(output="softmax", backend="numpy"))
    S, F = sample_dataset(LQRController(TARGET), 60, seed=3)
    for s, f in zip(S, F):
        a.observe(s, f)
        b.observe(s, f)
    np.testing.assert_allclose(a.head.layers[0].M, b.head.layers[0].M, rtol=1e-9, atol=1e-10)
    probe = np.random.default_rng(0).uniform(-0.05, 0.05, (10, 4))
    np.testing.assert_allclose(a.act(probe), b.act(probe), atol=1e-9)
    for s in probe:                       # the single-state Numba act agrees with the batch path
        assert a.act(s) == pytest.approx(b.act(s[None])[0], abs=1e-9)


@pytest.mark.slow
def test_hundred_thousand_updates_stay_finite_symmetric_psd(pretrained):
    pol = pretrained
    c = SoftmaxKBTController(pol)
    S, F = sample_dataset(LQRController(TARGET), 100_000, seed=11, sigma_data=10.0)
    H = c.features(S)                     # batched T_1 features of the real task data
    Y = c.tokenizer.encode(F)
    head = c.head
    for i in range(H.shape[0]):
        head.update_unchecked(H[i], Y[i])
    M, Sk = head.layers[0].M, head.layers[0].S
    assert head.n_updates == 100_000
    assert np.all(np.isfinite(M)) and np.all(np.isfinite(Sk))
    np.testing.assert_array_equal(Sk, np.swapaxes(Sk, 1, 2))
    eig = np.linalg.eigvalsh(Sk)
    assert eig.min() >= -1e-12 * eig.max(), eig.min()
    assert np.all(np.diagonal(Sk, axis1=1, axis2=2) >= 0)


def test_float32_head_learns_like_float64(pretrained):
    pol = pretrained
    a = SoftmaxKBTController(pol)
    b = SoftmaxKBTController(pol, HeadConfig(output="softmax", dtype="float32"))
    assert b.head.layers[0].M.dtype == np.float32 and b.head.uses_numba
    S, F = sample_dataset(LQRController(TARGET), 200, seed=4)
    for s, f in zip(S, F):
        a.observe(s, f)
        b.observe(s, f)
    probe = np.random.default_rng(0).uniform(-0.05, 0.05, (50, 4))
    assert np.abs(a.act(probe) - b.act(probe)).max() < 0.05   # newtons
