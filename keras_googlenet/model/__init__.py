"""The network: the paper's table as data, the builder that walks it, its layers and heads.

Takes in an architecture variant ("paper" or "bn"); gives out a Keras functional
model with the outputs ``main``, ``aux1`` and ``aux2``, the losses it compiles
with, and ``preprocess_input`` / ``decode_predictions`` for ImageNet. Open
``architecture.py`` first (Table 1), then ``googlenet.py`` (the builder).
"""

from keras_googlenet import _lazy

__getattr__, __dir__ = _lazy.attach(__name__, __path__, {"GoogLeNet": "googlenet", "compile_googlenet": "task", "inference_model": "task"}, former="googlenet")
