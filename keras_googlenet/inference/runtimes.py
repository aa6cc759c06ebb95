"""Running a model of any format in that format's own runtime.

A `.keras` checkpoint, a SavedModel directory, a `.tflite` file and an `.onnx`
file all load into a `Predictor`: a callable from a preprocessed float batch
to class probabilities, run by Keras, `tf.saved_model.load`, `ai_edge_litert`
or onnxruntime, together with the `model_info.ModelInfo` that says how to
preprocess and name the classes. MediaPipe, a runtime that reads the TFLite
metadata as an app does, is `mediapipe_client`.
"""

import dataclasses
import json
import os

import numpy as np

from keras_googlenet.artifacts import model_info as info_lib
from keras_googlenet import native_stderr


class Predictor:
    """A loaded model of any format: ``predictor(batch)`` gives probabilities.

    ``batch`` is float32 of shape (n, size, size, 3), already preprocessed;
    `images.prepare_images` makes it from files or raw pixels.
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
        model = info_lib.load_checkpoint(path)
        info = info_lib.checkpoint_info(model, checkpoint=path, labels=labels)
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
        names = info_lib.read_labels(labels) if isinstance(labels, (str, os.PathLike)) else tuple(labels)
        predictor.info = dataclasses.replace(predictor.info, class_names=names)
    return predictor


def _load_saved_model(path):
    import tensorflow as tf

    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise ValueError(f"The directory holds no SavedModel (saved_model.pb). Received: model={path!r}")
    try:
        loaded = tf.saved_model.load(path)
    except (OSError, ValueError, tf.errors.OpError) as error:  # a damaged saved_model.pb, missing variables
        why = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"The SavedModel is damaged or incomplete: TensorFlow cannot load it ({why}). Received: model={path!r}") from None
    if not hasattr(loaded, "metadata"):
        raise ValueError(f"The SavedModel has no metadata() function; export it with this package. Received: model={path!r}")
    metadata = {key: value.numpy() for key, value in loaded.metadata().items()}
    info = info_lib.ModelInfo(
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

    info = info_lib.tflite_info(path)
    try:
        interpreter = Interpreter(model_path=path)
    except ValueError:
        raise ValueError(f"The file is not a TFLite model. Received: model={path!r}") from None
    with native_stderr.quiet():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
        interpreter.allocate_tensors()
    input_details = interpreter.get_input_details()[0]
    output_details = interpreter.get_output_details()[0]

    def run(batch):
        # The interpreter is built for batch 1; resizing it per call keeps
        # `predictor(batch)` the same for every format.
        if tuple(input_details["shape"]) != batch.shape:
            interpreter.resize_tensor_input(input_details["index"], batch.shape)
            with native_stderr.quiet():
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


def _load_onnx(path):
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types for a bad file
        raise ValueError(f"The file is not an ONNX model ({type(error).__name__}). Received: model={path!r}") from None
    metadata = session.get_modelmeta().custom_metadata_map
    if "keras_googlenet" not in metadata:
        raise ValueError(f"The ONNX model has no keras_googlenet metadata; export it with this package. Received: model={path!r}")
    info = info_lib.ModelInfo.from_json(json.loads(metadata["keras_googlenet"]))
    input_name = session.get_inputs()[0].name
    return Predictor(path, info, lambda batch: session.run(None, {input_name: batch})[0], "onnx")
