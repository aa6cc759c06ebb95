"""examples/web, MediaPipe Tasks for Web in headless Chromium, agrees with `predict` on the bundled photos.

The page crops the centre square as `evaluate` does (a region of interest), so
each photo goes to the page already resized as `augment.eval_transform` resizes
it (shorter side 91 for an 80 px model), as a lossless PNG: MediaPipe's crop is
then the exact uint8 crop that `predict` classifies, with nothing resampled.

Chromium, chromedriver and examples/web/node_modules (`npm ci`) are test
dependencies that pip does not install: without them these tests skip on a
developer's machine and fail in CI (`CI` set), so that CI cannot go green by
skipping.
"""

import os
import pathlib
import shutil

import numpy as np
import pytest

import keras_googlenet as kg
from keras_googlenet.data import augment, images
from keras_googlenet.inference import runtimes

import browser
import digits_models
import tflite_ops

WEB = pathlib.Path(__file__).resolve().parents[2] / "examples" / "web"
SIZE = digits_models.SIZE  # conftest's digits models
CLASSES = 10
DIGITS_ON_THE_PAGE = 12
# Where to keep the site's screenshot (docs/web/page.png); a tmp_path otherwise.
SCREENSHOT_ENV = "KERAS_GOOGLENET_WEB_SCREENSHOT"

pytestmark = [pytest.mark.slow, pytest.mark.alone]  # Chromium: about 2 GB


