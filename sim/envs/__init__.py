"""Gymnasium environments for the two cart-pole tasks (``cartpole_env``).

``kbt/CartPoleBalance-v0`` and ``kbt/CartPoleSwingUp-v0`` run a task of
``sim.world.task`` (its reset, step, failure and success rules) on a plant
chosen by keyword, and render through ``sim.view.live``. Importing this
package registers both ids with Gymnasium (``register_envs``), so
``gymnasium.make("sim.envs:kbt/CartPoleSwingUp-v0")`` finds them without an
import by the user. Imports ``sim.view``, ``sim.world``, ``controller`` and
``gymnasium`` (the ``gym`` extra); nothing in ``sim`` but the CLI may import it.
"""

from __future__ import annotations

import gymnasium

from sim.world.task import TASKS

__all__ = ["ENV_IDS", "register_envs"]

#: Gymnasium id -> the environment class that runs it
ENV_IDS = {
    "kbt/CartPoleBalance-v0": "sim.envs.cartpole_env:BalanceEnv",
    "kbt/CartPoleSwingUp-v0": "sim.envs.cartpole_env:SwingUpEnv",
}
_STEPS = {"kbt/CartPoleBalance-v0": TASKS["balance"].episode_steps,
          "kbt/CartPoleSwingUp-v0": TASKS["swingup"].episode_steps}


def register_envs():
    """Register the ids of ``ENV_IDS`` with Gymnasium (those not registered yet)."""
    for env_id, entry_point in ENV_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry_point, max_episode_steps=_STEPS[env_id])


register_envs()
