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
from firmware_profile.export.params import ExportParams, export_params, pack_lower, unpack_lower

__all__ = ["export_sources", "write_export", "export_params", "ExportParams", "file_names", "pack_lower",
           "unpack_lower"]


def export_sources(controller, source="the exported controller"):
    """{file name: C text} of ``controller`` (a ``kbt`` or ``rls`` controller)."""
    return render(export_params(controller), source=source)


def write_export(controller, out_dir, source="the exported controller"):
    """Write the export into ``out_dir`` (created if needed); returns the paths written.

    Each file is written whole and then renamed into place, so a reader never
    sees a half-written file.
    """
    files = export_sources(controller, source=source)
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name, text in files.items():
        path = os.path.join(out_dir, name)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
        paths.append(path)
    return paths
