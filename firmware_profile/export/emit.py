"""C text of an export: numbers, arrays, and the templates filled in.

Every float is rounded to float32 and printed with ``%.9g`` (nine significant
digits: the shortest width that round-trips every float32), so the C compiler
reads back exactly the float32 that NumPy holds. The output is a function of
the ``ExportParams`` alone (sorted, no time stamps): re-exporting the same
controller gives byte-identical files.

Templates (``templates/``) are C with the placeholders ``pfx`` / ``PFX``
(the method's prefix: ``kbt`` / ``KBT`` or ``rls`` / ``RLS``) and ``@NAME@``
blocks filled here.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

__all__ = ["c_float", "c_array", "render", "file_names"]

_PER_LINE = 6
#: what the files say they are, per method
_WHAT = {"kbt": "the KBT controller (frozen T_1 features + the Gaussian force head), float32 C99",
         "rls": "the rls controller (the Gaussian force head on the normalised state), float32 C99"}


def c_float(v):
    """``v`` as a C float literal of its float32 value (``%.9g``, with ``f``)."""
    f = np.float32(v)
    if not np.isfinite(f):
        raise ValueError(f"value: {v!r} is not a finite float32; it cannot be exported")
    text = "%.9g" % float(f)
    if not any(ch in text for ch in ".en"):
        text += ".0"
    return text + "f"


def _c_rows(a, indent):
    """Nested-brace initialiser text of ``a`` (rows of ``_PER_LINE`` numbers)."""
    pad = " " * indent
    if a.ndim == 1:
        flat = [c_float(v) for v in a]
        lines = [", ".join(flat[i:i + _PER_LINE]) for i in range(0, len(flat), _PER_LINE)]
        return pad + f",\n{pad}".join(lines)
    inner = [f"{pad}{{\n{_c_rows(row, indent + 4)}\n{pad}}}" for row in a]
    return ",\n".join(inner)


def c_array(name, a):
    """``static const float name[..][..] = {...};`` of ``a`` (row-major, a brace per row)."""
    a = np.asarray(a, dtype=float)
    dims = "".join(f"[{n}]" for n in a.shape)
    return f"static const float {name}{dims} = {{\n{_c_rows(a, 4)}\n}};\n"


def _template(name):
    return resources.files("firmware_profile.export").joinpath("templates", name).read_text(encoding="utf-8")


def _prefix(text, method):
    return text.replace("PFX", method.upper()).replace("pfx", method)


def _params_block(p):
    pre = p.method.upper()
    lines = [f"#define {pre}_{k} {v}" for k, v in p.ints.items() if k not in ("N1", "NP")]
    lines += [f"#define {pre}_{k} {c_float(v)}" for k, v in p.scalars.items()]
    lines += [f"#define {pre}_INIT_{k} {v}u" for k, v in p.counts.items()]
    out = "\n".join(lines) + "\n\n"
    out += "\n".join(c_array(f"{p.method}_{k}", v) for k, v in p.arrays.items())
    return out


def file_names(method):
    """The files an export of ``method`` writes: (header, source)."""
    return f"{method}.h", f"{method}.c"


def render(p, source="the exported controller"):
    """{file name: text} of the export of ``p`` (an ``ExportParams``); ``source`` is
    named in the .c file's comment (e.g. the head file it was loaded from)."""
    header, body = file_names(p.method)
    source = " ".join(str(source).replace("*/", "* /").split())      # one line, no comment end
    h = _template("api.h.in").replace("@N1@", str(p.ints["N1"])).replace("@NP@", str(p.ints["NP"]))
    c = (_template("head.c.in").replace("@PARAMS@", _params_block(p))
         .replace("@INPUTS@", _template(f"{p.method}_inputs.c.in")).replace("@SOURCE@", source))
    out = {}
    for name, text in ((header, h), (body, c)):
        text = _prefix(text, p.method).replace("@WHAT@", _WHAT[p.method])
        out[name] = text
    return out
