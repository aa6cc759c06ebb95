"""Training on a Ray cluster: `training.train`, unchanged, on each Ray Train worker.

`train_on_ray` starts (or joins) Ray, runs ``training.train(**train_kwargs)``
as the ``train_loop_per_worker`` of Ray Train's `DataParallelTrainer`, and
returns Ray's `Result`. Each worker gets its ``TF_CONFIG`` (`ray_backend`, as
Ray's `TensorflowTrainer` would give it, without importing TensorFlow in the
driver), so
`cluster.make_strategy` picks `MultiWorkerMirroredStrategy` there, and the
chief (rank 0) writes the checkpoints and logs as in any multi-worker run.

Ray is an optional extra (``pip install "keras-googlenet[ray]"``): it is
imported here only, inside the functions, never by ``import keras_googlenet``.
"""

import contextlib
import dataclasses
import io
import json
import logging
import os
import pathlib
import sys
import tempfile
import threading

from keras_googlenet import defaults, storage
from keras_googlenet.defaults import DEFAULT_OUTPUT_DIR, DEFAULT_RAY_MAX_FAILURES
from keras_googlenet.training import preemption

INSTALL_HINT = 'pip install "keras-googlenet[ray]"'
# Ray's storage (its run state and the final report) goes in the output
# folder, which every worker can already reach, instead of ~/ray_results.
RAY_STORAGE_DIR = defaults.RAY_STORAGE_DIR
LOCAL_OBJECT_STORE_BYTES = 100 * 2**20
# Without --debug, on every process of the job: Train V2's print patch
# sends each print through the logging module as well as stdout (every
# line twice in the logs), and TensorFlow logs its C++ start-up lines.
_QUIET_WORKER_ENV = {"RAY_TRAIN_ENABLE_PRINT_PATCH": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}
# Ray's worker_process_setup_hook for the job (`worker_process_setup`): pass it
# in your own ray.init's runtime_env when you start Ray yourself.
WORKER_SETUP_HOOK = "keras_googlenet.training.ray.worker_process_setup"


class RayNotInstalled(ImportError):
    """Ray Train is missing: the message says how to install it."""


class WorkerPreempted(RuntimeError):
    """A worker's `train` stopped by SIGTERM at a step all workers agreed on, after backing it up: Ray restarts the group from there.

    A plain exception, where `preemption.Preempted` is a KeyboardInterrupt:
    Ray Train counts it as a worker failure, to retry within ``max_failures``.
    """

    def __init__(self, epoch, step):
        super().__init__(epoch, step)  # its args, for the pickle that takes it to the driver
        self.epoch, self.step = epoch, step

    def __str__(self):
        where = preemption.Preempted(self.epoch, self.step).where()
        return f"Stopped by SIGTERM {where}, backed up: Ray restarts the workers from there."


