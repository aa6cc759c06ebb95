"""The int8 file's input scaling folded into conv1 (`keras_googlenet.export.int8_input`)."""

import numpy as np
import pytest

import keras_googlenet as kg
from keras_googlenet.export import int8_input
from keras_googlenet.model import scaling
from keras_googlenet.model.layers import MeanPadding

import tflite_ops

# The exports: outside the quick tier's scope (the builder, the weight readers,
# preprocessing, the CLI's checks, the metadata writer, storage), so the full tier only.
pytestmark = pytest.mark.slow


def _googlenet(variant, include_preprocessing=False):
    """A 96 px GoogLeNet with random weights and, for "bn", batch norm statistics far from 0 and 1."""
    import keras

    keras.utils.set_random_seed(1)
    model = kg.GoogLeNet(
        variant=variant, input_shape=(96, 96, 3), classes=10, aux_heads=False, classifier_activation=None,
        include_preprocessing=include_preprocessing,
    )
    rng = np.random.default_rng(2)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.5, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, layer.moving_variance.shape))
    return model


def test_mean_padding_pads_each_channel_with_its_value_and_keeps_the_image():
    image = np.arange(2 * 3 * 3, dtype=np.float32).reshape(1, 2, 3, 3)
    padded = np.asarray(MeanPadding(((1, 2), (0, 1)), (104.0, 117.0, 123.5))(image))
    assert padded.shape == (1, 5, 4, 3)
    np.testing.assert_array_equal(padded[0, 1:3, 0:3], image[0])
    for row, column in [(0, 0), (0, 3), (3, 1), (4, 2), (2, 3)]:
        np.testing.assert_array_equal(padded[0, row, column], [104.0, 117.0, 123.5])


@pytest.mark.parametrize("variant", ["bn", "paper"])
def test_raw_pixel_conv1_gives_the_models_logits_on_raw_pixels(variant):
    model = _googlenet(variant)
    before = [w.copy() for w in model.get_weights()]
    # Bright and dark corners: a border padded with the wrong value moves conv1's edge outputs.
    pixels = np.random.default_rng(3).integers(0, 256, (2, 96, 96, 3)).astype(np.float32)
    pixels[0, :20, :20], pixels[1, -20:, -20:] = 255.0, 0.0
    reference = model.predict(scaling.scale_pixels(pixels, variant), verbose=0)
    folded = int8_input.raw_pixel_conv1(model, variant)
    assert not any(layer.__class__.__name__ == "Preprocessing" for layer in folded.layers)
    np.testing.assert_allclose(folded.predict(pixels, verbose=0), reference, rtol=0, atol=1e-4 * np.abs(reference).max())
    for kept, weight in zip(before, model.get_weights()):
        np.testing.assert_array_equal(kept, weight)


def test_raw_pixel_conv1_replaces_a_preprocessing_layer():
    model = _googlenet("paper", include_preprocessing=True)
    pixels = np.random.default_rng(4).integers(0, 256, (2, 96, 96, 3)).astype(np.float32)
    reference = model.predict(pixels, verbose=0)
    folded = int8_input.raw_pixel_conv1(model, "bn")  # the layer's own variant wins
    np.testing.assert_allclose(folded.predict(pixels, verbose=0), reference, rtol=0, atol=1e-4 * np.abs(reference).max())


def test_raw_pixel_conv1_leaves_a_model_without_googlenets_stem():
    import keras

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="conv1_7x7_s2")(inputs))
    assert int8_input.raw_pixel_conv1(model, "bn") is None
    # A layer between the input and conv1's padding would see raw pixels where it saw scaled ones.
    padded = keras.layers.ZeroPadding2D(3, name="conv1_pad")(keras.layers.Rescaling(2.0)(inputs))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 7, name="conv1_7x7_s2")(padded))
    assert int8_input.raw_pixel_conv1(model, "paper") is None


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["bn", "paper"])
def test_int8_file_takes_raw_pixels_exactly_until_conv1(request, variant):
    """Only exact ops before the first convolution: every tensor holds raw pixels at scale 1."""
    exports = request.getfixturevalue("digits_exports" if variant == "bn" else "paper_digits_exports")
    model = tflite_ops.read_model(exports["tflite_int8"])
    graph = model.subgraphs[0]
    names = [tflite_ops.op_name(model.operatorCodes[op.opcodeIndex]) for op in graph.operators]
    first_conv = names.index("CONV_2D")
    # Before the fold: QUANTIZE, SUB, MUL, PAD ("bn": the scaled pixels at scale 2/255 with zero
    # point -1, where their zero lies at -0.5) and QUANTIZE, SUB, PAD ("paper": scale 1.0745).
    assert names[:first_conv] == ["QUANTIZE", "PAD", "ADD"]
    for op in graph.operators[:first_conv]:
        quantization = graph.tensors[op.outputs[0]].quantization
        assert (list(quantization.scale), list(quantization.zeroPoint)) == ([1.0], [-128])
