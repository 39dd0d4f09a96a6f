"""What every controller built on the Gaussian force head shares.

A subclass supplies ``inputs(states) -> Z`` (the head's inputs, NumPy) and the
fused Numba calls ``_observe_kernel`` / ``_act_kernel`` (and, if it has one,
``_tick_kernel``) on the argument groups ``_bind`` packs;
this class gives them ``act``, ``observe``, ``step``, ``predict``, ``predict_split``,
the state files and the JIT warm-up.

    act(s)        the predictive mean force mu(s)
    step(s, f)    act on s, then learn its label f: one on-policy tick, mu(s) before the update
    act_split(s)  (mu, q) at one state: the action and its epistemic variance
    predict(s)    (mu, q + R): mean and total predictive variance (N^2)
    predict_split (mu, R, q): aleatoric (label noise) and epistemic (weights) parts
    observe(s, f) one update (True: learned; a far label with a small robust weight)
"""

from __future__ import annotations

from collections import deque

import numpy as np

from controller import force_numba as fn
from controller.checks import as_float_array
from controller.force_head import ForceHead
from controller.identity import check_close, digest

__all__ = ["ForceController", "STATE_RANGE", "LABEL_MAX", "RUN_MAX"]

#: valid states: ``|s_i| <= STATE_RANGE`` box scales (box_i / sqrt 3, the head's state
#: normalisation) per component; a state outside is refused (``act`` NaN, ``observe``
#: a ValueError), as the C export refuses it. A thousand box scales is far beyond any
#: physical cart-pole state, and near enough that no float32 intermediate can overflow.
STATE_RANGE = 1000.0
#: valid labels: ``|expert force| <= LABEL_MAX`` (N); beyond, a garbled frame, refused
LABEL_MAX = 1.0e4
#: under ``change_reset='prior'``: the most labels of the change detector's run kept to learn
#: again after a detected change, before the detecting one (the detector fires about 10
#: labels after a change)
RUN_MAX = 64


_FLOAT64 = np.dtype(np.float64)
_CHANGED = fn.CHANGED


def as_state(state):
    """The state as a float64 (4,) array; the common case costs three cheap checks
    (NumPy's float64 dtype is one object: ``is`` instead of ``==``, ~35 ns less;
    an equal dtype that is another object takes the checked path)."""
    if type(state) is np.ndarray and state.dtype is _FLOAT64 and state.shape == (4,):
        return state
    return as_float_array("state", state, (4,), finite=False)


