"""``--save-state`` / ``--load-state`` on the command line: the run record's fields
(``sim.loops.run_state``) mapped onto the flags, and one-line reasons when a file
cannot be resumed."""

from __future__ import annotations

import os
import re
import sys

from sim.cli.flags import FLAG_NAMES, head_config, presets, system_from_args
from sim.loops.run_state import (STATEFUL, RUN_SETTINGS, Resume, data_seed, head_flags, peek_state, run_record,
                                 save_run_state)

#: the plant's flags (dest -> flag)
_SYSTEM_FLAGS = {"system": "--system", "m_c": "--m-c", "m_p": "--m-p", "l_p": "--l-p"}


def resume_of(args):
    """The run's ``Resume`` (a fresh one if the run resumes nothing)."""
    if getattr(args, "_resume", None) is None:
        args._resume = Resume()
    return args._resume


def stream_position(args):
    """``(start, data_start)``: samples the resumed head has seen, and where this run
    enters the i.i.d. stream of its data seed (0, 0 without --load-state)."""
    return resume_of(args).position(args.seed)


def record_of(args, consumed):
    """The ``__run__`` record for a state file written after ``consumed`` samples of this run."""
    name, params = system_from_args(args)
    cfg = head_config(args, softmax=args.method == "kbt-softmax")
    head = {dest: getattr(cfg, field) for dest, field in head_flags(args.method).items()}
    return run_record(method=args.method, task=getattr(args, "task", "balance"), system=name, params=params,
                      stream=getattr(args, "stream", "iid"), sigma_data=getattr(args, "sigma_data", 0.0),
                      seed=args.seed, head=head, consumed=consumed, resume=resume_of(args))


def save_run(args, controller, consumed):
    """Save the head with the ``__run__`` record of this run after ``consumed`` samples."""
    save_run_state(controller, args.save_state, record_of(args, consumed))


def save_state(args, controller, consumed):
    if args.save_state:
        save_run(args, controller, consumed)
        print(f"saved the head to {args.save_state}")


def _shown(v):
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return " ".join(_shown(x) for x in v)
    return str(v)


def restore_run_settings(args):
    """``--load-state``: every run setting the command line does not give (method,
    system, stream, sigma_data, seed, head settings) comes from the file's run
    record. A given setting that differs is used, and noted once the head has
    loaded; given head settings that differ stay an error (the head's config)."""
    resume = args._resume = Resume()
    if not getattr(args, "load_state", None):
        return
    run, saved_method = peek_state(args.load_state)
    given = args.given
    method = run["method"] if isinstance(run, dict) else saved_method
    if method in STATEFUL and "method" not in given:
        args.method = method
    resume.record = run
    if not isinstance(run, dict):
        return
    saved_task = run.get("task", "balance")       # files written before tasks existed: balance
    if "task" not in given:
        args.task = saved_task
    elif args.task != saved_task:
        resume.notes.append(("--task", args.task, saved_task))
    _restore_system(args, run, resume.notes)
    for dest, flag in RUN_SETTINGS.items():
        saved = run[dest]
        if dest not in given:
            setattr(args, dest, saved)
        elif getattr(args, dest) != saved:
            resume.notes.append((flag, getattr(args, dest), saved))
    for dest, value in run["head"].items():
        if dest not in given:
            setattr(args, dest, list(value) if isinstance(value, (list, tuple)) else value)


def _restore_system(args, run, notes):
    system_given = [flag for dest, flag in _SYSTEM_FLAGS.items() if dest in args.given]
    if not system_given:
        preset = presets(args).get(run["system"])
        if preset is not None and (preset.m_c, preset.m_p, preset.l_p) == (run["m_c"], run["m_p"], run["l_p"]):
            args.system = run["system"]
        else:
            args.system, args.m_c, args.m_p, args.l_p = None, run["m_c"], run["m_p"], run["l_p"]
        return
    name, params = system_from_args(args)
    if (params.m_c, params.m_p, params.l_p) != (run["m_c"], run["m_p"], run["l_p"]):
        notes.append(("/".join(system_given), name, run["system"]))


