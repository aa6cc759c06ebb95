"""Distributed training: MirroredStrategy on logical CPUs, two local workers, resume after SIGKILL.

Each test runs TensorFlow in fresh subprocesses: logical devices and
TF_CONFIG must be set before TensorFlow initialises its devices, and
SIGKILL needs a process to kill.
"""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from keras_googlenet import cluster

pytestmark = pytest.mark.slow

TIMEOUT_S = 400
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

# One SGD step of the same global batch of 4, on 2 logical CPUs (2 per
# replica) and on one device. The "paper" variant has no batch norm, whose
# statistics would be per replica, and dropout is switched off, so both
# runs compute the same function: only the loss scaling can differ.
MIRRORED_VS_SINGLE = """
import json, sys
from keras_googlenet import cluster, training
mirrored = cluster.make_strategy("mirrored", devices=2)  # first: before TF starts its devices
single = cluster.make_strategy("default")
import keras, numpy as np
import keras_googlenet as kg

def build():
    model = kg.GoogLeNet(variant="paper", input_shape=(80, 80, 3), classes=10)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    return model

keras.utils.set_random_seed(0)
initial = build().get_weights()
images = np.random.default_rng(0).normal(0, 50, size=(4, 80, 80, 3)).astype("float32")
labels = np.array([0, 3, 5, 9])
results = {}
for name, strategy in (("mirrored", mirrored), ("single", single)):
    with strategy.scope():
        model = build()
        model.set_weights(initial)
        kg.compile_googlenet(model, optimizer=training.make_optimizer(0.01, weight_decay=0))
    history = model.fit(images, {"main": labels, "aux1": labels, "aux2": labels}, batch_size=4, epochs=1, shuffle=False, verbose=0)
    results[name] = {
        "replicas": strategy.num_replicas_in_sync,
        "history": {key: values[0] for key, values in history.history.items()},
        "weights": [w.tolist() for w in model.get_weights()[:4]] + [model.get_weights()[-2].tolist()],
    }
results["initial"] = [w.tolist() for w in initial[:4]] + [initial[-2].tolist()]
json.dump(results, open(sys.argv[1], "w"))
"""

# The same command is run twice; a probe after the built-in callbacks saves
# the weights fit starts from (after the backup restored them) and the first
# epoch it runs.
RESUMABLE_RUN = """
import json, sys
import keras
from keras_googlenet import training

output_dir, probe_dir = sys.argv[1:3]

class Probe(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.model.save_weights(f"{probe_dir}/start.weights.h5")
        self.first_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.first_epoch is None:
            self.first_epoch = epoch
            with open(f"{probe_dir}/first_epoch.json", "w") as file:
                json.dump(epoch, file)

training.train(
    output_dir=output_dir, epochs=8, steps_per_epoch=1, batch_size=2, image_size=80,
    validation_split=None, verbose=2, callbacks=[Probe()],
)
"""


def _python(*args):
    return [sys.executable, *args]


def _run(command, env=None):
    return subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )


