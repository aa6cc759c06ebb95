"""TFLite metadata: the flatbuffer entry, the zipped labels, and reading them back."""

import zipfile

import numpy as np
import pytest

from keras_googlenet.artifacts import tflite_metadata

NAMES = ["cat", "dog", "café au lait"]


@pytest.fixture(scope="module")
def plain_tflite():
    """A tiny float classifier (32 x 32 RGB to 3 softmax probabilities), as the converter writes it."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    pixels = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(keras.layers.Rescaling(1 / 255)(pixels))
    probabilities = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(pixels, probabilities)

    @tf.function(input_signature=[tf.TensorSpec((1, 32, 32, 3), tf.float32)])
    def serve(images):
        return model(images)

    return tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], model).convert()


@pytest.fixture(scope="module")
def tflite_with_metadata(plain_tflite, tmp_path_factory):
    metadata = tflite_metadata.classifier_metadata(
        NAMES, name="Tiny", description="A test model.", version="v1", author="Tests", license="Apache-2.0"
    )
    path = tmp_path_factory.mktemp("metadata") / "tiny.tflite"
    files = {tflite_metadata.LABELS_FILE: tflite_metadata.labels_text(NAMES), "extra.json": b"{}"}
    path.write_bytes(tflite_metadata.add_metadata(plain_tflite, metadata, files))
    return path


def _run(model_content, pixels):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_content)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_model_with_metadata_computes_exactly_what_the_plain_model_does(plain_tflite, tflite_with_metadata):
    pixels = np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(_run(tflite_with_metadata.read_bytes(), pixels), _run(plain_tflite, pixels))


def test_metadata_buffer_is_named_tflite_metadata_and_starts_with_identifier_m001(tflite_with_metadata):
    # Read with TensorFlow's generated TFLite schema, not with our reader.
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(tflite_with_metadata.read_bytes(), 0)
    entries = {model.Metadata(i).Name().decode(): model.Metadata(i).Buffer() for i in range(model.MetadataLength())}
    assert "TFLITE_METADATA" in entries
    assert model.Buffers(entries["TFLITE_METADATA"]).DataAsNumpy().tobytes()[4:8] == b"M001"


def test_labels_are_a_stored_zip_entry_after_the_flatbuffer(tflite_with_metadata):
    with zipfile.ZipFile(tflite_with_metadata) as archive:
        entry = archive.getinfo("labels.txt")
        assert entry.compress_type == zipfile.ZIP_STORED
        assert archive.read("labels.txt").decode("utf-8") == "cat\ndog\ncafé au lait\n"
    assert tflite_with_metadata.read_bytes()[4:8] == b"TFL3"


def test_weight_buffers_stay_16_byte_aligned_as_the_tflite_schema_asks(tflite_with_metadata):
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(tflite_with_metadata.read_bytes(), 0)
    starts = []
    for i in range(model.BuffersLength()):
        table = model.Buffers(i)._tab
        offset = table.Offset(4)  # Buffer.data, field 0
        if offset and table.VectorLen(offset) > 0:
            starts.append(table.Vector(offset))
    assert len(starts) >= 3  # kernel, bias, dense weights at least
    assert [start % 16 for start in starts] == [0] * len(starts)


def test_read_metadata_returns_what_was_written(tflite_with_metadata):
    found = tflite_metadata.read_metadata(tflite_with_metadata)
    assert (found.name, found.description, found.version, found.author, found.license) == (
        "Tiny", "A test model.", "v1", "Tests", "Apache-2.0"
    )
    assert found.labels == ("cat", "dog", "café au lait")
    assert (found.mean, found.std, found.input_range, found.color_space) == ((0.0,), (1.0,), (0.0, 255.0), "RGB")
    assert found.min_parser_version == "1.0.0"
    assert sorted(found.files) == ["extra.json", "labels.txt"]
    output = found.metadata["subgraph_metadata"][0]["output_tensor_metadata"][0]
    assert output["associated_files"][0]["type"] == 2  # TENSOR_AXIS_LABELS in metadata_schema.fbs
    assert output["content"]["content_properties"][0] == "FeatureProperties"


def test_adding_metadata_again_replaces_it(plain_tflite, tflite_with_metadata, tmp_path):
    from tensorflow.lite.python import schema_py_generated as schema

    again = tflite_metadata.add_metadata(
        tflite_with_metadata.read_bytes(), tflite_metadata.classifier_metadata(["a", "b", "c"], name="Again", description=""), {"labels.txt": b"a\nb\nc\n"}
    )
    model = schema.Model.GetRootAs(again, 0)
    names = [model.Metadata(i).Name().decode() for i in range(model.MetadataLength())]
    assert names.count("TFLITE_METADATA") == 1
    (tmp_path / "again.tflite").write_bytes(again)
    found = tflite_metadata.read_metadata(tmp_path / "again.tflite")
    assert (found.name, found.labels, list(found.files)) == ("Again", ("a", "b", "c"), ["labels.txt"])


def test_model_without_metadata_reads_as_none(plain_tflite, tmp_path):
    (tmp_path / "plain.tflite").write_bytes(plain_tflite)
    assert tflite_metadata.read_metadata(tmp_path / "plain.tflite") is None


def test_reading_a_file_that_is_not_tflite_names_it(tmp_path):
    (tmp_path / "notes.tflite").write_text("not a model at all")
    with pytest.raises(ValueError, match=f"not a TFLite model .* Received: model='{tmp_path / 'notes.tflite'}'"):
        tflite_metadata.read_metadata(tmp_path / "notes.tflite")
    with pytest.raises(FileNotFoundError, match="Received: model='missing.tflite'"):
        tflite_metadata.read_metadata("missing.tflite")


@pytest.mark.parametrize("name", ["two\nlines", "carriage\rreturn", "", "  "])
def test_labels_text_rejects_a_name_that_is_not_one_line(name):
    with pytest.raises(ValueError, match="non-empty string on one line"):
        tflite_metadata.labels_text(["fine", name])


def test_adding_metadata_again_reuses_its_buffer(tflite_with_metadata):
    from tensorflow.lite.python import schema_py_generated as schema

    before = schema.Model.GetRootAs(tflite_with_metadata.read_bytes(), 0).BuffersLength()
    again = tflite_metadata.add_metadata(tflite_with_metadata.read_bytes(), {"name": "Again"}, {})
    assert schema.Model.GetRootAs(again, 0).BuffersLength() == before
