"""The trained digits models that the export, verify, MediaPipe and web tests share, built in child processes.

Export and verification need learned weights: int8 agreement on a random
network measures nothing. scikit-learn's digits are offline and learn in a
few short epochs; the held-out 397 make a 1% disagreement measurable.

Each variant is trained and exported once per test run, by child processes
that conftest starts when the session begins (`Builds`), so that it runs on
the second core while the main process runs the tests that need no trained
model; those that do are ordered last and wait for it (`Builds.result`). The
child also writes the Keras probabilities on the held-out digits, the
reference of every export test, so that no test loads the checkpoint again
to compute them. Run by hand: ``python tests/support/digits_models.py DIR bn paper``.
"""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import traceback

# The smallest size with the auxiliary heads (architecture.minimum_input_size
# is 79), rounded to a multiple of 8 as a camera crop would be.
SIZE = 80
TRAIN = 1200
HELD_OUT_FROM = 1400
CALIBRATION = 128
NAMES = tuple(f"digit {i}" for i in range(10))
# Adam at 1e-4 for "paper", not 1e-3: without batch norm, on Caffe's unscaled
# inputs, 1e-3 left it near chance after two epochs, too uniform to judge int8.
# Three epochs, not two: at 82.6% its int8 export agreed on only 98.7% (LiteRT).
RECIPES = {"bn": {"learning_rate": 1e-3, "epochs": 2}, "paper": {"learning_rate": 1e-4, "epochs": 3}}
# The int8 model with each input type, from one calibration: uint8 (what
# MediaPipe feeds), float32 and, for "bn", int8 (moved out of the export
# folder, which then holds what `export --quantize all` writes).
INT8_IO = {"bn": ("uint8", "float32", "int8"), "paper": ("uint8", "float32")}
INT8_INPUT = "tflite_int8_int8_input"
REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def digits(size=SIZE):
    """scikit-learn's digits as raw RGB uint8 images of ``size`` px, and their labels."""
    import numpy as np
    import tensorflow as tf
    from sklearn.datasets import load_digits

    data = load_digits()
    pixels = np.repeat(data.images[..., None] * (255 / 16), 3, axis=-1).astype("float32")
    raw = tf.cast(tf.round(tf.image.resize(pixels, (size, size))), tf.uint8).numpy()
    return raw, data.target


def train(variant, folder):
    """Trains ``variant`` on the digits; writes its checkpoint, labels and the Keras reference probabilities."""
    import keras
    import numpy as np

    import keras_googlenet as kg
    from keras_googlenet.artifacts import model_info

    raw, labels = digits()
    recipe = RECIPES[variant]
    keras.utils.set_random_seed(0)
    model = kg.GoogLeNet(variant=variant, input_shape=(SIZE, SIZE, 3), classes=10)
    kg.compile_googlenet(model, optimizer=keras.optimizers.Adam(recipe["learning_rate"]))
    images = kg.preprocess_input(raw[:TRAIN].astype(np.float32), variant=variant)
    targets = labels[:TRAIN]
    model.fit(images, {"main": targets, "aux1": targets, "aux2": targets}, batch_size=32, epochs=recipe["epochs"], verbose=0)
    checkpoint = folder / "checkpoint" / "best.keras"
    checkpoint.parent.mkdir(parents=True)
    model.save(checkpoint)
    model_info.write_labels(checkpoint.parent / "labels.txt", NAMES)
    # The reference: the Keras checkpoint on preprocess_input's pixels of the held-out digits.
    held_out = kg.preprocess_input(raw[HELD_OUT_FROM:].astype(np.float32), variant=variant)
    np.save(folder / "reference.npy", model_info.load_checkpoint(checkpoint).predict(held_out, verbose=0))


def export(variant, folder):
    """Exports ``variant``'s checkpoint in every format and writes ``result.json`` last."""
    from keras_googlenet.export import convert

    raw, _ = digits()
    checkpoint = folder / "checkpoint" / "best.keras"
    # Calibrated on 128 raw RGB training crops: every export scales its pixels itself.
    exports = convert.export(
        checkpoint, folder / "exports", formats="all", quantize=convert.QUANTIZATIONS,
        calibration_data=raw[:CALIBRATION], int8_io=INT8_IO[variant],
    )
    result = {"checkpoint": str(checkpoint), "reference": str(folder / "reference.npy"), "exports": exports}
    if INT8_INPUT in exports:
        int8_input = pathlib.Path(exports.pop(INT8_INPUT))
        (folder / "int8_input").mkdir()
        result[INT8_INPUT] = str(int8_input.rename(folder / "int8_input" / int8_input.name))
    (folder / "result.json").write_text(json.dumps(result))


# Each step in a process of its own: the training ends at 2.0 GB, and the
# export on top of it peaked at 4.1 GB (tf2onnx alone adds 1.5 GB), against
# 3.0 GB in a new process, beside a main process that holds 2-3 GB.
STEPS = {"train": train, "export": export}


class Builds:
    """`train` and `export` of each variant in turn, in child processes (one model in memory at a time).

    The children write ``folder/VARIANT/result.json`` when a variant is done,
    or ``folder/VARIANT/error.txt``, and its output goes to
    ``folder/build.log``. `Builds.start` starts it; `Builds(folder)` only
    waits for what another process started there (pytest-xdist's other
    worker).
    """

    def __init__(self, folder, process=None):
        self.folder, self.process = pathlib.Path(folder), process
        self.log = self.folder / "build.log"
        self.started = time.monotonic()

    @classmethod
    def start(cls, folder, variants=tuple(RECIPES)):
        folder = pathlib.Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "build.log", "w") as log:
            # The checkout's package, not whichever one pip installed: the child's path starts at tests/support.
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
            process = subprocess.Popen(
                [sys.executable, __file__, str(folder), *variants], stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,  # `close` kills the steps' processes with it
            )
        return cls(folder, process)

    def result(self, variant, timeout):
        """``variant``'s result.json as a dict, once written; raises with the build's log when it failed or ran past ``timeout`` s."""
        done, error = self.folder / variant / "result.json", self.folder / variant / "error.txt"
        while not done.exists():
            if error.exists() or (self.process and self.process.poll() not in (None, 0)):
                why = error.read_text()[-3000:] if error.exists() else self._tail()
                raise RuntimeError(f"Building the {variant!r} digits model failed (log: {self.log}):\n{why}")
            if time.monotonic() - self.started > timeout:
                self.close()
                raise RuntimeError(f"Building the {variant!r} digits model took over {timeout} s:\n{self._tail()}")
            time.sleep(0.5)  # a file written by another process: no event to wait on across pytest-xdist's workers
        return json.loads(done.read_text())

    def close(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def _tail(self):
        return self.log.read_text()[-4000:] if self.log.exists() else "(no build.log)"


def _run_step(step, folder, variant):
    """Runs one of `STEPS` here; a failure leaves its traceback in ``folder/VARIANT/error.txt``."""
    try:
        STEPS[step](variant, pathlib.Path(folder) / variant)
    except BaseException:
        (pathlib.Path(folder) / variant / "error.txt").write_text(traceback.format_exc())
        raise


def _run_steps(folder, variants):
    """Each variant's `STEPS`, each in a new process; stops at the first that fails."""
    for variant in variants:
        (pathlib.Path(folder) / variant).mkdir(parents=True)
        for step in STEPS:
            if subprocess.run([sys.executable, __file__, "--step", step, folder, variant]).returncode:
                sys.exit(1)


if __name__ == "__main__":
    if sys.argv[1] == "--step":
        _run_step(*sys.argv[2:5])
    else:
        _run_steps(sys.argv[1], sys.argv[2:])
