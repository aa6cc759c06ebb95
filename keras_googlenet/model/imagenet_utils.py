"""ImageNet input scaling and class names, offline."""

import functools
import importlib.resources
import json

import numpy as np
from keras import ops

from keras_googlenet.model import scaling

CLASS_INDEX_RESOURCE = "assets/imagenet_class_index.json"
# Two spellings of the same 1000 classes (same order, same wnids):
# "keras": keras.applications' decode_predictions ("African_elephant"; two
# "crane" and two "maillot" entries), "readable": human-readable variants
# ("African bush elephant").
CLASS_INDEX_RESOURCES = {"keras": "assets/keras_imagenet_class_index.json", "readable": CLASS_INDEX_RESOURCE}


def preprocess_input(x, variant="paper", data_format=None):
    """Scales RGB images in [0, 255] the way a GoogLeNet variant expects.

    - ``"paper"`` (the default, as ``GoogLeNet``'s): Caffe's BVLC GoogLeNet,
      RGB to BGR and the per-channel mean (104, 117, 123) subtracted.
    - ``"bn"``: scaled to [-1, 1], as TF-slim's Inception v1 and torchvision's
      ``transform_input=True`` imply for the weights ported from TF-slim.

    The numbers are `architecture.VARIANTS[variant].input_scaling`. A model
    built with ``include_preprocessing=True`` scales its input itself: feed
    it raw pixels and do not call this.

    Args:
        x: a float array or tensor of RGB images, 3D or 4D. A numpy array
            is not modified.
        variant: the variant of the model the images are for.
        data_format: ``None`` or ``"channels_last"`` (the default: channels
            on the last axis), or ``"channels_first"`` (axis 1 of a batch,
            axis 0 of one image), as keras.applications accepts. The model
            itself is channels last only.

    Returns:
        The preprocessed float32 array, or a tensor for a tensor input.
    """
    scaling.input_scaling(variant)  # the variant's error first
    if data_format not in (None, "channels_last", "channels_first"):
        raise ValueError(
            f"`data_format` must be None, 'channels_last' or 'channels_first'. Received: data_format={data_format!r}"
        )
    if isinstance(x, (np.ndarray, list, tuple, int, float)):
        x, moveaxis, flip, constant = np.asarray(x, dtype="float32"), np.moveaxis, None, None
    else:
        x, moveaxis, flip, constant = ops.cast(x, "float32"), ops.moveaxis, lambda t: ops.flip(t, axis=-1), ops.convert_to_tensor
    if data_format != "channels_first":
        return scaling.scale_pixels(x, variant, flip_channels=flip, constant=constant)
    # As keras.applications: the channels are axis 1 of a batch, axis 0 of one image.
    channel_axis = 1 if len(x.shape) == 4 else 0
    scaled = scaling.scale_pixels(moveaxis(x, channel_axis, -1), variant, flip_channels=flip, constant=constant)
    return moveaxis(scaled, -1, channel_axis)


@functools.cache
def imagenet_classes(names="keras"):
    """The 1000 ImageNet classes in the standard order, as (wnid, name) pairs.

    Args:
        names: ``"keras"`` (the default, keras.applications' names:
            "African_elephant"), or ``"readable"`` ("African bush elephant").
            One default everywhere: `decode_predictions`, the labels that
            `export` writes and what `predict` prints agree.
    """
    _validate_names(names)
    text = importlib.resources.files("keras_googlenet").joinpath(CLASS_INDEX_RESOURCES[names]).read_text()
    index = json.loads(text)
    return tuple(tuple(index[str(i)]) for i in range(len(index)))


def decode_predictions(preds, top=5, names="keras"):
    """Decodes an ImageNet prediction batch, from the bundled class index.

    As keras.applications' ``decode_predictions``, offline. The output of the
    default three-head GoogLeNet (``model.predict`` returns a list
    ``[main, aux1, aux2]``, or a dict with ``"main"``) is decoded from the
    main head, which is the network's prediction; the auxiliary heads only
    help training.

    Args:
        preds: an array of shape (samples, 1000), probabilities or logits; or
            the three-head output, a list or tuple of three such arrays or a
            dict holding ``"main"``.
        top: how many classes to return per sample.
        names: ``"keras"`` (the default: keras.applications' names, such as
            "African_elephant") or ``"readable"`` ("African bush elephant").

    Returns:
        One list per sample of ``(wnid, class_name, score)`` tuples, best first.
    """
    classes = imagenet_classes(names)
    preds = np.asarray(_main_head(preds))
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


def _main_head(preds):
    """The main head's array of a three-head output; any other array unchanged."""
    if isinstance(preds, dict):
        if "main" not in preds:
            raise ValueError(
                "decode_predictions takes a dict of head outputs only with a 'main' entry; build the model with "
                f"aux_heads=False or use keras_googlenet.inference_model(model). Received: preds.keys()={sorted(preds)}"
            )
        return preds["main"]
    if isinstance(preds, (list, tuple)) and preds and all(np.ndim(head) == 2 for head in preds):
        # A list of 2D arrays is the heads' output, never one batch (that would be a list of rows).
        if len(preds) not in (1, 3):
            raise ValueError(
                "decode_predictions takes a list of head outputs only as GoogLeNet's three, [main, aux1, aux2]; "
                "build the model with aux_heads=False or use keras_googlenet.inference_model(model). "
                f"Received: len(preds)={len(preds)}"
            )
        return preds[0]
    return preds


def _validate_names(names):
    if names not in CLASS_INDEX_RESOURCES:
        raise ValueError(f"The `names` argument must be one of {sorted(CLASS_INDEX_RESOURCES)}. Received: names={names!r}")
