"""Exporting a trained GoogLeNet to SavedModel, TFLite and ONNX.

Every export starts from the single-output inference model (`inference_model`):
the paper discards the auxiliary classifiers at inference, and TFLite reorders
the outputs of a multi-output model (tensorflow#33303). Every export takes raw
RGB pixels in [0, 255]: the variant's scaling (`layers.Preprocessing`) is the
first layer of the exported graph, so a mobile client (MediaPipe, the TFLite
Task Library) feeds camera pixels as they are. The class names, variant, input
size and that input convention (``raw_pixels``) travel with each export (see
`model_info.ModelInfo`); a `.tflite` also carries TFLite metadata and its labels
(`tflite_metadata`).
"""

import contextlib
import json
import os
import pathlib
import re
import shutil
import tempfile

import numpy as np

from keras_googlenet.data import images as images_lib
from keras_googlenet import native_stderr, storage
from keras_googlenet.storage import disk
from keras_googlenet.artifacts import model_info, tflite_metadata
from keras_googlenet.model import scaling
from keras_googlenet.model.architecture import STEM_CONV1 as CONV1  # where the RGB to BGR swap folds in
from keras_googlenet.defaults import (  # noqa: F401 (re-exported)
    DEFAULT_OPSET,
    EXPORT_FORMATS,
    FORMATS,
    INT8_IO_TYPES,
    KERASHUB_FORMAT,
    QUANTIZATIONS,
)

SAVED_MODEL_DIR = "saved_model"
ONNX_FILE = "googlenet.onnx"
INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"
# TFLite's post-training quantization guide asks for ~100-500 representative samples.
CALIBRATION_IMAGES = 128
METADATA_KEYS = ("name", "description", "version", "author", "license")
# The uint8 input of an int8 model takes pixels as they are (x = q); an int8
# input takes q = x - 128. A float32 input is quantized by the graph's first op.
EXACT_INPUT_QUANTIZATION = {"uint8": (1.0, 0), "int8": (1.0, -128)}


