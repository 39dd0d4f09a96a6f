"""Test-wide settings (no display, no network, deterministic seeds) and shared fixtures."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def pretrained():
    """The shipped pre-trained policy (``controller.model.load_pretrained()``), loaded once per session.

    Shared by every test that asks for it, so no test may change it: controllers
    that train copy the policy (retraining) or learn beside it (KBT's head,
    BLoB's adapters). Teardown checks that its weights are unchanged.
    """
    from controller.model import load_pretrained

    policy = load_pretrained()
    before = {k: v.copy() for k, v in policy.params.items()}
    yield policy
    changed = [k for k, v in before.items() if not np.array_equal(policy.params[k], v)]
    assert not changed, f"a test modified the shared pre-trained policy: {changed}"


@pytest.fixture(scope="module")
def tools_on_path():
    """``tools/`` on ``sys.path`` for one test module: the tools import one another by name."""
    import sys
    from pathlib import Path

    path = str(Path(__file__).resolve().parents[1] / "tools")
    sys.path.insert(0, path)
    try:
        yield
    finally:
        sys.path.remove(path)
