"""tools/heldout_limit.py: the wide read-out's prior, the split of a shift map, and its refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def tool(tools_on_path):
    import heldout_limit

    return heldout_limit


def test_the_wide_read_out_starts_where_kbt_alpaca_starts(tool):
    """With no label the added inputs' weights are 0, so the wide read-out's force is the z~
    read-out's under the learned prior: a misplaced column (the bias among the added ones) would
    move it. After one label the two differ (the added inputs learn too)."""
    from sim.world.task import SWINGUP

    task = SWINGUP.on(SWINGUP.params.with_(m_p=0.29, l_p=0.77))
    z = tool._wide_learner(task, ("z", None, None))
    wide = tool._wide_learner(task, ("eye", 0.03, 1.0, np.eye(tool._widths(tool._kbt(task))[1])))
    X = np.random.default_rng(0).normal(size=(50, 4)) * [1.0, 1.0, 2.0, 2.0]
    np.testing.assert_allclose(wide.act(X), z.act(X), rtol=1e-9, atol=1e-9)
    mu, _, q = wide.predict_split(X)
    _, _, qz = z.predict_split(X)
    assert np.all(q > qz)                       # the added inputs carry prior variance of their own
    wide.observe(X[0], 5.0), z.observe(X[0], 5.0)
    assert np.max(np.abs(wide.act(X) - z.act(X))) > 1e-3


def _fake_map(tool, path, success):
    rows = [{"method": m, "m_c": c[0], "m_p": c[1], "l_p": c[2], "seed": 0,
             "success": 1.0 if m == "expert" else success(c)}
            for c in tool.inside_cells() for m in ("expert", "kbt@alpaca")]
    path.write_text(json.dumps({"labels": 100, "trials": 1, "methods": ["expert", "kbt@alpaca"], "rows": rows}))


def test_split_tells_the_left_out_plants_apart(tool, tmp_path, capsys):
    from sim.pretraining.family import _left_out

    # 1 outside the left-out neighbourhoods, 0 inside: the split must give 1.00 and 0.00
    path = tmp_path / "shift.json"
    _fake_map(tool, path, lambda c: 0.0 if _left_out(tool._task(c).params, "swingup") else 1.0)
    tool.main(["split", str(path)])
    out = capsys.readouterr().out
    assert "(1, 0.2913, 0.7746)" in out.splitlines()[0]
    assert "outside the left-out neighbourhoods (9) 1.00 | inside (3) 0.00" in out


@pytest.mark.parametrize("args, name", [(["wide", "--priors", "eye:0"], "--priors"),
                                        (["wide", "--priors", "ridge:1"], "--priors"),
                                        (["wide", "--labels-at", "50", "10"], "--labels-at"),
                                        (["limit", "--labels", "10"], "--labels"),
                                        (["limit", "--jobs", "0"], "--jobs")])
def test_bad_arguments_are_one_line_exit_2(tool, capsys, args, name):
    with pytest.raises(SystemExit) as e:
        tool.main(args)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("heldout_limit: error: ") and name in err[-1]
