"""Training a GoogLeNet with `model.fit`: the run, its optimizer, schedule and callbacks.

`train` is the whole job: it takes a distribution strategy from `cluster`, reads the data
with `pipeline.make_dataset`, builds and compiles the three-head model
(`compile_googlenet`, loss weights 1.0 / 0.3 / 0.3), fits it with checkpoints,
backups, logs and curves, then evaluates it. The pieces it is made of
(`learning_rate_schedule`, `make_optimizer`, `make_callbacks`) are public so that examples and tests can reuse them.
"""

import contextlib
import dataclasses
import functools
import json
import math
import os
import pathlib
import shutil
import sys
import types

import keras
import tensorflow as tf

from keras_googlenet.data import augment, datasets, pipeline
from keras_googlenet import storage
from keras_googlenet.storage import disk
from keras_googlenet.training import checkpointing, cluster, curves, evaluation, output_lock, preemption, progress, remote_output, step_backups, vertex, arguments as train_arguments
from keras_googlenet.artifacts import model_info
from keras_googlenet.model.googlenet import GoogLeNet
from keras_googlenet.model.task import build_from_element_spec, compile_googlenet
# The defaults and choices live in the light `defaults` module, which the CLI
# reads without importing TensorFlow; re-exported here for the library's users.
from keras_googlenet.defaults import (
    DEFAULT_BATCH_SIZE, DEFAULT_DATA, DEFAULT_EPOCHS, DEFAULT_IMAGE_SIZE, DEFAULT_LEARNING_RATE,
    DEFAULT_MIN_CROP_AREA, DEFAULT_OUTPUT_DIR, DEFAULT_VARIANT, MIXED_PRECISION_POLICIES, SCHEDULES,
    STRATEGIES, SUMMARY_FILE, WEIGHT_DECAY,
)

# Section 6: "asynchronous stochastic gradient descent with 0.9 momentum [17],
# fixed learning rate schedule (decreasing the learning rate by 4% every 8
# epochs)". The Caffe solver (bvlc_googlenet/quick_solver.prototxt) adds
# weight decay 0.0002, and no decay on biases (decay_mult: 0).
MOMENTUM = 0.9
PAPER_DECAY_RATE = 0.96
PAPER_EPOCHS_PER_DECAY = 8
NO_WEIGHT_DECAY = ("bias", "gamma", "beta")

BEST_CHECKPOINT = "best.keras"
LAST_CHECKPOINT = "last.keras"
CSV_LOG = "history.csv"
CURVES_PNG = "curves.png"
TENSORBOARD_DIR = "tensorboard"
BACKUP_DIR = "backup"
NAN_MESSAGE = "NaN or Inf loss"  # the start of TerminateOnNaN(raise_error=True)'s RuntimeError


@dataclasses.dataclass
class TrainingResult:
    """Where `train` wrote its files, and what the model scored."""

    output_dir: str
    best_checkpoint: str
    last_checkpoint: str
    curves: str
    csv_log: str
    tensorboard_dir: str
    history: dict
    evaluation: dict  # {"top1", "top5", "examples", "crops"}, empty without a validation split
    replicas: int
    global_batch_size: int
    is_chief: bool


