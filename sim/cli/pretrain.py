"""``kbt pretrain``: pre-train the decision transformer on SOURCE expert data
(``sim.pretraining.balance``; ``--task swingup``: ``sim.pretraining.swingup``)."""

from __future__ import annotations

import argparse
import shlex

from controller.tokenizer import TARGET_STYLES
from controller.transformer import TransformerConfig
from sim.cli import flags as fl

HELP = "pre-train the decision transformer on SOURCE expert data (balance: LQR, swingup: the swing-up expert)"
OUTPUTS = (("--out", "out", "file"),)


def add_arguments(p):
    p.add_argument("--out", required=True, metavar="PATH",
                   help="where to write the .npz (required, no default; its folder must exist)")
    p.add_argument("--task", choices=fl.TASK_NAMES, default="balance",
                   help="balance: i.i.d. box states with LQR labels (sim.pretraining.balance); swingup: noisy expert "
                        "rollouts + DAgger (sim.pretraining.swingup, docs/swingup.md) (default balance)")
    p.add_argument("--dagger-rounds", type=int, default=None,
                   help="swingup only: DAgger rounds after the expert-data phase (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seeds the initialisation and the data")
    p.add_argument("--steps", type=int, default=4000,
                   help="Adam steps (default 4000; swingup: of the expert-data phase, each DAgger round adds 2000)")
    p.add_argument("--batch", type=int, default=256, help="samples per step (default 256)")
    p.add_argument("--lr", type=float, default=3e-3, help="initial learning rate (default 3e-3)")
    p.add_argument("--bins", type=int, default=TransformerConfig.n_bins, help="action bins")
    p.add_argument("--target", choices=TARGET_STYLES, default=TransformerConfig.target, help="training target style")
    p.add_argument("--sigma", type=float, default=TransformerConfig.sigma, help="std (N) of the gaussian target")
    p.add_argument("--query", choices=("state", "constant"), default=TransformerConfig.query,
                   help="action-query token: embeds the whole state, or a constant vector")
    p.add_argument("--final-ln", action=argparse.BooleanOptionalAction, default=TransformerConfig.final_ln,
                   help="final LayerNorm on H_dec (default: off)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")


def check(args):
    if "dagger_rounds" in args.given and args.task != "swingup":
        raise ValueError(f"{args.given['dagger_rounds']}: does not apply to --task {args.task} (only to swingup)")
    fl.check_int("--dagger-rounds", args.dagger_rounds, 0, 1_000)
    fl.check_int("--seed", args.seed, 0)
    fl.check_int("--steps", args.steps, 1, 10_000_000)
    fl.check_int("--batch", args.batch, 1, 1_000_000)
    fl.check_real("--lr", args.lr, 0.0, 10.0, low_open=True)
    fl.check_int("--bins", args.bins, 2, 1_000)
    fl.check_real("--sigma", args.sigma, 0.0, 1e3, low_open=True)


def _command(args):
    return "kbt " + " ".join(shlex.quote(a) for a in args.argv)


def run(args):
    from sim.loops.loop import evaluate_success
    from sim.pretraining.balance import pretrain
    from sim.world.cartpole import SOURCE, TARGET

    if args.task == "swingup":
        return _pretrain_swingup(args)
    cfg = TransformerConfig(n_bins=args.bins, target=args.target, sigma=args.sigma, query=args.query,
                            final_ln=args.final_ln)
    policy, history = pretrain(cfg, seed=args.seed, steps=args.steps, batch=args.batch, lr=args.lr,
                               progress=args.progress)
    policy.meta["command"] = _command(args)
    for name, system in (("source", SOURCE), ("target", TARGET)):
        policy.meta[f"success_{name}"] = evaluate_success(policy, system, 100, seed=0).success_rate
    policy.save(args.out)
    m = policy.meta
    print(f"held-out force RMSE on SOURCE data: {m['val_rmse']:.4f} N (final loss {m['final_loss']:.4f}, "
          f"{m['train_seconds']:.1f} s)")
    print(f"success over 100 episodes (seed 0): SOURCE {m['success_source']:.2f}, TARGET {m['success_target']:.2f}")
    print(f"wrote {args.out}")
    return 0


def _pretrain_swingup(args):
    """Noisy expert rollouts + DAgger on SOURCE (``sim.pretraining.swingup``)."""
    from sim.pretraining.swingup import SWINGUP_CONFIG, pretrain_swingup

    cfg = TransformerConfig(n_bins=args.bins, target=args.target, sigma=args.sigma, query=args.query,
                            final_ln=args.final_ln, state_scale=SWINGUP_CONFIG.state_scale)
    rounds = 4 if args.dagger_rounds is None else args.dagger_rounds
    policy, history = pretrain_swingup(cfg, seed=args.seed, steps_initial=args.steps, batch=args.batch,
                                       lr=args.lr, dagger_rounds=rounds, progress=args.progress)
    policy.meta["command"] = _command(args)
    policy.save(args.out)
    m = policy.meta
    print(f"held-out force RMSE on clean SOURCE swing-up expert episodes: {m['val_rmse']:.4f} N "
          f"(final loss {m['final_loss']:.4f}, {m['n_data']} labelled states, {m['train_seconds']:.1f} s)")
    print(f"swing-up success over 100 episodes (seed 0): SOURCE {m['success_source']:.2f}, "
          f"TARGET {m['success_target']:.2f}, SHIFT2 {m['success_shift2']:.2f}")
    print(f"wrote {args.out}")
    return 0
