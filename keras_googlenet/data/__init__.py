"""Images in: labelled sources, the paper's augmentation and the tf.data pipeline.

Takes in a ``data`` argument (the built-in digits, a class-per-folder tree or a
tensorflow-datasets name) or image files; gives out batches of
``(images, {"main": y, "aux1": y, "aux2": y})`` for training, and decoded crops
for inference. Open ``pipeline.py`` first; ``sources.py`` imports no TensorFlow.
"""

from keras_googlenet import _lazy

__getattr__, __dir__ = _lazy.attach(__name__, __path__, {})
