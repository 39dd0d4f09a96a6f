"""Experiments: trials of many methods, their stores and their files.

``offline`` (Figures 3/4/5 and calibration on sample streams), ``onpolicy``
and ``drift`` (deployed-loop experiments), ``trials`` (a local or Dask runner),
``trial_store`` (resumable results), ``report*`` (JSON, CSV and plots),
``profile_run`` (the profiler's workload). Imports ``sim.loops`` and
``sim.world``; not ``view``, ``pretraining``, ``envs`` or ``cli``.
"""
