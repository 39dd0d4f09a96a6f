"""The decision-transformer controller: parameters + config, inference, save/load.

``TransformerPolicy.features(states)`` is T_1 (H_dec, the input of the
Bayesian head) and ``TransformerPolicy.head_weights`` is W_O, shape
``(d + 1, n_bins)`` with the bias as last row, so that
``probs = softmax([h, 1] @ W_O)``.
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np

from controller import npz_format
from controller import transformer as tf
from controller import transformer_batch as tb
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
        """T_1: states (N, 4) -> H_dec (N, d); ``transformer_batch.features``, the floats of
        ``transformer.features`` with its LayerNorms and softmaxes in Numba kernels."""
        return tb.features(self.params, self.config, _states(states))

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
        """An independent copy (parameters copied, meta shared)."""
        return TransformerPolicy(self.config, {k: v.copy() for k, v in self.params.items()}, meta=self.meta)

    # ------------------------------------------------------------ persistence
    def save(self, path):
        """Write weights, config and metadata to one ``.npz`` (atomically)."""
        arrays = {"__config__": np.array(json.dumps(self.config.to_dict())),
                  "__meta__": np.array(json.dumps(self.meta, default=str))}
        arrays.update(self.params)
        npz_format.write(path, FORMAT, FORMAT_VERSION, arrays)

    @classmethod
    def load(cls, path):
        """Read a file written by ``save``; raises ValueError on a missing,
        corrupt or mismatched file, naming what is wrong."""
        data = npz_format.read(path, FORMAT, FORMAT_VERSION, "a kbt transformer file")
        try:
            cfg = json.loads(str(data["__config__"]))
            # settings added after the first files were written, with the values those files used
            for key, legacy in _LEGACY_CONFIG.items():
                cfg.setdefault(key, legacy)
            config = TransformerConfig(**cfg)
            meta = json.loads(str(data.get("__meta__", "{}")))
        except (KeyError, TypeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: unreadable config ({e})") from None
        params = npz_format.payload(data)
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


# kept importable from here: the file format lives in controller/npz_format.py
_read_npz = npz_format.read_npz
atomic_savez = npz_format.atomic_savez


def load_pretrained(path=None):
    """The shipped pre-trained SOURCE controller, or the weights at ``path``: a file, or the
    name of a shipped weight set (``controller.weight_sets.WEIGHT_SETS``, e.g. ``"swingup-alpaca"``)."""
    from controller.weight_sets import weights_path

    return TransformerPolicy.load(PRETRAINED_PATH if path is None else weights_path(path))
