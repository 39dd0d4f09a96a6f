"""Named weight sets: pre-trained transformer weights shipped in ``controller/data/`` with
the head settings they were measured with.

A weight set is selected by name wherever weights are (``load_pretrained``,
``MethodSettings(weights=...)``, ``kbt run --weights NAME``). Besides the weights file it
may carry a *learned prior* of the KBT head (``prior_file``) and a fixed head noise
(``head_noise``): a KBT controller built on the set starts from that prior's mean and
covariance, with the head's observation noise fixed at ``head_noise``.

``swingup-alpaca``: T_1 and the head's prior (m0, P0, R) trained on the ALPaCA objective
over 40 swing-up plants (``sim.pretraining.alpaca``; docs/family-pretraining.md, "ALPaCA
objective"), re-made by ``python tools/alpaca.py train --out
controller/data/pretrained_swingup_alpaca.npz --steps 15000`` (the prior beside it as
``OUT.prior.npz``; the other settings are the tool's defaults, recorded in the weights'
``alpaca`` metadata; about 20 minutes on one core). The prior file holds m0, the
lower-triangular L0 of P0 = L0 L0^T + ``P0_EPS`` I and log R in the training
coordinates z~ = [(h - mu) t; s s_inv; 1] (``Standardiser``: the feature standardiser
of the weights training started from); ``kbt_prior`` carries (m0, P0) over to the KBT
head's own inputs. Its head noise, R = 3 N^2 fixed (not learned online), was chosen on
swing-up tuning trials 100..119 (R in 0.18, 1, 3, 10; learned noise): the learned R
(0.18 N^2) is the training family's and too small for a plant outside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources

import numpy as np

from controller.features import feature_standardiser, state_inverse_scale

__all__ = ["WeightSet", "WEIGHT_SETS", "Standardiser", "kbt_prior", "weight_set", "weights_path", "check_weights",
           "read_prior", "learned_prior", "P0_EPS"]

#: eps of P0 = L0 L0^T + eps I (the learned prior's training coordinates are standardised)
P0_EPS = 1e-4


@dataclass(frozen=True)
class WeightSet:
    """A named set of shipped weights.

    name : what ``--weights`` and ``MethodSettings.weights`` take
    task : the task the weights are pre-trained for
    file : the weights file in ``controller/data/``
    prior_file : the learned prior of the KBT head beside it (None: none)
    head_noise : the KBT head's fixed observation noise R (N^2) with the learned prior (None: the head's own)
    about : one line: what the weights are and where they are measured
    """

    name: str
    task: str
    file: str
    prior_file: str | None = None
    head_noise: float | None = None
    about: str = ""

    @property
    def path(self):
        """The weights file."""
        return _data(self.file)

    @property
    def prior_path(self):
        """The learned prior's file (None: the set has none)."""
        return None if self.prior_file is None else _data(self.prior_file)


def _data(name):
    return str(resources.files("controller") / "data" / name)


#: name -> the shipped weight set
WEIGHT_SETS = {
    "swingup-alpaca": WeightSet(
        name="swingup-alpaca", task="swingup", file="pretrained_swingup_alpaca.npz",
        prior_file="pretrained_swingup_alpaca.npz.prior.npz",
        # tuned on swing-up tuning trials 100..119 (docs/family-pretraining.md, "Closed loop on TARGET")
        head_noise=3.0,
        about="swing-up T_1 and KBT prior trained on the ALPaCA objective over 40 swing-up plants; "
              "KBT starts from the learned prior with the head noise fixed at R = 3 N^2 (docs/family-pretraining.md)"),
}


def weight_set(weights):
    """The ``WeightSet`` named ``weights``, or None when ``weights`` is not a set's name (a path, or None)."""
    return WEIGHT_SETS.get(weights) if isinstance(weights, str) else None


def weights_path(weights):
    """The file of ``weights``: a set's name gives its shipped file, anything else is a path
    and is returned as it is (a name wins over a file of the same name: give ``./NAME``)."""
    ws = weight_set(weights)
    return weights if ws is None else ws.path


def check_weights(weights, name="weights"):
    """``weights`` is a set's name or an existing file; ValueError naming ``name`` and the sets otherwise."""
    if weights is None or weight_set(weights) is not None:
        return weights
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"{name}: expected a weights file or one of {', '.join(WEIGHT_SETS)} but found "
                         f"{type(weights).__name__}")
    if not os.path.isfile(weights):
        raise ValueError(f"{name}: expected a weights file or one of {', '.join(WEIGHT_SETS)} but found "
                         f"{os.fspath(weights)!r} (no such file)")
    return weights


@dataclass(frozen=True)
class Standardiser:
    """The fixed input map's constants of a learned prior: z~ = [(h - mu) * t; s * s_inv; 1]
    (t: the diagonal of T_s)."""

    mu: np.ndarray
    t: np.ndarray
    s_inv: np.ndarray

    @classmethod
    def of(cls, policy):
        """The feature standardiser and state scaling KBT would use for ``policy``."""
        mu, T = feature_standardiser(policy)
        return cls(mu, np.diag(T).copy(), state_inverse_scale(policy))


def kbt_prior(controller, prior, std, eps=P0_EPS):
    """The learned prior in the KBT head's inputs [h'; s_norm; 1] of ``controller`` (whose
    standardiser (mu_f, T_f) belongs to the trained weights): (m, P0, R).

    z~_kbt = A z~ with A = [[T_f diag(1/t), 0, T_f (mu - mu_f)], [0, I, 0], [0, 0, 1]], so
    m_kbt = A^-T m0 and P_kbt = A^-T P0 A^-1."""
    d = std.mu.size
    n = d + 5
    A = np.eye(n)
    A[:d, :d] = controller.h_T / std.t[None, :]
    A[:d, -1] = controller.h_T @ (std.mu - controller.h_mean)
    Ai = np.linalg.inv(A)
    L = prior["alpaca.L"]
    P0 = L @ L.T + eps * np.eye(n)
    P = Ai.T @ P0 @ Ai
    return Ai.T @ prior["alpaca.m0"], 0.5 * (P + P.T), float(np.exp(prior["alpaca.rho"][0]))


def read_prior(path):
    """(prior, std) of a learned-prior file: ``prior`` with ``alpaca.m0``, ``alpaca.L``,
    ``alpaca.rho``; ``std`` the ``Standardiser`` of its training coordinates."""
    try:
        with np.load(path) as f:
            std = Standardiser(f["mu"], f["t"], f["s_inv"])
            prior = {k: f[k] for k in ("alpaca.m0", "alpaca.L", "alpaca.rho")}
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"{path}: not a readable learned-prior file ({e})") from None
    return prior, std


def learned_prior(controller, name):
    """(m, P0, R) of the weight set ``name``'s learned prior in ``controller``'s head inputs
    (``kbt_prior``; R: the prior's learned noise, not the set's ``head_noise``); ValueError
    for a set without one."""
    ws = weight_set(name)
    if ws is None or ws.prior_path is None:
        raise ValueError(f"weights: {name!r} has no learned prior (sets with one: "
                         f"{', '.join(n for n, s in WEIGHT_SETS.items() if s.prior_file)})")
    return kbt_prior(controller, *read_prior(ws.prior_path))