def _missing():
    for path, how in (
        (browser.CHROMIUM, "apt-get install chromium"),
        (browser.CHROMEDRIVER, "apt-get install chromium-driver"),
        (WEB / "node_modules" / "@mediapipe" / "tasks-vision" / "wasm", "cd examples/web && npm ci"),
    ):
        if not path.exists():
            return f"{path} is missing ({how})"
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The page served on 127.0.0.1 from a temporary folder, as examples/web/README.md says."""
    reason = _missing()
    if reason:
        in_ci = os.environ.get("CI", "").lower() not in ("", "0", "false")
        (pytest.fail if in_ci else pytest.skip)(f"The web tests need it: {reason}")
    root = tmp_path_factory.mktemp("web")
    for name in ("index.html", "app.js"):
        shutil.copy(WEB / name, root / name)
    (root / "node_modules").symlink_to(WEB / "node_modules")
    server = browser.StaticServer(root)
    yield root, server.url
    server.close()


@pytest.fixture(scope="module")
def chromium(site):
    session = browser.Browser()
    yield session
    session.close()


@pytest.fixture(scope="module")
def photos(site):
    """Per bundled photo: the PNG the page gets, and the uint8 centre crop `predict` classifies."""
    root, _ = site
    crops = np.round(images.prepare_images(images.sample_photos(), SIZE, "bn", raw_pixels=True)).astype(np.uint8)
    files = []
    for path, crop in zip(images.sample_photos(), crops):
        resized = augment.resize_shorter_side(images.load_image(path).astype(np.float32), round(SIZE * augment.RESIZE_RATIO))
        pixels = np.round(np.asarray(resized)).astype(np.uint8)
        name = root / f"{pathlib.Path(path).stem}.png"
        name.write_bytes(_png(pixels))
        files.append(name)
    return files, crops


def _png(pixels):
    import io

    from PIL import Image

    data = io.BytesIO()
    Image.fromarray(pixels).save(data, "PNG")
    return data.getvalue()


def classify_in_page(chromium, url, model, photo_files, delegate="CPU"):
    """Loads `model` in the page and classifies each photo through the file picker, until an error.

    Returns the page's state (`window.googlenetResults`) and the console errors.
    """
    chromium.get(f"{url}index.html?model={model}&delegate={delegate}")
    state = chromium.wait_for("const s = window.googlenetResults; return s && s.state !== 'loading' && s;")
    for count, path in enumerate(photo_files if state["state"] == "ready" else [], start=1):
        chromium.upload("#image-file", path)
        state = chromium.wait_for(f"const s = window.googlenetResults; return (s.images.length >= {count} || s.error) && s;")
        if state["error"]:
            break
    return state, chromium.console_errors()


def run_page(chromium, url, model, photo_files, delegate="CPU"):
    """`classify_in_page`, which must classify every photo."""
    state, errors = classify_in_page(chromium, url, model, photo_files, delegate)
    assert state["error"] is None, f"{model} ({delegate}): {state['error']}"
    assert len(state["images"]) == len(photo_files)
    return state, errors


def scores(state):
    table = np.zeros((len(state["images"]), CLASSES), np.float32)
    for row, image in zip(table, state["images"]):
        for category in image["categories"]:
            row[category["index"]] = category["score"]
    return table


def top5(probabilities):
    return [list(np.argsort(-row, kind="stable")[:5]) for row in probabilities]


def keras_probabilities(checkpoint, crops, variant):
    predictor = runtimes.load_predictor(str(checkpoint))
    return predictor(kg.preprocess_input(crops.astype(np.float32), variant=variant))


def serve(site, path, name):
    root, _ = site
    shutil.copy(path, root / name)
    return name


def test_page_fp32_gives_the_keras_top5_within_1e_4_and_the_embedded_names(site, chromium, photos, digits_exports, digits_checkpoint):
    files, crops = photos
    model = serve(site, digits_exports["tflite_fp32"], "bn_fp32.tflite")
    state, errors = run_page(chromium, site[1], model, files)
    assert errors == []
    assert [image["name"] for image in state["images"]] == [path.name for path in files]
    assert state["inputSize"] == SIZE
    reference = keras_probabilities(digits_checkpoint, crops, "bn")
    found = scores(state)
    print(f"web fp32 (CPU) vs Keras: max |delta| {np.abs(found - reference).max():.2e}")  # shown with -s
    assert top5(found) == top5(reference)
    assert np.abs(found - reference).max() <= 1e-4
    assert {(c["index"], c["categoryName"]) for image in state["images"] for c in image["categories"]} == {
        (i, f"digit {i}") for i in range(CLASSES)
    }


def test_page_int8_scores_equal_litert_on_the_same_file(site, chromium, photos, digits_exports):
    files, crops = photos
    model = serve(site, digits_exports["tflite_int8"], "bn_int8.tflite")
    state, errors = run_page(chromium, site[1], model, files)
    assert errors == []
    litert = runtimes.load_predictor(digits_exports["tflite_int8"])(crops.astype(np.float32))
    found = scores(state)
    print(f"web int8 (CPU) vs LiteRT: max |delta| {np.abs(found - litert).max():.2e}")
    assert top5(found) == top5(litert)
    # The integer body is bit-exact; the float classifier and softmax after it
    # sum in another order in wasm than natively: 1.04e-06 on a 0.198
    # probability on 2026-12-05's machine (AVX-512), over 1e-6. The int8
    # rounding itself moves scores by up to 4e-2 against Keras.
    assert np.abs(found - litert).max() <= 1e-5


def test_page_crops_the_centre_square_of_a_full_photo_as_evaluate_does(site, chromium, digits_exports, tmp_path):
    """The region of interest is eval_transform's crop: the shorter side resized to 91, the 80 centre."""
    model = serve(site, digits_exports["tflite_fp32"], "bn_fp32.tflite")
    photo = next(path for path in images.sample_photos() if pathlib.Path(path).name == "parrot.jpg")
    state, errors = run_page(chromium, site[1], model, [pathlib.Path(photo)])
    assert errors == []
    height, width = images.load_image(photo).shape[:2]
    resized = augment.resize_shorter_side(np.zeros((height, width, 3), np.float32), round(SIZE * augment.RESIZE_RATIO))
    new_height, new_width = resized.shape[:2]
    top, left = (new_height - SIZE) // 2, (new_width - SIZE) // 2
    expected = {"top": top / new_height, "bottom": (top + SIZE) / new_height, "left": left / new_width, "right": (left + SIZE) / new_width}
    assert state["images"][0]["roi"] == pytest.approx(expected, abs=1e-12)
    assert len(state["images"][0]["categories"]) == CLASSES
    screenshot = pathlib.Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "page.png")
    chromium.screenshot(screenshot)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_photo_dropped_on_the_page_gets_the_scores_the_file_picker_gave_it(site, chromium, photos, digits_exports):
    files, _ = photos
    picked, _ = run_page(chromium, site[1], serve(site, digits_exports["tflite_fp32"], "bn_fp32.tflite"), files[:1])
    chromium.drop("#drop", files[0].name, files[0].name)
    state = chromium.wait_for("const s = window.googlenetResults; return (s.images.length >= 2 || s.error) && s;")
    assert state["error"] is None
    assert state["images"][1]["name"] == files[0].name
    assert state["images"][1]["categories"] == picked["images"][0]["categories"]
    assert chromium.console_errors() == []


