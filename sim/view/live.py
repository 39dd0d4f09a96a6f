"""Live pygame view of the cart-pole (the only module that imports pygame).

* ``Renderer`` draws one state and an overlay onto a pygame ``Surface``: track,
  cart, pole, force arrow with its predictive +-2 sigma band, and text (time,
  method, samples learned, force, success/fail counter). It knows nothing about
  time or events.
* ``Viewer`` owns the window (or an off-screen surface in headless mode),
  handles the keys, saves PNG frames and hands out the frame's pixels
  (``Viewer.pixels``, for ``sim.envs``' ``rgb_array`` rendering).
* ``watch`` runs a controller on a task's plant (``sim.world.task.Episode``) in
  real time: fixed-timestep physics with an accumulator and capped catch-up,
  drawing once per frame. ``kbt view`` calls it; ``kbt run --view`` uses
  ``Viewer.show`` once per tick, and marks the ticks where the expert took
  over (the cart turns orange).

Keys: space pause, r reset, d random push, u toggle the uncertainty overlay,
q or Esc quit; closing the window quits.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

from controller.checks import check_int, check_positive  # noqa: E402
from sim.loops.loop import act_one  # noqa: E402
from sim.world.task import Episode, as_task  # noqa: E402

__all__ = ["Overlay", "Renderer", "Viewer", "watch", "force_std", "COLORS"]

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
}
CART_W, CART_H = 0.5, 0.25          # cart size (m)
PUSH_STD = 0.5                       # std of the pole's angular-velocity kick of a push (rad/s)
MAX_CATCH_UP = 5                     # physics steps per frame at most when the drawing falls behind


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


class Renderer:
    """Draws a cart-pole state on a surface of ``size`` pixels.

    The scale (pixels per metre) is chosen from the task's track (|x| <=
    ``x_limit``) and the pole's full length ``2 l_p``, so TARGET's 10 m pole
    fits; for swing-up the track sits mid-height so the pole can hang below it.
    """

    def __init__(self, task, size=(900, 520)):
        self.task = as_task(task)
        self.params = params = self.task.params
        self.width, self.height = int(size[0]), int(size[1])
        track = 2 * (self.task.x_limit + CART_W)
        pole = 2 * params.l_p + CART_H
        below = self.task.name == "swingup"
        self.scale = min(0.95 * self.width / track, (0.36 if below else 0.72) * self.height / pole)
        self.ground = int(self.height * (0.56 if below else 0.88))      # y pixel of the track
        self._font = None

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
        band = ""
        if o.show_uncertainty and o.force_std is not None:
            band = f"  +-2 sigma {2 * o.force_std:.1f} N"
        lines = [
            f"t = {o.t:6.2f} s   method: {o.method}" + ("" if o.learned is None else f"   learned: {o.learned}"),
            f"force {o.force:+6.1f} N{band}",
            f"success {o.successes}   fail {o.failures}" + ("   PAUSED" if o.paused else "")
            + ("" if o.takeovers is None else f"   expert took over {o.takeovers} ticks"
               + ("  (now)" if o.pilot else "")),
        ]
        if o.keys:
            lines.append("space pause  r reset  d push  u uncertainty  q quit")
        for i, line in enumerate(lines):
            surface.blit(self._font.render(line, True, COLORS["text"]), (10, 8 + 20 * i))


class Viewer:
    """A window (or, headless, an off-screen surface) with key handling.

    Parameters
    ----------
    task : Task or CartPoleParams
        The task (a bare plant: balancing it), for the track and the resets.
    method : str
        Shown in the overlay.
    headless : bool
        Draw off-screen (no window); with ``frames_dir``, used by the tests.
    frames_dir : str, optional
        Save every drawn frame as ``frame_00000.png``, ...
    """

    def __init__(self, task, *, method="", size=(900, 520), headless=False, frames_dir=None):
        self.renderer = Renderer(task, size)
        self.task = self.renderer.task
        self.params = self.task.params
        self.method = method
        self.headless = bool(headless)
        self.frames_dir = frames_dir
        if frames_dir:
            os.makedirs(frames_dir, exist_ok=True)
        if self.headless:
            os.environ.setdefault("SDL_VIDEODRIVER", "dummy")   # no display needed off-screen
        pygame.display.init()
        if self.headless:
            self.surface = pygame.Surface(size)
        else:
            self.surface = pygame.display.set_mode(size)
            pygame.display.set_caption(f"kbt - {method}")
        self.paused = False
        self.show_uncertainty = True
        self.quit = False
        self.frames = 0
        self.overlay = Overlay(method=method)
        self._next = None

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

    def show(self, state, force, *, learned=None, force_std=None, t=None, rng=None, pilot=False, takeovers=None):
        """One tick of ``kbt run --view``: events, drawing, real-time pacing.

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
        self.draw(state, force=force, learned=learned, force_std=force_std, pilot=pilot, takeovers=takeovers,
                  t=self.overlay.t + self.params.tau if t is None else t)
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


def force_std(controller, state):
    """Predictive std (N) of the force at one state, or None without ``predict``."""
    if not callable(getattr(controller, "predict", None)):
        return None
    return float(np.sqrt(controller.predict(state[None, :])[1][0]))


def watch(controller, task, *, method="", seconds=None, seed=0, frames_dir=None,
          headless=None, learned=None, max_frames=None, screenshot=None):
    """Run ``controller`` on the task's plant and draw it live.

    Physics advances in fixed steps of ``tau`` from an accumulator of real
    time (at most ``MAX_CATCH_UP`` steps per frame, so a slow frame never makes
    the simulation spiral); episodes (``sim.world.task.Episode``) restart when they
    fail or end, and count as successes by the task's rules. Headless or with
    ``frames_dir``, one physics step is drawn per frame without pacing.
    ``screenshot``: save the last frame there (PNG).

    Returns
    -------
    dict
        ``frames``, ``steps``, ``successes``, ``failures``, ``seconds`` (simulated).
    """
    if seconds is not None:
        seconds = check_positive("seconds", seconds)
    if max_frames is not None:
        max_frames = check_int("max_frames", max_frames, low=1)
    headless = bool(frames_dir) if headless is None else headless
    viewer = Viewer(task, method=method, headless=headless, frames_dir=frames_dir)
    tau = viewer.params.tau
    plant = Episode(viewer.task, np.random.default_rng(seed))
    steps = successes = failures = 0
    force = 0.0
    last = time.perf_counter()
    acc = 0.0
    try:
        while not viewer.quit:
            req = viewer.poll()
            if req:
                state = _apply_requests(req, plant.state, plant.rng, plant.task)
                if "reset" in req:
                    plant.reset(state)
                else:
                    plant.state = state
            now = time.perf_counter()
            if headless:
                n = 0 if viewer.paused else 1
            else:
                acc = 0.0 if viewer.paused else min(acc + now - last, MAX_CATCH_UP * tau)
                n = int(acc // tau)
                acc -= n * tau
            last = now
            for _ in range(n):
                force = act_one(controller, plant.state)
                plant.step(force)
                steps += 1
                if plant.done:
                    failures += int(not plant.succeeded)
                    successes += int(plant.succeeded)
                    plant.restart_if_done()
            viewer.draw(plant.state, t=steps * tau, force=force, force_std=force_std(controller, plant.state),
                        successes=successes, failures=failures, learned=learned)
            if seconds is not None and steps * tau >= seconds:
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
    return {"frames": viewer.frames, "steps": steps, "successes": successes, "failures": failures,
            "seconds": steps * tau}