def train(
    data=DEFAULT_DATA,
    *,
    output_dir=None,
    split="train",
    validation_split="validation",
    epochs=DEFAULT_EPOCHS,
    batch_size=DEFAULT_BATCH_SIZE,
    steps_per_epoch=None,
    image_size=DEFAULT_IMAGE_SIZE,
    variant=DEFAULT_VARIANT,
    aux_heads=True,
    learning_rate=DEFAULT_LEARNING_RATE,
    schedule="paper",
    warmup_epochs=1,
    weight_decay=WEIGHT_DECAY,
    label_smoothing=0.0,
    use_ema=False,
    ema_momentum=0.99,
    mixed_precision=None,
    min_crop_area=DEFAULT_MIN_CROP_AREA,
    strategy="auto",
    devices=None,
    seed=0,
    data_dir=None,
    manual_dir=None,
    keep_backup=False,
    backup_every=None,
    callbacks=(),
    verbose="auto",
    print_fn=print,
):
    """Trains a three-head GoogLeNet and evaluates it.

    Run again with the same arguments after an interruption (even SIGKILL),
    training resumes where its last backup was made, with the weights and
    optimizer state of that moment: an epoch end, or the last of every
    ``backup_every`` steps. SIGTERM (a preempted machine) backs up the step
    it stops at, and raises `preemption.Preempted` (`step_backups`). The
    data of a resumed epoch are the ones an uninterrupted run would have
    had next (`stream.training_stream`). Every file is written atomically;
    a damaged backup is skipped, with a warning, for the one before it (see
    `checkpointing.EpochBackup`).

    The arguments are checked first, TensorFlow aside
    (`train_arguments.check_train_arguments`): a bad value, a ``data``
    folder that does not exist or a busy ``output_dir`` raises before
    anything is printed or created. One run at a time per ``output_dir``:
    a second one raises a ValueError at once, naming the PID of the first
    (`output_lock.lock_output_dir`).

    Under `MultiWorkerMirroredStrategy` every task runs this function, with
    the same ``output_dir``, which must be a folder all of them see (a
    shared volume) or a bucket: only the chief writes there, and every task
    resumes from the chief's backup in it (see `cluster.task_folders` and
    `remote_output`). The other tasks
    write their checkpoints, logs and backups to a scratch folder of their
    own, as the Keras multi-worker guide asks, deleted at the end.

    Args:
        data: ``"digits"`` (the built-in offline default), an image folder or
            a tfds name; see `pipeline.make_dataset`.
        output_dir: the folder for checkpoints, logs, curves and backups, or
            a ``gs://`` or ``s3://`` URI (with the ``[gcs]`` or ``[s3]``
            extra): the run is then written to a local mirror and uploaded at
            each epoch end, ``summary.json`` last (`remote_output`). None:
            ``runs/googlenet``, or in a Vertex AI job, ``AIP_CHECKPOINT_DIR``,
            TensorBoard's logs then going to ``AIP_TENSORBOARD_LOG_DIR`` and
            the model to ``AIP_MODEL_DIR`` (`vertex`).
        split: the split to train on.
        validation_split: the split evaluated after each epoch and at the
            end, or ``None`` for none.
        epochs: the number of epochs.
        batch_size: the batch size per replica; the global batch is this
            times the number of replicas.
        steps_per_epoch: the number of batches per epoch; one pass over the
            split when ``None`` (the data is repeated so every epoch has the
            same number of steps).
        image_size: the input height and width (at least 79 with aux heads).
        variant: ``"bn"`` or ``"paper"``.
        aux_heads: whether to train the two auxiliary classifiers.
        learning_rate: the peak learning rate.
        schedule: ``"paper"`` (x0.96 every 8 epochs), ``"cosine"`` (linear
            warmup then cosine decay to 0) or ``"constant"``.
        warmup_epochs: the warmup length of the cosine schedule.
        weight_decay: the weight decay (not applied to biases and batch norm).
        label_smoothing: the label smoothing factor, in [0, 1).
        use_ema: whether to keep an exponential moving average of the weights
            (the paper's Polyak averaging); the averaged weights are the ones
            evaluated and saved.
        ema_momentum: the momentum of that average.
        mixed_precision: ``None``, ``"mixed_float16"`` or ``"mixed_bfloat16"``.
        min_crop_area: the smallest training crop, as a fraction of the image
            area: 0.5 for the 8x8 digits by default, the paper's is 0.08.
        strategy: ``"auto"``, ``"default"``, ``"mirrored"``,
            ``"multi_worker"`` or a `tf.distribute.Strategy`; see
            `cluster.make_strategy`.
        devices: split the CPU into this many logical devices (to test
            distribution on one machine); must come before TF starts.
        seed: the seed of the weights, the data order and the augmentation.
        data_dir: where tfds keeps its datasets.
        manual_dir: the hand-downloaded archives of a tfds dataset (ImageNet).
        keep_backup: keep ``backup/`` after the run has finished, as the
            means to train it on later with a larger ``epochs``. By default
            it is deleted once ``summary.json`` marks the run finished, as
            Keras' `BackupAndRestore` deletes its own: at 224 px it is
            two copies of the weights and the optimizer state (200 MB).
        backup_every: also back up every this many steps, so that a kill
            without warning loses at most that many; ``None``: at epoch ends
            (and on SIGTERM) only.
        callbacks: more Keras callbacks, run after the built-in ones.
        verbose: `model.fit`'s output: 0 silent, 1 a progress bar, 2 one line
            per epoch; ``"auto"``: 1 when stdout is a terminal, else 2.
        print_fn: where the plan (first, at once), the resume notice and the
            final report go.

    Returns:
        A `TrainingResult`. Its paths are in ``output_dir`` on every worker.
    """
    job = types.SimpleNamespace(**locals())  # the arguments, handed to the steps below
    job.outputs = vertex.outputs(output_dir)  # Vertex AI's folders, when it gives them and no output_dir
    job.output_dir = job.outputs.run
    train_arguments.check_train_arguments(**vars(job))
    say = _flushing(print_fn)
    _announce(job, say)
    strategy = cluster.make_strategy(strategy, devices)
    # A gs:// or s3:// output_dir is trained in a local mirror, pushed at each epoch end.
    routes = {TENSORBOARD_DIR + "/": job.outputs.tensorboard} if job.outputs.tensorboard else {}
    with preemption.stop_on_sigterm(), datasets.listed_once(), _data_on_disk(job, say), remote_output.run_folder(job.output_dir, strategy, say, routes) as (local_dir, mirror, lease):
        folders = cluster.task_folders(local_dir, strategy, BACKUP_DIR)
        try:
            # Only the chief writes to output_dir, so only the chief locks it.
            with output_lock.lock_output_dir(folders.output_dir) if folders.chief else contextlib.nullcontext():
                return _train_in(folders, job, strategy, say, (mirror, lease) if folders.chief and mirror else None)
        finally:
            if not folders.chief:  # the Keras multi-worker guide's clean-up of the other workers' folders
                shutil.rmtree(folders.write_dir, ignore_errors=True)