def test_the_camera_button_classifies_the_centre_square_of_a_camera_frame(site, chromium, digits_exports):
    """Chromium's fake camera (browser.CHROMIUM_FLAGS) stands in for a webcam."""
    chromium.get(f"{site[1]}index.html?model={serve(site, digits_exports['tflite_fp32'], 'bn_fp32.tflite')}")
    assert chromium.wait_for("const s = window.googlenetResults; return s.state !== 'loading' && s;")["state"] == "ready"
    chromium.click("#camera")
    chromium.wait_for("return document.getElementById('video').videoWidth > 0")
    chromium.click("#snap")
    state = chromium.wait_for("const s = window.googlenetResults; return (s.images.length >= 1 || s.error) && s;")
    assert state["error"] is None
    frame = state["images"][0]
    assert frame["name"] == "camera frame" and frame["width"] > frame["height"] > 0
    resized = augment.resize_shorter_side(np.zeros((frame["height"], frame["width"], 3), np.float32), round(SIZE * augment.RESIZE_RATIO))
    height, width = resized.shape[:2]
    top, left = (height - SIZE) // 2, (width - SIZE) // 2
    assert frame["roi"] == pytest.approx({"top": top / height, "bottom": (top + SIZE) / height, "left": left / width, "right": (left + SIZE) / width}, abs=1e-12)
    assert sorted(c["index"] for c in frame["categories"]) == list(range(CLASSES))
    assert sum(c["score"] for c in frame["categories"]) == pytest.approx(1.0, abs=1e-4)
    assert chromium.console_errors() == []


@pytest.fixture(scope="module")
def float_exports(digits_exports, digits_checkpoint, paper_digits_exports, paper_digits_checkpoint):
    """The fp32 and fp16 files of both variants, with their checkpoints."""
    return {
        ("bn", kind): (digits_exports[f"tflite_{kind}"], digits_checkpoint) for kind in ("fp32", "fp16")
    } | {("paper", kind): (paper_digits_exports[f"tflite_{kind}"], paper_digits_checkpoint) for kind in ("fp32", "fp16")}


@pytest.fixture(scope="module")
def int8_exports(digits_exports, paper_digits_exports):
    return {"bn": digits_exports["tflite_int8"], "paper": paper_digits_exports["tflite_int8"]}


@pytest.mark.parametrize("variant", ["bn", "paper"])
@pytest.mark.parametrize("kind", ["fp32", "fp16"])
def test_float_exports_run_on_the_web_gpu_delegate_with_the_keras_top1_within_0_02(site, chromium, photos, float_exports, variant, kind):
    files, crops = photos
    path, checkpoint = float_exports[variant, kind]
    assert "GATHER" not in tflite_ops.op_names(path)
    state, errors = run_page(chromium, site[1], serve(site, path, f"{variant}_{kind}.tflite"), files, delegate="GPU")
    assert errors == []
    assert state["delegate"] == "GPU"
    reference = keras_probabilities(checkpoint, crops, variant)
    found = scores(state)
    print(f"web {variant} {kind} (GPU) vs Keras: max |delta| {np.abs(found - reference).max():.2e}")
    assert list(found.argmax(-1)) == list(reference.argmax(-1))
    assert np.abs(found - reference).max() <= 0.02