def _note_differences(notes):
    if len(notes) == 1:
        flag, given, saved = notes[0]
        return f"note: {flag} {_shown(given)} differs from the saved run ({_shown(saved)}); using {_shown(given)}"
    return (f"note: {', '.join(f'{flag} {_shown(g)}' for flag, g, _ in notes)} differ from the saved run "
            f"({', '.join(_shown(s) for _, _, s in notes)}); using the values given")


def _resume_position(args, controller):
    """After a successful load: where the count and the i.i.d. stream continue, in words."""
    resume = resume_of(args)
    if not resume.continue_from(controller.n_updates, args.seed):
        seen = controller.n_updates
        why = "has an unreadable run record" if resume.record == "invalid" else "was saved by an older kbt"
        print(f"warning: {args.load_state} {why}: its stream position is unknown; counting from the {seen} "
              f"labels the head has seen, taken as the first {seen} of the i.i.d. stream of --seed {args.seed}",
              file=sys.stderr)
    start, data_start = stream_position(args)
    if args.command != "run" or args.stream == "iid":       # kbt view learns from the i.i.d. stream
        return (f"samples count from {start}; the i.i.d. stream (data seed {data_seed(args.seed)}) "
                f"continues at sample {data_start}")
    return f"samples count from {start}; the on-policy stream has no stored position"


def load_state(args, controller):
    """``--load-state``: resume the head, or explain why not (and start from
    the prior only with ``--allow-prior``)."""
    if not args.load_state:
        return None
    if not callable(getattr(controller, "load_state", None)):
        raise ValueError(f"--load-state: the {args.method} method has no saved state (only kbt)")
    try:
        controller.load_state(args.load_state)
    except (OSError, ValueError, KeyError, EOFError) as e:
        why = state_error_text(args.load_state, e)
        if not args.allow_prior:
            raise ValueError(f"--load-state: cannot resume from {args.load_state}: {why}. "
                             "Pass --allow-prior to start from the pre-trained prior instead") from None
        print(f"warning: cannot resume from {args.load_state}: {why}; starting from the prior (--allow-prior)",
              file=sys.stderr)
        return "prior"
    where = _resume_position(args, controller)
    print(f"resumed the head from {args.load_state} ({controller.n_updates} updates so far); {where}")
    if resume_of(args).notes:
        print(_note_differences(resume_of(args).notes), file=sys.stderr)
    return "resumed"


def _parse_config_repr(text):
    """``{field: value text}`` of a dataclass repr ``Name(a=1, b=(2, 3))``."""
    body = text[text.index("(") + 1:-1]
    fields, depth, start = {}, 0, 0
    for i, ch in enumerate(body + ","):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            key, _, value = body[start:i].strip().partition("=")
            if key:
                fields[key] = value
            start = i + 1
    return fields


def _config_reprs(text):
    """The ``HeadConfig(...)`` reprs in ``text``, balanced parentheses."""
    out = []
    for m in re.finditer(r"HeadConfig\(", text):
        depth = 0
        for j in range(m.end() - 1, len(text)):
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            if depth == 0:
                out.append(text[m.start():j + 1])
                break
    return out


def state_error_text(path, error):
    """Why ``--load-state path`` failed, in one short line naming the file once."""
    if isinstance(error, FileNotFoundError):
        return "no such file"
    text = str(error)
    for prefix in (f"{path}: ", f"{os.fspath(path)}: "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    if "does not match" in text:
        reprs = _config_reprs(text)
        if len(reprs) == 2:
            saved, now = (_parse_config_repr(r) for r in reprs)
            diff = [f"{FLAG_NAMES.get(k, k)} {saved.get(k, '-')} in the file, {now.get(k, '-')} now"
                    for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]
            if diff:
                return "it was saved with other head settings: " + "; ".join(diff)
        return "it was saved with other head settings"
    return text
