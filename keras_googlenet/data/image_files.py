"""Which paths are image files: one rule for `predict`, `evaluate`, `train` and `verify`.

The extensions are the formats that both readers decode: TensorFlow's
`tf.io.decode_image` (training and evaluation on an image folder) and
Pillow (`predict`, `verify`, Grad-CAM). A file given by name and a file
found in a folder are accepted alike: a ``.tif`` is refused in both, since
training could not read it. A path that is no image file is described for
what it is (a folder, a broken link, a link loop), so that every skipped
path is named with its reason. Only the standard library is imported.
"""

import errno
import os

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")


def has_image_extension(name):
    """Whether a file name ends in one of `IMAGE_EXTENSIONS`, in any case."""
    return os.fspath(name).lower().endswith(IMAGE_EXTENSIONS)


def holds_images(folder):
    """Whether ``folder`` is a folder with an entry of an image extension in it (not below)."""
    return os.path.isdir(folder) and any(has_image_extension(entry.name) for entry in os.scandir(folder))


def not_an_image_file(path):
    """Why ``path`` cannot be an image file, read from its name and the file system only; None when it can be.

    The reason completes "The image file ...": "does not exist", "is a
    folder" (that holds no images), "is a broken link (to 'x')", "is a symbolic link loop", "is
    not a regular file", or "has an extension that is not read". Whether
    its bytes decode is for the reader to find out.
    """
    if os.path.islink(path) and not os.path.exists(path):
        try:
            os.stat(path)
        except OSError as error:
            if error.errno == errno.ELOOP:
                return "is a symbolic link loop"
        return f"is a broken link (to {os.readlink(path)!r})"
    if os.path.isdir(path):
        return "is a folder" + ("" if holds_images(path) else f" that holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    if not os.path.exists(path):
        return "does not exist"
    if not os.path.isfile(path):
        return "is not a regular file"
    if not has_image_extension(path):
        extension = os.path.splitext(path)[1] or "none"
        return f"has an extension that is not read ({extension!r}; the image types are {', '.join(IMAGE_EXTENSIONS)})"
    return None
