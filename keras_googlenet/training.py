"""Training a GoogLeNet with `model.fit`: strategy, optimizer, schedule, callbacks.

`train` is the whole job: it picks a distribution strategy, reads the data
with `pipeline.make_dataset`, builds and compiles the three-head model
(`compile_googlenet`, loss weights 1.0 / 0.3 / 0.3), fits it with checkpoints,
backups, logs and curves, then evaluates it. The pieces it is made of
(`make_strategy`, `learning_rate_schedule`, `make_optimizer`,
`make_callbacks`) are public so that examples and tests can reuse them.
"""

import dataclasses
import json
import os
import pathlib
import socket
import tempfile

import keras
import tensorflow as tf

from keras_googlenet import architecture, augment, curves, evaluation, pipeline, predict
from keras_googlenet.model import GoogLeNet
from keras_googlenet.task import compile_googlenet

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")
SCHEDULES = ("paper", "cosine", "constant")
MIXED_PRECISION_POLICIES = (None, "mixed_float16", "mixed_bfloat16")

# Section 6: "asynchronous stochastic gradient descent with 0.9 momentum [17],
# fixed learning rate schedule (decreasing the learning rate by 4% every 8
# epochs)". The Caffe solver (bvlc_googlenet/quick_solver.prototxt) adds
# weight decay 0.0002, and no decay on biases (decay_mult: 0).
MOMENTUM = 0.9
PAPER_DECAY_RATE = 0.96
PAPER_EPOCHS_PER_DECAY = 8
WEIGHT_DECAY = 2e-4
NO_WEIGHT_DECAY = ("bias", "gamma", "beta")

# The defaults train the README's main job: the "bn" variant at 96 px on the
# built-in digits, 4 epochs on two CPU cores. Batch norm lets SGD converge in
# that time; the paper variant (no batch norm) needs far longer.
DEFAULT_DATA = "digits"
DEFAULT_VARIANT = "bn"
DEFAULT_IMAGE_SIZE = 96
DEFAULT_EPOCHS = 4
DEFAULT_BATCH_SIZE = 32
DEFAULT_LEARNING_RATE = 0.01
# The digits are 8x8: the paper's smallest crop (8% of the area) keeps 2x2
# pixels of them, no digit. 0.08 is right for natural images (ImageNet).
DEFAULT_MIN_CROP_AREA = 0.5
DEFAULT_OUTPUT_DIR = "runs/googlenet"

