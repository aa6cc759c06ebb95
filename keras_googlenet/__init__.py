"""GoogLeNet (Inception v1) for Keras 3: builder, training, weights and export."""

from keras_googlenet.imagenet_utils import decode_predictions, preprocess_input
from keras_googlenet.layers import LocalResponseNormalization
from keras_googlenet.model import GoogLeNet, minimum_input_size
from keras_googlenet.task import compile_googlenet, inference_model

__version__ = "0.1.0"

__all__ = [
    "GoogLeNet",
    "LocalResponseNormalization",
    "compile_googlenet",
    "decode_predictions",
    "inference_model",
    "minimum_input_size",
    "preprocess_input",
]
