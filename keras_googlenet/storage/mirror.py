"""A run folder at a gs:// or s3:// URI, worked on in a local folder that is pushed to the URI file by file.

Training writes where it always has: to a local folder, every file atomically
(checkpoints, the backup, ``history.csv``, the curves, TensorBoard's logs).
`RunMirror.push` uploads the files that changed since the last push, in the
order in which they were written; `RunMirror.push_in_background` does it in a
thread, so that training goes on meanwhile. An object store has no rename, but each
object is seen whole or not at all; so a kill between two uploads leaves in
the bucket what a kill between two local writes leaves on disk, which a
resume already handles (the backup is the truth, ``history.csv`` is trimmed
to it). `RunMirror.pull` fetches the run before training, so that a task on
a new machine, with an empty disk, resumes from the bucket.
"""

import logging
import os
import pathlib
import shutil
import tempfile
import threading
import time

from keras_googlenet import storage
from keras_googlenet.storage import objects

logger = logging.getLogger(__name__)


def local_folder(uri, task="local"):
    """The local folder of ``uri``'s run for one task: named after both, so that two tasks on a host do not share it."""
    return pathlib.Path(tempfile.gettempdir()) / f"keras_googlenet_run_{storage.digest(uri)}_{task}"


class RunMirror:
    """The run at ``uri``, in ``local_dir``.

    Args:
        uri: the run's ``gs://`` or ``s3://`` folder.
        local_dir: the local folder that training writes; emptied by `pull`.
        never_pushed: names (or name prefixes) of local files that stay
            local: lock files, temporary files of atomic writes.
        not_pulled: relative paths (prefixes) left in the bucket by `pull`.
        routes: ``{"folder/": URI}``: the files under a relative folder go
            to another URI (Vertex AI's TensorBoard folder), not under ``uri``.
    """

    def __init__(self, uri, local_dir, never_pushed=(), not_pulled=("tensorboard/",), routes=None):
        self.uri, self.local_dir = uri.rstrip("/"), pathlib.Path(local_dir)
        self.never_pushed, self.not_pulled = tuple(never_pushed), tuple(not_pulled)
        self.routes = dict(routes or {})
        self._pushed = {}  # relative path -> (size, mtime_ns) at its last upload
        self._upload = None  # the thread of `push_in_background`

    def pull(self):
        """Empties the local folder and fills it with the run's files from the bucket; returns their relative paths."""
        shutil.rmtree(self.local_dir, ignore_errors=True)
        self.local_dir.mkdir(parents=True)
        copied = objects.download_tree(self.uri, self.local_dir, skip=self.not_pulled)
        for relative in copied:  # as they are in the bucket: not to be uploaded again
            self._pushed[relative] = _stamp(self.local_dir / relative)
        return copied

    def changed(self):
        """The local files that differ from their last upload, oldest first (the order they were written in)."""
        found = []
        for path in self.local_dir.rglob("*"):
            if not path.is_file() or path.name.startswith(self.never_pushed):
                continue
            relative = path.relative_to(self.local_dir).as_posix()
            stamp = _stamp(path)
            if self._pushed.get(relative) != stamp:
                found.append((stamp[1], relative, stamp))
        return [(relative, stamp) for _, relative, stamp in sorted(found)]

    def push(self, final=False):
        """Uploads the changed files, after any upload in the background; returns whether all of them went.

        A failure that the client's own retries did not overcome is a
        warning, and the files go at the next push: training goes on, its
        files are safe on the local disk. A failed ``final`` push raises a
        one-line error instead: the run would otherwise end with its results
        only on a disk that may not outlive it.
        """
        self.wait()
        return self._push_changed(final)

    def push_in_background(self):
        """Starts `push` in a thread once the previous one has finished; returns the seconds spent waiting for that one.

        Each file is read as it is when its upload starts. A file replaced
        meanwhile (the atomic writes rename a new file into place) is read
        whole from the one it replaced, and goes again at the next push.
        """
        waited = self.wait()
        self._upload = threading.Thread(target=self._push_changed, name="keras_googlenet_upload", daemon=True)
        self._upload.start()
        return waited

    def wait(self):
        """Waits for the upload in the background, if one is running; returns the seconds waited."""
        started = time.monotonic()
        if self._upload is not None:
            self._upload.join()
            self._upload = None
        return time.monotonic() - started

    def _push_changed(self, final=False):
        for relative, stamp in self.changed():
            target = self.target(relative)
            try:
                objects.upload_file(self.local_dir / relative, target)
            except FileNotFoundError:  # replaced between the listing and the upload: the next push has it
                continue
            except Exception as error:  # noqa: BLE001  gcsfs, s3fs and their HTTP layers raise their own
                where = f"{target} ({objects.describe(error)})"
                if final:
                    raise OSError(
                        f"Could not upload {where}; the run's files are in {self.local_dir}: copy them with "
                        f"`{storage.OBJECT_STORES[storage.scheme(self.uri)].copy} {self.local_dir} {self.uri}`."
                    ) from None
                logger.warning("Could not upload %s; retrying at the next epoch end.", where)
                return False
            self._pushed[relative] = stamp
        return True

    def remove(self, folder):
        """Deletes the relative ``folder``, here and in the bucket, after any upload in the background."""
        self.wait()
        shutil.rmtree(self.local_dir / folder, ignore_errors=True)
        objects.remove_tree(self.target(folder))
        prefix = folder.rstrip("/") + "/"
        self._pushed = {relative: stamp for relative, stamp in self._pushed.items() if not relative.startswith(prefix)}

    def target(self, relative):
        """The URI that the local file at ``relative`` is uploaded to."""
        for folder, uri in self.routes.items():
            if relative.startswith(folder):
                return storage.join(uri, relative[len(folder):])
        return storage.join(self.uri, relative)


def _stamp(path):
    status = os.stat(path)
    return status.st_size, status.st_mtime_ns
