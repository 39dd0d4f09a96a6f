"""The compiled C export as a controller: ``act``, ``observe``, ``predict`` through ctypes.

``CController(controller)`` exports a ``kbt`` or ``rls`` controller
(``firmware_profile.export``), builds it with the host C compiler
(``c_build.build_shared``) and holds one caller-owned C state struct, started
by ``<prefix>_init``: the exported head. From then on every ``act`` and
``observe`` runs in the C code (float32), so the deployed loop
(``sim.loops.deploy``) runs the firmware's arithmetic; methods ``kbt-c`` and
``rls-c`` (``sim.loops.methods``) are this class.

A single-state ``act`` keeps the state's inputs (``<prefix>_act_keep``) and
an ``observe`` of that same state (bit for bit, as the C code sees it: float32)
learns from them (``<prefix>_observe_kept``): the on-policy tick runs the input
map once, as the Numba controller does (docs/tick.md).

The Python controller it was exported from is kept only for what the C code
does not do: the state files (``save_state`` copies the C state into it and
saves it, ``load_state`` loads it and re-exports) and the frozen parameters
``memory_arrays`` reports.
"""

from __future__ import annotations

import ctypes

import numpy as np

from firmware_profile.c_build import build_shared
from firmware_profile.export import export_params, unpack_lower
from firmware_profile.export.emit import render

__all__ = ["CController", "state_type", "kept_type", "LEARNED", "DOWNWEIGHTED", "NONFINITE", "CHANGED",
           "OUT_OF_RANGE", "OVERFLOW", "BAD_STATE", "REFUSED"]

LEARNED, DOWNWEIGHTED, NONFINITE, CHANGED, OUT_OF_RANGE, OVERFLOW, BAD_STATE = 0, 1, 2, 3, 4, 5, 6
#: the statuses of an update that changed nothing, and what the ValueError says
REFUSED = {NONFINITE: "state or label: expected finite values but found NaN or inf",
           OUT_OF_RANGE: "state or label: outside the valid range (kbt.h: X_MAX ... THETADOT_MAX, FORCE_MAX)",
           OVERFLOW: "state or label: an intermediate would overflow float32; nothing changed",
           BAD_STATE: "the C state is not this export's (model id) or fails <prefix>_check"}

_F = ctypes.c_float
_PF = ctypes.POINTER(ctypes.c_float)


def kept_type(n1):
    """The ctypes mirror of ``<prefix>_kept`` (z~ of one state and its status)."""
    return type("CKept", (ctypes.Structure,), {"_fields_": [("zt", _F * n1), ("status", ctypes.c_int)]})


