"""One input scaling everywhere: preprocess_input, tf.data, the Preprocessing layer, include_preprocessing."""

import numpy as np
import pytest

from markers import needs_torch

import keras_googlenet as kg
from keras_googlenet.data import pipeline
from keras_googlenet.model.layers import Preprocessing
from keras_googlenet.model.googlenet import includes_preprocessing

# Typed in from the sources, not read from the package: Caffe's
# bvlc_googlenet train_val.prototxt (BGR mean 104, 117, 123) and TF-slim's
# inception_preprocessing ([-1, 1]).
PIXEL = np.array([10.0, 20.0, 30.0], dtype="float32")  # R, G, B
EXPECTED = {"paper": [30 - 104, 20 - 117, 10 - 123], "bn": [10 / 127.5 - 1, 20 / 127.5 - 1, 30 / 127.5 - 1]}


@pytest.mark.parametrize("variant", ["paper", "bn"])
def test_every_scaling_path_gives_the_published_numbers(variant):
    import tensorflow as tf

    x = np.broadcast_to(PIXEL, (2, 3, 3, 3)).copy()
    expected = np.broadcast_to(np.float32(EXPECTED[variant]), x.shape)
    np.testing.assert_allclose(kg.preprocess_input(x, variant=variant), expected, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(kg.preprocess_input(tf.constant(x), variant=variant)), expected, rtol=1e-6)
    np.testing.assert_allclose(pipeline.preprocess(tf.constant(x), variant).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(Preprocessing(variant)(x)), expected, rtol=1e-6)
    np.testing.assert_array_equal(x, np.broadcast_to(PIXEL, x.shape))  # the caller's array is untouched


def test_keep_rgb_scaling_is_the_papers_with_the_channels_left_in_rgb_order():
    # What the exports' folded conv1 reads: R - 123, G - 117, B - 104.
    x = np.broadcast_to(PIXEL, (1, 2, 2, 3)).copy()
    expected = np.broadcast_to(np.float32(EXPECTED["paper"][::-1]), x.shape)
    np.testing.assert_allclose(np.asarray(Preprocessing("paper", keep_rgb=True)(x)), expected, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(Preprocessing("bn", keep_rgb=True)(x)), np.float32(EXPECTED["bn"]) + 0 * x, rtol=1e-6)
    assert Preprocessing.from_config(Preprocessing("paper", keep_rgb=True).get_config()).keep_rgb is True


def test_preprocess_input_takes_uint8_pixels_as_they_come_from_an_image_file():
    pixels = np.array([[[[10, 20, 30]]]], dtype=np.uint8)
    np.testing.assert_allclose(kg.preprocess_input(pixels)[0, 0, 0], EXPECTED["paper"])


@pytest.mark.parametrize("variant", ["paper", "bn"])
@pytest.mark.parametrize("batched", [True, False])
def test_preprocess_input_takes_channels_first_on_axis_1_of_a_batch_and_axis_0_of_an_image(variant, batched):
    import tensorflow as tf

    shape = (2, 3, 4, 5) if batched else (3, 4, 5)
    channel_axis = 1 if batched else 0
    x = np.moveaxis(np.broadcast_to(PIXEL, (*shape[:channel_axis], 4, 5, 3)), -1, channel_axis).copy()
    expected = np.moveaxis(np.broadcast_to(np.float32(EXPECTED[variant]), (*shape[:channel_axis], 4, 5, 3)), -1, channel_axis)
    np.testing.assert_allclose(kg.preprocess_input(x, variant=variant, data_format="channels_first"), expected, rtol=1e-6)
    got = kg.preprocess_input(tf.constant(x), variant=variant, data_format="channels_first")
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-6)


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_preprocess_input_matches_keras_applications_caffe_mode_up_to_the_bvlc_mean(data_format):
    # keras.applications' "caffe" mode flips to BGR and subtracts VGG's mean
    # (103.939, 116.779, 123.68); BVLC GoogLeNet's is (104, 117, 123).
    from keras.applications import imagenet_utils as keras_imagenet_utils

    pixels = np.random.default_rng(0).uniform(0, 255, (2, 6, 7, 3)).astype("float32")
    x = np.moveaxis(pixels, -1, 1).copy() if data_format == "channels_first" else pixels
    reference = keras_imagenet_utils.preprocess_input(x.copy(), data_format=data_format, mode="caffe")
    mean_shift = np.float32([103.939 - 104, 116.779 - 117, 123.68 - 123])  # B, G, R
    shift = mean_shift.reshape((1, 3, 1, 1) if data_format == "channels_first" else (1, 1, 1, 3))
    ours = kg.preprocess_input(x, variant="paper", data_format=data_format)
    np.testing.assert_allclose(ours, reference + shift, atol=1e-4)


