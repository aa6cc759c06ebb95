"""Image sources: the bundled digits, a class-per-folder tree and tensorflow-datasets."""

import io
import logging
import os
import pathlib
import re
import zlib

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from keras_googlenet.data import datasets


def as_arrays(dataset):
    images, labels = zip(*((image.numpy(), int(label)) for image, label in dataset))
    return images, np.array(labels)


def test_digits_are_1797_uint8_rgb_images_in_10_classes():
    train, info = datasets.load_examples("digits", "train")
    validation, _ = datasets.load_examples("digits", "validation")
    assert info.num_classes == 10 and info.class_names == tuple("0123456789")
    assert info.num_examples == {"train": 1438, "validation": 359}
    images, labels = as_arrays(train)
    assert len(images) == 1438 and len(as_arrays(validation)[0]) == 359
    assert images[0].shape == (8, 8, 3) and images[0].dtype == np.uint8
    assert set(labels) == set(range(10))
    # Grey replicated to RGB, ink scaled from 0..16 to 0..255.
    stacked = np.stack(images)
    np.testing.assert_array_equal(stacked[..., 0], stacked[..., 2])
    assert stacked.max() == 255 and stacked.min() == 0


def test_digits_split_does_not_depend_on_the_shuffle_seed():
    first, _ = as_arrays(datasets.load_examples("digits", "validation", seed=1, shuffle=True)[0])
    second, _ = as_arrays(datasets.load_examples("digits", "validation", seed=2, shuffle=True)[0])
    assert [image.tobytes() for image in first] != [image.tobytes() for image in second]
    assert sorted(image.tobytes() for image in first) == sorted(image.tobytes() for image in second)


def test_folder_images_decode_to_rgb_with_their_class_labels(image_folder):
    train, info = datasets.load_examples(image_folder, "train", validation_fraction=0.5)
    validation, _ = datasets.load_examples(image_folder, "validation", validation_fraction=0.5)
    assert info.class_names == ("bright", "dark") and info.num_classes == 2
    (train_images, train_labels), (validation_images, validation_labels) = as_arrays(train), as_arrays(validation)
    images, labels = train_images + validation_images, np.concatenate([train_labels, validation_labels])
    # 6 good images per class: the text file, broken.jpg and the truncated JPEG are dropped.
    assert sorted(labels) == [0] * 6 + [1] * 6
    for image, label in zip(images, labels):
        assert image.shape == (24, 32, 3) and image.dtype == np.uint8
        # PNG, GIF and BMP are lossless; JPEG comes back within a grey level or two.
        np.testing.assert_allclose(image, (220, 30)[label], atol=2)


def test_folder_holdout_is_a_fixed_hash_of_each_path_whatever_the_seed(image_folder):
    counts = [
        datasets.load_examples(image_folder, "train", validation_fraction=0.5, seed=seed, shuffle=True)[1].num_examples
        for seed in (1, 2)
    ]
    assert counts[0] == counts[1]
    # 12 good images: the truncated JPEG is not counted.
    assert counts[0]["train"] + counts[0]["validation"] == 12
    assert 0 < counts[0]["validation"] < 12


def test_folder_skips_name_each_unreadable_image_then_count_them(image_folder, caplog):
    with caplog.at_level(logging.WARNING, logger="keras_googlenet.data.datasets"):
        datasets.load_examples(image_folder)
    warnings = [record.getMessage() for record in caplog.records if record.name == "keras_googlenet.data.datasets"]
    assert warnings == [
        f"Skipped {image_folder / 'bright' / 'truncated.jpg'}: the image file is not a whole image (cut short or damaged).",
        f"Skipped {image_folder / 'dark' / 'broken.jpg'}: the image file is not an image: its first bytes are those of "
        "no JPEG, PNG, GIF, BMP or WebP file.",
        f"Skipped 3 of 15 files in {image_folder}: 1 without an image extension "
        "('.jpg', '.jpeg', '.png', '.gif', '.bmp', '.webp'), 2 not readable.",
    ]


def noisy_image_pixels(seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)