def export(
    checkpoint,
    output_dir,
    formats="all",
    quantize=("fp32",),
    calibration_data=None,
    int8_io="uint8",
    labels=None,
    opset=DEFAULT_OPSET,
    metadata=None,
):
    """Exports a `.keras` checkpoint to SavedModel, TFLite and ONNX.

    The checkpoint holds the weights training ended with (the EMA weights
    when training used EMA). The auxiliary heads are dropped, and the
    variant's input scaling becomes the first layer: every export takes raw
    RGB pixels in [0, 255].

    Args:
        checkpoint: a `.keras` file, with or without auxiliary heads.
        output_dir: the folder to write to; created if needed.
        formats: ``"all"`` (SavedModel, TFLite and ONNX) or a sequence of
            ``"savedmodel"``, ``"tflite"``, ``"onnx"`` and ``"kerashub"``
            (a KerasHub classifier preset in ``output_dir/kerashub``, see
            `kerashub_preset`; needs ``keras-googlenet[kerashub]``).
        quantize: the TFLite variants to write, from ``"fp32"``, ``"fp16"``
            (float16 weights), ``"dynamic"`` (int8 weights) and ``"int8"``
            (full integer, needs ``calibration_data``; its input scaling is
            folded into conv1 first, see `int8_input`, and its kernels are
            rounded and its biases corrected for that, see `int8_bias`).
        calibration_data: the representative images for ``"int8"``: an image
            folder, a dataset source such as ``"digits"`` (its training split,
            as the training pipeline reads it), or an array of raw RGB crops
            in [0, 255] (n, size, size, 3).
        int8_io: the input type of the ``"int8"`` model: ``"uint8"`` (pixels
            as they are; what MediaPipe takes), ``"int8"`` or ``"float32"``
            (pixels in [0, 255] as floats, quantized by the graph's first op:
            the int8 file that MediaPipe's web GPU delegate runs right), or a
            sequence of them: one calibration and correction, one file each.
            The first is ``googlenet_int8.tflite``, the others
            ``googlenet_int8_<type>_input.tflite`` (`int8_file_name`). The
            output is float32 probabilities either way: the softmax runs in
            float.
        labels: a UTF-8 labels file or a sequence of class names; by default
            a ``labels.txt`` beside the checkpoint, or the ImageNet names for
            1000 classes.
        opset: the ONNX opset.
        metadata: the TFLite metadata's ``name``, ``description``,
            ``version``, ``author`` and ``license`` (a dict; each optional).

    Returns:
        A dict from export name (``"savedmodel"``, ``"tflite_fp32"``, ...,
        ``"tflite_int8"``, ``"tflite_int8_float32_input"``, ``"onnx"``,
        ``"kerashub"``) to its path.
    """
    formats = _validate_choices("formats", FORMATS if formats == "all" else formats, EXPORT_FORMATS)
    _require_kerashub(formats)
    quantize = _validate_choices("quantize", quantize, QUANTIZATIONS)
    int8_ios = _int8_io_types(int8_io)
    _validate_opset(opset)
    _validate_metadata(metadata)
    beside = pathlib.Path(checkpoint).parent / model_info.LABELS_FILE
    labels = _read_labels_argument(beside if labels is None and beside.is_file() else labels)
    _check_output_dir(output_dir, "output_dir")
    model = model_info.load_checkpoint(checkpoint)
    info = model_info.checkpoint_info(model, checkpoint=checkpoint, labels=labels)
    calibration = None
    if "tflite" in formats and "int8" in quantize:
        calibration = representative_batches(calibration_data, info)
    output_dir = _prepare_output_dir(output_dir, "output_dir")
    with disk.named_if_full(output_dir, "the exports", _bytes_needed(model, formats, quantize, int8_ios)):
        return _write_exports(model, info, checkpoint, output_dir, formats, quantize, int8_ios, calibration, metadata, opset)


# Each file's size as a share of the float32 weights': a SavedModel, a float32
# TFLite, ONNX and a KerasHub preset hold them whole, float16 halves and int8
# (dynamic and full integer) quarters them.
_WEIGHT_SHARES = {"savedmodel": 1.0, "onnx": 1.0, KERASHUB_FORMAT: 1.0, "fp32": 1.0, "fp16": 0.5, "dynamic": 0.25, "int8": 0.25}


def _bytes_needed(model, formats, quantize, int8_ios):
    """About how many bytes the exports will take, from the model's weights."""
    shares = [_WEIGHT_SHARES[name] for name in formats if name != "tflite"]
    if "tflite" in formats:
        shares += [_WEIGHT_SHARES[kind] * (len(int8_ios) if kind == "int8" else 1) for kind in quantize]
    return int(disk.variables_size(model) * sum(shares))


def _write_exports(model, info, checkpoint, output_dir, formats, quantize, int8_ios, calibration, metadata, opset):
    paths = {}
    if KERASHUB_FORMAT in formats:
        from keras_googlenet.export import kerashub_preset

        training = kerashub_preset.training_summary(checkpoint)
        paths[KERASHUB_FORMAT] = kerashub_preset.write_preset(model, info, output_dir / KERASHUB_FORMAT, training=training)
    inference, model = model, with_preprocessing(model, info.variant)

    with tempfile.TemporaryDirectory() as scratch:
        saved_model_dir = output_dir / SAVED_MODEL_DIR if "savedmodel" in formats else pathlib.Path(scratch) / SAVED_MODEL_DIR
        if "savedmodel" in formats or "tflite" in formats:
            export_saved_model(model, saved_model_dir, info=info)
        if "savedmodel" in formats:
            paths["savedmodel"] = str(saved_model_dir)
        in_float = float_layers(model)
        for kind in quantize if "tflite" in formats else ():
            if kind != "int8":
                path = output_dir / f"googlenet_{kind}.tflite"
                paths[f"tflite_{kind}"] = _convert_tflite(saved_model_dir, path, kind, None, (), info, metadata)
                continue
            paths.update(_export_int8(inference, calibration, int8_ios, output_dir, scratch, info, metadata, in_float))
    if "onnx" in formats:
        paths["onnx"] = export_onnx(model, output_dir / ONNX_FILE, info=info, opset=opset)
    return paths


