"""compile_googlenet's losses and metrics: integer labels, and one-hot labels as keras.utils.to_categorical makes."""

import keras
import numpy as np
import pytest

import keras_googlenet as kg
from tiny_googlenet import tiny_googlenet

LABELS = np.array([0, 1, 2, 1, 0, 2])


@pytest.fixture(scope="module")
def three_class_model():
    """Losses and metrics do not depend on the network: GoogLeNet's three heads on one convolution."""
    keras.utils.set_random_seed(0)
    model = tiny_googlenet(variant="bn", input_shape=(32, 32, 3), classes=3)
    images = np.random.default_rng(0).normal(0, 1, size=(len(LABELS), 32, 32, 3)).astype("float32")
    return model, images


def reference_crossentropy(probabilities, labels, smoothing=0.0):
    """Cross-entropy from its definition, with Szegedy et al. (2016)'s label smoothing."""
    classes = probabilities.shape[-1]
    targets = np.eye(classes)[labels] * (1 - smoothing) + smoothing / classes
    return float(np.mean(-np.sum(targets * np.log(probabilities), axis=-1)))


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_one_hot_labels_train_all_three_heads_and_score_like_integer_labels(three_class_model, smoothing):
    model, images = three_class_model
    one_hot = keras.utils.to_categorical(LABELS, 3)
    kg.compile_googlenet(model, optimizer=keras.optimizers.SGD(0.001), label_smoothing=smoothing)
    history = model.fit(images, {"main": one_hot, "aux1": one_hot, "aux2": one_hot}, batch_size=3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])

    probabilities = dict(zip(model.output_names, model.predict(images, verbose=0)))
    scores = model.evaluate(images, {"main": one_hot, "aux1": one_hot, "aux2": one_hot}, verbose=0, return_dict=True)
    for head in ("main", "aux1", "aux2"):
        expected = reference_crossentropy(probabilities[head], LABELS, smoothing)
        assert scores[f"{head}_loss"] == pytest.approx(expected, rel=1e-4), head
    top1 = float(np.mean(np.argmax(probabilities["main"], axis=-1) == LABELS))
    assert scores["main_top1"] == pytest.approx(top1)
    assert scores["main_top5"] == 1.0  # 3 classes: the label is always among the top 5
    sparse = model.evaluate(images, {"main": LABELS, "aux1": LABELS, "aux2": LABELS}, verbose=0, return_dict=True)
    assert sparse == pytest.approx(scores, rel=1e-5)


def test_labels_neither_integer_nor_one_hot_raise_one_line_saying_what_is_expected(three_class_model):
    model, images = three_class_model
    kg.compile_googlenet(model)
    wrong = np.zeros((len(LABELS), 5), "float32")
    with pytest.raises(ValueError, match=r"integer class indices.* or one-hot rows.* Received: labels of shape \(3, 5\)$"):
        model.fit(images, {"main": wrong, "aux1": wrong, "aux2": wrong}, batch_size=3, epochs=1, verbose=0)


def test_a_model_built_from_its_datasets_element_spec_traces_its_train_step_once(train_step_traces):
    import tensorflow as tf

    def tiny_three_head_model():
        keras.utils.set_random_seed(0)
        model = tiny_googlenet(variant="paper", input_shape=(8, 8, 3), classes=3)
        return kg.compile_googlenet(model, optimizer=keras.optimizers.SGD(0.01))

    images = np.random.default_rng(0).normal(size=(len(LABELS), 8, 8, 3)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((images, {"main": LABELS, "aux1": LABELS, "aux2": LABELS})).batch(3)
    # Keras alone creates the per-head loss trackers in the first trace, and
    # TensorFlow traces again: if this becomes 1, the workaround can go.
    tiny_three_head_model().fit(dataset, epochs=2, verbose=0)
    assert len(train_step_traces) == 2
    train_step_traces.clear()
    model = tiny_three_head_model()
    kg.model.task.build_from_element_spec(model, dataset)
    history = model.fit(dataset, epochs=2, verbose=0)
    assert len(train_step_traces) == 1
    assert sorted(history.history) == ["aux1_loss", "aux2_loss", "loss", "main_loss", "main_top1", "main_top5"]
