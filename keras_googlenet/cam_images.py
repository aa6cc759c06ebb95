"""Grad-CAM pictures: each photo with its heatmap over it and its top classes beneath."""

import os
import pathlib

import numpy as np

# How much of the heatmap's colour covers the photo.
OVERLAY_ALPHA = 0.45
TEXT_LINE_HEIGHT = 16


def overlay(pixels, heatmap, lines=()):
    """An RGB picture: ``pixels`` (h, w, 3) uint8 under ``heatmap`` (h, w) in [0, 1], ``lines`` of text below.

    Returns:
        A `PIL.Image.Image`.
    """
    import matplotlib
    from PIL import Image, ImageDraw

    pixels = np.asarray(pixels, dtype=np.float32)
    colours = matplotlib.colormaps["jet"](np.asarray(heatmap))[..., :3] * 255.0
    blended = (1.0 - OVERLAY_ALPHA) * pixels + OVERLAY_ALPHA * colours
    photo = Image.fromarray(np.clip(np.round(blended), 0, 255).astype(np.uint8))
    picture = Image.new("RGB", (photo.width, photo.height + TEXT_LINE_HEIGHT * len(lines) + 4), "white")
    picture.paste(photo, (0, 0))
    draw = ImageDraw.Draw(picture)
    for i, line in enumerate(lines):
        draw.text((4, photo.height + 2 + i * TEXT_LINE_HEIGHT), line, fill="black")
    return picture


def write_cam_images(checkpoint, images, output_dir, top=5, head="main", layer=None, labels=None, class_index=None):
    """Writes one PNG per image: the crop the model saw, its Grad-CAM for the top class, the top-k classes.

    Args:
        checkpoint: a ``.keras`` checkpoint; exports (SavedModel, TFLite,
            ONNX) keep no gradients and are refused.
        images: image files or folders; unreadable ones are skipped.
        output_dir: the folder for the PNGs, ``<image name>.cam.png``.
        top: classes listed under each picture.
        head: ``"main"``, ``"aux1"`` or ``"aux2"`` (those need a three-head
            checkpoint, as training writes).
        layer: the layer of the maps; the head's inception block by default.
        labels: a labels file overriding the stored class names.
        class_index: the class to map; each image's top class when ``None``.

    Returns:
        The paths written.
    """
    from keras_googlenet import augment, cam, predict
    from keras_googlenet import images as images_lib

    if not str(checkpoint).endswith(".keras"):
        raise ValueError(
            "Class activation maps need the gradients of a .keras checkpoint; exported models (SavedModel, "
            f".tflite, .onnx) have none. Received: model={str(checkpoint)!r}"
        )
    model, info = _load(checkpoint, labels)
    output_dir = pathlib.Path(output_dir)
    _make_writable_folder(output_dir)
    written = []
    for path in images_lib.image_paths(images):
        try:
            pixels = images_lib.load_image(path)
        except ValueError:
            continue  # unreadable: `predict` has named it already
        crop = np.asarray(augment.eval_transform(pixels, info.image_size), dtype=np.uint8)
        batch = images_lib.prepare_images([crop], info.image_size, info.variant, raw_pixels=info.raw_pixels)
        heatmaps, classes = cam.grad_cam(model, batch, class_index=class_index, head=head, layer=layer)
        probabilities = _head_probabilities(model, batch, head)
        ranked = predict.top_k(probabilities, info, k=min(top, probabilities.shape[-1]))[0]
        mapped = predict.top_k(np.eye(probabilities.shape[-1])[classes], info, k=1)[0][0][0]
        lines = [f"{head}: Grad-CAM of {mapped}"] + [f"{score:6.3f}  {name}" for name, score in ranked]
        target = output_dir / f"{pathlib.Path(path).name}.cam.png"
        overlay(crop, heatmaps[0], lines).save(target)
        written.append(str(target))
    return written


def _load(checkpoint, labels):
    """The whole checkpoint (all heads) and the `model_info.ModelInfo` of its main head."""
    import keras

    from keras_googlenet import model_info, task

    inference = model_info.load_checkpoint(checkpoint)  # checks the file, one-line errors
    info = model_info.checkpoint_info(inference, checkpoint=checkpoint, labels=labels)
    model = keras.saving.load_model(checkpoint, compile=False)
    return model if len(model.outputs) > 1 else task.inference_model(model), info


def _head_probabilities(model, batch, head):
    outputs = model.predict(batch, verbose=0)
    if isinstance(outputs, dict):
        return outputs[head]
    if isinstance(outputs, (list, tuple)):
        return outputs[list(model.output_names).index(head)]
    return outputs


def _make_writable_folder(folder):
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"The CAM output folder is an existing file. Received: cam={str(folder)!r}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"Cannot create the CAM output folder ({error.strerror}). Received: cam={str(folder)!r}") from None
    if not os.access(folder, os.W_OK):
        raise ValueError(f"The CAM output folder is not writable. Received: cam={str(folder)!r}")
