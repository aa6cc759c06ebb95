"""A training run's files on disk, kept whole through SIGKILL.

- `write_atomically`: every checkpoint, backup and metadata file is written to
  a temporary file in its folder, then renamed over the old one
  (`os.replace` is atomic on POSIX and Windows), so a kill leaves the old
  file or the new one, never half of one.
- `EpochBackup`: the backup of the weights and optimizer state at each
  epoch end (and at the steps `step_backups` asks for), with the previous
  backup kept until the new one is complete, and a fallback to it when the
  newest one is damaged.
- `AtomicModelCheckpoint`: Keras' `ModelCheckpoint`, written atomically.
- `InterruptedEpochEnd`: finishes the checkpoints and history row of an
  epoch end that a kill after its backup cut short.

One run per output folder is `output_lock`'s.
"""

import csv
import json
import logging
import math
import os
import pathlib

import h5py
import keras

from keras_googlenet.storage import disk

logger = logging.getLogger(__name__)

LATEST_BACKUP = "latest.weights.h5"
PREVIOUS_BACKUP = "previous.weights.h5"
NEXT_BACKUP = "next.weights.h5"
# Written for people and tools; the epoch that counts is the one stored in
# each weights file, which cannot disagree with the weights beside it.
BACKUP_METADATA = "training_metadata.json"
EPOCH_ATTRIBUTE = "keras_googlenet_epochs_done"
# The steps of the next epoch done, for a backup made between epoch ends
# (`step_backups`); 0, or absent, at an epoch end.
STEP_ATTRIBUTE = "keras_googlenet_steps_done"
# The logs of the epoch a backup ends, as JSON: a run killed after the backup
# but before the epoch's checkpoints and history row are written finishes
# them from these (`InterruptedEpochEnd`).
LOGS_ATTRIBUTE = "keras_googlenet_epoch_logs"
TEMPORARY_PREFIX = ".tmp-"


def write_atomically(path, write, needed=None):
    """Calls ``write(temporary_path)``, then renames the result to ``path``.

    The temporary file sits in the same folder (a rename across file systems
    is a copy) and ends with the same suffix as ``path``, because Keras
    chooses the format of ``save``/``save_weights`` by the suffix. It is
    flushed to disk before the rename, so that a power cut cannot leave the
    new name pointing at unwritten blocks. A full disk is a one-line
    `disk.DiskFull` naming the folder, before writing when the bytes
    ``needed`` are known (see `disk.named_if_full`), and leaves ``path`` as it was.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{TEMPORARY_PREFIX}{os.getpid()}-{path.name}")
    try:
        with disk.named_if_full(path.parent, path.name, needed):
            write(temporary)
            with open(temporary, "rb+") as file:
                os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def write_text_atomically(path, text):
    return write_atomically(path, lambda temporary: pathlib.Path(temporary).write_text(text))


def remove_temporary_files(folder):
    """Deletes what `write_atomically` calls killed in ``folder`` left (not in its subfolders).

    Call it only where no other process writes: under `output_lock.lock_output_dir`, or
    in a folder of this process's own.
    """
    for path in pathlib.Path(folder).glob(f"{TEMPORARY_PREFIX}*"):
        path.unlink(missing_ok=True)


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`ModelCheckpoint` that never leaves a half-written checkpoint.

    Keras writes the `.keras` zip in place: a kill during the write leaves a
    file that no longer loads, in place of the last good one.
    """

    def _save_model(self, epoch, batch, logs):
        filepath = self._get_file_path(epoch, batch, logs)
        if not self._should_save_model(epoch, batch, logs, filepath):
            return
        needed = disk.variables_size(self.model, self.model.optimizer)
        if self.save_weights_only:
            write_atomically(filepath, lambda temporary: self.model.save_weights(temporary, overwrite=True), needed)
        else:
            write_atomically(filepath, lambda temporary: self.model.save(temporary, overwrite=True), needed)


