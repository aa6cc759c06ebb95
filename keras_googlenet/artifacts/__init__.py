"""What a checkpoint or an export says about itself, for the stages that write and read them.

Takes in a ``.keras`` checkpoint, a SavedModel folder, a ``.tflite`` or an
``.onnx`` file; gives out its ``ModelInfo`` (variant, input size, scaling, class
names) and the TFLite metadata that MediaPipe reads. Open ``model_info.py`` first.
"""

from keras_googlenet import _lazy

__getattr__, __dir__ = _lazy.attach(__name__, __path__, {})
