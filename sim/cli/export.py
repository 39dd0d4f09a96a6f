"""``kbt export``: the kbt or rls controller as C99 sources for a microcontroller
(``firmware_profile.export``, docs/firmware-export.md)."""

from __future__ import annotations

import os

HELP = "write the kbt or rls controller as C99 sources (kbt.h + kbt.c)"
OUTPUTS = (("--out", "out", "dir"),)


def add_arguments(p):
    p.add_argument("--method", choices=("kbt", "rls"), default="kbt", help="controller to export (default kbt)")
    p.add_argument("--out", metavar="DIR", required=True,
                   help="folder for the header and the source, created if missing (no default: required)")
    p.add_argument("--load-state", metavar="HEAD.npz", default=None,
                   help="export this saved head (kbt run --save-state; default: the prior)")
    p.add_argument("--weights", metavar="PATH", help="kbt: transformer weights (default: the shipped pre-trained file)")
    p.add_argument("--report", action="store_true",
                   help="also measure the worst-case budgets on Cortex-M0+, M4F and M7 in QEMU (minutes; default off)")


def _controller(args):
    """The controller to export: the method's prior, or ``--load-state``'s head with the
    head settings saved in that file; and a phrase naming where it came from."""
    from dataclasses import replace

    from controller.kalman_head import KalmanHead
    from sim.loops.methods import MethodSettings, make_controller
    from sim.world.cartpole import TARGET

    settings = MethodSettings(weights=args.weights)
    if args.load_state:
        try:
            saved = KalmanHead.load(args.load_state).config
        except (OSError, ValueError, KeyError) as e:
            raise ValueError(f"--load-state: {e}") from None
        settings = MethodSettings(weights=args.weights, head=replace(saved, backend="numba"))
    controller = make_controller(args.method, TARGET, settings)
    source = (f"the kbt prior ({args.weights or 'the shipped pre-trained weights'})" if args.method == "kbt"
              else "the rls prior (the SOURCE LQR gain)")
    if args.load_state:
        try:
            controller.load_state(args.load_state)
        except (OSError, ValueError) as e:
            raise ValueError(f"--load-state: {e}") from None
        source = f"{args.method} head {os.path.basename(args.load_state)} ({controller.n_updates} updates)"
    return controller, source


#: expert samples the kit's examples learn from
DEMO_SAMPLES = 8


def _demo():
    """(states, forces): TARGET's LQR expert on a few sampled states (seed 0)."""
    from controller.lqr import LQRController
    from sim.world.cartpole import TARGET
    from sim.world.data import sample_dataset

    S, F = sample_dataset(LQRController(TARGET), DEMO_SAMPLES, seed=0)
    return S, F


def run(args):
    from firmware_profile.export import file_names, write_export
    from sim.world.cartpole import TARGET

    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"--out: cannot write into {args.out}: is a file, not a folder")
    controller, source = _controller(args)
    paths = write_export(controller, args.out, source=source, u_max=TARGET.u_max, demo=_demo())
    header, body = file_names(args.method)
    m = args.method
    print(f"wrote {len(paths)} files into {args.out} ({m}: {controller.head.d_in + 1} head inputs): "
          f"include {header} and compile {body} with any C99 compiler, or\n"
          f"  cmake -S {args.out} -B {args.out}/build && cmake --build {args.out}/build   "
          f"(static library {m}, {m}_host_example)\n"
          f"  make -C {args.out}/examples/host run          the host example\n"
          f"  make -C {args.out}/examples/cpp run           the same from C++\n"
          f"  make -C {args.out}/examples/mps2-an500 run    the Cortex-M7 example in QEMU")
    if args.report:
        _report(args, controller, TARGET.u_max)
    return 0


def _report(args, controller, u_max):
    """``--report``: the worst-case budgets per core, printed and saved as budget_report.json."""
    import json

    from firmware_profile.budget_report import REPORT_SAMPLES, budget_report, format_report

    S, F = _demo()
    r = budget_report(controller, u_max=u_max, states=S[:REPORT_SAMPLES], forces=F[:REPORT_SAMPLES],
                      progress=_progress(args))
    r["command"] = "kbt " + " ".join(getattr(args, "argv", []) or ["export", "--report"])
    print(format_report(r))
    path = os.path.join(args.out, "budget_report.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(r, fh, indent=1)
    print(f"wrote {path}")


def _progress(args):
    import sys

    return lambda msg: print(f"... {msg}", file=sys.stderr, flush=True)
