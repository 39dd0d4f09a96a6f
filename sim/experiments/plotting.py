"""Drawing helpers shared by the experiments' figures (matplotlib, Agg backend).

Every method stays visible where curves coincide (several reach success 1.00 together,
several baselines share one NLL): each line gets a colour, a dash pattern and a marker,
and the markers of the lines in one panel sit at different checkpoints (``lines``: line
i marks checkpoints i, i + n, i + 2n, ... of n lines), drawn above every line. Bands
(min..max over trials) get a panel of their own per method (``small_multiples``), so
five bands never blend into one wash. Legends go outside the data (``legend_below``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["plt", "style", "lines", "legend_below", "small_multiples", "band_panel", "ordered"]

#: colour, marker, dashes, width per method; kbt drawn last (on top)
_STYLES = {"kbt": ("C3", "o", "-", 2.0), "kbt-softmax": ("C1", "s", "--", 1.5), "rls": ("C0", "^", ":", 1.8),
           "kbt-c": ("C5", "D", "-", 1.3), "rls-c": ("C9", "v", ":", 1.3)}
_OTHER = (("C2", "X", "-.", 1.4), ("C4", "P", (0, (5, 2)), 1.4), ("C6", "p", (0, (1, 2)), 1.6),
          ("C8", "<", "-.", 1.4), ("C5", ">", "--", 1.4), ("C9", "h", (0, (3, 1, 1, 1)), 1.4))
#: (the grey C7 is left out: grey stands for "the others" in a panel of one method)


def plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def style(name, i):
    """(colour, marker, dashes, width) of method ``name``, the ``i``-th of its figure. A variant
    ``kbt+uncertain`` / ``kbt@iid`` has its own look: only exact method names share the table's."""
    return _STYLES.get(name, _OTHER[i % len(_OTHER)])


def ordered(names):
    """Drawing order: kbt last, so its line is on top."""
    return sorted(names, key=lambda m: m == "kbt")


def lines(ax, series, *, ms=6.0):
    """Draw ``series`` = [(label, x, y, style)] on ``ax``: lines first, then the markers of line
    i of n at its own points (``_stagger``) above all lines (every point, nested sizes, when there are
    fewer points than lines). Returns the legend handles (line and marker together)."""
    from matplotlib.lines import Line2D

    n = len(series)
    handles, taken = [], set()
    for i, (label, x, y, (colour, marker, dashes, width)) in enumerate(series):
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        ax.plot(x, y, color=colour, ls=dashes, lw=width, zorder=2 + i / max(n, 1))
        if len(x) >= n:
            idx, size = _stagger(x, i, n, taken), ms
        else:                                           # too few points: all, the first line's largest
            idx, size = np.arange(len(x)), ms + 1.6 * (n - 1 - i)
        ax.plot(x[idx], y[idx], ls="none", marker=marker, ms=size, color=colour, mec="k", mew=0.5, zorder=6)
        handles.append(Line2D([], [], color=colour, ls=dashes, lw=width, marker=marker, ms=ms, mec="k", mew=0.5,
                              label=label))
    return handles


def _stagger(x, i, n, taken, count=10):
    """Indices of line i of n's markers: the points nearest to ``count`` positions evenly spread
    over x, shifted by i / n of their spacing, skipping x values in ``taken`` (another line's
    markers; updated), so coinciding lines never mark the same point."""
    x = np.asarray(x, dtype=float)
    count = max(min(count, len(x) // n), 1)
    lo, hi = x[0], x[-1]
    out = []
    for target in lo + (np.arange(count) + (i + 0.5) / n) * (hi - lo) / count:
        free = [j for j in np.argsort(np.abs(x - target), kind="stable") if x[j] not in taken]
        if free:
            out.append(free[0])
            taken.add(x[free[0]])
    return np.array(sorted(out), dtype=int)


def legend_below(fig, handles, ncol=None, **kw):
    """One legend for the figure, centred under its panels (call before ``tight_layout``; leaves
    room with ``rect``)."""
    ncol = ncol or min(len(handles), 6)
    rows = -(-len(handles) // ncol)
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=8, frameon=False, **kw)
    return 0.02 + 0.045 * rows * 6.0 / fig.get_figheight()       # the bottom margin it needs (figure fraction)


def small_multiples(pyplot, n, *, cols=3, size=(3.6, 2.7), extra=0):
    """A grid for ``n`` panels (+ ``extra`` more) with shared axes; unused cells are hidden.
    Returns (figure, the list of panels used)."""
    total = n + extra
    cols = min(cols, total)
    rows = -(-total // cols)
    fig, axes = pyplot.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows + 1.0), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[total:]:
        ax.axis("off")
    return fig, flat[:total]


def band_panel(ax, x, Y, st, others=(), refs=()):
    """One method's panel: the other methods' means thin and grey, the reference lines, this
    method's min..max band over trials and its mean on top."""
    Y = np.asarray(Y, dtype=float)
    for ox, oy in others:
        ax.plot(ox, oy, color="0.75", lw=0.9, zorder=1)
    for value, colour, dashes in refs:
        ax.axhline(value, color=colour, ls=dashes, lw=1.0, zorder=1.5)
    colour, marker, dashes, width = st
    if Y.shape[0] > 1:
        ax.fill_between(x, Y.min(axis=0), Y.max(axis=0), color=colour, alpha=0.25, lw=0, zorder=2)
    every = max(1, len(x) // 10)
    ax.plot(x, Y.mean(axis=0), color=colour, ls=dashes, lw=max(width, 1.6), marker=marker, ms=4,
            markevery=every, zorder=3)