def state_type(n1):
    """The ctypes mirror of ``<prefix>_state`` (the header's field order)."""
    return type("CState", (ctypes.Structure,), {"_fields_": [
        ("m", _F * n1), ("P", _F * (n1 * (n1 + 1) // 2)), ("noise", _F * 4),
        ("n_updates", ctypes.c_uint32), ("n_downweighted", ctypes.c_uint32), ("n_changes", ctypes.c_uint32),
        ("model", ctypes.c_uint32 * 2)]})


class CController:
    """A ``kbt`` or ``rls`` controller running in its compiled C export.

    Parameters
    ----------
    controller : KBTController or RLSController
        Exported as it is now (its current head is what ``<prefix>_init`` starts from).

    Attributes
    ----------
    name : str
        ``"kbt-c"`` or ``"rls-c"``.
    prefix : str
        The C prefix (``"kbt"`` or ``"rls"``).
    files : dict
        The exported C files {name: text}.
    library : str
        Path of the shared library that runs.
    """

    def __init__(self, controller, u_max=30.0):
        self._py = controller
        self._u_max = u_max
        self._load(controller)

    # ------------------------------------------------------------ building
    def _load(self, controller):
        params = export_params(controller, u_max=self._u_max)
        self.prefix = params.method
        self.name = f"{params.method}-c"
        self._params = params
        self.files = render(params)
        self.library = build_shared(self.files)
        lib = ctypes.CDLL(self.library)
        p = self.prefix
        self._n1 = params.ints["N1"]
        self._st = state_type(self._n1)()
        st = ctypes.byref(self._st)
        getattr(lib, f"{p}_init")(st)
        act, obs, split, keep, kept = (getattr(lib, f"{p}_{n}") for n in ("act", "observe_status", "predict_split",
                                                                          "act_keep", "observe_kept"))
        V = ctypes.c_void_p
        act.restype, act.argtypes = _F, [V, _PF]
        obs.restype, obs.argtypes = ctypes.c_int, [V, _PF, _F]
        split.restype, split.argtypes = None, [V, _PF, _PF, _PF, _PF]
        keep.restype, keep.argtypes = _F, [V, _PF, V]
        kept.restype, kept.argtypes = ctypes.c_int, [V, V, _F]
        act_st, check = getattr(lib, f"{p}_act_status"), getattr(lib, f"{p}_check")
        act_st.restype, act_st.argtypes = ctypes.c_int, [V, _PF, _PF]
        check.restype, check.argtypes = ctypes.c_int, [V]
        self._lib = lib
        self._s = np.zeros(4, np.float32)
        self._s_ptr = self._s.ctypes.data_as(_PF)
        self._out = (_F(), _F(), _F())
        addr = ctypes.addressof(self._st)
        # <prefix>_kept: z~ (n1 floats) and a flag; the key names the float32 state it holds
        self._kept = kept_type(self._n1)()
        self._key = None
        kaddr = ctypes.addressof(self._kept)
        self._act_c = lambda: act(addr, self._s_ptr)
        self._act_keep_c = lambda: keep(addr, self._s_ptr, kaddr)
        self._obs_c = lambda y: obs(addr, self._s_ptr, y)
        self._obs_kept_c = lambda y: kept(addr, kaddr, y)
        self._split_c = lambda: split(addr, self._s_ptr, *(ctypes.byref(o) for o in self._out))
        self._act_status_c = lambda: act_st(addr, self._s_ptr, ctypes.byref(self._out[0]))
        self._check_c = lambda: check(addr)

    # ------------------------------------------------------------ acting
    def _set(self, state):
        s = np.asarray(state, dtype=float)
        if s.shape != (4,):
            raise ValueError(f"state: expected shape (4,) but found {s.shape}")
        with np.errstate(over="ignore"):          # a value beyond float32 becomes inf: refused in C
            self._s[:] = s

    def act(self, states):
        """Forces for states (N, 4) -> (N,), or one state (4,) -> float (NaN for a non-finite state)."""
        if np.ndim(states) == 1:
            self._set(states)
            self._key = self._s.tobytes()
            return float(self._act_keep_c())
        S = np.asarray(states, dtype=float)
        if S.ndim != 2 or S.shape[1] != 4:
            raise ValueError(f"states: expected shape (N, 4) but found {S.shape}")
        out = np.empty(S.shape[0])
        with np.errstate(over="ignore"):
            for i, s in enumerate(S):
                self._s[:] = s
                out[i] = self._act_c()
        return out

    def act_status(self, state):
        """(status, force limited to +-u_max) of ``<prefix>_act_status`` at one state (4,)."""
        self._set(state)
        status = int(self._act_status_c())
        return status, float(self._out[0].value)

    def check(self):
        """``<prefix>_check`` of the C state: 0 (OK) or BAD_STATE."""
        return int(self._check_c())

    def predict_split(self, states):
        """Mean force, aleatoric variance R and epistemic variance q per state, each (N,)."""
        S = np.atleast_2d(np.asarray(states, dtype=float))
        if S.ndim != 2 or S.shape[1] != 4:
            raise ValueError(f"states: expected shape (N, 4) but found {S.shape}")
        out = np.empty((3, S.shape[0]))
        for i, s in enumerate(S):
            with np.errstate(over="ignore"):
                self._s[:] = s
            self._split_c()
            out[:, i] = [o.value for o in self._out]
        return out[0], out[1], out[2]

    def predict(self, states):
        """(mean force, total predictive variance q + R) per state."""
        mean, ale, epi = self.predict_split(states)
        return mean, ale + epi

    def warm_up(self):
        """Nothing to compile at run time (the library was built at construction); here for
        the callers that warm a Numba controller up."""

    # ------------------------------------------------------------ learning
    def observe_status(self, state, expert_force):
        """One update in C; its status code (LEARNED, DOWNWEIGHTED, NONFINITE or CHANGED)."""
        self._set(state)
        if self._s.tobytes() == self._key:           # the state the last act kept the inputs of
            return int(self._obs_kept_c(float(expert_force)))
        return int(self._obs_c(float(expert_force)))

    def observe(self, state, expert_force):
        """One update in C. Returns True (learned); a refused update (a non-finite or
        out-of-range state or label, ``REFUSED``) is a ValueError and changes nothing (as
        ``ForceController.observe``)."""
        try:
            y = float(expert_force)
        except (TypeError, ValueError):
            raise ValueError(f"expert_force: expected a real number but found {expert_force!r}") from None
        status = self.observe_status(state, y)
        if status in REFUSED:
            raise ValueError(REFUSED[status])
        return True

    @property
    def n_updates(self):
        return int(self._st.n_updates)

    @property
    def n_downweighted(self):
        return int(self._st.n_downweighted)

    @property
    def n_changes(self):
        return int(self._st.n_changes)

    @property
    def noise_var(self):
        return float(self._st.noise[0])

    def head_arrays(self):
        """(m (n1,), P (n1, n1), noise (4,)) of the C state, as float64 copies."""
        st = self._st
        return (np.array(st.m[:], float), unpack_lower(np.array(st.P[:], float), self._n1),
                np.array(st.noise[:], float))

    # ------------------------------------------------------------ files and memory
    def _sync_to_python(self):
        m, P, noise = self.head_arrays()
        head = self._py.head
        hm, hP, hnoise = head.kernel_arrays()
        hm[:], hP[...], hnoise[:] = m, P, noise
        head.core.n_updates = self.n_updates
        head.n_downweighted, head.n_changes = self.n_downweighted, self.n_changes

    def save_state(self, path, extra=None):
        """Save the C head (widened to float64) in the Python controller's state file format."""
        self._sync_to_python()
        self._py.save_state(path, extra=extra)

    def load_state(self, path):
        """Load a saved head (``save_state`` of this method or of the Python one) and re-export it."""
        extra = self._py.load_state(path)
        self._load(self._py)
        return extra

    def memory_arrays(self):
        """What the device holds, by role (float32 arrays): ``params`` the exported constants,
        ``state`` the C state struct's arrays (P packed), ``buffers`` the work arrays of one call
        (on the stack: z~, P z~, and for kbt T_1's work arrays and h)."""
        a = self._params.arrays
        params = [v for k, v in a.items() if not k.startswith("init_")]
        st = self._st
        state = [np.array(st.m[:], np.float32), np.array(st.P[:], np.float32), np.array(st.noise[:], np.float32)]
        n1, ints = self._n1, self._params.ints
        buffers = [np.zeros(n1, np.float32), np.zeros(n1, np.float32)]
        if self.prefix == "kbt":
            T, d, f = ints["T"], ints["D"], ints["F"]
            buffers += [np.zeros((7, T, d), np.float32), np.zeros((T, f), np.float32),
                        np.zeros(T, np.float32), np.zeros(d, np.float32)]
        return {"params": params, "state": state, "buffers": buffers}
