"""Shared fixtures. Tests read the real photos bundled in keras_googlenet/assets/photos."""

import gc
import inspect
import subprocess
import sys

import pytest


@pytest.fixture(autouse=True)
def _earlier_objects_frozen():
    """Keeps a test's garbage collections to the objects it made itself.

    By the slow tests the suite's process holds millions of objects
    (TensorFlow, JAX, PyTorch, MediaPipe, Ray...), and each full collection
    walks them all: `verify` collects between runtimes, and its tests took
    16-20 s here against 1-2 s alone. Frozen objects are skipped; unfrozen
    after the test, whatever became garbage is collected as before.
    """
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture
def train_step_traces(monkeypatch):
    """A list that grows by one each time `fit` traces (or, run eagerly, calls) a Keras train step."""
    import keras

    traces = []
    original = keras.Model.train_step
    monkeypatch.setattr(keras.Model, "train_step", lambda model, data: traces.append(1) or original(model, data))
    return traces


@pytest.fixture(scope="session")
def photo_paths():
    """The six Apache-2.0 photos from google-coral/test_data, sorted by name."""
    from keras_googlenet.data import images

    return images.sample_photos()


# The session fixtures that train or export (minutes each). Under pytest-xdist
# (README: `-n 2`) every worker builds its own copy of the session fixtures it
# uses, so the tests that use these run on one worker (`--dist loadgroup`).
TRAINED_FIXTURES = {
    "digits_checkpoint", "paper_digits_checkpoint", "digits_exports", "paper_digits_exports", "float_input_int8_exports",
}


def pytest_collection_modifyitems(items):
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        # A parametrized test or module fixture may take them by name (request.getfixturevalue).
        module = getattr(item, "module", None)
        functions = [getattr(item, "function", None)] + [getattr(module, name, None) for name in names]
        dynamic = any(callable(f) and "getfixturevalue" in inspect.getsource(f) for f in functions)
        if dynamic or TRAINED_FIXTURES & names:
            item.add_marker(pytest.mark.xdist_group("trained_digits"))


