"""The world around the controller, and the application that runs it.

Subpackages, bottom to top; each imports only ``controller``,
``firmware_profile`` and the subpackages below it (``tests/test_layering.py``):

``world``        the plant, the tasks' episode rules, the experts, data, plant changes
``loops``        the loops that run a controller: batched evaluation, the deployed
                 learning loop and its offline use, controllers by name, progress bars
``view``         the pygame live view (imports ``loops`` and ``world``)
``experiments``  trials, their stores and reports, the profiler's workload
``pretraining``  how the shipped weights were made
``envs``         Gymnasium environments for both tasks (imports ``view`` to render)
``cli``          the ``kbt`` command line: one module per command
"""
