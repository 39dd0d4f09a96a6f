"""Controllers by name, as the command line and the experiments spell them.

``lqr`` (the LQR gain), ``expert`` (the task's expert: LQR for balancing,
energy swing-up for swing-up), ``pretrained``, ``kbt`` (the Gaussian force head, the default),
``kbt-softmax`` (the paper's softmax head), ``rls`` (recursive least squares
on the state with the SOURCE LQR gain as prior), ``retrain-C`` (warm-started
retraining with a FIFO memory of C samples, e.g. ``retrain-10``), ``blob-C``
(BLoB with the same memory rules), and ``kbt-c`` / ``rls-c``: ``kbt`` / ``rls``
exported to C99 and run in the compiled export (``firmware_profile.c_controller``;
float32, the firmware's arithmetic; docs/firmware-export.md).

``kbt`` on swing-up starts from the family prior covariance shipped beside the
swing-up weights (the mean stays the pre-trained read-out); on balance the
shipped family prior (mean and covariance) is an option, ``MethodSettings(family=True)``
(``family_prior``, docs/family-prior.md); otherwise the prior is the
pre-trained read-out and v I. On a named weight set with a learned prior
(``controller.weight_sets``, e.g. ``weights="swingup-alpaca"``) ``kbt`` starts
from that prior's mean and covariance with the set's fixed head noise
(``prior_set``, ``kbt_head``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import os

from controller.kalman_head import HeadConfig
from controller.weight_sets import learned_prior, weight_set
from sim.loops.family_prior import FAMILY_EPS
from sim.world.cartpole import SOURCE, CartPoleParams
from sim.world.task import as_task

__all__ = ["MethodSettings", "make_controller", "is_learner", "parse_method", "task_weights", "family_prior",
           "has_robust_head", "prior_set", "kbt_head"]

BASE_METHODS = ("lqr", "expert", "pretrained", "kbt", "kbt-softmax", "rls", "kbt-c", "rls-c", "retrain", "blob")
#: methods that run a Python controller's C export: the method they export
C_METHODS = {"kbt-c": "kbt", "rls-c": "rls"}
MEMORY_METHODS = ("retrain", "blob")


@dataclass(frozen=True)
class MethodSettings:
    """Everything a controller factory may need besides the method's name."""

    weights: str | None = None              # transformer weights: a file or a shipped set's name (None: the task's file)
    head: HeadConfig = field(default_factory=HeadConfig)          # kbt and rls (Gaussian force head)
    softmax_head: HeadConfig = field(default_factory=lambda: HeadConfig(output="softmax"))  # kbt-softmax
    sigma_data: float = 0.0                 # label-noise variance the heads assume (N^2) where it is known
    epochs: int = 100                       # retraining: epochs over the memory per sample
    lr: float = 1e-3                        # retraining: Adam learning rate
    batch: int = 32                         # retraining and BLoB: minibatch
    blob_lr: float = 3e-3                   # BLoB: Adam learning rate (docs/blob.md)
    blob_rank: int = 4                      # BLoB: LoRA rank r
    blob_prior_std: float = 1.0             # BLoB: sigma_p
    blob_samples: int = 10                  # BLoB: weight samples at inference
    blob_kl_data: str = "seen"              # BLoB: KL per sample seen or per sample in memory
    lqr_design: CartPoleParams | None = None  # lqr, expert: the plant the expert is designed for
    family: bool | None = None              # kbt: the task's family prior (``family_prior``); None: FAMILY_DEFAULT
    family_eps: float = FAMILY_EPS          # kbt: eps of the family prior P0 = Cov(w) + eps I
    family_mean: bool | None = None         # kbt: start from the family's mean read-out; None: the task's FAMILY_MEAN
    set_noise: bool = True                  # kbt on a weight set with a learned prior: its fixed head noise (``kbt_head``)


def task_weights(task):
    """The shipped pre-trained weights of a task (``None``: the balance file ``load_pretrained`` finds)."""
    if as_task(task).name == "swingup":
        from controller.model import PRETRAINED_PATH

        return os.path.join(os.path.dirname(PRETRAINED_PATH), "pretrained_swingup.npz")
    return None


def _prior_head(h):
    """Whether head settings ``h`` are the shape a family or learned prior is made for: the default
    ``prior_var``, inputs 'features+state', one layer, block covariance."""
    return (h.prior_var == HeadConfig().prior_var and h.inputs == "features+state" and h.n_layers == 1
            and h.covariance == "block")


