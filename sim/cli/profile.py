"""``kbt profile``: per-sample latency, memory, FLOPs and device budgets of every method
(``firmware_profile``, fed with TARGET's data by ``sim.experiments.profile_run``)."""

from __future__ import annotations

import sys

from sim.cli import flags as fl

HELP = "per-sample latency, memory and FLOPs of every method"
OUTPUTS = (("--json", "json", "file"),)


def add_arguments(p):
    p.add_argument("--rate", type=float, default=50.0, help="control rate (Hz) for the deadline analysis")
    p.add_argument("--calls", type=int, default=None,
                   help="timed calls for inference and KBT updates (default 10000, --quick 300)")
    p.add_argument("--retrain-calls", type=int, default=None,
                   help="timed retraining updates per capacity (default 20, --quick 2)")
    p.add_argument("--capacities", type=int, nargs="+", default=None,
                   help="retraining capacities (default 10 20 25 50 75 100, --quick 10)")
    p.add_argument("--budget-kib", type=int, default=None, help="add a custom device with this much RAM (default: none)")
    p.add_argument("--seed", type=int, default=None, help="seeds the measured data (default 0)")
    p.add_argument("--quick", action="store_true", help="small sizes (seconds), for checks")
    p.add_argument("--json", metavar="PATH", help="write every figure as JSON (default: not written)")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables (for docs)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress messages")


def check(args):
    fl.check_real("--rate", args.rate, 0.0, 1e6, low_open=True)
    fl.check_int("--calls", args.calls, 10, 10_000_000)
    fl.check_int("--retrain-calls", args.retrain_calls, 1, 100_000)
    for c in args.capacities or ():
        fl.check_int("--capacities", c, 1, 100_000)
    fl.check_int("--budget-kib", args.budget_kib, 1, 10**9)
    fl.check_int("--seed", args.seed, 0)


def run(args):
    from firmware_profile.profile import ProfileConfig, format_markdown, format_text
    from sim.experiments.profile_run import run_profile

    kw = {k: v for k, v in (("calls", args.calls), ("retrain_calls", args.retrain_calls),
                            ("capacities", tuple(args.capacities) if args.capacities else None),
                            ("budget_kib", args.budget_kib), ("seed", args.seed)) if v is not None}
    kw["rate_hz"] = args.rate
    cfg = ProfileConfig.quick(**kw) if args.quick else ProfileConfig(**kw)
    res = run_profile(cfg, progress=(lambda m: print(f"... {m}", file=sys.stderr, flush=True))
                      if args.progress else None)
    res["command"] = "kbt " + " ".join(args.argv)
    print(format_markdown(res) if args.markdown else format_text(res))
    if args.json:
        fl.write_json(args.json, res)
    return 0