# Export and verification need learned weights: int8 agreement on a random
# network measures nothing. scikit-learn's digits are offline and learn in two
# short epochs; the held-out 397 make a 1% disagreement measurable.
DIGITS_SIZE = 96
DIGITS_TRAIN = 1200
DIGITS_HELD_OUT_FROM = 1400


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits as raw RGB uint8 images of 96 x 96, and their labels."""
    import numpy as np
    import tensorflow as tf
    from sklearn.datasets import load_digits

    data = load_digits()
    pixels = np.repeat(data.images[..., None] * (255 / 16), 3, axis=-1).astype("float32")
    raw = tf.cast(tf.round(tf.image.resize(pixels, (DIGITS_SIZE, DIGITS_SIZE))), tf.uint8).numpy()
    return raw, data.target


@pytest.fixture(scope="session")
def digits_checkpoint(tmp_path_factory, digits):
    """A three-head "bn" GoogLeNet at 96 px trained on the digits, saved as best.keras with labels.txt."""
    import keras

    import keras_googlenet as kg
    from keras_googlenet.data import images
    from keras_googlenet.artifacts import model_info

    raw, labels = digits
    images = images.prepare_images(list(raw[:DIGITS_TRAIN]), DIGITS_SIZE, "bn")
    keras.utils.set_random_seed(0)
    model = kg.GoogLeNet(variant="bn", input_shape=(DIGITS_SIZE, DIGITS_SIZE, 3), classes=10)
    kg.compile_googlenet(model, optimizer=keras.optimizers.Adam(1e-3))
    targets = labels[:DIGITS_TRAIN]
    model.fit(images, {"main": targets, "aux1": targets, "aux2": targets}, batch_size=32, epochs=2, verbose=0)
    folder = tmp_path_factory.mktemp("digits_checkpoint")
    model.save(folder / "best.keras")
    model_info.write_labels(folder / "labels.txt", [f"digit {i}" for i in range(10)])
    return folder / "best.keras"


@pytest.fixture(scope="session")
def paper_digits_checkpoint(tmp_path_factory, digits):
    """A three-head "paper" GoogLeNet trained on the digits (93.2% held-out top-1).

    Adam at 1e-4, not 1e-3: without batch norm, on Caffe's unscaled inputs,
    1e-3 left it at 16% after two epochs, too uniform to judge int8. Three
    epochs, not two: at 82.6% its int8 export agreed on 98.7% (LiteRT).
    """
    import keras
    import numpy as np

    import keras_googlenet as kg
    from keras_googlenet.artifacts import model_info

    raw, labels = digits
    keras.utils.set_random_seed(0)
    model = kg.GoogLeNet(variant="paper", input_shape=(DIGITS_SIZE, DIGITS_SIZE, 3), classes=10)
    kg.compile_googlenet(model, optimizer=keras.optimizers.Adam(1e-4))
    images = kg.preprocess_input(raw[:DIGITS_TRAIN].astype(np.float32), variant="paper")
    targets = labels[:DIGITS_TRAIN]
    model.fit(images, {"main": targets, "aux1": targets, "aux2": targets}, batch_size=32, epochs=3, verbose=0)
    folder = tmp_path_factory.mktemp("paper_digits_checkpoint")
    model.save(folder / "best.keras")
    model_info.write_labels(folder / "labels.txt", [f"digit {i}" for i in range(10)])
    return folder / "best.keras"


def _export_everything(tmp_path_factory, checkpoint, raw):
    from keras_googlenet.export import convert as export

    # 128 raw RGB training crops: every export scales its pixels itself. The
    # int8 model twice, from one calibration: uint8 and float32 input.
    return export.export(
        checkpoint, tmp_path_factory.mktemp("digits_exports"), formats="all", quantize=export.QUANTIZATIONS,
        calibration_data=raw[:128], int8_io=("uint8", "float32"),
    )


@pytest.fixture(scope="session")
def digits_exports(tmp_path_factory, digits, digits_checkpoint):
    """Every export of the "bn" digits model: SavedModel, TFLite fp32/fp16/dynamic/int8 (uint8 and float32 input) and ONNX."""
    return _export_everything(tmp_path_factory, digits_checkpoint, digits[0])


@pytest.fixture(scope="session")
def paper_digits_exports(tmp_path_factory, digits, paper_digits_checkpoint):
    """Every export of the "paper" digits model, as `digits_exports`."""
    return _export_everything(tmp_path_factory, paper_digits_checkpoint, digits[0])


@pytest.fixture(scope="session")
def float_input_int8_exports(digits_exports, paper_digits_exports):
    """Per variant: the ``--int8-io float32`` int8 file of the digits model, written with (and calibrated as) its uint8 one."""
    return {"bn": digits_exports["tflite_int8_float32_input"], "paper": paper_digits_exports["tflite_int8_float32_input"]}


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    """A class-per-folder tree of real PNG, JPEG, GIF and BMP files, 6 per class.

    "bright" (grey level 220) and "dark" (30) mix RGB, RGBA, grayscale and
    palette images. "bright" also holds a truncated JPEG (a valid header), and
    "dark" a text file named broken.jpg and a notes.txt.
    """
    import io

    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("image_folder")
    for name, level in (("bright", 220), ("dark", 30)):
        folder = root / name
        folder.mkdir()
        rgb = Image.fromarray(np.full((24, 32, 3), level, np.uint8))
        rgb.save(folder / "rgb.png")
        rgb.convert("RGBA").save(folder / "rgba.png")
        rgb.convert("L").save(folder / "grey.png")
        rgb.save(folder / "photo.jpg", quality=95)
        rgb.convert("P", palette=Image.ADAPTIVE).save(folder / "palette.gif")
        rgb.save(folder / "bitmap.bmp")
    jpeg = io.BytesIO()
    Image.fromarray(np.full((24, 32, 3), 220, np.uint8)).save(jpeg, "JPEG")
    (root / "bright" / "truncated.jpg").write_bytes(jpeg.getvalue()[:200])
    (root / "dark" / "broken.jpg").write_text("not an image")
    (root / "dark" / "notes.txt").write_text("not an image either")
    return root


@pytest.fixture(scope="session")
def digits_held_out(digits):
    """The 397 digits that `digits_checkpoint` never trained on: raw images and labels."""
    raw, labels = digits
    return raw[DIGITS_HELD_OUT_FROM:], labels[DIGITS_HELD_OUT_FROM:]


HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, f"{os.getpid()}\\n".encode())
print("locked", flush=True)
time.sleep(120)
"""


@pytest.fixture
def lock_holder(tmp_path):
    """A live process holding the lock of tmp_path/run, as a running `train` does.

    It takes the flock and writes its PID by hand, not through `output_lock`, so
    that the tests of the lock do not rest on the code they test.
    """
    (tmp_path / "run").mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path / "run" / "train.lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        holder.kill()
        holder.wait()


@pytest.fixture(scope="session")
def tiny_model():
    """A 32 px single-output classifier: converts in seconds, for the write and error paths."""
    import keras

    keras.utils.set_random_seed(0)
    pixels = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(pixels))
    return keras.Model(pixels, keras.layers.Dense(3, activation="softmax", name="main")(x))


@pytest.fixture(scope="session")
def tiny_info():
    """The ModelInfo of `tiny_model`."""
    from keras_googlenet.artifacts import model_info

    return model_info.ModelInfo("bn", 32, ("a", "b", "c"))