def noisy_image_bytes(image_format, seed=0):
    buffer = io.BytesIO()
    Image.fromarray(noisy_image_pixels(seed)).save(buffer, image_format)
    return buffer.getvalue()


def test_images_cut_short_are_named_in_the_warning_and_never_reach_training(tmp_path, caplog):
    # What an interrupted copy or download leaves: the header is fine, the end is missing.
    (tmp_path / "cat").mkdir()
    for index, image_format in enumerate(("JPEG", "PNG", "GIF", "BMP")):
        whole = noisy_image_bytes(image_format, index)
        suffix = image_format.lower().replace("jpeg", "jpg")
        (tmp_path / "cat" / f"whole.{suffix}").write_bytes(whole)
        (tmp_path / "cat" / f"cut.{suffix}").write_bytes(whole[: len(whole) * 9 // 10])
    # Bytes after a complete JPEG (as some cameras write) do not make it unreadable.
    (tmp_path / "cat" / "trailer.jpg").write_bytes(noisy_image_bytes("JPEG", 9) + b"camera data")
    with caplog.at_level(logging.WARNING, logger="keras_googlenet.data.datasets"):
        dataset, info = datasets.load_examples(tmp_path, "train", validation_fraction=0.01)
    *named, warning = [record.getMessage() for record in caplog.records if record.name == "keras_googlenet.data.datasets"]
    assert "Skipped 4 of 9 files" in warning and "4 not readable." in warning
    assert [line.split(":")[0] for line in named] == [f"Skipped {tmp_path / 'cat' / name}" for name in ("cut.bmp", "cut.gif", "cut.jpg", "cut.png")]
    assert sum(info.num_examples.values()) == 5
    images, _ = as_arrays(dataset)
    assert len(images) == info.num_examples["train"]  # nothing left for ignore_errors to drop


def test_train_and_val_subfolders_are_used_as_splits(tmp_path):
    for split, count in (("train", 3), ("val", 1)):
        for name in ("cat", "dog"):
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (10, 10), (i, 0, 0)).save(tmp_path / split / name / f"{i}.png")
    train, info = datasets.load_examples(tmp_path, "train")
    validation, _ = datasets.load_examples(tmp_path, "validation")
    assert info.class_names == ("cat", "dog")
    assert info.num_examples == {"train": 6, "validation": 2}
    assert sorted(as_arrays(validation)[1]) == [0, 1] and len(as_arrays(train)[1]) == 6


@pytest.mark.parametrize("name", ["tf_flowers", "imagenet2012", "mnist"])
def test_tfds_datasets_give_uint8_rgb_images_and_int64_labels(name):
    """mnist stands for the grey datasets: its (28, 28, 1) images come out RGB."""
    with tfds.testing.mock_data(num_examples=3):
        dataset, info = datasets.load_examples(name, "validation")
        examples = list(dataset)
    assert info.num_classes == {"tf_flowers": 5, "imagenet2012": 1000, "mnist": 10}[name]
    assert len(info.class_names) == info.num_classes
    assert len(examples) == 3
    for image, label in examples:
        assert image.dtype == "uint8" and image.shape.rank == 3 and image.shape[-1] == 3
        assert label.dtype == "int64" and 0 <= int(label) < info.num_classes


def test_missing_folder_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Received: source='.*nowhere'"):
        datasets.load_examples(str(tmp_path / "nowhere"))


def test_empty_folder_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="no class subfolders"):
        datasets.load_examples(tmp_path)


def test_class_folder_without_images_is_named(tmp_path):
    (tmp_path / "cat").mkdir()
    (tmp_path / "dog").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "cat" / "a.png")
    (tmp_path / "dog" / "readme.txt").write_text("no dogs yet")
    with pytest.raises(ValueError, match="The class folder 'dog' has no readable images"):
        datasets.load_examples(tmp_path)


def test_unknown_dataset_name_lists_what_source_may_be():
    with pytest.raises(ValueError, match="tensorflow-datasets name .* Received: source='no_such_dataset'") as error:
        datasets.load_examples("no_such_dataset")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("name", ["imagenette/999px", "tf_flowers:9.9.9"])
