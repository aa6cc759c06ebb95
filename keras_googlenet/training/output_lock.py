"""One training run per output folder: the lock file ``train.lock`` and its holder's PID.

`lock_output_dir` holds the lock for a run; `check_output_dir_free` tells,
without taking it or creating anything, whether another run holds it, so
that `keras-googlenet train` can refuse before importing TensorFlow. Only
the standard library is imported here.
"""

import contextlib
import os
import pathlib
import time

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, runs are not guarded
    fcntl = None

LOCK_FILE = "train.lock"
# `check_output_dir_free` holds a shared lock for a moment: a run taking the
# lock in that moment retries this long before calling the folder busy.
PROBE_GRACE_S = 1.0


@contextlib.contextmanager
def lock_output_dir(output_dir):
    """Holds ``output_dir/train.lock`` while the block runs, or refuses within `PROBE_GRACE_S`.

    An advisory `fcntl.flock` on the file, not the file's existence: the
    kernel drops the lock when its process dies (even by SIGKILL), so a
    killed run's lock file is simply taken over, and no two runs can both
    decide that a lock is stale. The holder writes its PID into the file for
    the message of the run it refuses.
    """
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield
        return
    path = output_dir / LOCK_FILE
    descriptor = _take_lock(path, output_dir)
    try:
        yield
    finally:
        # Unlinked while still held, so that a run waiting on this file
        # notices (_take_lock compares inodes) and locks a new one.
        path.unlink(missing_ok=True)
        os.close(descriptor)


def check_output_dir_free(output_dir):
    """Raises the ValueError of `lock_output_dir` if another run holds the folder's lock.

    Creates nothing: a missing folder or lock file is a free folder. The
    answer may be stale a moment later; `lock_output_dir` is what keeps two
    runs apart, this only lets a busy folder be refused before seconds of
    start-up.
    """
    if fcntl is None:
        return
    output_dir = pathlib.Path(output_dir)
    try:
        descriptor = os.open(output_dir / LOCK_FILE, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        # Shared: two checks never refuse each other; a run's exclusive lock refuses both.
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _busy(descriptor, output_dir) from None
    finally:
        os.close(descriptor)  # releases the shared lock


def _take_lock(path, output_dir):
    waited_since = time.monotonic()
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() - waited_since < PROBE_GRACE_S:  # perhaps a check's shared lock: try again
                os.close(descriptor)
                time.sleep(0.01)
                continue
            error = _busy(descriptor, output_dir)
            os.close(descriptor)
            raise error from None
        try:
            same_file = os.fstat(descriptor).st_ino == os.stat(path).st_ino
        except FileNotFoundError:  # the holder released and removed it between our open and flock
            same_file = False
        if same_file:
            pid = f"{os.getpid()}\n".encode("ascii")
            os.pwrite(descriptor, pid, 0)
            os.ftruncate(descriptor, len(pid))
            return descriptor
        os.close(descriptor)


def _busy(descriptor, output_dir):
    holder = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip() or "unknown"
    return ValueError(
        f"Another training run (PID {holder}) is writing to {output_dir}: wait for it "
        f"to end, or train into another output_dir. Received: output_dir='{output_dir}'"
    )
