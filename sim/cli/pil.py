"""``kbt pil``: processor-in-the-loop -- the exported controller runs as a Cortex-M7
program in QEMU, the cart-pole in Python, one exchange per control tick
(``firmware_profile.pil``, docs/firmware-export.md)."""

from __future__ import annotations

import numpy as np

from sim.cli import flags as fl

HELP = "run the deployed loop with the exported controller on an emulated Cortex-M7 (QEMU)"
OUTPUTS = ()

#: the largest |firmware force - host force| (N) accepted: float32 with FMA on the device
#: against the host's build differs by about 1e-5 N
FORCE_TOL = 1e-3
#: the clock and control rate the overruns are counted at
CLOCK_MHZ, RATE_HZ = 216.0, 50.0


def add_arguments(p):
    p.add_argument("--method", choices=("kbt", "rls"), default="kbt", help="controller to export (default kbt)")
    p.add_argument("--samples", type=int, default=100, help="expert-labelled samples streamed in (default 100)")
    p.add_argument("--episodes", type=int, default=20, help="evaluation episodes per checkpoint (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seeds the episodes, the plant and the data (>= 0)")


def check(args):
    fl.check_int("--samples", args.samples, 1, 100_000)
    fl.check_int("--episodes", args.episodes, 1, 10_000)
    fl.check_int("--seed", args.seed, 0)


def _row(label, rows):
    return f"{label:<34} " + " ".join(f"{r['samples']:>5}: {r['success_rate']:.2f}" for r in rows)


def run(args):
    from firmware_profile import cortex_m
    from firmware_profile.c_controller import CController
    from firmware_profile.pil import CPI_BOUND, PILController
    from sim.loops.deploy import DeployConfig, run_deployment
    from sim.loops.methods import make_controller
    from sim.world.cartpole import TARGET

    why = cortex_m.missing()
    if why:
        raise RuntimeError(f"kbt pil needs the ARM toolchain and QEMU: {why}")
    cfg = DeployConfig(samples=args.samples, episodes=args.episodes, seed=args.seed, checkpoints=(args.samples,))
    pil = PILController(make_controller(args.method, TARGET), u_max=TARGET.u_max)
    try:
        res = run_deployment(pil, TARGET, cfg)
    finally:
        pil.close()
    host = run_deployment(CController(make_controller(args.method, TARGET), u_max=TARGET.u_max), TARGET, cfg)
    act, obs = np.array(pil.act_instructions), np.array(pil.observe_instructions)
    tick = np.array(pil.tick_instructions) if pil.tick_instructions else act
    worst_ms = max(tick.max(), act.max()) * CPI_BOUND / (CLOCK_MHZ * 1e3)
    overruns = int(np.count_nonzero(np.concatenate([tick, act]) * CPI_BOUND / (CLOCK_MHZ * 1e6) > 1.0 / RATE_HZ))
    print(f"processor-in-the-loop: {args.method} on a Cortex-M7 (QEMU mps2-an500), TARGET, "
          f"{args.samples} labels, {args.episodes} episodes per checkpoint, seed {args.seed}")
    print(_row("success, firmware in the loop", res.rows))
    print(_row(f"success, {args.method}-c on the host", host.rows))
    print(f"exchanges: {len(act)} act, {len(obs)} observe; largest |force difference| vs the host "
          f"{pil.max_force_diff:.3g} N (tolerance {FORCE_TOL:g} N); status mismatches {pil.status_mismatches}")
    print(f"instructions per act mean {act.mean():.0f} worst {act.max():.0f}; per observe mean "
          f"{obs.mean() if len(obs) else 0:.0f} worst {obs.max() if len(obs) else 0:.0f}; per learning tick "
          f"(act + observe) mean {tick.mean():.0f} worst {tick.max():.0f} (counted in QEMU, -icount)")
    print(f"overruns at {CLOCK_MHZ:g} MHz and {RATE_HZ:g} Hz (at {CPI_BOUND:g} cycles per instruction): "
          f"{overruns}; worst tick {worst_ms:.2f} ms of {1e3 / RATE_HZ:.0f} ms")
    print(f"shortest control period this Cortex-M7 would hold at {CLOCK_MHZ:g} MHz: {worst_ms:.2f} ms "
          f"(the worst tick above, {1e3 / worst_ms:.0f} Hz); other cores: kbt export --report")
    same = [r["success_rate"] for r in res.rows] == [r["success_rate"] for r in host.rows]
    ok = same and pil.max_force_diff <= FORCE_TOL and pil.status_mismatches == 0 and overruns == 0
    print("PIL check: " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1
