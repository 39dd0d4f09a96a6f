"""The world: the cart-pole plant, the tasks, their experts, data and plant changes.

``cartpole`` (the plant's equations and parameter sets), ``task`` (a plant plus
the rules of an episode: balance and swing-up), ``experts`` and
``swingup_expert`` (who labels), ``data`` (sampled and visited states),
``schedule`` (plant and noise changes during a run). Imports only
``controller``; nothing else in ``sim`` is below it.
"""