def _export_int8(model, calibration, int8_ios, output_dir, scratch, info, metadata, in_float):
    """The int8 files of `export`, one per input type, from one corrected model and one calibration: by export name."""
    # Its own SavedModel: the float files keep the float kernels.
    corrected = rounding_corrected(model, calibration, info)
    source = export_saved_model(corrected, pathlib.Path(scratch) / "int8", info=info, raw_image_signature=False)
    names = [int8_file_name(io, first=i == 0) for i, io in enumerate(int8_ios)]
    written = _convert_tflite(source, [output_dir / name for name in names], "int8", calibration, int8_ios, info, metadata, in_float)
    return {f"tflite_{pathlib.Path(name).stem.split('_', 1)[1]}": path for name, path in zip(names, written)}


def with_preprocessing(model, variant):
    """The model every export runs: raw RGB pixels in, the variant's scaling first, no GATHER.

    `layers.Preprocessing` is added unless the model has it. Where the
    variant swaps RGB to BGR ("paper"), the swap is folded into conv1
    (`fold_channel_swap`): the swap would be a GATHER, which MediaPipe's GPU
    delegate refuses. A model without GoogLeNet's conv1 keeps the swap.
    Calling it on its own result returns that result.
    """
    import keras

    from keras_googlenet.model.layers import MeanPadding, Preprocessing

    if any(isinstance(layer, MeanPadding) for layer in model.layers):
        return model  # its conv1 scales raw pixels (`int8_input`)
    layer = next((layer for layer in model.layers if isinstance(layer, Preprocessing)), None)
    if layer is not None and (layer.keep_rgb or not scaling.input_scaling(layer.variant).swaps_channels):
        return model
    variant = variant if layer is None else layer.variant
    if scaling.input_scaling(variant).swaps_channels and CONV1 in {each.name for each in model.layers}:
        return fold_channel_swap(model, variant)
    if layer is not None:
        return model
    pixels = keras.Input(model.input_shape[1:], name=INPUT_NAME)
    return keras.Model(pixels, model(Preprocessing(variant, name="preprocessing")(pixels)), name=model.name)


def fold_channel_swap(model, variant):
    """A copy of a GoogLeNet that takes RGB where it took BGR, after `Preprocessing(keep_rgb=True)`.

    The copy's conv1 kernel has its input channels reversed, and the scaling
    keeps RGB order with the mean and std reversed to match. That is exact:
    the swap only renames the channels that conv1 sums over, and conv1's zero
    padding comes after the scaling, where a padded zero is zero in either
    order. ``model`` itself is left as it is.
    """
    import keras

    from keras_googlenet.model import googlenet as model_lib
    from keras_googlenet.model.layers import Preprocessing

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, Preprocessing):
            config["keep_rgb"] = True
        return layer.__class__.from_config(config)

    copy = model_lib.clone_with_weights(model, clone)
    conv1 = copy.get_layer(CONV1)
    # Kernel (height, width, input channels, filters): what multiplied B now multiplies R.
    conv1.kernel.assign(np.flip(keras.ops.convert_to_numpy(conv1.kernel), axis=2))
    if any(isinstance(layer, Preprocessing) for layer in copy.layers):
        return copy
    pixels = keras.Input(model.input_shape[1:], name=INPUT_NAME)
    scaled = Preprocessing(variant, keep_rgb=True, name="preprocessing")(pixels)
    return keras.Model(pixels, copy(scaled), name=model.name)


