"""Distributed training: MirroredStrategy on logical CPUs, two local workers, resume after SIGKILL.

Each test runs TensorFlow in fresh subprocesses: logical devices and
TF_CONFIG must be set before TensorFlow initialises its devices, and
SIGKILL needs a process to kill.
"""

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

import local_cluster
import tiny_googlenet

# The kill tests run a cluster twice; their waits have their own deadlines (TIMEOUT_S).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

TIMEOUT_S = 400
# How long a task may take to notice that a peer is gone and exit.
SURVIVOR_TIMEOUT_S = 300
REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

# One SGD step of the same global batch of 4, on 2 logical CPUs (2 per
# replica) and on one device, of the three-head stand-in without batch
# norm, whose statistics would be per replica: both runs compute the same
# function, only the loss scaling can differ. (The real network's step on
# two replicas runs in the scaling benchmark's smoke test.)
MIRRORED_VS_SINGLE = """
import json, sys
from keras_googlenet.training import cluster, run as training
mirrored = cluster.make_strategy("mirrored", devices=2)  # first: before TF starts its devices
single = cluster.make_strategy("default")
import keras, numpy as np
import keras_googlenet as kg
from tiny_googlenet import tiny_googlenet

def build():
    return tiny_googlenet(variant="paper", input_shape=(80, 80, 3), classes=10)

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

# Under a strategy Keras' `fit` reads a first batch and all-reduces it to
# build the model, at the start and again in every validation pass; a model
# built from the element spec must not. Prints the number of whole batches
# (4-D images inside) given to `strategy.reduce`: Keras alone, then built.
BATCHES_REDUCED = """
from keras_googlenet.training import cluster
strategy = cluster.make_strategy("mirrored", devices=2)
import keras, numpy as np, tensorflow as tf
import keras_googlenet as kg
from tiny_googlenet import tiny_googlenet

reduced = []
reduce = type(strategy).reduce
def counting_reduce(self, op, value, axis):
    local = [self.experimental_local_results(tensor)[0] for tensor in tf.nest.flatten(value)]
    reduced.append(any(len(tensor.shape) == 4 for tensor in local))
    return reduce(self, op, value, axis)
type(strategy).reduce = counting_reduce

labels = np.arange(16) % 3
images = np.random.default_rng(0).normal(size=(16, 8, 8, 3)).astype("float32")
dataset = tf.data.Dataset.from_tensor_slices((images, {"main": labels, "aux1": labels, "aux2": labels})).batch(4)
for build in (False, True):
    with strategy.scope():
        model = kg.compile_googlenet(tiny_googlenet(variant="paper", input_shape=(8, 8, 3), classes=3), optimizer=keras.optimizers.SGD(0.01))
        if build:
            kg.model.task.build_from_element_spec(model, dataset)
    reduced.clear()
    model.fit(dataset, validation_data=dataset, epochs=2, verbose=0)
    print("batches reduced:", sum(reduced))
