"""Exporting a trained GoogLeNet to SavedModel, TFLite and ONNX.

Every export starts from the single-output inference model (`inference_model`):
the paper discards the auxiliary classifiers at inference, and TFLite reorders
the outputs of a multi-output model (tensorflow#33303). The class names,
variant and input size travel with each export (see `predict.ModelInfo`).
"""

import json
import os
import pathlib
import tempfile

import numpy as np

from keras_googlenet import imagenet_utils
from keras_googlenet import predict as predict_lib

FORMATS = ("savedmodel", "tflite", "onnx")
QUANTIZATIONS = ("fp32", "fp16", "dynamic", "int8")
INT8_IO_TYPES = ("uint8", "int8")
# Opset 17 is supported by every onnxruntime since 1.13 and by tf2onnx 1.16+.
DEFAULT_OPSET = 17
SAVED_MODEL_DIR = "saved_model"
ONNX_FILE = "googlenet.onnx"
INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"
# TFLite's post-training quantization guide asks for ~100-500 representative samples.
CALIBRATION_IMAGES = 128


def export(
    checkpoint,
    output_dir,
    formats="all",
    quantize=("fp32",),
    calibration_data=None,
    int8_io="uint8",
    labels=None,
    opset=DEFAULT_OPSET,
):
    """Exports a `.keras` checkpoint to SavedModel, TFLite and ONNX.

    The checkpoint holds the weights training ended with (the EMA weights
    when training used EMA). The auxiliary heads are dropped.

    Args:
        checkpoint: a `.keras` file, with or without auxiliary heads.
        output_dir: the folder to write to; created if needed.
        formats: ``"all"`` or a sequence of ``"savedmodel"``, ``"tflite"``,
            ``"onnx"``.
        quantize: the TFLite variants to write, from ``"fp32"``, ``"fp16"``
            (float16 weights), ``"dynamic"`` (int8 weights) and ``"int8"``
            (full integer, needs ``calibration_data``).
        calibration_data: the representative images for ``"int8"``: an image
            folder, a dataset source such as ``"digits"`` (its training split,
            as the training pipeline reads it), or a float array of
            preprocessed images (n, size, size, 3).
        int8_io: the input and output type of the ``"int8"`` model,
            ``"uint8"`` or ``"int8"``.
        labels: a labels file or a sequence of class names; by default a
            ``labels.txt`` beside the checkpoint, or the ImageNet names for
            1000 classes.
        opset: the ONNX opset.

    Returns:
        A dict from export name (``"savedmodel"``, ``"tflite_fp32"``, ...,
        ``"onnx"``) to its path.
    """
    formats = _validate_choices("formats", FORMATS if formats == "all" else formats, FORMATS)
    quantize = _validate_choices("quantize", quantize, QUANTIZATIONS)
    _validate_int8_io(int8_io)
    _validate_opset(opset)
    model = predict_lib.load_checkpoint(checkpoint)
    info = predict_lib.checkpoint_info(model, checkpoint=checkpoint, labels=labels)
    calibration = None
    if "tflite" in formats and "int8" in quantize:
        calibration = representative_batches(calibration_data, info)
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    _write_sidecars(output_dir, info)

    paths = {}
    with tempfile.TemporaryDirectory() as scratch:
        saved_model_dir = output_dir / SAVED_MODEL_DIR if "savedmodel" in formats else pathlib.Path(scratch) / SAVED_MODEL_DIR
        if "savedmodel" in formats or "tflite" in formats:
            export_saved_model(model, saved_model_dir, info=info)
        if "savedmodel" in formats:
            paths["savedmodel"] = str(saved_model_dir)
        for kind in quantize if "tflite" in formats else ():
            path = output_dir / f"googlenet_{kind}.tflite"
            _convert_tflite(saved_model_dir, path, kind, calibration, int8_io)
            paths[f"tflite_{kind}"] = str(path)
    if "onnx" in formats:
        paths["onnx"] = export_onnx(model, output_dir / ONNX_FILE, info=info, opset=opset)
    return paths


