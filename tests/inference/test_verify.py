"""Every export, run in its own runtime, meets its parity threshold against Keras."""

import gc
import json
import pathlib
import weakref

import numpy as np
import pytest

import keras_googlenet
from keras_googlenet.data import images
from keras_googlenet.artifacts import model_info
from keras_googlenet.inference import runtimes, verify


@pytest.fixture(scope="module")
def report(digits_held_out, digits_checkpoint, digits_exports, photo_paths):
    return verify.verify(digits_checkpoint, digits_exports, images=photo_paths, int8_images=digits_held_out[0])


@pytest.mark.slow
def test_float32_exports_match_keras_within_1e_5(report, photo_paths):
    rows = {row.name: row for row in report.rows}
    for name in ("savedmodel", "tflite_fp32", "onnx"):
        assert rows[name].images == len(photo_paths)
        assert rows[name].max_abs_diff <= 1e-5, name
        assert rows[name].top1_agreement == 1.0 and rows[name].top5_overlap == 1.0, name


@pytest.mark.slow
def test_fp16_tflite_agrees_on_top1_for_every_photo(report, photo_paths):
    row = next(row for row in report.rows if row.name == "tflite_fp16")
    assert row.images == len(photo_paths)
    assert row.top1_agreement == 1.0


@pytest.mark.slow
def test_integer_tflite_agrees_on_top1_for_99_percent_of_held_out_digits(report, digits_held_out):
    held_out = len(digits_held_out[0])
    for name in ("tflite_dynamic", "tflite_int8"):
        row = next(row for row in report.rows if row.name == name)
        assert row.images == held_out >= 300
        assert row.top1_agreement >= 0.99, (name, row.top1_agreement)


@pytest.mark.slow
def test_int8_rows_report_a_top5_identity_that_means_something(report):
    # The int8 file's softmax runs in float: no more ties of 1/256 after the first class.
    # Measured 85.9% on the 397 held-out digits; a uint8 output gave 10.8%.
    rows = [row for row in report.rows if row.name.endswith("_int8")]
    assert rows and all(row.top5_identical >= 0.65 for row in rows), [(row.name, row.top5_identical) for row in rows]
    assert all(row.top5_identical == 1.0 for row in report.rows if row.name in ("tflite_fp32", "onnx", "savedmodel"))


@pytest.mark.slow
def test_report_is_saved_as_json_and_printed_as_a_table(report, tmp_path, digits_exports):
    saved = json.loads(open(report.save(tmp_path / "parity.json")).read())
    runtimes = [row for row in saved["rows"] if not row["name"].startswith("mediapipe_")]
    assert [row["name"] for row in runtimes] == list(digits_exports)
    assert all(row["passed"] and row["size_bytes"] > 1e6 and row["latency_ms"] > 0 for row in runtimes)
    lines = report.table().splitlines()
    assert len(lines) == 2 + len(saved["rows"])
    assert lines[2].startswith("| savedmodel | 6 |") and lines[2].endswith("| yes |")


@pytest.mark.slow
@pytest.mark.needs("mediapipe", "pip install mediapipe")
def test_mediapipe_runs_every_tflite_as_an_app_would_and_meets_its_threshold(report, photo_paths, digits_held_out):
    rows = {row.name: row for row in report.rows if row.name.startswith("mediapipe_")}
    assert sorted(rows) == ["mediapipe_dynamic", "mediapipe_fp16", "mediapipe_fp32", "mediapipe_int8", "mediapipe_int8_float32_input"]
    fp32 = rows["mediapipe_fp32"]
    assert fp32.images == len(photo_paths) and fp32.max_abs_diff <= 1e-4 and fp32.threshold.startswith("same top-5")
    assert rows["mediapipe_int8"].images == len(digits_held_out[0]) and rows["mediapipe_int8"].top1_agreement >= 0.99
    assert all(row.passed and row.latency_ms is None for row in rows.values())


@pytest.mark.slow
def test_a_missed_threshold_fails_with_one_line_naming_the_export(digits_checkpoint, digits_exports, photo_paths):
    # An int8 model posing as fp32 cannot be within 1e-5 of Keras.
    report = verify.verify(digits_checkpoint, {"tflite_fp32": digits_exports["tflite_int8"]}, images=photo_paths[:2])
    assert report.rows[0].max_abs_diff > 1e-5 and not report.rows[0].passed
    with pytest.raises(verify.ParityError, match=r"missed their parity threshold\. Received: tflite_fp32: max abs Δprob .* needs max abs Δprob <= 1e-05") as raised:
        verify.assert_parity(report)
    assert "\n" not in str(raised.value)


def test_export_folder_is_read_by_file_name_from_the_largest_file_kind_to_the_smallest(tmp_path):
    names = ["googlenet_int8_float32_input", "googlenet_int8", "googlenet_fp16", "googlenet_fp32", "my_dynamic", "custom"]
    for name in names:
        (tmp_path / f"{name}.tflite").write_bytes(b"")
    (tmp_path / "googlenet.onnx").write_bytes(b"")
    found = verify.find_exports(tmp_path)
    assert list(found) == ["tflite_fp32", "tflite_fp16", "tflite_dynamic", "tflite_int8", "tflite_int8_float32_input", "tflite_custom", "onnx"]
    assert found["tflite_int8_float32_input"] == str(tmp_path / "googlenet_int8_float32_input.tflite")


