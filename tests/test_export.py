"""Exports of a trained GoogLeNet: formats, metadata, int8 types and the uint8 signature."""

import json
import os

import numpy as np
import pytest

import keras_googlenet as kg
from keras_googlenet import export, images, predict

DIGIT_NAMES = [f"digit {i}" for i in range(10)]


@pytest.fixture(scope="module")
def three_head_model():
    return kg.GoogLeNet(variant="bn", input_shape=(96, 96, 3), classes=10)


@pytest.mark.slow
def test_every_format_is_written_and_carries_the_class_names(digits_exports):
    import onnx
    import tensorflow as tf

    assert set(digits_exports) == {"savedmodel", "tflite_fp32", "tflite_fp16", "tflite_dynamic", "tflite_int8", "onnx"}
    folder = os.path.dirname(digits_exports["onnx"])
    assert predict.read_labels(os.path.join(folder, "labels.txt")) == tuple(DIGIT_NAMES)
    assert json.load(open(os.path.join(folder, "metadata.json")))["variant"] == "bn"

    metadata = tf.saved_model.load(digits_exports["savedmodel"]).metadata()
    assert [name.decode() for name in metadata["class_names"].numpy()] == DIGIT_NAMES
    assert (metadata["variant"].numpy(), int(metadata["image_size"])) == (b"bn", 96)

    props = {prop.key: prop.value for prop in onnx.load(digits_exports["onnx"]).metadata_props}
    assert json.loads(props["keras_googlenet"]) == {"variant": "bn", "image_size": 96, "class_names": DIGIT_NAMES}


@pytest.mark.slow
def test_savedmodel_serving_default_takes_named_float_images(digits_exports):
    import tensorflow as tf

    signature = tf.saved_model.load(digits_exports["savedmodel"]).signatures["serving_default"]
    spec = signature.structured_input_signature[1]["images"]
    assert (spec.dtype, tuple(spec.shape)) == (tf.float32, (None, 96, 96, 3))
    assert list(signature.structured_outputs) == ["probabilities"]


@pytest.mark.slow
def test_int8_tflite_has_uint8_input_and_output_and_is_over_3x_smaller_than_fp32(digits_exports):
    int8 = predict.load_predictor(digits_exports["tflite_int8"])
    assert (int8.input_dtype, int8.output_dtype) == (np.uint8, np.uint8)
    fp32 = predict.load_predictor(digits_exports["tflite_fp32"])
    assert (fp32.input_dtype, fp32.output_dtype) == (np.float32, np.float32)
    ratio = os.path.getsize(digits_exports["tflite_fp32"]) / os.path.getsize(digits_exports["tflite_int8"])
    assert ratio >= 3.0, f"int8 is only {ratio:.2f}x smaller than fp32"


@pytest.mark.slow
def test_int8_io_option_gives_int8_input_and_output_that_still_agree(tmp_path, digits, digits_checkpoint):
    raw, _ = digits
    model = predict.load_checkpoint(digits_checkpoint)
    # Calibrated on the training pipeline's source, as the CLI's --calibration-data digits does.
    path = export.export_tflite(model, tmp_path / "int8io.tflite", quantize="int8", calibration_data="digits", int8_io="int8")
    int8 = predict.load_predictor(path)
    assert (int8.input_dtype, int8.output_dtype) == (np.int8, np.int8)
    held_out = predict.prepare_images(list(raw[-50:]), 96, "bn")
    assert np.mean(int8(held_out).argmax(-1) == model.predict(held_out, verbose=0).argmax(-1)) >= 0.96


@pytest.mark.slow
def test_uint8_signature_on_raw_jpeg_pixels_matches_python_preprocessing_then_float_signature(digits_exports, photo_paths):
    saved_model = predict.load_predictor(digits_exports["savedmodel"])
    for path in [p for p in photo_paths if p.suffix == ".jpg"]:
        pixels = images.load_image(path)  # JPEG-decoded, its own size
        in_graph = saved_model.serve_uint8(pixels[None])
        in_python = saved_model(predict.prepare_images([pixels], 96, "bn"))
        # The same ops; graph and eager may fuse them differently, so the fp32 parity bound.
        np.testing.assert_allclose(in_graph, in_python, rtol=0, atol=1e-5)
        assert in_graph.argmax() == in_python.argmax()


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"formats": "coreml"}, ValueError, r"`formats` must be from \['savedmodel', 'tflite', 'onnx'\]\. Received: formats=\['coreml'\]"),
        ({"quantize": "int4"}, ValueError, r"`quantize` must be from .*'int8'\]\. Received: quantize=\['int4'\]"),
        ({"int8_io": "float"}, ValueError, r"`int8_io` must be one of \['uint8', 'int8'\]\. Received: int8_io='float'"),
    ],
)
def test_bad_export_option_raises_one_line_naming_it(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message) as raised:
        export.export(tmp_path / "missing.keras", tmp_path / "out", **kwargs)
    assert "\n" not in str(raised.value)


def test_missing_checkpoint_raises_file_not_found_naming_it(tmp_path):
    missing = tmp_path / "best.keras"
    with pytest.raises(FileNotFoundError, match=f"checkpoint file does not exist. Received: checkpoint='{missing}'"):
        export.export(missing, tmp_path / "out")


def test_checkpoint_that_is_not_a_keras_file_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"must be a `\.keras` file\. Received: checkpoint='model\.h5'"):
        export.export("model.h5", tmp_path / "out")


@pytest.mark.parametrize("convert", [export.export_saved_model, export.export_tflite, export.export_onnx])
def test_low_level_converters_reject_a_model_with_aux_heads(tmp_path, three_head_model, convert):
    with pytest.raises(ValueError, match=r"inference_model\(model\).* Received: model\.output_names=\['main', 'aux1', 'aux2'\]") as raised:
        convert(three_head_model, tmp_path / "model")
    assert "\n" not in str(raised.value)
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize(
    "calibration, message",
    [
        (np.zeros((4, 64, 64, 3), "float32"), r"shape \(n, 96, 96, 3\)\. Received: calibration_data\.shape=\(4, 64, 64, 3\)"),
        (np.zeros((96, 96, 3), "float32"), r"Received: calibration_data\.shape=\(96, 96, 3\)"),
        (None, r"int8 quantization needs calibration_data .* Received: calibration_data=None"),
    ],
)
def test_calibration_data_of_the_wrong_shape_is_rejected_before_converting(tmp_path, three_head_model, calibration, message):
    model = kg.inference_model(three_head_model)
    with pytest.raises(ValueError, match=message):
        export.export_tflite(model, tmp_path / "int8.tflite", quantize="int8", calibration_data=calibration)
    assert not (tmp_path / "int8.tflite").exists()


def test_checkpoint_that_cannot_be_read_is_named(tmp_path):
    broken = tmp_path / "best.keras"
    broken.write_text("not a zip")
    with pytest.raises(ValueError, match=f"not a readable .keras file \\(\\w+\\)\\. Received: checkpoint='{broken}'"):
        export.export(broken, tmp_path / "out")
