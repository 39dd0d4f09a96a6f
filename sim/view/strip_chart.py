"""Strip chart of the force over the last few seconds (pure drawing, pygame only).

* ``StripChart`` is a ring buffer of a fixed capacity holding one sample per
  control period: time, the applied force, its predictive std, the expert's
  force at the same state and whether the expert took the tick over.
* ``draw_chart`` draws a chart onto a rectangle of a surface: axes at +- the
  force limit, a zero line, the +-2 sigma band as a filled polygon, the
  expert's force and the applied force as lines, marks under the ticks the
  expert took over, a vertical line at each change (``StripChart.mark``), a legend and the figures (``figures``: force, +-2 sigma,
  learned noise R, samples) beside the plot. Nothing is drawn outside the
  rectangle, and the same chart gives the same pixels. A force beyond the
  limit is drawn on the axis, where the plant saturates it.
* ``figures`` formats the numbers the overlay shows; ``figures_line`` joins
  them into the one line ``kbt view --screenshot`` prints, so the printed and
  the drawn figures are the same strings.

No time, no events, no window: ``sim.view.live`` owns those.
"""

from __future__ import annotations

import math
import os

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

from controller.checks import check_int, check_positive  # noqa: E402

__all__ = ["StripChart", "draw_chart", "chart_layout", "value_to_row", "index_to_column", "time_to_column",
           "capacity_for", "figures", "figures_line", "CHART_COLORS", "CHART_SECONDS"]

CHART_SECONDS = 4.0                  # the chart's time span (s)
PANEL_W = 210                        # width of the legend and figures beside the plot (px)
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 52, 10, 10, 22     # axis labels around the plot (px)
PILOT_H = 4                          # height of a take-over mark at the foot of the plot (px)

CHART_COLORS = {
    "background": (250, 250, 250),
    "axis": (0, 0, 0),
    "zero": (150, 150, 150),
    "band": (250, 190, 190),         # the +-2 sigma band (as the arrow's band in the cart view)
    "force": (200, 30, 30),          # the applied force (as the arrow)
    "expert": (20, 130, 60),         # the expert's force
    "pilot": (240, 150, 20),         # ticks the expert took over (as the cart)
    "change": (150, 0, 150),         # a change of the plant or the noise (as the cart view's text)
    "text": (20, 20, 20),
}

_FIELDS = ("t", "force", "std", "expert", "pilot")


def capacity_for(tau, seconds=CHART_SECONDS):
    """Samples a chart spanning ``seconds`` holds at one sample per period ``tau`` (s):
    ``round(seconds / tau) + 1`` (both ends), at least 2."""
    tau = check_positive("tau", tau)
    seconds = check_positive("seconds", seconds)
    return max(int(round(seconds / tau)) + 1, 2)


def _finite_or_nan(name, value):
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number or None but found {value!r}") from None