def export_saved_model(model, path, info=None, raw_image_signature=True):
    """Writes a SavedModel with a float signature, a uint8 one and metadata.

    - ``serving_default``: ``images``, float32 (n, size, size, 3) raw RGB
      pixels in [0, 255], to ``probabilities``.
    - ``serving_uint8``: ``images``, raw uint8 RGB (n, height, width, 3) of
      any size; resize and centre crop (`augment.eval_transform`) run in the
      graph, so a server needs no Python.
    - ``metadata()``: ``class_names``, ``variant``, ``image_size`` and
      ``raw_pixels`` (True).

    Args:
        model: a single-output Keras model (see `inference_model`); the
            variant's `layers.Preprocessing` is added unless it has it.
        path: the SavedModel directory to write; replaced when complete.
        info: a `model_info.ModelInfo`; taken from the model when ``None``.
        raw_image_signature: whether to add ``serving_uint8``.

    Returns:
        The path, as a string.
    """
    import keras
    import tensorflow as tf

    _require_single_output(model, "export_saved_model")
    info = info or model_info.checkpoint_info(model)
    model = with_preprocessing(model, info.variant)
    _prepare_output_dir(pathlib.Path(path).parent, "path")
    size = info.image_size
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default",
        lambda images: {OUTPUT_NAME: model(images, training=False)},
        input_signature=[tf.TensorSpec((None, size, size, 3), tf.float32, name=INPUT_NAME)],
    )
    if raw_image_signature:
        from keras_googlenet.data.augment import eval_transform

        def serve_uint8(images):
            # The crop offsets depend on the image size, so the static shape is lost.
            crops = tf.ensure_shape(eval_transform(images, size), (None, size, size, 3))
            return {OUTPUT_NAME: model(crops, training=False)}

        archive.add_endpoint(
            "serving_uint8", serve_uint8, input_signature=[tf.TensorSpec((None, None, None, 3), tf.uint8, name=INPUT_NAME)]
        )
    archive.add_endpoint(
        "metadata",
        lambda: {
            "class_names": tf.constant(list(info.class_names or ()), dtype=tf.string),
            "variant": tf.constant(info.variant),
            "image_size": tf.constant(size),
            "raw_pixels": tf.constant(True),
        },
        input_signature=[],
    )
    with _atomic_path(path) as scratch:
        archive.write_out(str(scratch), verbose=False)
    return str(path)


def export_tflite(model, path, quantize="fp32", calibration_data=None, int8_io="uint8", info=None, metadata=None):
    """Converts a single-output Keras model to one TFLite file with TFLite metadata.

    The model goes through a SavedModel first: `TFLiteConverter.from_keras_model`
    fails on Keras 3 models ("no attribute '_get_save_spec'", tensorflow#63867).
    The file takes raw RGB pixels and carries TFLite metadata (normalization,
    labels), so MediaPipe's ImageClassifier runs it as it is.

    Args:
        model: a single-output Keras model (see `inference_model`).
        path: the `.tflite` file to write.
        quantize: ``"fp32"``, ``"fp16"``, ``"dynamic"`` or ``"int8"`` (with
            the conv1 fold of `int8_input` and the bias correction of
            `int8_bias` for the model's own layers; a nested model's are
            converted as they are).
        calibration_data: for ``"int8"``: see `export`.
        int8_io: for ``"int8"``: ``"uint8"``, ``"int8"`` or ``"float32"`` input.
        info: a `model_info.ModelInfo`; taken from the model when ``None``.
        metadata: see `export`.

    Returns:
        The path, as a string.
    """
    _require_single_output(model, "export_tflite")
    _validate_choices("quantize", [quantize], QUANTIZATIONS)
    _int8_io_types(int8_io, single=True)
    _validate_metadata(metadata)
    info = info or model_info.checkpoint_info(model)
    if info.class_names is not None:
        _validate_class_names(info.class_names)
    calibration = representative_batches(calibration_data, info) if quantize == "int8" else None
    _prepare_output_dir(pathlib.Path(path).parent, "path")
    with tempfile.TemporaryDirectory() as scratch:
        model = rounding_corrected(model, calibration, info) if quantize == "int8" else model
        saved_model_dir = export_saved_model(model, pathlib.Path(scratch) / SAVED_MODEL_DIR, info=info, raw_image_signature=False)
        if quantize == "int8":
            (path,) = _convert_tflite(saved_model_dir, [path], quantize, calibration, (int8_io,), info, metadata, float_layers(model))
            return path
        return _convert_tflite(saved_model_dir, path, quantize, None, (), info, metadata)


