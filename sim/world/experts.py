"""The expert of each task: the controller designed for the plant, whose
actions are the labels the learners adapt to.

* balance: the LQR gain designed for the plant (``controller.lqr``);
* swing-up: energy pumping handing over to that LQR near upright
  (``sim.world.swingup_expert``, docs/swingup.md).
"""

from __future__ import annotations

from sim.world.cartpole import CartPoleParams
from sim.world.task import as_task

__all__ = ["expert_for"]


def expert_for(task, design: CartPoleParams | None = None):
    """The expert of ``task`` (a ``Task``, or ``CartPoleParams`` for balancing),
    designed for ``design`` (default: the task's own plant)."""
    task = as_task(task)
    design = task.params if design is None else design
    if not isinstance(design, CartPoleParams):
        raise TypeError(f"design: expected CartPoleParams but found {type(design).__name__}")
    if task.name == "swingup":
        from sim.world.swingup_expert import SwingupExpert

        return SwingupExpert(design)
    from controller.lqr import LQRController

    return LQRController(design)