class StripChart:
    """The last ``capacity`` samples of (t, force, std, expert force, pilot flag).

    Parameters
    ----------
    capacity : int
        Samples kept (>= 2); the oldest is dropped when a new one comes.
    limit : float
        The force limit (N): the chart's axes are at +- ``limit``.
    tau : float
        The period between samples (s), for the time axis' label.
    """

    def __init__(self, capacity, *, limit, tau):
        self.capacity = check_int("capacity", capacity, low=2)
        self.limit = check_positive("limit", limit)
        self.tau = check_positive("tau", tau)
        self._data = np.full((self.capacity, len(_FIELDS)), np.nan)
        self._next = 0                # row the next sample goes to
        self._n = 0
        self.marks = []               # (t, label) of the changes (``mark``)

    def __len__(self):
        return self._n

    @property
    def seconds(self):
        """The time span the full chart covers (s)."""
        return (self.capacity - 1) * self.tau

    def push(self, t, force, std=None, expert=None, pilot=False):
        """Add one sample; ``std`` or ``expert`` None (or NaN): not known this tick.

        Raises
        ------
        ValueError
            ``t`` not finite, or a value that is not a number.
        """
        t = _finite_or_nan("t", t)
        if not math.isfinite(t):
            raise ValueError(f"t: expected a finite time (s) but found {t}")
        std = _finite_or_nan("std", std)
        if std < 0:
            raise ValueError(f"std: expected a standard deviation >= 0 but found {std}")
        row = (t, _finite_or_nan("force", force), std, _finite_or_nan("expert", expert), float(bool(pilot)))
        self._data[self._next] = row
        self._next = (self._next + 1) % self.capacity
        self._n = min(self._n + 1, self.capacity)

    def mark(self, t, label):
        """A change at time ``t`` (s): a vertical line there, labelled ``label``, while it is in view."""
        t = _finite_or_nan("t", t)
        if not math.isfinite(t):
            raise ValueError(f"t: expected a finite time (s) but found {t}")
        self.marks.append((t, str(label)))

    def clear(self):
        self._data[:] = np.nan
        self._next = self._n = 0
        self.marks = []

    def marks_in_view(self):
        """(t, label) of the marks between the oldest and the newest sample."""
        t = self.arrays()["t"]
        return [(m, label) for m, label in self.marks if len(t) and t[0] <= m <= t[-1]]

    def arrays(self):
        """The samples oldest first: dict of ``t``, ``force``, ``std``, ``expert`` (float
        arrays, NaN where unknown) and ``pilot`` (bool array), each (len(self),)."""
        order = (np.arange(self._n) + self._next - self._n) % self.capacity
        rows = self._data[order]
        out = {k: rows[:, i].copy() for i, k in enumerate(_FIELDS)}
        out["pilot"] = out["pilot"] > 0.5
        return out


# -- figures ------------------------------------------------------------------
def figures(force, force_std=None, noise=None, samples=None):
    """The overlay's figures as strings: ``force``, ``2sigma``, ``noise``, ``samples``.

    ``force_std``, ``noise`` or ``samples`` None (the controller has none): "n/a".
    """
    return {
        "force": "n/a" if force is None or not np.isfinite(force) else f"{float(force):+.1f} N",
        "2sigma": "n/a" if force_std is None or not np.isfinite(force_std) else f"{2 * float(force_std):.2f} N",
        "noise": "n/a" if noise is None or not np.isfinite(noise) else f"{float(noise):.3g} N^2",
        "samples": "n/a" if samples is None else f"{int(samples)}",
    }


_LABELS = {"force": "force", "2sigma": "+-2 sigma", "noise": "noise R", "samples": "samples"}


def figures_line(figs):
    """One line of the figures from ``figures``: ``force +1.2 N  +-2 sigma 0.60 N  ...``."""
    return "  ".join(f"{_LABELS[k]} {figs[k]}" for k in _LABELS)


# -- geometry (public so tests can check pixels) -------------------------------
def chart_layout(rect):
    """(plot, panel) rectangles of a chart drawn on ``rect``: the plot with room
    for its axis labels on the left, the legend and figures on the right."""
    rect = pygame.Rect(rect)
    panel_w = min(PANEL_W, rect.width // 3)
    panel = pygame.Rect(rect.right - panel_w, rect.top, panel_w, rect.height)
    plot = pygame.Rect(rect.left + MARGIN_L, rect.top + MARGIN_T,
                       max(rect.width - panel_w - MARGIN_L - MARGIN_R, 2),
                       max(rect.height - MARGIN_T - MARGIN_B, 2))
    return plot, panel


def value_to_row(value, limit, plot):
    """Pixel row of a force (N) in ``plot``: +limit at the top row, -limit at the
    bottom one; values beyond are clipped to the edge."""
    plot = pygame.Rect(plot)
    v = min(max(float(value), -limit), limit)
    return int(round(plot.top + (limit - v) / (2 * limit) * (plot.height - 1)))


def index_to_column(i, n, capacity, plot):
    """Pixel column of sample ``i`` of ``n`` (oldest first): the newest at the
    right edge, one period ``plot.width / (capacity - 1)`` pixels apart."""
    plot = pygame.Rect(plot)
    age = n - 1 - i
    return int(round(plot.right - 1 - age * (plot.width - 1) / (capacity - 1)))


def _runs(mask):
    """(start, stop) of each run of True in ``mask``."""
    runs, start = [], None
    for i, m in enumerate(mask):
        if m and start is None:
            start = i
        elif not m and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(mask)))
    return runs


