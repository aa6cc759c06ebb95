"""The training stream: each pass a permutation of the split set by (seed, pass), which a resumed run enters at any position."""

import collections

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_googlenet.data import datasets, pipeline, stream


def _take(dataset, count):
    return [tuple(np.asarray(value) for value in element) for element in dataset.take(count).as_numpy_iterator()]


def _key(image, label):
    return image.tobytes(), int(label)


def test_each_pass_of_the_digits_is_the_split_once_in_a_new_order():
    split = collections.Counter(_key(*example) for example in datasets.load_examples("digits")[0].as_numpy_iterator())
    count = sum(split.values())
    examples = _take(stream.training_stream("digits", seed=3)[0], 2 * count)
    assert [position for position, _, _ in examples] == list(range(2 * count))
    passes = [[_key(image, label) for _, image, label in examples[k * count:(k + 1) * count]] for k in range(2)]
    for one_pass in passes:
        assert collections.Counter(one_pass) == split  # every example once, none twice
    assert passes[0] != passes[1]


@pytest.mark.parametrize("start", [5, 1437, 1438, 3000])  # the digits' train split has 1438 examples
def test_a_stream_entered_at_a_position_is_the_stream_from_zero_after_it(start):
    whole = _take(stream.training_stream("digits", seed=7)[0], start + 40)
    entered = _take(stream.training_stream("digits", seed=7, start=start)[0], 40)
    for (position, image, label), (old_position, old_image, old_label) in zip(entered, whole[start:]):
        assert position == old_position
        np.testing.assert_array_equal(image, old_image)
        assert label == old_label


def test_another_seed_orders_the_passes_differently():
    first, second = (_take(stream.training_stream("digits", seed=seed)[0], 50) for seed in (0, 1))
    assert [label for _, _, label in first] != [label for _, _, label in second]


def test_a_folder_stream_reads_each_file_once_per_pass_and_drops_the_damaged_one(image_folder):
    reader, info = datasets.open_source(image_folder, validation_fraction=0.5)
    examples = _take(stream.training_stream(image_folder, seed=0, start=reader.count, validation_fraction=0.5)[0], reader.count)
    assert [position for position, _, _ in examples] == list(range(reader.count, 2 * reader.count))
    # The flat grey images are 220 (bright) or 30 (dark): each pass has every file's label once.
    labels = [int(label) for _, _, label in examples]
    assert collections.Counter(labels) == collections.Counter(int(label) for label in reader.items[1])
    for _, image, label in examples:
        assert abs(float(image.mean()) - (220, 30)[label]) < 3


def test_a_tfds_stream_is_each_record_once_per_pass_and_re_entered_alike():
    keras.utils.set_random_seed(0)  # as `train` does: a global seed once broke a seed tensor here
    with tfds.testing.mock_data(num_examples=12):
        whole = _take(stream.training_stream("tf_flowers", seed=2, shuffle_buffer=4)[0], 30)
        entered = _take(stream.training_stream("tf_flowers", seed=2, start=17, shuffle_buffer=4)[0], 13)
    count = 12  # mock_data has no split info: tf_flowers' train[:80%] is all 12 records
    first_pass = collections.Counter(_key(image, label) for _, image, label in whole[:count])
    assert len(first_pass) == count and set(first_pass.values()) == {1}
    for (position, image, label), (old_position, old_image, old_label) in zip(entered, whole[17:]):
        assert position == old_position
        np.testing.assert_array_equal(image, old_image)


def test_resumed_batches_are_the_batches_an_uninterrupted_run_has_next():
    options = dict(image_size=32, batch_size=8, seed=0, repeat=True)
    whole = list(pipeline.make_dataset("digits", **options)[0].take(6))
    resumed = list(pipeline.make_dataset("digits", start=4 * 8, **options)[0].take(2))
    for (images, targets), (old_images, old_targets) in zip(resumed, whole[4:]):
        np.testing.assert_array_equal(images.numpy(), old_images.numpy())  # the crops too: seeded by the position
        np.testing.assert_array_equal(targets["main"].numpy(), old_targets["main"].numpy())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"start": -1}, "`start` must be an int >= 0. Received: start=-1"),
        ({"start": True}, "`start` must be an int >= 0. Received: start=True"),
    ],
)
def test_a_bad_start_is_one_line_naming_it(kwargs, message):
    with pytest.raises(ValueError) as raised:
        stream.training_stream("digits", **kwargs)
    assert str(raised.value) == message


def test_start_outside_the_training_stream_is_refused():
    with pytest.raises(ValueError, match=r"`start` needs the endless training stream.*Received: start=8"):
        pipeline.make_dataset("digits", "validation", start=8)
