"""The decision-transformer controller: parameters + config, inference, save/load.

``TransformerPolicy.features(states)`` is T_1 (H_dec, the input of the
Bayesian head) and ``TransformerPolicy.head_weights`` is W_O, shape
``(d + 1, n_bins)`` with the bias as last row, so that
``probs = softmax([h, 1] @ W_O)``.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from importlib import resources

import numpy as np

from controller import transformer as tf
from controller.transformer import TransformerConfig
from controller.checks import as_float_array

__all__ = ["FORMAT", "FORMAT_VERSION", "TransformerPolicy", "PRETRAINED_PATH", "load_pretrained", "atomic_savez"]

FORMAT = "kbt-transformer"
FORMAT_VERSION = 1
#: config keys absent from early version-1 files, and the behaviour those files had
_LEGACY_CONFIG = {"final_ln": True, "query": "constant", "target": "twohot", "sigma": 3.0}


def _pretrained_path():
    return str(resources.files("controller") / "data" / "pretrained_source.npz")


PRETRAINED_PATH = _pretrained_path()


class TransformerPolicy:
    """A decision transformer used as a controller (``act`` / ``predict``).

    Parameters
    ----------
    config : TransformerConfig
    params : dict of name -> ndarray, optional
        Keyed like ``transformer.param_shapes``; random (seeded) when omitted.
    seed : int
        Seed of the random initialisation.
    meta : dict, optional
        Free-form provenance (command, seed, metrics), saved with the weights.
    """

    name = "pretrained"

    def __init__(self, config: TransformerConfig | None = None, params=None, seed=0, meta=None):
        self.config = TransformerConfig() if config is None else config
        self.tokenizer = self.config.tokenizer()
        if params is None:
            params = tf.init_params(self.config, np.random.default_rng(seed))
        self.params = _check_params(params, self.config)
        self.meta = dict(meta or {})

    # ------------------------------------------------------------ inference
    @property
    def head_weights(self):
        """W_O, shape (d + 1, n_bins): logits = [h, 1] @ W_O."""
        return self.params["head.w"]

    def features(self, states):
        """T_1: states (N, 4) -> H_dec (N, d)."""
        return tf.features(self.params, self.config, _states(states))

    def probs(self, states):
        """Action-bin probabilities (N, n_bins)."""
        return tf.softmax(tf.forward(self.params, self.config, _states(states)))

    def act(self, states):
        """Forces (N,) decoded from the bin probabilities (expected value by default)."""
        single = np.ndim(states) == 1
        f = self.tokenizer.decode(self.probs(states))
        return f[0] if single else f

    def predict(self, states):
        """(mean force, force variance under the categorical output) per state."""
        p = self.probs(states)
        return self.tokenizer.decode(p, "mean"), self.tokenizer.variance(p)

    def memory_arrays(self):
        """The arrays a device running this policy holds, by role (lists of ndarrays):
        ``params`` its weights, no learning ``state``, ``buffers`` the work
        arrays of single-state inference (``FastInference``)."""
        from controller.transformer_numba import FastInference

        return {"params": list(self.params.values()), "state": [], "buffers": FastInference(self).buffers()}

    def copy(self):
        return TransformerPolicy(self.config, {k: v.copy() for k, v in self.params.items()}, meta=self.meta)

    # ------------------------------------------------------------ persistence
    def save(self, path):
        """Write weights, config and metadata to one ``.npz`` (atomically)."""
        arrays = {"__format__": np.array(FORMAT), "__version__": np.array(FORMAT_VERSION),
                  "__config__": np.array(json.dumps(self.config.to_dict())),
                  "__meta__": np.array(json.dumps(self.meta, default=str))}
        arrays.update(self.params)
        atomic_savez(path, arrays)

    @classmethod
    def load(cls, path):
        """Read a file written by ``save``; raises ValueError on a missing,
        corrupt or mismatched file, naming what is wrong."""
        data = _read_npz(path)
        if str(data.get("__format__", "")) != FORMAT:
            raise ValueError(f"{path}: not a kbt transformer file (format {data.get('__format__')!r})")
        version = int(data.get("__version__", -1))
        if version != FORMAT_VERSION:
            raise ValueError(f"{path}: format version {version} is not supported (expected {FORMAT_VERSION})")
        try:
            cfg = json.loads(str(data["__config__"]))
            # settings added after the first files were written, with the values those files used
            for key, legacy in _LEGACY_CONFIG.items():
                cfg.setdefault(key, legacy)
            config = TransformerConfig(**cfg)
            meta = json.loads(str(data.get("__meta__", "{}")))
        except (KeyError, TypeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: unreadable config ({e})") from None
        params = {k: v for k, v in data.items() if not k.startswith("__")}
        try:
            return cls(config, params, meta=meta)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None


def _states(states):
    s = as_float_array("states", states, [(4,), (None, 4)])
    return s[None, :] if s.ndim == 1 else s


def _check_params(params, config):
    shapes = tf.param_shapes(config)
    missing = sorted(set(shapes) - set(params))
    extra = sorted(set(params) - set(shapes))
    if missing or extra:
        raise ValueError(f"params: missing arrays {missing}, unexpected arrays {extra}")
    out = {}
    for name, shape in shapes.items():
        arr = np.asarray(params[name], dtype=np.float64)
        if arr.shape != shape:
            raise ValueError(f"params[{name!r}]: expected shape {shape} but found {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"params[{name!r}]: expected finite values but found NaN or inf")
        out[name] = arr.copy()
    return out


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")   # a zip archive (.npz), the second one empty


def _read_npz(path):
    """The arrays of a ``.npz`` file; every failure is one short ValueError naming the file once."""
    if not os.path.exists(path):
        raise ValueError(f"{path}: file not found")
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder, not a .npz file")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({e.strerror or e})") from None
    if magic not in _ZIP_MAGIC:
        raise ValueError(f"{path}: corrupt or not a .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as e:
        # numpy's own text about pickled data advises allow_pickle=True: never right for a kbt file
        why = "it holds pickled Python objects, which kbt never writes" if "pickle" in str(e) else str(e)
        raise ValueError(f"{path}: corrupt or unreadable .npz ({why})") from None


def atomic_savez(path, arrays):
    """``np.savez`` to a temporary file in the same folder, then rename over ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_pretrained(path=None):
    """The shipped pre-trained SOURCE controller (or the file at ``path``)."""
    return TransformerPolicy.load(PRETRAINED_PATH if path is None else path)
