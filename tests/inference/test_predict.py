"""predict: the same answer from every format, class names from the export, one-line errors."""

import io
import pathlib

import numpy as np
import pytest
from PIL import Image

import keras_googlenet as kg
from keras_googlenet import cli
from keras_googlenet.data import images
from keras_googlenet.artifacts import model_info
from keras_googlenet.inference import predict, runtimes

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


@pytest.mark.slow  # a GoogLeNet saved and predicted: outside the quick tier's scope
def test_thousand_class_checkpoint_without_labels_uses_imagenet_names(tmp_path, photo_paths):
    model = kg.GoogLeNet(variant="bn", input_shape=(96, 96, 3), aux_heads=False)
    model.save(tmp_path / "imagenet.keras")
    (top,) = predict.predict(tmp_path / "imagenet.keras", photo_paths[:1], top=5)
    probabilities = model.predict(images.prepare_images(photo_paths[:1], 96, "bn"), verbose=0)[0]
    names = [name for _, name, _ in kg.decode_predictions(probabilities[None], top=5)[0]]
    assert [name for name, _ in top] == names


@pytest.mark.slow
def test_labels_argument_overrides_the_stored_names(tmp_path, digits_checkpoint, digit_png):
    path, label = digit_png
    labels = tmp_path / "names.txt"
    labels.write_text("".join(f"class {i}\n" for i in range(10)))
    (top,) = predict.predict(digits_checkpoint, [path], top=1, labels=labels)
    assert top[0][0] == f"class {label}"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "/no/model.onnx", "x.jpg"], "model file does not exist. Received: MODEL='/no/model.onnx'"),
        (["predict", __file__, "x.jpg"], f"must be a .keras file, a SavedModel directory, a .tflite or an .onnx file. Received: MODEL='{__file__}'"),
        (["export", "/no/best.keras"], "checkpoint file does not exist. Received: CHECKPOINT='/no/best.keras'"),
        (["export", __file__, "--opset", "9"], "Received: --opset=9"),
        (["verify", "/no/best.keras", "/no/exports"], "export folder does not exist. Received: EXPORTS='/no/exports'"),
    ],
)
def test_bad_input_to_the_commands_exits_2_with_one_line(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and err.startswith(f"keras-googlenet {argv[0]}: error:")


@pytest.mark.parametrize("damage", ["saved_model.pb", "variables"])
def test_a_damaged_saved_model_is_named_as_such_in_one_line(damage, tmp_path):
    folder = tmp_path / "saved_model"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(np.random.default_rng(0).bytes(3000) if damage == "saved_model.pb" else b"")
    with pytest.raises(ValueError, match=rf"^The SavedModel is damaged or incomplete: TensorFlow cannot load it \(.+\)\. Received: model='{folder}'$") as error:
        runtimes.load_predictor(folder)
    assert "\n" not in str(error.value)


def test_a_damaged_tflite_is_named_as_such_not_as_missing_a_sidecar(tmp_path):
    damaged = tmp_path / "googlenet.tflite"
    damaged.write_bytes(np.random.default_rng(0).bytes(4096))  # what a broken copy leaves
    with pytest.raises(ValueError, match=rf"^The file is not a TFLite model: damaged, or another format \(its bytes 4-8 are b'.*', not TFLite's b'TFL3'\)\. Received: model='{damaged}'$"):
        runtimes.load_predictor(damaged)


# Streaming: a fake model whose probability of class "a" is the image's mean
# brightness, so each result can be checked against the grey level of its file.
LEVELS = (0, 40, 80, 120, 160, 200, 240)


@pytest.fixture()
def grey_images(tmp_path):
    """Seven uniform grey PNGs, darkest first, named by their level."""
    paths = []
    for level in LEVELS:
        paths.append(tmp_path / f"grey_{level:03d}.png")
        Image.fromarray(np.full((40, 50, 3), level, np.uint8)).save(paths[-1])
    return paths


@pytest.fixture()
def recorded(monkeypatch):
    """Replaces the model with the brightness model and records what it and the image loader see."""
    events = {"loads": 0, "batches": [], "loads_at_batch": []}
    real_load = images.load_image

    def load_image(path):
        events["loads"] += 1
        return real_load(path)

    def run(batch):
        events["batches"].append(len(batch))
        events["loads_at_batch"].append(events["loads"])
        bright = (batch.mean(axis=(1, 2, 3)) + 1) / 2  # "bn" scales pixels to [-1, 1]
        return np.stack([bright, 1 - bright, np.zeros_like(bright)], axis=-1)

    info = model_info.ModelInfo("bn", 32, ("a", "b", "c"))
    monkeypatch.setattr(images, "load_image", load_image)
    monkeypatch.setattr(runtimes, "load_predictor", lambda model, labels=None: runtimes.Predictor(model, info, run, "fake"))
    return events


def test_predict_runs_the_images_in_batches_of_batch_size_in_order(grey_images, recorded):
    rows = predict.predict("model.keras", grey_images, top=2, batch_size=3)
    assert recorded["batches"] == [3, 3, 1]
    assert recorded["loads_at_batch"] == [3, 6, 7]  # never more than one batch decoded ahead
    for level, row in zip(LEVELS, rows):
        brightest = ("a", level / 255) if level >= 128 else ("b", 1 - level / 255)
        assert row[0][0] == brightest[0] and row[0][1] == pytest.approx(brightest[1], abs=1e-5)


def test_iter_predictions_reads_only_the_first_batch_before_the_first_result(grey_images, recorded):
    results = predict.iter_predictions("model.keras", grey_images, top=1, batch_size=2)
    assert recorded["loads"] == 0
    first = next(results)
    assert recorded["loads"] == 2 and first.image == str(grey_images[0]) and first.classes[0][0] == "b"
    assert [result.image for result in results] == [str(path) for path in grey_images[1:]]


def test_print_predictions_prints_each_batch_before_decoding_the_next(grey_images, recorded):
    loads_when_printed = []

    def record(line):
        loads_when_printed.append(recorded["loads"])

    predict.print_predictions("model.keras", grey_images, top=1, batch_size=3, print_fn=record)
    assert loads_when_printed == [3] * 6 + [6] * 6 + [7] * 2  # two lines per image


@pytest.fixture()
def with_unreadable(grey_images):
    """The grey images with a text file named .jpg and a truncated JPEG between them."""
    folder = grey_images[0].parent
    broken, truncated = folder / "grey_050_broken.jpg", folder / "grey_100_truncated.jpg"
    broken.write_text("not an image")
    jpeg = io.BytesIO()
    Image.fromarray(np.full((40, 50, 3), 100, np.uint8)).save(jpeg, "JPEG")
    truncated.write_bytes(jpeg.getvalue()[:200])  # the header is valid; the pixels are cut off
    return folder, broken, truncated


def test_an_unreadable_image_is_named_in_a_warning_and_the_others_are_classified(with_unreadable, grey_images, recorded):
    folder, broken, truncated = with_unreadable
    with pytest.warns(predict.UnreadableImageWarning) as warned:
        rows = predict.predict("model.keras", folder, top=3, batch_size=4)  # the folder, sorted: 040 broken 080 100-truncated ...
    assert [str(w.message) for w in warned] == [
        f"The file is not a readable image (UnidentifiedImageError). Received: image='{broken}'",
        f"The file is not a readable image (OSError). Received: image='{truncated}'",
    ]
    assert len(rows) == len(LEVELS) + 2 and rows[2] is None and rows[4] is None
    good = [row for row in rows if row is not None]
    assert good == predict.predict("model.keras", grey_images, top=3, batch_size=4)


def test_print_predictions_names_an_unreadable_image_once_in_its_place_and_returns_it(with_unreadable, recorded, capsys):
    folder, broken, truncated = with_unreadable
    failed = predict.print_predictions("model.keras", folder, top=1)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert failed == [str(broken), str(truncated)]
    assert lines[4] == f"{broken}: error: The file is not a readable image (UnidentifiedImageError). Received: image='{broken}'"
    assert lines[5] == f"{folder / 'grey_080.png'}:"
    assert lines[7] == f"{truncated}: error: The file is not a readable image (OSError). Received: image='{truncated}'"
    assert len(lines) == 2 * len(LEVELS) + 2
    assert err == ""  # once, in its place among the results, not again as a warning


@pytest.mark.parametrize("name, value", [("top", 0), ("batch_size", 0), ("batch_size", 2.0), ("batch_size", True)])
def test_top_and_batch_size_must_be_positive_ints(grey_images, recorded, name, value):
    with pytest.raises(ValueError, match=f"must be an int >= 1. Received: {name}={value!r}"):
        predict.iter_predictions("model.keras", grey_images, **{name: value})


@pytest.mark.slow  # a GoogLeNet saved and predicted: outside the quick tier's scope
def test_streamed_predictions_equal_one_batch_of_all_photos(tmp_path, photo_paths):
    model = kg.GoogLeNet(variant="bn", input_shape=(96, 96, 3), aux_heads=False, classes=10)
    model.save(tmp_path / "ten.keras")
    streamed = predict.predict(tmp_path / "ten.keras", photo_paths, top=10, batch_size=4)  # batches of 4 and 2

    # The whole folder as one batch, ranked here.
    probabilities = model.predict(images.prepare_images(photo_paths, 96, "bn"), verbose=0)
    assert len(streamed) == len(photo_paths)
    for row, expected in zip(streamed, probabilities):
        assert [name for name, _ in row] == [str(i) for i in np.argsort(-expected, kind="stable")]
        np.testing.assert_allclose([score for _, score in row], np.sort(expected)[::-1], atol=1e-6)


def test_predict_command_names_an_unreadable_image_once_and_exits_1(with_unreadable, recorded, capsys, tmp_path, monkeypatch):
    folder, broken, truncated = with_unreadable
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.keras").touch()  # the brightness model stands in for it (`recorded`)
    assert cli.main(["predict", "model.keras", str(folder), "--top-k", "1"]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 2 * len(LEVELS) + 2
    assert lines[4] == f"{broken}: error: The file is not a readable image (UnidentifiedImageError). Received: image='{broken}'"
    assert sum(str(broken) in line for line in (out + err).splitlines()) == 1
    assert sum(str(truncated) in line for line in (out + err).splitlines()) == 1


def test_predict_without_images_classifies_the_bundled_photos_from_wherever_the_package_is(recorded, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no clone here: the photos come from the installed package
    (tmp_path / "model.keras").touch()
    assert cli.main(["predict", "model.keras", "--top-k", "1"]) == 0
    shown = [line[:-1] for line in capsys.readouterr().out.splitlines() if line.endswith(":")]
    assert shown == [str(path) for path in images.sample_photos()] and len(shown) == 6


def test_predict_command_refuses_cam_for_an_export_before_any_work(tmp_path, capsys):
    (tmp_path / "m.tflite").touch()
    assert cli.main(["predict", str(tmp_path / "m.tflite"), str(tmp_path), "--cam", str(tmp_path / "cams")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--cam needs a .keras checkpoint" in err and "MODEL=" in err
    assert not (tmp_path / "cams").exists()


def test_every_path_that_is_no_image_is_named_for_what_it_is_and_the_others_are_classified(grey_images, recorded, tmp_path, capsys):
    folder = grey_images[0].parent
    (folder / "album.jpg").mkdir()  # a folder named like an image, inside a folder given
    (folder / "gone.jpg").symlink_to(folder / "deleted.jpg")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    (tmp_path / "empty").mkdir()
    scan = tmp_path / "scan.tif"
    Image.fromarray(np.full((40, 50, 3), 100, np.uint8)).save(scan)  # Pillow reads it; training could not
    failed = predict.print_predictions("model.keras", [folder, tmp_path / "empty", scan], top=1)
    errors = dict(line.split(": error: ") for line in capsys.readouterr().out.splitlines() if ": error: " in line)
    types = ".jpg, .jpeg, .png, .gif, .bmp, .webp"
    assert errors == {
        str(folder / "album.jpg"): f"The image file is a folder that holds no images ({types}). Received: image='{folder / 'album.jpg'}'",
        str(folder / "gone.jpg"): f"The image file is a broken link (to '{folder / 'deleted.jpg'}'). Received: image='{folder / 'gone.jpg'}'",
        str(folder / "loop.png"): f"The image file is a symbolic link loop. Received: image='{folder / 'loop.png'}'",
        str(tmp_path / "empty"): f"The image file is a folder that holds no images ({types}). Received: image='{tmp_path / 'empty'}'",
        str(scan): f"The image file has an extension that is not read ('.tif'; the image types are {types}). Received: image='{scan}'",
    }
    assert sorted(failed) == sorted(errors)
    assert recorded["loads"] == len(LEVELS) + 5  # every grey image classified besides


def test_after_twenty_unreadable_images_the_others_are_counted_and_listed_in_a_file(grey_images, recorded, tmp_path, capsys):
    bad = [tmp_path / f"bad_{index:02d}.jpg" for index in range(25)]
    for path in bad:
        path.write_text("not an image")
    failed = predict.print_predictions("model.keras", [*bad, grey_images[0]], top=1)
    lines = capsys.readouterr().out.splitlines()
    assert failed == [str(path) for path in bad]
    assert [line.split(": error: ")[0] for line in lines[:20]] == [str(path) for path in bad[:20]]
    assert lines[20:22] == [f"{grey_images[0]}:", lines[21]]  # the good image after them, in its place
    listed = lines[-1].rsplit(" ", 1)[1]
    assert lines[-1] == f"25 images could not be read; the first 20 are named above, all of them in {listed}"
    assert len(lines) == 23
    assert [line.split(": error: ")[0] for line in pathlib.Path(listed).read_text().splitlines()] == [str(path) for path in bad]
