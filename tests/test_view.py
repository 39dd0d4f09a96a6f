"""The pygame view, off-screen (SDL_VIDEODRIVER=dummy is set in conftest.py)."""

import numpy as np
import pygame
import pytest

from sim.world.cartpole import SOURCE, TARGET
from sim.view.live import CHART_H, COLORS, Overlay, Renderer, Viewer, watch


def _surface(r):
    return pygame.Surface((r.width, r.height))


def _colour_near(surface, xy, colour, radius=2):
    """True if a pixel of ``colour`` lies within ``radius`` of ``xy``."""
    x0, y0 = xy
    for dx in range(-radius, radius + 1):
        for dy in range(-radius, radius + 1):
            x, y = x0 + dx, y0 + dy
            if 0 <= x < surface.get_width() and 0 <= y < surface.get_height():
                if tuple(surface.get_at((x, y)))[:3] == colour:
                    return True
    return False


@pytest.mark.parametrize("params", [SOURCE, TARGET])
def test_pole_of_every_system_fits_the_screen(params):
    r = Renderer(params)
    for theta in (0.0, 0.2, -0.2):
        for x in (-2.4, 2.4):
            cx, cy = r.pole_tip(np.array([x, 0, theta, 0]))
            assert 0 <= cx < r.width and 0 <= cy < r.height


def test_cart_and_pole_where_the_state_puts_them():
    r = Renderer(TARGET)
    surf = _surface(r)
    state = np.array([1.0, 0.0, 0.15, 0.0])
    r.draw(surf, state, Overlay(method="kbt", force=10.0, force_std=2.0))
    cart = r.cart_centre(state)
    assert tuple(surf.get_at(cart))[:3] == COLORS["cart"]
    # the cart is right of centre by x * scale pixels
    assert cart[0] == pytest.approx(r.width / 2 + 1.0 * r.scale, abs=1)
    # the pole: a point 80 % of the way to the tip has the pole colour; the tip
    # leans right of the pivot by 2 l_p sin(theta)
    pivot = np.array(r.to_screen(1.0, 0.25))
    tip = np.array(r.pole_tip(state))
    mid = tuple(np.round(pivot + 0.8 * (tip - pivot)).astype(int))
    assert _colour_near(surf, mid, COLORS["pole"])
    assert tip[0] - pivot[0] == pytest.approx(2 * TARGET.l_p * np.sin(0.15) * r.scale, abs=1)
    # the upright pole's column is empty at that height when it leans
    up = tuple(np.round(pivot + 0.8 * (np.array(r.pole_tip(np.array([1.0, 0, 0, 0]))) - pivot)).astype(int))
    assert not _colour_near(surf, up, COLORS["pole"])


def test_pole_angle_changes_the_picture():
    r = Renderer(SOURCE)
    a, b = _surface(r), _surface(r)
    r.draw(a, np.array([0, 0, 0.0, 0]), Overlay())
    r.draw(b, np.array([0, 0, 0.2, 0]), Overlay())
    assert pygame.image.tobytes(a, "RGB") != pygame.image.tobytes(b, "RGB")


def test_force_arrow_band_and_overlay_text():
    r = Renderer(TARGET)
    surf = _surface(r)
    state = np.zeros(4)
    r.draw(surf, state, Overlay(method="kbt", force=15.0, force_std=3.0, show_uncertainty=True))
    end = r.force_arrow_end(state, 15.0)
    ay = r.cart_centre(state)[1] + max(int(0.25 * r.scale), 8) // 2 + 14
    assert _colour_near(surf, (end[0] - 4, ay), COLORS["force"])
    band_edge = r.force_arrow_end(state, 15.0 + 2 * 3.0 - 0.5)[0]
    assert _colour_near(surf, (band_edge, ay), COLORS["band"])
    # overlay: dark text pixels in the top-left corner
    corner = pygame.surfarray.array3d(surf)[:300, :80]
    assert (corner.sum(axis=2) < 200).sum() > 100
    # uncertainty off: no band
    r.draw(surf, state, Overlay(method="kbt", force=15.0, force_std=3.0, show_uncertainty=False))
    assert not _colour_near(surf, (band_edge, ay), COLORS["band"])


def _key(k):
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=k, mod=0, unicode="", scancode=0))


