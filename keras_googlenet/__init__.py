"""GoogLeNet (Inception v1) for Keras 3: the builder, pretrained weights, training, export and inference.

One package per stage, in the order the data flows: ``model`` (with
``weights``), ``data``, ``artifacts``, ``training``, ``export`` and
``inference``. The public names and the packages are imported on first use
(PEP 562, as scientific-python's SPEC 1 lazy loading does): importing the
package, or running ``keras-googlenet --help``, loads no Keras or TensorFlow,
and ``keras_googlenet.training.train`` works after ``import keras_googlenet``.
"""

from keras_googlenet import _lazy, _moved

__version__ = "0.2.0"

# public name -> the module, relative to this package, that defines it
_LAZY = {
    "GoogLeNet": "model.googlenet",
    "minimum_input_size": "model.architecture",
    "LocalResponseNormalization": "model.layers",
    "compile_googlenet": "model.task",
    "inference_model": "model.task",
    "decode_predictions": "model.imagenet_utils",
    "preprocess_input": "model.imagenet_utils",
}

__all__ = sorted(_LAZY)
_moved.install()
__getattr__, __dir__ = _lazy.attach(__name__, __path__, _LAZY, moved=_moved.MOVED)
