"""What a ``data`` argument names: the built-in digits, an image folder, or a tensorflow-datasets name.

One rule, read by the early argument checks (`train_arguments`, before
TensorFlow is imported) and by `datasets.load_examples`, so that both tell a
folder from a dataset name the same way. Only the standard library is
imported here.
"""

import hashlib
import os
import re

from keras_googlenet.data.image_files import IMAGE_EXTENSIONS, has_image_extension

DIGITS = "digits"
# What an image folder holds: one subfolder of images per class (of
# `image_files.IMAGE_EXTENSIONS`), or train/ and validation/ (or val/) folders of them.
VALIDATION_FOLDERS = ("validation", "val")
# The share of a folder without train/ and validation/ folders that is held out for validation.
VALIDATION_FRACTION = 0.2

# tensorflow-datasets' dataset names (tensorflow_datasets/core/naming.py):
# "[namespace:]name[/config][:version][/key=value,...]", e.g. "tf_flowers",
# "imagenette/320px", "imagenet2012_subset/1pct:5.0.0". A name starts with a
# letter; a version is three numbers (or *).
_TFDS_NAME = re.compile(
    r"(?:[\w-]+:)?[A-Za-z]\w*"  # namespace, name
    r"(?:/[\w+.-]+)?"  # config
    r"(?::(?:\d+|\*)(?:\.(?:\d+|\*)){2})?"  # version
    r"(?:/\w+=[^,]+(?:,\w+=[^,]+)*,?)?"  # builder arguments
)


def data_is_path(data):
    """Whether ``data`` names a folder rather than the digits or a tfds dataset.

    The rule: ``"digits"`` is the built-in set; a path object, a string
    starting with ``~``, or an existing folder is a path; any other string
    that has the form of a tfds name (``tf_flowers``, ``imagenette/320px``:
    see ``_TFDS_NAME``) is a tfds name; everything else is a path
    (``/data``, ``./photos``, ``C:\\photos``, ``my photos``). So a folder
    ``photos/flowers`` that does not exist reads as the tfds dataset
    ``photos`` with config ``flowers``: write ``./photos/flowers`` to be sure.
    """
    if isinstance(data, os.PathLike):
        return True
    if data == DIGITS:
        return False
    return data.startswith("~") or os.path.isdir(data) or not _TFDS_NAME.fullmatch(data)


def check_image_folder(root, received=None):
    """Raises a one-line ValueError for an image folder that cannot train a classifier; decodes nothing.

    No class subfolders; one class (a softmax over one unit learns nothing:
    loss 0, top-1 1.0); a class folder with no file of an image extension
    (it stops at the first image of each, so that ImageNet's folder answers
    in a second too). Whether each file decodes is checked when it is read.
    ``received`` is the ``data`` value to name (``root`` by default).
    """
    classes_root = _classes_root(root)
    names = sorted(entry.name for entry in os.scandir(classes_root) if entry.is_dir() and not entry.name.startswith("."))
    shown = f"Received: data={os.fspath(root if received is None else received)!r}"
    if not names:
        raise ValueError(f"The image folder has no class subfolders (one folder of images per class). {shown}")
    if len(names) == 1:
        raise ValueError(
            f"The image folder has one class ({names[0]!r}): a classifier needs two or more, one subfolder "
            f"of images per class. {shown}"
        )
    for name in names:
        if not _holds_an_image(os.path.join(classes_root, name)):
            raise ValueError(f"The class folder {name!r} holds no images ({', '.join(IMAGE_EXTENSIONS)}). {shown}")
    if classes_root == root:
        _check_held_out_split(root, names, shown)


def hash_fraction(relative_path):
    """A fixed number in [0, 1) per file, so that a file stays in its split as the folder grows: below `VALIDATION_FRACTION` is held out."""
    digest = hashlib.sha1(relative_path.replace(os.sep, "/").encode("utf-8")).hexdigest()
    return int(digest, 16) / 16 ** len(digest)


def _check_held_out_split(root, names, shown):
    """Refuses a class whose every image the hash holds out for validation: it would have none to train on."""
    for name in names:
        held_out = 0
        for relative in _relative_images(os.path.join(root, name), root):
            if hash_fraction(relative) >= VALIDATION_FRACTION:
                break  # one image to train on is enough to know
            held_out += 1
        else:
            raise ValueError(
                f"The class folder {name!r} has {held_out} image(s), and the {VALIDATION_FRACTION:.0%} of the folder "
                f"held out for validation takes them all: none is left to train on. Add images to it, or split "
                f"the folder yourself into train/ and validation/ folders. {shown}"
            )


def _classes_root(root):
    """``root/train`` when ``root`` has train/ and validation/ (or val/) folders, else ``root``."""
    train = os.path.join(root, "train")
    if os.path.isdir(train) and any(os.path.isdir(os.path.join(root, name)) for name in VALIDATION_FOLDERS):
        return train
    return root


def _holds_an_image(folder):
    return next(_relative_images(folder, folder), None) is not None


def _relative_images(folder, root):
    for parent, _, filenames in os.walk(folder):
        for filename in filenames:
            if has_image_extension(filename):
                yield os.path.relpath(os.path.join(parent, filename), root)
