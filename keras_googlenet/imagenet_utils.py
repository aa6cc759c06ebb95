"""ImageNet input scaling and class names, offline."""

import functools
import importlib.resources
import json

import numpy as np
from keras.applications import imagenet_utils

from keras_googlenet import architecture

CLASS_INDEX_RESOURCE = "data/imagenet_class_index.json"


def preprocess_input(x, variant="paper", data_format=None):
    """Scales RGB images in [0, 255] the way a GoogLeNet variant expects.

    - ``"paper"``: Caffe style, RGB to BGR and the ImageNet mean subtracted.
    - ``"bn"``: scaled to [-1, 1], as TF-slim's Inception v1 and torchvision's
      ``transform_input=True`` imply for the weights ported from TF-slim.

    Args:
        x: a float array or tensor of RGB images, 3D or 4D.
        variant: the variant of the model the images are for.
        data_format: the image data format; the Keras default when ``None``.

    Returns:
        The preprocessed array or tensor.
    """
    if variant not in architecture.VARIANTS:
        raise ValueError(
            f"The `variant` argument must be one of {sorted(architecture.VARIANTS)}. Received: variant={variant!r}"
        )
    mode = architecture.VARIANTS[variant].preprocessing
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode=mode)


@functools.cache
def imagenet_classes():
    """The 1000 ImageNet classes in the standard order, as (wnid, name) pairs."""
    text = importlib.resources.files("keras_googlenet").joinpath(CLASS_INDEX_RESOURCE).read_text()
    index = json.loads(text)
    return tuple(tuple(index[str(i)]) for i in range(len(index)))


def decode_predictions(preds, top=5):
    """Decodes an ImageNet prediction batch, from the bundled class index.

    Args:
        preds: an array of shape (samples, 1000): probabilities or logits.
        top: how many classes to return per sample.

    Returns:
        One list per sample of ``(wnid, class_name, score)`` tuples, best first.
    """
    classes = imagenet_classes()
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != len(classes):
        raise ValueError(
            f"decode_predictions expects a batch of shape (samples, {len(classes)}). "
            f"Received: preds.shape={preds.shape}"
        )
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"The `top` argument must be an int >= 1. Received: top={top!r}")
    results = []
    for row in preds:
        best = np.argsort(row)[::-1][:top]
        results.append([(*classes[i], float(row[i])) for i in best])
    return results
