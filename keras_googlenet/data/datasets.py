"""Labelled image sources: the bundled digits, an image folder, or tensorflow-datasets.

`load_examples` turns any of them into a `tf.data.Dataset` of
``(uint8 image (height, width, 3), int64 label)`` and a `DatasetInfo`.
Resizing, augmentation and batching belong to `keras_googlenet.data.pipeline`.
"""

import contextlib
import dataclasses
import functools
import hashlib
import logging
import os
import tempfile

import numpy as np
import tensorflow as tf
from PIL import Image

from keras_googlenet.defaults import SPLITS
from keras_googlenet.data import skipped
from keras_googlenet.data.image_files import IMAGE_EXTENSIONS, has_image_extension, not_an_image_file
from keras_googlenet.data.sources import DIGITS, VALIDATION_FOLDERS, VALIDATION_FRACTION, data_is_path, hash_fraction

logger = logging.getLogger(__name__)

# tf.io.decode_image reads these formats; each is recognised by its first bytes.
IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"RIFF")
# What each format's last bytes are, by its first three: JPEG's EOI marker
# (ITU-T T.81, B.1.1.3), PNG's IEND chunk with its CRC (RFC 2083, 4.1.4),
# GIF's trailer (GIF89a spec, 27). BMP and WebP (a RIFF file) have none:
# their headers hold their sizes.
IMAGE_END_MARKERS = {b"\xff\xd8\xff": b"\xff\xd9", b"\x89PN": b"IEND\xaeB`\x82", b"GIF": b";"}
# The train/validation split of the digits is fixed, never the caller's seed:
# training and evaluation calls with different seeds must get disjoint splits.
DIGITS_SPLIT_SEED = 2014
# A tfds pass's windows are permuted with the seed (seed, pass * PASS_SEED_STRIDE + window).
PASS_SEED_STRIDE = 1 << 20


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a source holds.

    Attributes:
        name: the source's name: ``"digits"``, the folder's name or the tfds name.
        num_classes: the number of labels.
        class_names: the name of each label, in label order.
        num_examples: a dict from split name to its number of examples, or
            ``None`` when tfds does not know them (before preparation).
        skipped: the image files of a folder that were skipped as
            unreadable, each named in a warning (in any split).
    """

    name: str
    num_classes: int
    class_names: tuple
    num_examples: dict | None
    skipped: int = 0


def load_examples(
    source, split="train", data_dir=None, manual_dir=None, validation_fraction=VALIDATION_FRACTION, seed=None, shuffle=False
):
    """Loads a labelled image source as a dataset of (image, label) pairs.

    ``source`` is one of:

    - ``"digits"``: the offline default, scikit-learn's bundled 8x8 handwritten
      digits (1797 real images, 10 classes), grey replicated to RGB and scaled
      to uint8; the transforms upscale them.
    - A folder with one subfolder of images per class. If it holds ``train/``
      and ``validation/`` (or ``val/``) folders, those are the splits;
      otherwise a fixed hash of each file's path holds out
      ``validation_fraction`` of the images. Files that are not JPEG, PNG,
      GIF or BMP are skipped and counted in a logged warning.
    - A tensorflow-datasets name (``"tf_flowers"``, ``"imagenette/320px"``,
      ``"imagenet2012"``, ...), downloaded and prepared in ``data_dir`` on
      first use. A dataset without a validation split (tf_flowers) gets one
      from the last ``validation_fraction`` of ``train``.

    Args:
        source: ``"digits"``, a folder path or a tfds name.
        split: ``"train"`` or ``"validation"``; any split name for tfds.
        data_dir: where tfds keeps its datasets (tfds' default when ``None``).
        manual_dir: the folder with hand-downloaded archives, for datasets
            such as ``imagenet2012`` that tfds cannot download.
        validation_fraction: the fraction held out for validation when the
            source has no validation split, in (0, 1).
        seed: the shuffle seed, used only with ``shuffle=True``. The split
            never depends on it.
        shuffle: whether to shuffle the examples (file order for folders and
            tfds), differently at each iteration; deterministic when seeded.

    Returns:
        ``(dataset, info)``: a `tf.data.Dataset` of ``(image, label)`` with
        ``image`` uint8 ``(height, width, 3)`` and ``label`` int64, and a
        `DatasetInfo`.
    """
    split_reader, info = open_source(source, split, data_dir, manual_dir, validation_fraction)
    return split_reader.one_pass(seed, shuffle), info


def open_source(source, split="train", data_dir=None, manual_dir=None, validation_fraction=VALIDATION_FRACTION):
    """``(reader, info)`` of one split of ``source`` (see `load_examples`): a `ListedSplit` or a `TfdsSplit`.

    A reader gives the split as one pass (`load_examples`), or pass by pass
    in an order set by a seed and the pass's number alone, still encoded,
    for `stream.training_stream` to skip into.
    """
    if not isinstance(validation_fraction, (int, float)) or not 0 < validation_fraction < 1:
        raise ValueError(
            f"`validation_fraction` must be a number in (0, 1). Received: validation_fraction={validation_fraction!r}"
        )
    if isinstance(source, str) and source == DIGITS:  # before folders: "./digits" names a folder called digits
        _check_split(split)
        return _load_digits(split, validation_fraction)
    if not isinstance(source, (str, os.PathLike)) or not os.fspath(source):
        raise ValueError(f"`source` must be 'digits', a folder path or a tfds name. Received: source={source!r}")
    if data_is_path(source):
        folder = os.path.expanduser(os.fspath(source))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"The image folder does not exist. Received: source={source!r}")
        _check_split(split)
        return _load_folder(folder, split, validation_fraction)
    return _load_tfds(source, split, data_dir, manual_dir, validation_fraction)


class ListedSplit:
    """A split held as arrays: the digits' pixels, or an image folder's paths, with their labels.

    ``decode`` makes an item an ``(image, label)`` pair; an item it fails on
    (a file damaged in its middle) is dropped when ``drop_errors``.
    """

    def __init__(self, items, decode=None, drop_errors=False):
        self.items, self.count = items, len(items[-1])
        self._decode, self._drop_errors = decode, drop_errors

    def one_pass(self, seed, shuffle):
        dataset = tf.data.Dataset.from_tensor_slices(self.items)
        if shuffle:
            dataset = dataset.shuffle(self.count, seed=seed, reshuffle_each_iteration=True)
        return self.decoded(dataset.map(self.decode, num_parallel_calls=tf.data.AUTOTUNE))

    def pass_in_order(self, seed, pass_index, shuffle_buffer=None):
        """Pass ``pass_index`` (a tensor) of the items, in a permutation set by ``(seed, pass_index)`` alone."""
        items, last = tuple(tf.constant(item) for item in self.items), self.count - 1

        def item(index):
            # A stateless permutation of 0..count-1: position k of the pass
            # needs no other position, so a resume skips by counting.
            index = tf.random.experimental.index_shuffle(index, tf.stack([tf.constant(seed, tf.int64), pass_index]), last)
            return tuple(tf.gather(array, index) for array in items)

        return tf.data.Dataset.range(self.count).map(item)

    def decode(self, *item):
        return self._decode(*item) if self._decode else item

    def decoded(self, dataset):
        """``dataset`` after `decode`, less the items it failed on."""
        # The listing dropped and named the truncated files; a file damaged in
        # the middle still fails here: dropped, with TensorFlow's log only.
        return dataset.ignore_errors(log_warning=True) if self._drop_errors else dataset


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")


def _load_digits(split, validation_fraction):
    from sklearn.datasets import load_digits

    digits = load_digits()
    # Each pixel counts the ink in a 4x4 block of a 32x32 bitmap, 0..16
    # (scikit-learn's description of the UCI set); 255 / 16 makes grey levels.
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)
    images = np.repeat(images[..., None], 3, axis=-1)
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(labels))
    num_validation = round(len(labels) * validation_fraction)
    indices = {"train": order[num_validation:], "validation": order[:num_validation]}
    info = DatasetInfo(
        name=DIGITS,
        num_classes=10,
        class_names=tuple(str(name) for name in digits.target_names),
        num_examples={name: len(index) for name, index in indices.items()},
    )
    return ListedSplit((images[indices[split]], labels[indices[split]])), info


def _load_folder(root, split, validation_fraction):
    if not os.path.isdir(root):
        raise FileNotFoundError(f"The image folder does not exist. Received: source={root!r}")
    validation_root = next(
        (os.path.join(root, name) for name in VALIDATION_FOLDERS if os.path.isdir(os.path.join(root, name))), None
    )
    if os.path.isdir(os.path.join(root, "train")) and validation_root:
        class_names = _class_folders(os.path.join(root, "train"))
        (train, skipped_train), (validation, skipped_validation) = (
            _list_images(os.path.join(root, "train"), class_names),
            _list_images(validation_root, class_names, known_classes_only=True),
        )
        files, skipped_files = {"train": train, "validation": validation}, skipped_train + skipped_validation
    else:
        class_names = _class_folders(root)
        every_file, skipped_files = _list_images(root, class_names)
        held_out = [hash_fraction(os.path.relpath(path, root)) < validation_fraction for path, _ in every_file]
        files = {
            "train": [item for item, out in zip(every_file, held_out) if not out],
            "validation": [item for item, out in zip(every_file, held_out) if out],
        }
    if not files[split]:
        raise ValueError(f"The {split!r} split of the image folder is empty. Received: source={root!r}")
    paths, labels = zip(*files[split])
    info = DatasetInfo(
        name=os.path.basename(os.path.normpath(root)),
        num_classes=len(class_names),
        class_names=class_names,
        num_examples={name: len(items) for name, items in files.items()},
        skipped=skipped_files,
    )
    return ListedSplit((np.array(paths), np.array(labels, np.int64)), _decode_file, drop_errors=True), info


def _class_folders(root):
    names = tuple(sorted(entry.name for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith(".")))
    if not names:
        raise ValueError(f"The image folder has no class subfolders. Received: source={root!r}")
    return names


_listings = None  # {(root, classes, known only): listing} inside `listed_once`


@contextlib.contextmanager
def listed_once():
    """Inside this block, each image folder is listed once: a training run reads its listing for the training
    stream (twice when it resumes in an epoch), the validation and the final evaluation.
    """
    global _listings
    outer, _listings = _listings, {} if _listings is None else _listings
    try:
        yield
    finally:
        _listings = outer


def _list_images(root, class_names, known_classes_only=False):
    key = (os.path.abspath(root), class_names, known_classes_only)
    if _listings is not None and key in _listings:
        return _listings[key]
    listing = _list_images_once(root, class_names, known_classes_only)
    if _listings is not None:
        _listings[key] = listing
    return listing


def _list_images_once(root, class_names, known_classes_only=False):
    """``(path, label)`` of every readable-looking image, sorted, and how many it dropped, naming each.

    The images in a class folder's own folders count for the class, as in
    Keras' `image_dataset_from_directory`; one warning says so. A file with
    an image extension that is not one (a broken link, a link loop, a
    truncated or foreign file) is named with its reason, the first
    `skipped.SHOWN` of them in a line each and all of them in a file; the
    others (``notes.txt``) are counted.
    """
    if known_classes_only:
        unknown = sorted(set(_class_folders(root)) - set(class_names))
        if unknown:
            raise ValueError(
                f"The validation folder has classes that train has not: {unknown}. Received: source={root!r}"
            )
    items, not_images, nested = [], 0, []
    dropped = skipped.SkippedFiles(logger.warning, _skipped_list_path(root))
    for label, name in enumerate(class_names):
        class_root = os.path.join(root, name)
        if known_classes_only and not os.path.isdir(class_root):
            continue
        count = 0
        for folder, subfolders, filenames in sorted(os.walk(class_root)):
            subfolders.sort()
            nested += [os.path.relpath(os.path.join(folder, sub), root) for sub in subfolders]
            for filename in sorted(filenames):
                path = os.path.join(folder, filename)
                if not has_image_extension(filename):
                    not_images += 1
                    continue
                reason = _why_unreadable(path)
                if reason:
                    dropped.add(f"Skipped {path}: the image file {reason}.")
                else:
                    items.append((path, label))
                    count += 1
        if not count:
            raise ValueError(f"The class folder {name!r} has no readable images. Received: source={root!r}")
    _say_what_was_left(root, len(items), not_images, dropped, nested)
    return items, len(dropped.lines)


def _say_what_was_left(root, kept, not_images, dropped, nested):
    if nested:
        logger.warning(
            "Counted the images in %d folder(s) inside the class folders of %s as their class's (first: %s), "
            "as Keras' image_dataset_from_directory does.", len(nested), root, nested[0],
        )
    if not (not_images or dropped.lines):
        return
    listed = dropped.close()
    logger.warning(
        "Skipped %d of %d files in %s: %d without an image extension %s, %d not readable%s.",
        not_images + len(dropped.lines), kept + not_images + len(dropped.lines), root, not_images,
        IMAGE_EXTENSIONS, len(dropped.lines),
        f" (the first {skipped.SHOWN} named above, all of them in {listed})" if listed else "",
    )


def _skipped_list_path(root):
    """The list of a folder's skipped files: one per folder, so that each listing of it in a run writes the same file."""
    digest = hashlib.sha1(os.path.abspath(root).encode("utf-8")).hexdigest()[:12]
    return os.path.join(tempfile.gettempdir(), f"keras_googlenet_skipped_{digest}.txt")


def _why_unreadable(path):
    """None for a file that `_decode_file` will decode, judged from its ends; else why not, to complete "the image file ...".

    Checked here, at listing time, so that a bad file is named: once in
    tf.data, `ignore_errors` drops it with only TensorFlow's C++ log, which
    gives no file name. Decoding every file here would take hours on
    ImageNet, so only the ends are read: the format's signature, the size
    that its header declares (a decompression bomb's 40000x40000 in 1.5 MB;
    a JPEG's is found by hopping over the segments before its frame header,
    a few reads of 4 bytes: 11 to 25 us per cached photo, 17 s more per
    listing of ImageNet), and the end marker (an interrupted copy or
    download loses the end). Measured on 10,000 cached JPEGs: 41 ms per
    1,000 files, against 27 ms for the signature alone. A file without that
    marker may still be whole, with bytes after the image (some cameras
    append data): only those few are decoded, with TensorFlow's own
    decoder. Damage in the middle of a file that ends well is left to
    `ignore_errors`.
    """
    try:
        with open(path, "rb") as file:
            head = file.read(32)
            pixels = _jpeg_pixels(file) if head.startswith(b"\xff\xd8\xff") else _declared_pixels(head)
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - 16))
            tail = file.read()
    except OSError as error:  # a broken link, a link loop, no permission
        return not_an_image_file(path) or f"could not be read ({error.strerror})"
    if not head.startswith(IMAGE_SIGNATURES) or (head.startswith(b"RIFF") and head[8:12] != b"WEBP"):
        return "is not an image: its first bytes are those of no JPEG, PNG, GIF, BMP or WebP file"
    limit = 2 * Image.MAX_IMAGE_PIXELS  # where Pillow's DecompressionBombError starts, as `predict` meets it
    if pixels > limit:
        return f"is too large: it declares {pixels:,} pixels, over the {limit:,} of Pillow's guard against decompression bombs"
    if _ends_whole(head, size, tail) or _decodes(path):
        return None
    return "is not a whole image (cut short or damaged)"


