"""A dependency-free progress bar for long commands (writes to stderr)."""

from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """``with Progress(total, "pretrain") as bar: bar.update(1, loss=0.3)``.

    On a terminal the bar redraws in place; otherwise (CI, pipes) it prints a
    line at most every ``interval`` seconds and at the end.
    """

    def __init__(self, total, label="", *, stream=None, interval=2.0, enabled=True):
        self.total = max(int(total), 1)
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        self.interval = interval
        self.enabled = enabled
        self.done = 0
        self.info = {}
        self._start = time.perf_counter()
        self._last = -1e9
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._draw(final=True)

    def update(self, n=1, **info):
        self.done = min(self.done + n, self.total)
        self.info.update(info)
        now = time.perf_counter()
        if now - self._last >= (0.1 if self._tty else self.interval):
            self._draw()
            self._last = now

    def clear(self):
        """Erase the in-place bar (terminal only) so a caller can print a line;
        the next update redraws it."""
        if self.enabled and self._tty:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._last = -1e9

    def _draw(self, final=False):
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self._start
        frac = self.done / self.total
        eta = elapsed / frac - elapsed if frac > 0 else float("nan")
        width = 24
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        extra = "  ".join(f"{k}={_fmt(v)}" for k, v in self.info.items())
        line = f"{self.label} [{bar}] {self.done}/{self.total} {elapsed:5.1f}s eta {eta:5.1f}s {extra}"
        if self._tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)