# Measured with @mediapipe/tasks-vision 1.1.0: the int8 file (float32 output) loads and runs on the
# GPU delegate, but every photo gets the scores LiteRT gives an all-black image: the GPU path hands
# the uint8 input over as floats in [0, 1] (pixel / 255), which the delegate dequantizes with the
# input's scale (max |delta| 0.999 "bn", 0.801 "paper"). No scale serves both paths: with 1/255 the
# CPU is right and the GPU gets pixel / 65025 (tried). `--int8-io float32` is the int8 file for the
# web GPU (test_float_input_int8_export_runs_on_the_web_gpu_delegate_with_the_keras_top1).
# Strict: when a MediaPipe upgrade fixes it, this XPASSes and the GPU table of docs/deploy.md needs updating.
@pytest.mark.xfail(strict=True, reason="MediaPipe's web GPU delegate feeds a uint8 input [0, 1] pixels")
@pytest.mark.parametrize("variant", ["bn", "paper"])
def test_int8_export_runs_on_the_web_gpu_delegate_with_the_litert_top1_within_0_02(site, chromium, photos, int8_exports, variant):
    """The GPU delegate runs the integer graph in float: judged as the fp16 file is, against LiteRT."""
    files, crops = photos
    path = int8_exports[variant]
    state, errors = run_page(chromium, site[1], serve(site, path, f"{variant}_int8.tflite"), files, delegate="GPU")
    assert errors == []
    litert = runtimes.load_predictor(path)(crops.astype(np.float32))
    found = scores(state)
    print(f"web {variant} int8 (GPU) vs LiteRT: max |delta| {np.abs(found - litert).max():.2e}")
    assert list(found.argmax(-1)) == list(litert.argmax(-1))
    assert np.abs(found - litert).max() <= 0.02


@pytest.fixture(scope="module")
def digit_files(site, digits_held_out):
    """Held-out digits as the page gets them (shorter side 91, PNG), and the 80 px centre crops it classifies.

    The int8 files are judged on digits, which the digits models know: on the photos their scores are
    near-uniform, and int8 rounding flips the top-1 of 2 of the 6 against Keras on the CPU as well.
    """
    root, _ = site
    files, pages = [], []
    for i, digit in enumerate(digits_held_out[0][:DIGITS_ON_THE_PAGE]):
        resized = augment.resize_shorter_side(digit.astype(np.float32), round(SIZE * augment.RESIZE_RATIO))
        pages.append(np.clip(np.round(np.asarray(resized)), 0, 255).astype(np.uint8))
        files.append(root / f"digit_{i}.png")
        files[-1].write_bytes(_png(pages[-1]))
    # Already at eval_transform's size, so its resize keeps the pixels and it only crops.
    return files, np.round(images.crop_images(pages, SIZE)).astype(np.uint8)


@pytest.mark.parametrize("variant", ["bn", "paper"])
def test_float_input_int8_export_runs_on_the_web_gpu_delegate_with_the_keras_top1(
    site, chromium, digit_files, float_input_int8_exports, digits_checkpoint, paper_digits_checkpoint, variant
):
    """The GPU delegate dequantizes the integer graph and feeds float pixels to its QUANTIZE: the right input.

    Judged as `verify` judges int8, by its top-1 against Keras. Its scores are fp16 with int8 weights
    and no rounded activations: measured within 0.007 ("bn") and 0.02 ("paper") of Keras on 16 digits.
    0.05 still catches a wrongly scaled input, which scored 0.8 to 1.0 off.
    """
    files, crops = digit_files
    path = float_input_int8_exports[variant]
    state, errors = run_page(chromium, site[1], serve(site, path, f"{variant}_int8_float_input.tflite"), files, delegate="GPU")
    assert errors == []
    assert state["delegate"] == "GPU"
    checkpoint = digits_checkpoint if variant == "bn" else paper_digits_checkpoint
    reference = keras_probabilities(checkpoint, crops, variant)
    found = scores(state)
    print(f"web {variant} int8, float input (GPU) vs Keras: max |delta| {np.abs(found - reference).max():.2e}")
    assert list(found.argmax(-1)) == list(reference.argmax(-1))
    assert np.abs(found - reference).max() <= 0.05


def test_dynamic_range_export_is_refused_by_the_web_gpu_delegate_as_the_readme_says(site, chromium, photos, digits_exports):
    """The hybrid FULLY_CONNECTED (version 12) falls back to the CPU and the mixed graph traps.

    If a MediaPipe upgrade makes this fail, the GPU table of docs/deploy.md is out of date.
    """
    files, _ = photos
    state, errors = classify_in_page(chromium, site[1], serve(site, digits_exports["tflite_dynamic"], "bn_dynamic.tflite"), files[:1], delegate="GPU")
    assert state["error"] == "divide by zero"
    assert any("FULLY_CONNECTED: Max version supported: 9. Requested version 12." in line for line in errors)