def test_bad_tfds_config_version_or_syntax_is_one_line(name):
    with pytest.raises(ValueError, match=f"Received: source='{re.escape(name)}'") as error:
        datasets.load_examples(name)
    assert "\n" not in str(error.value)


def test_a_source_that_is_no_tfds_name_is_a_missing_folder_not_a_download():
    # The rule of `sources.data_is_path`, shared with the CLI's early checks.
    with pytest.raises(FileNotFoundError, match=r"^The image folder does not exist. Received: source='bad name!'$"):
        datasets.load_examples("bad name!")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"split": "test"}, "Received: split='test'"),
        ({"validation_fraction": 1.0}, "Received: validation_fraction=1.0"),
        ({"source": 3}, "Received: source=3"),
    ],
)
def test_bad_arguments_raise_one_line_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        datasets.load_examples(**{"source": "digits", **kwargs})


def test_missing_manual_dir_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="Received: manual_dir="):
        datasets.load_examples("imagenet2012", manual_dir=str(tmp_path / "missing"))


def test_a_tfds_dataset_without_validation_holds_out_the_end_of_train():
    # tf_flowers' only split: 3670 images, so 2936 train and 734 validation.
    template = tfds.core.ShardedFileTemplate(
        data_dir="/unused",
        template="{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}",
        dataset_name="tf_flowers",
        filetype_suffix="tfrecord",
    )
    train = tfds.core.SplitInfo(name="train", shard_lengths=[3670], num_bytes=0, filename_template=template)
    splits = tfds.core.SplitDict([train])
    specs = dict(datasets._split_specs(splits, validation_fraction=0.2))
    assert specs == {"train": "train[:80%]", "validation": "train[80%:]"}
    assert {key: splits[spec].num_examples for key, spec in specs.items()} == {"train": 2936, "validation": 734}


def test_a_training_folder_names_links_and_loops_counts_nested_folders_and_reads_webp(tmp_path, caplog):
    for name in ("cat", "dog"):
        (tmp_path / name / "indoor").mkdir(parents=True)
        Image.fromarray(noisy_image_pixels(1)).save(tmp_path / name / "a.webp")  # decoded by TensorFlow as by Pillow
        Image.fromarray(noisy_image_pixels(2)).save(tmp_path / name / "indoor" / "b.png")  # counted for the class
        Image.fromarray(noisy_image_pixels(3)).save(tmp_path / name / "scan.tif")  # read nowhere: not an image type
    (tmp_path / "cat" / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    (tmp_path / "cat" / "loop.jpg").symlink_to(tmp_path / "cat" / "loop.jpg")
    with caplog.at_level(logging.WARNING, logger="keras_googlenet.data.datasets"):
        dataset, info = datasets.load_examples(tmp_path, "train", validation_fraction=0.01)
    assert [record.getMessage() for record in caplog.records if record.name == "keras_googlenet.data.datasets"] == [
        f"Skipped {tmp_path / 'cat' / 'gone.jpg'}: the image file is a broken link (to '{tmp_path / 'deleted.jpg'}').",
        f"Skipped {tmp_path / 'cat' / 'loop.jpg'}: the image file is a symbolic link loop.",
        f"Counted the images in 2 folder(s) inside the class folders of {tmp_path} as their class's (first: "
        f"{os.path.join('cat', 'indoor')}), as Keras' image_dataset_from_directory does.",
        f"Skipped 4 of 8 files in {tmp_path}: 2 without an image extension ('.jpg', '.jpeg', '.png', '.gif', '.bmp', "
        "'.webp'), 2 not readable.",
    ]
    assert sum(info.num_examples.values()) == 4
    assert len(as_arrays(dataset)[0]) == info.num_examples["train"]


def test_after_twenty_skipped_training_files_the_others_are_listed_in_a_file(tmp_path, caplog):
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        Image.fromarray(noisy_image_pixels(4)).save(tmp_path / name / "good.png")
    for index in range(25):
        (tmp_path / "cat" / f"bad_{index:02d}.jpg").write_text("not an image")
    with caplog.at_level(logging.WARNING, logger="keras_googlenet.data.datasets"):
        datasets.load_examples(tmp_path, "train", validation_fraction=0.01)
    *named, summary = [record.getMessage() for record in caplog.records if record.name == "keras_googlenet.data.datasets"]
    assert len(named) == 20 and named[0].startswith(f"Skipped {tmp_path / 'cat' / 'bad_00.jpg'}: ")
    listed = summary.rsplit(" ", 1)[1].rstrip(").")
    assert summary.endswith(f"25 not readable (the first 20 named above, all of them in {listed}).")
    assert len(pathlib.Path(listed).read_text().splitlines()) == 25


def bomb_png(width=40000, height=40000):
    """A PNG that declares width x height grey pixels in a few kilobytes: a decompression bomb's header and a real first row."""
    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])  # 8-bit grey
    rows = zlib.compress(b"\0" * (width + 1))  # only the first row: the listing reads the header
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def test_a_decompression_bomb_in_a_training_folder_is_named_with_its_size_and_never_decoded(tmp_path, caplog):
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        Image.fromarray(noisy_image_pixels(5)).save(tmp_path / name / "good.png")
    (tmp_path / "cat" / "bomb.png").write_bytes(bomb_png())
    with caplog.at_level(logging.WARNING, logger="keras_googlenet.data.datasets"):
        dataset, info = datasets.load_examples(tmp_path, "train", validation_fraction=0.01)
    named = [record.getMessage() for record in caplog.records if record.name == "keras_googlenet.data.datasets"][0]
    limit = 2 * Image.MAX_IMAGE_PIXELS
    assert named == (
        f"Skipped {tmp_path / 'cat' / 'bomb.png'}: the image file is too large: it declares 1,600,000,000 pixels, "
        f"over the {limit:,} of Pillow's guard against decompression bombs."
    )
    assert info.skipped == 1 and len(as_arrays(dataset)[0]) == info.num_examples["train"] == 2


