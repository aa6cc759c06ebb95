"""Images in: reading files and folders into arrays, with errors that name the file; crops as a model takes them.

Every runtime gets the same Python-side preparation, `augment.eval_transform`
then `preprocess_input`, so the predictions of all formats are comparable.
The bundled photos are here too.
"""

import importlib.resources
import os
import pathlib

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from keras_googlenet.data.image_files import has_image_extension, holds_images, not_an_image_file

PHOTOS_RESOURCE = "assets/photos"
# Images decoded, cropped and run at once: memory grows with this, not with
# the number of images (1000 photos in one batch took 12 GB).
BATCH_SIZE = 32


def sample_photos():
    """The six photos bundled with the package, as paths sorted by file name.

    bird, cat, grace_hopper, hot_dog, owl and parrot, from google-coral/test_data
    (Apache-2.0, see ``assets/photos/NOTICE``): real photos for examples, tests
    and `verify`, with nothing to download.
    """
    folder = importlib.resources.files("keras_googlenet").joinpath(PHOTOS_RESOURCE)
    # A regular or editable install is a folder on disk; the paths are plain files.
    return sorted(pathlib.Path(os.fspath(entry)) for entry in folder.iterdir() if has_image_extension(entry.name))


def sample_photo(name="owl.jpg"):
    """One bundled photo by file name (see `sample_photos`)."""
    paths = {path.name: path for path in sample_photos()}
    if name not in paths:
        raise ValueError(f"No bundled photo has that name; the photos are {sorted(paths)}. Received: name={name!r}")
    return paths[name]


def load_image(path):
    """Reads an image file as an RGB uint8 array of shape (height, width, 3), as a viewer shows it.

    Grayscale, palette, CMYK and RGBA images are converted to RGB (alpha
    dropped); 16-bit greyscale is scaled to 8 bits, not clipped at 255; a
    photo's EXIF orientation is applied. A file over Pillow's pixel limit
    (`PIL.Image.MAX_IMAGE_PIXELS`, a guard against decompression bombs) is a
    ValueError that names it, as is any path that is no image file (see
    `image_files.not_an_image_file`) and any file that is not a readable image.
    """
    reason = not_an_image_file(path)
    if reason:
        raise ValueError(f"The image file {reason}. Received: image={str(path)!r}")
    try:
        with Image.open(path) as image:
            return _as_rgb(ImageOps.exif_transpose(image))
    except Image.DecompressionBombError as error:
        too_large = str(error).splitlines()[0].rstrip(".")  # Pillow's: the pixels and its limit
        raise ValueError(f"The image is too large: {too_large}. Received: image={str(path)!r}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(
            f"The file is not a readable image ({type(error).__name__}). Received: image={str(path)!r}"
        ) from None


# Pillow's modes of 16-bit greyscale (PNG, TIFF): "I" holds them in 32-bit ints.
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")


def _as_rgb(image):
    """An RGB uint8 array of a Pillow image of any mode: 16-bit greyscale is scaled (convert("RGB") clips it at 255)."""
    if image.mode in _SIXTEEN_BIT_MODES:
        grey = np.round(np.asarray(image, dtype=np.float64) / 257.0)
        return np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)



def image_paths(images):
    """Image files from a mix of files and folders: a folder's entries with an image extension, sorted.

    A folder is not searched below its own entries. One that holds no entry
    with an image extension stays in the list as itself, so that the
    reader (`load_image`) names it as a folder in its place, and the other
    images are still read.
    """
    if isinstance(images, (str, os.PathLike)):
        images = [images]
    paths = []
    for item in images:
        found = []
        if os.path.isdir(item):
            found = sorted(p for p in pathlib.Path(item).iterdir() if has_image_extension(p.name))
        paths.extend(found or [pathlib.Path(item)])
    return paths


def read_images(images, split="validation", limit=None):
    """Raw images: files, folders of images, an array, or a dataset source.

    A string that is neither an image file nor a folder holding images is a
    source for `datasets.load_examples` (``"digits"``, a folder with one
    subfolder per class, a tfds name), of which ``split`` is read.

    Returns:
        A list of image paths or RGB uint8 arrays, at most ``limit`` long.
    """
    return list(iter_images(images, split=split, limit=limit))


def iter_images(images, split="validation", limit=None):
    """`read_images` one image at a time: a dataset is decoded as it is read."""
    if isinstance(images, np.ndarray):
        return iter(images[:limit])
    if isinstance(images, (str, os.PathLike)) and not os.path.isfile(images) and not holds_images(images):
        from keras_googlenet.data import datasets

        dataset, _ = datasets.load_examples(str(images), split)
        return (image.numpy() for image, _ in dataset.take(-1 if limit is None else limit))
    return iter(image_paths(images)[:limit])


def batches(items, batch_size=BATCH_SIZE):
    """Lists of up to ``batch_size`` consecutive items of any iterable."""
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def crop_images(images, image_size):
    """The float32 crops (n, size, size, 3) in [0, 255] that a model classifies, from files or RGB arrays.

    Each image is resized and centre-cropped by `augment.eval_transform`, the
    transform of evaluation and of the SavedModel's uint8 signature.
    """
    from keras_googlenet.data.augment import eval_transform

    crops = []
    for image in images:
        pixels = load_image(image) if isinstance(image, (str, os.PathLike)) else np.asarray(image)
        crops.append(np.asarray(eval_transform(pixels, image_size), dtype=np.float32))
    return np.stack(crops)


def prepare_images(images, image_size, variant, raw_pixels=False):
    """The float batch a model takes, from image files or raw RGB uint8 arrays.

    `crop_images`, then scaled by `preprocess_input` for the variant, unless
    ``raw_pixels`` (a model that scales its input itself, as every export
    does).
    """
    from keras_googlenet.model import imagenet_utils

    crops = crop_images(images, image_size)
    return crops if raw_pixels else np.asarray(imagenet_utils.preprocess_input(crops, variant=variant))
