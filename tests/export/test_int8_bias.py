"""The int8 export's bias correction: kernels on the converter's grid, and biases that undo the rounding's shift."""

import numpy as np
import pytest

from keras_googlenet.export import convert as export, int8_bias
from keras_googlenet.artifacts import model_info


def _conv_bn_model(seed=0):
    """Two convolutions with batch norm (one gamma negative) at 32 px: a "bn" GoogLeNet's structure in small."""
    import keras

    keras.utils.set_random_seed(seed)
    pixels = keras.Input((32, 32, 3))
    x = pixels
    for i, filters in enumerate((6, 5)):
        x = keras.layers.Conv2D(filters, 3, use_bias=False, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"conv{i}_bn")(x)
        x = keras.layers.Activation("relu", name=f"conv{i}_relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(pixels, keras.layers.Dense(3, activation="softmax", name="main")(x))
    rng = np.random.default_rng(seed)
    for i, filters in enumerate((6, 5)):
        gamma = rng.uniform(0.5, 2.0, filters) * np.where(np.arange(filters) == 1, -1, 1)
        norm = model.get_layer(f"conv{i}_bn")
        norm.set_weights([gamma, rng.normal(0, 0.1, filters), rng.normal(0, 0.1, filters), rng.uniform(0.5, 2, filters)])
    return model


def test_kernel_is_rounded_per_output_channel_to_127_steps_of_its_largest_weight():
    kernel = np.zeros((1, 1, 2, 3), np.float32)
    kernel[0, 0, :, 0] = [1.27, 0.014]  # step 0.01
    kernel[0, 0, :, 1] = [-2.54, 0.031]  # step 0.02: 0.031 is 1.55 steps
    rounded = int8_bias.rounded_kernel(kernel)
    np.testing.assert_allclose(rounded[0, 0, :, 0], [1.27, 0.01], atol=1e-7)
    np.testing.assert_allclose(rounded[0, 0, :, 1], [-2.54, 0.04], atol=1e-7)
    np.testing.assert_array_equal(rounded[..., 2], 0.0)  # an all-zero channel stays zero


def test_int8_file_holds_the_rounded_kernels_times_the_folded_batch_norm(tmp_path):
    """The converter re-rounds the corrected kernels without moving them: its grid scales with the folded norm."""
    from ai_edge_litert.interpreter import Interpreter

    model = _conv_bn_model()
    crops = np.random.default_rng(1).uniform(0, 255, (16, 32, 32, 3)).astype(np.float32)
    info = model_info.ModelInfo("bn", 32, ("a", "b", "c"))
    path = export.export_tflite(model, tmp_path / "int8.tflite", quantize="int8", calibration_data=crops, info=info)
    interpreter = Interpreter(model_path=path)
    filters = [t for t in interpreter.get_tensor_details() if t["dtype"] == np.int8 and len(t["quantization_parameters"]["scales"]) > 1]  # per-channel: kernels
    assert len(filters) == 2
    for i, tensor in enumerate(sorted(filters, key=lambda t: t["shape"][0], reverse=True)):
        gamma, _, _, variance = model.get_layer(f"conv{i}_bn").get_weights()
        kernel = model.get_layer(f"conv{i}").get_weights()[0]
        step = np.abs(kernel).max(axis=(0, 1, 2)) / 127  # by hand: int8, symmetric, per output channel
        expected = np.round(kernel / step) * step * gamma / np.sqrt(variance + 1e-3)
        scales = tensor["quantization_parameters"]["scales"]
        stored = interpreter.get_tensor(tensor["index"]).astype(np.float32) * scales[:, None, None, None]  # (out, h, w, in)
        np.testing.assert_allclose(stored, expected.transpose(3, 0, 1, 2), rtol=1e-5, atol=1e-6)


def test_int8_export_moves_the_first_convolutions_bias_by_its_roundings_mean_shift(tmp_path):
    """The export applies the correction: conv0's bias in the file is the folded batch norm's plus the shift, by hand."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from keras_googlenet.model import scaling

    model = _conv_bn_model()
    # Bright crops: their scaled mean is far from 0, so the rounding moves conv0's mean measurably.
    crops = np.random.default_rng(2).uniform(100, 255, (16, 32, 32, 3)).astype(np.float32)
    info = model_info.ModelInfo("bn", 32, ("a", "b", "c"))
    path = export.export_tflite(model, tmp_path / "int8.tflite", quantize="int8", calibration_data=crops, info=info)
    kernel = model.get_layer("conv0").get_weights()[0]
    step = np.abs(kernel).max(axis=(0, 1, 2)) / 127
    inputs = tf.constant(scaling.scale_pixels(crops, "bn"))
    shift = np.mean(tf.nn.conv2d(inputs, kernel, 1, "VALID") - tf.nn.conv2d(inputs, np.round(kernel / step) * step, 1, "VALID"), axis=(0, 1, 2))
    gamma, beta, mean, variance = model.get_layer("conv0_bn").get_weights()
    folded = gamma / np.sqrt(variance + 1e-3)
    uncorrected = beta - mean * folded
    interpreter = Interpreter(model_path=path)
    (bias,) = [t for t in interpreter.get_tensor_details() if t["dtype"] == np.int32 and tuple(t["shape"]) == (6,)]
    stored = interpreter.get_tensor(bias["index"]) * bias["quantization_parameters"]["scales"]
    np.testing.assert_allclose(stored, uncorrected + shift * folded, rtol=0, atol=2e-4)
    assert np.abs(shift * folded).max() > 10 * 2e-4  # a file without the correction would fail


@pytest.mark.parametrize("seed", [0, 1])
def test_correction_brings_each_channels_mean_back_on_images_it_never_saw(seed):
    import keras

    model = _conv_bn_model(seed)
    before = [w.copy() for w in model.get_weights()]
    rng = np.random.default_rng(seed)
    calibration, held_out = (rng.normal(0, 1, (n, 32, 32, 3)).astype(np.float32) for n in (64, 64))
    corrected = int8_bias.corrected_for_int8(model, calibration)
    rounded = keras.models.clone_model(model)
    rounded.set_weights(model.get_weights())
    for name in ("conv0", "conv1"):
        layer = rounded.get_layer(name)
        layer.kernel.assign(int8_bias.rounded_kernel(keras.ops.convert_to_numpy(layer.kernel)))

    def last_norm_means(m):
        return keras.Model(m.inputs, m.get_layer("conv1_bn").output).predict(held_out, verbose=0).mean(axis=(0, 1, 2))

    reference = last_norm_means(model)
    assert np.abs(last_norm_means(corrected) - reference).mean() < 0.5 * np.abs(last_norm_means(rounded) - reference).mean()
    for original, now in zip(before, model.get_weights()):  # the model itself is left as it was
        np.testing.assert_array_equal(original, now)