@contextlib.contextmanager
def _data_on_disk(job, say):
    """An image folder at a gs:// or s3:// ``job.data``, fetched into a temporary folder for the run (each task its own).

    The whole folder: fine-tuning sets fit a disk. ImageNet-sized data goes
    through tfds, whose ``data_dir`` may be a gs:// URI that tfds reads itself.
    """
    if not storage.is_object_store(job.data):
        yield
        return
    from keras_googlenet.storage import staging

    stage, uri = staging.Staging(), job.data
    try:
        job.data = stage.fetch(uri, "data")
        say(f"Fetched the image folder {uri} into {job.data}.")
        yield
    finally:
        stage.close()
        job.data = uri


@dataclasses.dataclass(frozen=True)
class _Data:
    stream: object  # step -> the training batches from that global step on
    train: tf.data.Dataset  # stream(0)
    validation: object  # a tf.data.Dataset or None
    validation_steps: object  # an int, or None when unknown
    info: object  # datasets.DatasetInfo
    steps_per_epoch: int
    global_batch_size: int


def _train_in(folders, job, strategy, say, remote):
    """`train` once the strategy is made and the output folder is ours; ``remote``, (mirror, lease), pushes it to a bucket."""
    checkpointing.remove_temporary_files(folders.write_dir)  # left by a run killed while writing
    finished = _finished_run(folders, job, say)
    if finished:
        return finished
    replicas = strategy.num_replicas_in_sync
    say(
        f"Strategy: {cluster.strategy_name(strategy)}, {replicas} replica(s); global batch {job.batch_size * replicas} "
        f"({job.batch_size} per replica)."
    )
    data = _make_data(job, job.batch_size * replicas)
    previous_policy = keras.mixed_precision.global_policy()
    if job.mixed_precision:
        keras.mixed_precision.set_global_policy(job.mixed_precision)
    try:
        model = _build_model(job, strategy, data)
        history = _fit(model, job, data, folders, say, remote)
        scores = _save_and_evaluate(model, job, data, folders)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)

    # On the other workers too: their own files are deleted. A bucket's URIs for a bucket.
    in_bucket = storage.is_object_store(job.output_dir)
    where = functools.partial(storage.join, job.output_dir) if in_bucket else lambda name: str(folders.output_dir / name)
    result = TrainingResult(
        output_dir=job.output_dir if in_bucket else str(folders.output_dir),
        best_checkpoint=where(BEST_CHECKPOINT),
        last_checkpoint=where(LAST_CHECKPOINT),
        curves=where(CURVES_PNG),
        csv_log=where(CSV_LOG),
        tensorboard_dir=job.outputs.tensorboard or where(TENSORBOARD_DIR),
        # The chief's CSV holds the whole run, resumed or not; History only
        # the epochs of this fit.
        history=_logged_history(folders.write_dir / CSV_LOG) if folders.chief else history,
        evaluation=scores,
        replicas=replicas,
        global_batch_size=data.global_batch_size,
        is_chief=folders.chief,
    )
    if folders.chief:
        summary = json.dumps(dataclasses.asdict(result), indent=2, default=float)
        checkpointing.write_text_atomically(folders.write_dir / SUMMARY_FILE, summary)
        if remote:
            remote_output.check_lease(remote[1])
            remote[0].push(final=True)  # summary.json last: the bucket holds a finished run
        if job.outputs.model:
            _copy_model(folders.write_dir, job.outputs.model, say)
        if not job.keep_backup:  # after summary.json: a kill in between leaves a finished run
            _delete_backup(folders, remote)
        _report(result, data.info, strategy, job.validation_split, say)
    return result