def train_on_ray(
    workers,
    *,
    address=None,
    gpus_per_worker=0,
    cpus_per_worker=1,
    max_failures=DEFAULT_RAY_MAX_FAILURES,
    output_dir=DEFAULT_OUTPUT_DIR,
    debug=False,
    **train_kwargs,
):
    """Runs `training.train` on ``workers`` Ray Train workers; returns Ray's `Result`.

    The driver prints the chief's output (its plan, progress and final
    evaluation) once; the other workers train silently. A worker lost
    during training (its process killed, its node gone) makes Ray stop the
    whole group and start a new one, up to ``max_failures`` times; each new
    worker runs `training.train` again with the same arguments, which
    resumes from the backups in ``output_dir`` at the first unfinished epoch
    (or at the step that a SIGTERM or ``backup_every`` backed up).

    Args:
        workers: the number of Ray Train workers (processes), an int >= 1.
        address: the Ray cluster to join (``"auto"``, ``"ray://host:10001"``),
            or ``None``: a new local one (or the one ``RAY_ADDRESS`` names).
        gpus_per_worker: GPUs each worker reserves (0 on CPU).
        cpus_per_worker: CPUs each worker reserves; TensorFlow's thread pools
            in that worker are sized to it.
        max_failures: how many times Ray restarts the group after a worker
            is lost (-1: without end; 0: the first loss fails the run).
        output_dir: the run's folder, made absolute here, or a ``gs://`` or
            ``s3://`` URI. On a cluster of several machines every worker must
            reach it: a bucket, or a shared POSIX file system. Ray's own
            storage (``storage_path``) is its ``ray`` folder.
        debug: show Ray's own logs and every worker's output, prefixed by Ray.
        **train_kwargs: the other arguments of `training.train`, unchanged.

    Returns:
        A `ray.train.Result`: ``.metrics`` holds the chief's summary (the
        fields of `training.TrainingResult`), ``.error`` the failure, if any.
    """
    check_ray_arguments(workers, address, gpus_per_worker, cpus_per_worker, max_failures)
    ray, ray_train, ray_backend = _import_ray()
    if not storage.is_object_store(output_dir):
        output_dir = str(pathlib.Path(output_dir).expanduser().absolute())
    with contextlib.ExitStack() as stack:
        if not debug:
            stack.enter_context(_raylet_errors_kept_out())  # entered first: left after ray.shutdown
        if _init_ray(ray, address, debug):
            stack.callback(ray.shutdown)
        relay = None if debug else stack.enter_context(_Relay())
        trainer = ray_backend.data_parallel_trainer()(
            _worker_loop,
            backend_config=ray_backend.TfConfig(),
            train_loop_config={
                "train_kwargs": {**train_kwargs, "output_dir": output_dir}, "cpus": cpus_per_worker,
                "relay": None if relay is None else relay.queue,
            },
            scaling_config=ray_train.ScalingConfig(
                num_workers=workers, use_gpu=gpus_per_worker > 0,
                resources_per_worker={"CPU": cpus_per_worker, **({"GPU": gpus_per_worker} if gpus_per_worker else {})},
            ),
            run_config=ray_train.RunConfig(
                **_ray_storage(output_dir), failure_config=ray_train.FailureConfig(max_failures=max_failures),
            ),
        )
        try:
            return trainer.fit()
        except getattr(ray_train, "WorkerGroupError", ()) as error:  # Train V2's
            plain = _bad_input(error) or _preempted(error)
            if plain is None:
                raise
            raise plain from None


def _ray_storage(output_dir):
    """RunConfig's ``storage_path`` (and ``storage_filesystem``, for a bucket): the ``ray`` folder of ``output_dir``.

    For a gs:// or s3:// run, Ray writes through our fsspec client, wrapped
    for pyarrow: the same credentials and endpoint variables as the run's
    own files, where pyarrow's own clients read others.
    """
    if not storage.is_object_store(output_dir):
        return {"storage_path": os.path.join(output_dir, RAY_STORAGE_DIR)}
    import pyarrow.fs

    from keras_googlenet.storage import objects

    uri = storage.join(output_dir, RAY_STORAGE_DIR)
    handler = pyarrow.fs.FSSpecHandler(objects.filesystem(uri))
    return {"storage_path": objects.key(uri), "storage_filesystem": pyarrow.fs.PyFileSystem(handler)}


def _worker_loop(config):
    """One Ray Train worker: `training.train`, its output shown by the chief only."""
    # Ray's TF backend set TF_USE_LEGACY_KERAS=1 for Ray's own Keras callback,
    # which needs tf_keras; ours (ray_backend) does not, and a cluster's
    # environment might: we train with Keras 3 and report below.
    os.environ.pop("TF_USE_LEGACY_KERAS", None)
    cpus = max(1, int(config["cpus"]))
    # Ray sets OMP_NUM_THREADS to the worker's CPUs; TensorFlow's own pools
    # ignore it and take every core of the machine, so N workers on one
    # machine would each run as many threads as it has cores.
    os.environ["OMP_NUM_THREADS"] = str(cpus)
    import ray.train
    import tensorflow as tf

    from keras_googlenet.training import run as training

    tf.config.threading.set_intra_op_parallelism_threads(cpus)
    tf.config.threading.set_inter_op_parallelism_threads(cpus)
    chief = ray.train.get_context().get_world_rank() == 0
    kwargs = dict(config["train_kwargs"])
    if not chief:  # the driver shows one copy: the chief's
        kwargs.update(print_fn=lambda *args, **kwargs: None, verbose=0)
    # `train` prints its plan and report with print, and Keras its progress
    # to sys.stdout: both reach the driver through the relay.
    # (A Queue is falsy when empty: compare with None.)
    relay = config["relay"] if chief else None
    with contextlib.nullcontext() if relay is None else contextlib.redirect_stdout(_QueueWriter(relay)):
        try:
            result = training.train(**kwargs)
        except preemption.Preempted as stop:  # every worker, at the same step (`step_backups`)
            stopped = WorkerPreempted(stop.epoch, stop.step)
            if chief:
                print(stopped)
            raise stopped from None
    _report(ray.train, result, chief)


