"""Quiet by default: the converter's, tf2onnx's and LiteRT's own chatter is hidden unless --debug; real errors pass."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from keras_googlenet import native_stderr
from keras_googlenet.export import convert as export
from keras_googlenet.inference import runtimes

# The commands' output: outside the quick tier's scope (the builder, the weight readers,
# preprocessing, the CLI's checks, the metadata writer, storage), so the full tier only.
pytestmark = pytest.mark.slow

CHATTER = ("fully_quantize:", "XNNPACK delegate", "np.object")


def test_int8_export_onnx_export_and_a_tflite_prediction_print_no_native_chatter(tmp_path, tiny_model, capfd, tiny_info):
    calibration = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype(np.float32)
    tflite = export.export_tflite(tiny_model, tmp_path / "int8.tflite", quantize="int8", calibration_data=calibration, info=tiny_info)
    export.export_onnx(tiny_model, tmp_path / "model.onnx", info=tiny_info)
    probabilities = runtimes.load_predictor(tflite)(calibration[:2])
    err = capfd.readouterr().err
    assert probabilities.shape == (2, 3)
    assert not [line for line in err.splitlines() if any(word in line for word in CHATTER)], err


def test_predict_on_a_tflite_prints_the_runtime_line_only_with_debug(tmp_path, tiny_model, tiny_info):
    # A child process each: LiteRT prints its line for the first delegate of a process only.
    from keras_googlenet.data import images

    tflite = export.export_tflite(tiny_model, tmp_path / "fp32.tflite", info=tiny_info)
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).resolve().parents[1])}
    command = [sys.executable, "-m", "keras_googlenet.cli", "predict", tflite, str(images.sample_photo("owl.jpg")), "--top-k", "1"]
    runs = [
        subprocess.Popen(command + extra, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for extra in ([], ["--debug"])
    ]  # side by side
    (quiet_out, quiet_err), (debug_out, debug_err) = (run.communicate(timeout=300) for run in runs)
    assert [run.returncode for run in runs] == [0, 0], quiet_err + debug_err
    assert quiet_out == debug_out and quiet_out.startswith(f"{images.sample_photo('owl.jpg')}:")
    assert "XNNPACK" not in quiet_err, quiet_err
    assert "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." in debug_err


def test_quiet_hides_only_the_known_lines_and_lets_errors_through(capfd):
    with native_stderr.quiet():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"fully_quantize: 0, inference_type: 6, input_inference_type: UINT8, output_inference_type: UINT8\n")
        os.write(2, b"I0000 00:00:1795988335.523440    8409 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"E0000 00:00:1795988335.523440    8409 model.cc:1] a real error\n")
        os.write(2, b"Segmentation fault in the converter\n")
    assert capfd.readouterr().err.splitlines() == [
        "E0000 00:00:1795988335.523440    8409 model.cc:1] a real error",
        "Segmentation fault in the converter",
    ]


def test_quiet_writes_back_what_was_written_before_an_exception():
    with pytest.raises(RuntimeError), native_stderr.quiet():
        raise RuntimeError("boom")
    assert os.fstat(2)  # fd 2 is restored