# JPEG's start-of-frame markers (ITU-T T.81, B.1.1.3): C0-CF but DHT (C4), JPG (C8) and DAC (CC).
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_pixels(file, most_segments=64):
    """Width times height from a JPEG's frame header, hopping over the segments before it; 0 when none is found."""
    file.seek(2)  # after SOI
    for _ in range(most_segments):
        segment = file.read(4)
        if len(segment) < 4 or segment[0] != 0xFF or segment[1] == 0xDA:  # damaged, or the scan began: no frame
            return 0
        if segment[1] in _JPEG_FRAMES:  # precision, then big-endian height and width
            frame = file.read(5)
            return int.from_bytes(frame[1:3], "big") * int.from_bytes(frame[3:5], "big") if len(frame) == 5 else 0
        file.seek(int.from_bytes(segment[2:4], "big") - 2, os.SEEK_CUR)
    return 0


def _declared_pixels(head):
    """Width times height from the first 32 bytes of a PNG, GIF, BMP or WebP file; 0 for a header not understood."""
    if head.startswith(b"\x89PNG"):  # IHDR: big-endian width and height at bytes 16-23
        return int.from_bytes(head[16:20], "big") * int.from_bytes(head[20:24], "big")
    if head.startswith(b"GIF"):  # logical screen: little-endian 16-bit width and height at bytes 6-9
        return int.from_bytes(head[6:8], "little") * int.from_bytes(head[8:10], "little")
    if head.startswith(b"BM") and int.from_bytes(head[14:18], "little") >= 40:  # BITMAPINFOHEADER and later
        return abs(int.from_bytes(head[18:22], "little", signed=True) * int.from_bytes(head[22:26], "little", signed=True))
    chunk = head[12:16]
    if chunk == b"VP8X":  # extended WebP: 24-bit canvas width and height, minus one, at bytes 24-29
        return (int.from_bytes(head[24:27], "little") + 1) * (int.from_bytes(head[27:30], "little") + 1)
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":  # lossy WebP: 14-bit sizes after the start code
        return (int.from_bytes(head[26:28], "little") & 0x3FFF) * (int.from_bytes(head[28:30], "little") & 0x3FFF)
    if chunk == b"VP8L" and head[20] == 0x2F:  # lossless WebP: 14-bit sizes, minus one, packed after the signature
        bits = int.from_bytes(head[21:25], "little")
        return ((bits & 0x3FFF) + 1) * (((bits >> 14) & 0x3FFF) + 1)
    return 0


