"""The pygame live view of the closed loop: the window, keys and real-time loop (``live``)
and its strip chart of the force (``strip_chart``). Imports ``sim.loops``, ``sim.world`` and ``controller``."""
