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
    v = float(v)
    if not np.isfinite(v) or abs(v) > float(np.finfo(np.float32).max):
        raise ValueError(f"value: {v!r} is not a finite float32; it cannot be exported")
    text = "%.9g" % float(np.float32(v))
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


def _sum_terms(terms, indent="    "):
    """Statements summing the C expressions ``terms`` into four interleaved partial sums
    s0..s3 (independent chains: they pipeline on a scalar FPU), and the total's expression."""
    lanes = min(4, len(terms))
    lines = [indent + "float " + ", ".join(f"s{k} = {terms[k]}" for k in range(lanes)) + ";"]
    lines += [f"{indent}s{i % 4} += {t};" for i, t in enumerate(terms) if i >= lanes]
    total = "(s0 + s1) + (s2 + s3)" if lanes == 4 else " + ".join(f"s{k}" for k in range(lanes))
    return lines, total


def affine_kernel(prefix, n_in, n_out, bias=True):
    """C of ``out = a W (+ b)`` for fixed sizes, W (n_in, n_out) row-major: the
    n_out outputs are locals (registers) that every input adds its row of W to,
    ``o_j = b_j + a_0 W_0j + a_1 W_1j + ...`` in the reference's order; a compiler
    keeps them in registers and, on a SIMD CPU, vectorises across them.
    Named ``<prefix>_affine_<n_in>_<n_out>`` (``_matvec_`` without the bias)."""
    kind = "affine" if bias else "matvec"
    args = "const float *a, const float *w, const float *b, float *out" if bias else \
        "const float *a, const float *w, float *out"
    init = ", ".join(f"o{j} = b[{j}]" if bias else f"o{j} = 0.0f" for j in range(n_out))
    body = [f"        o{j} += ai * w[{j}];" for j in range(n_out)]
    return "\n".join([f"static void {prefix}_{kind}_{n_in}_{n_out}({args})", "{", *_wrap(f"float {init};"),
                      "    int i;", f"    for (i = 0; i < {n_in}; ++i, w += {n_out}) {{", "        const float ai = a[i];",
                      *body, "    }", *[f"    out[{j}] = o{j};" for j in range(n_out)], "}", ""])


def _wrap(decl, indent="    ", width=100):
    """A long declaration ``type a, b, c;`` wrapped at commas."""
    words = decl.split(", ")
    lines, line = [], indent + words[0]
    for w in words[1:]:
        if len(line) + len(w) + 2 > width:
            lines.append(line + ",")
            line = indent + "    " + w
        else:
            line += ", " + w
    return lines + [line]


def dot_kernel(prefix, n, stride=1):
    """C of ``a . b`` over n entries, b read every ``stride`` floats, unrolled:
    ``<prefix>_dot_<n>`` (``_dot_<n>_by_<stride>``)."""
    name = f"{prefix}_dot_{n}" + (f"_by_{stride}" if stride != 1 else "")
    terms, total = _sum_terms([f"a[{i}] * b[{i * stride}]" for i in range(n)])
    return "\n".join([f"static float {name}(const float *a, const float *b)", "{", *terms,
                      f"    return {total};", "}", ""])


def layer_norm_kernel(prefix, d):
    """C of the layer norm of d values, unrolled: out = (x - mean) / sqrt(var + eps) * g + b."""
    pre = prefix.upper()
    sx, tx = _sum_terms([f"x{i}" for i in range(d)])
    sc, tc = _sum_terms([f"c{i} * c{i}" for i in range(d)])
    sc = [line.replace("float s", "s", 1) if k == 0 else line for k, line in enumerate(sc)]
    return "\n".join([
        f"static void {prefix}_layer_norm(const float *x, const float *g, const float *b, float *out)", "{",
        *_wrap("const float " + ", ".join(f"x{i} = x[{i}]" for i in range(d)) + ";"),
        "    float mu, rstd;", "    {", *["    " + line for line in sx], f"        mu = ({tx}) / (float){d};", "    }",
        "    {", *_wrap("const float " + ", ".join(f"c{i} = x{i} - mu" for i in range(d)) + ";", "        "),
        *["    " + line.replace("s0 = ", "float s0 = ", 1) if k == 0 else "    " + line for k, line in enumerate(sc)],
        f"        rstd = 1.0f / sqrtf(({tc}) / (float){d} + {pre}_LN_EPS);",
        *[f"        out[{i}] = c{i} * rstd * g[{i}] + b[{i}];" for i in range(d)], "    }", "}", ""])


