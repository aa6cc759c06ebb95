"""Checkpoint out: SavedModel, TFLite (fp32, fp16, int8), ONNX and KerasHub presets.

Takes in a ``.keras`` checkpoint; gives out the exported files, each with the
metadata and labels a runtime reads. Open ``convert.py`` first; the int8
file's corrections are ``int8_bias.py`` and ``int8_input.py``.
"""

from keras_googlenet import _lazy

__getattr__, __dir__ = _lazy.attach(__name__, __path__, {"export": "convert"}, former="convert")
