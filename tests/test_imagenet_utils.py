"""preprocess_input per variant, and decode_predictions from the bundled index."""

import json

import numpy as np
import pytest

import keras_googlenet as kg
from conftest import SHARED_DATA
from keras_googlenet import imagenet_utils


def test_paper_preprocessing_is_caffe_bgr_mean_subtraction():
    # bvlc_googlenet/train_val.prototxt: mean_value 104, 117, 123 (B, G, R).
    x = np.array([[[[10.0, 20.0, 30.0]]]])
    np.testing.assert_allclose(kg.preprocess_input(x.copy(), variant="paper")[0, 0, 0], [30 - 104, 20 - 117, 10 - 123], rtol=1e-6)


def test_bn_preprocessing_scales_to_minus_one_one():
    x = np.array([[[[0.0, 127.5, 255.0]]]])
    np.testing.assert_allclose(kg.preprocess_input(x, variant="bn")[0, 0, 0], [-1.0, 0.0, 1.0])


def test_bn_preprocessing_equals_torchvision_normalize_then_transform_input():
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3))
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    normalized = (x / 255 - mean) / std
    transformed = normalized * (std / 0.5) + (mean - 0.5) / 0.5  # torchvision GoogLeNet._transform_input
    np.testing.assert_allclose(kg.preprocess_input(x.copy(), variant="bn"), transformed, atol=1e-6)


def test_preprocess_input_rejects_an_unknown_variant():
    with pytest.raises(ValueError, match=r"Received: variant='v2'"):
        kg.preprocess_input(np.zeros((1, 2, 2, 3)), variant="v2")


def test_bundled_class_index_is_the_shared_one():
    bundled = json.loads((imagenet_utils.importlib.resources.files("keras_googlenet") / imagenet_utils.CLASS_INDEX_RESOURCE).read_text())
    assert bundled == json.loads((SHARED_DATA / "imagenet_class_index.json").read_text())


def test_decode_predictions_returns_wnid_name_score_best_first():
    preds = np.zeros((2, 1000), "float32")
    preds[0, 0], preds[0, 1] = 0.9, 0.1
    preds[1, 999] = 1.0
    decoded = kg.decode_predictions(preds, top=2)
    assert decoded[0][0] == ("n01440764", "tench", pytest.approx(0.9))
    assert decoded[0][1][0] == "n01443537"  # goldfish, index 1 in the standard order
    assert decoded[1][0][0] == "n15075141"
    assert len(decoded[1]) == 2


def test_decode_predictions_rejects_a_wrong_shape():
    with pytest.raises(ValueError, match=r"Received: preds.shape=\(2, 10\)"):
        kg.decode_predictions(np.zeros((2, 10)))
