"""Writing a training checkpoint as a KerasHub classifier preset, with its model card.

The preset is what ``GoogLeNetImageClassifier.save_to_preset`` writes
(``config.json``, ``model.weights.h5``, ``task.json``, ``task.weights.h5``,
``preprocessor.json``, ``image_converter.json``, ``metadata.json``) plus a
``README.md`` model card. It holds the checkpoint's main head only: an
`ImageClassifier` has one output. `keras_hub.upload_preset` publishes the
folder to Kaggle or Hugging Face as it is.
"""

import json
import os
import pathlib
import shutil
import tempfile

from keras_googlenet.defaults import SUMMARY_FILE  # beside the checkpoint that training wrote
from keras_googlenet.model import architecture
from keras_googlenet.artifacts import model_info

README_FILE = "README.md"
METADATA_FILE = "metadata.json"
METADATA_KEY = "keras_googlenet"  # our entry in KerasHub's metadata.json
LISTED_CLASSES = 30  # a model card lists up to this many class names


def save_preset(checkpoint, directory, labels=None, name=None):
    """Writes a `.keras` checkpoint's main head as a KerasHub classifier preset.

    Load it with ``keras_hub.models.ImageClassifier.from_preset(directory)``
    after ``import keras_googlenet.kerashub``. It takes raw RGB pixels in
    [0, 255] of any size: its preprocessor resizes them (a centre crop to
    the square, then bilinear) and the backbone scales them for its variant.

    Args:
        checkpoint: a `.keras` file, with or without auxiliary heads.
        directory: the preset folder; replaced when complete.
        labels: a labels file or a sequence of class names; by default a
            ``labels.txt`` beside the checkpoint, or the ImageNet names for
            1000 classes.
        name: the preset's name, in its model card and metadata; by default
            ``googlenet_<variant>_<size>``.

    Returns:
        The directory, as a string.
    """
    _check_name(name)
    _check_directory(directory)
    model = model_info.load_checkpoint(checkpoint)
    info = model_info.checkpoint_info(model, checkpoint=checkpoint, labels=labels)
    return write_preset(model, info, directory, name=name, training=training_summary(checkpoint))


