"""predict: the same answer from every format, class names from the export, one-line errors."""

import pytest
from PIL import Image

import keras_googlenet as kg
from keras_googlenet import cli, predict

FOUR_FORMATS = ("checkpoint", "savedmodel", "tflite_fp32", "onnx")


@pytest.fixture(scope="module")
def models(digits_checkpoint, digits_exports):
    return {"checkpoint": str(digits_checkpoint), **digits_exports}


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory, digits):
    raw, labels = digits
    index = len(raw) - 1  # held out from training
    path = tmp_path_factory.mktemp("digit") / f"digit_{labels[index]}.png"
    Image.fromarray(raw[index]).save(path)
    return path, labels[index]


@pytest.mark.slow
def test_predict_gives_the_same_top1_for_each_photo_across_the_four_formats(models, photo_paths):
    top1 = {name: [row[0][0] for row in predict.predict(models[name], photo_paths, top=1)] for name in FOUR_FORMATS}
    assert len(top1["checkpoint"]) == len(photo_paths)
    for name in FOUR_FORMATS[1:]:
        assert top1[name] == top1["checkpoint"], name


@pytest.mark.slow
def test_every_format_names_a_held_out_digit_with_the_exported_class_name(models, digit_png):
    path, label = digit_png
    for name in (*FOUR_FORMATS, "tflite_fp16", "tflite_dynamic", "tflite_int8"):
        (top,) = predict.predict(models[name], [path], top=3)
        assert top[0][0] == f"digit {label}", name
        assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1]


@pytest.mark.slow
def test_predict_command_prints_the_top_k_for_each_image(models, digit_png, capsys):
    path, label = digit_png
    assert cli.main(["predict", models["tflite_int8"], str(path), "--top-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{path}:" and len(lines) == 3
    assert lines[1].endswith(f"  digit {label}")


def test_thousand_class_checkpoint_without_labels_uses_imagenet_names(tmp_path, photo_paths):
    model = kg.GoogLeNet(variant="bn", input_shape=(96, 96, 3), aux_heads=False)
    model.save(tmp_path / "imagenet.keras")
    (top,) = predict.predict(tmp_path / "imagenet.keras", photo_paths[:1], top=5)
    probabilities = model.predict(predict.prepare_images(photo_paths[:1], 96, "bn"), verbose=0)[0]
    names = [name for _, name, _ in kg.decode_predictions(probabilities[None], top=5)[0]]
    assert [name for name, _ in top] == names


@pytest.mark.slow
def test_labels_argument_overrides_the_stored_names(tmp_path, digits_checkpoint, digit_png):
    path, label = digit_png
    labels = tmp_path / "names.txt"
    labels.write_text("".join(f"class {i}\n" for i in range(10)))
    (top,) = predict.predict(digits_checkpoint, [path], top=1, labels=labels)
    assert top[0][0] == f"class {label}"


@pytest.mark.slow
def test_an_image_path_that_is_not_an_image_is_named(tmp_path, digits_checkpoint):
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    with pytest.raises(ValueError, match=f"not a readable image \\(UnidentifiedImageError\\)\\. Received: image='{text}'"):
        predict.predict(digits_checkpoint, [text])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "/no/model.onnx", "x.jpg"], "model file does not exist. Received: MODEL='/no/model.onnx'"),
        (["predict", __file__, "x.jpg"], f"must be a .keras file, a SavedModel directory, a .tflite or an .onnx file. Received: MODEL='{__file__}'"),
        (["export", "/no/best.keras"], "checkpoint file does not exist. Received: CHECKPOINT='/no/best.keras'"),
        (["export", "/no/best.keras", "--opset", "9"], "Received: --opset=9"),
        (["verify", "/no/best.keras", "/no/exports"], "export folder does not exist. Received: EXPORTS='/no/exports'"),
    ],
)
def test_bad_input_to_the_commands_exits_2_with_one_line(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and err.startswith(f"keras-googlenet {argv[0]}: error:")


def test_tflite_without_its_metadata_sidecar_is_rejected(tmp_path):
    lonely = tmp_path / "model.tflite"
    lonely.write_bytes(b"\0" * 16)
    with pytest.raises(FileNotFoundError, match=f"needs the metadata.json written beside it by export. Received: model='{lonely}'"):
        predict.load_predictor(lonely)
