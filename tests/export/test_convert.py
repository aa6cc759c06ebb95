"""Exports of a trained GoogLeNet: formats, metadata, raw-pixel input, int8 types, the uint8 signature, bad input."""

import collections
import json
import os

import numpy as np
import pytest

import keras_googlenet as kg
from keras_googlenet.export import convert as export
from keras_googlenet.data import images
from keras_googlenet.artifacts import model_info, tflite_metadata
from keras_googlenet.inference import runtimes
from keras_googlenet.data.augment import eval_transform

import digits_models
import tflite_ops

# The exports: outside the quick tier's scope (the builder, the weight readers,
# preprocessing, the CLI's checks, the metadata writer, storage), so the full tier only.
pytestmark = pytest.mark.slow

DIGIT_NAMES = list(digits_models.NAMES)
SIZE = digits_models.SIZE
# conftest's exports write the int8 model twice: uint8 and float32 input.
TFLITE_KINDS = ("tflite_fp32", "tflite_fp16", "tflite_dynamic", "tflite_int8", "tflite_int8_float32_input")


def _interpreter_input(path):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(path)).get_input_details()[0]


def _onnx_ops(path):
    import onnx

    return {node.op_type for node in onnx.load(str(path)).graph.node}


def _savedmodel_ops(path, signature):
    """The TF op types a SavedModel signature runs, its called functions included."""
    import tensorflow as tf

    graph = tf.saved_model.load(str(path)).signatures[signature].graph.as_graph_def()
    return {node.op for node in graph.node} | {node.op for function in graph.library.function for node in function.node_def}


def _export_ops(paths):
    """Each export's op names, by export name."""
    ops = {kind: tflite_ops.op_names(path) for kind, path in paths.items() if kind.startswith("tflite_")}
    if "onnx" in paths:
        ops["onnx"] = _onnx_ops(paths["onnx"])
    if "savedmodel" in paths:
        for signature in ("serving_default", "serving_uint8"):
            ops[f"savedmodel {signature}"] = _savedmodel_ops(paths["savedmodel"], signature)
    return ops


GATHERS = {"GATHER", "GATHER_ND", "Gather", "GatherElements", "GatherND", "GatherV2", "ResourceGather"}


@pytest.fixture(scope="module")
def three_head_model():
    return kg.GoogLeNet(variant="bn", input_shape=(96, 96, 3), classes=10)


@pytest.mark.slow
def test_every_format_is_written_and_carries_the_class_names(digits_exports):
    import onnx
    import tensorflow as tf

    assert set(digits_exports) == {"savedmodel", *TFLITE_KINDS, "onnx"}
    assert os.path.basename(digits_exports["tflite_int8_float32_input"]) == "googlenet_int8_float32_input.tflite"
    folder = os.path.dirname(digits_exports["onnx"])
    # No sidecar: every .tflite carries its labels and ModelInfo inside.
    assert not os.path.exists(os.path.join(folder, "labels.txt")) and not os.path.exists(os.path.join(folder, "metadata.json"))
    for kind in TFLITE_KINDS:
        found = tflite_metadata.read_metadata(digits_exports[kind])
        assert found.labels == tuple(DIGIT_NAMES), kind
        info = json.loads(found.files[tflite_metadata.MODEL_INFO_FILE])
        assert (info["variant"], info["image_size"], info["raw_pixels"]) == ("bn", SIZE, True), kind

    metadata = tf.saved_model.load(digits_exports["savedmodel"]).metadata()
    assert [name.decode() for name in metadata["class_names"].numpy()] == DIGIT_NAMES
    assert (metadata["variant"].numpy(), int(metadata["image_size"]), bool(metadata["raw_pixels"])) == (b"bn", SIZE, True)

    props = {prop.key: prop.value for prop in onnx.load(digits_exports["onnx"]).metadata_props}
    expected = {"variant": "bn", "image_size": SIZE, "class_names": DIGIT_NAMES, "raw_pixels": True}
    assert json.loads(props["keras_googlenet"]) == expected