def worker_process_setup():
    """Ray's ``worker_process_setup_hook``: SIGTERM to a worker while it trains backs up the step it is in, then Ray restarts the group.

    Ray Train runs `train` in a thread of the worker's process, and Ray's
    own SIGTERM handler (set in the main thread, after this hook) exits the
    process at once. The hook wraps that handler as it is set: while `fit`
    runs, a SIGTERM only asks for a stop (`preemption.deferring_to`), and
    the workers stop together at the next step where they compare requests.
    Ray's main thread runs its handler only when it next runs Python, which
    can be minutes later: `preemption.request_as_it_arrives` sees the
    signal at once. A private name of Ray's: where a Ray version lacks it,
    Ray's handling stays, and a SIGTERM resumes at the last backup.
    """
    from ray._private import utils

    set_handler = getattr(utils, "set_sigterm_handler", None)
    if set_handler is None or getattr(set_handler, "defers_training", False):
        return

    def deferring(handler):
        set_handler(preemption.deferring_to(handler))

    deferring.defers_training = True
    utils.set_sigterm_handler = deferring
    preemption.request_as_it_arrives()


class _QueueWriter(io.TextIOBase):
    """A stdout that sends each whole line to a `ray.util.queue.Queue`."""

    def __init__(self, queue):
        self.queue, self.pending = queue, ""

    def write(self, text):
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self.queue.put(line + "\n")
        return len(text)

    def flush(self):
        if self.pending:
            self.queue.put(self.pending)
            self.pending = ""


class _Relay:
    """Prints on the driver what the chief writes to its stdout, while `fit` runs.

    Ray's own way, ``log_to_driver``, forwards every process of the job (the
    controller's life cycle, TensorFlow's start-up lines, each worker's
    prints), so it is off, and the chief's lines come through a queue.
    """

    def __init__(self):
        from ray.util.queue import Queue

        self.queue = Queue(actor_options={"num_cpus": 0})
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._print, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        self.thread.join(timeout=30)
        self.queue.shutdown()

    def _print(self):
        from ray.util.queue import Empty

        stopping = False
        while not stopping:
            stopping = self.stop.is_set()  # one more pass after the stop, for the last lines
            try:
                lines = self.queue.get_nowait_batch(self.queue.size())
            except Empty:
                lines = []
            sys.stdout.write("".join(lines))
            sys.stdout.flush()
            self.stop.wait(0.5)


def _report(ray_train, result, chief):
    """Hands the chief's summary to the driver's `Result` (every worker must call report)."""
    summary = json.loads(json.dumps(dataclasses.asdict(result), default=float))
    if not chief:
        ray_train.report(summary)
        return
    # Train V2 keeps the metrics in the Result only with a checkpoint: a
    # small one, the summary alone; the model stays in output_dir.
    with tempfile.TemporaryDirectory(prefix="keras_googlenet_ray_") as folder:
        pathlib.Path(folder, "summary.json").write_text(json.dumps(summary, indent=2))
        ray_train.report(summary, checkpoint=ray_train.Checkpoint.from_directory(folder))


