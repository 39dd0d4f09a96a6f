"""The C export on Cortex-M4F and Cortex-M7: flash, RAM and instructions per call, measured.

``measure(files, states, forces, target)`` cross-compiles an export
(``arm-none-eabi-gcc``, float32 hard-float ABI) with a bare-metal harness
(``startup.c``, ``link.ld``, ``harness.c.in``: it calls ``<prefix>_init``, then
``act`` and ``observe`` on the given samples, and on a second state struct
``tick`` (act, then learn that state's label, the input map run once) on the
same samples, each call between two calls of an empty ``mark()``), runs it in QEMU's MPS2 board of that core with an
instruction trace (``-singlestep -d exec,nochain``: one line per executed
instruction; tested with QEMU 7.2) and cuts the trace at ``mark``'s address.
It returns:

* ``text`` / ``data`` / ``bss`` of the controller's object file
  (``arm-none-eabi-size``): flash = text + data, static RAM = data + bss (0:
  the export has no mutable globals);
* ``state_bytes`` (``sizeof`` the state struct) and ``stack_bytes`` (the
  deepest stack the calls used, from a painted stack): RAM = state + stack;
* instructions per ``act``, per ``observe`` and per ``tick`` (mean, min, max over the samples,
  the ``mark`` calls' own cost taken off) and their mix by class
  (``CLASSES``), from the disassembly of each executed address;
* estimated cycles: the mix times a cost per class (``CYCLE_COST``, per core),
  and the forces the emulated code computed (``forces``: ``act``'s, ``tick_forces``:
  ``tick``'s, for checks against the host and against each other).

Without the toolchain or QEMU, ``missing()`` says what is missing and
``measure`` raises RuntimeError with that reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from importlib import resources

import numpy as np

from firmware_profile.export.emit import c_array

__all__ = ["TARGETS", "CLASSES", "CYCLE_COST", "missing", "measure", "classify"]

#: core -> (QEMU machine, QEMU cpu, compiler flags)
TARGETS = {
    "cortex-m4f": ("mps2-an386", "cortex-m4", ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                                                "-mfpu=fpv4-sp-d16")),
    "cortex-m7": ("mps2-an500", "cortex-m7", ("-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard",
                                               "-mfpu=fpv5-sp-d16")),
}
#: the device build: the host's strictness and -O2, plus -ffp-contract=fast (a * b + c
#: as one fused multiply-add, one rounding: the FPUs of both cores have VFMA; -std=c99
#: alone would keep the ISO default of two roundings and cost about 12 000 more
#: instructions per kbt call)
OPT_FLAGS = ("-std=c99", "-O2", "-ffp-contract=fast", "-Wall", "-Wextra", "-Werror", "-pedantic")

CLASSES = ("alu", "mul", "div", "load", "store", "load_multi", "branch", "fp", "fp_mac", "fp_div_sqrt",
           "fp_load", "fp_store", "fp_multi", "other")

#: estimated cycles per instruction of each class (per register for the *_multi
#: classes, plus one), from the cores' technical reference manuals' issue timings,
#: zero-wait-state memory and no stalls: an estimate, not a measurement (docs/firmware-export.md)
CYCLE_COST = {
    "cortex-m4f": dict(alu=1, mul=1, div=6, load=2, store=1, load_multi=1, branch=2, fp=1, fp_mac=3,
                       fp_div_sqrt=14, fp_load=2, fp_store=1, fp_multi=1, other=1),
    "cortex-m7": dict(alu=1, mul=1, div=6, load=1, store=1, load_multi=1, branch=1, fp=1, fp_mac=1,
                      fp_div_sqrt=14, fp_load=1, fp_store=1, fp_multi=1, other=1),
}

_TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-objdump", "qemu-system-arm")
_HERE = "firmware_profile.cortex_m"


def missing():
    """Why the measurement cannot run here ('' when it can): the tools not on PATH."""
    gone = [t for t in _TOOLS if shutil.which(t) is None]
    if gone:
        return (f"{', '.join(gone)} not found (Debian: apt-get install gcc-arm-none-eabi "
                f"libnewlib-arm-none-eabi qemu-system-arm)")
    return ""


def _regs(operands):
    """Registers named in a register list ``{r4, r5-r7}`` (ranges expanded)."""
    inside = operands[operands.find("{") + 1: operands.find("}")]
    n = 0
    for part in inside.split(","):
        part = part.strip()
        if "-" in part:
            a, b = (int(re.sub(r"\D", "", x)) for x in part.split("-"))
            n += b - a + 1
        elif part:
            n += 1
    return n


def classify(mnemonic, operands=""):
    """(class, weight) of one Thumb-2 / VFP instruction: weight is 1 + registers for the
    multiple transfers (their cost per register), else 1."""
    m = mnemonic.split(".")[0].lower()
    if m.startswith(("vpush", "vpop", "vldm", "vstm")):
        return "fp_multi", 1 + _regs(operands)
    if m.startswith(("push", "pop", "ldm", "stm")):
        if m.startswith("pop") and "pc" in operands:
            return "load_multi", 1 + _regs(operands) + 1
        return "load_multi", 1 + _regs(operands)
    if m.startswith("vldr"):
        return "fp_load", 1
    if m.startswith("vstr"):
        return "fp_store", 1
    if m.startswith(("vdiv", "vsqrt")):
        return "fp_div_sqrt", 1
    if m.startswith(("vmla", "vmls", "vfma", "vfms", "vnmla", "vnmls", "vfnma", "vfnms")):
        return "fp_mac", 1
    if m.startswith("v"):
        return "fp", 1
    if m in ("b", "bl", "blx", "bx", "cbz", "cbnz", "tbb", "tbh") or re.fullmatch(
            r"b(eq|ne|cs|cc|hs|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al)(\.[nw])?", mnemonic.lower()):
        return "branch", 1
    if m.startswith("ldr") and "pc" in operands.split(",")[0]:
        return "branch", 1
    if m.startswith("ldr") or m.startswith("ldrex"):
        return "load", 1
    if m.startswith("str"):
        return "store", 1
    if m in ("sdiv", "udiv"):
        return "div", 1
    if m in ("mul", "muls", "mla", "mls", "umull", "smull", "umlal", "smlal"):
        return "mul", 1
    if m in ("bkpt", "svc", "wfi", "wfe", "dsb", "isb", "dmb", "nop"):
        return "other", 1
    return "alu", 1


def _disassembly(elf):
    """{address: (mnemonic, operands)} of every instruction in ``elf``."""
    out = subprocess.run(["arm-none-eabi-objdump", "-d", "--no-show-raw-insn", elf], capture_output=True,
                         text=True, check=True).stdout
    table = {}
    for line in out.splitlines():
        mt = re.match(r"\s*([0-9a-f]+):\s+(\S+)\s*(.*)$", line)
        if mt and not mt.group(2).startswith("."):
            table[int(mt.group(1), 16)] = (mt.group(2), mt.group(3).split(";")[0].strip())
    return table


def _symbol(elf, name):
    out = subprocess.run(["arm-none-eabi-nm", elf], capture_output=True, text=True, check=True).stdout
    for line in out.split("\n"):
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16) & ~1
    raise RuntimeError(f"{elf}: no symbol {name}")


def _size(obj):
    out = subprocess.run(["arm-none-eabi-size", obj], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


def _stream_header(states, forces):
    s = np.asarray(states, dtype=float).reshape(-1, 4)
    f = np.asarray(forces, dtype=float).reshape(-1)
    if len(s) != len(f) or len(s) < 1:
        raise ValueError(f"states, forces: expected as many labels as states (>= 1) but found {len(s)}, {len(f)}")
    return (f"#define STREAM_N {len(s)}\n" + c_array("stream_states", s) + c_array("stream_forces", f))


def _run(cmd, cwd, what, timeout=600):
    run = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if run.returncode != 0:
        first = "\n".join((run.stderr or run.stdout).strip().splitlines()[:8])
        raise RuntimeError(f"{what} failed ({run.returncode}):\n{first}")
    return run


def _build(files, prefix, states, forces, core, folder, opt):
    flags = [*TARGETS[core][2], *opt]
    for name, text in files.items():
        with open(os.path.join(folder, name), "w", encoding="utf-8") as fh:
            fh.write(text)
    res = resources.files(_HERE)
    for name in ("startup.c", "link.ld"):
        with open(os.path.join(folder, name), "w", encoding="utf-8") as fh:
            fh.write(res.joinpath(name).read_text(encoding="utf-8"))
    harness = res.joinpath("harness.c.in").read_text(encoding="utf-8")
    harness = harness.replace("PFX", prefix.upper()).replace("pfx", prefix)
    with open(os.path.join(folder, "harness.c"), "w", encoding="utf-8") as fh:
        fh.write(harness)
    with open(os.path.join(folder, "stream.h"), "w", encoding="utf-8") as fh:
        fh.write(_stream_header(states, forces))
    gcc = "arm-none-eabi-gcc"
    _run([gcc, *flags, "-c", f"{prefix}.c", "-o", f"{prefix}.o"], folder, f"{core}: compiling {prefix}.c")
    loose = [*TARGETS[core][2], "-std=c99", "-O2"]        # the harness: the same build whatever opt is
    _run([gcc, *loose, "-c", "startup.c", "harness.c"], folder, f"{core}: compiling the harness")
    _run([gcc, *loose, "-nostartfiles", "-T", "link.ld", "startup.o", "harness.o", f"{prefix}.o", "-lm",
          "-o", "fw.elf"], folder, f"{core}: linking")
    return os.path.join(folder, f"{prefix}.o"), os.path.join(folder, "fw.elf")


def _one_insn_per_block():
    """QEMU's flag for one guest instruction per translation block: ``-singlestep`` up to
    8.0, ``-accel tcg,one-insn-per-tb=on`` from 8.1 (where ``-singlestep`` is deprecated)."""
    out = subprocess.run(["qemu-system-arm", "--version"], capture_output=True, text=True).stdout
    found = re.search(r"version (\d+)\.(\d+)", out)
    if found and (int(found.group(1)), int(found.group(2))) >= (8, 1):
        return ["-accel", "tcg,one-insn-per-tb=on"]
    return ["-singlestep"]


def _trace(elf, core, folder):
    """(guest PC of every executed instruction, what the harness printed)."""
    machine, cpu, _ = TARGETS[core]
    out = os.path.join(folder, "out.txt")
    log = os.path.join(folder, "trace.log")
    _run(["qemu-system-arm", "-M", machine, "-cpu", cpu, "-nographic", "-monitor", "none", "-serial", "none",
          "-chardev", f"file,id=sh,path={out}", "-semihosting-config", "enable=on,target=native,chardev=sh",
          "-kernel", elf, *_one_insn_per_block(), "-d", "exec,nochain", "-D", log], folder, f"{core}: qemu")
    pcs = []
    with open(log, encoding="utf-8", errors="replace") as fh:
        for line in fh:       # Trace 0: 0x7f.. [00800408/0000014c/00000110/ff000201] mark
            if line.startswith("Trace"):
                pcs.append(int(line[line.index("[") + 1:].split("/")[1], 16))
    with open(out, encoding="utf-8") as fh:
        printed = fh.read()
    return np.array(pcs, dtype=np.int64), printed


def _segments(pcs, mark):
    """Instruction index ranges between successive entries of ``mark``."""
    at = np.flatnonzero(pcs == mark)
    return [(int(a), int(b)) for a, b in zip(at[:-1], at[1:])]


def measure(files, states, forces, core="cortex-m7", opt_flags=OPT_FLAGS):
    """Flash, RAM and instructions per call of an export on ``core`` (see the module doc).

    ``files`` {name: C text} of an export (one ``.h`` and one ``.c``), ``states``
    (N, 4) and ``forces`` (N,) the samples the harness acts on and learns from
    (a few dozen are enough: every call is traced).
    """
    if core not in TARGETS:
        raise ValueError(f"core: expected one of {', '.join(TARGETS)} but found {core!r}")
    why = missing()
    if why:
        raise RuntimeError(f"cannot measure on {core}: {why}")
    prefix = next(n[:-2] for n in files if n.endswith(".c"))
    with tempfile.TemporaryDirectory(prefix="kbt-cm-") as folder:
        obj, elf = _build(files, prefix, states, forces, core, folder, tuple(opt_flags))
        size = _size(obj)
        pcs, printed = _trace(elf, core, folder)
        table = _disassembly(elf)
        mark = _symbol(elf, "mark")
    segs = _segments(pcs, mark)
    n = len(np.asarray(forces).reshape(-1))
    if len(segs) != 1 + 6 * n:
        raise RuntimeError(f"{core}: expected {1 + 6 * n} marked segments in the trace but found {len(segs)}")
    base = segs[0][1] - segs[0][0]
    cost = CYCLE_COST[core]
    out = {"core": core, "qemu_machine": TARGETS[core][0], "flags": " ".join([*TARGETS[core][2], *opt_flags]),
           **size, "flash_bytes": size["text"] + size["data"], "calls": n}
    # segments: 0 the empty pair, then per sample 6 i + 1 loop and printing, + 2 act, + 3 printing,
    # + 4 observe, + 5 nothing, + 6 tick (act, then observe that state's label: one input map)
    for name, offset in (("act", 2), ("observe", 4), ("tick", 6)):
        counts, mixes = [], Counter()
        for i in range(n):
            a, b = segs[offset + 6 * i]
            counts.append(b - a - base)
            for pc in pcs[a:b]:
                cls, w = classify(*table.get(int(pc), ("?", "")))
                mixes[cls] += 1
                mixes[cls + "#weight"] += w
        # the marks' own instructions are simple ALU / branch ones: one cycle each
        cycles = sum(cost[c] * mixes[c + "#weight"] for c in CLASSES) / n - base
        out[name] = {"instructions_mean": float(np.mean(counts)), "instructions_min": int(min(counts)),
                     "instructions_max": int(max(counts)),
                     "mix": {c: mixes[c] / n for c in CLASSES if mixes[c]},
                     "cycles_est": float(cycles)}
    words = printed.split()
    try:
        as_float = lambda w: float(np.frombuffer(bytes.fromhex(w), ">f4")[0])     # noqa: E731
        out["forces"] = [as_float(w) for w in words[:2 * n:2]]
        out["tick_forces"] = [as_float(w) for w in words[1:2 * n:2]]
        sp, low = (int(w, 16) for w in words[2 * n + 1: 2 * n + 3])
        out["stack_bytes"] = sp - low
        out["state_bytes"] = int(words[2 * n + 4], 16)
    except (ValueError, IndexError) as e:
        raise RuntimeError(f"{core}: unexpected harness output {printed[:200]!r}") from e
    out["ram_bytes"] = out["state_bytes"] + out["stack_bytes"] + size["data"] + size["bss"]
    return out
