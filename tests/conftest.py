"""Shared fixtures. Tests read the real photos bundled in keras_googlenet/assets/photos."""

import gc
import importlib.util
import inspect
import itertools
import os
import subprocess
import sys

import pytest


def in_ci():
    """Whether `CI` is set (as CI services and .ci/run set it): a missing test dependency then fails, not skips."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


def pytest_configure(config):
    config.addinivalue_line("markers", "needs(module, install): the test needs an optional module; skipped without it, failed under CI")
    config.addinivalue_line("markers", "lane(job): the test reads a job of the background lane (tests/support/lane.py)")
    config.addinivalue_line("markers", "alone: no lane job runs beside the test (its own children take gigabytes)")
    config.addinivalue_line("markers", "after_alone: the file runs after the alone tests (it leaves the main process bigger, torch)")


def _skip_or_fail_without_what_it_needs(item):
    for mark in item.iter_markers("needs"):
        module, install = mark.args
        if importlib.util.find_spec(module) is None:
            message = f"needs {module}, which is not installed: {install}"
            if in_ci():
                pytest.fail(f"{message} (CI installs every test dependency)", pytrace=False)
            pytest.skip(message)


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


def pytest_terminal_summary(terminalreporter):
    """Each test file's share of the run (setup, call and teardown), the largest first: where CI's minutes go."""
    seconds = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            if isinstance(report, pytest.TestReport):
                path = report.nodeid.split("::")[0]
                seconds[path] = seconds.get(path, 0.0) + report.duration
    total = sum(seconds.values())
    if total < 60:
        return
    lane_ = terminalreporter.config.stash.get(_LANE, None)
    if lane_ and lane_.events:
        terminalreporter.write_sep("=", "the lane's steps and waits, from the session's start (tests/support/lane.py)")
        for line in lane_.summary():
            terminalreporter.write_line(line)
    terminalreporter.write_sep("=", f"time by test file ({total:.0f} s in all)")
    for path, spent in sorted(seconds.items(), key=lambda item: -item[1])[:25]:
        terminalreporter.write_line(f"{spent:7.1f} s {100 * spent / total:5.1f}%  {path}")


@pytest.fixture(scope="module", autouse=True)
def _memory_given_back_after_each_module():
    """Collects each test file's garbage and hands the freed heap back to the system.

    Without this the suite's process grew to 5.7 GB by the Ray test: glibc
    keeps what TensorFlow's threads freed in their arenas, and the cycles
    left by models and traced functions wait for a full collection, which
    the frozen generations of `_earlier_objects_frozen` make rare.
    """
    yield
    gc.collect()
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)


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


# The session fixtures that come from a trained digits model (digits_models:
# minutes each, built once per run in child processes).
TRAINED_FIXTURES = {
    "digits_checkpoint", "paper_digits_checkpoint", "digits_exports", "paper_digits_exports", "float_input_int8_exports",
    "int8_input_export", "digits_reference",
}
BUILD_TIMEOUT_S = 1200


def _needs_a_trained_model(item):
    names = set(getattr(item, "fixturenames", ()))
    # A parametrized test or module fixture may take them by name (request.getfixturevalue).
    module = getattr(item, "module", None)
    functions = [getattr(item, "function", None)] + [getattr(module, name, None) for name in names]
    dynamic = any(callable(f) and "getfixturevalue" in inspect.getsource(f) for f in functions)
    return dynamic or bool(TRAINED_FIXTURES & names)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: the slow mark added here counts
def pytest_collection_modifyitems(config, items):
    """Marks the tests that need a trained digits model slow, and puts their files last, so that the build runs beside the others.

    Files with ``alone`` tests come just before them: such a test waits for
    the builds to end. The tests that read a lane job come last
    (tests/support/lane.py).

    Whole files, so that a file's module fixtures are made once, and so that
    pytest-xdist's ``--dist loadfile`` (.ci/run) hands them out last too.
    """
    trained = {id(item) for item in items if _needs_a_trained_model(item)}
    config.stash[_TRAINED] = trained
    late_files, alone_files = set(), set()
    for item in items:
        if id(item) in trained:
            item.add_marker(pytest.mark.slow)
            late_files.add(item.path)
        if item.get_closest_marker("alone"):
            alone_files.add(item.path)
        if item.get_closest_marker("after_alone"):
            late_files.add(item.path)
    # The other files first, beside the builds; then those whose tests run
    # alone (they wait for the builds to end, as the trained ones would);
    # then the trained files; the tests that read lane jobs last, one by one,
    # so that the lane has run their jobs meanwhile. Files marked
    # ``after_alone`` join the trained ones: torch imported in the main
    # process (180 MB) put Ray's cluster test over 6 GB.
    def part(item):
        if item.get_closest_marker("lane"):
            return 3
        return 2 if item.path in late_files else int(item.path in alone_files)

    items.sort(key=part)  # stable: the order within each part is kept


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    """Whether the selected tests (after `-m` and `-k`) need a digits model: the builds start only then."""
    trained = session.config.stash.get(_TRAINED, set())
    session.config.stash[_BUILDS_WANTED] = any(id(item) in trained for item in session.items)
    session.config.stash[_LANE_JOBS] = [mark.args[0] for item in session.items for mark in item.iter_markers("lane")]
    # The tests before which an ``alone`` test is still to come in their file.
    alone_ahead, files_with_one_ahead = set(), set()
    for item in reversed(session.items):
        if item.get_closest_marker("alone"):
            files_with_one_ahead.add(item.path)
        if item.path in files_with_one_ahead:
            alone_ahead.add(id(item))
    session.config.stash[_ALONE_AHEAD] = alone_ahead


_BUILDS_WANTED = pytest.StashKey[bool]()
_LANE_JOBS = pytest.StashKey[list]()  # the lane jobs that the selected tests read, in their order
_TRAINED = pytest.StashKey[set]()  # id() of the collected tests that need a digits model
_ALONE_AHEAD = pytest.StashKey[set]()  # id() of the selected tests followed by an ``alone`` one in their file


@pytest.fixture(scope="session", autouse=True)
def digits_builds(request, tmp_path_factory):
    """``result(variant)``: the digits models' builds, started with the session when a selected test needs one.

    Under pytest-xdist every worker runs this: the first to create the folder
    beside the workers' own starts the builds there, and the other waits for
    their files, so that they run once and from the start of the session.
    """
    import digits_models
    import lane

    _share_jax_compilations(tmp_path_factory.getbasetemp())
    builds = None
    if request.config.stash.get(_BUILDS_WANTED, False):
        base = tmp_path_factory.getbasetemp()
        folder = (base.parent if hasattr(request.config, "workerinput") else base) / "digits_models"
        try:
            folder.mkdir()
            builds = digits_models.Builds.start(folder)
        except FileExistsError:
            builds = digits_models.Builds(folder)

    def result(variant):
        assert builds, "conftest found no selected test that needs a digits model"
        asked = lane_.elapsed()
        built = builds.result(variant, BUILD_TIMEOUT_S)
        lane_.waited(asked, f"the {variant} build")  # in the lane's summary, beside its own waits
        return built

    lane_jobs = request.config.stash.get(_LANE_JOBS, [])
    lane_ = request.config.stash[_LANE] = lane.Lane(tmp_path_factory.mktemp("lane"), lane_jobs, before=builds and builds.process)
    yield result
    request.config.stash[_LANE].close()
    if builds:
        builds.close()


def _share_jax_compilations(base):
    """Points every JAX process of the run at one persistent compilation cache in ``base``.

    A Keras model on JAX compiles each eager op (every initializer, every
    layer's first call) apart: loading a KerasHub preset took 30 s, 12.6 s
    with the cache that an earlier process filled. The lane's JAX jobs build
    the same layers (their kernels' shapes do not depend on the input size).
    JAX caches only compilations over 1 s by default, hence the zeros.
    """
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(base / "jax_compilation_cache"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


_LANE = pytest.StashKey["lane.Lane"]()
LANE_TIMEOUT_S = 1200


@pytest.fixture(scope="session")
def lane_result(request):
    """``lane_result(job)``: the folder of a lane job (tests/support/lane.py) once it has run; the test must be marked ``lane(job)``."""
    return lambda job: request.config.stash[_LANE].result(job, LANE_TIMEOUT_S)


def pytest_runtest_setup(item):
    _skip_or_fail_without_what_it_needs(item)
    lane_ = item.config.stash.get(_LANE, None)
    if lane_ and item.get_closest_marker("alone") and not lane_.paused:
        lane_.pause()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """Resumes the lane after ``alone`` tests, unless another is still to come in the next test's file.

    Between two ``alone`` tests the lane stays paused (a module of them shares
    its Chromium): a job started in the gap, beside a few quick tests, kept the
    next one waiting for it (Ray's cluster test, 89 s once, after Kubernetes').
    """
    lane_ = item.config.stash.get(_LANE, None)
    if lane_ and lane_.paused and not (nextitem and id(nextitem) in item.config.stash.get(_ALONE_AHEAD, set())):
        lane_.resume()


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits as raw RGB uint8 images at the trained models' size, and their labels."""
    import digits_models

    return digits_models.digits()


@pytest.fixture(scope="session")
def digits_checkpoint(digits_builds):
    """A three-head "bn" GoogLeNet trained on the digits (digits_models), saved as best.keras with labels.txt."""
    return digits_builds("bn")["checkpoint"]


@pytest.fixture(scope="session")
def paper_digits_checkpoint(digits_builds):
    """A three-head "paper" GoogLeNet trained on the digits, as `digits_checkpoint`."""
    return digits_builds("paper")["checkpoint"]


@pytest.fixture(scope="session")
def digits_exports(digits_builds):
    """Every export of the "bn" digits model: SavedModel, TFLite fp32/fp16/dynamic/int8 (uint8 and float32 input) and ONNX."""
    return digits_builds("bn")["exports"]


@pytest.fixture(scope="session")
def paper_digits_exports(digits_builds):
    """Every export of the "paper" digits model, as `digits_exports`."""
    return digits_builds("paper")["exports"]


@pytest.fixture(scope="session")
def float_input_int8_exports(digits_exports, paper_digits_exports):
    """Per variant: the ``--int8-io float32`` int8 file of the digits model, written with (and calibrated as) its uint8 one."""
    return {"bn": digits_exports["tflite_int8_float32_input"], "paper": paper_digits_exports["tflite_int8_float32_input"]}


@pytest.fixture(scope="session")
def int8_input_export(digits_builds):
    """The ``--int8-io int8`` file of the "bn" digits model, from the same calibration as its uint8 one."""
    import digits_models

    return digits_builds("bn")[digits_models.INT8_INPUT]


@pytest.fixture(scope="session")
def digits_reference(digits_builds):
    """Per variant: the Keras checkpoint's probabilities on `digits_held_out` (after preprocess_input), computed by the build."""
    import numpy as np

    return lambda variant: np.load(digits_builds(variant)["reference"])


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
    import digits_models

    raw, labels = digits
    return raw[digits_models.HELD_OUT_FROM:], labels[digits_models.HELD_OUT_FROM:]


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


# The object-store emulators (tests/support/object_stores.py): one of each per
# test module that asks, each test in a new bucket.
_bucket_names = itertools.count()


@pytest.fixture(scope="module", params=["gs", "s3"])
def server(request, tmp_path_factory):
    """A started emulator of ``gs`` or ``s3`` (the test runs for both)."""
    import object_stores

    started = object_stores.STARTERS[request.param](tmp_path_factory.mktemp(f"{request.param}_server"))
    yield started
    started.stop()


@pytest.fixture
def bucket(server, monkeypatch):
    """A new bucket on the emulator, with the clients pointed at it; its URI."""
    import fsspec

    import object_stores

    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    name = f"bucket-{next(_bucket_names)}"
    object_stores.make_bucket(server.scheme, name)
    yield f"{server.scheme}://{name}"
    fsspec.get_filesystem_class(server.scheme).clear_instance_cache()
