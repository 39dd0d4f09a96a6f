"""The pygame live view of the closed loop (``live``). Imports ``sim.loops`` and ``sim.world``."""
