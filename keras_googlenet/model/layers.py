"""Keras layers that GoogLeNet needs and Keras does not ship."""

import keras
import numpy as np
from keras import ops

from keras_googlenet.model import scaling


@keras.saving.register_keras_serializable(package="keras_googlenet")
class LocalResponseNormalization(keras.layers.Layer):
    """Cross-channel local response normalisation, as Caffe's LRN layer.

    ``y = x / (bias + alpha / size * sum(x_j ** 2)) ** beta``, the sum running
    over ``size`` neighbouring channels centred on the channel of ``x``. Caffe
    divides ``alpha`` by ``size``; ``tf.nn.local_response_normalization`` does
    not, so its ``alpha`` is this one's ``alpha / size``.

    Args:
        size: the number of channels in the window (odd).
        alpha: the scale of the sum of squares.
        beta: the exponent.
        bias: the additive constant ``k``.
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, bias=1.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(size, int) or size < 1 or size % 2 == 0:
            raise ValueError(
                f"LocalResponseNormalization size must be an odd positive int. Received: size={size!r}"
            )
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.bias = bias

    def call(self, inputs):
        # In float32 even under mixed precision: squares of post-ReLU
        # activations overflow float16 long before the window sum is scaled.
        x = ops.cast(inputs, "float32")
        half = self.size // 2
        squared = ops.pad(ops.square(x), [[0, 0], [0, 0], [0, 0], [half, half]])
        channels = inputs.shape[-1]
        window = squared[..., :channels]
        for offset in range(1, self.size):
            window = window + squared[..., offset : offset + channels]
        scale = ops.power(self.bias + (self.alpha / self.size) * window, self.beta)
        return ops.cast(x / scale, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size, alpha=self.alpha, beta=self.beta, bias=self.bias)
        return config


@keras.saving.register_keras_serializable(package="keras_googlenet")
class Preprocessing(keras.layers.Layer):
    """Scales raw RGB pixels in [0, 255] as a GoogLeNet variant expects.

    The first layer of ``GoogLeNet(include_preprocessing=True)`` and of every
    export: the model then takes raw pixels, as keras.applications' newer
    models do and as mobile clients (MediaPipe) feed them. It applies
    `scaling.scale_pixels` with `architecture.VARIANTS[variant].input_scaling`,
    the numbers `preprocess_input` uses.

    Args:
        variant: ``"paper"`` (RGB to BGR, Caffe's mean subtracted) or ``"bn"``
            (to [-1, 1]).
        keep_rgb: leave the channels in RGB order (the mean and std
            reordered to match): only for a model whose first convolution
            takes RGB, which `export.fold_channel_swap` makes. Exports use it
            because MediaPipe's GPU delegate has no GATHER.
    """

    def __init__(self, variant="paper", keep_rgb=False, **kwargs):
        super().__init__(**kwargs)
        scaling.input_scaling(variant)  # fails early on an unknown variant
        if not isinstance(keep_rgb, bool):
            raise ValueError(f"The `keep_rgb` argument must be True or False. Received: keep_rgb={keep_rgb!r}")
        self.variant = variant
        self.keep_rgb = keep_rgb

    def call(self, inputs):
        # In float32, then the compute dtype: uint8 pixels come in unchanged.
        # RGB to BGR by a gather, not ops.flip: TFLite's int8 calibration gives
        # REVERSE_V2 the range of the mean subtraction after it (scale 1.48, not 1),
        # which cost the paper variant's int8 export 30% top-1 agreement.
        x = scaling.scale_pixels(
            ops.cast(inputs, "float32"), self.variant, flip_channels=lambda t: ops.take(t, [2, 1, 0], axis=-1),
            constant=lambda value: ops.convert_to_tensor(value, dtype="float32"), keep_rgb=self.keep_rgb,
        )
        return ops.cast(x, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(variant=self.variant, keep_rgb=self.keep_rgb)
        return config


@keras.saving.register_keras_serializable(package="keras_googlenet")
class MeanPadding(keras.layers.Layer):
    """Pads raw RGB pixels with a value per channel: the pixel that a variant's scaling maps to zero.

    Zero padding after `Preprocessing` pads with the scaled zero, which is the
    mean pixel in raw units. This layer pads the raw pixels with that mean, so
    a first convolution that scales raw pixels itself (`int8_input`) sees the
    same border. It is a zero pad plus a constant border image, both exact on
    integer pixels in int8.

    Args:
        padding: ``((top, bottom), (left, right))``, as `ZeroPadding2D` takes it.
        value: the per-channel padding value, a sequence of 3 floats.
    """

    def __init__(self, padding, value, **kwargs):
        super().__init__(**kwargs)
        self.padding = tuple(tuple(int(each) for each in side) for side in padding)
        self.value = tuple(float(each) for each in value)

    def call(self, inputs):
        (top, bottom), (left, right) = self.padding
        height, width = inputs.shape[1], inputs.shape[2]
        border = np.ones((1, height + top + bottom, width + left + right, 1), "float32")
        border[:, top : top + height, left : left + width] = 0.0
        padded = ops.pad(inputs, ((0, 0), (top, bottom), (left, right), (0, 0)))
        return padded + ops.convert_to_tensor(border * np.asarray(self.value, "float32"), dtype=inputs.dtype)

    def compute_output_shape(self, input_shape):
        (top, bottom), (left, right) = self.padding
        grow = lambda size, extra: None if size is None else size + extra  # noqa: E731
        return (input_shape[0], grow(input_shape[1], top + bottom), grow(input_shape[2], left + right), input_shape[3])

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "value": self.value}