def _delete_backup(folders, remote):
    if remote:
        remote[0].remove(BACKUP_DIR)  # here and in the bucket
    else:
        shutil.rmtree(folders.backup_dir, ignore_errors=True)


def _copy_model(run_dir, model_uri, say):
    """Copies the best checkpoint (the last one without validation) and its labels to Vertex AI's ``AIP_MODEL_DIR``."""
    from keras_googlenet.storage import objects

    best = run_dir / BEST_CHECKPOINT
    checkpoint = best if best.is_file() else run_dir / LAST_CHECKPOINT
    for path in (checkpoint, run_dir / model_info.LABELS_FILE):
        objects.upload_file(path, storage.join(model_uri, path.name))
    say(f"Model:           {storage.join(model_uri, checkpoint.name)} (AIP_MODEL_DIR), with {model_info.LABELS_FILE}")


def _finished_run(folders, job, say):
    """The `TrainingResult` of a run in ``folders.output_dir`` that has trained ``job.epochs`` epochs already, or None.

    ``summary.json`` is the run's last file (in a bucket too): it marks a
    finished run. Running the same command again, as a TFJob, Ray or
    Vertex AI retry or a user does, retrains nothing and rewrites no file.
    A larger ``epochs`` trains on from the backup, where it was kept
    (``keep_backup``); without it, that is a one-line ValueError rather
    than a new run over the old one's files.
    """
    path = folders.output_dir / SUMMARY_FILE
    if not path.is_file():
        return None
    fields = {field.name for field in dataclasses.fields(TrainingResult)}
    summary = {key: value for key, value in json.loads(path.read_text()).items() if key in fields}
    done = len(summary.get("history", {}).get("loss", []))
    where = job.output_dir if storage.is_object_store(job.output_dir) else folders.output_dir
    kept = checkpointing.has_backup(folders.restore_dir)
    if done < job.epochs:
        if kept:
            return None
        raise ValueError(
            f"The run in {where} is complete ({done} epochs) and its backup was deleted when it finished, so it "
            f"cannot train on to {job.epochs} epochs: train into a new folder (keep the backup with "
            f"keep_backup=True, --keep-backup, to train a run on later). Received: epochs={job.epochs!r}"
        )
    more = ", or ask for more epochs to train this one on" if kept else ""
    say(
        f"The run in {where} is complete ({done} epochs; its {SUMMARY_FILE} says so): nothing to train. "
        f"Train into a new folder for a new run{more}."
    )
    return TrainingResult(**{**summary, "is_chief": folders.chief})


