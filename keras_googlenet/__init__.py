"""GoogLeNet (Inception v1) for Keras 3: the builder, pretrained weights, training, export and inference.

One package per stage, in the order the data flows: ``model`` (with
``weights``), ``data``, ``artifacts``, ``training``, ``export`` and
``inference``. The public names and the packages are imported on first use
(PEP 562, as scientific-python's SPEC 1 lazy loading does): importing the
package, or running ``keras-googlenet --help``, loads no Keras or TensorFlow,
and ``keras_googlenet.training.train`` works after ``import keras_googlenet``.
"""

import importlib
import warnings

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
_getattr, __dir__ = _lazy.attach(__name__, __path__, _LAZY)


def __getattr__(name):
    if name in _moved.MOVED:  # 0.1's `from keras_googlenet import predict`, with its DeprecationWarning
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the finder's warning points at this line
            module = importlib.import_module(f"{__name__}.{name}")
        warnings.warn(
            f"keras_googlenet.{name} moved to keras_googlenet.{_moved.MOVED[name]} in keras_googlenet 0.2; "
            "the old path goes in 0.3 (CHANGELOG.md).",
            DeprecationWarning,
            stacklevel=2,
        )
        return module
    return _getattr(name)
