"""Classifying with MediaPipe Tasks' ImageClassifier: the check that a `.tflite` is deployable.

MediaPipe reads what an Android or iOS app reads: the TFLite metadata (input
normalization, class names from the zipped labels file). It runs in a child
process: mediapipe 1.2.3 imports TensorFlow pieces and OpenCV of its own, and
OpenCV imported after TensorFlow in one process has segfaulted here. This
module imports nothing from the package, so the child (this file run as a
script) does not load Keras.

MediaPipe resizes the whole frame to the model's input, stretching it: give
it crops already centre-cropped to the model's size, so its resize is the
identity.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np


def is_available():
    """Whether the `mediapipe` package is installed."""
    return importlib.util.find_spec("mediapipe") is not None


def classify(model, crops, max_results=5, timeout=600):
    """Top classes of RGB uint8 crops by MediaPipe's ImageClassifier.

    Args:
        model: a `.tflite` file with TFLite metadata.
        crops: uint8 RGB images (n, size, size, 3) at the model's input size.
        max_results: how many classes per image; ``-1`` for all.
        timeout: seconds the child process may take.

    Returns:
        Per image, a list of ``(index, score, category_name)``, best first.
    """
    if not is_available():
        raise ImportError("MediaPipe is not installed: pip install mediapipe")
    crops = np.asarray(crops)
    if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[-1] != 3:
        raise ValueError(f"crops must be uint8 RGB images (n, height, width, 3). Received: crops.dtype={crops.dtype}, crops.shape={crops.shape}")
    if not os.path.isfile(model):
        raise FileNotFoundError(f"The model file does not exist. Received: model={str(model)!r}")
    with tempfile.TemporaryDirectory() as scratch:
        inputs, outputs = pathlib.Path(scratch, "crops.npy"), pathlib.Path(scratch, "results.json")
        np.save(inputs, crops)
        command = [sys.executable, str(pathlib.Path(__file__).resolve()), str(model), str(inputs), str(outputs), str(max_results)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            reason = lines[-1] if lines else f"exit status {done.returncode}"
            raise RuntimeError(f"MediaPipe's ImageClassifier failed on the model: {reason} Received: model={str(model)!r}")
        return [[tuple(category) for category in image] for image in json.loads(outputs.read_text())]


def _classify_here(model, crops, max_results):
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=model), max_results=max_results)
    results = []
    with vision.ImageClassifier.create_from_options(options) as classifier:
        for crop in crops:
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(crop))
            categories = classifier.classify(image).classifications[0].categories
            results.append([(c.index, float(c.score), c.category_name) for c in categories])
    return results


def _without_tensorflow():
    """Makes ``import tensorflow`` fail in this (child) process.

    mediapipe 1.2.3's `mediapipe.tasks.python.core.optional_dependencies`
    imports TensorFlow, when installed, only for a documentation decorator,
    and falls back to a no-op on `ModuleNotFoundError`: 4.5 s and about
    0.5 GB per classification with TensorFlow installed, 0.7 s without.
    """
    sys.modules["tensorflow"] = None


if __name__ == "__main__":
    _without_tensorflow()
    model_path, crops_path, results_path, top = sys.argv[1:5]
    found = _classify_here(model_path, np.load(crops_path), int(top))
    pathlib.Path(results_path).write_text(json.dumps(found))
