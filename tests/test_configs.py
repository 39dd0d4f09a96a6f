"""Every config in controller/ is validated on construction: TypeError for a type, ValueError for a value."""

import pytest

from controller.kalman_head import HeadConfig


@pytest.mark.parametrize("make, kwargs, error, match", [
    ("head", {"n_layers": "2"}, TypeError, "n_layers: expected an integer"),
    ("head", {"robust": True}, TypeError, "robust: expected a real number"),
    ("head", {"n_layers": 0}, ValueError, r"n_layers: expected an integer in \[1, 8\]"),
    ("transformer", {"d_ff": 2.0}, TypeError, "d_ff: expected an integer"),
    ("transformer", {"sigma": 0.0}, ValueError, "sigma: expected a finite number > 0"),
    ("adam", {"beta1": 1.0}, ValueError, r"beta1: expected a number in \[0, 1\)"),
    ("adam", {"lr": "fast"}, TypeError, "lr: expected a real number"),
])
def test_configs_are_validated_on_construction(make, kwargs, error, match):
    from controller.transformer import Adam, TransformerConfig

    cls = {"head": HeadConfig, "transformer": TransformerConfig, "adam": Adam}[make]
    with pytest.raises(error, match=match):
        cls(**kwargs)
