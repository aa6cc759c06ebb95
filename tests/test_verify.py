"""Every export, run in its own runtime, meets its parity threshold against Keras."""

import json

import pytest

from keras_googlenet import verify


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
def test_report_is_saved_as_json_and_printed_as_a_table(report, tmp_path, digits_exports):
    saved = json.loads(open(report.save(tmp_path / "parity.json")).read())
    assert [row["name"] for row in saved["rows"]] == list(digits_exports)
    assert all(row["passed"] and row["size_bytes"] > 1e6 and row["latency_ms"] > 0 for row in saved["rows"])
    lines = report.table().splitlines()
    assert len(lines) == 2 + len(digits_exports)
    assert lines[2].startswith("| savedmodel | 6 |") and lines[2].endswith("| yes |")


@pytest.mark.slow
def test_a_missed_threshold_fails_with_one_line_naming_the_export(digits_checkpoint, digits_exports, photo_paths):
    # An int8 model posing as fp32 cannot be within 1e-5 of Keras.
    report = verify.verify(digits_checkpoint, {"tflite_fp32": digits_exports["tflite_int8"]}, images=photo_paths[:2])
    assert report.rows[0].max_abs_diff > 1e-5 and not report.rows[0].passed
    with pytest.raises(verify.ParityError, match=r"missed their parity threshold\. Received: tflite_fp32: max abs Δprob .* needs max abs Δprob <= 1e-05") as raised:
        verify.assert_parity(report)
    assert "\n" not in str(raised.value)


def test_export_folder_without_exports_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=f"holds no SavedModel, .tflite or .onnx export. Received: exports='{tmp_path}'"):
        verify.find_exports(tmp_path)