def int8_file_name(int8_io, first=True):
    """The file `export` writes the int8 model with input type ``int8_io`` to: ``googlenet_int8.tflite`` for the first type asked for."""
    return "googlenet_int8.tflite" if first else f"googlenet_int8_{int8_io}_input.tflite"


def rounding_corrected(model, calibration, info):
    """The model the int8 file is converted from: ``model`` with its scaling folded into conv1 (`int8_input`), its kernels rounded to int8 and its biases corrected on the calibration crops (`int8_bias`)."""
    from keras_googlenet.export import int8_bias, int8_input
    from keras_googlenet.model import googlenet as model_lib

    crops = calibration[0]  # the representative crops, without the [0, 255] extremes
    folded = int8_input.raw_pixel_conv1(model, info.variant)
    if folded is not None:
        model = folded
    inputs = crops if model_lib.includes_preprocessing(model) else scaling.scale_pixels(crops, info.variant)
    return int8_bias.corrected_for_int8(model, inputs)


def _convert_tflite(saved_model_dir, path, quantize, calibration, int8_ios, info, metadata, float_layers=()):
    """Writes ``path`` (for ``"int8"``: a list of paths, one per input type of ``int8_ios``, from one calibration); returns what it wrote."""
    import tensorflow as tf

    # Only the float signature: the uint8 one crops at offsets that depend on
    # the image size, and a mobile app resizes with its own image library.
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=["serving_default"])
    if quantize != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    with native_stderr.quiet():  # the calibrator prints "fully_quantize: 0, ..."
        if quantize != "int8":
            return _write_tflite(converter.convert(), path, quantize, info, metadata)
        flatbuffers = _convert_int8(converter, calibration, int8_ios, float_layers)
    for int8_io, flatbuffer in zip(int8_ios, flatbuffers):
        if int8_io in EXACT_INPUT_QUANTIZATION:
            _check_input_quantization(flatbuffer, int8_io)
    return [_write_tflite(flatbuffer, one, quantize, info, metadata) for one, flatbuffer in zip(path, flatbuffers)]


def _write_tflite(flatbuffer, path, quantize, info, metadata):
    """Writes ``flatbuffer`` to ``path`` with its TFLite metadata and the model info; returns the path as a string."""
    # Every file's output is float32 probabilities, the int8 one's included.
    model_metadata = tflite_metadata.classifier_metadata(info.class_names, **_metadata_fields(info, quantize, metadata))
    files = {tflite_metadata.MODEL_INFO_FILE: _info_json(info)}
    if info.class_names:
        files[tflite_metadata.LABELS_FILE] = tflite_metadata.labels_text(info.class_names)
    with _atomic_path(path) as scratch:
        scratch.write_bytes(tflite_metadata.add_metadata(flatbuffer, model_metadata, files))
    return str(path)