class EpochBackup(keras.callbacks.Callback):
    """Backs up the weights and optimizer state at every epoch end; restores them when fit starts.

    A crash-safe replacement for `keras.callbacks.BackupAndRestore`, which
    truncates its one weights file and rewrites it in place: a SIGKILL during
    that write left a 0-byte backup that no later run could open. Here each
    backup is written to a temporary file and renamed into place, the one
    before it is kept as ``previous.weights.h5``, and the number of finished
    epochs is stored inside the weights file, so that the two always agree.

    The backup is read when the callback is made: `resume_epoch` is the
    number of epochs it holds (0 for a fresh start), to pass to `fit` as
    ``initial_epoch``, and `resume_step` the steps of the next epoch it
    holds (`save_step`; 0 at an epoch end). A damaged backup is skipped
    with a one-line warning, for the previous one or a fresh start.

    The epoch's logs are stored beside the epoch (`resume_logs` on
    reading), so that a kill after the backup loses no history row.

    Args:
        backup_dir: the folder this callback writes its backups to, used by
            nothing else.
        restore_dir: the folder of the backups to resume from; by default
            ``backup_dir``. Under MultiWorkerMirroredStrategy every task
            resumes from the chief's (see `cluster.task_folders`).
    """

    def __init__(self, backup_dir, restore_dir=None):
        super().__init__()
        self.backup_dir = pathlib.Path(backup_dir)
        self.restore_dir = pathlib.Path(restore_dir) if restore_dir is not None else self.backup_dir
        remove_temporary_files(self.backup_dir)
        self._restore_from, (self.resume_epoch, self.resume_step), self.resume_logs = _last_good_backup(self.restore_dir)

    def restore_at_most(self, point):
        """Resumes from the newest good backup at or before ``point`` instead: epochs, or (epochs, steps) (the tasks' agreement, `cluster.agree_on_resume_point`)."""
        point = (point, 0) if isinstance(point, int) else tuple(point)
        if point < (self.resume_epoch, self.resume_step):
            self._restore_from, (self.resume_epoch, self.resume_step), self.resume_logs = _last_good_backup(
                self.restore_dir, point
            )

    def on_train_begin(self, logs=None):
        if self._restore_from is None:  # a fresh start, or restored by an earlier fit of this run
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)  # its variables must exist to be loaded
        try:
            self.model.load_weights(self._restore_from)
        except ValueError as error:  # a readable file whose layers do not match this model
            raise ValueError(
                f"The backup {self._restore_from} was written by a different model or optimizer "
                f"({_first_line(error)}): delete {self.restore_dir} to start afresh, or train "
                f"into another output_dir. Received: backup_dir='{self.restore_dir}'"
            ) from None
        self._restore_from = None

    def on_epoch_end(self, epoch, logs=None):
        self._save(epoch + 1, 0, logs)

    def save_step(self, epoch, step):
        """Backs up the state after ``step`` steps of epoch ``epoch`` (0-based), between epoch ends."""
        self._save(epoch, step, None)

    def _save(self, epochs, step, logs):
        latest, previous = self.backup_dir / LATEST_BACKUP, self.backup_dir / PREVIOUS_BACKUP

        def write(temporary):
            self.model.save_weights(temporary, overwrite=True)
            with h5py.File(temporary, "a") as file:
                file.attrs[EPOCH_ATTRIBUTE] = epochs
                file.attrs[STEP_ATTRIBUTE] = step
                if logs is not None:
                    file.attrs[LOGS_ATTRIBUTE] = json.dumps(_numbers(logs))

        write_atomically(self.backup_dir / NEXT_BACKUP, write, disk.variables_size(self.model, self.model.optimizer))
        # A kill between these two renames leaves next and previous, and
        # next is complete: nothing is lost.
        if latest.exists():
            os.replace(latest, previous)
        os.replace(self.backup_dir / NEXT_BACKUP, latest)
        write_text_atomically(self.backup_dir / BACKUP_METADATA, json.dumps({"epoch": epochs, "batch": step}))


def _numbers(logs):
    numbers = {}
    for name, value in (logs or {}).items():
        try:
            numbers[name] = float(value)
        except (TypeError, ValueError):  # not a scalar: CSVLogger would write it as text, we drop it
            pass
    return numbers


