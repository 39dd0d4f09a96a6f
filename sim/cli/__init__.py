"""The ``kbt`` command line: one module per command, and a small registry.

Each command module (``lqr``, ``run``, ``view``, ``profile``, ``experiment``,
``pretrain``, ``family``, ``export``, ``pil``) owns its options and its work: ``HELP``,
``add_arguments(parser)``, ``run(args) -> exit code``, and optionally
``OUTPUTS`` (the output paths to check), ``FLAG_NAMES`` (its own library-name ->
flag entries for error messages), ``prepare(args)`` (defaults that depend
on other flags) and ``check(args)`` (every check that needs no work).
``flags`` holds the flags and checks several commands share, ``resume`` the
state-file flags, ``parser`` the scaffolding. ``main`` runs the checks before
any work, and turns a ``ValueError`` into one line on stderr and exit 2.

The top of the import graph: it may import every other part of ``sim``,
``controller`` and ``firmware_profile`` (docs/architecture.md).
"""

from __future__ import annotations

import importlib
import os
import sys

from sim.cli.flags import check_outputs, flag_message, os_error_text
from sim.cli.parser import Parser, explicit_flags, subparser, version

__all__ = ["main", "build_parser", "COMMANDS"]

#: command name -> the module that implements it
COMMANDS = {"lqr": "sim.cli.lqr", "run": "sim.cli.run", "view": "sim.cli.view", "profile": "sim.cli.profile",
            "experiment": "sim.cli.experiment", "pretrain": "sim.cli.pretrain", "family": "sim.cli.family",
            "export": "sim.cli.export", "pil": "sim.cli.pil"}


def command_module(name):
    return importlib.import_module(COMMANDS[name])


def build_parser():
    parser = Parser(prog="kbt", description="Kalman Bayesian Transformer cart-pole controller")
    parser.add_argument("--version", action="version", version=f"kbt {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        module = command_module(name)
        module.add_arguments(sub.add_parser(name, help=module.HELP))
    return parser


def _prepare_and_check(args, module):
    """Every check that needs no work: flags, bounds, output paths, the display."""
    if hasattr(module, "prepare"):
        module.prepare(args)
    if hasattr(module, "check"):
        module.check(args)
    check_outputs(args, getattr(module, "OUTPUTS", ()))


def main(argv=None):
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args, extra = parser.parse_known_args(argv)
    if extra:       # named by the command they were given to, in one line
        subparser(parser, args.command).error(f"unrecognized arguments: {' '.join(extra)}")
    args.argv = argv
    args.given = explicit_flags(build_parser(), argv, args.command)    # {dest: flag} given explicitly
    module = command_module(args.command)
    prog = f"kbt {args.command}"
    try:
        _prepare_and_check(args, module)     # before any work
        return module.run(args)
    except ValueError as e:
        parser.exit(2, f"{prog}: error: {flag_message(str(e), getattr(module, 'FLAG_NAMES', None))}\n")
    except KeyboardInterrupt:
        after = getattr(args, "interrupted_after", None)
        parser.exit(130, f"{prog}: interrupted" + (f" after {after}" if after else "") + "\n")
    except BrokenPipeError:         # e.g. kbt run | head: stop quietly, and let Python not complain at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as e:
        parser.exit(1, f"{prog}: error: {os_error_text(e)}\n")