BEST_CHECKPOINT = "best.keras"
LAST_CHECKPOINT = "last.keras"
CSV_LOG = "history.csv"
CURVES_PNG = "curves.png"
TENSORBOARD_DIR = "tensorboard"
BACKUP_DIR = "backup"
SUMMARY_FILE = "summary.json"
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
    output_dir=DEFAULT_OUTPUT_DIR,
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
    callbacks=(),
    verbose="auto",
    print_fn=print,
):
    """Trains a three-head GoogLeNet and evaluates it.

    Run again with the same arguments after an interruption (even SIGKILL),
    training resumes at the first unfinished epoch with the weights and
    optimizer state backed up at the end of the last finished one.

    Under `MultiWorkerMirroredStrategy` every worker runs this function;
    only the chief writes to ``output_dir`` (the others write their
    checkpoints and logs to a temporary folder, as the Keras multi-worker
    guide asks, and their backups to ``output_dir/backup/worker_<i>``).

    Args:
        data: ``"digits"`` (the built-in offline default), an image folder or
            a tfds name; see `pipeline.make_dataset`.
        output_dir: the folder for checkpoints, logs, curves and backups.
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
            `make_strategy`.
        devices: split the CPU into this many logical devices (to test
            distribution on one machine); must come before TF starts.
        seed: the seed of the weights, the data order and the augmentation.
        data_dir: where tfds keeps its datasets.
        manual_dir: the hand-downloaded archives of a tfds dataset (ImageNet).
        callbacks: more Keras callbacks, run after the built-in ones.
        verbose: passed to `model.fit`.
        print_fn: where the final report goes.

    Returns:
        A `TrainingResult`.
    """
    _check_arguments(
        epochs=epochs, batch_size=batch_size, steps_per_epoch=steps_per_epoch, learning_rate=learning_rate,
        schedule=schedule, warmup_epochs=warmup_epochs, weight_decay=weight_decay, ema_momentum=ema_momentum,
        mixed_precision=mixed_precision, min_crop_area=min_crop_area, variant=variant, image_size=image_size,
        aux_heads=aux_heads,
    )
    strategy = make_strategy(strategy, devices)
    replicas = strategy.num_replicas_in_sync
    global_batch_size = batch_size * replicas
    chief = is_chief(strategy)
    output_dir = pathlib.Path(output_dir)
    write_dir = output_dir if chief else pathlib.Path(tempfile.mkdtemp(prefix="keras_googlenet_worker_"))
    write_dir.mkdir(parents=True, exist_ok=True)

    train_data, info = pipeline.make_dataset(
        data, split=split, image_size=image_size, batch_size=global_batch_size, training=True, variant=variant,
        seed=seed, data_dir=data_dir, manual_dir=manual_dir, repeat=True,
        crop_area_range=(min_crop_area, augment.CROP_AREA_RANGE[1]),
    )
    if steps_per_epoch is None:
        steps_per_epoch = _steps_per_pass(info, split, global_batch_size)
    validation_data = None
    if validation_split is not None:
        validation_data, _ = pipeline.make_dataset(
            data, split=validation_split, image_size=image_size, batch_size=global_batch_size, training=False,
            variant=variant, data_dir=data_dir, manual_dir=manual_dir,
        )
    train_data, validation_data = (_shard_by_data(_targets(d, aux_heads)) for d in (train_data, validation_data))

    previous_policy = keras.mixed_precision.global_policy()
    if mixed_precision:
        keras.mixed_precision.set_global_policy(mixed_precision)
    try:
        keras.utils.set_random_seed(seed)
        with strategy.scope():
            model = GoogLeNet(
                input_shape=(image_size, image_size, 3), classes=info.num_classes, aux_heads=aux_heads, variant=variant
            )
            optimizer = make_optimizer(
                learning_rate_schedule(schedule, learning_rate, steps_per_epoch, epochs, warmup_epochs),
                weight_decay=weight_decay, use_ema=use_ema, ema_momentum=ema_momentum,
            )
            compile_googlenet(model, optimizer=optimizer, label_smoothing=label_smoothing)
            if _is_multi_worker(strategy):
                _work_around_keras_multi_worker_bugs(model, train_data)

        backup_dir = output_dir / BACKUP_DIR
        if _is_multi_worker(strategy):
            # Each worker backs up its own state: Keras 3's BackupAndRestore
            # has every worker write the same file otherwise.
            backup_dir = backup_dir / f"worker_{strategy.cluster_resolver.task_id}"
        resumed_from = _backed_up_epoch(backup_dir)
        if resumed_from:
            print_fn(f"Resuming after epoch {resumed_from} from the backup in {backup_dir}")
        # Keras prefixes metrics with the output name only for several outputs.
        monitor = ("val_" if validation_data is not None else "") + ("main_top1" if aux_heads else "top1")
        fit_callbacks = make_callbacks(write_dir, backup_dir, monitor=monitor, use_ema=use_ema) + list(callbacks)
        try:
            history = model.fit(
                train_data,
                epochs=epochs,
                steps_per_epoch=steps_per_epoch,
                validation_data=validation_data,
                callbacks=fit_callbacks,
                shuffle=False,  # the pipeline shuffles; Keras warns it cannot
                verbose=verbose,
            )
        except RuntimeError as error:
            if NAN_MESSAGE not in str(error):
                raise
            raise ValueError(
                f"Training stopped: the loss became NaN or infinite ({str(error).splitlines()[0]}); the backup "
                f"of the last good epoch is kept. Lower the learning rate. Received: learning_rate={learning_rate!r}"
            ) from None

        # The last checkpoint is the final model: with EMA, `fit` has already
        # put the averaged weights in place (`finalize_variable_values`).
        model.save(write_dir / LAST_CHECKPOINT)
        predict.write_labels(write_dir / predict.LABELS_FILE, info.class_names)
        if chief:
            curves.plot_training_curves(write_dir / CSV_LOG, write_dir / CURVES_PNG)
        scores = {}
        if validation_split is not None:
            # The best checkpoint is the one a user ships, so that is what is reported.
            best = write_dir / BEST_CHECKPOINT
            scores = evaluation.evaluate(
                str(best) if best.exists() else model, data, split=validation_split, crops=1,
                batch_size=global_batch_size,
                data_dir=data_dir, manual_dir=manual_dir,
            )
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)

    result = TrainingResult(
        output_dir=str(write_dir),
        best_checkpoint=str(write_dir / BEST_CHECKPOINT),
        last_checkpoint=str(write_dir / LAST_CHECKPOINT),
        curves=str(write_dir / CURVES_PNG),
        csv_log=str(write_dir / CSV_LOG),
        tensorboard_dir=str(write_dir / TENSORBOARD_DIR),
        history=history.history,
        evaluation=scores,
        replicas=replicas,
        global_batch_size=global_batch_size,
        is_chief=chief,
    )
    if chief:
        (write_dir / SUMMARY_FILE).write_text(json.dumps(dataclasses.asdict(result), indent=2, default=float))
        _report(result, info, strategy, validation_split, print_fn)
    return result


