"""Classifying images with any exported form of a GoogLeNet.

A `.keras` checkpoint, a SavedModel directory, a `.tflite` file and an `.onnx`
file all load into a `Predictor`: a callable from a preprocessed float batch
to class probabilities, run by the format's own runtime (Keras,
`tf.saved_model.load`, `ai_edge_litert`, onnxruntime), together with the
`ModelInfo` that says how to preprocess and name the classes. Every format
gets the same Python-side preprocessing, `augment.eval_transform` then
`preprocess_input`, so their predictions are comparable.
"""

import dataclasses
import json
import os
import pathlib
import sys
import warnings

import numpy as np

from keras_googlenet import images as images_lib
from keras_googlenet import imagenet_utils
from keras_googlenet import tflite_metadata
from keras_googlenet.model import includes_preprocessing, model_variant

LABELS_FILE = "labels.txt"  # one class name per line, beside a checkpoint or a .tflite
METADATA_FILE = "metadata.json"  # variant and input size, beside a .tflite
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
# Images decoded, cropped and run at once: memory grows with this, not with
# the number of images (1000 photos in one batch took 12 GB).
BATCH_SIZE = 32


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What a caller needs besides the weights: input scaling, size and class names."""

    variant: str
    image_size: int
    class_names: tuple = None  # None: ImageNet names for 1000 classes, indices otherwise
    raw_pixels: bool = False  # the model scales its input itself: feed it crops in [0, 255]

    def to_json(self):
        return {
            "variant": self.variant,
            "image_size": self.image_size,
            "class_names": list(self.class_names or ()),
            "raw_pixels": self.raw_pixels,
        }

    @classmethod
    def from_json(cls, data):
        # Exports made before issue 11 have no raw_pixels: they take scaled pixels.
        return cls(data["variant"], int(data["image_size"]), tuple(data["class_names"]) or None, bool(data.get("raw_pixels", False)))


def read_labels(path):
    """The class names of a labels file, one per line."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"The labels file does not exist. Received: labels={str(path)!r}")
    names = tuple(line.strip() for line in pathlib.Path(path).read_text().splitlines() if line.strip())
    if not names:
        raise ValueError(f"The labels file has no class names. Received: labels={str(path)!r}")
    return names


def write_labels(path, class_names):
    pathlib.Path(path).write_text("".join(f"{name}\n" for name in class_names))


