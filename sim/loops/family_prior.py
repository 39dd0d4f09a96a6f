"""The family prior a KBT controller starts from (docs/family-prior.md).

A family file (made by ``kbt family``, ``sim.pretraining.family``) holds the
least-squares read-outs w_1..w_n of the experts of n other plants through the
KBT head's frozen inputs. The head's prior covariance is

    P0 = Cov(w_1, ..., w_n) + eps I                       (eps = FAMILY_EPS)

instead of v I, and its mean either the pre-trained read-out w_0 or the
family's mean read-out  w_bar = (w_1 + ... + w_n) / n  (``FAMILY_MEAN``: the
task's default; balance starts from w_bar, swing-up from w_0). The file records
the fingerprint of the input map it was made for (``ForceController.fingerprint``:
a hash of the stored transformer weights and the head's inputs, the same on
every CPU); a file made for other weights is a ValueError that names the
command re-making it.
"""

from __future__ import annotations

import json
import os

import numpy as np

from controller.checks import check_positive

__all__ = ["FAMILY_EPS", "FAMILY_DEFAULT", "FAMILY_MEAN", "family_path", "prior_covariance", "prior_mean", "save_family",
           "load_family", "BALANCE_STATES", "member_states", "member_readout"]

#: eps of P0 = Cov(w) + eps I (docs/family-prior.md: the sweep it was chosen by)
FAMILY_EPS = 1e-3
#: the tasks that ship a family file beside their pre-trained weights
FAMILY_FILES = {"swingup": "family_swingup.npz", "balance": "family_balance.npz"}
#: whether a task's ``kbt`` starts from its family prior when not told (``MethodSettings.family`` None)
FAMILY_DEFAULT = {"swingup": True, "balance": False}
#: whether a task's head starts from the family's mean read-out (else the pre-trained one), each
#: chosen on tuning trials (docs/family-prior.md)
FAMILY_MEAN = {"swingup": False, "balance": True}


def family_path(task_name):
    """The shipped family file of a task, or None when the task has none."""
    from controller.model import PRETRAINED_PATH

    name = FAMILY_FILES.get(task_name)
    return None if name is None else os.path.join(os.path.dirname(PRETRAINED_PATH), name)


def prior_covariance(W, eps=FAMILY_EPS):
    """P0 = Cov(w_1..w_n) + eps I, (d_in + 1, d_in + 1), from read-outs W (n, d_in + 1)."""
    eps = check_positive("eps", eps)
    W = np.asarray(W, dtype=float)
    return np.cov(W.T) + eps * np.eye(W.shape[1])


def prior_mean(W):
    """w_bar = mean of the read-outs W (n, d_in + 1): the family's prior mean, (d_in + 1,)."""
    return np.asarray(W, dtype=float).mean(axis=0)


def save_family(path, W, plants, fingerprint, meta):
    """Write read-outs W (n, d_in + 1), their plants (n, 3) and the input map's fingerprint."""
    np.savez(path, readouts=np.asarray(W, float), plants=np.asarray(plants, float),
             fingerprint=np.array(fingerprint), meta=np.array(json.dumps(meta)))


def _shown(path):
    """``path`` relative to the working directory when it lies below it (the command a user types)."""
    rel = os.path.relpath(os.fspath(path))
    return os.fspath(path) if rel.startswith("..") else rel


def load_family(path, fingerprint):
    """The read-outs W of a family file made for the input map with ``fingerprint``;
    ValueError for another one or an unreadable file."""
    try:
        with np.load(path) as f:
            saved = str(f["fingerprint"])
            W = f["readouts"].astype(float)
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"{path}: not a readable family file ({e})") from None
    if saved != fingerprint:
        raise ValueError(f"{path}: the family was made for other pre-trained weights (fingerprint {saved}, "
                         f"expected {fingerprint}); re-make it with `kbt family --out {_shown(path)}`")
    return W


#: box states a balance member's read-out is fitted on
BALANCE_STATES = 2000


def member_states(member, expert, seed, episodes):
    """The states a family member's read-out is fitted on (``kbt family``): its expert's
    ``episodes`` episodes (swing-up) or ``BALANCE_STATES`` box states (balance), seeded by ``seed``."""
    from sim.world.data import sample_states, trajectory_states

    if member.name == "balance":
        return sample_states(BALANCE_STATES, np.random.default_rng(seed + 1))
    return trajectory_states(member, expert, seed + 1, episodes=episodes)


def member_readout(controller, member, expert, seed, episodes):
    """The least-squares read-out (d_in + 1,) of a member's expert through ``controller``'s
    inputs z~ = [z(s); 1], on ``member_states``."""
    S = member_states(member, expert, seed, episodes)
    Zt = np.hstack([controller.inputs(S), np.ones((len(S), 1))])
    return np.linalg.lstsq(Zt, expert.act(S), rcond=None)[0]