def write_preset(model, info, directory, name=None, training=None):
    """Writes a loaded single-output GoogLeNet (see `model_info.load_checkpoint`) as a preset.

    Args:
        model: the inference model of a checkpoint.
        info: its `model_info.ModelInfo`.
        directory: the preset folder; replaced when complete.
        name: see `save_preset`.
        training: a line on how the model was trained, for the model card.

    Returns:
        The directory, as a string.
    """
    _check_name(name)
    name = name or f"googlenet_{info.variant}_{info.image_size}"
    classifier = classifier_from_model(model, info)
    directory = _check_directory(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    scratch = pathlib.Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        classifier.save_to_preset(str(scratch / "preset"))
        _add_metadata(scratch / "preset" / METADATA_FILE, info, name)
        card = model_card(info, name, classifier.count_params(), training, classifier.activation)
        (scratch / "preset" / README_FILE).write_text(card, encoding="utf-8")
        if directory.is_dir():
            shutil.rmtree(directory)
        os.replace(scratch / "preset", directory)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return str(directory)


def classifier_from_model(model, info):
    """A `GoogLeNetImageClassifier` carrying the weights of a single-output GoogLeNet.

    The backbone's layers have the checkpoint's layer names, so its weights
    are copied by name; the main head's dense layer (``loss3_classifier``)
    becomes the classifier's, with the same activation and dropout.
    """
    import keras

    from keras_googlenet import kerashub

    backbone = kerashub.GoogLeNetBackbone(variant=info.variant)
    for layer in backbone.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    converter = kerashub.GoogLeNetImageConverter(image_size=(info.image_size, info.image_size))
    classifier = kerashub.GoogLeNetImageClassifier(
        backbone,
        model.output_shape[-1],
        class_names=info.class_names,
        preprocessor=kerashub.GoogLeNetImageClassifierPreprocessor(converter),
        activation=keras.activations.serialize(model.get_layer("main").activation),
        dropout=architecture.VARIANTS[info.variant].dropout,
    )
    classifier.output_dense.set_weights(model.get_layer("loss3_classifier").get_weights())
    return classifier


def training_summary(checkpoint):
    """One line on how a checkpoint was trained, from the summary.json training wrote beside it; None without."""
    path = pathlib.Path(checkpoint).parent / SUMMARY_FILE
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    epochs = len(next(iter(summary.get("history", {}).values()), []))
    line = f"Trained with keras_googlenet's `train` for {epochs} epochs, global batch size {summary.get('global_batch_size')}"
    evaluation = summary.get("evaluation") or {}
    if "top1" in evaluation:
        line += f"; top-1 {evaluation['top1']:.2%} on {evaluation.get('examples')} validation images"
    return line + "."


def model_card(info, name, parameters, training=None, activation="softmax"):
    """The preset's README.md: what it is, its input, classes, training, loading and licence."""
    scaling = architecture.VARIANTS[info.variant].input_scaling
    names = list(info.class_names or ())
    classes = ", ".join(f"`{n}`" for n in names[:LISTED_CLASSES]) + (f" and {len(names) - LISTED_CLASSES} more" if len(names) > LISTED_CLASSES else "")
    size = info.image_size
    return f"""---
library_name: keras-hub
pipeline_tag: image-classification
tags: [keras, keras-hub, googlenet, inception-v1]
---
# {name}

GoogLeNet (Inception v1, [Szegedy et al. 2014](https://arxiv.org/abs/1409.4842)), variant `{info.variant}`
({VARIANT_LINES[info.variant]}): an image classifier of {parameters:,} parameters in KerasHub's
`ImageClassifier` API, written by keras_googlenet (`pip install keras-googlenet`). It runs on the
TensorFlow, JAX and PyTorch backends of Keras 3.

- **Input**: RGB images, pixels in [0, 255] (uint8 or float). The preprocessor crops each image to a centre
  square and resizes it to {size} x {size}; the backbone's first layer scales it
  (`{scaling.channel_order}` channel order, mean {list(scaling.mean)}, std {list(scaling.std)}): do not scale it yourself.
- **Output**: {len(names) or "class"} {"probabilities" if activation == "softmax" else f"scores ({activation})"}{f": {classes}" if names else ""} (`classifier.class_names`).
- **Head**: the paper's main classifier only; the two auxiliary heads of training are dropped, as at inference.
- **Training**: {training or "not recorded with this preset."}

## Load it

```python
import keras_googlenet.kerashub  # first: KerasHub never imports the module that defines GoogLeNet's classes
import keras_hub

classifier = keras_hub.models.ImageClassifier.from_preset("PATH_OR_HANDLE")
probabilities = classifier.predict(images)  # images: (n, height, width, 3) RGB in [0, 255]
backbone = keras_hub.models.Backbone.from_preset("PATH_OR_HANDLE")  # inception 5b features
```

`pip install "keras-googlenet[kerashub]"` installs both packages. Pass `dtype="bfloat16"` to `from_preset`
for bfloat16 weights.

## Licence

keras_googlenet is Apache-2.0. The weights are the author's: state their licence here. Weights fine-tuned from
pretrained ImageNet weights inherit those terms (BVLC GoogLeNet: unrestricted use; torchvision: BSD-3-Clause),
and ImageNet's terms of access apply to models trained on it.
"""


# What each variant is, for the model card.
VARIANT_LINES = {
    "paper": "the 2014 network: biases, local response normalisation, 5x5 branches",
    "bn": "Inception v1 with batch normalisation, as torchvision and TF-slim",
}


def _add_metadata(path, info, name):
    # KerasHub writes metadata.json and never reads it back: our entry rides along to the hub.
    metadata = json.loads(path.read_text())
    metadata[METADATA_KEY] = {"name": name, **info.to_json(), "raw_pixels": True}
    path.write_text(json.dumps(metadata, indent=4) + "\n")


def _check_directory(directory):
    """Raises unless ``directory`` is a folder or can be made one; creates nothing."""
    directory = pathlib.Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"The preset folder is an existing file. Received: directory={str(directory)!r}")
    existing = directory.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"The preset folder cannot be created under the file {str(existing)!r}. Received: directory={str(directory)!r}")
    return directory


def _check_name(name):
    if name is not None and (not isinstance(name, str) or not name.strip() or "\n" in name):
        raise ValueError(f"The preset `name` must be a non-empty string on one line. Received: name={name!r}")
