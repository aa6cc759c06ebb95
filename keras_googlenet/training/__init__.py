"""Training with ``model.fit``: one machine, several GPUs, several hosts or Ray.

Takes in a ``data`` argument and the run's options; gives out a folder with
``best.keras``, the CSV history, the curves and a resumable backup. Open
``run.py`` first (``train``); ``arguments.py`` checks the options before
TensorFlow loads, ``cluster.py`` says where a process stands in its cluster.
"""

from keras_googlenet import _lazy

__getattr__, __dir__ = _lazy.attach(__name__, __path__, {"train": "run", "TrainingResult": "run", "train_on_ray": "ray", "evaluate": "evaluation"}, former="run")
