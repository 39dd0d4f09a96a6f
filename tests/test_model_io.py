import json
import os
import zipfile

import numpy as np
import pytest

from controller import transformer as tf
from controller.model import PRETRAINED_PATH, TransformerPolicy, load_pretrained
from controller.transformer import TransformerConfig


def test_save_load_round_trip(tmp_path):
    pol = TransformerPolicy(TransformerConfig(n_bins=21, target="gaussian"), seed=5, meta={"note": "x"})
    path = tmp_path / "m.npz"
    pol.save(path)
    back = TransformerPolicy.load(str(path))
    assert back.config == pol.config and back.meta == {"note": "x"}
    for name in pol.params:
        np.testing.assert_array_equal(back.params[name], pol.params[name])
    s = np.random.default_rng(0).normal(size=(4, 4)) * 0.1
    np.testing.assert_array_equal(back.act(s), pol.act(s))
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]


def _rewrite(src, dst, drop=None, change=None):
    with np.load(src) as z:
        arrays = {k: z[k] for k in z.files if k != drop}
    if change:
        arrays.update(change)
    np.savez(dst, **arrays)


def test_missing_array_is_named(tmp_path):
    TransformerPolicy(seed=0).save(tmp_path / "a.npz")
    _rewrite(tmp_path / "a.npz", tmp_path / "b.npz", drop="layer1.attn.wq")
    with pytest.raises(ValueError, match="layer1.attn.wq"):
        TransformerPolicy.load(str(tmp_path / "b.npz"))


def test_misshaped_array_is_named(tmp_path):
    TransformerPolicy(seed=0).save(tmp_path / "a.npz")
    _rewrite(tmp_path / "a.npz", tmp_path / "b.npz", change={"head.w": np.zeros((3, 3))})
    with pytest.raises(ValueError, match=r"head.w.*expected shape \(17, 11\)"):
        TransformerPolicy.load(str(tmp_path / "b.npz"))


def test_wrong_version_corrupt_and_missing_files(tmp_path):
    TransformerPolicy(seed=0).save(tmp_path / "a.npz")
    _rewrite(tmp_path / "a.npz", tmp_path / "v.npz", change={"__version__": np.array(99)})
    with pytest.raises(ValueError, match="version 99"):
        TransformerPolicy.load(str(tmp_path / "v.npz"))
    (tmp_path / "c.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="corrupt"):
        TransformerPolicy.load(str(tmp_path / "c.npz"))
    data = (tmp_path / "a.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt"):
        TransformerPolicy.load(str(tmp_path / "t.npz"))
    with pytest.raises(ValueError, match="not found"):
        TransformerPolicy.load(str(tmp_path / "nope.npz"))
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a kbt transformer"):
        TransformerPolicy.load(str(tmp_path / "other.npz"))


def test_shipped_weights_load_with_provenance():
    assert os.path.getsize(PRETRAINED_PATH) < 200 * 1024
    pol = load_pretrained()
    assert pol.meta["command"].startswith("kbt pretrain")
    assert "seed" in pol.meta and "val_rmse" in pol.meta
    assert set(pol.params) == set(tf.param_shapes(pol.config))


def test_early_version_1_files_load_with_their_behaviour(tmp_path):
    """Files written before `query`, `final_ln` existed keep the architecture they had."""
    old = TransformerPolicy(TransformerConfig(query="constant", final_ln=True, target="twohot", sigma=3.0), seed=1)
    old.save(tmp_path / "a.npz")
    with np.load(tmp_path / "a.npz") as z:
        arrays = {k: z[k] for k in z.files}
    cfg = json.loads(str(arrays["__config__"]))
    for key in ("query", "final_ln", "target", "sigma"):
        del cfg[key]
    arrays["__config__"] = np.array(json.dumps(cfg))
    np.savez(tmp_path / "b.npz", **arrays)
    back = TransformerPolicy.load(str(tmp_path / "b.npz"))
    assert back.config == old.config
    s = np.random.default_rng(0).normal(size=(3, 4)) * 0.1
    np.testing.assert_array_equal(back.act(s), old.act(s))
