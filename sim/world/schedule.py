"""A schedule of changes during a deployed run: the plant, the label noise, or both.

``Change(at=400, params=CartPoleParams(1, 0.5, 2))`` makes the plant that
from tick 400 on (the state carries over; the task's rules and integrator
stay; with ``restart=True`` the change comes between episodes and a new one
starts at tick 400); ``Change(at=800, sigma_data=4.0)`` makes the expert's labels noisy
from tick 800 on. The deployed loop (``sim.loops.deploy``) applies each change
before the tick's action, relabels what is left of an i.i.d. stream with the
new plant's expert, and evaluates every checkpoint on the plant in force.

The command line writes a change as ``TICK:M_C,M_P,L_P`` (a plant) or
``TICK:noise=VAR`` (label-noise variance, N^2), ``parse_change``.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.checks import check_int, check_positive
from sim.world.cartpole import CartPoleParams

__all__ = ["Change", "parse_change", "check_schedule", "plant_in_force"]


@dataclass(frozen=True)
class Change:
    """From tick ``at`` on: the plant's masses and length (``params``), the label noise, or both."""

    at: int
    params: CartPoleParams | None = None
    sigma_data: float | None = None
    #: the change comes between episodes (a swapped pole or cart): the episode restarts at
    #: ``at`` from the task's initial states; False: the state carries over mid-episode
    restart: bool = False

    def __post_init__(self):
        check_int("at", self.at, low=1)
        if self.params is None and self.sigma_data is None:
            raise ValueError("change: expected a plant or a label-noise variance")
        if self.sigma_data is not None:
            object.__setattr__(self, "sigma_data", check_positive("sigma_data", self.sigma_data, allow_zero=True))

    def describe(self):
        parts = []
        if self.params is not None:
            p = self.params
            parts.append(f"plant ({p.m_c:g}, {p.m_p:g}, {p.l_p:g})")
        if self.sigma_data is not None:
            parts.append(f"label noise {self.sigma_data:g} N^2")
        if self.restart:
            parts.append("between episodes")
        return f"at {self.at}: " + ", ".join(parts)


def parse_change(text, base: CartPoleParams):
    """``"400:1,0.5,2"`` -> a plant change (other parameters from ``base``);
    ``"800:noise=4"`` -> a label-noise change. ValueError naming the form otherwise."""
    form = "expected TICK:M_C,M_P,L_P or TICK:noise=VAR, e.g. 400:1,0.5,2"
    tick, sep, what = str(text).partition(":")
    if not sep:
        raise ValueError(f"{form}, but found {text!r}")
    try:
        at = int(tick)
    except ValueError:
        raise ValueError(f"{form}, but found tick {tick!r}") from None
    if what.startswith("noise="):
        value = what[len("noise="):]
        try:
            var = float(value)
        except ValueError:
            raise ValueError(f"{form}, but found noise {value!r}") from None
        try:
            return Change(at, sigma_data=var)
        except ValueError as e:
            raise ValueError(f"{text!r}: {e}") from None
    try:
        m_c, m_p, l_p = (float(v) for v in what.split(","))
    except ValueError:
        raise ValueError(f"{form}, but found {what!r}") from None
    for name, v in (("m_c", m_c), ("m_p", m_p), ("l_p", l_p)):
        if not 0.0 < v <= 1e3:
            raise ValueError(f"{text!r}: {name} expected in (0, 1000] but found {v:g}")
    return Change(at, params=base.with_(m_c=m_c, m_p=m_p, l_p=l_p))


def check_schedule(changes, samples, unit="samples"):
    """The changes sorted by tick; ValueError for two at one tick or one past ``samples``
    (``unit``: what the run counts, for the message)."""
    out = sorted(changes, key=lambda c: c.at)
    for c in out:
        if not isinstance(c, Change):
            raise ValueError(f"changes: expected Change entries but found {type(c).__name__}")
        if c.at >= samples:
            raise ValueError(f"changes: a change at tick {c.at} is past the run's {samples} {unit}")
    ticks = [c.at for c in out]
    if len(set(ticks)) != len(ticks):
        raise ValueError(f"changes: two changes at one tick ({ticks})")
    return tuple(out)


def plant_in_force(changes, tick, base: CartPoleParams):
    """The plant at ``tick`` (0-based): the parameters of the last plant change due by then, else ``base``."""
    due = [c for c in changes if c.params is not None and c.at <= tick]
    return max(due, key=lambda c: c.at).params if due else base