"""

# The same command is run twice; a probe after the built-in callbacks saves
# the weights fit starts from (after the backup restored them) and the first
# epoch it runs.
RESUMABLE_RUN = """
import json, sys
import keras
import tiny_googlenet
from keras_googlenet.training import run as training
tiny_googlenet.patch_train_when_imported()  # the stand-in, and TINY_GOOGLENET_HOLD's hold

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
    output_dir=output_dir, epochs=3, steps_per_epoch=1, batch_size=2, image_size=80,
    validation_split=None, verbose=2, callbacks=[Probe()],
)
"""


def _python(*args):
    return [sys.executable, *args]


# The scripts import tests/support's `tiny_googlenet`.
SUPPORT_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "tests" / "support"), str(REPO_ROOT)])}


def _run(command):
    return subprocess.run(
        command, cwd=REPO_ROOT, env=SUPPORT_ENV, capture_output=True, text=True, timeout=TIMEOUT_S
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


def test_a_model_built_from_its_element_spec_all_reduces_no_batch_to_build_itself_again():
    process = _run(_python("-c", BATCHES_REDUCED))
    assert process.returncode == 0, process.stderr[-3000:]
    # Keras alone: one batch for `fit` and one per validation pass (2 epochs).
    assert re.findall(r"batches reduced: (\d+)", process.stdout) == ["3", "0"]


# The shapes of TF_CONFIG that engines give: Kubeflow's TFJob with a Chief
# replica and Vertex AI name a "chief" task beside the workers; Ray Train
# and TFJob without a Chief give workers only, worker 0 acting as chief.
# A chief beside the workers is run by test_kubernetes with the TF_CONFIG
# the operator derives from the manifest, workers only by the restart of
# the worker-kill test below, and a single worker here.
TINY_RUN = ("--steps-per-epoch", "1", "--batch-size", "2", "--image-size", "80", "--validation-split", "none", "--verbose", "2")


def logged_epochs(output_dir):
    rows = (output_dir / "history.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,")
    return [int(row.split(",")[0]) for row in rows[1:]]


def assert_only_the_chief_wrote_the_run(output_dir, temporary, logs, epochs):
    """``logs``: the tasks' logs, the chief's first."""
    chief_log, *other_logs = logs
    replicas = len(logs)
    strategy = "MultiWorkerMirroredStrategy" if replicas > 1 else "the default strategy"
    assert f"with {strategy} ({replicas} replica(s), global batch {2 * replicas})" in chief_log
    assert f"Last checkpoint: {output_dir / 'last.keras'}" in chief_log
    for log in other_logs:
        assert "Last checkpoint" not in log  # the others wrote to scratch folders
    # One backup, the chief's, which every task resumed from: deleted once
    # summary.json marked the run finished.
    assert not (output_dir / "backup").exists()
    assert not list(temporary.glob("keras_googlenet_*"))  # the scratch folders are deleted
    assert not (output_dir / "train.lock").exists()  # taken by the chief only, and released
    assert logged_epochs(output_dir) == list(range(epochs))
    summary = json.loads((output_dir / "summary.json").read_text())
    assert len(summary["history"]["loss"]) == epochs

    import keras

    model = keras.saving.load_model(output_dir / "last.keras", compile=False)
    assert model.output_names == ["main", "aux1", "aux2"]
    assert model.input_shape == (None, 80, 80, 3)


def test_a_single_worker_tf_config_trains_with_the_default_strategy_and_writes_the_run(tmp_path):
    output_dir, temporary = tmp_path / "run", tmp_path / "tmp"
    temporary.mkdir()
    configs = local_cluster.tf_configs({"worker": 1})
    command = local_cluster.tiny_train_command("--epochs", "2", *TINY_RUN, "--output-dir", str(output_dir))
    with local_cluster.LocalCluster(configs, command, tmp_path, temporary) as tasks:
        assert tasks.wait(TIMEOUT_S) == [0], tasks.report()
        logs = [tasks.log(name) for name in tasks.names]
    assert_only_the_chief_wrote_the_run(output_dir, temporary, logs, epochs=2)


def test_a_run_killed_with_sigkill_resumes_at_the_next_epoch_with_the_backed_up_weights(tmp_path):
    output_dir, probe_dir, held = tmp_path / "run", tmp_path / "probe", tmp_path / "held"
    probe_dir.mkdir()
    command = _python("-c", RESUMABLE_RUN, str(output_dir), str(probe_dir))
    metadata = output_dir / "backup" / "training_metadata.json"

    # The first run stops after the whole end of its first epoch (backup,
    # checkpoints, history row) and waits there to be killed.
    first = subprocess.Popen(
        command, cwd=REPO_ROOT, env={**SUPPORT_ENV, tiny_googlenet.HOLD: f"0:{held}"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + TIMEOUT_S
    while not held.exists():
        assert first.poll() is None, first.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "the first epoch did not end"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert first.returncode == -signal.SIGKILL
    finished = json.loads(metadata.read_text())["epoch"]
    assert finished == 1
    shutil.copy(output_dir / "backup" / "latest.weights.h5", tmp_path / "backed_up.weights.h5")
    for stale in probe_dir.iterdir():
        stale.unlink()

    second = _run(command)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"Resuming after epoch {finished} from the backup" in second.stdout
    # Keras counts epochs from 0: index `finished` is epoch finished + 1.
    assert json.loads((probe_dir / "first_epoch.json").read_text()) == finished
    backed_up, restored = _h5_arrays(tmp_path / "backed_up.weights.h5"), _h5_arrays(probe_dir / "start.weights.h5")
    assert backed_up.keys() == restored.keys() and len(backed_up) >= 10
    for name in backed_up:
        np.testing.assert_array_equal(restored[name], backed_up[name], err_msg=name)
    assert not metadata.exists()  # the finished run's backup is deleted
    assert len(json.loads((output_dir / "summary.json").read_text())["history"]["loss"]) == 3


def test_a_sigterm_to_one_worker_stops_both_at_one_step_and_a_killed_worker_costs_no_epoch(tmp_path):
    """Three runs of a two-worker cluster (Ray Train's shape; worker 1 is not the chief, and writes no backup there).

    1. Worker 1 alone gets SIGTERM in epoch 2: both tasks stop at the next
       step where they compare their requests (`step_backups.AGREE_EVERY`), and back it up.
    2. Both resume from that step; worker 1 is killed at the end of epoch 2.
    3. Both resume after epoch 2, and finish.
    """
    output_dir, temporary = tmp_path / "run", tmp_path / "tmp"
    temporary.mkdir()
    metadata = output_dir / "backup" / "training_metadata.json"
    steps = 12  # epoch 2's step 2 is the run's 14th; the tasks compare requests at its 16th
    command = local_cluster.tiny_train_command(
        "--epochs", "3", *TINY_RUN, "--steps-per-epoch", str(steps), "--output-dir", str(output_dir)
    )
    shape = {"worker": 2}
    for name in ("first", "second", "third"):
        (tmp_path / name).mkdir()

    held = tmp_path / "held"
    hold = {"worker1": {tiny_googlenet.HOLD: f"1/2:{held}"}}
    with local_cluster.LocalCluster(local_cluster.tf_configs(shape), command, tmp_path / "first", temporary, hold) as first:
        _wait_for(first, held.exists)
        first.processes[1].send_signal(signal.SIGTERM)  # worker 1 only: its machine was preempted
        assert first.wait(TIMEOUT_S) == [143, 143], first.report()
        logs = [first.log(name) for name in first.names]
    for log in logs:
        assert "keras-googlenet train: error: stopped by SIGTERM in epoch 2 after its step 4, backed up" in log, log[-3000:]
    assert json.loads(metadata.read_text()) == {"epoch": 1, "batch": 4}

    # Worker 1 stops at the end of epoch 2; the chief, once it has backed
    # that epoch up, waits for it in the next step's all-reduce.
    held = tmp_path / "held-again"
    hold = {"worker1": {tiny_googlenet.HOLD: f"1:{held}"}}
    with local_cluster.LocalCluster(local_cluster.tf_configs(shape), command, tmp_path / "second", temporary, hold) as second:
        _wait_for(second, lambda: held.exists() and json.loads(metadata.read_text())["epoch"] >= 2)
        assert second.kill("worker1") == -signal.SIGKILL
        # Nobody kills the survivor here (Ray would): it must not wait for its lost peer for ever.
        started = time.monotonic()
        survivor = second.wait(SURVIVOR_TIMEOUT_S)[0]
        survivor_s = time.monotonic() - started
        logs = [second.log(name) for name in second.names]
    print(f"The chief exited with {survivor} {survivor_s:.0f} s after its peer was killed")
    for log in logs:
        assert f"Resuming in epoch 2 after its step 4 of {steps} from the backup in {output_dir / 'backup'}" in log
    assert survivor not in (None, 0), logs[0][-3000:]
    # One line that names the lost task, not TensorFlow's first line, which names an op.
    assert "keras-googlenet train: error: PeerLost: Training stopped: /job:worker/replica:0/task:1 stopped answering " in logs[0], logs[0][-3000:]
    assert json.loads(metadata.read_text()) == {"epoch": 2, "batch": 0}
    assert list(temporary.glob("keras_googlenet_*_worker_1"))  # the killed worker's scratch folder, left behind

    with local_cluster.LocalCluster(local_cluster.tf_configs(shape), command, tmp_path / "third", temporary) as third:
        assert third.wait(TIMEOUT_S) == [0, 0], third.report()
        logs = [third.log(name) for name in third.names]
    for log in logs:
        assert f"Resuming after epoch 2 from the backup in {output_dir / 'backup'}" in log
        # Keras numbers epochs from 1: the first one run is the first unfinished.
        assert re.findall(r"^Epoch (\d+)/3$", log, re.MULTILINE)[0] == "3"
    # The killed worker's scratch folder was reused, then deleted with the others.
    assert_only_the_chief_wrote_the_run(output_dir, temporary, logs, epochs=3)


def _wait_for(cluster, condition):
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert None in cluster.wait(0.02) and time.monotonic() < deadline, cluster.report()