def make_strategy(strategy="auto", devices=None):
    """The distribution strategy to train under.

    ``"auto"`` picks `MultiWorkerMirroredStrategy` when ``TF_CONFIG`` names
    several workers, else `MirroredStrategy` over the visible GPUs (or over
    the logical CPUs of ``devices``), else the default strategy (one device).

    Args:
        strategy: ``"auto"``, ``"default"``, ``"mirrored"``,
            ``"multi_worker"`` or a `tf.distribute.Strategy`, returned as is.
        devices: an int >= 1: split the CPU into that many logical devices
            for ``"mirrored"`` to replicate over. TensorFlow fixes its devices
            when it first runs an op, so this must come first in the process.

    Returns:
        A `tf.distribute.Strategy`.
    """
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if strategy not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES} or a tf.distribute.Strategy. Received: strategy={strategy!r}")
    if devices is not None:
        configure_cpu_devices(devices)
    if strategy == "auto":
        if _tf_config_workers() > 1:
            strategy = "multi_worker"
        elif tf.config.list_physical_devices("GPU") or len(tf.config.list_logical_devices("CPU")) > 1:
            strategy = "mirrored"
        else:
            strategy = "default"
    if strategy == "multi_worker":
        if _tf_config_workers() < 1:
            raise ValueError(
                "strategy='multi_worker' needs TF_CONFIG with a cluster of workers. "
                f"Received: TF_CONFIG={os.environ.get('TF_CONFIG')!r}"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if strategy == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy([d.name for d in gpus or tf.config.list_logical_devices("CPU")])
    return tf.distribute.get_strategy()


def configure_cpu_devices(devices):
    """Splits the first CPU into ``devices`` logical devices.

    `tf.config.set_logical_device_configuration` only works before
    TensorFlow initialises its devices (the first op, model or strategy of
    the process), so call this first, in a fresh process.
    """
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ValueError(f"`devices` must be an int >= 1. Received: devices={devices!r}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == devices:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
    except RuntimeError:
        raise ValueError(
            "`devices` must be set before TensorFlow initialises its devices: pass it first thing in a fresh "
            f"process (this one already has {len(tf.config.list_logical_devices('CPU'))} CPU). Received: devices={devices!r}"
        ) from None


def local_worker_configs(workers):
    """TF_CONFIG values for ``workers`` processes on this machine, one per worker.

    Each names the whole cluster (free ports on 127.0.0.1, picked by the OS)
    and its own index; worker 0 is the chief. For tests and local trials of
    `MultiWorkerMirroredStrategy`.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"`workers` must be an int >= 1. Received: workers={workers!r}")
    sockets = [socket.socket() for _ in range(workers)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        cluster = {"worker": [f"127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]}
    finally:
        for sock in sockets:
            sock.close()
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}) for index in range(workers)]


def is_chief(strategy):
    """Whether this process writes the checkpoints and logs (always, unless multi-worker)."""
    if not _is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    # With no "chief" task in the cluster, worker 0 is the chief (Keras
    # multi-worker guide).
    return resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
    )


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


def make_callbacks(output_dir, backup_dir, monitor="val_main_top1", use_ema=False):
    """The training callbacks, in the order they must run at each epoch end.

    `BackupAndRestore` comes first so that it backs up the raw weights and
    optimizer state; `SwapEMAWeights` then puts the averaged weights in the
    model for the checkpoints after it (Keras' documented order).
    """
    output_dir = pathlib.Path(output_dir)
    callbacks = [
        # Not deleted at the end: a finished run started again then does nothing.
        keras.callbacks.BackupAndRestore(str(backup_dir), delete_checkpoint=False),
        # raise_error: stop at once, before the callbacks below save a NaN
        # model or the backup above is overwritten with NaN weights.
        keras.callbacks.TerminateOnNaN(raise_error=True),
    ]
    if use_ema:
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    callbacks += [
        keras.callbacks.ModelCheckpoint(str(output_dir / BEST_CHECKPOINT), monitor=monitor, mode="max", save_best_only=True),
        keras.callbacks.ModelCheckpoint(str(output_dir / LAST_CHECKPOINT)),
        # append: a resumed run continues the same history.
        keras.callbacks.CSVLogger(str(output_dir / CSV_LOG), append=True),
        keras.callbacks.TensorBoard(str(output_dir / TENSORBOARD_DIR)),
    ]
    return callbacks


def _work_around_keras_multi_worker_bugs(model, dataset):
    """Lets Keras 3's `fit` and `evaluate` run under MultiWorkerMirroredStrategy.

    Two bugs of Keras 3 (up to 3.15 at least) with that strategy only
    (keras-team/keras#20585, tensorflow/tensorflow#72388):

    - `fit` builds the model, loss, metric and optimizer state from the first
      batch reduced with `strategy.reduce`, which fails on a nested batch
      ("Attempt to convert a value (PerReplica...)"). We build them from the
      dataset's element spec instead, and skip that step.
    - Each step's logs are reduced with ``strategy.reduce("MEAN", v, axis=0)``,
      which fails on scalars ("Invalid reduction dimension 0"). We return
      each log as a vector of one value, whose mean over axis 0 is the value.
    """
    batch = tf.nest.map_structure(lambda spec: keras.KerasTensor(spec.shape, spec.dtype.name), dataset.element_spec)
    model._symbolic_build(data_batch=batch)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None

    def with_vector_logs(step):
        return lambda data: {name: tf.reshape(value, [1]) for name, value in step(data).items()}

    model.train_step = with_vector_logs(model.train_step)
    model.test_step = with_vector_logs(model.test_step)


def _backed_up_epoch(backup_dir):
    """The number of epochs finished according to a backup, 0 when there is none."""
    metadata = pathlib.Path(backup_dir) / "training_metadata.json"
    return json.loads(metadata.read_text())["epoch"] if metadata.is_file() else 0


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


def _shard_by_data(dataset):
    # In-memory and generated sources have no files to shard by; say so, or
    # tf.data warns and falls back to it on every worker.
    if dataset is None:
        return None
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _tf_config_workers():
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    cluster = config.get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def _is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def _check_arguments(**arguments):
    positive_ints = ("epochs", "batch_size", "image_size")
    for name in positive_ints:
        value = arguments[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be an int >= 1. Received: {name}={value!r}")
    steps = arguments["steps_per_epoch"]
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"`steps_per_epoch` must be an int >= 1 or None. Received: steps_per_epoch={steps!r}")
    for name in ("learning_rate", "weight_decay", "warmup_epochs"):
        value = arguments[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (name == "learning_rate" and not value):
            allowed = "> 0" if name == "learning_rate" else ">= 0"
            raise ValueError(f"`{name}` must be a number {allowed}. Received: {name}={value!r}")
    if arguments["schedule"] not in SCHEDULES:
        raise ValueError(f"`schedule` must be one of {SCHEDULES}. Received: schedule={arguments['schedule']!r}")
    if not 0 <= arguments["ema_momentum"] < 1:
        raise ValueError(f"`ema_momentum` must be in [0, 1). Received: ema_momentum={arguments['ema_momentum']!r}")
    if arguments["mixed_precision"] not in MIXED_PRECISION_POLICIES:
        raise ValueError(
            f"`mixed_precision` must be one of {MIXED_PRECISION_POLICIES}. "
            f"Received: mixed_precision={arguments['mixed_precision']!r}"
        )
    if not 0 < arguments["min_crop_area"] <= 1:
        raise ValueError(f"`min_crop_area` must be in (0, 1]. Received: min_crop_area={arguments['min_crop_area']!r}")
    if arguments["variant"] not in architecture.VARIANTS:
        raise ValueError(
            f"`variant` must be one of {sorted(architecture.VARIANTS)}. Received: variant={arguments['variant']!r}"
        )
    # The builder checks this too, but only after the data is read.
    from keras_googlenet.model import minimum_input_size

    minimum = minimum_input_size(arguments["variant"], arguments["aux_heads"])
    if arguments["image_size"] < minimum:
        raise ValueError(
            f"`image_size` must be at least {minimum} for variant {arguments['variant']!r}"
            f"{' with aux heads' if arguments['aux_heads'] else ''}. Received: image_size={arguments['image_size']!r}"
        )


def _strategy_name(strategy):
    # The classes' own names differ from their public ones
    # (CollectiveAllReduceStrategy, _DefaultDistributionStrategy).
    for public, name in (
        (tf.distribute.MultiWorkerMirroredStrategy, "MultiWorkerMirroredStrategy"),
        (tf.distribute.MirroredStrategy, "MirroredStrategy"),
    ):
        if isinstance(strategy, public):
            return name
    return "the default strategy" if strategy is tf.distribute.get_strategy() else type(strategy).__name__


def _report(result, info, strategy, validation_split, print_fn):
    print_fn(
        f"Trained on {info.name!r} with {_strategy_name(strategy)} ({result.replicas} replica(s), "
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
