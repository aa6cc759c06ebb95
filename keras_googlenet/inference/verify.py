"""Measuring each export against the Keras model it came from.

Every export is run in its own runtime (see `runtimes.load_predictor`) on real
images and compared with the Keras model: max |Δ probability|, top-1
agreement, top-5 overlap, how often the top-5 is identical (in order), file
size and batch-1 latency, each checked against the threshold of its kind.
"""

import dataclasses
import gc
import importlib.resources
import json
import os
import pathlib
import statistics
import time

import numpy as np

from keras_googlenet.export import convert as export
from keras_googlenet.model import imagenet_utils
from keras_googlenet.inference import mediapipe_client, runtimes
from keras_googlenet.data import images as images_lib


def default_images():
    """The sample photos installed with the package: ``keras_googlenet/assets/photos``."""
    return str(importlib.resources.files("keras_googlenet") / "assets" / "photos")


DEFAULT_IMAGES = default_images()
FP32_MAX_ABS_DIFF = 1e-5  # float32 exports differ only by op order
FP16_MIN_TOP1 = 1.0  # float16 weights may move probabilities, never the winner
INT8_MIN_TOP1 = 0.99  # integer exports, measured on a set large enough for 1%
# MediaPipe runs the same TFLite kernels after its own (identity) resize and
# a uint8-to-float conversion: 1e-4 leaves room for that, and the top-5 order must hold.
MEDIAPIPE_FP32_MAX_ABS_DIFF = 1e-4
LATENCY_RUNS = 5
MEDIAPIPE_SKIPPED = (
    "MediaPipe rows skipped: the mediapipe package is not installed "
    "(pip install mediapipe to also run each .tflite as an app does; --no-mediapipe hides this line)."
)


@dataclasses.dataclass(frozen=True)
class ParityRow:
    """One export compared with the Keras model."""

    name: str
    path: str
    images: int
    max_abs_diff: float
    top1_agreement: float
    top5_overlap: float
    top5_identical: float  # the same top-5 in the same order; the int8 file's float softmax makes it mean something
    size_bytes: int
    latency_ms: float
    threshold: str
    passed: bool


@dataclasses.dataclass(frozen=True)
class ParityReport:
    checkpoint: str
    rows: tuple
    notes: tuple = ()  # one line each, printed under the table: rows that were skipped and why

    @property
    def failures(self):
        return [row for row in self.rows if not row.passed]

    def to_json(self):
        return {"checkpoint": self.checkpoint, "rows": [dataclasses.asdict(row) for row in self.rows], "notes": list(self.notes)}

    def save(self, path):
        pathlib.Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return str(path)

    def table(self):
        """The report as a Markdown table."""
        lines = [
            "| export | images | max abs Δprob | top-1 agreement | top-5 overlap | top-5 identical | size | batch-1 latency "
            "| threshold | pass |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
        ]
        for row in self.rows:
            lines.append(
                f"| {row.name} | {row.images} | {row.max_abs_diff:.2e} | {row.top1_agreement:.1%} | "
                f"{row.top5_overlap:.1%} | {row.top5_identical:.1%} | {row.size_bytes / 2**20:.1f} MiB | "
                f"{'-' if row.latency_ms is None else f'{row.latency_ms:.1f} ms'} | "
                f"{row.threshold} | {'yes' if row.passed else 'NO'} |"
            )
        return "\n".join(lines)


class ParityError(ValueError):
    """An export missed its threshold."""


