"""The worst-case budget report (``kbt export --report``) on the emulated Cortex-M7:
every path of the code taken, the worst cases where they belong, the static stack
bound at least the stack the run used, the device's forces the host's."""

import numpy as np
import pytest

from firmware_profile import budget_report as br
from firmware_profile import cortex_m
from firmware_profile.c_controller import CController
from sim.cli.export import _demo
from sim.loops.methods import make_controller
from sim.world.cartpole import TARGET

pytestmark = pytest.mark.skipif(bool(cortex_m.missing()), reason=f"Cortex-M budgets: {cortex_m.missing()}")


@pytest.fixture(scope="module")
def report():
    S, F = _demo()
    return br.budget_report(make_controller("kbt", TARGET), 30.0, S[:3], F[:3], cores=("cortex-m7",)), S[:3], F[:3]


def test_every_path_is_taken_and_the_worst_observe_is_the_change(report):
    r, _, _ = report
    c = r["cores"]["cortex-m7"]
    assert r["stream_kinds"][-4:] == ["downweighted", "change", "refused label", "refused state"]
    assert c["statuses"]["observe"][-4:] == [1, 3, 4, 4] and c["statuses"]["act"][-1] == 4
    obs = c["observe"]["by_kind"]
    assert c["observe"]["instructions_worst"] == obs["change"]["instructions"] > obs["learned"]["instructions"]
    assert obs["refused label"]["instructions"] < 1000 and obs["refused state"]["instructions"] < 1000
    assert c["act"]["by_kind"]["refused state"]["instructions"] < 1000
    assert 10_000 < c["observe"]["instructions_mean"] <= 50_000
    assert c["tick_instructions_worst"] == c["act"]["instructions_worst"] + c["observe"]["instructions_worst"]


def test_the_static_stack_bound_covers_the_run_and_the_workspace_calls_are_small(report):
    r, _, _ = report
    c = r["cores"]["cortex-m7"]
    w = c["stack_worst"]
    assert not c["stack_notes"]                               # no recursion, no dynamic frame
    used = max(w["kbt_act_status"], w["kbt_observe_status"])
    assert c["stack_painted"] <= used <= 1.25 * c["stack_painted"]
    assert w["kbt_act_ws"] + c["workspace_bytes"] >= w["kbt_act_status"] - 64
    assert w["kbt_observe_ws"] < 1024 and w["kbt_act_ws"] < 1024
    assert c["static_ram_bytes"] == 0 and c["state_bytes"] == 4 * (21 + 231 + 4) + 20
    assert c["flash_bytes"] <= 64 * 1024


def test_the_device_computes_the_host_forces(report):
    r, S, F = report
    host = CController(make_controller("kbt", TARGET))
    Sr, Fr, kinds = br.report_stream(S, F, 1e4)
    want = []
    for s, f, k in zip(Sr, Fr, kinds):
        want.append(host.act_status(s)[1])
        if k == 2:
            host._st.noise[3] = 1e30
        host.observe_status(s, f)
    assert np.abs(np.array(r["cores"]["cortex-m7"]["forces"]) - want).max() < 1e-4
    assert "50 Hz" in br.format_report(r)
