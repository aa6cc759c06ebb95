"""preprocess_input per variant, and decode_predictions from the bundled index."""

import numpy as np
import pytest

import keras_googlenet as kg
from keras_googlenet.model import imagenet_utils


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


def _one_hot(*indices):
    preds = np.zeros((len(indices), 1000), "float32")
    preds[np.arange(len(indices)), indices] = 1.0
    return preds


def test_decode_predictions_names_classes_as_keras_applications_does():
    # keras.applications' imagenet_class_index.json: "386": ["n02504458", "African_elephant"].
    (top,) = kg.decode_predictions(_one_hot(386), top=1)
    assert top[0] == ("n02504458", "African_elephant", 1.0)
    # Keras keeps ImageNet's duplicate names: two "crane" (bird, machine) and two "maillot".
    assert [row[0][:2] for row in kg.decode_predictions(_one_hot(134, 517, 638, 639), top=1)] == [
        ("n02012849", "crane"), ("n03126707", "crane"), ("n03710637", "maillot"), ("n03710721", "maillot"),
    ]


def test_decode_predictions_gives_readable_names_on_request():
    (top,) = kg.decode_predictions(_one_hot(386), top=1, names="readable")
    assert top[0] == ("n02504458", "African bush elephant", 1.0)
    assert imagenet_utils.imagenet_classes("readable")[999] == ("n15075141", "toilet paper")
    assert imagenet_utils.imagenet_classes()[999] == ("n15075141", "toilet_tissue")


def test_both_class_indexes_hold_the_same_wnids_in_the_same_order():
    keras_names, readable = imagenet_utils.imagenet_classes("keras"), imagenet_utils.imagenet_classes("readable")
    assert [wnid for wnid, _ in keras_names] == [wnid for wnid, _ in readable]
    assert len(set(wnid for wnid, _ in keras_names)) == 1000


def test_decode_predictions_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"one of \['keras', 'readable'\]\. Received: names='wordnet'"):
        kg.decode_predictions(_one_hot(0), names="wordnet")


def test_decode_predictions_reads_the_main_head_of_the_three_head_output():
    main, aux1, aux2 = _one_hot(386), _one_hot(1), _one_hot(2)
    expected = [[("n02504458", "African_elephant", 1.0)]]
    assert kg.decode_predictions([main, aux1, aux2], top=1) == expected
    assert kg.decode_predictions((main, aux1, aux2), top=1) == expected
    assert kg.decode_predictions({"aux1": aux1, "main": main, "aux2": aux2}, top=1) == expected


def test_keras_applications_recipe_works_on_the_default_model():
    model = kg.GoogLeNet(input_shape=(96, 96, 3), classes=1000)
    preds = model.predict(np.zeros((2, 96, 96, 3), "float32"), verbose=0)
    decoded = kg.decode_predictions(preds, top=3)
    main = preds["main"] if isinstance(preds, dict) else preds[0]
    assert len(decoded) == 2 and [score for _, _, score in decoded[0]] == pytest.approx(sorted(main[0])[::-1][:3])


@pytest.mark.parametrize(
    "preds, message",
    [
        ([np.zeros((1, 1000)), np.zeros((1, 1000))], r"aux_heads=False or use keras_googlenet\.inference_model.* Received: len\(preds\)=2"),
        ({"aux1": np.zeros((1, 1000))}, r"'main' entry.*aux_heads=False.* Received: preds\.keys\(\)=\['aux1'\]"),
    ],
)
def test_decode_predictions_rejects_ambiguous_head_outputs(preds, message):
    with pytest.raises(ValueError, match=message):
        kg.decode_predictions(preds)


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