def prior_set(settings):
    """The named weight set (``controller.weight_sets``) whose learned prior ``kbt`` starts from
    under ``settings``, or None: weights that are not a set with a learned prior,
    ``settings.family`` False (the pre-trained read-out and v I), or a head the prior was not made for."""
    ws = weight_set(settings.weights)
    if ws is None or ws.prior_file is None or settings.family is False or not _prior_head(settings.head):
        return None
    return ws


def kbt_head(settings):
    """(head settings, sigma_data) ``kbt`` is built with: ``settings.head`` and ``settings.sigma_data``,
    except on a weight set whose learned prior applies (``prior_set``) with ``settings.set_noise``:
    there the head's noise is known and fixed at the set's ``head_noise`` (the misfit of a plant
    outside the training family, tuned with that prior) plus ``sigma_data`` (label noise, N^2)."""
    ws = prior_set(settings)
    if ws is None or ws.head_noise is None or not settings.set_noise:
        return settings.head, settings.sigma_data or None
    return replace(settings.head, noise="known", obs_noise=ws.head_noise + settings.sigma_data), None


def family_prior(controller, task, settings):
    """The prior ``(mean or None, P0)`` of ``kbt`` on ``task``: a named weight set's learned prior
    (``prior_set``: mean and covariance in ``controller``'s head inputs), or the task's family file
    (``sim.loops.family_prior``, docs/family-prior.md; mean None: the pre-trained read-out),
    or None for the pre-trained read-out and v I: a task without a family file,
    ``settings.family`` off (None: the task's ``FAMILY_DEFAULT``), or a head the family was not made for (other weights, a
    ``prior_var`` other than the default, inputs other than 'features+state', more than one layer)."""
    from sim.loops.family_prior import (FAMILY_DEFAULT, FAMILY_MEAN, family_path, load_family, prior_covariance,
                                        prior_mean)

    ws = prior_set(settings)
    if ws is not None:
        mean, P0, _ = learned_prior(controller, ws.name)
        return mean, P0
    name = as_task(task).name
    path = family_path(name)
    wanted = FAMILY_DEFAULT.get(name, False) if settings.family is None else settings.family
    if path is None or not wanted or settings.weights is not None or not _prior_head(settings.head):
        return None
    W = load_family(path, controller.fingerprint())
    use_mean = FAMILY_MEAN[name] if settings.family_mean is None else settings.family_mean
    return (prior_mean(W) if use_mean else None), prior_covariance(W, settings.family_eps)


def parse_method(method):
    """``"retrain-25"`` -> ``("retrain", 25)``; ``"kbt"`` -> ``("kbt", None)``."""
    if not isinstance(method, str):
        raise ValueError(f"method: expected a string but found {type(method).__name__}")
    if method in BASE_METHODS and method not in MEMORY_METHODS:
        return method, None
    base, _, arg = method.partition("-")
    if base not in BASE_METHODS:
        raise ValueError(f"method: expected one of {', '.join(METHOD_NAMES)} but found {method!r}")
    if base in MEMORY_METHODS:
        if not arg.isdigit() or int(arg) < 1:
            raise ValueError(f"method: expected {base}-C with an integer capacity C >= 1 but found {method!r}")
        return base, int(arg)
    if arg:
        raise ValueError(f"method: {base!r} takes no argument but found {method!r}")
    return base, None


METHOD_NAMES = ("lqr", "expert", "pretrained", "kbt", "kbt-softmax", "rls", "kbt-c", "rls-c", "retrain-C", "blob-C")


def is_learner(method):
    return parse_method(method)[0] in ("kbt", "kbt-softmax", "rls", *C_METHODS) + MEMORY_METHODS


#: methods with the Gaussian force head: a robust weight that down-weights far labels and a change detector
ROBUST_METHODS = ("kbt", "rls", *C_METHODS)


def has_robust_head(name):
    """Whether method ``name`` (or an experiment variant of it: ``kbt+uncertain``, ``rls@iid``)
    down-weights labels and detects changes; False for every other method and for unknown names."""
    try:
        return parse_method(name.split("@")[0].split("+")[0])[0] in ROBUST_METHODS
    except ValueError:
        return False


