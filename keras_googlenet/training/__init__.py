"""Training with ``model.fit``: one machine, several GPUs, several hosts or Ray.

Takes in a ``data`` argument and the run's options; gives out a folder with
``best.keras``, the CSV history, the curves and a resumable backup. Open
``run.py`` first (``train``); ``arguments.py`` checks the options before
TensorFlow loads, ``cluster.py`` says where a process stands in its cluster.
"""