def load_checkpoint(path):
    """Loads a `.keras` checkpoint as its single-output inference model.

    A checkpoint written by training holds the three-head model, with the EMA
    weights already swapped in when training used EMA; the auxiliary heads
    are dropped here, as the paper does at inference.
    """
    import keras

    from keras_googlenet import task

    if not str(path).endswith(".keras"):
        raise ValueError(f"The checkpoint must be a `.keras` file. Received: checkpoint={str(path)!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"The checkpoint file does not exist. Received: checkpoint={str(path)!r}")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # zipfile, h5py and deserialisation errors alike
        raise ValueError(
            f"The checkpoint is not a readable .keras file ({type(error).__name__}). Received: checkpoint={str(path)!r}"
        ) from None
    return task.inference_model(model)


def checkpoint_info(model, checkpoint=None, labels=None):
    """The `ModelInfo` of a Keras model: variant and size from the layers.

    Class names come from ``labels`` (a file or a sequence), else from a
    ``labels.txt`` beside the checkpoint, else the ImageNet names for 1000
    classes. Otherwise they stay unknown and classes are shown by index.
    """
    classes = model.output_shape[-1]
    if isinstance(labels, (str, os.PathLike)):
        labels = read_labels(labels)
    elif labels is None and checkpoint is not None and os.path.isfile(pathlib.Path(checkpoint).parent / LABELS_FILE):
        labels = read_labels(pathlib.Path(checkpoint).parent / LABELS_FILE)
    elif labels is None and classes == len(imagenet_utils.imagenet_classes()):
        labels = [name for _, name in imagenet_utils.imagenet_classes()]
    if labels is not None and len(labels) != classes:
        raise ValueError(f"The model has {classes} classes but the labels name {len(labels)}. Received: len(labels)={len(labels)}")
    names = tuple(labels) if labels is not None else None
    return ModelInfo(model_variant(model), int(model.input_shape[1]), names, includes_preprocessing(model))


class Predictor:
    """A loaded model of any format: ``predictor(batch)`` gives probabilities.

    ``batch`` is float32 of shape (n, size, size, 3), already preprocessed;
    `prepare_images` makes it from files or raw pixels.
    """

    def __init__(self, path, info, run, format):
        self.path = str(path)
        self.info = info
        self.format = format
        self._run = run

    def __call__(self, batch):
        return np.asarray(self._run(np.asarray(batch, dtype=np.float32)), dtype=np.float32)


def load_predictor(path, labels=None):
    """Loads a `.keras`, SavedModel directory, `.tflite` or `.onnx` model."""
    path = str(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"The model file does not exist. Received: model={path!r}")
    if path.endswith(".keras"):
        model = load_checkpoint(path)
        info = checkpoint_info(model, checkpoint=path, labels=labels)
        # `predict_on_batch` runs a compiled graph, which frees each activation
        # once it is consumed: 1.2 GB peak for 32 images at 224 px, where an
        # eager `model(batch)` took 2.7 GB.
        return Predictor(path, info, model.predict_on_batch, "keras")
    if os.path.isdir(path):
        predictor = _load_saved_model(path)
    elif path.endswith(".tflite"):
        predictor = _load_tflite(path)
    elif path.endswith(".onnx"):
        predictor = _load_onnx(path)
    else:
        raise ValueError(
            f"The model must be a .keras file, a SavedModel directory, a .tflite or an .onnx file. Received: model={path!r}"
        )
    if labels is not None:
        names = read_labels(labels) if isinstance(labels, (str, os.PathLike)) else tuple(labels)
        predictor.info = dataclasses.replace(predictor.info, class_names=names)
    return predictor


def _load_saved_model(path):
    import tensorflow as tf

    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise ValueError(f"The directory holds no SavedModel (saved_model.pb). Received: model={path!r}")
    loaded = tf.saved_model.load(path)
    if not hasattr(loaded, "metadata"):
        raise ValueError(f"The SavedModel has no metadata() function; export it with this package. Received: model={path!r}")
    metadata = {key: value.numpy() for key, value in loaded.metadata().items()}
    info = ModelInfo(
        metadata["variant"].decode(),
        int(metadata["image_size"]),
        tuple(name.decode() for name in metadata["class_names"]) or None,
        bool(metadata.get("raw_pixels", False)),
    )
    serve = loaded.signatures["serving_default"]
    predictor = Predictor(path, info, lambda batch: serve(images=tf.constant(batch))["probabilities"].numpy(), "savedmodel")
    predictor.serve_uint8 = lambda pixels: loaded.signatures["serving_uint8"](images=tf.constant(pixels))["probabilities"].numpy()
    return predictor


def _load_tflite(path):
    from ai_edge_litert.interpreter import Interpreter

    info = _tflite_info(path)
    try:
        interpreter = Interpreter(model_path=path)
    except ValueError:
        raise ValueError(f"The file is not a TFLite model. Received: model={path!r}") from None
    interpreter.allocate_tensors()
    input_details = interpreter.get_input_details()[0]
    output_details = interpreter.get_output_details()[0]

    def run(batch):
        # The interpreter is built for batch 1; resizing it per call keeps
        # `predictor(batch)` the same for every format.
        if tuple(input_details["shape"]) != batch.shape:
            interpreter.resize_tensor_input(input_details["index"], batch.shape)
            interpreter.allocate_tensors()
            input_details.update(interpreter.get_input_details()[0])
        interpreter.set_tensor(input_details["index"], _quantize(batch, input_details))
        interpreter.invoke()
        return _dequantize(interpreter.get_tensor(output_details["index"]), output_details)

    predictor = Predictor(path, info, run, "tflite")
    predictor.input_dtype = np.dtype(input_details["dtype"])
    predictor.output_dtype = np.dtype(output_details["dtype"])
    return predictor


def _quantize(batch, details):
    """Float to the integer input of a full-integer model: x / scale + zero point."""
    dtype = np.dtype(details["dtype"])
    if dtype.kind == "f":
        return batch.astype(dtype)
    scale, zero_point = details["quantization"]
    limits = np.iinfo(dtype)
    return np.clip(np.round(batch / scale + zero_point), limits.min, limits.max).astype(dtype)


def _dequantize(values, details):
    if np.dtype(details["dtype"]).kind == "f":
        return values
    scale, zero_point = details["quantization"]
    return (values.astype(np.float32) - zero_point) * scale


def _tflite_info(path):
    """The ModelInfo zipped into a .tflite by export; the sidecar files of older exports."""
    if pathlib.Path(path).read_bytes()[4:8] != tflite_metadata.TFLITE_FILE_IDENTIFIER:
        return _sidecar_info(path)  # the interpreter then names a file that is not TFLite
    found = tflite_metadata.read_metadata(path)
    if found is None or tflite_metadata.MODEL_INFO_FILE not in found.files:
        return _sidecar_info(path)
    info = ModelInfo.from_json(json.loads(found.files[tflite_metadata.MODEL_INFO_FILE]))
    return dataclasses.replace(info, class_names=found.labels or info.class_names)


def _sidecar_info(path):
    """A .tflite file has no room for our metadata: it sits beside it."""
    metadata_path = pathlib.Path(path).parent / METADATA_FILE
    if not metadata_path.is_file():
        raise FileNotFoundError(
            f"A .tflite model needs the {METADATA_FILE} written beside it by export. Received: model={str(path)!r}"
        )
    info = ModelInfo.from_json(json.loads(metadata_path.read_text()))
    labels_path = pathlib.Path(path).parent / LABELS_FILE
    return dataclasses.replace(info, class_names=read_labels(labels_path)) if labels_path.is_file() else info


def _load_onnx(path):
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types for a bad file
        raise ValueError(f"The file is not an ONNX model ({type(error).__name__}). Received: model={path!r}") from None
    metadata = session.get_modelmeta().custom_metadata_map
    if "keras_googlenet" not in metadata:
        raise ValueError(f"The ONNX model has no keras_googlenet metadata; export it with this package. Received: model={path!r}")
    info = ModelInfo.from_json(json.loads(metadata["keras_googlenet"]))
    input_name = session.get_inputs()[0].name
    return Predictor(path, info, lambda batch: session.run(None, {input_name: batch})[0], "onnx")


def image_paths(images):
    """Image files from a mix of files and folders (a folder's images, sorted)."""
    if isinstance(images, (str, os.PathLike)):
        images = [images]
    paths = []
    for item in images:
        if os.path.isdir(item):
            found = sorted(p for p in pathlib.Path(item).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ValueError(f"The folder holds no images ({', '.join(IMAGE_SUFFIXES)}). Received: images={str(item)!r}")
            paths.extend(found)
        else:
            paths.append(pathlib.Path(item))
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
    if isinstance(images, (str, os.PathLike)) and not os.path.isfile(images) and not _holds_images(images):
        from keras_googlenet import datasets

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


def _holds_images(folder):
    return os.path.isdir(folder) and any(p.suffix.lower() in IMAGE_SUFFIXES for p in pathlib.Path(folder).iterdir())


def prepare_images(images, image_size, variant, raw_pixels=False):
    """The float batch a model takes, from image files or raw RGB uint8 arrays.

    Each image is resized and centre-cropped by `augment.eval_transform`, the
    transform of evaluation and of the SavedModel's uint8 signature, then
    scaled by `preprocess_input` for the variant, unless ``raw_pixels`` (a
    model that scales its input itself, as every export does).
    """
    from keras_googlenet.augment import eval_transform

    crops = []
    for image in images:
        pixels = images_lib.load_image(image) if isinstance(image, (str, os.PathLike)) else np.asarray(image)
        crops.append(np.asarray(eval_transform(pixels, image_size), dtype=np.float32))
    crops = np.stack(crops)
    return crops if raw_pixels else np.asarray(imagenet_utils.preprocess_input(crops, variant=variant))


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


def iter_predictions(model, images, top=5, labels=None, batch_size=BATCH_SIZE):
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
    predictor = load_predictor(model, labels=labels)
    paths = image_paths(images)
    return (prediction for chunk in batches(paths, batch_size) for prediction in _predict_batch(predictor, chunk, top))


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
        probabilities = predictor(prepare_images(pixels, info.image_size, info.variant, raw_pixels=info.raw_pixels))
        rows = iter(top_k(probabilities, predictor.info, k=min(top, probabilities.shape[-1])))
    return [
        Prediction(str(path), None, error) if error else Prediction(str(path), next(rows))
        for path, error in zip(paths, errors)
    ]


def predict(model, images, top=5, labels=None, batch_size=BATCH_SIZE):
    """Classifies images with a model of any format.

    Args:
        model: a `.keras` checkpoint, a SavedModel directory, a `.tflite` or an
            `.onnx` file written by `keras_googlenet.export`.
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


def print_predictions(model, images, top=5, labels=None, print_fn=print, batch_size=BATCH_SIZE):
    """Prints the top classes of each image as it is classified, as the `predict` command does.

    An unreadable image prints ``path: error: <message>`` in its place and a
    one-line warning on stderr.

    Returns:
        The paths of the images that could not be read, for an exit status.
    """
    failed = []
    for prediction in iter_predictions(model, images, top=top, labels=labels, batch_size=batch_size):
        if prediction.error:
            failed.append(prediction.image)
            print(f"warning: {prediction.error}", file=sys.stderr)
            print_fn(f"{prediction.image}: error: {prediction.error}")
            continue
        print_fn(f"{prediction.image}:")
        for name, score in prediction.classes:
            print_fn(f"  {score:8.4f}  {name}")
    return failed