class ForceController:
    """Base class: a force head over inputs derived from the state."""

    name = "force"
    head: ForceHead

    def inputs(self, states):  # pragma: no cover - interface
        """The head's inputs for states (N, 4) -> (N, d); each controller defines its own."""
        raise NotImplementedError

    def _identity(self):  # pragma: no cover - interface
        """(settings, named arrays) that define the input map: stored or given values only
        (``controller.identity.digest``), never a float computed here."""
        raise NotImplementedError

    def _input_arrays(self):  # pragma: no cover - interface
        """(params, buffers) of the input map z(s): the lists ``memory_arrays`` extends."""
        raise NotImplementedError

    def memory_arrays(self):
        """The arrays a device running this controller holds, by role (lists of ndarrays):

        * ``params``: frozen -- the input map's weights and scalings, and the
          change detector's settings and re-open prior (with a full prior
          covariance, that matrix too);
        * ``state``: what learning changes -- the weight posterior (mean and
          covariance of every layer) and the noise state ``[R, a, b, g]``;
        * ``buffers``: work arrays of the fused kernels (z~, P z~, and the input map's).

        The arrays are the controller's own (not copies); ``firmware_profile.memory``
        sums their sizes.
        """
        head = self.head
        params, buffers = self._input_arrays()
        return {"params": list(params) + self._frozen_head_arrays(),
                "state": [a for layer in head.core.layers for a in (layer.M, layer.S)] + [head.noise],
                "buffers": list(buffers) + self._kernel_work()}

    def _frozen_head_arrays(self):
        """The head's frozen arrays the kernels read besides the input map's: the change
        detector's settings, the re-open prior and, when it is not v I, the prior covariance."""
        head = self.head
        return [head.detector, head.reopen_to] + ([] if head.prior_cov is None else [head.prior_cov])

    def _kernel_work(self):
        """The head's work arrays the kernels use: z~ and P z~."""
        return list(self.head.work_arrays())

    # ------------------------------------------------------------ valid inputs
    def state_max(self):
        """The valid range of a state: ``|s_i| <= state_max()[i]`` (4,), ``STATE_RANGE`` box
        scales per component, rounded to float32 (the C export's ``KBT_X_MAX`` ...
        ``KBT_THETADOT_MAX``: both refuse the same float32 values)."""
        return (STATE_RANGE / np.asarray(self.s_inv, dtype=float)).astype(np.float32).astype(float)

    def _in_range(self, s):
        """True when every component of the state s (4,) is within ``state_max`` (False for NaN)."""
        return self._within(s.tolist())

    def _within(self, x):
        """``_in_range`` of the state as four Python floats ``x`` (what the kernels take)."""
        lim = self.__dict__.get("_state_lim")
        if lim is None:
            lim = self._state_lim = tuple(float(v) for v in self.state_max())
        return abs(x[0]) <= lim[0] and abs(x[1]) <= lim[1] and abs(x[2]) <= lim[2] and abs(x[3]) <= lim[3]

    # ------------------------------------------------------------ acting
    def act(self, states):
        """Forces for states (N, 4) -> (N,), or one state (4,) -> float; NaN for a state
        that is not finite or outside ``state_max`` (refused, as the C export's ``act``)."""
        one = type(states) is np.ndarray and states.dtype is _FLOAT64 and states.shape == (4,)
        if one or np.ndim(states) == 1:     # the common case first: np.ndim costs more than the checks
            s = states if one else as_state(states)
            x = s.tolist()       # Python floats: Numba types a float at once, a NumPy scalar slowly
            if not self._within(x):
                return float("nan")
            if self._kernels:
                return self._act_kernel(s, x)
            return float(self.head.mean(self._inputs_one(s)[None, :])[0])
        S = as_float_array("states", states, (None, 4))
        ok = np.all(np.abs(S) <= self.state_max(), axis=1)
        if ok.all():
            return self.head.mean(self.inputs(S))
        out = np.full(S.shape[0], np.nan)
        if ok.any():
            out[ok] = self.head.mean(self.inputs(S[ok]))
        return out

    def act_split(self, state):
        """(mean force, epistemic variance q) at one state (4,), from one input map: the
        deployed loop's action and the size of its probing force (``sim.deploy``). With the
        Numba kernels, q = z~^T P z~ on the z~ the fused ``act`` kernel just wrote."""
        s = as_state(state)
        if self._kernels:
            mu = self._act_kernel(s, s.tolist())
            zt, P = self._zt, self._head_state[1]
            return float(mu), max(float(zt @ (P @ zt)), 0.0)
        mu, _, q = self.predict_split(s[None, :])
        return float(mu[0]), float(q[0])

    def predict_split(self, states):
        """Mean force, aleatoric variance R and epistemic variance q per state, each (N,)."""
        S = as_float_array("states", np.atleast_2d(states), (None, 4))
        return self.predict_split_inputs(self.inputs(S))

    def predict_split_inputs(self, Z):
        """``predict_split`` from precomputed head inputs Z (N, d_in)."""
        mean, q = self.head.predict(Z)
        return mean, np.full_like(mean, self.head.noise_var), q

    def shift_bound(self, states, reopened=False):
        """(c / 2) sqrt(q) per state (N,): the most one label, however far, can move the
        predicted force at each state (docs/robust-update.md); inf without a robust weight.
        ``reopened``: q under the re-opened prior covariance, the bound for a label that
        completes a detected change (it is learned after the re-open; L = 1)."""
        c = self.head.config.robust
        if reopened:
            q = self.head.reopened_variance(self.inputs(np.atleast_2d(states)))
        else:
            _, _, q = self.predict_split(states)
        return 0.5 * c * np.sqrt(q) if c > 0 else np.full_like(q, np.inf)

    def predict(self, states):
        """(mean force, total predictive variance q + R) per state."""
        mean, ale, epi = self.predict_split(states)
        return mean, ale + epi

    # ------------------------------------------------------------ learning
    @property
    def n_updates(self):
        """Number of labels learned so far."""
        return self.head.n_updates

    @property
    def n_downweighted(self):
        """Labels learned with a robust weight below one half (innovation beyond c sigma)."""
        return self.head.n_downweighted

    @property
    def n_changes(self):
        """Changes of the plant or the noise the head detected (each re-opened its posterior)."""
        return self.head.n_changes

    @property
    def noise_var(self):
        """The observation-noise variance in use (N^2), learned or known."""
        return self.head.noise_var

    def observe(self, state, expert_force):
        """One closed-form update from (state, expert force).

        Returns True (learned: a label far from the prediction with a small
        robust weight); a non-finite state or label, a state outside ``state_max`` or a
        label beyond ``LABEL_MAX`` is a ValueError and changes nothing (what the C export
        refuses).
        """
        s, x, y = self._valid_pair(state, expert_force)
        if self._kernels:
            status = self._observe_kernel(s, x, y)
        else:
            z = self._inputs_one(s)
            status = self.head.update_reference(z, y, self._noise_scale(s, z, y))
        if self._restarts:
            self._follow_run(s, y, status)
        return self.head.count(status)

    def step(self, state, expert_force):
        """Act on a state, then learn its label: the force ``act(state)`` gave before the update.

        One on-policy control tick (act on s, and the expert's force at s arrives as
        its label) as one call: the input map runs once for both (docs/tick.md), the same
        force and posterior as ``act`` then ``observe``. A state or label ``observe``
        refuses is a ValueError and changes nothing.
        """
        s, x, y = self._valid_pair(state, expert_force)
        if self._kernels:
            u, status = self._tick_kernel(s, x, y)
        else:
            z = self._inputs_one(s)
            u = float(self.head.mean(z[None, :])[0])
            status = self.head.update_reference(z, y, self._noise_scale(s, z, y))
        if self._restarts:
            self._follow_run(s, y, status)
        self.head.count(status)
        return u

    def _learn_again(self, s, y):
        """One more update from a label already taken in (a state ``observe`` accepted): its status."""
        if self._kernels:
            x = s.tolist()
            return self._observe_kernel(s, x, y)
        z = self._inputs_one(s)
        return self.head.update_reference(z, y, self._noise_scale(s, z, y))

    def _follow_run(self, s, y, status):
        """Under ``change_reset='prior'``, after each update: keep the change detector's run, the
        labels since its statistic g was last 0 (at most ``RUN_MAX``, the latest). A change
        starts where the run does (the CUSUM's estimate of the change point), so when a label
        completes a detection the head starts afresh from its prior and learns the run and that
        label again, in order, without counting them twice. The replay adds to g from 0 again;
        if it passes the threshold once more, the covariance re-opens as the default reset does
        and the run starts over there. State files do not keep the run: a head loaded from one
        (or given a new prior) starts with an empty run."""
        if status != _CHANGED:
            self._extend_run((s.copy(), y))
            return
        run = [*self._run, (s.copy(), y)]
        self._run.clear()
        self.head.restart()
        for label in run:
            self._learn_again(*label)
            self._extend_run(label)

    def _extend_run(self, label):
        """The run after an update: ``label`` joins it while g > 0; g = 0 (a label that fits, or
        a detection, which sets g to 0) ends it."""
        if self.head.noise[3] > 0.0:
            self._run.append(label)
        else:
            self._run.clear()

    def _valid_pair(self, state, expert_force):
        """(s, s as four floats, y) of a (state, label) ``observe`` accepts; else ``_refuse``'s ValueError."""
        s = as_state(state)
        if type(expert_force) is float:
            y = expert_force
        else:
            try:
                y = float(expert_force)
            except (TypeError, ValueError):
                raise ValueError(f"expert_force: expected a real number but found {expert_force!r}") from None
        x = s.tolist()
        if not (self._within(x) and abs(y) <= LABEL_MAX):
            self._refuse(s, y)
        return s, x, y

    def _noise_scale(self, s, z, y):
        """How many times noisier than R the label y at state s (inputs z) counts (the NumPy
        path; 1 here, a subclass may weight labels by where they come from)."""
        return 1.0

    def _inputs_one(self, s):
        """z (d_in,) at one state (4,) for the NumPy path, computed once per state: the inputs
        of the last state asked for are kept and reused while the state is the same bit for bit
        (z depends on the state and the frozen input map only; docs/tick.md)."""
        key = s.tobytes()
        if key != getattr(self, "_z_key", None):
            self._z_one = self.inputs(s[None, :])[0]
            self._z_key = key
        return self._z_one

    def _refuse(self, s, y):
        """The ValueError of a refused (state, label): not finite, or outside the valid range."""
        if not (np.isfinite(s).all() and np.isfinite(y)):
            raise ValueError("state or label: expected finite values but found NaN or inf")
        if not self._in_range(s):
            raise ValueError(f"state: expected |s_i| <= {STATE_RANGE:g} box scales "
                             f"({', '.join(f'{v:.4g}' for v in self.state_max())}) but found {s.tolist()}")
        raise ValueError(f"expert_force: expected |f| <= {LABEL_MAX:g} N but found {y!r}")

    def warm_up(self):
        """Compile (or load) the Numba kernels on a throwaway copy, so the first
        real call is not charged the JIT time (the detector's run is set aside too)."""
        saved, run = self.head, self._run
        self._adopt(saved.copy())
        try:
            self.observe(np.zeros(4), 0.0)
            self.act(np.zeros(4))
        finally:
            self._adopt(saved)
            self._run = run

    # ------------------------------------------------------------ files
    def fingerprint(self):
        """Identity of the input map (16 hex digits): a hash of the method's name and of
        what defines its inputs as stored or given (``_identity``), the same on every
        machine. The prior, computed here, is checked by tolerance instead (``load_state``)."""
        settings, arrays = self._identity()
        return digest({"method": self.name, **settings}, arrays)

    def _prior_arrays(self):
        """The computed prior a state file records: its mean and, when it is not v I, its covariance."""
        prior = {"__prior_mean__": self.prior_mean}
        if self.head.prior_cov is not None:
            prior["__prior_cov__"] = self.head.prior_cov
        return prior

    def save_state(self, path, extra=None):
        """Atomically save the posterior and the noise state (resume after a power loss).
        ``extra``: more named arrays to keep in the file (keys ``__name__``)."""
        arrays = {"__fingerprint__": np.array(self.fingerprint()), "__method__": np.array(self.name)}
        arrays.update(self._prior_arrays())
        arrays.update(extra or {})
        self.head.save(path, extra=arrays)

    def load_state(self, path):
        """Resume from ``save_state``; returns the file's extra arrays. A corrupt
        file, another head configuration, method, pre-trained model (the
        fingerprint) or prior (mean or covariance beyond ``COMPUTED_RTOL``) is a
        ValueError and leaves this controller unchanged."""
        head = self.head.copy()
        extra = head.load_from(path)
        if str(extra.get("__method__", "")) != self.name:
            raise ValueError(f"{path}: the saved head belongs to method {str(extra.get('__method__'))!r}, "
                             f"not {self.name!r}")
        saved = extra.get("__fingerprint__")
        if saved is None or str(saved) != self.fingerprint():
            raise ValueError(f"{path}: the saved head belongs to another pre-trained model or input map "
                             f"(fingerprint {saved}, expected {self.fingerprint()})")
        prior = self._prior_arrays()
        if set(prior) != {k for k in ("__prior_mean__", "__prior_cov__") if k in extra}:
            raise ValueError(f"{path}: the saved head belongs to another prior (a prior covariance "
                             f"{'v I' if '__prior_cov__' not in extra else 'from a family'} where this "
                             f"controller has {'v I' if '__prior_cov__' not in prior else 'one from a family'})")
        for key, current in prior.items():
            check_close(path, key.strip("_").replace("_", " "), extra[key], current)
        self._adopt(head)
        return extra

    def use_prior(self, prior_mean=None, prior_cov=None):
        """Start a fresh head (before any update; ValueError otherwise) from the prior
        N(``prior_mean``, ``prior_cov``): None keeps the current mean, or v I for the
        covariance (for example a family prior, docs/family-prior.md)."""
        if self.head.n_updates:
            raise ValueError("prior: the head has learned already; set its prior before any update")
        if prior_mean is not None:
            w0 = as_float_array("prior_mean", prior_mean, (self.prior_mean.size,))
            self.prior_mean = w0.copy()
        self._adopt(ForceHead(self.prior_mean, self.head_config, prior_cov=prior_cov))

    def __setstate__(self, state):
        """After a copy or an unpickling: bind the kernels again. ``copy.deepcopy`` and
        pickle copy the head's arrays apart from the buffers they are views of (KBT's
        packed buffers), so the kernels would update memory the head no longer reads."""
        self.__dict__.update(state)
        self._bind()

    def _adopt(self, head):
        """Use ``head`` from now on (the kernels' bound arrays follow it); the detector's run
        belonged to the head before, so it starts empty."""
        self.head = head
        self._run = deque(maxlen=RUN_MAX)
        self._bind()

    def _bind(self):
        """Pack the fused kernels' argument groups for the current head: ``_head_state``,
        ``_head_settings``, ``_head_work`` (plain tuples in ``force_numba.HeadState``,
        ``HeadSettings``, ``HeadWork`` order) and, for ``act``, its z~ work array and
        mean weights. A subclass binding more (its input map) extends this."""
        head = self.head
        self._head_state, self._head_work = head.kernel_arrays(), head.work_arrays()
        self._head_settings = head.kernel_settings()
        self._zt, self._m = self._head_work[0], self._head_state[0]
        self._kernels = head.uses_numba
        #: True when a detected change restarts the head from its prior (``_follow_run``)
        self._restarts = head.restarts
        if not hasattr(self, "_run"):
            self._run = deque(maxlen=RUN_MAX)

    def _observe_kernel(self, s, x, y):  # pragma: no cover - interface
        """The fused ``observe`` kernel on the bound groups, for the state s (4,) (``x``: the same
        as four Python floats) and label y: the status code."""
        raise NotImplementedError

    def _act_kernel(self, s, x):  # pragma: no cover - interface
        """The fused ``act`` kernel on the bound groups: the mean force."""
        raise NotImplementedError

    def _tick_kernel(self, s, x, y):
        """``step``'s kernels: (the force at s, the status of learning y); a subclass whose
        kernels compute the input map once for both overrides this."""
        return self._act_kernel(s, x), self._observe_kernel(s, x, y)
