"""tools/shift_map.py: the plants it sweeps, the files it writes, and its refusals."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shift_map():
    spec = importlib.util.spec_from_file_location("shift_map", ROOT / "tools" / "shift_map.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_sweeps_span_the_family_range_and_beyond(shift_map):
    from sim.pretraining.family import FAMILY_RANGE

    mps, lps, mcs = shift_map.grid_values("swingup", 5)
    lo, hi = FAMILY_RANGE["swingup"]
    for values, i in ((mps, 1), (lps, 2), (mcs, 0)):
        assert values[0] < lo[i] and values[-1] > hi[i]          # outside the range on both sides
        assert any(lo[i] < v < hi[i] for v in values)             # and inside it
        assert np.allclose(values, np.geomspace(values[0], values[-1], 5), rtol=2e-3)   # log-spaced
    cells = shift_map.cells("swingup", 3)
    assert len(cells) == 3 * 3 + 3 and {c[0] for c in cells} == {"mp_lp", "mc"}


def test_a_tiny_map_writes_its_files(shift_map, tmp_path):
    out = tmp_path / "map"
    rc = shift_map.main(["--task", "balance", "--methods", "expert", "rls", "--n", "2", "--episodes", "2",
                         "--labels", "5", "--out", str(out), "--no-progress"])
    assert rc == 0
    d = json.loads((out / "shift.json").read_text())
    assert len(d["rows"]) == 2 * (2 * 2 + 2)
    assert all(0.0 <= r["success"] <= 1.0 for r in d["rows"])
    # the balance expert balances SOURCE-like plants: the light, short corner of the grid
    expert = [r for r in d["rows"] if r["method"] == "expert" and r["sweep"] == "mp_lp"]
    assert max(r["success"] for r in expert) == 1.0
    assert (out / "shift.csv").read_text().count("\n") == len(d["rows"]) + 1
    assert (out / "shift.png").stat().st_size > 10_000


@pytest.mark.parametrize("args, name", [(["--n", "1"], "--n"), (["--episodes", "0"], "--episodes"),
                                        (["--jobs", "0"], "--jobs")])
def test_bad_arguments_are_one_line_exit_2(shift_map, tmp_path, capsys, args, name):
    assert shift_map.main(["--out", str(tmp_path / "x"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"shift_map: {name}: expected")
    assert not (tmp_path / "x").exists()
