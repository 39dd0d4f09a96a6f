"""The loops that run a controller on the world.

``loop`` (batched evaluation episodes and the success rate), ``deploy`` (the
one learning loop: sense, act, plant, label, learn, account),
``run_state`` (what a saved head records and how a resumed run continues
its stream), ``stream`` (the deployed loop in the figures' offline protocol),
``methods`` (controllers by name), ``progress`` (progress bars). Imports
``controller``, ``firmware_profile`` and ``sim.world``.
"""
