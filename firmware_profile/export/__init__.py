"""C99 export of the ``kbt`` and ``rls`` controllers (``kbt export``).

``export_sources(controller)`` returns the C files (a header and its source,
``kbt.h`` / ``kbt.c`` or ``rls.h`` / ``rls.c``) of a controller as it is now;
``write_export(controller, out_dir)`` writes them. The numbers come from the
controller (``params.export_params``), the C text from templates
(``emit.render``); docs/firmware-export.md has the API and the decisions.
"""

from __future__ import annotations

import os

from firmware_profile.export.emit import file_names, render
from firmware_profile.export.kit import kit_files
from firmware_profile.export.params import DEFAULT_U_MAX, ExportParams, export_params, pack_lower, unpack_lower

__all__ = ["export_sources", "write_export", "kit_files", "DEFAULT_U_MAX", "export_params", "ExportParams", "file_names", "pack_lower",
           "unpack_lower"]


def export_sources(controller, source="the exported controller", u_max=DEFAULT_U_MAX):
    """{file name: C text} of ``controller`` (a ``kbt`` or ``rls`` controller)."""
    return render(export_params(controller, u_max=u_max), source=source)


def write_export(controller, out_dir, source="the exported controller", u_max=DEFAULT_U_MAX, demo=None):
    """Write the export into ``out_dir`` (created if needed); returns the paths written.

    ``demo = (states (N, 4), forces (N,))``: also the integration kit (``kit.kit_files``:
    CMake, PlatformIO / Arduino metadata and the examples, which learn from these samples).
    Each file is written whole and then renamed into place, so a reader never
    sees a half-written file.
    """
    p = export_params(controller, u_max=u_max)
    files = render(p, source=source)
    if demo is not None:
        files.update(kit_files(p, *demo))
    paths = []
    for name, text in files.items():
        path = os.path.join(out_dir, *name.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
        paths.append(path)
    return paths
