"""A training run's files survive SIGKILL mid-write, damaged backups and a second run on the same folder."""

import csv
import json
import logging
import os
import pathlib
import shutil
import subprocess
import sys
import time

import h5py
import keras
import numpy as np
import pytest

import tiny_googlenet
from keras_googlenet.training import checkpointing, output_lock, run as training

# Training's files: outside the quick tier's scope (the builder, the weight readers,
# preprocessing, the CLI's checks, the metadata writer, storage), so the full tier only.
pytestmark = pytest.mark.slow

X = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
Y = np.random.default_rng(1).normal(size=(8, 2)).astype("float32")


def small_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "mse")
    return model


def fit(model, backup, epochs, initial_epoch=0):
    model.fit(X, Y, epochs=epochs, initial_epoch=initial_epoch, batch_size=4, shuffle=False, verbose=0, callbacks=[backup])


class KilledWhileWriting(Exception):
    """Stands for SIGKILL: the write stops half way and nothing after it runs."""


def half_write_then_die(path, *args, **kwargs):
    with open(path, "wb") as file:
        file.write(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    raise KilledWhileWriting


def test_backup_stores_the_epochs_done_and_keeps_the_previous_backup(tmp_path):
    model = small_model()
    fit(model, checkpointing.EpochBackup(tmp_path), epochs=3)
    with h5py.File(tmp_path / "latest.weights.h5") as latest, h5py.File(tmp_path / "previous.weights.h5") as previous:
        assert (latest.attrs["keras_googlenet_epochs_done"], previous.attrs["keras_googlenet_epochs_done"]) == (3, 2)
    assert json.loads((tmp_path / "training_metadata.json").read_text())["epoch"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.weights.h5", "previous.weights.h5", "training_metadata.json"]


def test_a_task_ahead_of_the_others_steps_back_to_the_previous_backup(tmp_path):
    fit(small_model(), checkpointing.EpochBackup(tmp_path), epochs=3)
    backup = checkpointing.EpochBackup(tmp_path)
    assert backup.resume_epoch == 3
    backup.restore_at_most(2)  # what cluster.agree_on_resume_point does when another task has only epoch 2
    assert backup.resume_epoch == 2 and backup._restore_from == tmp_path / "previous.weights.h5"
    backup.restore_at_most(1)  # no backup of one epoch is kept: from the start
    assert (backup.resume_epoch, backup._restore_from) == (0, None)


def test_a_kill_while_the_backup_is_written_leaves_the_last_backup_whole(tmp_path):
    model = small_model()
    backup = checkpointing.EpochBackup(tmp_path)
    fit(model, backup, epochs=1)
    before = (tmp_path / "latest.weights.h5").read_bytes()
    model.save_weights = half_write_then_die
    with pytest.raises(KilledWhileWriting):
        backup.on_epoch_end(1)
    # Keras' BackupAndRestore truncated latest.weights.h5 here, and every later run failed to open it.
    assert (tmp_path / "latest.weights.h5").read_bytes() == before
    assert checkpointing.EpochBackup(tmp_path).resume_epoch == 1


def test_a_kill_between_the_renames_of_a_backup_loses_no_epoch(tmp_path, monkeypatch, caplog):
    model = small_model()
    backup = checkpointing.EpochBackup(tmp_path)
    fit(model, backup, epochs=2)
    renames = []

    def replace_then_die(source, target):
        renames.append(pathlib.Path(target).name)
        if len(renames) == 3:  # the new backup is complete, the old one is now previous.weights.h5
            raise KilledWhileWriting
        os.rename(source, target)

    monkeypatch.setattr(checkpointing.os, "replace", replace_then_die)
    with pytest.raises(KilledWhileWriting):
        backup.on_epoch_end(2)
    monkeypatch.undo()
    assert renames == ["next.weights.h5", "previous.weights.h5", "latest.weights.h5"]
    with caplog.at_level(logging.WARNING, logger="keras_googlenet.training.checkpointing"):
        assert checkpointing.EpochBackup(tmp_path).resume_epoch == 3
    assert not caplog.records


def test_a_kill_while_a_checkpoint_is_written_leaves_the_last_checkpoint_whole(tmp_path):
    model = small_model()
    checkpoint = checkpointing.AtomicModelCheckpoint(str(tmp_path / "last.keras"))
    model.fit(X, Y, epochs=1, verbose=0, callbacks=[checkpoint])
    before = (tmp_path / "last.keras").read_bytes()
    model.save = half_write_then_die
    with pytest.raises(KilledWhileWriting):
        checkpoint.on_epoch_end(1, {"loss": 1.0})
    assert (tmp_path / "last.keras").read_bytes() == before
    assert keras.saving.load_model(tmp_path / "last.keras").count_params() == 8
    assert [p.name for p in tmp_path.iterdir()] == ["last.keras"]  # no temporary file left


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage"])
def test_a_damaged_latest_backup_falls_back_to_the_previous_one_with_one_warning(damage, tmp_path, caplog):
    model = small_model()
    fit(model, checkpointing.EpochBackup(tmp_path), epochs=2)
    expected = small_model()
    expected.optimizer.build(expected.trainable_variables)
    expected.load_weights(tmp_path / "previous.weights.h5")
    latest = tmp_path / "latest.weights.h5"
    content = latest.read_bytes()
    latest.write_bytes({"truncated": content[: len(content) // 2], "empty": b"", "garbage": b"not hdf5" * 50}[damage])

    with caplog.at_level(logging.WARNING, logger="keras_googlenet.training.checkpointing"):
        backup = checkpointing.EpochBackup(tmp_path)
    assert backup.resume_epoch == 1
    [warning] = [r.getMessage() for r in caplog.records if r.name == "keras_googlenet.training.checkpointing"]
    assert "latest.weights.h5" in warning and "resuming from previous.weights.h5 (1 epoch(s) done)" in warning
    assert "\n" not in warning

    resumed = small_model()
    starts = []
    probe = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: starts.append([v.numpy().copy() for v in resumed.weights + resumed.optimizer.variables])
    )
    resumed.fit(X, Y, epochs=2, initial_epoch=1, batch_size=4, verbose=0, callbacks=[backup, probe])
    for got, want in zip(starts[0], [v.numpy() for v in expected.weights + expected.optimizer.variables]):
        np.testing.assert_array_equal(got, want)
    assert int(resumed.optimizer.iterations.numpy()) == 4  # 2 steps per epoch: 2 restored, then 2 more


def test_the_zero_byte_backup_of_keras_backup_and_restore_starts_afresh_with_a_warning(tmp_path, caplog):
    # What SIGKILL during Keras' in-place write left: an empty weights file
    # and the metadata of the epoch before.
    (tmp_path / "latest.weights.h5").write_bytes(b"")
    (tmp_path / "training_metadata.json").write_text('{"epoch": 1, "batch": 0}')
    with caplog.at_level(logging.WARNING, logger="keras_googlenet.training.checkpointing"):
        backup = checkpointing.EpochBackup(tmp_path)
    assert backup.resume_epoch == 0
    assert any("training starts afresh" in r.getMessage() for r in caplog.records)
    model = small_model()
    fit(model, backup, epochs=1)  # no OSError: "file signature not found"
    with h5py.File(tmp_path / "latest.weights.h5") as latest:
        assert latest.attrs["keras_googlenet_epochs_done"] == 1


def test_a_keras_backup_and_restore_backup_is_still_resumed_from_its_metadata(tmp_path):
    model = small_model()
    fit(model, keras.callbacks.BackupAndRestore(str(tmp_path), delete_checkpoint=False), epochs=2)
    assert checkpointing.EpochBackup(tmp_path).resume_epoch == 2


def test_history_keeps_only_the_complete_rows_of_the_epochs_backed_up(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,val_top1\n0,2.5,0.1\n1,2.0,0.3\n2,1.5,0.5\n3,1.4")
    rows = checkpointing.trim_history(path, 3)
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    assert path.read_text().splitlines() == ["epoch,loss,val_top1", "0,2.5,0.1", "1,2.0,0.3", "2,1.5,0.5"]
    assert checkpointing.trim_history(path, 0) == [] and not path.exists()


def test_a_second_run_on_a_locked_output_dir_refuses_at_once_naming_the_holder(lock_holder, tmp_path):
    started = time.monotonic()
    with pytest.raises(ValueError) as error:
        training.train(output_dir=tmp_path / "run", epochs=1, image_size=32, aux_heads=False, print_fn=lambda line: None)
    message = str(error.value)
    assert f"(PID {lock_holder.pid})" in message and str(tmp_path / "run") in message and "\n" not in message
    assert message.endswith(f"Received: output_dir='{tmp_path / 'run'}'")
    assert time.monotonic() - started < 10  # before any data or model
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["train.lock"]


def test_the_lock_of_a_killed_run_is_taken_over_and_released_at_exit(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "train.lock").write_text(f"{dead.pid}\n")  # left by a run killed with SIGKILL
    with output_lock.lock_output_dir(tmp_path):
        assert (tmp_path / "train.lock").read_text() == f"{os.getpid()}\n"
        with pytest.raises(ValueError, match=rf"Another training run \(PID {os.getpid()}\) is writing to"):
            with output_lock.lock_output_dir(tmp_path):
                pass
    assert not (tmp_path / "train.lock").exists()
    with output_lock.lock_output_dir(tmp_path):  # free again
        pass


def test_train_releases_the_lock_when_it_fails(tmp_path):
    # Passes the argument checks (two classes, files named as images), fails when read, under the lock.
    for name in ("cat", "dog"):
        (tmp_path / "photos" / name).mkdir(parents=True)
        (tmp_path / "photos" / name / "c.jpg").write_text("not a JPEG")
    with pytest.raises(ValueError, match="has no readable images"):
        training.train(tmp_path / "photos", output_dir=tmp_path / "run", image_size=32, aux_heads=False, print_fn=lambda line: None)
    assert (tmp_path / "run").is_dir() and not (tmp_path / "run" / "train.lock").exists()


def test_a_finished_run_deletes_its_backup_and_run_again_trains_nothing_and_rewrites_nothing(tmp_path, monkeypatch):
    tiny_googlenet.use_in_train(monkeypatch)
    run = tmp_path / "run"
    first = training.train(output_dir=run, **{**KILL_SETTINGS, "epochs": 2})
    assert not (run / "backup").exists()  # as Keras' BackupAndRestore deletes its own
    files = {path.relative_to(run): path.read_bytes() for path in run.rglob("*") if path.is_file()}
    lines = []
    # Without its backup, which once made the history start afresh.
    again = training.train(output_dir=run, **{**KILL_SETTINGS, "epochs": 2, "print_fn": lines.append})
    assert lines[-1] == (
        f"The run in {run} is complete (2 epochs; its summary.json says so): nothing to train. "
        "Train into a new folder for a new run."
    ), lines
    assert again == first
    assert files == {path.relative_to(run): path.read_bytes() for path in run.rglob("*") if path.is_file()}
    assert not any("steps per epoch" in line for line in lines)  # no data, no model: it returned before them
    with pytest.raises(ValueError, match=r"its backup was deleted when it finished.*--keep-backup.*Received: epochs=3$"):
        training.train(output_dir=run, **{**KILL_SETTINGS, "epochs": 3})
    assert files == {path.relative_to(run): path.read_bytes() for path in run.rglob("*") if path.is_file()}


def test_a_run_that_keeps_its_backup_trains_on_with_more_epochs(tmp_path, monkeypatch):
    tiny_googlenet.use_in_train(monkeypatch)
    run, lines = tmp_path / "run", []
    training.train(output_dir=run, keep_backup=True, **{**KILL_SETTINGS, "epochs": 1})
    assert checkpointing.has_backup(run / "backup")
    training.train(output_dir=run, keep_backup=True, **{**KILL_SETTINGS, "epochs": 1, "print_fn": lines.append})
    assert lines[-1].endswith("Train into a new folder for a new run, or ask for more epochs to train this one on."), lines
    lines.clear()
    training.train(output_dir=run, **{**KILL_SETTINGS, "epochs": 2, "print_fn": lines.append})
    assert "Resuming after epoch 1 from the backup in " + str(run / "backup") in lines, lines
    assert [row.split(",")[0] for row in (run / "history.csv").read_text().splitlines()[1:]] == ["0", "1"]
    assert not (run / "backup").exists()


def _layer_arrays(path):
    """The model weights ("layers/...") of a .weights.h5 or .keras file, by name."""
    if str(path).endswith(".keras"):
        import io
        import zipfile

        with zipfile.ZipFile(path) as archive:
            path = io.BytesIO(archive.read("model.weights.h5"))
    arrays = {}
    with h5py.File(path, "r") as file:
        file["layers"].visititems(lambda name, item: arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
    return arrays


class SaveEachEpoch(keras.callbacks.Callback):
    """After the built-in callbacks: the weights that best.keras and last.keras got at each epoch end."""

    def __init__(self, folder):
        super().__init__()
        self.folder = folder

    def on_epoch_end(self, epoch, logs=None):
        self.model.save_weights(self.folder / f"epoch_{epoch}.weights.h5")


# The writes of an epoch end, in their order: (the file written just before
# the kill, the epoch, counted from 0, whose end is cut short).
EPOCH_END_KILLS = {
    "after_the_first_backup": ("training_metadata.json", 0),
    "after_the_second_backup": ("training_metadata.json", 1),
    "after_the_first_best_checkpoint": ("best.keras", 0),
    "after_the_last_checkpoint": ("last.keras", 1),
    "after_the_history_row": ("history.csv", 1),
}


KILL_SETTINGS = dict(
    epochs=3, steps_per_epoch=2, batch_size=4, image_size=32, aux_heads=False, validation_split=None,
    learning_rate=0.05, verbose=0, print_fn=lambda line: None,
)


class SnapshotAfterTheHistoryRow(keras.callbacks.Callback):
    """Runs after CSVLogger (the user's callbacks come after the built-in ones), which writes no temporary file."""

    def __init__(self, epoch, snapshot):
        super().__init__()
        self.epoch, self.snapshot = epoch, snapshot

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            self.snapshot("after_the_history_row")


@pytest.fixture(scope="module")
def killed_runs(tmp_path_factory):
    """What a SIGKILL right after each write of `EPOCH_END_KILLS` leaves: by kill, a folder with ``run`` and ``probe``.

    One uninterrupted run, its output folder copied as each of those writes
    completes (every write is atomic, so the copy is what a kill there
    leaves), without train.lock: the lock of a killed process is released
    with it. ``probe`` holds the weights of the epochs ended before.
    """
    root = tmp_path_factory.mktemp("killed_runs")
    run, probe = root / "run", root / "probe"
    probe.mkdir()

    def snapshot(kill):
        shutil.copytree(run, root / kill / "run", ignore=shutil.ignore_patterns("train.lock"))
        shutil.copytree(probe, root / kill / "probe")

    real_write, writes = checkpointing.write_atomically, []

    def write_then_copy(path, write, needed=None):
        real_write(path, write, needed)
        writes.append(pathlib.Path(path).name)
        for kill, (written, epoch) in EPOCH_END_KILLS.items():
            if writes[-1] == written and writes.count(written) == epoch + 1:
                snapshot(kill)

    with pytest.MonkeyPatch.context() as patch:
        tiny_googlenet.use_in_train(patch)
        patch.setattr(checkpointing, "write_atomically", write_then_copy)
        history_row = SnapshotAfterTheHistoryRow(EPOCH_END_KILLS["after_the_history_row"][1], snapshot)
        training.train(output_dir=run, callbacks=[history_row, SaveEachEpoch(probe)], **KILL_SETTINGS)
    assert sorted(path.name for path in root.iterdir()) == sorted([*EPOCH_END_KILLS, "probe", "run"])
    return root


@pytest.mark.slow
@pytest.mark.parametrize("kill", EPOCH_END_KILLS)
def test_a_kill_at_any_write_of_an_epoch_end_loses_no_history_row_and_keeps_the_best_epoch(kill, killed_runs, tmp_path, monkeypatch):
    tiny_googlenet.use_in_train(monkeypatch)
    _, epoch = EPOCH_END_KILLS[kill]
    shutil.copytree(killed_runs / kill, tmp_path, dirs_exist_ok=True)
    run, probe = tmp_path / "run", tmp_path / "probe"
    # The killed epoch's weights: the backup's (no EMA, so the checkpoints' too).
    shutil.copy(run / "backup" / "latest.weights.h5", probe / f"epoch_{epoch}.weights.h5")

    training.train(output_dir=run, callbacks=[SaveEachEpoch(probe)], **KILL_SETTINGS)

    with open(run / "history.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2]
    assert all(None not in row and None not in row.values() for row in rows)  # every row fits the header
    summary = json.loads((run / "summary.json").read_text())
    assert summary["history"]["loss"] == pytest.approx([float(row["loss"]) for row in rows])
    assert sorted(summary["history"]) == ["loss", "top1", "top5"]  # no validation: no val_ columns of "NA"
    # ModelCheckpoint keeps the first of equal scores.
    top1 = [float(row["top1"]) for row in rows]
    best_epoch = top1.index(max(top1))
    best, expected = _layer_arrays(run / "best.keras"), _layer_arrays(probe / f"epoch_{best_epoch}.weights.h5")
    assert best.keys() == expected.keys() and len(best) >= 5
    for name in best:
        np.testing.assert_array_equal(best[name], expected[name], err_msg=name)


@pytest.mark.slow
def test_train_resumes_from_the_previous_backup_when_a_kill_emptied_the_latest_one(killed_runs, tmp_path, caplog, monkeypatch):
    tiny_googlenet.use_in_train(monkeypatch)
    # Two epochs done and logged; then what SIGKILL during an in-place write of the second backup left.
    run = tmp_path / "run"
    shutil.copytree(killed_runs / "after_the_history_row" / "run", run)
    (run / "backup" / "latest.weights.h5").write_bytes(b"")
    lines = []
    with caplog.at_level(logging.WARNING, logger="keras_googlenet.training.checkpointing"):
        result = training.train(output_dir=run, **{**KILL_SETTINGS, "print_fn": lines.append})
    assert f"Resuming after epoch 1 from the backup in {run / 'backup'}" in lines
    assert any("latest.weights.h5 (OSError" in r.getMessage() for r in caplog.records)
    assert len(result.history["loss"]) == 3  # the whole run, not only the epochs after the resume
    rows = (run / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["0", "1", "2"]  # epoch 2 logged once, not twice
    assert not (run / "train.lock").exists()


def test_an_interrupted_epoch_end_is_finished_with_the_averaged_weights_in_the_checkpoints_and_the_raw_ones_kept(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9, use_ema=True, ema_momentum=0.5), "mse")
    model.fit(X, Y, epochs=2, batch_size=4, shuffle=False, verbose=0, callbacks=[checkpointing.EpochBackup(tmp_path / "backup")])
    averaged = model.get_weights()  # fit ends by putting the averaged weights in the model
    raw = _layer_arrays(tmp_path / "backup" / "latest.weights.h5")  # the backup holds the raw ones
    assert not np.allclose(averaged[0], raw["dense/vars/0"])
    # Killed after the backup of epoch 2, before its checkpoints and history row.
    resumed = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    resumed.compile(keras.optimizers.SGD(0.1, momentum=0.9, use_ema=True, ema_momentum=0.5), "mse")
    backup = checkpointing.EpochBackup(tmp_path / "backup")
    (tmp_path / "history.csv").write_text("epoch,loss\n0,9.0\n")
    _, rows = checkpointing.read_history(tmp_path / "history.csv")
    finish = checkpointing.InterruptedEpochEnd(
        backup, rows, (tmp_path / "best.keras", tmp_path / "last.keras"), tmp_path / "history.csv", "loss", use_ema=True
    )
    assert (backup.resume_epoch, finish.is_best) == (2, False)  # loss is not "higher is better"
    starts = []
    probe = keras.callbacks.LambdaCallback(on_train_begin=lambda logs: starts.append(resumed.get_weights()))
    resumed.fit(X, Y, epochs=2, initial_epoch=2, verbose=0, callbacks=[backup, finish, probe])

    last = keras.saving.load_model(tmp_path / "last.keras")
    for got, want in zip(last.get_weights(), averaged):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(starts[0][0], raw["dense/vars/0"], rtol=1e-6, atol=1e-6)  # training goes on from the raw weights
    assert not (tmp_path / "best.keras").exists()
    rows = (tmp_path / "history.csv").read_text().splitlines()
    assert rows[0] == "epoch,loss" and [row.split(",")[0] for row in rows[1:]] == ["0", "1"]
    with h5py.File(tmp_path / "backup" / "latest.weights.h5") as file:
        logged = json.loads(file.attrs["keras_googlenet_epoch_logs"])
    assert float(rows[2].split(",")[1]) == pytest.approx(logged["loss"]) and logged["loss"] < 9
