"""Training into a gs:// or s3:// folder: each task works in a local mirror of the run, which the chief pushes at every epoch end.

Keras, h5py and TensorBoard write local files (TensorFlow's own ``gs://`` has
no emulator endpoint and no ``s3://`` at all), so the run's files are
written where they always are, to a local folder, and moved through fsspec
(`storage.mirror`). Every task first pulls the run from the bucket into its
own folder: the chief's backup there is what every task resumes from, with no
shared volume. Only the chief pushes, after the epoch end's other callbacks
(in the background, while the next epoch trains; it waits only if the last
upload has not finished), and once more after ``summary.json``, the run's
last file (waiting for it); and only while it
holds the run's lease (`storage.lease`), so that a second run into the same
URI is refused instead of mixing its files with the first's.
"""

import contextlib
import shutil

import keras

from keras_googlenet import defaults, storage
from keras_googlenet.storage import lease as lease_lib, mirror as mirror_lib
from keras_googlenet.training import checkpointing, cluster, output_lock

NEVER_PUSHED = (output_lock.LOCK_FILE, checkpointing.TEMPORARY_PREFIX, ".download-")
# TensorBoard's event files are appended to only by the run that made them; the lease, and
# Ray's own state (under --ray-workers, Ray's storage_path), stay in the bucket.
NOT_PULLED = ("tensorboard/", lease_lib.LEASE_FILE, defaults.RAY_STORAGE_DIR + "/")


class PushAtEpochEnd(keras.callbacks.Callback):
    """Uploads the run's new files at each epoch end, if the run still holds its lease; put it after every callback that writes them."""

    def __init__(self, mirror, lease):
        super().__init__()
        self.mirror, self.lease = mirror, lease

    def on_epoch_end(self, epoch, logs=None):
        self.push()

    def push(self):
        """Starts the upload of what changed (also after a backup between epoch ends, `step_backups`)."""
        check_lease(self.lease)
        self.mirror.push_in_background()


def check_lease(lease):
    """Raises a one-line RuntimeError when another run has taken the lease over: this one must write no more."""
    if lease is not None and lease.lost:
        raise RuntimeError(
            f"Another run took over {lease.uri} while this one was stopped for longer than its lease "
            f"({lease.term_s:.0f} s): this run stops without writing there again."
        )


def task_name(strategy):
    """``chief_0``, ``worker_1``... under a cluster; ``local`` on one machine."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    return f"{task_type}_{resolver.task_id}" if task_type else "local"


@contextlib.contextmanager
def run_folder(output_dir, strategy, say, routes=None):
    """Yields ``(local folder to train in, mirror or None, lease or None)``; a local ``output_dir`` is its own folder.

    ``routes`` send files under a relative folder elsewhere (`RunMirror`).

    For a URI, the chief takes the run's lease first; each task's local
    mirror is then filled from the bucket (`RunMirror.pull`), and removed
    after a run whose last push went through. A run that fails keeps it,
    since its files may be there only.
    """
    if not storage.is_object_store(output_dir):
        yield output_dir, None, None
        return
    lease = lease_lib.Lease(output_dir).acquire(say=say) if cluster.is_chief(strategy) else None
    mirror = None
    try:
        mirror = mirror_lib.RunMirror(
            output_dir, mirror_lib.local_folder(output_dir, task_name(strategy)), NEVER_PUSHED, NOT_PULLED, routes
        )
        pulled = mirror.pull()
        if pulled:
            say(f"Fetched the run's {len(pulled)} file(s) from {output_dir} into {mirror.local_dir}.")
        yield mirror.local_dir, mirror, lease
    finally:
        if mirror is not None:
            mirror.wait()  # a stopped run's last upload (SIGTERM, Ctrl-C) still finishes
        if lease:
            lease.release()
    shutil.rmtree(mirror.local_dir, ignore_errors=True)  # not after a failure: its files may be there only