def _announce(job, say):
    # First, before TensorFlow builds anything: on two cores the data, the
    # model and the first step's compilation take minutes of silence.
    heads = "three heads" if job.aux_heads else "main head only"
    data = os.fspath(job.data) if isinstance(job.data, os.PathLike) else job.data
    say(
        f"Training GoogLeNet (variant {job.variant!r}, {job.image_size}x{job.image_size} px, {heads}) on {data!r} "
        f"for {job.epochs} epoch(s) into {job.output_dir}"
    )


def _make_data(job, global_batch_size):
    """The training stream and validation datasets: batches of the global size, one target per head."""

    def stream(step):  # the batches from global step `step` on (`stream.training_stream`)
        dataset, info = pipeline.make_dataset(
            job.data, split=job.split, image_size=job.image_size, batch_size=global_batch_size, training=True,
            variant=job.variant, seed=job.seed, data_dir=job.data_dir, manual_dir=job.manual_dir, repeat=True,
            crop_area_range=(job.min_crop_area, augment.CROP_AREA_RANGE[1]), start=step * global_batch_size,
        )
        return cluster.shard_by_data(_targets(dataset, job.aux_heads)), info

    train_data, info = stream(0)
    steps_per_epoch = job.steps_per_epoch or _steps_per_pass(info, job.split, global_batch_size)
    validation_data = validation_steps = None
    if job.validation_split is not None:
        validation_data, _ = pipeline.make_dataset(
            job.data, split=job.validation_split, image_size=job.image_size, batch_size=global_batch_size,
            training=False, variant=job.variant, data_dir=job.data_dir, manual_dir=job.manual_dir,
        )
        # An image folder's dataset has no known length (`ignore_errors`):
        # counted, the validation pass ends without Keras' "Your input ran
        # out of data" warning. The last batch may be partial.
        examples = (info.num_examples or {}).get(job.validation_split)
        validation_steps = -(-examples // global_batch_size) if examples else None
        validation_data = cluster.shard_by_data(_targets(validation_data, job.aux_heads))
    return _Data(
        lambda step: stream(step)[0], train_data, validation_data, validation_steps, info, steps_per_epoch, global_batch_size
    )


def _build_model(job, strategy, data):
    """The compiled three-head model, its variables placed by the strategy."""
    keras.utils.set_random_seed(job.seed)
    with strategy.scope():
        model = GoogLeNet(
            input_shape=(job.image_size, job.image_size, 3), classes=data.info.num_classes, aux_heads=job.aux_heads,
            variant=job.variant,
        )
        optimizer = make_optimizer(
            learning_rate_schedule(job.schedule, job.learning_rate, data.steps_per_epoch, job.epochs, job.warmup_epochs),
            weight_decay=job.weight_decay, use_ema=job.use_ema, ema_momentum=job.ema_momentum,
        )
        compile_googlenet(model, optimizer=optimizer, label_smoothing=job.label_smoothing)
        build_from_element_spec(model, data.train)  # or `fit` traces its first step twice
        if cluster.is_multi_worker(strategy):
            cluster.work_around_keras_multi_worker_bugs(model)
    return model


def _fit(model, job, data, folders, say, remote):
    """`model.fit` from the last backup, if any, with the built-in callbacks, the upload to ``remote`` (mirror, lease), then the user's; returns the history.

    The upload comes right after the built-in callbacks, which write the
    epoch's files: a user's callback that stops at an epoch end (or sleeps
    there, as the kill tests' holds do) finds the epoch's upload started.
    A run resumed inside an epoch fits twice: the rest of that epoch, then
    the epochs after it.
    """
    backup = checkpointing.EpochBackup(folders.backup_dir, folders.restore_dir)
    cluster.agree_on_resume_point(model.distribute_strategy, backup)
    if backup.resume_epoch or backup.resume_step:
        say(f"Resuming {_resume_point(backup, data.steps_per_epoch)} from the backup in {folders.restore_dir}")
    callbacks = _epoch_end_callbacks(job, data, folders, backup)
    upload = remote_output.PushAtEpochEnd(*remote) if remote else None
    if upload:
        callbacks.append(upload)
    say(f"{data.steps_per_epoch} steps per epoch; the first one compiles the model and takes longest.")
    verbose = _fit_verbosity(job.verbose)
    shown = [progress.EpochLine(job.epochs)] if verbose else []  # within 120 columns; every metric is in history.csv
    push = upload.push if upload else None

    def fit(epoch, step, epochs, ending=()):
        stops = step_backups.StepBackups(backup, data.steps_per_epoch, job.backup_every, step, push)
        return model.fit(
            data.stream(epoch * data.steps_per_epoch + step) if epoch or step else data.train,
            epochs=epochs,
            initial_epoch=epoch,
            steps_per_epoch=data.steps_per_epoch - step,
            validation_data=data.validation,
            validation_steps=data.validation_steps,
            callbacks=callbacks + list(job.callbacks) + shown + [stops, *ending],
            shuffle=False,  # the pipeline shuffles; Keras warns it cannot
            verbose=verbose,
        ).history

    with preemption.deferred(), _one_line_fit_errors(job):
        epoch, history = backup.resume_epoch, {}
        if backup.resume_step:  # the rest of the interrupted epoch; on the raw weights if more epochs follow
            with _no_final_average(model.optimizer) as keep_raw_weights:
                history = fit(epoch, backup.resume_step, epoch + 1, [keep_raw_weights] if epoch + 1 < job.epochs else [])
            epoch += 1
        if epoch < job.epochs or not history:
            history = _joined(history, fit(epoch, 0, job.epochs))
    return history


def _epoch_end_callbacks(job, data, folders, backup):
    """The built-in callbacks, after the backup's history is trimmed to it."""
    # Keras prefixes metrics with the output name only for several outputs.
    monitor = ("val_" if data.validation is not None else "") + ("main_top1" if job.aux_heads else "top1")
    # Every task decides which checkpoints to save from the chief's history
    # (in the shared output_dir), so that all of them save alike.
    history_csv = folders.output_dir / CSV_LOG
    if folders.chief:
        checkpointing.trim_history(history_csv, backup.resume_epoch)
    _, logged = checkpointing.read_history(history_csv, backup.resume_epoch)
    interrupted = checkpointing.InterruptedEpochEnd(
        backup, logged, (folders.write_dir / BEST_CHECKPOINT, folders.write_dir / LAST_CHECKPOINT),
        folders.write_dir / CSV_LOG, monitor, use_ema=job.use_ema,
    )
    best_so_far = None
    if (folders.output_dir / BEST_CHECKPOINT).exists() or interrupted.is_best:
        best_so_far = _best_logged(logged + ([interrupted.logs] if interrupted.logs else []), monitor)
    return make_callbacks(
        folders.write_dir, backup, monitor=monitor, use_ema=job.use_ema, best_so_far=best_so_far,
        interrupted=interrupted,
    )


def _resume_point(backup, steps_per_epoch):
    if not backup.resume_step:
        return f"after epoch {backup.resume_epoch}"
    return f"in epoch {backup.resume_epoch + 1} after its step {backup.resume_step} of {steps_per_epoch}"


def _joined(first, second):
    return {name: first.get(name, []) + second.get(name, []) for name in {**first, **second}}


@contextlib.contextmanager
def _no_final_average(optimizer):
    """Yields a callback that keeps ``fit`` from ending on the averaged weights, for the first of a resumed epoch's two fits.

    With EMA, Keras puts the average in the model at the end of every
    ``fit`` (`finalize_variable_values`), which the second fit would then
    train on. Turned off only after the last epoch end, so that the
    training step (traced in the first step) keeps its average updates.
    """

    class KeepRawWeights(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            optimizer.use_ema = False

    use_ema = optimizer.use_ema
    try:
        yield KeepRawWeights()
    finally:
        optimizer.use_ema = use_ema


@contextlib.contextmanager
def _one_line_fit_errors(job):
    """A peer's death and a NaN loss as one-line errors."""
    try:
        yield
    except tf.errors.UnavailableError as error:  # a peer's death: TensorFlow's first line names only an op
        lost = cluster.peer_lost(error)
        if lost is None:
            raise
        raise lost from error
    except RuntimeError as error:
        if NAN_MESSAGE not in str(error):
            raise
        raise ValueError(
            f"Training stopped: the loss became NaN or infinite ({str(error).splitlines()[0]}); the backup "
            f"of the last good epoch is kept. Lower the learning rate. Received: learning_rate={job.learning_rate!r}"
        ) from None


def _save_and_evaluate(model, job, data, folders):
    """Writes the last checkpoint, labels and curves; returns the best checkpoint's scores."""
    write_dir = folders.write_dir
    # The last checkpoint is the final model: with EMA, `fit` has already
    # put the averaged weights in place (`finalize_variable_values`).
    checkpointing.write_atomically(write_dir / LAST_CHECKPOINT, model.save, disk.variables_size(model, model.optimizer))
    checkpointing.write_atomically(
        write_dir / model_info.LABELS_FILE, lambda path: model_info.write_labels(path, data.info.class_names)
    )
    if folders.chief:
        curves.plot_training_curves(write_dir / CSV_LOG, write_dir / CURVES_PNG)
    if job.validation_split is None:
        return {}
    # The best checkpoint is the one a user ships, so that is what is reported.
    best = write_dir / BEST_CHECKPOINT
    return evaluation.evaluate(
        str(best) if best.exists() else model, job.data, split=job.validation_split, crops=1,
        batch_size=data.global_batch_size, data_dir=job.data_dir, manual_dir=job.manual_dir,
    )


def _logged_history(csv_path):
    """``{metric: [value per epoch]}`` as `History.history` has it, from a CSVLogger file."""
    fields, rows = checkpointing.read_history(csv_path)
    # CSVLogger adds "val_" columns of "NA" to a run without validation; its History has none.
    logged = [name for name in fields if name != "epoch" and any(row[name] != "NA" for row in rows)]
    return {name: [checkpointing.logged_number(row[name]) for row in rows] for name in logged}


def _best_logged(rows, monitor):
    # The best checkpoint's score, so that a resumed run does not replace
    # best.keras by a worse model (ModelCheckpoint forgets it on restart).
    values = [checkpointing.logged_number(row.get(monitor)) for row in rows]
    return max((value for value in values if math.isfinite(value)), default=None)


def _fit_verbosity(verbose):
    # Keras' own "auto" is always 1: a progress bar, which fills a log file
    # with carriage returns. One line per epoch suits logs.
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return verbose


def _flushing(print_fn):
    # print's output waits in a buffer when stdout is a pipe or a file
    # (`train ... | tee log`): flush each line so it shows at once.
    return functools.partial(print, flush=True) if print_fn is print else print_fn


def learning_rate_schedule(schedule, learning_rate, steps_per_epoch, epochs=None, warmup_epochs=1):
    """The learning rate as a function of the optimizer's step.

    Step-based, so that a resumed run (whose optimizer ``iterations`` are
    restored from the backup) continues the schedule where it stopped.

    - ``"paper"``: ``learning_rate * 0.96 ** (epoch // 8)`` (Section 6), a
      staircase `ExponentialDecay` over ``8 * steps_per_epoch`` steps.
    - ``"cosine"``: a linear warmup from 0 over ``warmup_epochs``, then a
      cosine decay to 0 at the end of ``epochs``.
    - ``"constant"``: ``learning_rate``.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"`schedule` must be one of {SCHEDULES}. Received: schedule={schedule!r}")
    if schedule == "constant":
        return learning_rate
    if schedule == "paper":
        return keras.optimizers.schedules.ExponentialDecay(
            learning_rate, decay_steps=PAPER_EPOCHS_PER_DECAY * steps_per_epoch, decay_rate=PAPER_DECAY_RATE,
            staircase=True,
        )
    if epochs is None:
        raise ValueError(f"The cosine schedule needs the number of epochs. Received: epochs={epochs!r}")
    warmup_steps = warmup_epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, epochs * steps_per_epoch - warmup_steps), warmup_target=learning_rate,
        warmup_steps=warmup_steps,
    )


def make_optimizer(learning_rate, weight_decay=WEIGHT_DECAY, use_ema=False, ema_momentum=0.99):
    """SGD with momentum 0.9 (Section 6), optional weight decay and EMA."""
    optimizer = keras.optimizers.SGD(
        learning_rate=learning_rate, momentum=MOMENTUM, weight_decay=weight_decay or None,
        use_ema=use_ema, ema_momentum=ema_momentum,
    )
    if weight_decay:
        optimizer.exclude_from_weight_decay(var_names=list(NO_WEIGHT_DECAY))
    return optimizer


def make_callbacks(output_dir, backup_dir, monitor="val_main_top1", use_ema=False, best_so_far=None, interrupted=None):
    """The training callbacks, in the order they must run at each epoch end.

    The backup (`checkpointing.EpochBackup`) comes first so that it backs up
    the raw weights and optimizer state; `SwapEMAWeights` then puts the
    averaged weights in the model for the checkpoints after it (Keras'
    documented order). Every file is written atomically. The backup also
    holds the epoch's logs: a run killed after it, before the checkpoints
    and the history row, finishes them when the next run starts
    (``interrupted``), so that no epoch goes missing from the history.

    Args:
        output_dir: the folder of the checkpoints and logs.
        backup_dir: the backup folder, or an `EpochBackup` already made for it.
        monitor: the logged metric that picks the best checkpoint (higher is better).
        use_ema: whether the optimizer keeps an average of the weights.
        best_so_far: the monitored value of the best checkpoint already saved
            (on resuming), which a new best must beat.
        interrupted: a `checkpointing.InterruptedEpochEnd` to run right
            after the backup restores the weights, or None.
    """
    output_dir = pathlib.Path(output_dir)
    backup = backup_dir if isinstance(backup_dir, checkpointing.EpochBackup) else checkpointing.EpochBackup(backup_dir)
    callbacks = [backup] + ([interrupted] if interrupted is not None else []) + [
        # raise_error: stop at once, before the callbacks below save a NaN
        # model or the backup above is overwritten with NaN weights.
        keras.callbacks.TerminateOnNaN(raise_error=True),
    ]
    if use_ema:
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    callbacks += [
        checkpointing.AtomicModelCheckpoint(
            str(output_dir / BEST_CHECKPOINT), monitor=monitor, mode="max", save_best_only=True,
            initial_value_threshold=best_so_far,
        ),
        checkpointing.AtomicModelCheckpoint(str(output_dir / LAST_CHECKPOINT)),
        # append: a resumed run continues the same history.
        keras.callbacks.CSVLogger(str(output_dir / CSV_LOG), append=True),
        keras.callbacks.TensorBoard(str(output_dir / TENSORBOARD_DIR)),
    ]
    return callbacks


def _steps_per_pass(info, split, global_batch_size):
    examples = (info.num_examples or {}).get(split)
    if not examples:
        raise ValueError(
            f"The number of examples of {info.name!r} is unknown; pass steps_per_epoch. Received: steps_per_epoch=None"
        )
    return max(1, examples // global_batch_size)


def _targets(dataset, aux_heads):
    # A model without aux heads has one output: Keras wants its target alone,
    # not a dict of one.
    if dataset is None or aux_heads:
        return dataset
    return dataset.map(lambda images, targets: (images, targets["main"]))


def _report(result, info, strategy, validation_split, print_fn):
    print_fn(
        f"Trained on {info.name!r} with {cluster.strategy_name(strategy)} ({result.replicas} replica(s), "
        f"global batch {result.global_batch_size})."
    )
    if result.evaluation:
        print_fn(
            f"Evaluation of the best checkpoint on {validation_split!r} ({result.evaluation['examples']} images, "
            f"{info.num_classes} classes): top-1 {result.evaluation['top1']:.4f}, top-5 {result.evaluation['top5']:.4f}"
        )
    print_fn(f"Best checkpoint: {result.best_checkpoint}")
    print_fn(f"Last checkpoint: {result.last_checkpoint}")
    print_fn(f"Training curves: {result.curves}")
    print_fn(f"CSV history:     {result.csv_log}")
    print_fn(f"TensorBoard:     tensorboard --logdir {result.tensorboard_dir}")
