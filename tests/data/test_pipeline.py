"""The tf.data pipeline: batches for the three heads, scaled for the variant, reproducible."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import keras_googlenet as kg
from keras_googlenet.data import augment, datasets, pipeline


def first_batch(dataset):
    images, targets = next(iter(dataset))
    return images.numpy(), {name: labels.numpy() for name, labels in targets.items()}


def assert_three_head_batch(images, targets, batch_size, image_size, num_classes):
    assert images.shape == (batch_size, image_size, image_size, 3) and images.dtype == np.float32
    assert sorted(targets) == ["aux1", "aux2", "main"]
    for labels in targets.values():
        np.testing.assert_array_equal(labels, targets["main"])
    assert targets["main"].shape == (batch_size,) and targets["main"].dtype == np.int64
    assert ((0 <= targets["main"]) & (targets["main"] < num_classes)).all()


def test_folder_pipeline_yields_three_head_batches(image_folder):
    dataset, info = pipeline.make_dataset(image_folder, image_size=32, batch_size=4, seed=0, validation_fraction=0.5)
    # Keras needs the static shape; the decoded files alone do not give it.
    assert dataset.element_spec[0].shape.as_list() == [4, 32, 32, 3]
    images, targets = first_batch(dataset)
    assert_three_head_batch(images, targets, 4, 32, info.num_classes)
    # Caffe scaling ("paper"): BGR minus the ImageNet mean, so below 255 - 103.9.
    assert images.max() <= 255 - 103.939 + 1e-3 and images.min() >= -123.68 - 1e-3


def test_folder_validation_is_every_remaining_image_centre_cropped(image_folder):
    dataset, _ = pipeline.make_dataset(
        image_folder, "validation", image_size=16, batch_size=64, variant="bn", validation_fraction=0.5
    )
    assert dataset.element_spec[0].shape.as_list() == [None, 16, 16, 3]
    batches = list(dataset)
    assert len(batches) == 1  # no remainder dropped outside training
    images = batches[0][0].numpy()
    labels = batches[0][1]["main"].numpy()
    # Flat grey images stay flat: 220 and 30 scaled to [-1, 1].
    for image, label in zip(images, labels):
        np.testing.assert_allclose(image, (220, 30)[label] / 127.5 - 1, atol=0.02)


@pytest.mark.parametrize("name, num_classes", [("tf_flowers", 5), ("imagenet2012", 1000)])
@pytest.mark.parametrize("split", ["train", "validation"])
def test_tfds_pipeline_yields_three_head_batches(name, num_classes, split):
    with tfds.testing.mock_data(num_examples=4):
        dataset, info = pipeline.make_dataset(name, split, image_size=32, batch_size=2, seed=0)
        images, targets = first_batch(dataset)
    assert info.num_classes == num_classes
    assert_three_head_batch(images, targets, 2, 32, num_classes)


def test_same_seed_gives_identical_batches_and_another_seed_does_not():
    def batches(seed):
        dataset, _ = pipeline.make_dataset("digits", image_size=24, batch_size=8, seed=seed)
        return [images.numpy() for images, _ in dataset.take(2)]

    first, again, other = batches(5), batches(5), batches(6)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_each_epoch_of_a_repeated_dataset_draws_new_crops(image_folder):
    # Cached and with a shuffle buffer of 1, every epoch has the same order, so
    # the same image sits at the same place in each batch.
    dataset, _ = pipeline.make_dataset(
        image_folder,
        image_size=16,
        batch_size=4,
        seed=0,
        repeat=True,
        cache=True,
        shuffle_buffer=1,
        validation_fraction=0.5,
    )
    epoch_size = len(list(datasets.load_examples(image_folder, validation_fraction=0.5)[0]))
    stream = dataset.unbatch().take(2 * epoch_size)
    images, labels = zip(*((image.numpy(), targets["main"].numpy()) for image, targets in stream))
    assert labels[:epoch_size] == labels[epoch_size:]
    assert not np.array_equal(images[0], images[epoch_size])


def test_evaluation_batches_are_the_eval_transform_of_the_examples():
    dataset, _ = pipeline.make_dataset("digits", "validation", image_size=24, batch_size=3, variant="bn")
    images, targets = first_batch(dataset)
    examples, labels = zip(*datasets.load_examples("digits", "validation")[0].take(3))
    expected = kg.preprocess_input(np.stack([augment.eval_transform(x, 24).numpy() for x in examples]), variant="bn")
    np.testing.assert_allclose(images, expected, atol=1e-5)
    np.testing.assert_array_equal(targets["main"], labels)


def test_training_batches_drop_the_remainder_and_evaluation_batches_keep_it():
    train, info = pipeline.make_dataset("digits", image_size=8, batch_size=500, seed=0)
    validation, _ = pipeline.make_dataset("digits", "validation", image_size=8, batch_size=500)
    assert [int(images.shape[0]) for images, _ in train] == [500] * (info.num_examples["train"] // 500)
    assert [int(images.shape[0]) for images, _ in validation] == [info.num_examples["validation"]]


@pytest.mark.parametrize("variant", ["paper", "bn"])
def test_tf_preprocess_matches_preprocess_input(variant):
    images = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    np.testing.assert_allclose(
        pipeline.preprocess(tf.constant(images), variant).numpy(),
        kg.preprocess_input(images.copy(), variant=variant),
        atol=1e-4,
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"image_size": 0}, "Received: image_size=0"),
        ({"batch_size": 2.5}, "Received: batch_size=2.5"),
        ({"variant": "v3"}, "Received: variant='v3'"),
        ({"seed": "1"}, "Received: seed='1'"),
        ({"crop_area_range": (0.0, 1.0)}, r"Received: crop_area_range=\(0.0, 1.0\)"),
    ],
)
def test_bad_arguments_raise_one_line_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pipeline.make_dataset("digits", **kwargs)
