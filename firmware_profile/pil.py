"""Processor-in-the-loop: the exported controller as a Cortex-M7 program in QEMU, the
cart-pole in Python, one exchange per control tick (``kbt pil``).

``Firmware(files)`` cross-compiles an export with ``cortex_m/pil.c.in`` (a UART
server around ``<prefix>_act_ws`` / ``<prefix>_observe_ws``) for the Cortex-M7 and
starts it in QEMU's ``mps2-an500`` with ``-icount shift=ICOUNT_SHIFT``: the
virtual clock then advances ``2**shift`` ns per executed instruction, and the
firmware reads SysTick (the 25 MHz processor clock of the board) around each
call, so a call's instructions are its SysTick ticks / (2**shift ns x 25 MHz),
less the two reads' own ticks (calibrated with ``C`` requests). Counted by QEMU,
not cycles.

``PILController(controller)`` is a controller for ``sim.loops.deploy``: every
``act`` and ``observe`` is an exchange with the firmware; the same call runs on
the host in the compiled export (``CController``, the reference), and each
force and status is compared (``max_force_diff``, ``status_mismatches``). What
the firmware does not serve (``predict``, the pred-std column) comes from the
reference, which is in lockstep with it.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from importlib import resources

import numpy as np

from firmware_profile import cortex_m
from firmware_profile.c_controller import REFUSED, CController

__all__ = ["Firmware", "PILController", "ICOUNT_SHIFT", "SYSCLK_HZ", "CPI_BOUND"]

#: QEMU's -icount shift: 2**7 = 128 ns of virtual time per instruction
ICOUNT_SHIFT = 7
#: the mps2-an500's processor clock that SysTick counts (QEMU's model of the board)
SYSCLK_HZ = 25e6
#: cycles per instruction assumed for the overrun check: twice the cost model's estimate
#: for the M7 (about 1.12, ``budget_report``), a margin for flash wait states and stalls
CPI_BOUND = 2.0


class Firmware:
    """The export running as a Cortex-M7 program in QEMU, served over its UART."""

    def __init__(self, files, shift=ICOUNT_SHIFT):
        why = cortex_m.missing()
        if why:
            raise RuntimeError(f"cannot run the processor-in-the-loop: {why}")
        self._dir = tempfile.mkdtemp(prefix="kbt-pil-")
        try:
            self._start(files, shift)
        except BaseException:
            if getattr(self, "_p", None) is not None and self._p.poll() is None:
                self._p.kill()
                self._p.wait()
            shutil.rmtree(self._dir, ignore_errors=True)
            raise

    def _start(self, files, shift):
        """Build the firmware in ``self._dir``, start QEMU, calibrate the SysTick reads."""
        prefix = next(n[:-2] for n in files if n.endswith(".c"))
        res = resources.files("firmware_profile.cortex_m")
        for name, text in [*files.items(), ("startup.c", res.joinpath("startup.c").read_text(encoding="utf-8")),
                           ("link.ld", res.joinpath("link.ld").read_text(encoding="utf-8")),
                           ("pil.c", res.joinpath("pil.c.in").read_text(encoding="utf-8")
                            .replace("PFX", prefix.upper()).replace("pfx", prefix))]:
            with open(os.path.join(self._dir, name), "w", encoding="utf-8") as fh:
                fh.write(text)
        _, cpu, flags = cortex_m.TARGETS["cortex-m7"]
        gcc, loose = "arm-none-eabi-gcc", [*flags, "-std=c99", "-O2"]
        cortex_m._run([gcc, *flags, *cortex_m.OPT_FLAGS, "-c", f"{prefix}.c"], self._dir, "pil: compiling the export")
        cortex_m._run([gcc, *loose, "-nostartfiles", "-T", "link.ld", "startup.c", "pil.c", f"{prefix}.o", "-lm",
                       "-o", "pil.elf"], self._dir, "pil: building the firmware")
        self.ticks_per_instruction = 2.0 ** shift * 1e-9 * SYSCLK_HZ
        self._p = subprocess.Popen(
            ["qemu-system-arm", "-M", "mps2-an500", "-cpu", cpu, "-nographic", "-monitor", "none",
             "-serial", "stdio", "-semihosting-config", "enable=on,target=native",
             "-icount", f"shift={shift},align=off", "-kernel", os.path.join(self._dir, "pil.elf")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        self.overhead_ticks = min(int(self._ask(b"C")[1], 16) for _ in range(5))

    def _ask(self, line):
        """Send a request (a command letter and its binary float32 words) and read the reply line."""
        self._p.stdin.write(line)
        reply = self._p.stdout.readline().decode().split()
        if not reply:
            err = self._p.stderr.read().decode()[:400] if self._p.poll() is not None else ""
            raise RuntimeError(f"pil: the firmware did not answer {line[:1]!r} {err}")
        return reply

    def _instructions(self, ticks_hex):
        return (int(ticks_hex, 16) - self.overhead_ticks) / self.ticks_per_instruction

    def act(self, s):
        """(limited force, status, instructions) of ``<prefix>_act_ws`` on the device."""
        r = self._ask(b"A" + np.asarray(s, "<f4").tobytes())
        return struct.unpack(">f", bytes.fromhex(r[1]))[0], int(r[2], 16), self._instructions(r[3])

    def observe(self, s, y):
        """(status, instructions) of ``<prefix>_observe_ws`` on the device."""
        r = self._ask(b"O" + np.array([*s, y], "<f4").tobytes())
        return int(r[1], 16), self._instructions(r[2])

    def close(self):
        if self._p.poll() is None:
            try:
                self._p.stdin.write(b"Q")
                self._p.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._p.kill()
                self._p.wait()
        shutil.rmtree(self._dir, ignore_errors=True)


class PILController:
    """A ``kbt`` / ``rls`` controller whose ``act`` and ``observe`` run on the emulated
    Cortex-M7, checked call by call against the compiled export on the host.

    Attributes
    ----------
    max_force_diff : float
        Largest |firmware force - host force| (N) so far.
    status_mismatches : int
        Calls whose status differed from the host's.
    act_instructions, observe_instructions : list of float
        Instructions per call counted in QEMU.
    tick_instructions : list of float
        Per learning tick (an ``act`` followed by an ``observe``): their sum.
    """

    def __init__(self, controller, u_max=30.0):
        self.ref = CController(controller, u_max=u_max)
        self.name = self.ref.prefix + "-pil"
        self.fw = Firmware(self.ref.files)
        self.max_force_diff, self.status_mismatches = 0.0, 0
        self.act_instructions, self.observe_instructions, self.tick_instructions = [], [], []
        self._last_act = None

    def _act1(self, s):
        u, status, n = self.fw.act(s)
        ref_status, ref_u = self.ref.act_status(s)
        self.status_mismatches += int(status != ref_status)
        self.max_force_diff = max(self.max_force_diff, abs(u - ref_u))
        self.act_instructions.append(n)
        self._last_act = n
        return u if status == 0 else float("nan")

    def act(self, states):
        """Forces (limited to +-u_max) for states (N, 4) -> (N,), or one state (4,) -> float."""
        S = np.asarray(states, dtype=float)
        if S.ndim == 1:
            return self._act1(S)
        return np.array([self._act1(s) for s in S])

    def observe(self, state, expert_force):
        """One update on the device (and on the host reference); refused: ValueError."""
        s = np.asarray(state, dtype=float).reshape(4)
        status, n = self.fw.observe(s, float(expert_force))
        ref_status = self.ref.observe_status(s, float(expert_force))
        self.status_mismatches += int(status != ref_status)
        self.observe_instructions.append(n)
        if self._last_act is not None:
            self.tick_instructions.append(self._last_act + n)
            self._last_act = None
        if status in REFUSED:
            raise ValueError(REFUSED[status])
        return True

    def __getattr__(self, name):
        # predict, predict_split, noise_var, n_updates, ...: the host reference, in lockstep
        if name in ("ref", "fw"):
            raise AttributeError(name)
        return getattr(self.ref, name)

    def close(self):
        self.fw.close()
