"""Live pygame view of the cart-pole (with ``sim.view.strip_chart``, the only modules importing pygame).

* ``Renderer`` draws one state and an overlay onto a pygame ``Surface``: track,
  cart, pole, force arrow with its predictive +-2 sigma band, and text (time,
  method, samples learned, force, success/fail counter). It knows nothing about
  time or events.
* ``Viewer`` owns the window (or an off-screen surface in headless mode),
  handles the keys, saves PNG frames and hands out the frame's pixels
  (``Viewer.pixels``, for ``sim.envs``' ``rgb_array`` rendering). Below the cart view it draws a strip
  chart (``sim.view.strip_chart``) of the last 4 s: the applied force, its
  predictive +-2 sigma band and the expert's force, with the learned noise R
  and the samples learned beside it.
* ``watch`` runs a controller on a task's plant (``sim.world.task.Episode``) in
  real time: fixed-timestep physics with an accumulator and capped catch-up,
  drawing once per frame; per tick it asks the controller for its force and
  its predictive variance (one ``predict``) and the task's expert for its
  force. ``kbt view`` calls it; ``kbt run --view`` uses ``Viewer.show`` once
  per tick (the caller passes the std, the expert's force and the noise it
  has), and marks the ticks where the expert took over (the cart turns orange,
  the chart has a mark under the tick).

Keys: space pause, r reset, d random push, u toggle the uncertainty overlay,
q or Esc quit; closing the window quits.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

from controller.checks import check_int, check_positive  # noqa: E402
from sim.loops.loop import act_one  # noqa: E402
from sim.view.strip_chart import CHART_SECONDS, StripChart, capacity_for, draw_chart, figures, figures_line  # noqa: E402
from sim.world.experts import expert_for  # noqa: E402
from sim.world.schedule import plant_in_force  # noqa: E402
from sim.world.task import Episode, as_task  # noqa: E402

__all__ = ["Overlay", "Renderer", "Viewer", "watch", "force_std", "noise_of", "COLORS", "CHART_H"]

COLORS = {
    "background": (255, 255, 255),
    "track": (0, 0, 0),
    "cart": (40, 90, 200),
    "pilot": (240, 150, 20),          # the cart when the expert took over the tick
    "pole": (200, 120, 40),
    "axle": (120, 120, 160),
    "force": (200, 30, 30),
    "band": (250, 190, 190),
    "text": (20, 20, 20),
    "limit": (180, 180, 180),
    "change": (150, 0, 150),          # a change of the plant or the noise (text, and the chart's line)
}
CART_W, CART_H = 0.5, 0.25          # cart size (m)
PUSH_STD = 0.5                       # std of the pole's angular-velocity kick of a push (rad/s)
MAX_CATCH_UP = 5                     # physics steps per frame at most when the drawing falls behind
CHART_H = 200                        # height of the strip chart below the cart view (px)


@dataclass
class Overlay:
    """What the text and the force arrow show."""

    t: float = 0.0                    # simulated time (s)
    method: str = ""
    learned: int | None = None        # samples learned so far (None: not learning)
    force: float = 0.0                # force the controller asked for (N)
    force_std: float | None = None    # predictive std of the force (N), if the controller has one
    successes: int = 0
    failures: int = 0
    paused: bool = False
    show_uncertainty: bool = True
    pilot: bool = False               # the expert acted this tick (learning with --labels uncertain/random)
    takeovers: int | None = None      # ticks the expert took over so far
    keys: bool = True                 # show the key help line (the view's keys; off where they do nothing)
    change: str | None = None         # the last change of the plant or the label noise (``change_text``)


class Renderer:
    """Draws a cart-pole state on a surface of ``size`` pixels.

    The scale (pixels per metre) is chosen from the task's track (|x| <=
    ``x_limit``) and the pole's full length ``2 l_p`` (the longest of ``l_p`` and
    ``longest``, the plants a schedule of changes will bring), so TARGET's 10 m pole
    fits; for swing-up the track sits mid-height so the pole can hang below it.
    ``params`` is the plant drawn: set it to the plant in force after a change.
    """

    def __init__(self, task, size=(900, 520), longest=0.0):
        self.task = as_task(task)
        self.params = params = self.task.params
        self.width, self.height = int(size[0]), int(size[1])
        track = 2 * (self.task.x_limit + CART_W)
        pole = 2 * max(params.l_p, float(longest)) + CART_H
        below = self.task.name == "swingup"
        self.scale = min(0.95 * self.width / track, (0.36 if below else 0.72) * self.height / pole)
        self.ground = int(self.height * (0.56 if below else 0.88))      # y pixel of the track
        self._font = None
        self.lines = []               # the overlay's text lines last drawn

    # -- geometry (public so tests can check pixels) -------------------------
    def to_screen(self, x, y):
        """World (m, m; y up from the track) -> pixel (column, row)."""
        return int(round(self.width / 2 + x * self.scale)), int(round(self.ground - y * self.scale))

    def cart_centre(self, state):
        return self.to_screen(state[0], CART_H / 2)

    def pole_tip(self, state):
        """Pixel of the pole's free end: the pivot plus 2 l_p (sin theta, cos theta)."""
        x, theta = state[0], state[2]
        return self.to_screen(x + 2 * self.params.l_p * np.sin(theta), CART_H + 2 * self.params.l_p * np.cos(theta))

    def force_arrow_end(self, state, force):
        """The arrow spans a quarter of the width at u_max."""
        cx, cy = self.cart_centre(state)
        return cx + int(round(force / self.params.u_max * 0.25 * self.width)), cy

    # -- drawing --------------------------------------------------------------
    def draw(self, surface, state, overlay: Overlay):
        c = COLORS
        surface.fill(c["background"])
        left, gy = self.to_screen(-self.task.x_limit, 0)
        right, _ = self.to_screen(self.task.x_limit, 0)
        pygame.draw.line(surface, c["track"], (0, gy), (self.width, gy), 2)
        for xl in (left, right):
            pygame.draw.line(surface, c["limit"], (xl, gy - 12), (xl, gy + 12), 3)
        # cart
        cx, cy = self.cart_centre(state)
        w, h = int(CART_W * self.scale), max(int(CART_H * self.scale), 8)
        pygame.draw.rect(surface, c["pilot" if overlay.pilot else "cart"], pygame.Rect(cx - w // 2, cy - h // 2, w, h))
        # pole from the pivot on top of the cart
        pivot = self.to_screen(state[0], CART_H)
        pygame.draw.line(surface, c["pole"], pivot, self.pole_tip(state), max(int(0.08 * self.scale), 4))
        pygame.draw.circle(surface, c["axle"], pivot, max(int(0.05 * self.scale), 3))
        # force arrow and its +-2 sigma band, below the cart
        ay = cy + h // 2 + 14
        if overlay.show_uncertainty and overlay.force_std is not None and np.isfinite(overlay.force_std):
            lo = self.force_arrow_end(state, overlay.force - 2 * overlay.force_std)[0]
            hi = self.force_arrow_end(state, overlay.force + 2 * overlay.force_std)[0]
            pygame.draw.rect(surface, c["band"], pygame.Rect(min(lo, hi), ay - 5, max(abs(hi - lo), 1), 11))
        if np.isfinite(overlay.force):
            ex, _ = self.force_arrow_end(state, overlay.force)
            pygame.draw.line(surface, c["force"], (cx, ay), (ex, ay), 3)
            tip = 8 if ex >= cx else -8
            pygame.draw.polygon(surface, c["force"], [(ex + tip, ay), (ex, ay - 5), (ex, ay + 5)])
        self._text(surface, overlay)

    def _text(self, surface, o: Overlay):
        if self._font is None:
            pygame.font.init()
            self._font = pygame.font.Font(None, 22)
        figs = figures(o.force, o.force_std)
        band = ""
        if o.show_uncertainty and o.force_std is not None:
            band = f"  +-2 sigma {figs['2sigma']}"
        lines = [
            f"t = {o.t:6.2f} s   method: {o.method}" + ("" if o.learned is None else f"   learned: {o.learned}")
            + f"   pole l_p {self.params.l_p:g} m",
            f"force {figs['force']}{band}",
            f"success {o.successes}   fail {o.failures}" + ("   PAUSED" if o.paused else "")
            + ("" if o.takeovers is None else f"   expert took over {o.takeovers} ticks"
               + ("  (now)" if o.pilot else "")),
        ]
        if o.keys:
            lines.append("space pause  r reset  d push  u uncertainty  q quit")
        if o.change:
            lines.append(o.change)
        for i, line in enumerate(lines):
            colour = COLORS["change"] if line is o.change else COLORS["text"]
            surface.blit(self._font.render(line, True, colour), (10, 8 + 20 * i))
        self.lines = lines


class Viewer:
    """A window (or, headless, an off-screen surface) with key handling.

    Parameters
    ----------
    task : Task or CartPoleParams
        The task (a bare plant: balancing it), for the track and the resets.
    method : str
        Shown in the overlay.
    size : (int, int)
        The cart view (pixels); the window is ``chart_height`` taller.
    headless : bool
        Draw off-screen (no window); with ``frames_dir``, used by the tests.
    frames_dir : str, optional
        Save every drawn frame as ``frame_00000.png``, ...
    chart_height : int
        Height (pixels, 0 or >= 80) of the strip chart below the cart view; 0: no chart.
    chart_seconds : float
        The time span of the chart (s); it holds one sample per plant period.
    changes : sequence of sim.world.schedule.Change
        The changes the run will bring: the scale fits the longest pole among them.
    """

    def __init__(self, task, *, method="", size=(900, 520), headless=False, frames_dir=None,
                 chart_height=CHART_H, chart_seconds=CHART_SECONDS, changes=()):
        longest = max((c.params.l_p for c in changes if c.params is not None), default=0.0)
        self.renderer = Renderer(task, size, longest)
        self.task = self.renderer.task
        self.params = self.task.params
        chart_height = check_int("chart_height", chart_height, low=0)
        if 0 < chart_height < 80:
            raise ValueError(f"chart_height: expected 0 (no chart) or >= 80 pixels but found {chart_height}")
        self.chart = None
        self.chart_rect = None
        if chart_height:
            self.chart = StripChart(capacity_for(self.params.tau, chart_seconds),
                                    limit=self.params.u_max, tau=self.params.tau)
            self.chart_rect = pygame.Rect(0, self.renderer.height, self.renderer.width, chart_height)
        window = (self.renderer.width, self.renderer.height + chart_height)
        self.method = method
        self.headless = bool(headless)
        self.frames_dir = frames_dir
        if frames_dir:
            os.makedirs(frames_dir, exist_ok=True)
        if self.headless:
            os.environ.setdefault("SDL_VIDEODRIVER", "dummy")   # no display needed off-screen
        pygame.display.init()
        if self.headless:
            self.surface = pygame.Surface(window)
        else:
            self.surface = pygame.display.set_mode(window)
            pygame.display.set_caption(f"kbt - {method}")
        self.paused = False
        self.show_uncertainty = True
        self.quit = False
        self.frames = 0
        self.overlay = Overlay(method=method)
        self.noise = None             # the learned noise R (N^2) the chart shows; None: "n/a"
        self.text = []                # the chart's text lines of the last frame
        self._next = None

    def change(self, change, t):
        """Mark ``change`` (a ``sim.world.schedule.Change``, due at time ``t`` s): the plant drawn from
        now on is its plant, the overlay says what changed, the strip chart has a line at ``t``."""
        before = self.renderer.params
        self.renderer.params = before if change.params is None else change.params
        self.overlay.change = change_text(change, t, before)
        if self.chart is not None:
            self.chart.mark(t, "plant" if change.params is not None else "noise")

    def record(self, t, force, std=None, expert_force=None, pilot=False):
        """Add one tick to the strip chart (nothing without a chart)."""
        if self.chart is not None:
            self.chart.push(t, force, std, expert_force, pilot)

    @property
    def figures(self):
        """The figures of the last frame (``sim.view.strip_chart.figures``): force,
        +-2 sigma, noise R and samples, as the overlay and the chart show them."""
        o = self.overlay
        return figures(o.force, o.force_std, self.noise, o.learned)

    def poll(self):
        """Handle pending events; returns the requests ``{"reset", "push"}`` made by keys."""
        requests = set()
        for ev in pygame.event.get():
            if ev.type == pygame.QUIT:
                self.quit = True
            elif ev.type == pygame.KEYDOWN:
                if ev.key in (pygame.K_q, pygame.K_ESCAPE):
                    self.quit = True
                elif ev.key == pygame.K_SPACE:
                    self.paused = not self.paused
                elif ev.key == pygame.K_u:
                    self.show_uncertainty = not self.show_uncertainty
                elif ev.key == pygame.K_r:
                    requests.add("reset")
                elif ev.key == pygame.K_d:
                    requests.add("push")
        return requests

    def draw(self, state, **overlay):
        """Draw ``state`` with the overlay fields given (see ``Overlay``); save the frame."""
        for k, v in overlay.items():
            setattr(self.overlay, k, v)
        self.overlay.paused = self.paused
        self.overlay.show_uncertainty = self.show_uncertainty
        self.renderer.draw(self.surface, state, self.overlay)
        if self.chart is not None:
            self.text = draw_chart(self.surface, self.chart_rect, self.chart, noise=self.noise,
                                   samples=self.overlay.learned)
        if not self.headless:
            pygame.display.flip()
        if self.frames_dir:
            pygame.image.save(self.surface, os.path.join(self.frames_dir, f"frame_{self.frames:05d}.png"))
        self.frames += 1

    def pace(self, period):
        """Sleep until the next period boundary (real time); re-anchor when far behind."""
        now = time.perf_counter()
        if self._next is None:
            self._next = now
        if self._next > now:
            time.sleep(self._next - now)
        self._next = max(self._next + period, time.perf_counter() - MAX_CATCH_UP * period)

    def show(self, state, force, *, learned=None, force_std=None, t=None, rng=None, pilot=False, takeovers=None,
             expert_force=None, noise=None):
        """One tick of ``kbt run --view``: events, drawing, real-time pacing.

        ``force_std`` (N), ``expert_force`` (N) and ``noise`` (the learned R,
        N^2) are what the caller already has; each None: not shown (the
        chart draws no band or expert line there, the noise reads "n/a").

        Returns False to stop, True to go on, or a new plant state (4,) when
        the user asked for a reset or a push.
        """
        out = True
        while True:
            req = self.poll()
            if self.quit:
                return False
            if req:
                rng = np.random.default_rng() if rng is None else rng
                out = _apply_requests(req, state, rng, self.task)
            if not self.paused:
                break
            self.draw(state)
            time.sleep(0.03)
        t = self.overlay.t + self.params.tau if t is None else t
        self.noise = noise
        self.record(t, force, force_std, expert_force, pilot)
        self.draw(state, force=force, learned=learned, force_std=force_std, pilot=pilot, takeovers=takeovers, t=t)
        if not self.headless:
            self.pace(self.params.tau)
        return out

    def pixels(self):
        """The last drawn frame as an (H, W, 3) uint8 RGB array (a copy)."""
        return np.transpose(pygame.surfarray.array3d(self.surface), (1, 0, 2))

    def close(self):
        pygame.display.quit()


def _apply_requests(requests, state, rng, task):
    if "reset" in requests:
        return task.reset(rng)
    s = np.array(state, dtype=float)
    s[3] += rng.normal(0.0, PUSH_STD)
    return s


def change_text(change, t, before):
    """The overlay's line for ``change`` at time ``t`` (s) after plant ``before``, e.g.
    'plant changed at 12.00 s (step 600): m_c 1 kg, m_p 0.5 kg, l_p 2 m (was 1, 0.1, 0.5)'."""
    parts = []
    if change.params is not None:
        p = change.params
        parts.append(f"plant changed at {t:.2f} s (step {change.at}): m_c {p.m_c:g} kg, m_p {p.m_p:g} kg, "
                     f"l_p {p.l_p:g} m (was {before.m_c:g}, {before.m_p:g}, {before.l_p:g})")
    if change.sigma_data is not None:
        parts.append(("" if parts else f"at {t:.2f} s (step {change.at}): ") + f"label noise {change.sigma_data:g} N^2")
    return "; ".join(parts)


def force_std(controller, state):
    """Predictive std (N) of the force at one state, or None without ``predict``."""
    if not callable(getattr(controller, "predict", None)):
        return None
    return float(np.sqrt(controller.predict(np.asarray(state, dtype=float)[None, :])[1][0]))


def noise_of(controller):
    """The controller's observation-noise variance R (N^2) in use (``noise_var``,
    learned or known), or None when it has none (kbt-softmax, retrain, blob, LQR)."""
    r = getattr(controller, "noise_var", None)
    if r is None or callable(r):
        return None
    r = float(r)
    return r if np.isfinite(r) else None


def watch(controller, task, *, method="", seconds=None, seed=0, frames_dir=None,
          headless=None, learned=None, max_frames=None, screenshot=None, expert=None, changes=()):
    """Run ``controller`` on the task's plant and draw it live.

    Physics advances in fixed steps of ``tau`` from an accumulator of real
    time (at most ``MAX_CATCH_UP`` steps per frame, so a slow frame never makes
    the simulation spiral); episodes (``sim.world.task.Episode``) restart when they
    fail or end, and count as successes by the task's rules. Headless or with
    ``frames_dir``, one physics step is drawn per frame without pacing.
    ``screenshot``: save the last frame there (PNG). Every step adds the force,
    its predictive std (``force_std``) and the expert's force (``expert``,
    default ``sim.world.experts.expert_for(task)``) at the state acted on to the
    strip chart; ``learned`` is shown as the samples, ``noise_of(controller)``
    as the noise R. ``changes``: ``sim.world.schedule.Change`` entries with a plant; from
    step ``at`` on the plant has their parameters (the state carries over) and the chart's
    expert is the new plant's.

    Returns
    -------
    dict
        ``frames``, ``steps``, ``successes``, ``failures``, ``seconds`` (simulated);
        ``figures``: the last frame's figures as one line (``strip_chart.figures_line``),
        ``text``: the chart's text lines of the last frame, ``overlay``: the cart view's.
    """
    if seconds is not None:
        seconds = check_positive("seconds", seconds)
    if max_frames is not None:
        max_frames = check_int("max_frames", max_frames, low=1)
    if expert is not None and not callable(getattr(expert, "act", None)):
        raise ValueError(f"expert: expected an object with act(states) but found {type(expert).__name__}")
    headless = bool(frames_dir) if headless is None else headless
    viewer = Viewer(task, method=method, headless=headless, frames_dir=frames_dir, changes=changes)
    run = _Watch(viewer, controller, expert_for(viewer.task) if expert is None else expert, seed, headless,
                 changes)
    tau = viewer.params.tau
    try:
        while not viewer.quit:
            run.handle_requests()
            now = time.perf_counter()
            for _ in range(run.steps_due(now)):
                run.step()
            viewer.noise = noise_of(controller)
            viewer.draw(run.plant.state, t=run.steps * tau, force=run.force, force_std=run.std,
                        successes=run.successes, failures=run.failures, learned=learned)
            if seconds is not None and run.steps * tau >= seconds:
                break
            if max_frames is not None and viewer.frames >= max_frames:
                break
            if not headless:
                time.sleep(max(0.0, tau - (time.perf_counter() - now)))
        if screenshot:
            os.makedirs(os.path.dirname(os.path.abspath(screenshot)), exist_ok=True)
            pygame.image.save(viewer.surface, screenshot)
    finally:
        viewer.close()
    return {"frames": viewer.frames, "steps": run.steps, "successes": run.successes, "failures": run.failures,
            "seconds": run.steps * tau, "figures": figures_line(viewer.figures), "text": list(viewer.text),
            "overlay": list(viewer.renderer.lines)}


class _Watch:
    """``watch``'s plant, its clock and its counters: episodes of the task, one after another."""

    def __init__(self, viewer, controller, expert, seed, headless, changes=()):
        self.viewer, self.controller, self.expert, self.headless = viewer, controller, expert, headless
        self.changes = tuple(changes)          # the plant changes (sim.world.schedule.Change), by step
        self.tau = viewer.params.tau
        self.plant = Episode(viewer.task, np.random.default_rng(seed))
        self.steps = self.successes = self.failures = 0
        self.force, self.std = 0.0, None
        self.last = time.perf_counter()
        self.acc = 0.0

    def handle_requests(self):
        """The keys' resets and pushes."""
        req = self.viewer.poll()
        if req:
            state = _apply_requests(req, self.plant.state, self.plant.rng, self.plant.task)
            if "reset" in req:
                self.plant.reset(state)
            else:
                self.plant.state = state

    def steps_due(self, now):
        """Physics steps to take this frame: one headless; else from the accumulated real time
        (at most ``MAX_CATCH_UP``)."""
        if self.headless:
            n = 0 if self.viewer.paused else 1
        else:
            self.acc = 0.0 if self.viewer.paused else min(self.acc + now - self.last, MAX_CATCH_UP * self.tau)
            n = int(self.acc // self.tau)
            self.acc -= n * self.tau
        self.last = now
        return n

    def step(self):
        """One tick: a plant change due now (drawn and marked), act, record the chart's figures at
        the state acted on, step, count an ended episode."""
        params = plant_in_force(self.changes, self.steps, self.plant.task.params)
        if params is not self.plant.task.params:
            self.plant.task = replace(self.plant.task, params=params)
            self.expert = expert_for(self.plant.task)
        for change in (c for c in self.changes if c.at == self.steps):
            self.viewer.change(change, self.steps * self.tau)
        state = self.plant.state
        self.force = act_one(self.controller, state)
        self.std = force_std(self.controller, state)
        self.viewer.record(self.steps * self.tau, self.force, self.std, act_one(self.expert, state))
        self.plant.step(self.force)
        self.steps += 1
        if self.plant.done:
            self.failures += int(not self.plant.succeeded)
            self.successes += int(self.plant.succeeded)
            self.plant.restart_if_done()