def has_backup(backup_dir):
    """Whether ``backup_dir`` holds a backup file (whole or not: `EpochBackup` judges that)."""
    return any((pathlib.Path(backup_dir) / name).is_file() for name in (LATEST_BACKUP, PREVIOUS_BACKUP, NEXT_BACKUP))


def _last_good_backup(backup_dir, at_most=(float("inf"), 0)):
    """(path, (epochs, steps) done, logs of the last epoch or None) of the newest readable backup at or before ``at_most``, or (None, (0, 0), None)."""
    # next.weights.h5 is complete (written atomically) but was not yet renamed to latest.
    candidates = [backup_dir / name for name in (LATEST_BACKUP, NEXT_BACKUP, PREVIOUS_BACKUP)]
    found, damaged = [], []
    for path in filter(pathlib.Path.exists, candidates):
        try:
            found.append((*_read_backup(path), path))
        except Exception as error:  # noqa: BLE001  h5py raises OSError, KeyError, RuntimeError...
            damaged.append(f"{path.name} ({type(error).__name__}: {_first_line(error)})")
    found = [item for item in found if item[0] <= at_most]
    point, logs, path = max(found, key=lambda item: item[0]) if found else ((0, 0), None, None)
    if damaged:
        fallback = f"resuming from {path.name} ({_done(*point)})" if path else "training starts afresh"
        logger.warning("Damaged backup in %s: %s; %s.", backup_dir, ", ".join(damaged), fallback)
    return path, point, logs


def _done(epochs, step):
    return f"{epochs} epoch(s) done" + (f" and {step} step(s) of the next" if step else "")


def _first_line(error):
    return str(error).strip().splitlines()[0] if str(error).strip() else "no detail"


def _read_backup(path):
    """((epochs, steps) done, logs of the last epoch end or None) according to a backup, after reading every array of it."""
    with h5py.File(path, "r") as file:
        # Reading each array finds a truncated file before the model is
        # touched: a failure half way through load_weights would leave the
        # model with part of the old weights.
        file.visititems(lambda name, item: item[()] if isinstance(item, h5py.Dataset) else None)
        if EPOCH_ATTRIBUTE in file.attrs:
            logs = json.loads(file.attrs[LOGS_ATTRIBUTE]) if LOGS_ATTRIBUTE in file.attrs else None
            return (int(file.attrs[EPOCH_ATTRIBUTE]), int(file.attrs.get(STEP_ATTRIBUTE, 0))), logs
    # Written by Keras' BackupAndRestore (before this callback): its epoch is
    # in the metadata file, which only ever described latest.weights.h5.
    metadata = path.parent / BACKUP_METADATA
    if path.name == LATEST_BACKUP and metadata.is_file():
        return (int(json.loads(metadata.read_text())["epoch"]), 0), None
    raise KeyError(f"no {EPOCH_ATTRIBUTE} attribute")


def trim_history(csv_path, epochs_done):
    """Keeps the complete rows of the first ``epochs_done`` epochs of a CSVLogger file.

    A run killed after its last backup may have logged an epoch that the
    next run trains again, or half a row: without this the history, and the
    curves drawn from it, would count that epoch twice. Returns the rows kept.
    """
    csv_path = pathlib.Path(csv_path)
    fields, rows = read_history(csv_path, epochs_done)
    if not rows:
        csv_path.unlink(missing_ok=True)
        return []
    _write_history(csv_path, fields, rows)
    return rows


def read_history(csv_path, epochs_done=float("inf")):
    """(columns, complete rows of the epochs before ``epochs_done``) of a CSVLogger file; ([], []) if none."""
    csv_path = pathlib.Path(csv_path)
    if not csv_path.is_file():
        return [], []
    with open(csv_path, newline="") as file:
        reader = csv.DictReader(file)
        fields = reader.fieldnames or []
        rows = [row for row in reader if None not in row.values() and None not in row and _epoch(row) < epochs_done]
    return fields, rows


