"""The integration kit ``kbt export`` writes next to the header and the source.

    CMakeLists.txt          the static-library target ``kbt`` (and the host examples)
    library.json            PlatformIO library (sources in the folder's root)
    library.properties      Arduino library (flat layout)
    examples/demo.h         a few expert samples (states, forces) the examples learn from
    examples/host/          main.c + Makefile: ``make -C examples/host run``
    examples/cpp/           main.cpp + Makefile: kbt.h from C++ (``make -C examples/cpp run``)
    examples/mps2-an500/    main.c, startup.c, link.ld, Makefile: the Cortex-M7 of QEMU's
                            mps2-an500 board (``make -C examples/mps2-an500 run``)

Every file is a function of the export's numbers, the demo samples and the
package version: re-exporting gives byte-identical files.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from firmware_profile.export.emit import _WHAT, c_array

__all__ = ["kit_files"]

#: kit file (relative path) -> its template under templates/kit/
_FILES = {
    "CMakeLists.txt": "CMakeLists.txt.in",
    "library.json": "library.json.in",
    "library.properties": "library.properties.in",
    "examples/demo.h": "examples/demo.h.in",
    "examples/host/main.c": "examples/host_main.c.in",
    "examples/host/Makefile": "examples/host_Makefile.in",
    "examples/cpp/main.cpp": "examples/cpp_main.cpp.in",
    "examples/cpp/Makefile": "examples/cpp_Makefile.in",
    "examples/mps2-an500/main.c": "examples/mps2_main.c.in",
    "examples/mps2-an500/Makefile": "examples/mps2_Makefile.in",
}


def _version():
    try:
        from importlib.metadata import version

        return version("kbt")
    except Exception:        # not installed as a distribution: a version is still needed
        return "0.0.0"


def _demo_arrays(method, states, forces):
    s = np.asarray(states, dtype=float).reshape(-1, 4)
    f = np.asarray(forces, dtype=float).reshape(-1)
    if len(s) != len(f) or not 1 <= len(s) <= 64:
        raise ValueError(f"demo: expected 1 to 64 states with as many forces but found {len(s)}, {len(f)}")
    return c_array(f"{method}_demo_states", s) + c_array(f"{method}_demo_forces", f), len(s)


def kit_files(p, demo_states, demo_forces, demo_what="expert samples"):
    """{relative path: text} of the kit for the export ``p`` (an ``ExportParams``), with
    ``demo_states`` (N, 4) and ``demo_forces`` (N,) in ``examples/demo.h``."""
    arrays, n = _demo_arrays(p.method, demo_states, demo_forces)
    kit = resources.files("firmware_profile.export").joinpath("templates", "kit")
    out = {}
    for path, name in _FILES.items():
        text = kit.joinpath(name).read_text(encoding="utf-8")
        text = (text.replace("@WHAT@", _WHAT[p.method]).replace("@MODEL_ID@", p.model_id)
                .replace("@VERSION@", _version()).replace("@DEMO_N@", str(n)).replace("@DEMO_ARRAYS@", arrays)
                .replace("@DEMO_WHAT@", demo_what))
        out[path] = text.replace("PFX", p.method.upper()).replace("pfx", p.method)
    cm = resources.files("firmware_profile.cortex_m")
    for name in ("startup.c", "link.ld"):
        out[f"examples/mps2-an500/{name}"] = cm.joinpath(name).read_text(encoding="utf-8")
    return out
