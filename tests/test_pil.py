"""Processor-in-the-loop (``kbt pil``): the exported controller on the emulated Cortex-M7
closes the loop around the Python cart-pole; its forces are the host export's within
1e-3 N, its statuses the same, its instruction counts (QEMU -icount) those the
instruction trace of the budget report counts."""

import numpy as np
import pytest

from firmware_profile import cortex_m
from firmware_profile.c_controller import CController
from firmware_profile.pil import PILController
from sim.cli import main
from sim.loops.deploy import DeployConfig, run_deployment
from sim.loops.methods import make_controller
from sim.world.cartpole import TARGET

pytestmark = pytest.mark.skipif(bool(cortex_m.missing()), reason=f"PIL: {cortex_m.missing()}")


def test_the_firmware_in_the_loop_matches_the_host_export_tick_by_tick():
    cfg = DeployConfig(samples=12, episodes=2, seed=0, checkpoints=(12,))
    pil = PILController(make_controller("rls", TARGET), u_max=TARGET.u_max)
    try:
        res = run_deployment(pil, TARGET, cfg)
        # a refused label is refused on the device too, and changes nothing there
        with pytest.raises(ValueError, match="range"):
            pil.observe(np.zeros(4), 1e9)
        u, status, _ = pil.fw.act(np.array([4e18, 0.0, 0.0, 0.0]))
        assert (u, status) == (0.0, 4)
    finally:
        pil.close()
    host = run_deployment(CController(make_controller("rls", TARGET), u_max=TARGET.u_max), TARGET, cfg)
    assert [r["success_rate"] for r in res.rows] == [r["success_rate"] for r in host.rows]
    assert len(pil.observe_instructions) == 13 and len(pil.act_instructions) > 100
    assert pil.max_force_diff < 1e-3 and pil.status_mismatches == 0
    assert all(n > 0 for n in pil.act_instructions)


def test_kbt_pil_prints_success_and_instruction_counts(capsys):
    assert main(["pil", "--samples", "5", "--episodes", "1"]) == 0
    out = capsys.readouterr().out
    assert "PIL check: passed" in out and "largest |force difference|" in out
    per_act = float(out.split("instructions per act mean ")[1].split()[0])
    assert 30_000 < per_act < 45_000          # the trace counts 38 500-38 700 per kbt act on the M7
    worst = float(out.split("worst tick ")[1].split()[0])
    assert f"shortest control period this Cortex-M7 would hold at 216 MHz: {worst:.2f} ms" in out
