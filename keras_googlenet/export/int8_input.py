"""Folds a variant's input scaling into conv1, so that the int8 file's first convolution takes raw pixels exactly.

In the int8 file every tensor has one scale and one integer zero point. Raw
pixels in [0, 255] have an exact one (scale 1), but the scaled pixels do not:
"bn" maps them to (x - 127.5) / 127.5, whose zero falls between two int8
steps, and "paper" subtracts a different mean per channel, which spans 275
values. Quantized, the scaling moved every pixel by up to half a step, twice
(its subtraction and its multiplication are two int8 ops). On the 397
held-out digits that alone cost the "bn" int8 file max |Δprob| 0.074 against
0.035 with the scaling in float.

`raw_pixel_conv1` moves the scaling into conv1, which is linear: its kernel
divides each input channel by the std (and takes RGB where the model took
BGR), and its bias (or the batch norm's mean after it) takes the mean. The
zero padding before conv1 padded the scaled zero, the mean pixel, so
`layers.MeanPadding` pads the raw pixels with the mean instead. In float the
result equals the model's; in int8 only "bn"'s mean, 127.5, is not an
integer pixel, and its border pads with 128.
"""

import numpy as np

from keras_googlenet.model.architecture import STEM_CONV1 as CONV1
from keras_googlenet.model.architecture import STEM_CONV1_PAD as CONV1_PAD


def raw_pixel_conv1(model, variant):
    """A copy of ``model`` that takes raw RGB pixels in [0, 255], its scaling folded into conv1.

    Args:
        model: a functional GoogLeNet, taking scaled pixels or (with a
            `layers.Preprocessing` first) raw ones.
        variant: the variant whose scaling the model's input has, when it
            has no `layers.Preprocessing`.

    Returns:
        The new model, or None when ``model`` has no GoogLeNet stem to fold
        into (a conv1 with a bias or a batch norm, after `conv1_pad`, which
        follows the input or its `layers.Preprocessing`). ``model`` is
        unchanged.
    """
    import keras

    from keras_googlenet.export import int8_bias
    from keras_googlenet.model import scaling
    from keras_googlenet.model import googlenet as model_lib
    from keras_googlenet.model.layers import MeanPadding, Preprocessing

    names = {layer.name: layer for layer in model.layers}
    conv1, pad = names.get(CONV1), names.get(CONV1_PAD)
    if not isinstance(conv1, keras.layers.Conv2D) or not isinstance(pad, keras.layers.ZeroPadding2D):
        return None
    norm = int8_bias.batch_norm_after(conv1)
    preprocessing = next((layer for layer in model.layers if isinstance(layer, Preprocessing)), None)
    first = model.inputs[0] if preprocessing is None else preprocessing.output
    if (not conv1.use_bias and norm is None) or pad.input is not first or conv1.input is not pad.output:
        return None
    if preprocessing is not None:
        variant = preprocessing.variant
    input_scaling = scaling.input_scaling(variant)
    # The mean and std of conv1's input channels, and the raw RGB channel
    # order[j] that its channel j reads (the swap is its own inverse).
    mean, std = np.asarray(input_scaling.mean, "float64"), np.asarray(input_scaling.std, "float64")
    order = [2, 1, 0] if input_scaling.swaps_channels else [0, 1, 2]
    if input_scaling.swaps_channels and preprocessing is not None and preprocessing.keep_rgb:
        mean, std, order = mean[::-1], std[::-1], [0, 1, 2]

    def clone(layer):
        if layer is preprocessing:
            return keras.layers.Identity(name=layer.name)
        if layer is pad:
            return MeanPadding(pad.padding, mean[order], name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    copy = model_lib.clone_with_weights(model, clone)
    kernel = keras.ops.convert_to_numpy(conv1.kernel).astype("float64")
    copy.get_layer(CONV1).kernel.assign((kernel / std[:, None])[:, :, order, :].astype("float32"))
    # sum(K * (x - mean) / std) = sum(K / std * x) + offset, for each output channel.
    offset = -np.einsum("hwio,i->o", kernel, mean / std)
    if conv1.use_bias:
        bias = copy.get_layer(CONV1).bias
        bias.assign((keras.ops.convert_to_numpy(bias) + offset).astype("float32"))
    else:
        moving_mean = copy.get_layer(norm.name).moving_mean
        moving_mean.assign((keras.ops.convert_to_numpy(moving_mean) - offset).astype("float32"))
    return copy