def _write_history(csv_path, fields, rows):
    def write(temporary):
        with open(temporary, "w", newline="") as file:
            writer = csv.DictWriter(file, fields)
            writer.writeheader()
            writer.writerows(rows)

    write_atomically(csv_path, write)


def logged_number(text):
    """A logged value as a float, NaN when missing or not a number (CSVLogger writes "NA" for no value)."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _epoch(row):
    try:
        return int(row.get("epoch", ""))
    except ValueError:
        return float("inf")


class InterruptedEpochEnd(keras.callbacks.Callback):
    """Finishes, when fit starts, the epoch end that a kill after the backup cut short.

    An epoch end writes the backup first, then ``best.keras`` (if the epoch
    is the best), ``last.keras`` and the history row. Killed in between, the
    next run resumes after that epoch, and without this the epoch would be
    missing from the history for good, and ``best.keras`` would not hold it.
    Placed right after `EpochBackup`, which restores the backed-up weights,
    this rewrites ``last.keras`` from them, ``best.keras`` when the epoch
    beat every epoch before it, and the history row from the logs stored in
    the backup. Rewriting a checkpoint the killed run had already written
    changes nothing, so the decision needs no file but the backup and the
    rows before that epoch: under MultiWorkerMirroredStrategy every task
    makes it alike (saving a model may take part in collectives, so every
    task must save the same checkpoints).

    Args:
        backup: the `EpochBackup` fit resumes from.
        rows: the complete history rows of the epochs before the backup's last.
        checkpoints: ``(best, last)``: this task's checkpoint paths.
        csv_path: this task's history file, which gets the missing row.
        monitor: the logged metric that picks the best checkpoint (higher is better).
        use_ema: whether the checkpoints hold the optimizer's averaged weights.
    """

    def __init__(self, backup, rows, checkpoints, csv_path, monitor, use_ema=False):
        super().__init__()
        self.epoch = backup.resume_epoch - 1
        self.logs = backup.resume_logs
        before = [logged_number(row.get(monitor)) for row in rows if _epoch(row) < self.epoch]
        value = (self.logs or {}).get(monitor, math.nan)
        # ModelCheckpoint(save_best_only) saves on a strict improvement, and never a NaN.
        self.is_best = self.logs is not None and math.isfinite(value) and all(
            value > old for old in before if math.isfinite(old)
        )
        self.best_path, self.last_path = map(pathlib.Path, checkpoints)
        self.csv_path = pathlib.Path(csv_path)
        self.use_ema = use_ema

    def on_train_begin(self, logs=None):
        if self.logs is None:  # a fresh start, or a backup written before logs were stored in it
            return
        ema = keras.callbacks.SwapEMAWeights() if self.use_ema else None
        if ema:  # the checkpoints hold the averaged weights, the backup the raw ones
            ema.set_model(self.model)
            ema.on_test_begin()  # puts the averaged weights in the model
        try:
            for path in ([self.best_path] if self.is_best else []) + [self.last_path]:
                write_atomically(
                    path, lambda temporary: self.model.save(temporary, overwrite=True),
                    disk.variables_size(self.model, self.model.optimizer),
                )
        finally:
            if ema:
                ema.on_test_end()  # and the raw ones back, to train on
        self._log_row()

    def _log_row(self):
        fields, rows = read_history(self.csv_path)
        if any(_epoch(row) == self.epoch for row in rows):
            return
        fields = fields or _csv_logger_columns(self.logs)
        row = {name: self.logs.get(name, "NA") for name in fields}
        row["epoch"] = self.epoch
        _write_history(self.csv_path, fields, [row for row in rows if _epoch(row) < self.epoch] + [row])


def _csv_logger_columns(logs):
    # CSVLogger's: "epoch", the logs' keys sorted, and with no validation
    # "val_" ones too (written "NA"), so that its later rows fit the header.
    keys = sorted(logs)
    if not any(key.startswith("val_") for key in keys):
        keys += [f"val_{key}" for key in keys]
    return ["epoch", *keys]