def float_layers(model):
    """The names of the layers that the int8 file keeps in float: the paper variant's LRNs and the classifier.

    - An LRN, quantized, is a chain of int8 elementwise ops (squares, window
      sums, a power and a division) whose squares round to zero below 7 and
      whose division was off by 3 quantization steps, 10x any convolution's
      error (`tf.lite.experimental.QuantizationDebugger`). In float, the
      paper digits model's int8 top-5 matched Keras on 85-89% of the
      held-out digits, not 73%, and its batch-1 latency at 224 px fell from
      34.9 to 9.4 ms: the integer chain ran on reference kernels.
    - The classifier (every `Dense`; GoogLeNet's inference graph has one)
      gives the logits that the float softmax ranks. Integer, they had a step
      of about 0.1: on the README main job's checkpoint, 4 of the 359
      validation digits changed top-1 class (98.9%, under `verify`'s 99%);
      with a float classifier 2 did (99.4%), and the top-5 was identical on
      93.3%, not 90.0%. It costs 3 bytes per weight: about 3 MiB at 1000
      classes, a few KiB for a fine-tuned head.
    """
    import keras

    from keras_googlenet.model.layers import LocalResponseNormalization

    found, stack = [], [model]
    while stack:
        layer = stack.pop()
        found += [layer.name] if isinstance(layer, (LocalResponseNormalization, keras.layers.Dense)) else []
        stack += getattr(layer, "layers", [])
    return tuple(sorted(found))


