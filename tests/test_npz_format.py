"""The shared versioned .npz format: header, atomic write, short errors; old files still load."""

import numpy as np
import pytest

from controller import npz_format
from controller.kalman_head import STATE_FORMAT, STATE_VERSION, HeadConfig, KalmanHead
from controller.model import FORMAT, FORMAT_VERSION, PRETRAINED_PATH, TransformerPolicy


def test_write_read_round_trip(tmp_path):
    p = tmp_path / "a.npz"
    npz_format.write(p, "kbt-test", 3, {"x": np.arange(3.0), "__note__": np.array("hi")})
    data = npz_format.read(str(p), "kbt-test", 3, "a test file")
    assert str(data["__format__"]) == "kbt-test" and int(data["__version__"]) == 3
    np.testing.assert_array_equal(npz_format.payload(data)["x"], np.arange(3.0))
    assert set(npz_format.payload(data)) == {"x"}


@pytest.mark.parametrize("kind, version, match", [("kbt-other", 3, "not a test file"),
                                                  ("kbt-test", 4, "version 3 is not supported")])
def test_wrong_kind_or_version_is_one_short_value_error(tmp_path, kind, version, match):
    p = tmp_path / "a.npz"
    npz_format.write(p, "kbt-test", 3, {})
    with pytest.raises(ValueError, match=match) as e:
        npz_format.read(str(p), kind, version, "a test file")
    assert "\n" not in str(e.value) and str(p) in str(e.value)


def test_a_file_without_header_is_refused(tmp_path):
    p = tmp_path / "plain.npz"
    np.savez(p, x=np.zeros(2))
    with pytest.raises(ValueError, match="not a test file"):
        npz_format.read(str(p), "kbt-test", 1, "a test file")


def test_both_kinds_use_the_shared_header(tmp_path):
    pol = TransformerPolicy.load(PRETRAINED_PATH)
    pol.save(tmp_path / "w.npz")
    npz_format.read(str(tmp_path / "w.npz"), FORMAT, FORMAT_VERSION, "x")
    head = KalmanHead.from_pretrained(pol.head_weights, HeadConfig(output="softmax"))
    head.save(tmp_path / "h.npz")
    npz_format.read(str(tmp_path / "h.npz"), STATE_FORMAT, STATE_VERSION, "x")
    with pytest.raises(ValueError, match="not a kbt transformer file"):
        TransformerPolicy.load(str(tmp_path / "h.npz"))
    with pytest.raises(ValueError, match="not a kbt Kalman-head state file"):
        KalmanHead.load(str(tmp_path / "w.npz"))


def test_a_head_file_in_the_first_layout_loads(tmp_path):
    """A state file as the code before npz_format wrote it (np.savez, same keys)."""
    import json

    cfg = HeadConfig(output="softmax")
    W = np.random.default_rng(0).normal(size=(5, 3))
    ref = KalmanHead.from_pretrained(W, cfg)
    p = tmp_path / "old.npz"
    np.savez(p, __format__=np.array("kbt-kalman-head"), __version__=np.array(1),
             __config__=np.array(json.dumps(cfg.to_dict())), __d_in__=np.array(4), __n_updates__=np.array(7),
             __step__=np.array(3), **{"layer0.M": ref.layers[0].M, "layer0.S": ref.layers[0].S})
    head = KalmanHead.load(str(p), expect_config=cfg)
    assert head.n_updates == 7 and int(head.extra["__step__"]) == 3
    np.testing.assert_array_equal(head.layers[0].M, W)

