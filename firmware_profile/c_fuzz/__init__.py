"""Fuzzing an export with random 32-bit patterns (``fuzz.c.in``), under the sanitizers.

``run_fuzz(files, n, seed, flags)`` compiles the export with the fuzz harness
(host ``cc``, the export's own strictness plus ``flags``) and runs ``n`` rounds
of observe + act + predict on states and labels drawn from random bit patterns,
the edges of the valid ranges and plausible values; the harness fails at the
first refused update that changed the state, state that fails ``<prefix>_check``
(a non-finite value, P's diagonal not positive), or force that is not finite or
beyond +-u_max. Returns the harness's counts per status. ``SANITIZERS``:
AddressSanitizer and UndefinedBehaviorSanitizer (every finding fatal);
``FAST_MATH``: ``-Ofast`` (the build that may drop ``isfinite``).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from importlib import resources

from firmware_profile import c_build

__all__ = ["SANITIZERS", "FAST_MATH", "run_fuzz", "sanitizers_work"]

SANITIZERS = ("-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined,float-divide-by-zero",
              "-fno-sanitize-recover=all")
FAST_MATH = ("-Ofast",)


def _build(files, flags, folder):
    prefix = next(n[:-2] for n in files if n.endswith(".c"))
    for name, text in files.items():
        with open(os.path.join(folder, name), "w", encoding="utf-8") as fh:
            fh.write(text)
    harness = resources.files("firmware_profile.c_fuzz").joinpath("fuzz.c.in").read_text(encoding="utf-8")
    with open(os.path.join(folder, "fuzz.c"), "w", encoding="utf-8") as fh:
        fh.write(harness.replace("PFX", prefix.upper()).replace("pfx", prefix))
    exe = os.path.join(folder, "fuzz")
    base = [f for f in c_build.CFLAGS if not f.startswith("-O")]
    cmd = [c_build.compiler(), *base, *flags, "-o", exe, os.path.join(folder, "fuzz.c"),
           os.path.join(folder, f"{prefix}.c"), "-lm"]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError("the fuzz harness did not compile:\n" + "\n".join(run.stderr.splitlines()[:8]))
    return exe


def sanitizers_work():
    """'' when the host compiler links ASan + UBSan programs, else why not."""
    with tempfile.TemporaryDirectory(prefix="kbt-san-") as folder:
        src = os.path.join(folder, "t.c")
        with open(src, "w") as fh:
            fh.write("int main(void) { return 0; }\n")
        try:
            run = subprocess.run([c_build.compiler(), *SANITIZERS, "-o", os.path.join(folder, "t"), src],
                                 capture_output=True, text=True)
        except RuntimeError as e:
            return str(e)
        return "" if run.returncode == 0 else "the host compiler cannot build with -fsanitize=address,undefined"


def run_fuzz(files, n=100_000, seed=1, flags=SANITIZERS, timeout=1800):
    """{status name: count, ...} of ``n`` fuzz rounds; RuntimeError with the harness's
    message at the first failure (or a sanitizer's report)."""
    with tempfile.TemporaryDirectory(prefix="kbt-fuzz-") as folder:
        exe = _build(files, tuple(flags), folder)
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        run = subprocess.run([exe, str(int(n)), str(int(seed))], capture_output=True, text=True, timeout=timeout,
                             env=env)
    if run.returncode != 0:
        raise RuntimeError(f"fuzz failed ({run.returncode}): {run.stdout.strip()[-400:]} {run.stderr.strip()[:1200]}")
    words = run.stdout.split()
    return {k: float(v) if k == "max_u" else int(v) for k, v in zip(words[::2], words[1::2])}
