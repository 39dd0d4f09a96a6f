"""``kbt lqr``: the LQR gain and the closed-loop eigenvalues for a cart-pole."""

from __future__ import annotations

from sim.cli import flags as fl

HELP = "LQR gain and closed-loop eigenvalues"


def add_arguments(p):
    fl.add_system_args(p, integrator=False)      # the design is continuous-time: no integrator
    p.add_argument("--task", choices=fl.TASK_NAMES, default="balance",
                   help="whose --system presets: the balance task's source/target or the swing-up task's "
                        "(default balance)")
    p.add_argument("--r", type=float, default=None, help="force weight R (default 0.1)")


def check(args):
    fl.check_system(args)
    fl.check_real("--r", args.r, 0.0, 1e9, low_open=True)


def run(args):
    from controller.lqr import lqr_gain

    name, params = fl.system_from_args(args)
    K, E = lqr_gain(params, R=args.r)
    print(f"system {name}{'' if args.task == 'balance' else ' (' + args.task + ')'}: m_c={params.m_c:g} m_p={params.m_p:g} l_p={params.l_p:g}")
    print("K = [" + ", ".join(f"{k:.4f}" for k in K) + "]   (u = -K x)")
    print("closed-loop eigenvalues: " + ", ".join(f"{e.real:.4f}{e.imag:+.4f}j" for e in E))
    return 0