# -- drawing -------------------------------------------------------------------
def _font(size):
    if not pygame.font.get_init():
        pygame.font.init()
    return pygame.font.Font(None, size)


def _line(surface, colour, pts, width):
    if len(pts) == 1:
        pygame.draw.line(surface, colour, pts[0], pts[0], width)
    else:
        pygame.draw.lines(surface, colour, False, pts, width)


def draw_chart(surface, rect, chart, *, noise=None, samples=None, font=None):
    """Draw ``chart`` onto ``rect`` of ``surface``; nothing outside ``rect`` changes.

    Parameters
    ----------
    surface : pygame.Surface
    rect : pygame.Rect or (left, top, width, height)
        Inside the surface, at least 200 x 80 pixels.
    chart : StripChart
    noise : float, optional
        The learned label-noise variance R (N^2); None: "n/a".
    samples : int, optional
        Samples learned; None: "n/a".
    font : pygame.font.Font, optional
        For the text (default: pygame's default font, 18 px).

    Returns
    -------
    list of str
        The text lines of the legend and figures, top to bottom, as drawn.
    """
    if not isinstance(chart, StripChart):
        raise ValueError(f"chart: expected a StripChart but found {type(chart).__name__}")
    try:
        rect = pygame.Rect(rect)
    except TypeError:
        raise ValueError(f"rect: expected (left, top, width, height) but found {rect!r}") from None
    if rect.width < 200 or rect.height < 80 or not surface.get_rect().contains(rect):
        raise ValueError(f"rect: expected at least 200 x 80 pixels inside the {surface.get_size()} surface "
                         f"but found {tuple(rect)}")
    c = CHART_COLORS
    font = _font(18) if font is None else font
    plot, panel = chart_layout(rect)
    lim = chart.limit
    data = chart.arrays()
    n = len(chart)
    cols = [index_to_column(i, n, chart.capacity, plot) for i in range(n)]
    old_clip = surface.get_clip()
    surface.set_clip(rect)
    try:
        surface.fill(c["background"], rect)
        _draw_band_and_marks(surface, plot, cols, data, lim)
        _draw_change_marks(surface, plot, font, chart, data["t"])
        _draw_axes(surface, rect, plot, font, lim, chart.seconds)
        # the applied force, then the expert's on top (thinner, so both show where they agree)
        for key, colour, width in (("force", c["force"], 4), ("expert", c["expert"], 2)):
            vals = data[key]
            for a, b in _runs(np.isfinite(vals)):
                _line(surface, colour, [(cols[i], value_to_row(vals[i], lim, plot)) for i in range(a, b)], width)
        lines = _draw_panel(surface, panel, font, data, noise, samples, bool(chart.marks_in_view()))
    finally:
        surface.set_clip(old_clip)
    return lines