def find_exports(folder):
    """The exports in a folder written by `export.export`, by name."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"The export folder does not exist. Received: exports={str(folder)!r}")
    found = {}
    if (folder / "saved_model" / "saved_model.pb").is_file():
        found["savedmodel"] = str(folder / "saved_model")
    # fp32, fp16, dynamic, int8 (then int8 with another input type): from the largest file to the smallest.
    for path in sorted(folder.glob("*.tflite"), key=lambda p: (_tflite_order(_quantization(_tflite_name(p))), p.name)):
        found[_tflite_name(path)] = str(path)
    for path in sorted(folder.glob("*.onnx")):
        found["onnx"] = str(path)
    if not found:
        raise ValueError(f"The folder holds no SavedModel, .tflite or .onnx export. Received: exports={str(folder)!r}")
    return found


def _tflite_name(path):
    """``tflite_<kind>`` from the file name: from its first quantization word on (``googlenet_int8_float32_input``: ``tflite_int8_float32_input``), or its last word."""
    words = pathlib.Path(path).stem.split("_")
    first = next((i for i, word in enumerate(words) if word in export.QUANTIZATIONS), len(words) - 1)
    return "tflite_" + "_".join(words[first:])


def _quantization(name):
    """``"int8"`` for ``tflite_int8_float32_input``: the quantization an export name starts with, or its word after ``tflite_``."""
    return name.split("_")[1] if name.startswith("tflite_") else name


def _image_set(name):
    """Which image set an export is judged on: the integer files (int8, dynamic) on ``int8_images``."""
    return "int8" if name.startswith("tflite_") and _quantization(name) in ("int8", "dynamic") else "float"


def _tflite_order(kind):
    return export.QUANTIZATIONS.index(kind) if kind in export.QUANTIZATIONS else len(export.QUANTIZATIONS)


def verify(checkpoint, exports, images=DEFAULT_IMAGES, int8_images=None, labels=None, mediapipe=True):
    """Compares every export with the checkpoint's Keras model.

    Thresholds: max |Δ probability| <= 1e-5 for the float32 exports
    (SavedModel, ONNX, ``tflite_fp32``); top-1 agreement of 100% for
    ``tflite_fp16``; >= 99% for ``tflite_dynamic`` and ``tflite_int8`` (and
    ``tflite_int8_<type>_input``), on
    ``int8_images``.

    Args:
        checkpoint: the `.keras` checkpoint the exports were made from.
        exports: a dict from export name to path (as `export.export` returns)
            or a folder written by it.
        images: image files or folders (the package's sample photos by default), an
            array of raw RGB uint8 images (n, height, width, 3), or a dataset
            source (``"digits"``, ...) whose validation split is read.
        int8_images: the set for the integer exports, as ``images``; it
            should hold a few hundred images so that 1% is measurable.
            Defaults to ``images``.
        labels: passed on to `runtimes.load_predictor`.
        mediapipe: where the `mediapipe` package is installed, also run each
            `.tflite` in MediaPipe Tasks' ImageClassifier, the client an app
            uses, and add a ``mediapipe_<kind>`` row.

    Returns:
        A `ParityReport`. `assert_parity` raises when a threshold is missed.
    """
    exports = find_exports(exports) if isinstance(exports, (str, os.PathLike)) else dict(exports)
    if isinstance(images, str) and images == DEFAULT_IMAGES and not os.path.isdir(images):
        raise FileNotFoundError(
            f"The package's sample photos are not installed: pass `images` (--images). Received: images={images!r}"
        )
    sets = {"float": images, "int8": images if int8_images is None else int8_images}
    # One runtime at a time, the images read afresh for each, one batch at a
    # time: only the reference probabilities are kept. Holding every
    # runtime and the whole set as one batch peaked at 5.5 GB.
    reference = runtimes.load_predictor(checkpoint, labels=labels)
    info = reference.info
    expected = {"float": _run(reference, sets["float"], info)}
    expected["int8"] = expected["float"] if int8_images is None else _run(reference, sets["int8"], info)
    del reference
    gc.collect()

    rows = []
    for name, path in exports.items():
        kind = _image_set(name)
        predictor = runtimes.load_predictor(path, labels=labels)
        # Each runtime gets the crops in its own convention (raw or scaled pixels).
        rows.append(_compare(name, path, predictor, _batches(sets[kind], predictor.info), expected[kind]))
        del predictor
        gc.collect()
    notes = ()
    if mediapipe and mediapipe_client.is_available():
        rows.extend(_mediapipe_rows(exports, sets, expected, info))
    elif mediapipe and any(name.startswith("tflite_") for name in exports):
        notes = (MEDIAPIPE_SKIPPED,)
    return ParityReport(str(checkpoint), tuple(rows), notes)


def _batches(images, info):
    """Float batches of `images.BATCH_SIZE` crops, read as they are needed, in ``info``'s convention.

    The crops are rounded to uint8 pixels first, as an app's image library
    gives them: MediaPipe takes uint8 only, and every row then compares the
    same pixels.
    """
    for raw in images_lib.batches(images_lib.iter_images(images, split="validation")):
        crops = _pixel_crops(raw, info)
        yield crops if info.raw_pixels else imagenet_utils.preprocess_input(crops, variant=info.variant)


def _pixel_crops(raw, info):
    crops = images_lib.prepare_images(raw, info.image_size, info.variant, raw_pixels=True)
    return np.clip(np.round(crops), 0, 255).astype(np.float32)


def _mediapipe_rows(exports, sets, expected, info):
    """Each .tflite as MediaPipe Tasks' ImageClassifier runs it in an app: metadata, labels, uint8 pixels.

    The crops are already the model's size, so MediaPipe's own resize is the
    identity. Thresholds: float32 gives the Keras top-5 in order and
    probabilities within 1e-4; the others as their LiteRT rows.
    """
    rows = []
    for name, path in exports.items():
        if not name.startswith("tflite_"):
            continue
        kind = _image_set(name)
        crops = np.concatenate([_pixel_crops(raw, info) for raw in images_lib.batches(
            images_lib.iter_images(sets[kind], split="validation"))]).astype(np.uint8)
        found = mediapipe_client.classify(path, crops, max_results=-1)
        scores = np.zeros_like(expected[kind])
        for row, categories in zip(scores, found):
            for index, score, _ in categories:
                row[index] = score
        # No latency: each call starts a MediaPipe process.
        rows.append(_row(f"mediapipe_{name.split('_', 1)[1]}", path, scores, expected[kind], None, identical_top5=True))
    return rows


def _run(predictor, images, info):
    """The probabilities of every image, batch by batch."""
    probabilities = [predictor(batch) for batch in _batches(images, info)]
    if not probabilities:
        raise ValueError(f"There are no images to compare on. Received: images={images!r}")
    return np.concatenate(probabilities)


def _compare(name, path, predictor, batches, expected):
    """Streams ``batches`` through ``predictor`` and compares with ``expected``, row for row."""
    outputs, single = [], None
    for batch in batches:
        if single is None:
            single = batch[:1].copy()  # the latency input, the set's first image; a view would keep the batch
        outputs.append(predictor(batch))  # (n, classes) probabilities: small beside the images
    return _row(name, path, np.concatenate(outputs), expected, _latency_ms(predictor, single))


def _row(name, path, probabilities, expected, latency_ms, identical_top5=False):
    """One `ParityRow`: the agreement of ``probabilities`` with ``expected`` and the export's threshold."""
    k = min(5, expected.shape[-1])
    top1 = float(np.mean(probabilities.argmax(-1) == expected.argmax(-1)))
    overlap = float(np.mean([len(set(np.argsort(a)[-k:]) & set(np.argsort(b)[-k:])) / k for a, b in zip(probabilities, expected)]))
    identical = float(np.mean([
        list(np.argsort(-a, kind="stable")[:k]) == list(np.argsort(-b, kind="stable")[:k]) for a, b in zip(probabilities, expected)
    ]))
    max_abs_diff = float(np.abs(probabilities - expected).max())
    float32 = name in ("savedmodel", "onnx", "tflite_fp32", "mediapipe_fp32")
    if float32 and identical_top5:
        threshold = f"same top-5, max abs Δprob <= {MEDIAPIPE_FP32_MAX_ABS_DIFF:g}"
        passed = identical == 1.0 and max_abs_diff <= MEDIAPIPE_FP32_MAX_ABS_DIFF
    elif float32:
        threshold, passed = f"max abs Δprob <= {FP32_MAX_ABS_DIFF:g}", max_abs_diff <= FP32_MAX_ABS_DIFF
    elif name.endswith("_fp16"):
        threshold, passed = f"top-1 >= {FP16_MIN_TOP1:.0%}", top1 >= FP16_MIN_TOP1
    else:
        threshold, passed = f"top-1 >= {INT8_MIN_TOP1:.0%}", top1 >= INT8_MIN_TOP1
    return ParityRow(name, str(path), len(expected), max_abs_diff, top1, overlap, identical, _size(path), latency_ms, threshold, passed)


def _size(path):
    if os.path.isdir(path):
        return sum(p.stat().st_size for p in pathlib.Path(path).rglob("*") if p.is_file())
    return os.path.getsize(path)


def _latency_ms(predictor, single):
    predictor(single)  # warm-up: the first call builds kernels and resizes TFLite tensors
    times = []
    for _ in range(LATENCY_RUNS):
        start = time.perf_counter()
        predictor(single)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def assert_parity(report):
    """Raises `ParityError` naming every export that missed its threshold."""
    if report.failures:
        missed = "; ".join(
            f"{row.name}: max abs Δprob {row.max_abs_diff:.2e}, top-1 {row.top1_agreement:.1%}, needs {row.threshold}"
            for row in report.failures
        )
        raise ParityError(f"Exports missed their parity threshold. Received: {missed}")
    return report


def run(checkpoint, exports, images=DEFAULT_IMAGES, int8_images=None, report_path=None, labels=None, print_fn=print,
        mediapipe=True):
    """Verifies, prints the table, saves the JSON and raises on a missed threshold."""
    report = verify(checkpoint, exports, images=images, int8_images=int8_images, labels=labels, mediapipe=mediapipe)
    print_fn(report.table())
    for note in report.notes:
        print_fn(note)
    if report_path is not None:
        print_fn(f"Saved the report to {report.save(report_path)}")
    return assert_parity(report)
