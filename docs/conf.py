"""Sphinx configuration of kbt's documentation site (Markdown pages via MyST, API from numpydoc docstrings).

Build: ``python3 -m sphinx -W --keep-going -b html docs docs/_build/html`` (warnings are errors:
a broken link between pages, a missing image or an undocumented public member fails the build).
"""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the API pages import the working tree's controller/, installed or not

project = "kbt"
author = "kbt developers"
extensions = ["myst_parser", "sphinx.ext.autodoc", "numpydoc"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "data", "img"]
root_doc = "index"

# MyST: `[text](page.md#heading)` links between pages are checked; headings get anchors down to ###.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# API reference: every public member is listed, and one without a docstring is an error (GL08).
autodoc_default_options = {"members": True, "undoc-members": True, "member-order": "bysource"}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_validation_checks = set()  # the missing-docstring check is _require_docstring below (GL08 misreads dataclass fields)

html_theme = "alabaster"
html_title = "kbt"
html_static_path = []


def _literal_module_docstring(app, what, name, obj, options, lines):
    """Show a module's docstring as written: they are plain text with indented formulas, not reST."""
    if what == "module" and lines:
        body = [("    " + line) if line else "" for line in lines]
        lines[:] = ["::", ""] + body + [""]


def _require_docstring(app, what, name, obj, options, lines):
    """A public module, class, function, method or property without a docstring is a build warning."""
    if what in ("module", "class", "exception", "function", "method", "property") and not any(l.strip() for l in lines):
        from sphinx.util import logging
        logging.getLogger("kbt.docs").warning("missing docstring: %s (%s)", name, what)


def setup(app):
    app.connect("autodoc-process-docstring", _require_docstring, priority=100)
    app.connect("autodoc-process-docstring", _literal_module_docstring, priority=900)
