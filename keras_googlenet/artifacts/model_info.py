"""What a checkpoint or an export says about itself: variant, input size, scaling, class names.

`ModelInfo` travels with every format: beside a checkpoint as `labels.txt`,
in a SavedModel's ``metadata()`` function, zipped into a `.tflite`'s TFLite
metadata, in an ONNX model's custom metadata. `load_checkpoint` is here
because a checkpoint's info is read from its layers.
"""

import dataclasses
import json
import os
import pathlib

from keras_googlenet.defaults import LABELS_FILE, METADATA_FILE  # noqa: F401  (beside a checkpoint or a .tflite)
from keras_googlenet.model import imagenet_utils
from keras_googlenet.artifacts import tflite_metadata
from keras_googlenet.model.googlenet import includes_preprocessing, model_variant


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
    from keras_googlenet.model import task

    return task.inference_model(load_keras_file(path))


def load_keras_file(path):
    """Loads a `.keras` checkpoint as it was saved (all heads), with one-line errors naming it."""
    import keras

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
    _check_googlenet(model, path)
    return model


def _check_googlenet(model, path):
    """Raises a one-line ValueError naming the file when ``model`` is another network, or GoogLeNet without its classifier."""
    from keras_googlenet.model import architecture

    names = {layer.name for layer in model.layers}
    if architecture.STEM_CONV1 not in names:
        raise ValueError(
            f"The checkpoint is not a GoogLeNet checkpoint: it holds a Keras model named {model.name!r} with outputs "
            f"{list(model.output_names)}, without GoogLeNet's layers; use one written by `keras-googlenet train` or "
            f"keras_googlenet.GoogLeNet. Received: checkpoint={str(path)!r}"
        )
    if "main" not in model.output_names:
        raise ValueError(
            "The checkpoint holds GoogLeNet without its classifier (include_top=False): it has no 'main' output to "
            f"classify with. Received: checkpoint={str(path)!r}"
        )


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


def tflite_info(path):
    """The ModelInfo zipped into a .tflite by export; the sidecar files of older exports."""
    with open(path, "rb") as file:
        identifier = file.read(8)[4:8]
    if identifier != tflite_metadata.TFLITE_FILE_IDENTIFIER:
        raise ValueError(
            f"The file is not a TFLite model: damaged, or another format (its bytes 4-8 are {identifier!r}, "
            f"not TFLite's {tflite_metadata.TFLITE_FILE_IDENTIFIER!r}). Received: model={str(path)!r}"
        )
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
