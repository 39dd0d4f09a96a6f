"""``kbt profile`` on the changed plant: the plant side of the profiler.

``firmware_profile`` measures latency, memory, FLOPs and device budgets but
does not import the plant. This module builds its ``Workload`` for TARGET --
states from the sampling box (``sim.world.data``), the TARGET LQR expert's labelled
stream, the closed-loop success rate (``sim.loops.loop.evaluate_success``) and the
BLoB and rls controllers of ``sim.loops.methods`` -- and runs the profile with it.
"""

from __future__ import annotations

from firmware_profile.profile import ProfileConfig, Workload
from firmware_profile.profile import run_profile as _run_profile

__all__ = ["target_workload", "run_profile"]


def target_workload(params=None) -> Workload:
    """The profiler's inputs on ``params`` (default TARGET)."""
    from controller.lqr import LQRController
    from sim.world.cartpole import TARGET
    from sim.world.data import sample_dataset, sample_states
    from sim.loops.loop import evaluate_success
    from sim.loops.methods import MethodSettings, make_controller

    plant = TARGET if params is None else params

    def labelled_stream(n, seed):
        return sample_dataset(LQRController(plant), n, seed=seed)

    def success_rate(controller, episodes, seed):
        return evaluate_success(controller, plant, episodes, seed=seed).success_rate

    def make_blob(capacity, epochs, batch, seed):
        return make_controller(f"blob-{capacity}", plant, MethodSettings(epochs=epochs, batch=batch), seed=seed)

    def make_rls():
        return make_controller("rls", plant)

    return Workload(sample_states=sample_states, labelled_stream=labelled_stream, success_rate=success_rate,
                    make_blob=make_blob, make_rls=make_rls)


def run_profile(cfg: ProfileConfig = ProfileConfig(), progress=None):
    """``firmware_profile.profile.run_profile`` on TARGET: all figures as a JSON-ready dict."""
    return _run_profile(cfg, target_workload(), progress=progress)
