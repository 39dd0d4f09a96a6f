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

    assert main(["view", "--method", "lqr", "--seconds", "0.2", "--frames", str(tmp_path), "--no-progress"]) == 0
    assert "10 frames" in capsys.readouterr().out
    assert len(list(tmp_path.glob("*.png"))) == 10


def test_screenshot_saves_the_last_frame(tmp_path, capsys):
    from sim.cli import main

    shot = tmp_path / "shot.png"
    assert main(["view", "--method", "lqr", "--seconds", "0.1", "--screenshot", str(shot), "--no-progress"]) == 0
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
