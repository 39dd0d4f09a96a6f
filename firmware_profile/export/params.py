"""What an export holds: every number read from a Python controller.

``export_params(controller)`` reads a ``KBTController`` or ``RLSController``
(the ``kbt`` or ``rls`` method) and returns an ``ExportParams``: the frozen
parameters (the input map's weights and scalings, the head's settings, the
change detector's re-open prior) and the head's current posterior, which
``kbt_init`` / ``rls_init`` start from. Nothing here is a default of its own:
a setting tuned in ``HeadConfig`` or new pre-trained weights reach the C code
on the next export.

The head must be the L = 1 force head (``m``, ``P``, ``noise = [R, a, b, g]``
of ``ForceHead.kernel_arrays()``); its settings are
``ForceHead.kernel_settings()`` = (learn, floor, c^2, jitter, keep,
detector [k, k kappa, nu, h, h_hold], prior [v, a0, b0], P0); a head with a full
prior covariance (``ForceHead.prior_cov``) also exports it as ``prior_P``.

The valid ranges (``limits``: the state's ``X_MAX`` ... ``THETADOT_MAX`` from the
controller's ``state_max()``, the label's ``FORCE_MAX`` = ``LABEL_MAX``, and
``U_MAX``, the actuator's range that ``<prefix>_act_status`` limits the force
to) and the model's identity (``model_id``: 16 hex digits over the
controller's fingerprint -- its stored weights and input settings -- and the
head's settings as given, never a float computed here) go into the header.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ExportParams", "export_params", "model_identity", "METHODS", "DEFAULT_U_MAX"]

#: method name -> the controller class name it exports
METHODS = {"kbt": "KBTController", "rls": "RLSController"}


@dataclass
class ExportParams:
    """The numbers of one export (float64 here; the C code stores them as float32).

    Attributes
    ----------
    method : str
        ``"kbt"`` or ``"rls"``: the C prefix and the input map.
    ints : dict of str -> int
        Sizes and switches (``N1``, ``NP``; kbt: ``T``, ``D``, ``F``, ``L``, ...).
    scalars : dict of str -> float
        The head's settings (``JITTER``, ``ROBUST_C2``, ``DETECT_*``, ``PRIOR_*``, ...)
        and T_1's ``LN_EPS``, ``INV_SQRT_DH``.
    arrays : dict of str -> ndarray
        Frozen arrays (T_1's weights, each layer's matrix (in, out) row-major as one row, standardiser,
        state scaling) and the initial state ``init_m``, ``init_P`` (packed lower
        triangle by rows) and ``init_noise``.
    counts : dict of str -> int
        ``UPDATES``, ``DOWNWEIGHTED``, ``CHANGES`` of the exported head.
    limits : dict of str -> float
        The valid ranges: ``X_MAX``, ``XDOT_MAX``, ``THETA_MAX``, ``THETADOT_MAX``,
        ``FORCE_MAX`` (labels, N) and ``U_MAX`` (the limited force, N).
    model_id : str
        16 hex digits naming the model (``model_identity``).
    """

    method: str
    ints: dict = field(default_factory=dict)
    scalars: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    limits: dict = field(default_factory=dict)
    model_id: str = ""


def pack_lower(P):
    """The lower triangle of a square matrix by rows: ``P[i, j]`` at ``i (i + 1) / 2 + j``."""
    P = np.asarray(P, dtype=float)
    return np.concatenate([P[i, : i + 1] for i in range(P.shape[0])])


def unpack_lower(p, n):
    """The symmetric (n, n) matrix of a packed lower triangle (``pack_lower``'s inverse)."""
    p = np.asarray(p, dtype=float)
    if p.shape != (n * (n + 1) // 2,):
        raise ValueError(f"p: expected {n * (n + 1) // 2} packed entries but found shape {p.shape}")
    P = np.zeros((n, n))
    P[np.tril_indices(n)] = p
    return P + np.tril(P, -1).T


def _method_of(controller):
    name = getattr(controller, "name", None)
    if name not in METHODS or type(controller).__name__ != METHODS[name]:
        raise ValueError(f"controller: expected a kbt or rls controller but found {type(controller).__name__}"
                         + (f" (method {name!r})" if isinstance(name, str) else ""))
    return name


def _head_params(out, head):
    cfg = head.config
    if cfg.n_layers != 1 or cfg.covariance != "block":
        raise ValueError(f"controller: the C export needs the one-layer force head but found "
                         f"n_layers={cfg.n_layers}, covariance={cfg.covariance!r}")
    if cfg.change_reset != "covariance":
        raise ValueError(f"controller: the C export's change detector re-opens the covariance only; "
                         f"change_reset={cfg.change_reset!r} is not exported")
    m, P, noise = head.kernel_arrays()
    learn, floor, c2, jitter, keep, detector, prior, _ = head.kernel_settings()
    n1 = m.shape[0]
    out.ints.update(N1=n1, NP=n1 * (n1 + 1) // 2, LEARN_NOISE=int(bool(learn)))
    k, cap, nu, h, hold = (float(v) for v in detector)      # cap = k kappa
    v, a0, b0 = (float(x) for x in prior)
    out.scalars.update(NOISE_FLOOR=floor, ROBUST_C2=c2, JITTER=jitter, KEEP=keep, DETECT_K=k,
                       DETECT_CAP=cap, DETECT_NU=nu, DETECT_H=h, DETECT_HOLD=hold, PRIOR_VAR=v, PRIOR_A=a0, PRIOR_B=b0)
    out.arrays.update(init_m=np.asarray(m, float), init_P=pack_lower(P), init_noise=np.asarray(noise, float))
    # a full prior covariance (a family prior) is what a change re-opens to; v I needs no array
    out.ints.update(PRIOR_FULL=int(head.prior_cov is not None))
    if head.prior_cov is not None:
        out.arrays.update(prior_P=pack_lower(head.prior_cov))
    out.counts.update(UPDATES=int(head.n_updates), DOWNWEIGHTED=int(head.n_downweighted),
                      CHANGES=int(head.n_changes))


def _t1_params(out, controller):
    from controller.transformer_numba import FastInference, T1Weights

    W = T1Weights(*FastInference(controller.policy).weights)
    n_state, d = W.ev.shape
    f = W.w1.shape[2]
    if n_state != 4:
        raise ValueError(f"controller: the C export needs a 4-value state but T_1 has {n_state}")
    if d % W.n_heads:
        raise ValueError(f"controller: d_model {d} is not a multiple of n_heads {W.n_heads}")
    dh = d // W.n_heads
    out.ints.update(NS=n_state, T=n_state + 1, D=d, F=f, L=W.wqkv.shape[0], HEADS=W.n_heads, DH=dh,
                    FINAL_LN=int(bool(W.final_ln)), SKIP=int(bool(controller.skip)))
    out.scalars.update(LN_EPS=W.eps, INV_SQRT_DH=1.0 / np.sqrt(dh))

    def t(a):                     # (L, in, out) -> (L, in * out): each layer's W row-major
        return np.ascontiguousarray(a).reshape(a.shape[0], -1)

    # the packed [Wq | Wk | Wv] (L, d, 3d) and [bq | bk | bv] (L, 3d), split again: the C keeps
    # the three projections apart (its last block computes q for the query row only)
    wq, wk, wv = (W.wqkv[:, :, j * d:(j + 1) * d] for j in range(3))
    bq, bk, bv = (W.bqkv[:, j * d:(j + 1) * d] for j in range(3))

    arrays = dict(scale=W.scale, ev=W.ev, ep=W.ep, eq=W.eq, eqs=W.eqs, ln1g=W.ln1g, ln1b=W.ln1b,
                  wq=t(wq), bq=bq, wk=t(wk), bk=bk, wv=t(wv), bv=bv, wo=t(W.wo), bo=W.bo,
                  ln2g=W.ln2g, ln2b=W.ln2b, w1=t(W.w1), b1=W.b1, w2=t(W.w2), b2=W.b2)
    if W.final_ln:
        arrays.update(lnfg=W.lnfg[0], lnfb=W.lnfb[0])   # (1, d): one layer's gains
    arrays.update(h_mean=controller.h_mean, h_T=np.reshape(np.transpose(controller.h_T), -1), s_inv=controller.s_inv)
    out.arrays.update({k: np.asarray(v, dtype=float) for k, v in arrays.items()})
    n1 = out.ints["N1"]
    if n1 != d + 1 + (n_state if controller.skip else 0):
        raise ValueError(f"controller: the head has {n1} inputs but T_1 and skip give "
                         f"{d + 1 + (n_state if controller.skip else 0)}")


#: the actuator's range (N) the limited force is clipped to, unless the caller names one
#: (``kbt export`` passes the plant's u_max; the cart-pole's default is 30 N)
DEFAULT_U_MAX = 30.0
#: head settings that do not change what the C code computes (it is float32 and plain C)
_NOT_MODEL = ("backend", "dtype")


def model_identity(controller, limits):
    """16 hex digits naming the exported model: the controller's fingerprint (its stored
    weights and input settings, ``ForceController.fingerprint``), the head's settings as
    given (``HeadConfig``, not the kernel settings computed from them) and the valid
    ranges. Identity from inputs: the same on every machine (``controller.identity``)."""
    from dataclasses import asdict

    from controller.identity import digest

    head = {k: v for k, v in asdict(controller.head.config).items() if k not in _NOT_MODEL}
    return digest({"export": "c99", "method": controller.name, "fingerprint": controller.fingerprint(),
                   "head": head, "limits": {k: repr(float(v)) for k, v in limits.items()}})


def _limits(controller, u_max):
    from controller.force_controller import LABEL_MAX

    smax = controller.state_max()
    if not (np.isfinite(u_max) and u_max > 0):
        raise ValueError(f"u_max: expected a positive finite force (N) but found {u_max!r}")
    return dict(X_MAX=float(smax[0]), XDOT_MAX=float(smax[1]), THETA_MAX=float(smax[2]),
                THETADOT_MAX=float(smax[3]), FORCE_MAX=float(LABEL_MAX), U_MAX=float(u_max))


def export_params(controller, u_max=DEFAULT_U_MAX):
    """The ``ExportParams`` of a ``kbt`` or ``rls`` controller (as it is now: its current head);
    ``u_max`` (N) the actuator's range the limited force (``<prefix>_act_status``) is clipped to.

    Raises ValueError for another controller, a head with more than one layer,
    or a non-finite number anywhere in what would be exported.
    """
    method = _method_of(controller)
    out = ExportParams(method=method)
    out.limits = _limits(controller, u_max)
    out.model_id = model_identity(controller, out.limits)
    _head_params(out, controller.head)
    if method == "kbt":
        _t1_params(out, controller)
    else:
        out.arrays["s_inv"] = np.asarray(controller.s_inv, dtype=float)
        if out.ints["N1"] != 5:
            raise ValueError(f"controller: rls needs 5 head inputs but found {out.ints['N1']}")
    for name, a in out.arrays.items():
        if not np.all(np.isfinite(a)):
            raise ValueError(f"controller: {name} has non-finite values; nothing to export")
    for name, v in out.scalars.items():
        if not np.isfinite(v):
            raise ValueError(f"controller: setting {name} is not finite ({v}); nothing to export")
    return out