def test_window_loop_keys_pause_reset_uncertainty_quit(tmp_path):
    v = Viewer(TARGET, method="kbt", frames_dir=str(tmp_path))
    try:
        state = np.array([0.1, 0.0, 0.05, 0.0])
        assert v.show(state, 1.0, learned=3) is True
        _key(pygame.K_u)
        assert v.show(state, 1.0) is True and v.show_uncertainty is False
        _key(pygame.K_r)
        reply = v.show(state, 1.0, rng=np.random.default_rng(0))
        assert isinstance(reply, np.ndarray) and np.all(np.abs(reply) <= 0.05)
        _key(pygame.K_d)
        pushed = v.show(state, 1.0, rng=np.random.default_rng(0))
        assert pushed[3] != state[3] and pushed[2] == state[2]
        _key(pygame.K_SPACE)
        v.poll()
        assert v.paused
        _key(pygame.K_SPACE)
        _key(pygame.K_q)
        assert v.show(state, 1.0) is False and v.quit
    finally:
        v.close()
    assert len(list(tmp_path.glob("frame_*.png"))) == v.frames >= 4


def test_window_close_quits():
    v = Viewer(SOURCE)
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    assert v.show(np.zeros(4), 0.0) is False
    v.close()


def test_watch_headless_writes_frames_and_counts_episodes(tmp_path):
    from controller.lqr import LQRController

    out = watch(LQRController(SOURCE), TARGET, method="lqr", seconds=1.0, frames_dir=str(tmp_path))
    assert out["frames"] == 50 and out["steps"] == 50
    # the SOURCE gain fails on TARGET within a second
    assert out["failures"] >= 1
    img = pygame.image.load(str(tmp_path / "frame_00000.png"))
    assert img.get_size() == (900, 520 + CHART_H)


def test_watch_paused_does_not_advance(tmp_path):
    from controller.lqr import LQRController

    pygame.display.init()
    _key(pygame.K_SPACE)
    out = watch(LQRController(TARGET), TARGET, max_frames=5, headless=True)
    assert out["frames"] == 5 and out["steps"] == 0


def test_kbt_view_command(tmp_path, capsys):
    from sim.cli import main

    assert main(["view", "--method", "lqr", "--seconds", "0.2", "--frames", str(tmp_path)]) == 0
    assert "10 frames" in capsys.readouterr().out
    assert len(list(tmp_path.glob("*.png"))) == 10


def test_screenshot_saves_the_last_frame(tmp_path, capsys):
    from sim.cli import main

    shot = tmp_path / "shot.png"
    assert main(["view", "--method", "lqr", "--seconds", "0.1", "--screenshot", str(shot)]) == 0
    assert pygame.image.load(str(shot)).get_size() == (900, 520 + CHART_H)


def test_swingup_layout_and_expert_takeover_colour():
    """Swing-up: the track is the task's (|x| <= 3 m) and a hanging pole fits
    below it; a tick the expert took over paints the cart in the pilot colour."""
    from sim.world.task import SWINGUP, SWINGUP_TARGET

    task = SWINGUP.on(SWINGUP_TARGET)
    r = Renderer(task)
    for x in (-3.0, 3.0):
        for theta in (0.0, np.pi, np.pi / 2):
            cx, cy = r.pole_tip(np.array([x, 0, theta, 0]))
            assert 0 <= cx < r.width and 0 <= cy < r.height, (x, theta)
    assert r.pole_tip(np.array([0, 0, np.pi, 0]))[1] > r.ground          # hanging: below the track
    surf = _surface(r)
    state = np.array([0.5, 0.0, np.pi, 0.0])
    cx, cy = r.cart_centre(state)
    side = (cx + int(0.5 * 0.5 * r.scale) - 2, cy)          # inside the cart, clear of the hanging pole
    r.draw(surf, state, Overlay(method="kbt", pilot=True, takeovers=3))
    assert tuple(surf.get_at(side))[:3] == COLORS["pilot"]
    r.draw(surf, state, Overlay(method="kbt"))
    assert tuple(surf.get_at(side))[:3] == COLORS["cart"]


