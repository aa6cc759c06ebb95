"""What a ``data`` argument names: the built-in digits, an image folder, or a tensorflow-datasets name.

One rule, read by the early argument checks (`train_arguments`, before
TensorFlow is imported) and by `datasets.load_examples`, so that both tell a
folder from a dataset name the same way. Only the standard library is
imported here.
"""

import os
import re

DIGITS = "digits"

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
