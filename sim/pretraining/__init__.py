"""How the shipped weights were made: ``balance`` (SOURCE, the box around upright)
and ``swingup`` (DAgger on the swing-up expert). Imports ``sim.loops`` and ``sim.world``."""
