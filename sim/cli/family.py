"""``kbt family``: the family file of a task's KBT prior
(``sim.pretraining.family``; docs/family-prior.md)."""

from __future__ import annotations

import shlex

from sim.cli import flags as fl

HELP = "compute the read-outs of other plants' experts behind the KBT head's family prior"
OUTPUTS = (("--out", "out", "file"),)


def add_arguments(p):
    p.add_argument("--out", required=True, metavar="PATH",
                   help="where to write the .npz (required; the shipped ones are controller/data/family_TASK.npz)")
    p.add_argument("--task", choices=("swingup", "balance"), default="swingup", help="the task (default swingup)")
    p.add_argument("--plants", type=int, default=None,
                   help="family members, 2-1000 (default: swing-up 40, balance 60)")
    p.add_argument("--seed", type=int, default=0, help="seeds the plants and their expert episodes (default 0)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")


def check(args):
    if args.plants is not None:
        fl.check_int("--plants", args.plants, 2, 1_000)
    fl.check_int("--seed", args.seed, 0)


def run(args):
    from sim.loops.family_prior import save_family
    from sim.loops.methods import MethodSettings, make_controller
    from sim.loops.progress import Progress
    from sim.pretraining.family import FAMILY_SIZE, family_readouts
    from sim.world.task import TASKS, PLANTS

    task = TASKS[args.task].on(PLANTS[args.task]["target"])
    n = FAMILY_SIZE[args.task] if args.plants is None else args.plants
    c = make_controller("kbt", task, MethodSettings(family=False))     # the input map, isotropic prior
    with Progress(n, "family plants", enabled=args.progress) as bar:
        W, plants = family_readouts(c, task, n=n, seed=args.seed, progress=lambda k: bar.update(1))
    meta = {"command": "kbt " + " ".join(shlex.quote(a) for a in args.argv), "task": args.task,
            "plants": n, "seed": args.seed}
    save_family(args.out, W, plants, c.fingerprint(), meta)
    print(f"{len(W)} plants, m_c {plants[:, 0].min():.2f}-{plants[:, 0].max():.2f}, m_p {plants[:, 1].min():.3f}-"
          f"{plants[:, 1].max():.3f}, l_p {plants[:, 2].min():.2f}-{plants[:, 2].max():.2f}; "
          f"read-out spread (mean std per weight) {W.std(axis=0).mean():.3g}")
    print(f"wrote {args.out}")
    return 0