# ------------------------------------------------------------------ the strip chart
from sim.view.strip_chart import (CHART_COLORS, StripChart, capacity_for, chart_layout, draw_chart,  # noqa: E402
                                  figures, figures_line, index_to_column, value_to_row)

SENTINEL = (1, 2, 3)


def test_strip_chart_keeps_the_last_capacity_samples_oldest_first():
    c = StripChart(3, limit=30.0, tau=0.02)
    assert len(c) == 0 and c.arrays()["t"].shape == (0,)
    for k in range(5):
        c.push(0.02 * k, float(k), std=None if k == 3 else 0.5, expert=-float(k), pilot=k == 4)
    a = c.arrays()
    assert len(c) == 3
    np.testing.assert_allclose(a["force"], [2.0, 3.0, 4.0])
    np.testing.assert_allclose(a["expert"], [-2.0, -3.0, -4.0])
    assert np.isnan(a["std"][1]) and a["std"][2] == 0.5
    assert a["pilot"].tolist() == [False, False, True]
    assert c.seconds == pytest.approx(0.04)
    c.clear()
    assert len(c) == 0
    assert capacity_for(0.02) == 201          # 4 s of 20 ms ticks, both ends


@pytest.mark.parametrize("call, name", [
    (lambda: StripChart(1, limit=30.0, tau=0.02), "capacity"),
    (lambda: StripChart(10, limit=0.0, tau=0.02), "limit"),
    (lambda: StripChart(10, limit=30.0, tau=-1.0), "tau"),
    (lambda: StripChart(10, limit=30.0, tau=0.02).push(float("nan"), 1.0), "t"),
    (lambda: StripChart(10, limit=30.0, tau=0.02).push(0.0, 1.0, std=-1.0), "std"),
    (lambda: StripChart(10, limit=30.0, tau=0.02).push(0.0, "a lot"), "force"),
    (lambda: draw_chart(pygame.Surface((400, 200)), (0, 0, 400, 200), None), "chart"),
    (lambda: draw_chart(pygame.Surface((400, 200)), (0, 100, 400, 200), StripChart(10, limit=1.0, tau=1.0)), "rect"),
])
def test_strip_chart_validates_its_arguments(call, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        call()


def _known_chart():
    """60 ticks: applied force +10 N with std 3 N (band 4 .. 16 N), expert -12 N,
    the last 10 ticks taken over by the expert."""
    c = StripChart(capacity_for(0.02, 4.0), limit=30.0, tau=0.02)
    for k in range(60):
        c.push(0.02 * k, 10.0, std=3.0, expert=-12.0, pilot=k >= 50)
    return c


def test_strip_chart_pixels():
    surf = pygame.Surface((900, 720))
    surf.fill(SENTINEL)
    rect = pygame.Rect(0, 520, 900, 200)
    chart = _known_chart()
    lines = draw_chart(surf, rect, chart, noise=0.25, samples=400)
    plot, panel = chart_layout(rect)
    assert rect.contains(plot) and rect.contains(panel) and not plot.colliderect(panel)
    n = len(chart)
    mid = index_to_column(n // 2, n, chart.capacity, plot)
    # the band: between the force line (+10 N, 4 px wide) and its upper edge (+16 N)
    assert tuple(surf.get_at((mid, value_to_row(14.0, 30.0, plot))))[:3] == CHART_COLORS["band"]
    assert tuple(surf.get_at((mid, value_to_row(6.0, 30.0, plot))))[:3] == CHART_COLORS["band"]
    # ... and not beyond it, nor left of the oldest sample
    assert tuple(surf.get_at((mid, value_to_row(19.0, 30.0, plot))))[:3] == CHART_COLORS["background"]
    first = index_to_column(0, n, chart.capacity, plot)
    assert tuple(surf.get_at((first - 5, value_to_row(14.0, 30.0, plot))))[:3] == CHART_COLORS["background"]
    # the lines at the rows of their forces
    assert tuple(surf.get_at((mid, value_to_row(-12.0, 30.0, plot))))[:3] == CHART_COLORS["expert"]
    assert tuple(surf.get_at((mid, value_to_row(10.0, 30.0, plot))))[:3] == CHART_COLORS["force"]
    assert value_to_row(30.0, 30.0, plot) == plot.top and value_to_row(-99.0, 30.0, plot) == plot.bottom - 1
    # the take-over marks under the last ticks only
    foot = plot.bottom - 2
    assert tuple(surf.get_at((index_to_column(n - 3, n, chart.capacity, plot), foot)))[:3] == CHART_COLORS["pilot"]
    assert tuple(surf.get_at((mid, foot)))[:3] != CHART_COLORS["pilot"]
    # nothing outside the chart's rectangle
    px = pygame.surfarray.array3d(surf)
    outside = np.ones(px.shape[:2], bool)
    outside[rect.left:rect.right, rect.top:rect.bottom] = False
    assert (px[outside] == SENTINEL).all()
    # the figures beside the plot: the last tick's
    assert "noise R 0.25 N^2" in lines and "samples 400" in lines
    assert "force +10.0 N" in lines and "+-2 sigma 6.00 N" in lines
    # deterministic: the same chart gives the same pixels
    again = pygame.Surface((900, 720))
    again.fill(SENTINEL)
    draw_chart(again, rect, _known_chart(), noise=0.25, samples=400)
    assert pygame.image.tobytes(again, "RGB") == pygame.image.tobytes(surf, "RGB")


def test_figures_read_n_a_where_the_controller_has_none():
    assert figures(1.234) == {"force": "+1.2 N", "2sigma": "n/a", "noise": "n/a", "samples": "n/a"}
    assert figures_line(figures(-3.0, 0.5, 0.0123, 12)) == "force -3.0 N  +-2 sigma 1.00 N  noise R 0.0123 N^2  samples 12"


class _Known:
    """A controller with known figures: force 5 N, variance 4 N^2, noise R 0.25 N^2."""

    noise_var = 0.25

    def act(self, states):
        return np.full(np.atleast_2d(states).shape[0], 5.0)

    def predict(self, states):
        n = np.atleast_2d(states).shape[0]
        return np.full(n, 5.0), np.full(n, 4.0)


def test_watch_chart_shows_the_controllers_figures():
    out = watch(_Known(), TARGET, max_frames=3, headless=True, learned=7)
    assert out["figures"] == "force +5.0 N  +-2 sigma 4.00 N  noise R 0.25 N^2  samples 7"
    for line in ("force +5.0 N", "+-2 sigma 4.00 N", "noise R 0.25 N^2", "samples 7"):
        assert line in out["text"]


def test_viewer_show_records_the_callers_expert_force_and_noise():
    v = Viewer(TARGET, method="kbt", headless=True)
    try:
        for k in range(3):
            assert v.show(np.zeros(4), 2.0, learned=k, force_std=0.5, expert_force=-1.0, noise=0.5,
                          pilot=k == 2) is True
        a = v.chart.arrays()
        np.testing.assert_allclose(a["expert"], -1.0)
        assert a["pilot"].tolist() == [False, False, True]
        assert "noise R 0.5 N^2" in v.text and "samples 2" in v.text
        v.show(np.zeros(4), 2.0)                    # without them: no band, no expert, "n/a"
        assert np.isnan(v.chart.arrays()["expert"][-1]) and "noise R n/a" in v.text
    finally:
        v.close()
    assert Viewer(TARGET, headless=True, chart_height=0).surface.get_size() == (900, 520)
    with pytest.raises(ValueError, match="^chart_height:"):
        Viewer(TARGET, headless=True, chart_height=10)


def _numbers(text):
    import re

    return {label: re.search(rf"{re.escape(label)} (\S+)", text).group(1)
            for label in ("force", "+-2 sigma", "noise R", "samples")}


def test_screenshot_prints_the_figures_drawn(tmp_path, capsys, monkeypatch):
    """``kbt view --screenshot`` prints one line of the last frame's figures: the
    same numbers the chart and the overlay drew (one formatter makes both)."""
    import sim.view.live as live
    from sim.cli import main

    drawn = {}

    def spy(*args, **kw):
        out = real(*args, **kw)
        drawn.update(out)
        return out

    real = live.watch
    monkeypatch.setattr(live, "watch", spy)
    shot = tmp_path / "shot.png"
    assert main(["view", "--method", "kbt", "--samples", "5", "--seconds", "0.1", "--screenshot", str(shot),
                 "--no-progress"]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("last frame:")]
    assert len(printed) == 1
    got = _numbers(printed[0])
    assert got == _numbers("\n".join(drawn["text"]))
    assert got["samples"] == "5" and got["noise R"] != "n/a" and got["+-2 sigma"] != "n/a"
    overlay = "\n".join(drawn["overlay"])
    assert f"force {got['force']} N  +-2 sigma {got['+-2 sigma']} N" in overlay and "learned: 5" in overlay
    float(got["force"]), float(got["+-2 sigma"]), float(got["noise R"])


def test_view_change_switches_the_plant_and_the_charts_expert_at_its_step():
    from sim.loops.methods import make_controller
    from sim.view.live import Viewer, _Watch
    from sim.world.cartpole import TARGET
    from sim.world.experts import expert_for
    from sim.world.schedule import Change
    from sim.world.task import as_task

    new = TARGET.with_(m_p=0.5, l_p=2.0)
    viewer = Viewer(TARGET, headless=True)
    try:
        run = _Watch(viewer, make_controller("lqr", TARGET), expert_for(as_task(TARGET)), 0, True,
                     [Change(2, params=new)])
        run.step()
        run.step()
        assert run.plant.task.params == TARGET
        state = run.plant.state.copy()
        run.step()                                   # step 2: the change is in force
        assert run.plant.task.params == new
        assert viewer.chart.arrays()["expert"][-1] == pytest.approx(expert_for(as_task(new)).act(state[None])[0])
    finally:
        viewer.close()


def test_a_change_redraws_the_pole_and_is_marked_on_screen_and_on_the_chart():
    """After a --change the pole is drawn at the new length, the overlay says what changed and the
    strip chart has a dashed line at the change's time."""
    from sim.loops.methods import make_controller
    from sim.view.live import _Watch
    from sim.view.strip_chart import CHART_COLORS, chart_layout, time_to_column
    from sim.world.experts import expert_for
    from sim.world.schedule import Change
    from sim.world.task import as_task

    new = TARGET.with_(m_p=0.5, l_p=2.0)
    changes = [Change(30, params=new)]
    viewer = Viewer(TARGET, headless=True, changes=changes)
    try:
        r = viewer.renderer
        run = _Watch(viewer, make_controller("lqr", TARGET), expert_for(as_task(TARGET)), 0, True, changes)
        state = np.array([0.0, 0.0, 0.0, 0.0])
        tip_before = r.pole_tip(state)
        for _ in range(60):
            run.step()
        viewer.draw(run.plant.state, t=run.steps * r.params.tau)
        assert r.params == new
        assert r.pole_tip(state)[1] - r.to_screen(0, 0.25)[1] == pytest.approx(-2 * 2.0 * r.scale, abs=1)
        assert r.pole_tip(state) != tip_before
        assert any(line.startswith("plant changed at 0.60 s (step 30): m_c 1 kg, m_p 0.5 kg, l_p 2 m (was 1, 1, 5)")
                   for line in r.lines)
        assert "change (dashed)" in viewer.text
        plot, _ = chart_layout(viewer.chart_rect)
        x = time_to_column(0.6, viewer.chart.arrays()["t"], viewer.chart.capacity, plot)
        column = [tuple(viewer.surface.get_at((x, y)))[:3] for y in range(plot.top + 20, plot.bottom)]
        assert column.count(CHART_COLORS["change"]) > plot.height // 4           # dashed: half of it, about
        other = time_to_column(0.3, viewer.chart.arrays()["t"], viewer.chart.capacity, plot)
        assert CHART_COLORS["change"] not in [tuple(viewer.surface.get_at((other, y)))[:3]
                                              for y in range(plot.top + 20, plot.bottom)]
    finally:
        viewer.close()


def test_scale_fits_the_longest_pole_a_schedule_brings():
    from sim.world.schedule import Change

    longer = SOURCE.with_(l_p=3.0)
    r = Viewer(SOURCE, headless=True, changes=[Change(5, params=longer)])
    try:
        r.renderer.params = longer
        for theta in (0.0, 0.2, -0.2):
            cx, cy = r.renderer.pole_tip(np.array([2.4, 0, theta, 0]))
            assert 0 <= cx < r.renderer.width and 0 <= cy < r.renderer.height
    finally:
        r.close()