@pytest.mark.slow
@pytest.mark.parametrize("kind", TFLITE_KINDS)
def test_every_tflite_carries_metadata_with_its_labels_and_raw_pixel_normalization(digits_exports, kind):
    found = tflite_metadata.read_metadata(digits_exports[kind])
    assert found.labels == tuple(DIGIT_NAMES)
    assert (found.mean, found.std, found.input_range, found.color_space) == ((0.0,), (1.0,), (0.0, 255.0), "RGB")
    assert found.name == "GoogLeNet (bn)" and kind.split("_")[1] in found.description
    info = json.loads(found.files[tflite_metadata.MODEL_INFO_FILE])
    assert info == {"variant": "bn", "image_size": SIZE, "class_names": DIGIT_NAMES, "raw_pixels": True}


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["bn", "paper"])
def test_every_float_export_takes_raw_pixels_and_matches_the_checkpoint_on_scaled_pixels(request, digits_held_out, digits_reference, variant):
    exports = request.getfixturevalue("digits_exports" if variant == "bn" else "paper_digits_exports")
    crops = digits_held_out[0][:32].astype(np.float32)  # already at the model's size
    # The Keras model on preprocess_input's pixels: BGR for "paper", which the exports fold into conv1.
    reference = digits_reference(variant)[:32]
    for kind in ("savedmodel", "tflite_fp32", "onnx"):
        # runtimes.Predictor feeds the batch it is given: here raw pixels.
        got = runtimes.load_predictor(exports[kind])(crops)
        np.testing.assert_allclose(got, reference, rtol=0, atol=1e-5, err_msg=kind)
    assert reference.max(-1).min() < 0.9  # a model with doubt on some digits: probabilities that can move


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["bn", "paper"])
def test_no_export_of_either_variant_has_a_gather_op(request, variant):
    # MediaPipe's GPU delegate stops at a GATHER ("No support of gather"); the
    # "paper" RGB to BGR swap was one, before conv1 took it over.
    exports = request.getfixturevalue("digits_exports" if variant == "bn" else "paper_digits_exports")
    ops = _export_ops(exports)
    assert set(ops) == {*TFLITE_KINDS, "onnx", "savedmodel serving_default", "savedmodel serving_uint8"}
    for kind, names in ops.items():
        assert {"CONV_2D", "Conv", "Conv2D"} & names, f"{kind}: no convolution read, the op list is wrong"
        assert not GATHERS & names, f"{variant} {kind}: {sorted(GATHERS & names)}"


