"""GoogLeNet (Inception v1) for Keras 3: builder, training, weights and export.

The public names and the submodules are imported on first use (PEP 562, as
scientific-python's SPEC 1 lazy loading does): importing the package, or
running ``keras-googlenet --help``, loads no Keras or TensorFlow, and
``keras_googlenet.training.run.train`` still works after ``import keras_googlenet``.
"""

import importlib
import pkgutil

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    "GoogLeNet": "keras_googlenet.model.googlenet",
    "minimum_input_size": "keras_googlenet.model.architecture",
    "LocalResponseNormalization": "keras_googlenet.model.layers",
    "compile_googlenet": "keras_googlenet.model.task",
    "inference_model": "keras_googlenet.model.task",
    "decode_predictions": "keras_googlenet.model.imagenet_utils",
    "preprocess_input": "keras_googlenet.model.imagenet_utils",
}

__all__ = sorted(_LAZY)
# The submodules and subpackages, listed from the folder without importing any.
_SUBMODULES = frozenset(module.name for module in pkgutil.iter_modules(__path__))


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")  # the import binds it here too
    if name not in _LAZY:
        raise AttributeError(f"module 'keras_googlenet' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
