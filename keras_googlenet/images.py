"""Reading image files into arrays, with errors that name the file."""

import os

import numpy as np
from PIL import Image, UnidentifiedImageError


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