def export_saved_model(model, path, info=None, raw_image_signature=True):
    """Writes a SavedModel with a float signature, a uint8 one and metadata.

    - ``serving_default``: ``images``, float32 (n, size, size, 3) already
      scaled by `preprocess_input`, to ``probabilities``.
    - ``serving_uint8``: ``images``, raw uint8 RGB (n, height, width, 3) of
      any size; resize, centre crop (`augment.eval_transform`) and
      `preprocess_input` run in the graph, so a server needs no Python.
    - ``metadata()``: ``class_names``, ``variant`` and ``image_size``.

    Args:
        model: a single-output Keras model (see `inference_model`).
        path: the SavedModel directory to write.
        info: a `predict.ModelInfo`; taken from the model when ``None``.
        raw_image_signature: whether to add ``serving_uint8``.

    Returns:
        The path, as a string.
    """
    import keras
    import tensorflow as tf

    _require_single_output(model, "export_saved_model")
    info = info or predict_lib.checkpoint_info(model)
    size = info.image_size
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default",
        lambda images: {OUTPUT_NAME: model(images, training=False)},
        input_signature=[tf.TensorSpec((None, size, size, 3), tf.float32, name=INPUT_NAME)],
    )
    if raw_image_signature:
        from keras_googlenet.augment import eval_transform

        def serve_uint8(images):
            # The crop offsets depend on the image size, so the static shape is lost.
            crops = tf.ensure_shape(eval_transform(images, size), (None, size, size, 3))
            scaled = imagenet_utils.preprocess_input(crops, variant=info.variant)
            return {OUTPUT_NAME: model(scaled, training=False)}

        archive.add_endpoint(
            "serving_uint8", serve_uint8, input_signature=[tf.TensorSpec((None, None, None, 3), tf.uint8, name=INPUT_NAME)]
        )
    archive.add_endpoint(
        "metadata",
        lambda: {
            "class_names": tf.constant(list(info.class_names or ()), dtype=tf.string),
            "variant": tf.constant(info.variant),
            "image_size": tf.constant(size),
        },
        input_signature=[],
    )
    archive.write_out(str(path), verbose=False)
    return str(path)


def export_tflite(model, path, quantize="fp32", calibration_data=None, int8_io="uint8", info=None):
    """Converts a single-output Keras model to one TFLite file.

    The model goes through a SavedModel first: `TFLiteConverter.from_keras_model`
    fails on Keras 3 models ("no attribute '_get_save_spec'", tensorflow#63867).
    A ``labels.txt`` and ``metadata.json``
    are written beside the file for `predict`.

    Args:
        model: a single-output Keras model (see `inference_model`).
        path: the `.tflite` file to write.
        quantize: ``"fp32"``, ``"fp16"``, ``"dynamic"`` or ``"int8"``.
        calibration_data: for ``"int8"``: see `export`.
        int8_io: for ``"int8"``: ``"uint8"`` or ``"int8"`` input and output.
        info: a `predict.ModelInfo`; taken from the model when ``None``.

    Returns:
        The path, as a string.
    """
    _require_single_output(model, "export_tflite")
    _validate_choices("quantize", [quantize], QUANTIZATIONS)
    _validate_int8_io(int8_io)
    info = info or predict_lib.checkpoint_info(model)
    calibration = representative_batches(calibration_data, info) if quantize == "int8" else None
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        saved_model_dir = export_saved_model(model, pathlib.Path(scratch) / SAVED_MODEL_DIR, info=info, raw_image_signature=False)
        _convert_tflite(saved_model_dir, path, quantize, calibration, int8_io)
    _write_sidecars(pathlib.Path(path).parent, info)
    return str(path)


