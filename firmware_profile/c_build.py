"""Compile an export with the host C compiler into a shared library.

``build_shared(files)`` writes the export's files into a cache folder named
by the hash of their text and the compiler command, compiles them once with

    $CC -std=c99 -Wall -Wextra -Werror -pedantic -O2 -fPIC -shared

(plus ``-fno-tree-loop-vectorize`` for GCC, see ``GCC_TUNING``; ``CC`` from the
environment, default ``cc``) and returns the library's path;
an identical export finds the library already built. A missing compiler or a
warning is a ``RuntimeError`` with the compiler's first lines.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile

__all__ = ["CFLAGS", "GCC_TUNING", "compiler", "is_gcc", "build_shared", "cache_dir"]

#: the flags every host build uses: C99, every warning an error, -O2
CFLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2")
#: GCC only: its loop vectoriser turns the exported affine maps (16 accumulators in
#: registers, SLP-vectorised across them) into transposes, 2.5x slower on x86-64
GCC_TUNING = ("-fno-tree-loop-vectorize",)


def compiler():
    """The host C compiler's path (``$CC`` or ``cc``); RuntimeError when there is none."""
    cc = os.environ.get("CC", "cc")
    path = shutil.which(cc)
    if path is None:
        raise RuntimeError(f"no C compiler: {cc!r} is not on PATH (set CC or install gcc)")
    return path


def cache_dir():
    """Where built libraries are kept: ``$KBT_C_CACHE`` or ``<tmp>/kbt-c-<uid>``."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return os.environ.get("KBT_C_CACHE") or os.path.join(tempfile.gettempdir(), f"kbt-c-{uid}")


def is_gcc(cc):
    """True when ``cc`` is GCC (its ``--version`` names the Free Software Foundation)."""
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "Free Software Foundation" in out and "clang" not in out.lower()


def build_shared(files, extra_flags=()):
    """Path of the shared library built from ``files`` ({name: C text}; every ``.c`` is compiled)."""
    cc = compiler()
    cmd = [cc, *CFLAGS, *(GCC_TUNING if is_gcc(cc) else ()), *extra_flags, "-fPIC", "-shared"]
    digest = hashlib.sha256(repr(cmd).encode())
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    folder = os.path.join(cache_dir(), digest.hexdigest()[:20])
    lib = os.path.join(folder, "libexport.so")
    if os.path.exists(lib):
        return lib
    os.makedirs(folder, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(folder, name), "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
    sources = [os.path.join(folder, n) for n in sorted(files) if n.endswith(".c")]
    tmp = f"{lib}.{os.getpid()}.tmp"
    run = subprocess.run(cmd + ["-o", tmp, *sources, "-lm"], capture_output=True, text=True)
    if run.returncode != 0:
        first = "\n".join((run.stderr or run.stdout).strip().splitlines()[:8])
        raise RuntimeError(f"the C export did not compile with {os.path.basename(cc)}:\n{first}")
    os.replace(tmp, lib)
    return lib
