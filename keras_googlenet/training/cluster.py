"""Where a training process stands in its cluster: the strategy, its task and its folders.

`make_strategy` picks the `tf.distribute` strategy (`MultiWorkerMirroredStrategy`
when ``TF_CONFIG`` names a cluster); `is_chief` says which task writes the
run's files, and `task_folders` where each task writes. `local_worker_configs`
makes ``TF_CONFIG`` values for local trials, and
`work_around_keras_multi_worker_bugs` lets Keras 3's `fit` run under that
strategy. The training loop itself is `training.train`'s.
"""

import dataclasses
import json
import os
import pathlib
import shutil
import socket
import tempfile

import tensorflow as tf

from keras_googlenet import storage
from keras_googlenet.defaults import STRATEGIES
from keras_googlenet.training import preemption


@dataclasses.dataclass(frozen=True)
class TaskFolders:
    output_dir: pathlib.Path  # the user's folder, shared by every task of a cluster
    write_dir: pathlib.Path  # where this task writes: output_dir on the chief, its scratch folder elsewhere
    backup_dir: pathlib.Path  # where this task writes its backups
    restore_dir: pathlib.Path  # the backups every task resumes from: the chief's, in output_dir
    chief: bool


def task_folders(output_dir, strategy, backup_name):
    """This task's folders: ``output_dir`` on the chief, a scratch folder of its own elsewhere.

    Every task resumes from the one backup the chief writes in
    ``output_dir/backup_name``: the same file gives every task the same
    epoch and the same weights, with no collective to agree on them (the
    design of tf.keras' BackupAndRestore). A lost task's replacement could
    otherwise resume one epoch apart from its peers, whose all-reduces then
    pair off across epochs and hang. So under MultiWorkerMirroredStrategy
    ``output_dir`` must be a folder every task sees (a shared volume); the
    other tasks still write their backups, to their scratch folder, because
    saving may take part in collectives that need every task.

    The scratch folder is named after ``output_dir`` and the task (type and
    index), and emptied here: a task killed before its clean-up leaves its
    folder to its replacement, not to the temporary directory for ever.
    """
    output_dir = pathlib.Path(output_dir)
    chief = is_chief(strategy)
    write_dir = output_dir if chief else scratch_dir(output_dir, strategy)
    if not chief:
        shutil.rmtree(write_dir, ignore_errors=True)  # what a killed predecessor left
        write_dir.mkdir(parents=True, exist_ok=True)
    restore_dir = output_dir / backup_name
    backup_dir = restore_dir if chief else write_dir / backup_name
    return TaskFolders(output_dir, write_dir, backup_dir, restore_dir, chief)


def scratch_dir(output_dir, strategy):
    """A non-chief task's own folder (the Keras multi-worker guide: the other workers write to temporary folders).

    Named after the task's type and index (a chief and worker 0 are two
    tasks) and the absolute output folder, so that two runs on one host do
    not share it and a restarted task finds its predecessor's.
    """
    resolver = strategy.cluster_resolver
    digest = storage.digest(pathlib.Path(output_dir).resolve())
    name = f"keras_googlenet_{digest}_{resolver.task_type}_{resolver.task_id}"
    return pathlib.Path(tempfile.gettempdir()) / name


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
        with preemption.handler_kept():  # TensorFlow's runtime would take SIGTERM for itself
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


# How TensorFlow's coordination service names the tasks it found dead, one per line after this.
_UNHEALTHY = "The following tasks are unhealthy (stopped sending heartbeats):"


class PeerLost(RuntimeError):
    """Another task of a multi-worker run stopped answering, so this one stops too."""


