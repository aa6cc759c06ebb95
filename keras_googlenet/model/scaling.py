"""The arithmetic of a variant's input scaling, shared by every framework.

The numbers live in `architecture.VARIANTS[variant].input_scaling`; this is
the one formula that applies them. It uses only a channel flip, subtraction
and multiplication, so numpy arrays, TF tensors (inside tf.data) and Keras
tensors on any backend run the same code, each with its own flip.
"""

import numpy as np

from keras_googlenet.model import architecture


def input_scaling(variant):
    """The `architecture.InputScaling` of a variant, with a clear error for an unknown one."""
    if variant not in architecture.VARIANTS:
        raise ValueError(
            f"The `variant` argument must be one of {sorted(architecture.VARIANTS)}. Received: variant={variant!r}"
        )
    return architecture.VARIANTS[variant].input_scaling


def scale_pixels(images, variant, flip_channels=None, constant=None, keep_rgb=False):
    """Scales RGB pixels in [0, 255] (channels last) as ``variant`` expects.

    Args:
        images: a float array or tensor whose last axis holds R, G, B.
        variant: a key of `architecture.VARIANTS`.
        flip_channels: reverses the last axis; ``x[..., ::-1]`` by default
            (numpy, TF, JAX), ``ops.flip`` for Keras tensors on any backend.
        constant: turns the float32 numpy mean and scale into the tensor
            type of ``images`` where its arithmetic needs that (torch).
        keep_rgb: leave the channels in RGB order and reverse the mean and
            std instead: the result is the variant's scaling with its
            channels in RGB order, for a first convolution whose kernel takes
            them so (`export.fold_channel_swap`).

    Returns:
        ``(images[..., order] - mean) * (1 / std)``.
    """
    scaling = input_scaling(variant)
    constant = constant or (lambda value: value)
    mean, std = np.asarray(scaling.mean, dtype="float32"), np.asarray(scaling.std, dtype="float32")
    if scaling.swaps_channels and keep_rgb:
        mean, std = mean[::-1].copy(), std[::-1].copy()
    elif scaling.swaps_channels:
        images = flip_channels(images) if flip_channels else images[..., ::-1]
    return (images - constant(mean)) * constant(1.0 / std)