def _convert_tflite(saved_model_dir, path, quantize, calibration, int8_io):
    import tensorflow as tf

    # Only the float signature: the uint8 one crops at offsets that depend on
    # the image size, and a mobile app resizes with its own image library.
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=["serving_default"])
    if quantize != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        converter.representative_dataset = lambda: ([batch[i : i + 1]] for batch in calibration for i in range(len(batch)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = getattr(tf, int8_io)
    pathlib.Path(path).write_bytes(converter.convert())
    return str(path)


def export_onnx(model, path, info=None, opset=DEFAULT_OPSET):
    """Converts a single-output Keras model to ONNX through tf2onnx.

    Uses `model.export(format="onnx")` (tf2onnx's `from_function` inside);
    tf2onnx's `from_keras` is broken on Keras 3. The `predict.ModelInfo` is
    stored as JSON in the ``keras_googlenet`` entry of ``metadata_props``.

    Returns:
        The path, as a string.
    """
    import onnx
    import tensorflow as tf

    _require_single_output(model, "export_onnx")
    _validate_opset(opset)
    info = info or predict_lib.checkpoint_info(model)
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    size = info.image_size
    model.export(
        str(path),
        format="onnx",
        verbose=False,
        opset_version=opset,
        input_signature=[tf.TensorSpec((None, size, size, 3), tf.float32, name=INPUT_NAME)],
    )
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, {"keras_googlenet": json.dumps(info.to_json())})
    onnx.save(proto, str(path))
    return str(path)


def representative_batches(calibration_data, info):
    """Float batches of preprocessed images for int8 calibration, checked.

    Accepts an array (n, size, size, 3) of preprocessed images, or what
    `predict.read_images` reads (an image folder, ``"digits"`` or another
    dataset source, whose first `CALIBRATION_IMAGES` training images are used).
    """
    if calibration_data is None:
        raise ValueError("int8 quantization needs calibration_data (an image folder or an array). Received: calibration_data=None")
    if isinstance(calibration_data, (str, os.PathLike)):
        raw = predict_lib.read_images(calibration_data, split="train", limit=CALIBRATION_IMAGES)
        return [predict_lib.prepare_images(raw, info.image_size, info.variant)]
    batch = np.asarray(calibration_data)
    expected = (info.image_size, info.image_size, 3)
    if batch.ndim != 4 or batch.shape[1:] != expected or batch.shape[0] < 1:
        raise ValueError(
            f"calibration_data must be preprocessed images of shape (n, {', '.join(map(str, expected))}). "
            f"Received: calibration_data.shape={batch.shape}"
        )
    return [batch.astype(np.float32)]


def _write_sidecars(folder, info):
    """labels.txt and metadata.json, read by `predict` beside a .tflite file."""
    (pathlib.Path(folder) / predict_lib.METADATA_FILE).write_text(json.dumps(info.to_json(), indent=1) + "\n")
    if info.class_names:
        predict_lib.write_labels(pathlib.Path(folder) / predict_lib.LABELS_FILE, info.class_names)


def _require_single_output(model, function):
    if len(model.outputs) != 1:
        raise ValueError(
            f"{function} needs a single-output model; pass keras_googlenet.inference_model(model) to drop the "
            f"auxiliary heads. Received: model.output_names={model.output_names}"
        )


def _validate_choices(argument, values, allowed):
    values = [values] if isinstance(values, str) else list(values)
    unknown = [value for value in values if value not in allowed]
    if unknown or not values:
        raise ValueError(f"`{argument}` must be from {list(allowed)}. Received: {argument}={values!r}")
    return values


def _validate_int8_io(int8_io):
    if int8_io not in INT8_IO_TYPES:
        raise ValueError(f"`int8_io` must be one of {list(INT8_IO_TYPES)}. Received: int8_io={int8_io!r}")


def _validate_opset(opset):
    # tf2onnx 1.16+ converts from opset 13 on.
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 13:
        raise ValueError(f"The `opset` argument must be an int >= 13. Received: opset={opset!r}")