@pytest.mark.slow  # a whole GoogLeNet converted twice
def test_paper_model_built_with_preprocessing_exports_without_gather_and_matches_keras(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    # Logits, not probabilities: a random net's softmax is too flat to show a channel mix-up.
    model = kg.GoogLeNet(variant="paper", input_shape=(96, 96, 3), classes=10, aux_heads=False,
                         classifier_activation=None, include_preprocessing=True)
    conv1 = np.array(model.get_layer("conv1_7x7_s2").kernel)
    info = model_info.ModelInfo("paper", 96, None)
    paths = {
        "tflite_fp32": export.export_tflite(model, tmp_path / "fp32.tflite", info=info),
        "onnx": export.export_onnx(model, tmp_path / "model.onnx", info=info),
    }
    for kind, names in _export_ops(paths).items():
        assert "SUB" in names or "Sub" in names, kind  # the mean subtraction is still there
        assert not GATHERS & names, f"{kind}: {sorted(GATHERS & names)}"
    pixels = np.random.default_rng(0).integers(0, 256, (4, 96, 96, 3)).astype(np.float32)
    reference = model.predict(pixels, verbose=0)
    assert np.abs(reference).max() > 0.5  # logits that a swapped kernel would move by far more than 1e-4
    for kind, path in paths.items():
        np.testing.assert_allclose(runtimes.load_predictor(path)(pixels), reference, rtol=0, atol=1e-4, err_msg=kind)
    np.testing.assert_array_equal(np.array(model.get_layer("conv1_7x7_s2").kernel), conv1)  # the caller's model is untouched


def test_folding_the_channel_swap_is_exact_and_done_once():
    import keras

    keras.utils.set_random_seed(0)
    model = kg.GoogLeNet(variant="paper", input_shape=(96, 96, 3), classes=10, aux_heads=False, classifier_activation=None)
    folded = export.with_preprocessing(model, "paper")
    assert export.with_preprocessing(folded, "paper") is folded
    pixels = np.random.default_rng(1).integers(0, 256, (2, 96, 96, 3)).astype(np.float32)
    reference = model.predict(kg.preprocess_input(pixels, variant="paper"), verbose=0)
    np.testing.assert_allclose(folded.predict(pixels, verbose=0), reference, rtol=0, atol=1e-4)
    # The folded kernel reads R where the original read B.
    kernels = [np.array(m.get_layer("conv1_7x7_s2").kernel) for m in (model, folded.get_layer(model.name))]
    np.testing.assert_array_equal(kernels[1], kernels[0][:, :, ::-1, :])


@pytest.mark.slow
def test_savedmodel_serving_default_takes_named_float_images(digits_exports):
    import tensorflow as tf

    signature = tf.saved_model.load(digits_exports["savedmodel"]).signatures["serving_default"]
    spec = signature.structured_input_signature[1]["images"]
    assert (spec.dtype, tuple(spec.shape)) == (tf.float32, (None, SIZE, SIZE, 3))
    assert list(signature.structured_outputs) == ["probabilities"]


@pytest.mark.slow
def test_int8_tflite_has_uint8_input_float32_output_and_is_over_3x_smaller_than_fp32(digits_exports):
    int8 = runtimes.load_predictor(digits_exports["tflite_int8"])
    assert (int8.input_dtype, int8.output_dtype) == (np.uint8, np.float32)
    fp32 = runtimes.load_predictor(digits_exports["tflite_fp32"])
    assert (fp32.input_dtype, fp32.output_dtype) == (np.float32, np.float32)
    ratio = os.path.getsize(digits_exports["tflite_fp32"]) / os.path.getsize(digits_exports["tflite_int8"])
    assert ratio >= 3.0, f"int8 is only {ratio:.2f}x smaller than fp32"


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["bn", "paper"])
def test_int8_tflite_computes_its_softmax_in_float_so_small_probabilities_keep_their_order(request, digits_held_out, digits_reference, variant):
    exports = request.getfixturevalue("digits_exports" if variant == "bn" else "paper_digits_exports")
    model = tflite_ops.read_model(exports["tflite_int8"])
    graph = model.subgraphs[0]
    last = graph.operators[-1]
    # SOFTMAX last, on float32 (type 0) logits, giving the output.
    assert tflite_ops.op_name(model.operatorCodes[last.opcodeIndex]) == "SOFTMAX"
    assert [graph.tensors[i].type for i in (*last.inputs, *last.outputs)] == [0, 0] and list(last.outputs) == list(graph.outputs)
    crops = digits_held_out[0].astype(np.float32)
    reference = digits_reference(variant)
    int8 = runtimes.load_predictor(exports["tflite_int8"])
    got = np.concatenate([int8(crops[i : i + 64]) for i in range(0, len(crops), 64)])
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)
    # Measured 93.2% ("bn") and 92.4% ("paper") with the scaling folded into conv1 (`int8_input`;
    # 92.7% and 91.7% without it, on the same models), 85.9% and 73.3% with an integer LRN and
    # classifier, and 10.8% and 16.1% (ties) with a uint8 softmax.
    identical = np.mean([list(np.argsort(-a)[:5]) == list(np.argsort(-b)[:5]) for a, b in zip(got, reference)])
    assert identical >= 0.90, f"{variant}: int8 top-5 identical to Keras on {identical:.1%} of {len(crops)} held-out digits"
    assert np.mean(got.argmax(-1) == reference.argmax(-1)) >= 0.99


