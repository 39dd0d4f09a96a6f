"""Worst-case budgets of the C export on Cortex-M0+, M4F and M7 (``kbt export --report``).

For each core the export is cross-compiled (``arm-none-eabi-gcc -O2``; M4F and M7
with their single-precision FPU and ``-ffp-contract=fast``, M0+ with soft float:
``-mfloat-abi=soft``, newlib's libm and libgcc's float routines) and linked with a
bare-metal harness (``cortex_m/report_harness.c.in``) that runs ``act_status`` and
``observe_status`` on a stream of samples chosen to take every path of the code:
plain expert labels, a far label (down-weighted), a label that completes a detected
change (the harness sets the detector's statistic past its threshold first), a
label beyond ``FORCE_MAX`` (refused) and a state beyond its range (refused). QEMU
runs it with one trace line per executed instruction (``cortex_m``), on the
boards ``TARGETS`` names (QEMU 7.2 models no Cortex-M0+: its ``microbit`` board's
Cortex-M0 runs the same ARMv6-M instruction set, built with ``-mcpu=cortex-m0plus``).

Reported per core:

* flash (text + data of the export's object), static RAM (data + bss: 0), the
  state struct and the optional workspace (``sizeof``);
* the worst-case stack of every public call, from ``-fstack-usage`` (frames of the
  export's functions) over the call graph of the linked program (``bl`` / tail
  ``b`` edges from its disassembly; library functions' frames from their
  prologues), and the deepest stack the harness painted, as a check;
* instructions per ``act`` and ``observe``: counted in QEMU (not cycles), mean over
  the accepted calls and the worst of every kind (learned, down-weighted, change,
  refused label, refused state);
* time at stated clocks: estimated cycles (``COST``: a cost per instruction class,
  zero-wait-state memory, no stalls; an estimate) over the clock, and whether the
  worst tick (worst act + worst observe) fits a 50 Hz loop.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from importlib import resources

import numpy as np

from firmware_profile import cortex_m
from firmware_profile.export.emit import c_array

__all__ = ["TARGETS", "COST", "CLOCKS", "PUBLIC", "REPORT_SAMPLES", "budget_report", "format_report", "report_stream",
           "stack_usage"]

#: core -> (QEMU machine, QEMU cpu, compiler flags, linker script)
TARGETS = {
    "cortex-m0plus": ("microbit", "cortex-m0", ("-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft"), "link_m0.ld"),
    "cortex-m4f": (*cortex_m.TARGETS["cortex-m4f"], "link.ld"),
    "cortex-m7": (*cortex_m.TARGETS["cortex-m7"], "link.ld"),
}
#: estimated cycles per instruction class (cortex_m.CYCLE_COST; M0+: its reference manual's
#: timings with the single-cycle multiplier: loads and stores 2, taken branches 2, push / pop
#: 1 + registers; no FPU, so no FP classes occur)
COST = {
    "cortex-m0plus": dict(alu=1, mul=1, div=1, load=2, store=2, load_multi=1, branch=2, fp=1, fp_mac=1,
                          fp_div_sqrt=1, fp_load=1, fp_store=1, fp_multi=1, other=1),
    **cortex_m.CYCLE_COST,
}
#: clocks (MHz) the times are given at: common parts of each core
CLOCKS = {"cortex-m0plus": (48.0, 64.0), "cortex-m4f": (168.0, 180.0), "cortex-m7": (216.0, 480.0)}
#: the control period the fit is judged against (s)
PERIOD_S = 1.0 / 50.0
#: the public calls whose worst-case stack is reported (prefix added)
PUBLIC = ("init", "check", "act", "act_status", "act_ws", "observe", "observe_status", "observe_ws", "predict",
          "predict_split")
#: expert samples in the report's stream (before the four special ones): every sample is
#: traced instruction by instruction, about 5 M instructions each on the M0+
REPORT_SAMPLES = 4
#: the kinds of sample in the report's stream
KINDS = ("learned", "downweighted", "change", "refused label", "refused state")
#: where the build flags differ from the measurement of ``kbt profile``: nothing but the core
OPT = cortex_m.OPT_FLAGS


def report_stream(states, forces, force_max):
    """(states (n, 4), forces (n,), kinds (n,) index into ``KINDS``): the given expert
    samples, then one each of a far label, a completed change, a refused label and a
    refused state (the last expert sample's state with other labels)."""
    S = [np.asarray(s, float) for s in states]
    F = [float(f) for f in forces]
    kinds = [0] * len(S)
    s_last, f_last = S[-1], F[-1]
    S += [s_last, s_last, s_last, np.array([4e18, 0.0, 0.0, 0.0])]
    F += [f_last + 300.0, f_last + 300.0, 10.0 * force_max, f_last]
    kinds += [1, 2, 3, 4]
    return np.array(S), np.array(F), np.array(kinds)


def _write(folder, name, text):
    with open(os.path.join(folder, name), "w", encoding="utf-8") as fh:
        fh.write(text)


def _build(files, prefix, S, F, kinds, core, folder):
    machine, cpu, flags, link = TARGETS[core]
    for name, text in files.items():
        _write(folder, name, text)
    res = resources.files("firmware_profile.cortex_m")
    _write(folder, "startup.c", res.joinpath("startup.c").read_text(encoding="utf-8"))
    _write(folder, "link.ld", res.joinpath(link).read_text(encoding="utf-8"))
    harness = res.joinpath("report_harness.c.in").read_text(encoding="utf-8")
    _write(folder, "harness.c", harness.replace("PFX", prefix.upper()).replace("pfx", prefix))
    _write(folder, "stream.h", f"#define STREAM_N {len(S)}\n" + c_array("stream_states", S) + c_array("stream_forces", F)
           + "static const int stream_kind[] = {" + ", ".join(str(int(k == 2)) for k in kinds) + "};\n")
    gcc = "arm-none-eabi-gcc"
    cortex_m._run([gcc, *flags, *OPT, "-fstack-usage", "-c", f"{prefix}.c", "-o", f"{prefix}.o"], folder,
                  f"{core}: compiling {prefix}.c")
    loose = [*flags, "-std=c99", "-O2"]
    cortex_m._run([gcc, *loose, "-c", "startup.c", "harness.c"], folder, f"{core}: compiling the harness")
    cortex_m._run([gcc, *loose, "-nostartfiles", "-T", "link.ld", "startup.o", "harness.o", f"{prefix}.o", "-lm",
                   "-o", "fw.elf"], folder, f"{core}: linking")
    return os.path.join(folder, f"{prefix}.o"), os.path.join(folder, "fw.elf"), os.path.join(folder, f"{prefix}.su")


# ------------------------------------------------------------ worst-case stack
def _functions(elf):
    """{name: [(mnemonic, operands), ...]} of every function in ``elf``'s disassembly."""
    out = subprocess.run(["arm-none-eabi-objdump", "-d", "--no-show-raw-insn", elf], capture_output=True, text=True,
                         check=True).stdout
    funcs, cur = {}, None
    for line in out.splitlines():
        head = re.match(r"^[0-9a-f]+ <([^>]+)>:$", line)
        if head:
            cur = funcs.setdefault(head.group(1), [])
            continue
        ins = re.match(r"\s*[0-9a-f]+:\s+(\S+)\s*(.*)$", line)
        if ins and cur is not None and not ins.group(1).startswith("."):
            cur.append((ins.group(1), ins.group(2).split(";")[0].strip()))
    return funcs


def _prologue_frame(ins):
    """Bytes a function's prologue reserves: pushed registers, vpush, ``sub sp``."""
    total = 0
    for mn, ops in ins[:16]:
        m = mn.split(".")[0]
        if m == "push" or (m.startswith("stmdb") and ops.startswith("sp!")):
            total += 4 * cortex_m._regs(ops)
        elif m == "vpush":
            total += (8 if "d" in ops.split("{")[1][:2] else 4) * cortex_m._regs(ops)
        elif m in ("sub", "subw") and ops.replace(" ", "").startswith(("sp,#", "sp,sp,#")):
            total += int(re.search(r"#(\d+)", ops).group(1))
    return total


def _callees(ins, funcs, self_name):
    out = set()
    for mn, ops in ins:
        m = mn.split(".")[0]
        if m in ("bl", "blx", "b", "bx") or re.fullmatch(r"b(eq|ne|cs|cc|hs|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le)", m):
            t = re.search(r"<([^>+]+)>", ops)
            if t and t.group(1) in funcs and t.group(1) != self_name:
                out.add(t.group(1))
    return out


def stack_usage(elf, su_path):
    """({function: worst-case stack bytes through its calls}, {function: own frame}, notes):
    frames from ``-fstack-usage`` (``su_path``) where the compiler wrote one, else from
    the prologue; edges from the disassembly. A cycle (recursion) or a dynamic frame is a note."""
    funcs = _functions(elf)
    su, notes = {}, []
    with open(su_path, encoding="utf-8") as fh:
        for line in fh:      # kbt.c:123:5:kbt_act_status	48	static
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 3:
                su[parts[0].rsplit(":", 1)[-1]] = int(parts[1])
                if parts[2] != "static":
                    notes.append(f"{parts[0]}: {parts[2]} frame")
    frame = {f: su.get(f, _prologue_frame(ins)) for f, ins in funcs.items()}
    graph = {f: _callees(ins, funcs, f) for f, ins in funcs.items()}
    worst, busy = {}, set()

    def visit(f):
        if f in worst:
            return worst[f]
        if f in busy:
            notes.append(f"recursion through {f}")
            return 0
        busy.add(f)
        worst[f] = frame[f] + max((visit(g) for g in graph[f]), default=0)
        busy.discard(f)
        return worst[f]

    for f in funcs:
        visit(f)
    return worst, frame, notes


# ------------------------------------------------------------ the trace
_HEX = np.full(256, 0, np.uint32)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i


def _pcs(log):
    """Guest PCs of every traced instruction (uint32), parsed in chunks with NumPy."""
    pat = re.compile(rb"\[[0-9a-f]+/([0-9a-f]{8})/")
    parts = []
    weights = (16 ** np.arange(7, -1, -1)).astype(np.uint32)
    with open(log, "rb") as fh:
        while True:
            chunk = fh.read(32 << 20)
            if not chunk:
                break
            chunk += fh.readline()
            found = pat.findall(chunk)
            if found:
                digits = _HEX[np.frombuffer(b"".join(found), np.uint8).reshape(-1, 8)]
                parts.append((digits * weights).sum(axis=1, dtype=np.uint32))
    return np.concatenate(parts) if parts else np.zeros(0, np.uint32)


def _run_qemu(elf, core, folder):
    machine, cpu, _, _ = TARGETS[core]
    out, log = os.path.join(folder, "out.txt"), os.path.join(folder, "trace.log")
    cortex_m._run(["qemu-system-arm", "-M", machine, "-cpu", cpu, "-nographic", "-monitor", "none", "-serial", "none",
                   "-chardev", f"file,id=sh,path={out}", "-semihosting-config", "enable=on,target=native,chardev=sh",
                   "-kernel", elf, *cortex_m._one_insn_per_block(), "-d", "exec,nochain", "-D", log], folder,
                  f"{core}: qemu", timeout=3600)
    pcs = _pcs(log)
    os.remove(log)
    with open(out, encoding="utf-8") as fh:
        return pcs, fh.read()


def _segment_costs(pcs, segs, table, cost):
    """(instructions, estimated cycles) of each segment [a, b) of the trace."""
    uniq, inv = np.unique(pcs, return_inverse=True)
    w = np.empty(len(uniq))
    for i, pc in enumerate(uniq):
        cls, weight = cortex_m.classify(*table.get(int(pc), ("?", "")))
        w[i] = cost[cls] * weight
    per = w[inv]
    csum = np.concatenate([[0.0], np.cumsum(per)])
    return [(b - a, csum[b] - csum[a]) for a, b in segs]


# ------------------------------------------------------------ the report
def _core_report(files, prefix, S, F, kinds, core):
    with tempfile.TemporaryDirectory(prefix="kbt-budget-") as folder:
        obj, elf, su = _build(files, prefix, S, F, kinds, core, folder)
        size = cortex_m._size(obj)
        worst, frame, notes = stack_usage(elf, su)
        pcs, printed = _run_qemu(elf, core, folder)
        table = cortex_m._disassembly(elf)
        mark = cortex_m._symbol(elf, "mark")
    at = np.flatnonzero(pcs == mark)
    segs = [(int(a), int(b)) for a, b in zip(at[:-1], at[1:])]
    n = len(S)
    if len(segs) != 1 + 4 * n:
        raise RuntimeError(f"{core}: expected {1 + 4 * n} marked segments but found {len(segs)}")
    costs = _segment_costs(pcs, segs, table, COST[core])
    base_i, base_c = costs[0]
    words = printed.split()
    try:
        act_status = [int(words[3 * i + 1], 16) for i in range(n)]
        obs_status = [int(words[3 * i + 2], 16) for i in range(n)]
        forces = [float(np.frombuffer(bytes.fromhex(words[3 * i]), ">f4")[0]) for i in range(n)]
        sp, low = (int(w, 16) for w in words[3 * n + 1: 3 * n + 3])
        state_bytes = int(words[3 * n + 4], 16)
    except (ValueError, IndexError) as e:
        raise RuntimeError(f"{core}: unexpected harness output {printed[:200]!r}") from e
    calls = {}
    for name, off in (("act", 2), ("observe", 4)):
        rows = [(costs[off + 4 * i][0] - base_i, costs[off + 4 * i][1] - base_c) for i in range(n)]
        by_kind = {}
        for (ins, cyc), k in zip(rows, kinds):
            cur = by_kind.setdefault(KINDS[k], [0, 0.0])
            by_kind[KINDS[k]] = [max(cur[0], ins), max(cur[1], cyc)]
        plain = [r for r, k in zip(rows, kinds) if k in (0, 1)]
        calls[name] = {"instructions_mean": float(np.mean([r[0] for r in plain])),
                       "instructions_worst": int(max(r[0] for r in rows)),
                       "cycles_est_mean": float(np.mean([r[1] for r in plain])),
                       "cycles_est_worst": float(max(r[1] for r in rows)),
                       "by_kind": {k: {"instructions": v[0], "cycles_est": v[1]} for k, v in by_kind.items()}}
    machine, cpu, flags, _ = TARGETS[core]
    tick_ins = calls["act"]["instructions_worst"] + calls["observe"]["instructions_worst"]
    tick_cyc = calls["act"]["cycles_est_worst"] + calls["observe"]["cycles_est_worst"]
    clocks = {f"{mhz:g} MHz": {"tick_ms_at_1_cpi": tick_ins / (mhz * 1e3), "tick_ms_est": tick_cyc / (mhz * 1e3),
                               "fits_50hz": tick_cyc / (mhz * 1e6) <= PERIOD_S} for mhz in CLOCKS[core]}
    work_bytes = 0
    for text in files.values():
        m = re.search(r"Work arrays of one call \((\d+) bytes\)", text)
        work_bytes = int(m.group(1)) if m else work_bytes
    return {"core": core, "qemu_machine": machine, "qemu_cpu": cpu, "flags": " ".join([*flags, *OPT]),
            "flash_bytes": size["text"] + size["data"], "static_ram_bytes": size["data"] + size["bss"],
            "state_bytes": state_bytes, "workspace_bytes": work_bytes,
            "stack_worst": {f"{prefix}_{c}": worst.get(f"{prefix}_{c}") for c in PUBLIC},
            "stack_painted": sp - low, "stack_notes": notes, **calls,
            "tick_instructions_worst": tick_ins, "tick_cycles_est_worst": tick_cyc, "clocks": clocks,
            "statuses": {"act": act_status, "observe": obs_status}, "forces": forces}


def budget_report(controller, u_max, states, forces, cores=tuple(TARGETS), progress=None):
    """Per core, the budgets of the export of ``controller`` (see the module doc), on
    the expert samples ``states`` (n, 4) / ``forces`` (n,) and the four special ones
    (``report_stream``)."""
    from firmware_profile.export import export_params
    from firmware_profile.export.emit import render

    why = cortex_m.missing()
    if why:
        raise RuntimeError(f"cannot measure the budgets: {why}")
    p = export_params(controller, u_max=u_max)
    files = render(p)
    S, F, kinds = report_stream(states, forces, p.limits["FORCE_MAX"])
    out = {"method": p.method, "model_id": p.model_id, "kinds": list(KINDS),
           "stream_kinds": [KINDS[k] for k in kinds], "period_ms": PERIOD_S * 1e3, "cores": {}}
    for core in cores:
        if progress:
            progress(f"{core}: building and tracing in QEMU")
        out["cores"][core] = _core_report(files, p.method, S, F, kinds, core)
    return out


def format_report(r):
    """The report as text: one table per quantity, a column per core."""
    cores = list(r["cores"])
    rows = [("", *cores)]

    def row(label, fn):
        rows.append((label, *(fn(r["cores"][c]) for c in cores)))

    row("QEMU board / cpu", lambda c: f"{c['qemu_machine']} / {c['qemu_cpu']}")
    row("flash (B)", lambda c: f"{c['flash_bytes']}")
    row("static RAM (B)", lambda c: f"{c['static_ram_bytes']}")
    row("state struct (B)", lambda c: f"{c['state_bytes']}")
    row("workspace, optional (B)", lambda c: f"{c['workspace_bytes']}")
    for name in r["cores"][cores[0]]["stack_worst"]:
        row(f"stack worst {name} (B)", lambda c, n=name: f"{c['stack_worst'][n]}")
    row("stack painted by the run (B)", lambda c: f"{c['stack_painted']}")
    for call in ("act", "observe"):
        row(f"{call}: instructions mean", lambda c, k=call: f"{c[k]['instructions_mean']:.0f}")
        for kind in r["kinds"]:
            row(f"{call}: instructions, {kind}",
                lambda c, k=call, kd=kind: f"{c[k]['by_kind'].get(kd, {}).get('instructions', '-')}")
        row(f"{call}: instructions worst", lambda c, k=call: f"{c[k]['instructions_worst']}")
    row("tick (act + observe) worst: instructions", lambda c: f"{c['tick_instructions_worst']}")
    row("tick worst: est. cycles (cost model)", lambda c: f"{c['tick_cycles_est_worst']:.0f}")
    for i in range(2):
        row(f"tick worst at clock {i + 1}: ms (est.)",
            lambda c, j=i: "{} : {:.2f} ms{}".format(*((lambda k, v: (k, v["tick_ms_est"],
                                                                       "" if v["fits_50hz"] else " > 20 ms"))
                                                       (*list(c["clocks"].items())[j]))))
    row("fits a 50 Hz loop (worst tick <= 20 ms)",
        lambda c: ", ".join(f"{k}: {'yes' if v['fits_50hz'] else 'NO'}" for k, v in c["clocks"].items()))
    width = [max(len(str(x[i])) for x in rows) for i in range(len(rows[0]))]
    lines = [f"{r['method']} export {r['model_id']}: budgets per core; instructions counted in QEMU "
             f"(not cycles), times from estimated cycles (a cost per instruction class, zero-wait-state memory, "
             f"no stalls)"]
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(row_, width)) for row_ in rows]
    return "\n".join(lines)