def _kernels(p):
    """The fixed-size helpers the input map uses (kbt: T_1's affine maps, attention
    dot products, layer norm, and the standardiser), with the names the template calls."""
    if p.method != "kbt":
        return ""
    m, pre = p.method, p.method.upper()
    d, f, dh, t = p.ints["D"], p.ints["F"], p.ints["DH"], p.ints["T"]
    pairs = sorted({(d, d), (d, f), (f, d)})
    text = [affine_kernel(m, ni, no) for ni, no in pairs] + [affine_kernel(m, d, d, bias=False)]
    text += [dot_kernel(m, dh), dot_kernel(m, t, stride=d), layer_norm_kernel(m, d)]
    text.append("\n".join([f"#define {pre}_AFFINE_DD {m}_affine_{d}_{d}", f"#define {pre}_AFFINE_DF {m}_affine_{d}_{f}",
                           f"#define {pre}_AFFINE_FD {m}_affine_{f}_{d}", f"#define {pre}_MATVEC_DD {m}_matvec_{d}_{d}",
                           f"#define {pre}_DOT_DH {m}_dot_{dh}", f"#define {pre}_DOT_T_BY_D {m}_dot_{t}_by_{d}", ""]))
    return "\n".join(text)


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


def _limits_block(p):
    """The header's ``#define``s of the valid ranges, with their units."""
    pre, units = p.method.upper(), dict(X_MAX="m", XDOT_MAX="m/s", THETA_MAX="rad", THETADOT_MAX="rad/s",
                                          FORCE_MAX="N, labels", U_MAX="N, the limited force")
    return "\n".join(f"#define {pre}_{k} {c_float(v)}   /* {units[k]} */" for k, v in p.limits.items()) + "\n"


def _work_block(p):
    """The header's work-array struct: T_1's activations for kbt (the fields
    ``kbt_inputs.c.in`` uses), a placeholder for rls (no work arrays); and its size in bytes."""
    pre = p.method
    if p.method != "kbt":
        return f"typedef struct {pre}_work {{\n    float unused;           /* rls needs no work arrays */\n}} {pre}_work;", 4
    t, d, f = p.ints["T"], p.ints["D"], p.ints["F"]
    rows = [f"    float {n}[{t}][{d}];" + " " * (14 - len(n) - len(str(t)) - len(str(d))) + f"/* {what} */"
            for n, what in (("x", "residual stream"), ("a", "layer-norm output"), ("q", "queries"), ("k", "keys"),
                            ("v", "values"), ("o", "attention output"), ("y", "block output"))]
    rows += [f"    float z[{t}][{f}];" + " " * (14 - 1 - len(str(t)) - len(str(f))) + "/* MLP hidden */",
             f"    float att[{t}];" + " " * (14 - 3 - len(str(t)) + 2) + "/* one row of attention scores */"]
    return "\n".join([f"typedef struct {pre}_work {{", *rows, f"}} {pre}_work;"]), 4 * (7 * t * d + t * f + t)


def render(p, source="the exported controller"):
    """{file name: text} of the export of ``p`` (an ``ExportParams``); ``source`` is
    named in the .c file's comment (e.g. the head file it was loaded from)."""
    header, body = file_names(p.method)
    source = " ".join(str(source).replace("*/", "* /").split())      # one line, no comment end
    if len(p.model_id) != 16:
        raise ValueError(f"p: expected a 16-digit model_id but found {p.model_id!r}")
    work, work_bytes = _work_block(p)
    h = (_template("api.h.in").replace("@N1@", str(p.ints["N1"])).replace("@NP@", str(p.ints["NP"]))
         .replace("@MODEL_ID@", p.model_id).replace("@MODEL_HI@", "0x" + p.model_id[:8])
         .replace("@MODEL_LO@", "0x" + p.model_id[8:]).replace("@LIMITS@", _limits_block(p))
         .replace("@WORK@", work).replace("@WORK_BYTES@", str(work_bytes)))
    c = (_template("head.c.in").replace("@PARAMS@", _params_block(p))
         .replace("@INPUTS@", _template(f"{p.method}_inputs.c.in")).replace("@SOURCE@", source)
         .replace("@KERNELS@", _kernels(p)))
    out = {}
    for name, text in ((header, h), (body, c)):
        text = _prefix(text, p.method).replace("@WHAT@", _WHAT[p.method])
        out[name] = text
    return out