@pytest.mark.slow
def test_int8_tflite_uint8_input_takes_pixels_as_they_are(digits_exports):
    # scale 1 and zero point 0: the pixel value is the quantized value, as MediaPipe feeds it.
    assert _interpreter_input(digits_exports["tflite_int8"])["quantization"] == (1.0, 0)


@pytest.mark.slow
def test_int8_io_option_gives_int8_input_and_float_output_that_still_agree(int8_input_export, digits_held_out, digits_reference):
    int8 = runtimes.load_predictor(int8_input_export)
    assert (int8.input_dtype, int8.output_dtype) == (np.int8, np.float32)
    assert _interpreter_input(int8_input_export)["quantization"] == (1.0, -128)  # q = pixel - 128
    crops = digits_held_out[0][-50:].astype(np.float32)
    keras_top1 = digits_reference("bn")[-50:].argmax(-1)
    assert np.mean(int8(crops).argmax(-1) == keras_top1) >= 0.96


def test_int8_calibrated_on_a_source_name_reads_its_training_images(tmp_path, tiny_model, tiny_info):
    # As the CLI's --calibration-data digits: the training pipeline's source, centre-cropped to the model's size.
    crops, extremes = export.representative_batches("digits", tiny_info)
    assert crops.shape == (export.CALIBRATION_IMAGES, 32, 32, 3) and crops.min() >= 0 and crops.max() > 200
    assert (extremes.min(), extremes.max()) == (0.0, 255.0)
    path = export.export_tflite(tiny_model, tmp_path / "int8.tflite", quantize="int8", calibration_data="digits", info=tiny_info)
    assert runtimes.load_predictor(path).input_dtype == np.uint8


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["bn", "paper"])
def test_float32_input_int8_file_gives_the_uint8_input_file_its_scores_on_float_pixels(request, float_input_int8_exports, digits_held_out, variant):
    """The same calibration and integer graph behind a QUANTIZE of the float pixels (scale 1): the same numbers."""
    exports = request.getfixturevalue("digits_exports" if variant == "bn" else "paper_digits_exports")
    float_in, uint8_in = runtimes.load_predictor(float_input_int8_exports[variant]), runtimes.load_predictor(exports["tflite_int8"])
    assert (float_in.input_dtype, float_in.output_dtype) == (np.float32, np.float32)
    crops = digits_held_out[0][:64].astype(np.float32)
    np.testing.assert_allclose(float_in(crops), uint8_in(crops), rtol=0, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("variant, lrns", [("bn", 0), ("paper", 2)])
def test_int8_file_keeps_the_lrns_and_the_classifier_in_float_and_every_convolution_integer(request, variant, lrns):
    """See `export.float_layers`: an integer LRN lost 3 quantization steps in its division; integer logits flipped top-1s."""
    from tensorflow.lite.python import schema_py_generated as schema

    exports = request.getfixturevalue("digits_exports" if variant == "bn" else "paper_digits_exports")
    model = tflite_ops.read_model(exports["tflite_int8"])
    graph = model.subgraphs[0]
    float_ops = collections.Counter()  # op name -> how many give float32 (tensor type 0)
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        if graph.tensors[op.outputs[0]].type == schema.TensorType.FLOAT32:
            float_ops[tflite_ops.op_name(code)] += 1
    # One DIV and one POW per LRN (pool1/norm1, conv2/norm2); a DEQUANTIZE into each and one into the classifier.
    assert (float_ops["DIV"], float_ops["POW"], float_ops["DEQUANTIZE"]) == (lrns, lrns, lrns + 1)
    assert (float_ops["FULLY_CONNECTED"], float_ops["SOFTMAX"], float_ops["CONV_2D"]) == (1, 1, 0)


@pytest.mark.slow
def test_uint8_signature_on_raw_jpeg_pixels_matches_python_crop_then_float_signature(digits_exports, photo_paths):
    saved_model = runtimes.load_predictor(digits_exports["savedmodel"])
    for path in [p for p in photo_paths if p.suffix == ".jpg"]:
        pixels = images.load_image(path)  # JPEG-decoded, its own size
        in_graph = saved_model.serve_uint8(pixels[None])
        in_python = saved_model(np.asarray(eval_transform(pixels, SIZE))[None])
        # The same ops; graph and eager may fuse them differently, so the fp32 parity bound.
        np.testing.assert_allclose(in_graph, in_python, rtol=0, atol=1e-5)
        assert in_graph.argmax() == in_python.argmax()


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"formats": "coreml"}, ValueError, r"`formats` must be from \['savedmodel', 'tflite', 'onnx', 'kerashub'\]\. Received: formats=\['coreml'\]"),
        ({"quantize": "int4"}, ValueError, r"`quantize` must be from .*'int8'\]\. Received: quantize=\['int4'\]"),
        ({"int8_io": "float"}, ValueError, r"`int8_io` must be one of \['uint8', 'int8', 'float32'\], or a sequence of distinct ones\. Received: int8_io='float'"),
        ({"int8_io": ["uint8", "float"]}, ValueError, r"`int8_io` must be .*\. Received: int8_io=\['uint8', 'float'\]"),
        ({"int8_io": ("uint8", "uint8")}, ValueError, r"`int8_io` must be .*distinct ones\. Received: int8_io=\('uint8', 'uint8'\)"),
        ({"int8_io": []}, ValueError, r"`int8_io` must be .*\. Received: int8_io=\[\]"),
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
        (np.full((4, 96, 96, 3), -1.0, "float32"), r"raw RGB pixels in \[0, 255\], not scaled .* Received: calibration_data in \[-1, -1\]"),
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


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory, three_head_model):
    path = tmp_path_factory.mktemp("small") / "best.keras"
    three_head_model.save(path)
    return path