def test_export_folder_without_exports_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=f"holds no SavedModel, .tflite or .onnx export. Received: exports='{tmp_path}'"):
        verify.find_exports(tmp_path)


# Streaming: fake runtimes that score an image by its mean brightness; each
# export is a file named for its case: "same" copies the reference, "flip" reverses its classes.
@pytest.fixture()
def fake_runtimes(monkeypatch, tmp_path):
    seen = {"batches": [], "alive_at_load": []}
    loaded = []

    def load_predictor(path, labels=None):
        gc.collect()
        seen["alive_at_load"].append(sum(ref() is not None for ref in loaded))

        def run(batch):
            seen["batches"].append((pathlib.Path(path).stem, len(batch)))
            bright = (batch.mean(axis=(1, 2, 3)) + 1) / 2
            probabilities = np.stack([0.1 + 0.8 * bright, 0.9 - 0.8 * bright], axis=-1)
            return probabilities[:, ::-1] if pathlib.Path(path).stem == "flip" else probabilities

        predictor = runtimes.Predictor(path, model_info.ModelInfo("bn", 16, ("dark", "bright")), run, "fake")
        loaded.append(weakref.ref(predictor))
        return predictor

    monkeypatch.setattr(runtimes, "load_predictor", load_predictor)
    for name in ("same", "flip"):
        (tmp_path / name).write_bytes(b"model")
        seen[name] = str(tmp_path / name)
    return seen


def _greys(count):
    """``count`` uniform grey images, 20 x 24 px, levels spread over 0..255."""
    return np.repeat(np.linspace(0, 255, count).astype(np.uint8), 20 * 24 * 3).reshape(count, 20, 24, 3)


def test_verify_runs_one_runtime_at_a_time_on_batches_of_at_most_32(fake_runtimes):
    exports = {"onnx": fake_runtimes["same"], "tflite_fp16": fake_runtimes["flip"]}
    report = verify.verify("best.keras", exports, images=_greys(70), mediapipe=False)  # the fake files are no .tflite
    assert fake_runtimes["alive_at_load"] == [0, 0, 0]  # the reference, then each export, alone
    sizes = [size for _, size in fake_runtimes["batches"]]
    assert max(sizes) <= images.BATCH_SIZE
    # The reference and each export see all 70 images; then batch-1 latency runs.
    for name in ("best", "same", "flip"):
        assert sum(size for path, size in fake_runtimes["batches"] if path == name and size > 1) == 70
    same, flip = report.rows
    assert (same.images, same.max_abs_diff, same.top1_agreement, same.passed) == (70, 0.0, 1.0, True)
    assert flip.images == 70 and not flip.passed
    assert flip.top1_agreement == 0.0  # no grey of the 70 is exactly mid-way, where the classes would tie


def test_integer_exports_are_compared_on_their_own_set(fake_runtimes):
    exports = {"onnx": fake_runtimes["same"], "tflite_int8": fake_runtimes["same"]}
    report = verify.verify("best.keras", exports, images=_greys(3), int8_images=_greys(40), mediapipe=False)
    assert [row.images for row in report.rows] == [3, 40]


def test_default_images_are_the_photos_installed_with_the_package():
    assert verify.DEFAULT_IMAGES == verify.default_images()
    assert pathlib.Path(verify.default_images()) == pathlib.Path(keras_googlenet.__file__).parent / "assets" / "photos"


def test_missing_default_photos_are_named(tmp_path, monkeypatch):
    missing = str(tmp_path / "photos")
    monkeypatch.setattr(verify, "DEFAULT_IMAGES", missing)
    with pytest.raises(FileNotFoundError, match=f"sample photos are not installed: pass `images` \\(--images\\). Received: images='{missing}'"):
        verify.verify("best.keras", {"onnx": "model.onnx"}, images=missing)


def test_verify_says_in_one_line_that_the_mediapipe_rows_were_skipped_and_how_to_get_them(fake_runtimes, monkeypatch):
    from keras_googlenet.inference import mediapipe_client

    monkeypatch.setattr(mediapipe_client, "is_available", lambda: False)  # as without `pip install mediapipe`
    printed = []
    exports = {"tflite_fp32": fake_runtimes["same"]}
    verify.run("best.keras", exports, images=_greys(3), print_fn=printed.append)
    table, note = printed
    assert "| tflite_fp32 |" in table and "mediapipe" not in table
    assert note.startswith("MediaPipe rows skipped: the mediapipe package is not installed (pip install mediapipe")
    assert "\n" not in note


def test_verify_adds_no_skip_line_when_mediapipe_was_turned_off_or_there_is_no_tflite(fake_runtimes, monkeypatch):
    from keras_googlenet.inference import mediapipe_client

    monkeypatch.setattr(mediapipe_client, "is_available", lambda: False)
    assert verify.verify("best.keras", {"tflite_fp32": fake_runtimes["same"]}, images=_greys(3), mediapipe=False).notes == ()
    assert verify.verify("best.keras", {"onnx": fake_runtimes["same"]}, images=_greys(3)).notes == ()
