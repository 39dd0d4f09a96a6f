"""I.i.d. expert-labelled data for pre-training and fine-tuning (docs/defaults.md).

States are drawn uniformly from a box (default |x|, |x_dot| <= 0.5,
|theta|, |theta_dot| <= 0.1) and labelled with the expert's force; optional
Gaussian noise of variance ``sigma_data`` (N^2) is added to the label.
Labels are not clipped here: the action tokenizer maps them onto its bins.
"""

from __future__ import annotations

import numpy as np

from controller.checks import as_float_array, check_int, check_positive, check_rng
from controller.features import DEFAULT_BOX as FEATURE_BOX

__all__ = ["DEFAULT_BOX", "sample_states", "sample_dataset", "trajectory_states", "collect", "TRAJECTORY_EPISODES"]

#: expert episodes whose visited states make up a swing-up task's i.i.d. pool
TRAJECTORY_EPISODES = 20

#: Half-widths of the sampling box for [x, x_dot, theta, theta_dot] (the library's, as an array).
DEFAULT_BOX = np.array(FEATURE_BOX)


def sample_states(n, rng, box=None):
    """``n`` states uniform in ``[-box, box]``, shape (n, 4)."""
    n = check_int("n", n, low=0)
    rng = check_rng(rng)
    box = DEFAULT_BOX if box is None else as_float_array("box", box, (4,))
    if np.any(box <= 0):
        raise ValueError(f"box: expected four half-widths > 0 but found {box.tolist()}")
    return rng.uniform(-box, box, size=(n, 4))


def sample_dataset(expert, n, seed, *, box=None, sigma_data=0.0):
    """I.i.d. pairs (state, expert force).

    Parameters
    ----------
    expert : object with ``act(states) -> forces``
        E.g. ``controller.lqr.LQRController(TARGET)``.
    n : int
        Number of samples.
    seed : int or numpy.random.Generator
    box : array_like, shape (4,), optional
        Half-widths of the state box.
    sigma_data : float
        Variance (N^2) of Gaussian noise added to the expert force, >= 0.

    Returns
    -------
    states : ndarray, shape (n, 4)
    forces : ndarray, shape (n,)
    """
    if not callable(getattr(expert, "act", None)):
        raise ValueError(f"expert: expected an object with act(states) but found {type(expert).__name__}")
    sigma_data = check_positive("sigma_data", sigma_data, allow_zero=True)
    rng = check_rng(seed)
    states = sample_states(n, rng, box)
    forces = np.asarray(expert.act(states), dtype=float).reshape(states.shape[0])
    if sigma_data > 0:
        forces = forces + rng.normal(0.0, np.sqrt(sigma_data), size=forces.shape)
    return states, forces


def collect(task, expert, n_episodes, rng, *, policy=None, beta=1.0, noise_std=0.0):
    """States visited by ``n_episodes`` batched episodes of ``task`` and their expert labels.

    Each period every live episode applies the expert's force with probability
    ``beta`` (else ``policy``'s), plus Gaussian noise of standard deviation
    ``noise_std`` (N; a scalar or one value per episode). Episodes stop when
    they fail (off the track); the state that failed is not recorded.

    Returns
    -------
    states : ndarray (M, 4)
    forces : ndarray (M,)  the expert's force on each state
    """
    n = n_episodes
    noise = np.broadcast_to(np.asarray(noise_std, dtype=float), (n,))
    s = task.reset(rng, n)
    alive = np.ones(n, dtype=bool)
    states, labels = [], []
    for _ in range(task.episode_steps):
        idx = np.flatnonzero(alive)
        if idx.size == 0:
            break
        cur = s[idx]
        f_exp = expert.act(cur)
        states.append(cur.copy())
        labels.append(f_exp)
        if policy is None or beta >= 1.0:
            f = f_exp
        else:
            use_expert = rng.random(idx.size) < beta
            f = np.where(use_expert, f_exp, policy.act(cur))
        f = f + noise[idx] * rng.standard_normal(idx.size)
        nxt, _ = task.step(cur, f)
        s[idx] = nxt
        alive[idx[task.failed(nxt)]] = False
    return np.concatenate(states), np.concatenate(labels)


def trajectory_states(task, expert, seed, episodes=TRAJECTORY_EPISODES):
    """Every state the expert visits in ``episodes`` seeded episodes of ``task``
    (``collect`` with the expert alone, initial states from
    ``task.reset(default_rng(seed), episodes)``), shape (M, 4): the pool the
    swing-up task's i.i.d. stream draws from."""
    episodes = check_int("episodes", episodes, low=1)
    return collect(task, expert, episodes, np.random.default_rng(seed))[0]