def test_labels_of_the_wrong_count_are_rejected_before_writing(tmp_path, small_checkpoint):
    with pytest.raises(ValueError, match=r"The model has 10 classes but the labels name 2\. Received: len\(labels\)=2"):
        export.export(small_checkpoint, tmp_path / "out", labels=["cat", "dog"])
    assert not (tmp_path / "out").exists()


def test_labels_file_that_is_not_utf8_is_rejected_naming_it(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=f"not UTF-8 text\\. Received: labels='{labels}'") as raised:
        export.export(tmp_path / "best.keras", tmp_path / "out", labels=labels)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("name", ["two\nlines", "", "carriage\rreturn"])
def test_label_that_is_not_one_line_is_rejected_naming_its_index(tmp_path, name):
    labels = [f"digit {i}" for i in range(10)]
    labels[3] = name
    with pytest.raises(ValueError, match=r"on one line\. Received: labels\[3\]=") as raised:
        export.export(tmp_path / "best.keras", tmp_path / "out", labels=labels)
    assert "\n" not in str(raised.value)


def test_output_dir_that_is_an_existing_file_is_rejected(tmp_path):
    existing = tmp_path / "exports"
    existing.write_text("a file")
    with pytest.raises(ValueError, match=f"must be a folder, but it is an existing file\\. Received: output_dir='{existing}'"):
        export.export(tmp_path / "best.keras", existing)


def test_output_dir_under_an_existing_file_is_rejected(tmp_path):
    (tmp_path / "notes.txt").write_text("a file")
    nested = tmp_path / "notes.txt" / "exports"
    with pytest.raises(ValueError, match=f"cannot be created under the file .*notes\\.txt'\\. Received: output_dir='{nested}'"):
        export.export(tmp_path / "best.keras", nested)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_output_dir_that_is_not_writable_is_rejected(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(ValueError, match=f"is not writable .* Received: output_dir='{locked / 'exports'}'"):
            export.export(tmp_path / "best.keras", locked / "exports")
    finally:
        locked.chmod(0o755)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc, read-only even for root")
def test_output_dir_on_a_read_only_file_system_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"is not writable .* Received: output_dir='/proc/self/exports'"):
        export.export(tmp_path / "best.keras", "/proc/self/exports")


