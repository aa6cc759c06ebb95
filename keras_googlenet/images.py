"""Reading image files into arrays, with errors that name the file; the bundled photos."""

import importlib.resources
import os
import pathlib

import numpy as np
from PIL import Image, UnidentifiedImageError

PHOTOS_RESOURCE = "data/photos"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def sample_photos():
    """The six photos bundled with the package, as paths sorted by file name.

    bird, cat, grace_hopper, hot_dog, owl and parrot, from google-coral/test_data
    (Apache-2.0, see ``data/photos/NOTICE``): real photos for examples, tests
    and `verify`, with nothing to download.
    """
    folder = importlib.resources.files("keras_googlenet").joinpath(PHOTOS_RESOURCE)
    # A regular or editable install is a folder on disk; the paths are plain files.
    return sorted(pathlib.Path(os.fspath(entry)) for entry in folder.iterdir() if entry.name.lower().endswith(IMAGE_SUFFIXES))


def sample_photo(name="owl.jpg"):
    """One bundled photo by file name (see `sample_photos`)."""
    paths = {path.name: path for path in sample_photos()}
    if name not in paths:
        raise ValueError(f"No bundled photo has that name; the photos are {sorted(paths)}. Received: name={name!r}")
    return paths[name]


def load_image(path):
    """Reads an image file as an RGB uint8 array of shape (height, width, 3).

    Grayscale, palette and RGBA images are converted to RGB (alpha dropped).
    """
    if not os.path.isfile(path):
        raise ValueError(f"The image file does not exist. Received: image={str(path)!r}")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(
            f"The file is not a readable image ({type(error).__name__}). Received: image={str(path)!r}"
        ) from None
