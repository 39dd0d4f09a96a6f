"""The parser's scaffolding: help that shows defaults, and which flags a command line gave."""

from __future__ import annotations

import argparse

_UNSET = object()


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` after every option whose help does not already name its default."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or not action.option_strings
                or any(action.default is v for v in (None, False, True, argparse.SUPPRESS))
                or isinstance(action, (argparse._HelpAction, argparse._VersionAction))):
            return text
        return text + " (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """``kbt``'s parser: every subcommand shows the defaults in its help, and a command line
    it cannot parse is one line on stderr (exit 2) pointing at ``-h``, not the usage block."""

    def __init__(self, *a, **kw):
        kw.setdefault("formatter_class", HelpFormatter)
        super().__init__(*a, **kw)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def subparser(parser, command):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[command]
    raise KeyError(command)


def explicit_flags(parser, argv, command):
    """``{dest: flag}`` of the options of ``command`` given in ``argv``, whatever their value
    (abbreviations and ``--flag=value`` included): the parse is repeated with every default
    replaced by a sentinel. ``parser`` is a fresh parser (its defaults are changed)."""
    sub = subparser(parser, command)
    flags = {}
    for action in sub._actions:
        if action.option_strings and action.default is not argparse.SUPPRESS:
            flags[action.dest] = max(action.option_strings, key=len)
            # an append action adds to its default: None (not a sentinel) means not given
            action.default = None if isinstance(action, argparse._AppendAction) else _UNSET
    ns, _ = parser.parse_known_args(argv)
    return {dest: flag for dest, flag in flags.items()
            if getattr(ns, dest, _UNSET) is not _UNSET and getattr(ns, dest, _UNSET) is not None}


def version():
    from importlib.metadata import PackageNotFoundError, version as _version

    try:
        return _version("kbt")
    except PackageNotFoundError:      # pragma: no cover - running from a tree that was never installed
        return "unknown (not installed)"