def _ends_whole(head, size, tail):
    if head.startswith(b"BM"):  # the header stores the file size (little-endian, bytes 2-5)
        return int.from_bytes(head[2:6], "little") == size
    if head.startswith(b"RIFF"):  # the size of what follows the first 8 bytes (little-endian, bytes 4-7)
        return int.from_bytes(head[4:8], "little") + 8 <= size
    return tail.rstrip(b"\0").endswith(IMAGE_END_MARKERS[head[:3]])


def _decodes(path):
    try:
        _decode_file(tf.constant(path), 0)
    except tf.errors.OpError:
        return False
    return True


def _decode_file(path, label):
    # channels=3 turns grey into RGB and drops alpha; expand_animations=False
    # keeps a GIF to its first frame, so every image is 3D.
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return tf.ensure_shape(image, [None, None, 3]), label


def _load_tfds(name, split, data_dir, manual_dir, validation_fraction):
    import tensorflow_datasets as tfds

    if manual_dir is not None and not os.path.isdir(manual_dir):
        raise FileNotFoundError(f"The manual download folder does not exist. Received: manual_dir={manual_dir!r}")
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(
            "`source` must be 'digits', an existing folder with one subfolder per class, or a "
            "tensorflow-datasets name such as 'tf_flowers', 'imagenette/320px' or 'imagenet2012'. "
            f"Received: source={name!r}"
        ) from None
    except (ValueError, AssertionError) as error:  # a bad config, version or name syntax
        raise ValueError(f"tfds cannot build this dataset: {_first_line(error)} Received: source={name!r}") from None
    if builder.info.supervised_keys is None:
        raise ValueError(f"The tfds dataset has no (image, label) supervised keys. Received: source={name!r}")
    try:
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    except AssertionError:  # tfds' way of saying the manual download is missing
        raise ValueError(
            f"{name} cannot be downloaded automatically: put its archives in `manual_dir` as tfds' "
            f"instructions for {name} say. Received: manual_dir={manual_dir!r}"
        ) from None
    except Exception as error:  # offline, a failed checksum, a full disk: one line, the cause kept
        raise ValueError(
            f"tfds could not download or prepare {name} ({type(error).__name__}: {_first_line(error)}) "
            f"Received: source={name!r}, data_dir={data_dir!r}"
        ) from error

    splits = builder.info.splits
    tfds_split = split
    if "validation" not in splits:
        # tf_flowers has only "train": hold out its last validation_fraction.
        boundary = f"{100 * (1 - validation_fraction):g}%"
        tfds_split = {"train": f"train[:{boundary}]", "validation": f"train[{boundary}:]"}.get(split, split)
    if splits and tfds_split.split("[")[0] not in splits:
        names = sorted(set(splits) | {"validation"})
        raise ValueError(f"`split` must be one of {names} for {name}. Received: split={split!r}")

    label_feature = builder.info.features[builder.info.supervised_keys[1]]
    num_examples = None
    if splits:
        num_examples = {key: splits[spec].num_examples for key, spec in _split_specs(splits, validation_fraction)}
    info = DatasetInfo(
        name=name,
        num_classes=label_feature.num_classes,
        class_names=tuple(label_feature.names),
        num_examples=num_examples,
    )
    return TfdsSplit(builder, tfds_split, (num_examples or {}).get(split)), info