def _convert_int8(converter, calibration, int8_ios, float_layers=()):
    """Full-integer conversions with the softmax and ``float_layers`` (see `float_layers`) in float, one per input type of ``int8_ios`` from one calibration: integer pixels in, float32 probabilities out.

    A quantized softmax output has a step of 1/256: small probabilities round
    to the same value, and the held-out digits' top-5 equalled Keras' 4.5%
    ("bn") and 16.1% ("paper") of the time. Here the logits are dequantized
    and the softmax runs in float. The converter has no public option to keep
    an op in float; the quantizer's denylists are what
    `tf.lite.experimental.QuantizationDebugger` uses: calibrate, then quantize.
    """
    import tensorflow as tf
    from tensorflow.lite.python import convert

    converter.representative_dataset = representative_dataset(calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter._experimental_calibrate_only = True
    calibrated = converter.convert()
    denylisted = _tensors_of_layers(calibrated, float_layers) or None
    return [
        convert.mlir_quantize(
            calibrated, input_data_type=getattr(tf, int8_io), output_data_type=tf.float32, denylisted_ops=["SOFTMAX"],
            denylisted_nodes=denylisted,
        )
        for int8_io in int8_ios
    ]


def representative_dataset(calibration):
    """The converter's ``representative_dataset``: each image of `representative_batches`' batches, one at a time."""
    return lambda: ([batch[i : i + 1]] for batch in calibration for i in range(len(batch)))


def _tensors_of_layers(flatbuffer, layer_names):
    """The tensors a converted graph computes inside the named Keras layers (a node's name is its output tensor's)."""
    if not layer_names:
        return []
    from ai_edge_litert.interpreter import Interpreter

    # Keras names a layer's ops "<model>/<layer>_1/<op>" in the graph it traces.
    scope = re.compile("/(" + "|".join(map(re.escape, layer_names)) + r")(_\d+)?/")
    return [tensor["name"] for tensor in Interpreter(model_content=flatbuffer).get_tensor_details() if scope.search(tensor["name"])]


def _check_input_quantization(flatbuffer, int8_io):
    """Raises unless the integer input maps pixels exactly (see `EXACT_INPUT_QUANTIZATION`)."""
    from ai_edge_litert.interpreter import Interpreter

    scale, zero_point = Interpreter(model_content=flatbuffer).get_input_details()[0]["quantization"]
    expected = EXACT_INPUT_QUANTIZATION[int8_io]
    if abs(scale - expected[0]) > 1e-6 or zero_point != expected[1]:
        raise ValueError(
            f"The int8 model's {int8_io} input has scale {scale} and zero point {zero_point}, not {expected[0]} and "
            f"{expected[1]}: pixels would not map exactly. Received: int8_io={int8_io!r}"
        )


def _metadata_fields(info, quantize, metadata):
    classes = f"{len(info.class_names)} classes" if info.class_names else "class probabilities"
    fields = {
        "name": f"GoogLeNet ({info.variant})",
        "description": (
            f"GoogLeNet (Inception v1, {info.variant} variant), {quantize}: {classes} from RGB pixels in "
            f"[0, 255], centre-cropped to {info.image_size} x {info.image_size}."
        ),
    }
    fields.update({key: value for key, value in (metadata or {}).items() if value})
    return fields


def _info_json(info):
    return (json.dumps({**info.to_json(), "raw_pixels": True}, indent=1) + "\n").encode("utf-8")


def export_onnx(model, path, info=None, opset=DEFAULT_OPSET):
    """Converts a single-output Keras model to ONNX through tf2onnx.

    Uses `model.export(format="onnx")` (tf2onnx's `from_function` inside);
    tf2onnx's `from_keras` is broken on Keras 3. The input is raw RGB pixels
    (float32, [0, 255]). The `model_info.ModelInfo`, with ``raw_pixels``, is
    stored as JSON in the ``keras_googlenet`` entry of ``metadata_props``.

    Returns:
        The path, as a string.
    """
    import onnx
    import tensorflow as tf

    _require_single_output(model, "export_onnx")
    _validate_opset(opset)
    info = info or model_info.checkpoint_info(model)
    model = with_preprocessing(model, info.variant)
    _prepare_output_dir(pathlib.Path(path).parent, "path")
    size = info.image_size
    with _atomic_path(path) as scratch, native_stderr.quiet():  # tf2onnx's `np.object` FutureWarning
        model.export(
            str(scratch),
            format="onnx",
            verbose=False,
            opset_version=opset,
            input_signature=[tf.TensorSpec((None, size, size, 3), tf.float32, name=INPUT_NAME)],
        )
        proto = onnx.load(str(scratch))
        onnx.helper.set_model_props(proto, {"keras_googlenet": _info_json(info).decode("utf-8")})
        onnx.save(proto, str(scratch))
    return str(path)


def representative_batches(calibration_data, info):
    """Float batches of raw RGB crops in [0, 255] for int8 calibration, checked.

    Accepts an array (n, size, size, 3) of crops, or what
    `images.read_images` reads (an image folder, ``"digits"`` or another
    dataset source, whose first `CALIBRATION_IMAGES` training images are
    centre-cropped). The first crop is repeated with one pixel at 0 and one
    at 255, so the calibrated input range is exactly [0, 255].
    """
    if calibration_data is None:
        raise ValueError("int8 quantization needs calibration_data (an image folder or an array). Received: calibration_data=None")
    if isinstance(calibration_data, (str, os.PathLike)):
        raw = images_lib.read_images(calibration_data, split="train", limit=CALIBRATION_IMAGES)
        batch = images_lib.prepare_images(raw, info.image_size, info.variant, raw_pixels=True)
    else:
        batch = np.asarray(calibration_data)
        expected = (info.image_size, info.image_size, 3)
        if batch.ndim != 4 or batch.shape[1:] != expected or batch.shape[0] < 1:
            raise ValueError(
                f"calibration_data must be RGB crops of shape (n, {', '.join(map(str, expected))}). "
                f"Received: calibration_data.shape={batch.shape}"
            )
        # Resized crops overshoot [0, 255] by a fraction of a pixel (bicubic,
        # antialiasing): allow that much, refuse what preprocess_input makes.
        if batch.min() < -0.5 or batch.max() > 255.5 or batch.max() <= 1:
            raise ValueError(
                "calibration_data must be raw RGB pixels in [0, 255], not scaled by preprocess_input. "
                f"Received: calibration_data in [{batch.min():g}, {batch.max():g}]"
            )
        batch = np.clip(batch, 0.0, 255.0)
    extremes = np.array(batch[:1], dtype=np.float32)
    extremes[0, 0, 0], extremes[0, 0, 1] = 0.0, 255.0
    return [np.asarray(batch, dtype=np.float32), extremes]


@contextlib.contextmanager
def _atomic_path(path):
    """A temporary path in ``path``'s folder that replaces ``path`` if the block succeeds.

    A failed or interrupted export leaves the previous file (or nothing),
    never half of one.
    """
    path = pathlib.Path(path)
    scratch = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent)) / path.name
    try:
        yield scratch
        if path.is_dir() and scratch.is_dir():
            shutil.rmtree(path)
        os.replace(scratch, path)
    finally:
        shutil.rmtree(scratch.parent, ignore_errors=True)


