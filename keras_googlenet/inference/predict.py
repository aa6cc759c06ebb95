"""Classifying images with any exported form of a GoogLeNet: the `predict` command's library.

The model is loaded by `runtimes.load_predictor` and the images are read
and cropped by `images`, one batch at a time; here the probabilities become
each image's top classes, or the reason it has none.
"""

import dataclasses
import warnings

import numpy as np

from keras_googlenet.model import imagenet_utils
from keras_googlenet.data import images as images_lib, skipped
from keras_googlenet.inference import runtimes


def top_k(probabilities, info, k=5):
    """Per image, the k best ``(class_name, probability)`` pairs, best first."""
    probabilities = np.asarray(probabilities)
    if info.class_names is None and probabilities.shape[-1] == len(imagenet_utils.imagenet_classes()):
        return [[(name, score) for _, name, score in row] for row in imagenet_utils.decode_predictions(probabilities, top=k)]
    names = info.class_names or tuple(str(i) for i in range(probabilities.shape[-1]))
    return [[(names[i], float(row[i])) for i in np.argsort(row)[::-1][:k]] for row in probabilities]


class UnreadableImageWarning(UserWarning):
    """An image was skipped because it could not be read."""


@dataclasses.dataclass(frozen=True)
class Prediction:
    """One image's result: its top classes, or the reason it has none.

    ``classes`` is a list of ``(class_name, probability)`` pairs, best first,
    or None when the image could not be read; ``error`` then holds the
    one-line message naming the file.
    """

    image: str
    classes: list = None
    error: str = None


def iter_predictions(model, images, top=5, labels=None, batch_size=images_lib.BATCH_SIZE):
    """Classifies images batch by batch, yielding a `Prediction` for each in order.

    At most ``batch_size`` images are decoded at once and only their top
    classes are kept, so memory does not grow with the number of images. An
    unreadable image gets a `Prediction` with an ``error`` and the others are
    still classified. The arguments are checked and the model is loaded
    before this returns; the images are read as the results are consumed.
    """
    for name, value in (("top", top), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"The `{name}` argument must be an int >= 1. Received: {name}={value!r}")
    predictor = runtimes.load_predictor(model, labels=labels)
    paths = images_lib.image_paths(images)
    return (prediction for chunk in images_lib.batches(paths, batch_size) for prediction in _predict_batch(predictor, chunk, top))


def _predict_batch(predictor, paths, top):
    pixels, errors = [], []
    for path in paths:
        try:
            pixels.append(images_lib.load_image(path))
            errors.append(None)
        except ValueError as error:  # one unreadable file must not cost the others their answer
            errors.append(str(error))
    rows = iter(())
    if pixels:
        info = predictor.info
        probabilities = predictor(images_lib.prepare_images(pixels, info.image_size, info.variant, raw_pixels=info.raw_pixels))
        rows = iter(top_k(probabilities, predictor.info, k=min(top, probabilities.shape[-1])))
    return [
        Prediction(str(path), None, error) if error else Prediction(str(path), next(rows))
        for path, error in zip(paths, errors)
    ]


def predict(model, images, top=5, labels=None, batch_size=images_lib.BATCH_SIZE):
    """Classifies images with a model of any format.

    Args:
        model: a `.keras` checkpoint, a SavedModel directory, a `.tflite` or an
            `.onnx` file written by `keras_googlenet.export.convert`.
        images: image paths or folders.
        top: how many classes to return per image. Defaults to 5.
        labels: optional labels file (one class name per line) or sequence of
            names, overriding the names stored with the model.
        batch_size: how many images are decoded and run at once. Defaults
            to 32.

    Returns:
        One list per image of ``(class_name, probability)`` pairs, best first,
        or None for an image that could not be read (with a warning naming
        it). `iter_predictions` yields the results as they come.
    """
    results = []
    for prediction in iter_predictions(model, images, top=top, labels=labels, batch_size=batch_size):
        if prediction.error:
            warnings.warn(prediction.error, UnreadableImageWarning, stacklevel=2)
        results.append(prediction.classes)
    return results


def print_predictions(model, images, top=5, labels=None, print_fn=print, batch_size=images_lib.BATCH_SIZE):
    """Prints the top classes of each image as it is classified, as the `predict` command does.

    An unreadable image prints ``path: error: <message>`` in its place, once
    (not again on stderr). After `skipped.SHOWN` of them the others are only
    counted: the last line names a file that lists them all.

    Returns:
        The paths of the images that could not be read, for an exit status.
    """
    failed, named = [], skipped.SkippedFiles(print_fn)
    for prediction in iter_predictions(model, images, top=top, labels=labels, batch_size=batch_size):
        if prediction.error:
            failed.append(prediction.image)
            named.add(f"{prediction.image}: error: {prediction.error}")
            continue
        print_fn(f"{prediction.image}:")
        for name, score in prediction.classes:
            print_fn(f"  {score:8.4f}  {name}")
    listed = named.close()
    if listed:
        print_fn(f"{len(failed)} images could not be read; the first {skipped.SHOWN} are named above, all of them in {listed}")
    return failed
