"""Nothing scales twice or not at all: every pairing of model, preprocess_input, pipeline, evaluation, predict and export.

Two models with the same weights, one built with ``include_preprocessing=True``
(it takes raw pixels) and one without (it takes `preprocess_input`'s output),
must give the same probabilities along every path that feeds them.
"""

import numpy as np
import pytest

import keras_googlenet as kg
from keras_googlenet.training import evaluation
from keras_googlenet.export import convert as export
from keras_googlenet.data import pipeline
from keras_googlenet.inference import predict, runtimes
from keras_googlenet.model.googlenet import includes_preprocessing

# Small and single-headed: what is checked is the scaling along each path, not the network.
SIZE = 32


@pytest.fixture(scope="module", params=["paper", "bn"])
def twins(request, tmp_path_factory):
    """``(variant, plain, raw, plain.keras, raw.keras)``: the same weights, scaled outside or inside."""
    import keras

    variant = request.param
    keras.utils.set_random_seed(0)
    plain = kg.GoogLeNet(variant=variant, input_shape=(SIZE, SIZE, 3), classes=10, aux_heads=False)
    raw = kg.GoogLeNet(variant=variant, input_shape=(SIZE, SIZE, 3), classes=10, aux_heads=False, include_preprocessing=True)
    raw.set_weights(plain.get_weights())
    folder = tmp_path_factory.mktemp(f"twins_{variant}")
    plain.save(folder / "plain.keras")
    raw.save(folder / "raw.keras")
    return variant, plain, raw, folder / "plain.keras", folder / "raw.keras"


def _main(model, images):
    return model.predict(images, verbose=0)


def test_the_pipeline_scales_for_a_plain_model_and_leaves_pixels_for_one_that_scales_itself(twins):
    variant, plain, raw, _, _ = twins
    scaled, _ = pipeline.make_dataset("digits", "validation", image_size=SIZE, batch_size=8, variant=variant)
    pixels, _ = pipeline.make_dataset("digits", "validation", image_size=SIZE, batch_size=8, variant=None)
    scaled_images, _ = next(iter(scaled))
    pixel_images, _ = next(iter(pixels))
    assert float(pixel_images.numpy().max()) > 200  # raw pixels, not scaled
    np.testing.assert_allclose(_main(raw, pixel_images.numpy()), _main(plain, scaled_images.numpy()), atol=1e-5)


def test_evaluation_gives_the_same_accuracy_for_both(twins):
    _, _, _, plain_path, raw_path = twins
    results = [evaluation.evaluate(str(path), "digits", limit=48, batch_size=16) for path in (plain_path, raw_path)]
    assert results[0] == results[1]


def test_predict_feeds_each_checkpoint_in_its_own_convention(twins, photo_paths):
    _, _, _, plain_path, raw_path = twins
    assert runtimes.load_predictor(str(raw_path)).info.raw_pixels is True
    assert runtimes.load_predictor(str(plain_path)).info.raw_pixels is False
    first, second = (predict.predict(str(path), photo_paths[:3], top=3) for path in (plain_path, raw_path))
    assert [[name for name, _ in row] for row in first] == [[name for name, _ in row] for row in second]
    np.testing.assert_allclose([[p for _, p in row] for row in first], [[p for _, p in row] for row in second], atol=1e-5)


def test_export_adds_the_scaling_once_whichever_the_model_has(twins):
    variant, plain, raw, _, _ = twins
    wrapped, kept = (export.with_preprocessing(kg.inference_model(m), variant) for m in (plain, raw))
    for model in (wrapped, kept):
        assert includes_preprocessing(model)
        assert sum(layer.name == "preprocessing" for layer in model.layers) == 1
    pixels = np.random.default_rng(0).integers(0, 256, (2, SIZE, SIZE, 3)).astype("float32")
    np.testing.assert_allclose(wrapped.predict(pixels, verbose=0), kept.predict(pixels, verbose=0), atol=1e-5)
    np.testing.assert_allclose(kept.predict(pixels, verbose=0), _main(plain, kg.preprocess_input(pixels, variant=variant)), atol=1e-5)