@contextlib.contextmanager
def _raylet_errors_kept_out():
    """Sends the raylet's error messages to the ``ray`` logger (hidden without --debug) instead of stdout.

    Ray's driver prints them whatever ``log_to_driver`` says: a thread
    (``ray._private.worker.listen_error_messages``) hands each to
    ``print_to_stdstream``. When a worker dies that is one ANSI-coloured line
    of about 1,000 characters that guesses at an out-of-memory kill; the
    driver's own line already says what happened. A private name: where a
    Ray version lacks it, nothing changes.
    """
    from ray._private import worker

    original = getattr(worker, "print_to_stdstream", None)

    def to_the_log(data, *args, **kwargs):
        if data.get("pid") != "raylet":
            return original(data, *args, **kwargs)
        for line in data.get("lines", ()):
            logging.getLogger("ray").info("(raylet) %s", line)

    if original is not None:
        worker.print_to_stdstream = to_the_log
    try:
        yield
    finally:
        if original is not None:
            worker.print_to_stdstream = original


def _init_ray(ray, address, debug):
    """Starts or joins Ray, unless it runs already here; returns whether we must shut it down."""
    if ray.is_initialized():
        return False
    settings = {
        "log_to_driver": debug,
        # WARNING would still show Ray's token-authentication notice on every start.
        "logging_level": logging.DEBUG if debug else logging.ERROR,
        "runtime_env": {"worker_process_setup_hook": WORKER_SETUP_HOOK, **({} if debug else {"env_vars": dict(_QUIET_WORKER_ENV)})},
    }
    if address is None and not os.environ.get("RAY_ADDRESS"):
        # A new local cluster. The object store takes 30% of the memory by
        # default, and training passes nothing through it but a few lines and
        # the reports. Without the dashboard (its processes, its log lines),
        # Ray's state API is gone: Train's PlacementGroupCleaner warns about
        # it every second, which only --debug shows; ray.shutdown cleans up.
        settings.update(object_store_memory=LOCAL_OBJECT_STORE_BYTES, include_dashboard=debug)
    ray.init(address=address, **settings)
    return True


def _bad_input(error):
    """The chief's bad-input error (ValueError, OSError), in one line, as `train` raised it; else None."""
    failure = error.worker_failures.get(0)  # rank 0's exception itself: Train V2 unwraps it
    if not isinstance(failure, (ValueError, OSError)):
        return None
    message = str(failure).strip().splitlines()[0]
    try:
        return type(failure)(message)
    except TypeError:  # an exception class with other arguments
        return ValueError(message)


def _preempted(error):
    """`preemption.Preempted` at the step where the chief stopped, when SIGTERM stopped the last attempt (Ray's retries spent); else None."""
    failure = error.worker_failures.get(0)
    if not isinstance(failure, WorkerPreempted):
        return None
    return preemption.Preempted(failure.epoch, failure.step)


def _import_ray():
    try:
        import ray
        import ray.train

        from keras_googlenet.training import ray_backend  # Ray's TensorflowTrainer would import TensorFlow here
    except ImportError as error:
        raise RayNotInstalled(f"Training on Ray needs Ray Train ({error}): {INSTALL_HINT}") from None
    return ray, ray.train, ray_backend


def check_ray_arguments(workers, address=None, gpus_per_worker=0, cpus_per_worker=1, max_failures=DEFAULT_RAY_MAX_FAILURES):
    """Raises a one-line ValueError for a bad value of `train_on_ray`'s own arguments; imports nothing."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"`workers` must be an int >= 1. Received: workers={workers!r}")
    if address is not None and (not isinstance(address, str) or not address):
        raise ValueError(f"`address` must be a Ray address such as 'auto' or 'ray://host:10001'. Received: address={address!r}")
    for name, value in (("gpus_per_worker", gpus_per_worker), ("cpus_per_worker", cpus_per_worker)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (name == "cpus_per_worker" and value < 1):
            minimum = 1 if name == "cpus_per_worker" else 0
            raise ValueError(f"`{name}` must be a number >= {minimum}. Received: {name}={value!r}")
    if isinstance(max_failures, bool) or not isinstance(max_failures, int) or max_failures < -1:
        raise ValueError(f"`max_failures` must be an int >= -1 (-1: no limit). Received: max_failures={max_failures!r}")