def make_controller(method, task, settings: MethodSettings | None = None, seed=0):
    """A fresh controller for ``method`` on ``task`` (a ``Task``, or the
    ``CartPoleParams`` of a plant to balance).

    The LQR gain and the task's expert are designed for ``settings.lqr_design``
    (default: the task's plant); learning controllers start from the task's
    pre-trained transformer (``settings.weights`` overrides it).
    """
    from controller.lqr import LQRController
    from controller.model import load_pretrained

    task = as_task(task)
    params = task.params
    s = MethodSettings() if settings is None else settings
    base, capacity = parse_method(method)
    if base in C_METHODS:
        from firmware_profile.c_controller import CController

        try:
            return CController(make_controller(C_METHODS[base], task, s, seed=seed))
        except RuntimeError as e:           # no C compiler, or the export did not build
            raise ValueError(f"method {method}: {e}") from None
    if base == "lqr":
        return LQRController(s.lqr_design or params)
    if base == "expert":
        from sim.world.experts import expert_for

        return expert_for(task, s.lqr_design)
    if base == "rls":
        from controller.rls import RLSController

        return RLSController(LQRController(SOURCE).K, s.head, sigma_data=s.sigma_data or None)
    policy = load_pretrained(s.weights if s.weights is not None else task_weights(task))
    trained_for = policy.meta.get("task", "balance")       # files without the key predate swing-up
    if trained_for != as_task(task).name:
        raise ValueError(f"weights: {s.weights or 'the file'} was pre-trained for the {trained_for} task, "
                         f"not {as_task(task).name}")
    if base == "pretrained":
        return policy
    if base == "kbt":
        from controller.kbt import KBTController

        c = KBTController(policy, *kbt_head(s))
        prior = family_prior(c, task, s)       # the family file is checked against c's input map
        if prior is not None:
            c.use_prior(*prior)
        return c
    if base == "kbt-softmax":
        from controller.kbt_softmax import SoftmaxKBTController

        return SoftmaxKBTController(policy, s.softmax_head, sigma_data=s.sigma_data)
    if base == "blob":
        from controller.blob import BLoBController

        return BLoBController(policy, capacity=capacity, epochs=s.epochs, lr=s.blob_lr, batch=s.batch,
                              rank=s.blob_rank, prior_std=s.blob_prior_std, n_samples=s.blob_samples,
                              kl_data=s.blob_kl_data, seed=seed)
    from controller.retrain import RetrainController

    return RetrainController(policy, capacity=capacity, epochs=s.epochs, lr=s.lr, batch=s.batch, seed=seed)


#: the region read-out's settings, chosen on swing-up tuning trials (docs/region-readout.md): labels
#: away from upright count 30x noisier unless e^2 / (q + R) > 9
REGION_FAR_WEIGHT, REGION_FAR_SURPRISE = 30.0, 9.0
#: ``kbt@alpaca-region``'s robust weight c (the head's is 8): a label beyond 2 sigma of the prediction
#: counts less, so that the first catch's few labels do not unlearn a working catch (docs/region-readout.md)
REGION_ROBUST = 2.0


def make_region_kbt(task, weights, far_weight=REGION_FAR_WEIGHT, far_surprise=REGION_FAR_SURPRISE, robust=None,
                    far_run=1, rest_weight=1.0, rest_against=False):
    """``RegionKBTController`` on the weight set ``weights`` (one with a learned prior): its
    transformer, fixed head noise and learned prior, each region starting from that prior;
    near upright is within the task's swing-up expert's hand-over angle. ``robust``: the head's
    robust weight c (None: the head settings' own); ``far_run``, ``rest_weight``,
    ``rest_against``: as the controller's (the defaults: off)."""
    from controller.region_kbt import RegionKBTController
    from sim.world.experts import expert_for

    s = MethodSettings(weights=weights)
    expert = expert_for(as_task(task))
    catch = getattr(expert, "theta_lqr", None)
    if catch is None:
        raise ValueError(f"task: the region read-out needs a swing-up expert's hand-over angle; "
                         f"{as_task(task).name} has none")
    policy = make_controller("pretrained", task, s)    # the set's transformer, checked against the task
    head, sigma_data = kbt_head(s)
    if robust is not None:
        head = replace(head, robust=robust)
    c = RegionKBTController(policy, head, sigma_data, catch_angle=catch, far_weight=far_weight,
                            far_surprise=far_surprise, far_run=far_run, rest_weight=rest_weight,
                            rest_against=rest_against)
    # the learned prior of KBT's [z; 1] (kbt_prior reads only the feature standardiser, c's own)
    m0, P0, _ = learned_prior(c, weights)
    c.use_region_prior(m0, P0)
    return c