def test_failed_tflite_conversion_leaves_no_file_behind(tmp_path, tiny_model, monkeypatch, tiny_info):
    def fail(*args):
        raise ValueError("simulated failure while adding metadata")

    monkeypatch.setattr(tflite_metadata, "add_metadata", fail)
    with pytest.raises(ValueError, match="simulated failure"):
        export.export_tflite(tiny_model, tmp_path / "model.tflite", info=tiny_info)
    assert os.listdir(tmp_path) == []


def test_failed_rewrite_keeps_the_previous_tflite_intact(tmp_path, tiny_model, monkeypatch, tiny_info):
    path = export.export_tflite(tiny_model, tmp_path / "model.tflite", info=tiny_info)
    before = open(path, "rb").read()
    monkeypatch.setattr(tflite_metadata, "add_metadata", lambda *args: (_ for _ in ()).throw(ValueError("simulated")))
    with pytest.raises(ValueError, match="simulated"):
        export.export_tflite(tiny_model, path, info=tiny_info)
    assert open(path, "rb").read() == before
    assert sorted(os.listdir(tmp_path)) == ["model.tflite"]


def test_int8_model_whose_input_does_not_map_pixels_exactly_is_refused(tmp_path, tiny_model, monkeypatch, tiny_info):
    calibration = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype(np.float32)
    # The check compares with what the converter gives; demand another scale to see it fire.
    monkeypatch.setitem(export.EXACT_INPUT_QUANTIZATION, "uint8", (0.5, 0))
    with pytest.raises(ValueError, match=r"uint8 input has scale 1\.0 and zero point 0, not 0\.5 and 0: pixels would not map exactly"):
        export.export_tflite(tiny_model, tmp_path / "int8.tflite", quantize="int8", calibration_data=calibration, info=tiny_info)
    assert os.listdir(tmp_path) == []


def test_int8_calibrated_on_mid_grey_crops_still_takes_pixels_as_they_are(tmp_path, tiny_model, tiny_info):
    # Without the added 0 and 255 pixels, grey crops in [100, 150] would give the input that range.
    calibration = np.random.default_rng(0).integers(100, 151, (8, 32, 32, 3)).astype(np.float32)
    path = export.export_tflite(tiny_model, tmp_path / "int8.tflite", quantize="int8", calibration_data=calibration, info=tiny_info)
    assert _interpreter_input(path)["quantization"] == (1.0, 0)


def test_tiny_model_without_class_names_exports_without_a_labels_file(tmp_path, tiny_model):
    path = export.export_tflite(tiny_model, tmp_path / "model.tflite", info=model_info.ModelInfo("paper", 32, None))
    found = tflite_metadata.read_metadata(path)
    assert found.labels is None and tflite_metadata.MODEL_INFO_FILE in found.files and "labels.txt" not in found.files


def test_metadata_argument_with_an_unknown_key_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"`metadata` must be a dict of strings with keys from .* Received: metadata=\{'licence': 'MIT'\}"):
        export.export(tmp_path / "best.keras", tmp_path / "out", metadata={"licence": "MIT"})


def test_metadata_argument_reaches_the_tflite_metadata(tmp_path, tiny_model, tiny_info):
    about = {"name": "Digits", "version": "2026.11", "author": "Tests", "license": "Apache-2.0"}
    path = export.export_tflite(tiny_model, tmp_path / "model.tflite", info=tiny_info, metadata=about)
    found = tflite_metadata.read_metadata(path)
    assert (found.name, found.version, found.author, found.license) == ("Digits", "2026.11", "Tests", "Apache-2.0")
    assert found.labels == ("a", "b", "c")
