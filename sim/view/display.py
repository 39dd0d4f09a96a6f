"""Whether a window can be opened: the check ``kbt run --view``, ``kbt view`` and the
Gymnasium environments' ``render_mode='human'`` make before pygame opens one."""

from __future__ import annotations

import os
import sys

__all__ = ["no_display"]


def no_display():
    """Why no window can be opened ('' if one can, as far as we can tell)."""
    driver = os.environ.get("SDL_VIDEODRIVER", "").strip().lower()
    if driver:
        return f"SDL_VIDEODRIVER={driver}" if driver in ("dummy", "offscreen") else ""
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")) and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "DISPLAY and WAYLAND_DISPLAY are not set"
    return ""
