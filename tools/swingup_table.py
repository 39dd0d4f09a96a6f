"""The swing-up plant-choice table: which plant shift breaks the SOURCE expert but not its own.

Rows are plants (SOURCE, the TARGET candidates, the second shift), columns the
swing-up expert (``sim.world.swingup_expert.SwingupExpert``) designed for SOURCE and
for the plant itself, each scored by
``evaluate_success(expert, SWINGUP.on(plant), 100, seed=0)``. The chosen
TARGET needs the SOURCE-designed expert <= 0.1 and its own >= 0.99 (which
also shows that the swing-up is reachable within the force and track limits).
``--sweep`` adds the sweep of the pumping gain k_e and of the LQR hand-over
region behind the defaults (the expert designed for each plant itself).

    python tools/swingup_table.py --sweep --out docs/data/swingup_table.json
"""

import argparse
import json
import os
import time

from sim.world.cartpole import CartPoleParams
from sim.loops.loop import evaluate_success
from sim.world.swingup_expert import SwingupExpert
from sim.world.task import SWINGUP, SWINGUP_SHIFT2, SWINGUP_TARGET

#: (label, (m_c, m_p, l_p)); SOURCE first, then TARGET candidates, then the second shift
PLANTS = [
    ("SOURCE", (1.0, 0.1, 0.5)),
    ("TARGET (chosen)", (SWINGUP_TARGET.m_c, SWINGUP_TARGET.m_p, SWINGUP_TARGET.l_p)),
    ("candidate", (1.0, 0.1, 1.0)),
    ("candidate", (1.0, 0.1, 0.75)),
    ("candidate", (2.0, 0.5, 0.7)),
    ("candidate", (1.0, 0.3, 0.8)),
    ("candidate", (1.0, 0.5, 1.0)),
    ("candidate", (1.0, 0.3, 1.2)),
    ("candidate", (1.0, 1.0, 1.0)),
    ("SHIFT2 (heavier cart)", (SWINGUP_SHIFT2.m_c, SWINGUP_SHIFT2.m_p, SWINGUP_SHIFT2.l_p)),
]
SWEEP_PLANTS = [(1.0, 0.1, 0.5), (SWINGUP_TARGET.m_c, SWINGUP_TARGET.m_p, SWINGUP_TARGET.l_p),
                (SWINGUP_SHIFT2.m_c, SWINGUP_SHIFT2.m_p, SWINGUP_SHIFT2.l_p), (2.0, 0.5, 0.7)]
K_E = [0.25, 0.4, 0.45, 0.5, 0.55, 0.6, 0.75, 1.0, 1.5]
REGIONS = [(0.2, 2.0), (0.35, 1.5), (0.35, 3.0), (0.5, 4.0)]


def plant(mcp):
    return CartPoleParams(*mcp, integrator="rk4")


def success(expert, mcp, episodes, seed):
    ev = evaluate_success(expert, SWINGUP.on(plant(mcp)), episodes, seed=seed)
    return ev.success_rate, ev.saturation_fraction


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sweep", action="store_true", help="also sweep k_e and the LQR hand-over region")
    ap.add_argument("--out", default=None, help="JSON file (e.g. docs/data/swingup_table.json)")
    args = ap.parse_args()
    start = time.perf_counter()
    source_expert = SwingupExpert(SWINGUP.params)
    rows = []
    print(f"swing-up success over {args.episodes} episodes (seed {args.seed}); "
          "columns: expert designed for SOURCE / for the plant itself")
    print(f"{'plant':24s} {'m_c':>5s} {'m_p':>5s} {'l_p':>5s} {'SOURCE-designed':>16s} {'own':>6s} {'own saturated':>14s}")
    for label, mcp in PLANTS:
        s_src, _ = success(source_expert, mcp, args.episodes, args.seed)
        s_own, sat = success(SwingupExpert(plant(mcp)), mcp, args.episodes, args.seed)
        rows.append({"label": label, "m_c": mcp[0], "m_p": mcp[1], "l_p": mcp[2],
                     "source_designed": s_src, "own_designed": s_own, "own_saturation_fraction": sat})
        print(f"{label:24s} {mcp[0]:5g} {mcp[1]:5g} {mcp[2]:5g} {s_src:16.2f} {s_own:6.2f} {sat:14.3f}", flush=True)
    payload = {"command": "python tools/swingup_table.py" + (" --sweep" if args.sweep else "")
               + (f" --out {args.out}" if args.out else ""),
               "episodes": args.episodes, "seed": args.seed, "rows": rows}
    if args.sweep:
        names = ", ".join(f"({m:g},{p:g},{l:g})" for m, p, l in SWEEP_PLANTS)
        print(f"\nsweep, expert designed for each plant itself, plants {names}")
        sweep = []
        for k_e in K_E:
            r = [success(SwingupExpert(plant(mcp), k_e), mcp, args.episodes, args.seed)[0] for mcp in SWEEP_PLANTS]
            sweep.append({"k_e": k_e, "theta_lqr": 0.35, "theta_dot_lqr": 3.0, "success": r})
            print(f"k_e {k_e:5g}  theta_lqr 0.35 theta_dot_lqr 3.0: " + " ".join(f"{v:.2f}" for v in r), flush=True)
        for th, thd in REGIONS:
            r = [success(SwingupExpert(plant(mcp), theta_lqr=th, theta_dot_lqr=thd), mcp, args.episodes,
                         args.seed)[0] for mcp in SWEEP_PLANTS]
            sweep.append({"k_e": 0.5, "theta_lqr": th, "theta_dot_lqr": thd, "success": r})
            print(f"k_e   0.5  theta_lqr {th:4g} theta_dot_lqr {thd:3g}: " + " ".join(f"{v:.2f}" for v in r),
                  flush=True)
        payload["sweep"] = {"plants": [list(p) for p in SWEEP_PLANTS], "rows": sweep}
    print(f"\n{time.perf_counter() - start:.1f} s")
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(payload, f, indent=2)
            f.write("\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