class TfdsSplit:
    """A split of a prepared tfds dataset: its TFRecords, read whole or pass by pass."""

    def __init__(self, builder, split, count):
        self.builder, self.split, self._count = builder, split, count
        self._image = builder.info.supervised_keys[0]

    @functools.cached_property
    def count(self):
        """The split's examples: from its info, else from its records' cardinality; 0 when neither knows."""
        if self._count:
            return self._count
        cardinality = int(self.builder.as_dataset(split=self.split).cardinality())
        return max(cardinality, 0)

    def one_pass(self, seed, shuffle):
        import tensorflow_datasets as tfds

        dataset = self.builder.as_dataset(
            split=self.split,
            as_supervised=True,
            shuffle_files=shuffle,
            read_config=tfds.ReadConfig(shuffle_seed=seed, shuffle_reshuffle_each_iteration=True),
        )
        return dataset.map(_to_rgb_uint8, num_parallel_calls=tf.data.AUTOTUNE)

    def pass_in_order(self, seed, pass_index, shuffle_buffer):
        """Pass ``pass_index`` (a tensor) of the encoded records, in an order set by ``(seed, pass_index)`` alone.

        The files are read in one seeded order, the same in every pass; each
        window of ``shuffle_buffer`` records is then permuted by stateless
        random keys of ``(seed, pass, window)``. Not `Dataset.shuffle` with a
        seed tensor: under a global seed (`keras.utils.set_random_seed`, as
        `train` sets) tf.data tests that seed as a Python bool, and fails.
        Skipping into a pass reads the records before the position, but
        decodes none.
        """
        import tensorflow_datasets as tfds

        records = self.builder.as_dataset(
            split=self.split,
            as_supervised=True,
            shuffle_files=True,
            read_config=tfds.ReadConfig(shuffle_seed=seed, shuffle_reshuffle_each_iteration=False),
            decoders={self._image: tfds.decode.SkipDecoding()},
        )

        def permuted(window_index, window):
            window_seed = tf.stack([tf.constant(seed, tf.int64), pass_index * PASS_SEED_STRIDE + window_index])
            order = tf.argsort(tf.random.stateless_uniform(tf.shape(window[1]), seed=window_seed))
            return tf.data.Dataset.from_tensor_slices(tuple(tf.gather(part, order) for part in window))

        return records.batch(shuffle_buffer).enumerate().flat_map(permuted)

    def decode(self, image, label):
        return _to_rgb_uint8(self.builder.info.features[self._image].decode_example(image), label)

    def decoded(self, dataset):
        return dataset


def _first_line(error):
    return str(error).strip().splitlines()[0].split(" Here are ")[0] if str(error).strip() else type(error).__name__


def _split_specs(splits, validation_fraction):
    if "validation" in splits:
        return [(key, key) for key in splits]
    boundary = f"{100 * (1 - validation_fraction):g}%"
    return [("train", f"train[:{boundary}]"), ("validation", f"train[{boundary}:]")] + [
        (key, key) for key in splits if key != "train"
    ]


def _to_rgb_uint8(image, label):
    """Grey (mnist-like) or RGBA tfds images become RGB; labels int64."""
    channels = image.shape[-1]
    if channels == 1:
        image = tf.image.grayscale_to_rgb(image)
    elif channels == 4:
        image = image[..., :3]
    return tf.cast(image, tf.uint8), tf.cast(label, tf.int64)
