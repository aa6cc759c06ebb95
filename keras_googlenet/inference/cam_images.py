"""Grad-CAM pictures: the crop the model classified beside its heatmap, its top classes beneath.

The crop, the scores and the map come from one forward pass over exactly the
pixels `predict` classifies (`images.crop_images`), so the picture and the
printed scores agree.
"""

import math
import os
import pathlib

import numpy as np

# How much of the heatmap's colour covers the photo.
OVERLAY_ALPHA = 0.45
# Each panel is drawn at least this wide, by a whole factor (nearest
# neighbour: every pixel the model saw stays a visible square).
MIN_PANEL_SIZE = 256
FONT_SIZE = 18
MARGIN = 8


def overlay(pixels, heatmap, lines=()):
    """An RGB picture: ``pixels`` (h, w, 3) uint8, beside them under ``heatmap`` (h, w) in [0, 1], ``lines`` of text below.

    Returns:
        A `PIL.Image.Image`, each panel enlarged by a whole factor to at least
        `MIN_PANEL_SIZE` pixels.
    """
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    pixels = np.asarray(pixels, dtype=np.uint8)
    colours = matplotlib.colormaps["jet"](np.asarray(heatmap))[..., :3] * 255.0
    blended = (1.0 - OVERLAY_ALPHA) * pixels.astype(np.float32) + OVERLAY_ALPHA * colours
    height, width = pixels.shape[:2]
    scale = max(1, math.ceil(MIN_PANEL_SIZE / min(height, width)))
    panels = [Image.fromarray(array).resize((width * scale, height * scale), Image.NEAREST)
              for array in (pixels, np.clip(np.round(blended), 0, 255).astype(np.uint8))]
    font = ImageFont.load_default(size=FONT_SIZE)
    line_height = FONT_SIZE + 6
    panel_width, panel_height = panels[0].size
    picture = Image.new("RGB", (2 * panel_width + MARGIN, panel_height + line_height * len(lines) + MARGIN), "white")
    picture.paste(panels[0], (0, 0))
    picture.paste(panels[1], (panel_width + MARGIN, 0))
    draw = ImageDraw.Draw(picture)
    for i, line in enumerate(lines):
        draw.text((MARGIN, panel_height + MARGIN // 2 + i * line_height), line, fill="black", font=font)
    return picture


def write_cam_images(checkpoint, images, output_dir, top=5, head="main", layer=None, labels=None, class_index=None):
    """Writes one PNG per image: the crop the model classified, its Grad-CAM, the top-k classes.

    The scores written are those `predict` prints for the same file and
    checkpoint (the ``main`` head; ``head``'s own for an auxiliary head).

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
    from keras_googlenet.data import images as images_lib

    if not str(checkpoint).endswith(".keras"):
        raise ValueError(
            "Class activation maps need the gradients of a .keras checkpoint; exported models (SavedModel, "
            f".tflite, .onnx) have none. Received: model={str(checkpoint)!r}"
        )
    model, info = _load(checkpoint, labels)
    output_dir = pathlib.Path(output_dir)
    _make_writable_folder(output_dir)
    written = []
    for chunk in images_lib.batches(images_lib.image_paths(images)):
        readable = _readable(chunk)
        if not readable:
            continue
        pictures = cam_pictures(model, info, [pixels for _, pixels in readable], top, head, layer, class_index)
        for (path, _), (crop, heatmap, lines) in zip(readable, pictures):
            target = output_dir / f"{pathlib.Path(path).name}.cam.png"
            overlay(crop, heatmap, lines).save(target)
            written.append(str(target))
    return written


def cam_pictures(model, info, pixels, top=5, head="main", layer=None, class_index=None):
    """What each picture shows, from one forward pass per image: ``(crop, heatmap, lines)``.

    ``crop`` is the uint8 picture of the float crop the model classified
    (rounded only for display), ``lines`` the caption: the mapped class and
    the top classes with their scores to 4 decimals, as `predict` prints.
    """
    import keras

    from keras_googlenet.inference import cam, predict
    from keras_googlenet.model import imagenet_utils
    from keras_googlenet.data import images as images_lib

    crops = images_lib.crop_images(pixels, info.image_size)
    batch = crops if info.raw_pixels else np.asarray(imagenet_utils.preprocess_input(crops, variant=info.variant))
    heatmaps, classes, logits = cam.grad_cam_with_logits(model, batch, class_index=class_index, head=head, layer=layer)
    # The heads end in a float32 softmax over these logits (`model.GoogLeNet`).
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(keras.ops.convert_to_tensor(logits, "float32")))
    ranked = predict.top_k(probabilities, info, k=min(top, probabilities.shape[-1]))
    mapped = predict.top_k(np.eye(probabilities.shape[-1])[classes], info, k=1)
    for i, crop in enumerate(crops):
        lines = [f"{head}: Grad-CAM of {mapped[i][0][0]}"] + [f"{score:8.4f}  {name}" for name, score in ranked[i]]
        yield np.clip(np.round(crop), 0, 255).astype(np.uint8), heatmaps[i], lines


def _readable(paths):
    from keras_googlenet.data import images as images_lib

    readable = []
    for path in paths:
        try:
            readable.append((path, images_lib.load_image(path)))
        except ValueError:
            continue  # unreadable: `predict` has named it already
    return readable


def _load(checkpoint, labels):
    """The checkpoint as saved (all heads), loaded once, and the `model_info.ModelInfo` of its main head."""
    from keras_googlenet.artifacts import model_info
    from keras_googlenet.model import task

    model = model_info.load_keras_file(checkpoint)  # checks the file, one-line errors
    info = model_info.checkpoint_info(task.inference_model(model), checkpoint=checkpoint, labels=labels)
    return model, info


def _make_writable_folder(folder):
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"The CAM output folder is an existing file. Received: cam={str(folder)!r}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"Cannot create the CAM output folder ({error.strerror}). Received: cam={str(folder)!r}") from None
    if not os.access(folder, os.W_OK):
        raise ValueError(f"The CAM output folder is not writable. Received: cam={str(folder)!r}")