def _prepare_output_dir(folder, argument):
    """Checks that files can be written in ``folder`` (see `_check_output_dir`), then creates it."""
    folder = _check_output_dir(folder, argument)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"`{argument}` cannot be created ({error.strerror}). Received: {argument}={str(folder)!r}") from None
    return folder


def _check_output_dir(folder, argument):
    """Raises unless ``folder`` is, or can be created as, a writable folder; creates nothing."""
    storage.check_local(folder, argument)
    folder = pathlib.Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"`{argument}` must be a folder, but it is an existing file. Received: {argument}={str(folder)!r}")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"`{argument}` cannot be created under the file {str(existing)!r}. Received: {argument}={str(folder)!r}")
    try:
        # os.access says yes to root even in a read-only folder; writing says the truth.
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ValueError(
            f"`{argument}` is not writable ({error.strerror or type(error).__name__} in {str(existing)!r}). "
            f"Received: {argument}={str(folder)!r}"
        ) from None
    return folder


def _read_labels_argument(labels):
    """Class names from a labels file or a sequence, checked before anything is written."""
    if labels is None:
        return None
    if isinstance(labels, (str, os.PathLike)):
        if not os.path.isfile(labels):
            raise FileNotFoundError(f"The labels file does not exist. Received: labels={str(labels)!r}")
        try:
            text = pathlib.Path(labels).read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"The labels file is not UTF-8 text. Received: labels={str(labels)!r}") from None
        labels = [line.strip() for line in text.splitlines() if line.strip()]
        if not labels:
            raise ValueError(f"The labels file has no class names. Received: labels={str(labels)!r}")
    labels = list(labels)
    _validate_class_names(labels)
    return labels


def _validate_class_names(names):
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name.strip() or "\n" in name or "\r" in name:
            raise ValueError(f"Each class name in `labels` must be a non-empty string on one line. Received: labels[{i}]={name!r}")


def _validate_metadata(metadata):
    if metadata is None:
        return
    unknown = sorted(set(metadata) - set(METADATA_KEYS)) if isinstance(metadata, dict) else None
    if unknown is None or unknown or not all(isinstance(value, str) for value in metadata.values()):
        raise ValueError(f"`metadata` must be a dict of strings with keys from {list(METADATA_KEYS)}. Received: metadata={metadata!r}")


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


def _require_kerashub(formats):
    import importlib.util

    if KERASHUB_FORMAT in formats and importlib.util.find_spec("keras_hub") is None:
        raise ValueError(
            f'A KerasHub preset needs keras-hub: pip install "keras-googlenet[kerashub]". Received: formats={formats!r}'
        )


def _int8_io_types(int8_io, single=False):
    """``int8_io`` as a tuple of input types, checked: one of `INT8_IO_TYPES` or (unless ``single``) a sequence of distinct ones."""
    types = tuple(int8_io) if isinstance(int8_io, (list, tuple)) and not single else (int8_io,)
    if not types or any(t not in INT8_IO_TYPES for t in types) or len(set(types)) < len(types):
        allowed = f"one of {list(INT8_IO_TYPES)}" + ("" if single else ", or a sequence of distinct ones")
        raise ValueError(f"`int8_io` must be {allowed}. Received: int8_io={int8_io!r}")
    return types


def _validate_opset(opset):
    # tf2onnx 1.16+ converts from opset 13 on.
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 13:
        raise ValueError(f"The `opset` argument must be an int >= 13. Received: opset={opset!r}")