def _h5_arrays(path):
    arrays = {}
    with h5py.File(path, "r") as file:
        file.visititems(lambda name, item: arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
    return arrays


def test_mirrored_step_on_two_logical_cpus_matches_one_device_on_the_same_global_batch(tmp_path):
    out = tmp_path / "results.json"
    process = _run(_python("-c", MIRRORED_VS_SINGLE, str(out)))
    assert process.returncode == 0, process.stderr[-3000:]
    results = json.loads(out.read_text())
    mirrored, single = results["mirrored"], results["single"]

    assert (mirrored["replicas"], single["replicas"]) == (2, 1)
    for key in ("loss", "main_loss", "aux1_loss", "aux2_loss", "main_top1", "main_top5"):
        assert mirrored["history"][key] == pytest.approx(single["history"][key], rel=1e-4), key
    # The total is the paper's weighting of the per-head losses.
    history = single["history"]
    assert history["loss"] == pytest.approx(history["main_loss"] + 0.3 * (history["aux1_loss"] + history["aux2_loss"]), rel=1e-4)

    for before, after_mirrored, after_single in zip(results["initial"], mirrored["weights"], single["weights"]):
        before, after_mirrored, after_single = map(np.asarray, (before, after_mirrored, after_single))
        step = np.abs(after_single - before).max()
        assert step > 0  # the step changed the weights
        # A wrong loss scaling (summed instead of averaged over replicas)
        # would make the mirrored step twice as large.
        np.testing.assert_allclose(after_mirrored - before, after_single - before, atol=1e-3 * step, rtol=1e-3)


def test_two_local_workers_train_one_epoch_and_only_the_chief_writes_the_checkpoint(tmp_path):
    output_dir, temporary = tmp_path / "run", tmp_path / "tmp"
    temporary.mkdir()
    command = _python(
        "-m", "keras_googlenet.cli", "train", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2",
        "--image-size", "80", "--validation-split", "none", "--output-dir", str(output_dir), "--verbose", "0",
    )
    workers = [
        subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "TF_CONFIG": tf_config, "TMPDIR": str(temporary)},
        )
        for tf_config in cluster.local_worker_configs(2)
    ]
    try:
        logs = [worker.communicate(timeout=TIMEOUT_S)[0] for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert [worker.returncode for worker in workers] == [0, 0], "\n".join(log[-3000:] for log in logs)

    chief_log, other_log = logs
    assert "with MultiWorkerMirroredStrategy (2 replica(s), global batch 4)" in chief_log
    assert f"Last checkpoint: {output_dir / 'last.keras'}" in chief_log
    assert "Last checkpoint" not in other_log  # the other worker wrote to a temporary folder
    assert sorted(p.name for p in (output_dir / "backup").iterdir()) == ["worker_0", "worker_1"]
    assert not list(temporary.glob("keras_googlenet_worker_*"))  # the other worker's folder is deleted
    assert not (output_dir / "train.lock").exists()  # taken by the chief only, and released

    import keras

    model = keras.saving.load_model(output_dir / "last.keras", compile=False)
    assert model.output_names == ["main", "aux1", "aux2"]
    assert model.input_shape == (None, 80, 80, 3)
    rows = (output_dir / "history.csv").read_text().splitlines()
    assert len(rows) == 2 and "main_loss" in rows[0]


def test_a_run_killed_with_sigkill_resumes_at_the_next_epoch_with_the_backed_up_weights(tmp_path):
    output_dir, probe_dir = tmp_path / "run", tmp_path / "probe"
    probe_dir.mkdir()
    command = _python("-c", RESUMABLE_RUN, str(output_dir), str(probe_dir))
    metadata = output_dir / "backup" / "training_metadata.json"

    first = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + TIMEOUT_S
    # Kill as soon as the first backup is complete: the next one is a whole
    # epoch away, so the kill never lands in the middle of writing it.
    while not (metadata.is_file() and metadata.read_text().strip()):
        assert first.poll() is None, first.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "no backup was written"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert first.returncode == -signal.SIGKILL
    finished = json.loads(metadata.read_text())["epoch"]
    assert 1 <= finished < 8
    shutil.copy(output_dir / "backup" / "latest.weights.h5", tmp_path / "backed_up.weights.h5")
    for stale in probe_dir.iterdir():
        stale.unlink()

    second = _run(command)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"Resuming after epoch {finished} from the backup" in second.stdout
    # Keras counts epochs from 0: index `finished` is epoch finished + 1.
    assert json.loads((probe_dir / "first_epoch.json").read_text()) == finished
    backed_up, restored = _h5_arrays(tmp_path / "backed_up.weights.h5"), _h5_arrays(probe_dir / "start.weights.h5")
    assert backed_up.keys() == restored.keys() and len(backed_up) > 100
    for name in backed_up:
        np.testing.assert_array_equal(restored[name], backed_up[name], err_msg=name)
    assert json.loads(metadata.read_text())["epoch"] == 8
    assert (output_dir / "last.keras").is_file()