def _draw_band_and_marks(surface, plot, cols, data, lim):
    """The +-2 sigma band (one polygon per run of ticks with a known std) and the take-over marks."""
    c = CHART_COLORS
    std, force = data["std"], data["force"]
    for a, b in _runs(np.isfinite(std) & np.isfinite(force)):
        top = [(cols[i], value_to_row(force[i] + 2 * std[i], lim, plot)) for i in range(a, b)]
        bot = [(cols[i], value_to_row(force[i] - 2 * std[i], lim, plot)) for i in range(b - 1, a - 1, -1)]
        if b - a == 1:
            pygame.draw.line(surface, c["band"], top[0], bot[0], 1)
        else:
            pygame.draw.polygon(surface, c["band"], top + bot)
    for a, b in _runs(data["pilot"]):          # take-over marks at the foot of the plot
        x0 = cols[a] - (1 if b - a == 1 else 0)
        pygame.draw.rect(surface, c["pilot"], pygame.Rect(x0, plot.bottom - PILOT_H,
                                                          max(cols[b - 1] - x0 + 1, 2), PILOT_H))


def time_to_column(t, times, capacity, plot):
    """Pixel column of time ``t`` (s) on a chart whose samples are at ``times`` (oldest first)."""
    plot = pygame.Rect(plot)
    tau = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else 1.0
    return int(round(plot.right - 1 - (times[-1] - t) / tau * (plot.width - 1) / (capacity - 1)))


def _draw_change_marks(surface, plot, font, chart, times):
    """A dashed vertical line at each change in view, its label at the top."""
    colour = CHART_COLORS["change"]
    for t, label in chart.marks_in_view():
        x = time_to_column(t, times, chart.capacity, plot)
        for y in range(plot.top, plot.bottom, 8):
            pygame.draw.line(surface, colour, (x, y), (x, min(y + 4, plot.bottom - 1)), 2)
        img = font.render(f"{label} change", True, colour)
        surface.blit(img, (max(min(x + 4, plot.right - img.get_width()), plot.left), plot.top + 2))


def _draw_axes(surface, rect, plot, font, lim, seconds):
    """Zero line, the +-limit lines, the time axis and their labels."""
    c = CHART_COLORS
    pygame.draw.line(surface, c["zero"], (plot.left, value_to_row(0.0, lim, plot)),
                     (plot.right - 1, value_to_row(0.0, lim, plot)), 1)
    for v in (lim, -lim):
        y = value_to_row(v, lim, plot)
        pygame.draw.line(surface, c["axis"], (plot.left, y), (plot.right - 1, y), 1)
    pygame.draw.line(surface, c["axis"], (plot.left, plot.top), (plot.left, plot.bottom - 1), 1)
    for v, label in ((lim, f"{lim:+g} N"), (0.0, "0"), (-lim, f"{-lim:+g} N")):
        img = font.render(label, True, c["text"])
        y = value_to_row(v, lim, plot) - img.get_height() // 2
        surface.blit(img, (plot.left - 6 - img.get_width(), min(max(y, rect.top), rect.bottom - img.get_height())))
    for text, x in ((f"-{seconds:g} s", plot.left), ("now", plot.right - 1)):
        img = font.render(text, True, c["text"])
        surface.blit(img, (min(max(x - img.get_width() // 2, rect.left), rect.right - img.get_width()),
                           plot.bottom + 4))


def _draw_panel(surface, panel, font, data, noise, samples, change=False):
    c = CHART_COLORS
    last = lambda key: data[key][-1] if len(data[key]) else math.nan    # noqa: E731
    figs = figures(last("force"), last("std"), noise, samples)
    legend = [("applied force", "force"), ("+-2 sigma", "band"), ("expert", "expert"), ("expert took over", "pilot")]
    legend += [("change (dashed)", "change")] if change else []
    text = [f"{_LABELS[k]} {figs[k]}" for k in _LABELS]
    lines, y = [], panel.top + 8
    x = panel.left + 8
    for label, key in legend:
        pygame.draw.rect(surface, c[key], pygame.Rect(x, y + 3, 18, 8))
        surface.blit(font.render(label, True, c["text"]), (x + 24, y))
        lines.append(label)
        y += 17
    y += 6
    for line in text:
        surface.blit(font.render(line, True, c["text"]), (x, y))
        lines.append(line)
        y += 17
    return lines
