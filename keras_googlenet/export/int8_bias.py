"""Corrects a model's convolutions for the rounding of their kernels to int8 (bias correction).

The TFLite converter rounds each convolution kernel to int8 per output
channel (scale: the channel's largest |weight| / 127). The rounding shifts
the mean of every channel's output a little, and the shifts add up through
GoogLeNet's 57 convolutions. `corrected_for_int8` rounds the kernels as the
converter will and moves each channel's bias (or the batch norm's beta after
it) by the mean shift measured on calibration images, in graph order, so
each correction sees the rounding of every layer before it (Nagel et al.,
"Data-Free Quantization Through Weight Equalization and Bias Correction",
2019, with measured rather than predicted means).

On the 397 held-out digits (`tests/conftest.py`'s models), measured before
the input scaling was folded into conv1 (`int8_input`), the int8 file's
top-5 became identical to Keras' on 89.2% instead of 86.4% ("bn") and on
93.7% as before ("paper"); max |Δprob| fell from 0.103 to 0.067 and from
0.032 to 0.025 (the README has the figures with the fold). It measures once
per stage of convolutions (21 in GoogLeNet): about 25 s more per int8
export at 96 px with 128 calibration images on 2 CPU cores. Rounding a
kernel that is already on its grid changes nothing, and scaling an output
channel by a positive factor (a folded batch norm, a uniform input scale)
scales its grid with it, so the converter keeps these kernels as they are.
"""

import numpy as np

# Images per forward pass while measuring: bounds the memory at 224 px.
CHUNK = 16
INT8_LEVELS = 127


def corrected_for_int8(model, inputs):
    """A copy of ``model`` with int8-rounded kernels and biases corrected for the rounding.

    Args:
        model: a functional Keras model; its top-level `Conv2D` layers are
            corrected (those inside a nested model are left as they are).
        inputs: calibration images as ``model`` takes them, (n, h, w, c).

    Returns:
        A new model with the same layers and names; ``model`` is unchanged.
    """
    import keras

    from keras_googlenet.model import googlenet as model_lib

    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    if not convs:
        return model
    targets = _pre_activation_means(model, convs, inputs)
    corrected = model_lib.clone_with_weights(model)
    copies = [corrected.get_layer(conv.name) for conv in convs]
    for conv in copies:
        conv.kernel.assign(rounded_kernel(keras.ops.convert_to_numpy(conv.kernel)))
    for stage in _stages(corrected, copies):
        means = _pre_activation_means(corrected, stage, inputs)
        for conv in stage:
            _shift(conv, targets[conv.name] - means[conv.name])
    return corrected


def rounded_kernel(kernel):
    """``kernel`` rounded as the TFLite converter rounds it: symmetric int8 per output channel (last axis)."""
    largest = np.abs(kernel).max(axis=tuple(range(kernel.ndim - 1)), keepdims=True)
    step = np.where(largest > 0, largest / INT8_LEVELS, 1.0)
    return (np.round(kernel / step) * step).astype(kernel.dtype)


def _stages(model, convs):
    """``convs`` grouped by depth (convolutions on the longest path from the input): a stage's inputs come only from earlier stages."""
    import keras

    depth = {}
    for layer in model.layers:  # in graph order
        # Keras has no public API for a layer's inbound layers; cloning uses the same.
        nodes = layer._inbound_nodes
        parents = [parent.operation.name for parent in nodes[0].parent_nodes] if nodes else []
        depth[layer.name] = max((depth[name] for name in parents), default=0) + isinstance(layer, keras.layers.Conv2D)
    levels = sorted({depth[conv.name] for conv in convs})
    return [[conv for conv in convs if depth[conv.name] == level] for level in levels]


def _pre_activation_means(model, convs, inputs):
    """Per conv name: each channel's mean over images and positions before its ReLU (after its bias or batch norm)."""
    import keras

    feeder = keras.Model(model.inputs, [conv.input for conv in convs])
    sums, counts = {}, {}
    norms = {conv.name: batch_norm_after(conv) for conv in convs}
    for start in range(0, len(inputs), CHUNK):
        conv_inputs = feeder.predict_on_batch(inputs[start : start + CHUNK])
        for conv, x in zip(convs, conv_inputs if isinstance(conv_inputs, list) else [conv_inputs]):
            z = _pre_activation(conv, norms[conv.name], x).reshape(-1, conv.filters)
            sums[conv.name] = sums.get(conv.name, 0.0) + z.sum(axis=0, dtype=np.float64)
            counts[conv.name] = counts.get(conv.name, 0) + len(z)
    return {name: sums[name] / counts[name] for name in sums}


def _pre_activation(conv, norm, x):
    """The output of ``conv`` on its input ``x``, through its bias or ``norm`` (the batch norm after it, or None), before any activation."""
    import keras

    z = conv.convolution_op(x, conv.kernel)
    if conv.use_bias:
        z = z + conv.bias
    return keras.ops.convert_to_numpy(norm(z, training=False) if norm is not None else z)


def _shift(conv, delta):
    """Adds ``delta`` to each channel of ``conv``'s pre-activation output: to the batch norm's beta after it, or to its bias."""
    import keras

    norm = batch_norm_after(conv)
    target = norm.beta if norm is not None and norm.center else conv.bias if conv.use_bias else None
    if target is not None:  # a convolution with neither keeps its rounding uncorrected
        target.assign(keras.ops.convert_to_numpy(target) + delta.astype(np.float32))


def batch_norm_after(conv):
    """The `BatchNormalization` that alone takes ``conv``'s linear output, or None."""
    import keras

    consumers = [node.operation for node in conv._outbound_nodes]
    if conv.activation is not keras.activations.linear or len(consumers) != 1:
        return None
    return consumers[0] if isinstance(consumers[0], keras.layers.BatchNormalization) else None