def peer_lost(error):
    """A one-line `PeerLost` naming the tasks that ``error`` (an UnavailableError) reports dead, or None.

    TensorFlow's message starts with a line naming the collective op; the
    dead tasks follow, each on a line of its own.
    """
    _, marker, after = str(error).partition(_UNHEALTHY)
    if not marker:
        return None
    tasks = []
    for line in after.strip().splitlines():
        if not line.startswith("/job:"):
            break
        tasks.append(line.strip())
    return PeerLost(
        f"Training stopped: {', '.join(tasks) or 'a task'} stopped answering (no heartbeats: killed, preempted or "
        "out of memory), and the other tasks cannot go on without it. Restart them all (a TFJob with "
        "restartPolicy OnFailure does): they resume from the backup of the last finished epoch."
    )


def agree_on_resume_point(strategy, backup):
    """Makes every task resume from the same point: the earliest that any task's backup holds.

    Every task reads the chief's backup, but from a bucket each reads its own
    copy, fetched when it started: a task restarted while the chief was
    still uploading a backup has the one before it (which the chief keeps as
    ``previous.weights.h5``). Tasks a step or an epoch apart would pair
    their all-reduces across steps. A collective (every task calls this at
    the same point) gathers each task's (epoch, step); those ahead step
    back, until all agree. Nothing to do on one machine.
    """
    if not is_multi_worker(strategy):
        return
    for _ in range(3):  # each round, a task ahead steps back to the newest backup at or before the others'
        points = list(zip(gather_from_replicas(strategy, backup.resume_epoch), gather_from_replicas(strategy, backup.resume_step)))
        if min(points) == max(points):
            return
        backup.restore_at_most(min(points))
    raise RuntimeError(f"The tasks found different backups and could not agree on a point to resume from: {points}")


def gather_from_replicas(strategy, value):
    """Every replica's number ``value``, in every task, as ints (a SUM of one-hot vectors: collectives have no MIN or gather).

    A collective: every task must call it at the same point.
    """
    replicas = strategy.num_replicas_in_sync

    def slot():
        index = tf.distribute.get_replica_context().replica_id_in_sync_group
        return tf.one_hot(index, replicas, dtype=tf.float32) * float(value)

    summed = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(slot), axis=None)
    return [int(round(number)) for number in summed.numpy()]


def is_chief(strategy):
    """Whether this process writes the checkpoints and logs (always, unless multi-worker)."""
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    # With no "chief" task in the cluster, worker 0 is the chief (Keras
    # multi-worker guide).
    return resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
    )


def work_around_keras_multi_worker_bugs(model):
    """Lets Keras 3's `fit` and `evaluate` run a model built by `task.build_from_element_spec` under MultiWorkerMirroredStrategy.

    Two bugs of Keras 3 (up to 3.15 at least) with that strategy only
    (keras-team/keras#20585, tensorflow/tensorflow#72388):

    - `fit` builds the model, loss, metric and optimizer state from the first
      batch reduced with `strategy.reduce`, which fails on a nested batch
      ("Attempt to convert a value (PerReplica...)"). A model built from the
      dataset's element spec skips that step (`task.build_from_element_spec`).
    - Each step's logs are reduced with ``strategy.reduce("MEAN", v, axis=0)``,
      which fails on scalars ("Invalid reduction dimension 0"). We return
      each log as a vector of one value, whose mean over axis 0 is the value.
    """

    def with_vector_logs(step):
        return lambda data: {name: tf.reshape(value, [1]) for name, value in step(data).items()}

    model.train_step = with_vector_logs(model.train_step)
    model.test_step = with_vector_logs(model.test_step)


def shard_by_data(dataset):
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


def is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def strategy_name(strategy):
    # The classes' own names differ from their public ones
    # (CollectiveAllReduceStrategy, _DefaultDistributionStrategy).
    for public, name in (
        (tf.distribute.MultiWorkerMirroredStrategy, "MultiWorkerMirroredStrategy"),
        (tf.distribute.MirroredStrategy, "MirroredStrategy"),
    ):
        if isinstance(strategy, public):
            return name
    return "the default strategy" if strategy is tf.distribute.get_strategy() else type(strategy).__name__