@pytest.mark.parametrize("save", [
    {"format": "PNG"}, {"format": "GIF"}, {"format": "BMP"}, {"format": "JPEG"}, {"format": "JPEG", "progressive": True},
    {"format": "JPEG", "exif": b"Exif\0\0" + bytes(20000)},  # the frame header 20 kB in, after the EXIF segment
    {"format": "WEBP", "lossless": True}, {"format": "WEBP", "quality": 80}, {"format": "WEBP", "exif": b"Exif\0\0"},
])
def test_the_pixels_a_header_declares_are_those_pillow_reads(save):
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((123, 4567 % 1000, 3), np.uint8)).save(buffer, **save)
    with Image.open(io.BytesIO(buffer.getvalue())) as image:
        expected = image.width * image.height
    data = buffer.getvalue()
    declared = datasets._jpeg_pixels(io.BytesIO(data)) if save["format"] == "JPEG" else datasets._declared_pixels(data[:32])
    assert declared == expected == 123 * 567


def test_a_jpeg_bomb_in_a_training_folder_is_named_too(tmp_path, caplog):
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        Image.fromarray(noisy_image_pixels(6)).save(tmp_path / name / "good.png")
    buffer = io.BytesIO()
    Image.fromarray(noisy_image_pixels(7)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    frame = data.index(b"\xff\xc0")  # baseline frame: length (2), precision (1), height (2), width (2)
    data[frame + 5:frame + 9] = (40000).to_bytes(2, "big") * 2
    (tmp_path / "cat" / "bomb.jpg").write_bytes(bytes(data))
    with pytest.raises(Image.DecompressionBombError):  # Pillow reads the same header
        Image.open(tmp_path / "cat" / "bomb.jpg")
    with caplog.at_level(logging.WARNING, logger="keras_googlenet.data.datasets"):
        _, info = datasets.load_examples(tmp_path, "train", validation_fraction=0.01)
    named = [record.getMessage() for record in caplog.records if record.name == "keras_googlenet.data.datasets"][0]
    assert named.startswith(f"Skipped {tmp_path / 'cat' / 'bomb.jpg'}: the image file is too large: it declares 1,600,000,000 pixels")
    assert info.skipped == 1
