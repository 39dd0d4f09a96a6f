"""Progress bars for long commands: tqdm, on stderr.

On a terminal the bar redraws in place (tqdm's own); otherwise (CI logs, pipes)
it prints one plain line at most every ``interval`` seconds and at the end, so
a log never fills with carriage returns.

The rate and the time remaining leave out the first unit of work (it carries the
one-off Numba compilation, seconds where a tick takes microseconds): until a second
unit is done they show '?', then the mean rate since the first.
"""

from __future__ import annotations

import sys

from tqdm import tqdm

__all__ = ["Progress"]


class _Lines:
    """A stream for tqdm off a terminal: each refresh becomes one line."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        text = text.replace("\r", "").rstrip()
        if text:
            self.stream.write(text + "\n")

    def flush(self):
        self.stream.flush()


class _Bar(tqdm):
    """tqdm whose rate is measured from the end of the first update (``_Bar.format_dict``)."""

    _first = None                     # (n, time) once the first update is done

    def update(self, n=1):
        if self._first is None and n and not self.disable:
            self._first = (self.n + n, self._time())
        return super().update(n)

    @property
    def format_dict(self):
        d = super().format_dict
        if self._first is not None:
            n1, t1 = self._first
            dt = self._time() - t1
            # rate = units since the first update / seconds since it; none yet: '?' (tqdm falls back
            # to (n - initial) / elapsed, so initial = n)
            d["rate"] = (self.n - n1) / dt if self.n > n1 and dt > 0 else None
            d["initial"] = self.n if d["rate"] is None else d["initial"]
        return d


class Progress:
    """``with Progress(total, "pretrain") as bar: bar.update(1, loss=0.3)``.

    ``enabled=False`` draws nothing (``--no-progress``).
    """

    def __init__(self, total, label="", *, stream=None, interval=2.0, enabled=True):
        stream = sys.stderr if stream is None else stream
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._bar = _Bar(total=max(int(total), 1), desc=label, file=stream if self._tty else _Lines(stream),
                         mininterval=0.1 if self._tty else interval, disable=not enabled, leave=True,
                         dynamic_ncols=self._tty, ascii=not self._tty)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._bar.close()

    @property
    def done(self):
        return self._bar.n

    def update(self, n=1, **info):
        if info:
            self._bar.set_postfix({k: _fmt(v) for k, v in info.items()}, refresh=False)
        self._bar.update(n)

    def clear(self):
        """Erase the in-place bar (terminal only) so a caller can print a line;
        the next update redraws it."""
        if self._tty:
            self._bar.clear()


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)
