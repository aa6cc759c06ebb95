"""The paper's training augmentation (Section 6) and test-time crops (Section 7)."""

import numpy as np
import pytest
import tensorflow as tf

from keras_googlenet.data import augment


def coordinate_image(height, width):
    """Red = row, green = column / 2, blue = 0: every pixel says where it is."""
    rows, columns = np.mgrid[0:height, 0:width].astype("float32")
    return np.stack([rows, columns / 2, np.zeros_like(rows)], axis=-1)


def test_crop_boxes_cover_8_to_100_percent_of_the_area_with_aspect_3_4_to_4_3():
    height, width = 300, 300
    boxes = np.array([augment.sample_crop_box((height, width, 3), seed=[7, i]) for i in range(200)])
    top, left, box_height, box_width = boxes.T
    area = box_height * box_width / (height * width)
    aspect = box_width / box_height
    assert area.min() >= 0.08 and area.max() <= 1.0
    assert aspect.min() >= 3 / 4 and aspect.max() <= 4 / 3
    # The whole range is used, not a corner of it.
    assert area.min() < 0.15 and area.max() > 0.8
    assert aspect.min() < 0.8 and aspect.max() > 1.25
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + box_height <= height).all() and (left + box_width <= width).all()


def test_train_transform_is_float_0_to_255_of_the_asked_size():
    image = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    out = augment.train_transform(image, 32, seed=[1, 2])
    assert out.shape == (32, 32, 3) and out.dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(out)) and float(tf.reduce_max(out)) <= 255.0


def test_train_transform_repeats_for_a_seed_and_changes_with_it():
    image = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    first = augment.train_transform(image, 32, seed=[1, 2]).numpy()
    np.testing.assert_array_equal(first, augment.train_transform(image, 32, seed=[1, 2]).numpy())
    assert np.abs(first - augment.train_transform(image, 32, seed=[1, 3]).numpy()).mean() > 1.0


def test_train_transform_distorts_colour():
    """A grey image stays grey only without the photometric distortion."""
    grey = np.full((40, 40, 3), 128, np.uint8)
    means = [float(tf.reduce_mean(augment.train_transform(grey, 16, seed=[0, i]))) for i in range(8)]
    assert max(means) - min(means) > 10.0


def test_eval_transform_takes_the_centre_of_the_resized_image():
    # 220 x 330 at size 96: the shorter side becomes round(96 * 256 / 224) = 110,
    # a factor of 1/2, so 110 x 165, and the 96 crop starts at (7, 34) there,
    # which is (14.5, 68.5) in the original pixel centres.
    out = augment.eval_transform(coordinate_image(220, 330), 96).numpy()
    assert out.shape == (96, 96, 3)
    np.testing.assert_allclose(out[0, 0, :2], [14.5, 68.5 / 2], atol=0.01)
    np.testing.assert_allclose(out[-1, -1, :2], [14.5 + 2 * 95, (68.5 + 2 * 95) / 2], atol=0.01)


def test_eval_transform_at_224_crops_224_of_256_without_resizing_a_256_image():
    image = coordinate_image(256, 320)
    out = augment.eval_transform(image, 224).numpy()
    np.testing.assert_allclose(out, image[16:240, 48:272], atol=1e-3)


def test_eval_transform_accepts_a_batch_and_uint8():
    batch = np.zeros((2, 50, 40, 3), np.uint8)
    out = augment.eval_transform(batch, 24)
    assert out.shape == (2, 24, 24, 3) and out.dtype == tf.float32


def test_ten_crop_is_four_corners_and_centre_then_their_mirrors():
    image = coordinate_image(256, 320)
    crops = augment.multi_crop(image, 224, "10crop").numpy()
    assert crops.shape == (10, 224, 224, 3)
    np.testing.assert_allclose(crops[0], image[:224, :224], atol=1e-3)
    np.testing.assert_allclose(crops[3], image[-224:, -224:], atol=1e-3)
    np.testing.assert_allclose(crops[4], image[16:240, 48:272], atol=1e-3)
    np.testing.assert_array_equal(crops[5:], crops[:5, :, ::-1])


@pytest.mark.parametrize("shape", [(60, 80, 3), (80, 60, 3)])
def test_144_crop_gives_4_scales_3_squares_6_crops_and_mirrors(shape):
    image = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    crops = augment.multi_crop(image, 32, "144crop").numpy()
    assert crops.shape == (4 * 3 * 6 * 2, 32, 32, 3)
    views = crops.reshape(4, 3, 2, 6, 32, 32, 3)
    np.testing.assert_array_equal(views[:, :, 1], views[:, :, 0, :, :, ::-1])


def test_144_crop_squares_run_along_the_longer_side():
    # At size 224 the first scale is 256: a 256 x 512 image gives the squares
    # [0:256], [128:384] and [256:512], whose top-left crops start there.
    image = coordinate_image(256, 512)
    views = augment.multi_crop(image, 224, "144crop").numpy().reshape(4, 3, 2, 6, 224, 224, 3)
    for square, left in enumerate((0, 128, 256)):
        np.testing.assert_allclose(views[0, square, 0, 0], image[:224, left : left + 224], atol=1e-3)
    whole_square = tf.image.resize(image[:, 128:384], (224, 224), antialias=True).numpy()
    np.testing.assert_allclose(views[0, 1, 0, 5], whole_square, atol=1e-3)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: augment.multi_crop(np.zeros((8, 8, 3)), 4, "12crop"), "Received: scheme='12crop'"),
        (lambda: augment.eval_transform(np.zeros((8, 8, 3)), 0), "Received: size=0"),
        (lambda: augment.train_transform(np.zeros((8, 8, 4)), 4), "Received: image.shape=(8, 8, 4)"),
        (lambda: augment.train_transform(np.zeros((2, 8, 8, 3)), 4), "Received: image.shape=(2, 8, 8, 3)"),
    ],
)
def test_bad_arguments_raise_one_line_naming_them(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        call()
    assert "\n" not in str(error.value)