def test_preprocess_input_refuses_an_unknown_data_format():
    with pytest.raises(ValueError, match=r"Received: data_format='channels_middle'"):
        kg.preprocess_input(np.zeros((1, 3, 2, 2)), data_format="channels_middle")


def test_the_model_still_refuses_a_channels_first_input_shape():
    with pytest.raises(ValueError, match=r"looks channels_first. Received: input_shape=\(3, 224, 224\)"):
        kg.GoogLeNet(input_shape=(3, 224, 224))


@pytest.mark.parametrize("variant", ["paper", "bn"])
def test_a_model_with_preprocessing_on_raw_pixels_equals_one_without_on_preprocessed(variant):
    shape = (96, 96, 3)
    plain = kg.GoogLeNet(variant=variant, input_shape=shape, classes=7, aux_heads=False, classifier_activation=None)
    raw = kg.GoogLeNet(variant=variant, input_shape=shape, classes=7, aux_heads=False, classifier_activation=None,
                       include_preprocessing=True)
    raw.set_weights(plain.get_weights())  # Preprocessing has no weights: same order
    pixels = np.random.default_rng(0).integers(0, 256, (2, *shape)).astype("float32")
    np.testing.assert_allclose(
        raw.predict(pixels, verbose=0), plain.predict(kg.preprocess_input(pixels, variant=variant), verbose=0), atol=1e-4
    )
    assert includes_preprocessing(raw) and not includes_preprocessing(plain)


def test_preprocessing_layer_round_trips_through_a_keras_file(tmp_path):
    import keras

    model = kg.GoogLeNet(variant="bn", input_shape=(96, 96, 3), classes=3, aux_heads=False, include_preprocessing=True)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.get_layer("preprocessing").variant == "bn"
    x = np.random.default_rng(1).uniform(0, 255, (1, 96, 96, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_include_preprocessing_must_be_a_bool():
    with pytest.raises(ValueError, match=r"Received: include_preprocessing='yes'"):
        kg.GoogLeNet(include_preprocessing="yes")


def test_pipeline_without_a_variant_keeps_raw_pixels():
    import tensorflow as tf

    x = tf.constant(np.broadcast_to(PIXEL, (1, 2, 2, 3)))
    np.testing.assert_array_equal(pipeline.preprocess(x, None).numpy(), x.numpy())


@pytest.mark.parametrize("backend", ["jax", pytest.param("torch", marks=needs_torch)])
def test_preprocessing_gives_the_same_numbers_on_the_other_backends(backend):
    import os
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import numpy as np, keras, keras_googlenet as kg
        from keras_googlenet.model.layers import Preprocessing
        assert keras.backend.backend() == {backend!r}
        x = np.broadcast_to(np.float32([10, 20, 30]), (1, 2, 2, 3)).copy()
        for variant, expected in {EXPECTED!r}.items():
            by_layer = keras.ops.convert_to_numpy(Preprocessing(variant)(keras.ops.convert_to_tensor(x)))
            by_function = keras.ops.convert_to_numpy(kg.preprocess_input(keras.ops.convert_to_tensor(x), variant=variant))
            for got in (by_layer, by_function):
                assert np.allclose(got, np.broadcast_to(np.float32(expected), x.shape), rtol=1e-6), (variant, got)
        print("ok")
        """
    )
    env = dict(os.environ, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ok" in result.stdout
