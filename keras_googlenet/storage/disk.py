"""A full local disk as one line naming the folder, before a write where its size is known.

h5py, with which Keras writes weights and checkpoints, does not fail
cleanly on a full disk: it raises, prints two tracebacks from the file it
could not close, and libhdf5 can crash the process at exit (exit 139). So
the large writes (the backup, the checkpoints, the exports) first compare
what they need with the free space (`check_room`), and write nothing when
it does not fit. A disk that fills during a write anyway, by another
process, is the same one line (`named_if_full`), with h5py's tracebacks
kept out; libhdf5 may then still crash at exit, which no Python code can
prevent.
"""

import contextlib
import errno
import math
import os
import pathlib
import shutil
import sys

import numpy

# Room kept beyond a file's estimated size: h5py's and zip's own structures,
# and the small files written beside it (history row, metadata).
MARGIN_BYTES = 8 * 2**20
_FULL = (errno.ENOSPC, errno.EDQUOT)
_FULL_TEXT = ("No space left on device", "Disk quota exceeded")


class DiskFull(OSError):
    """No room left in a folder for a file: the message is one line, naming the folder and the sizes known; errno is ENOSPC."""

    def __str__(self):
        return self.strerror  # without OSError's "[Errno 28] " before it


def megabytes(size):
    return f"{size / 2**20:,.0f} MB"


def check_room(folder, needed, what):
    """Raises `DiskFull` when the disk of ``folder`` has less than ``needed`` bytes (and a margin) free for ``what``."""
    free = shutil.disk_usage(_existing(folder)).free
    if free < needed + MARGIN_BYTES:
        raise DiskFull(
            errno.ENOSPC,
            f"No room for {what} in {folder}: it needs about {megabytes(needed + MARGIN_BYTES)} and the disk "
            f"has {megabytes(free)} free. Free some space, or write to another folder",
        )


def is_disk_full(error):
    """Whether ``error``, or an error it was raised from, says that a disk is full (h5py and TensorFlow say it in words)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if getattr(error, "errno", None) in _FULL or any(text in str(error) for text in _FULL_TEXT):
            return True
        error = error.__cause__ or error.__context__
    return False


@contextlib.contextmanager
def named_if_full(folder, what, needed=None):
    """Runs the block after `check_room` (when ``needed`` is known); a disk that fills during it raises `DiskFull` naming ``folder``.

    The tracebacks that h5py prints for a file it cannot close on a full
    disk are kept out meanwhile (Python calls them "unraisable").
    """
    if needed is not None:
        check_room(folder, needed, what)
    hooks = sys.unraisablehook, sys.excepthook
    sys.unraisablehook = lambda unraisable: None if is_disk_full(unraisable.exc_value) else hooks[0](unraisable)
    sys.excepthook = lambda kind, value, trace: None if is_disk_full(value) else hooks[1](kind, value, trace)
    try:
        yield
    except DiskFull:
        raise
    except Exception as error:
        if not is_disk_full(error):
            raise
        free = shutil.disk_usage(_existing(folder)).free
        raise DiskFull(
            errno.ENOSPC,
            f"The disk filled while writing {what} in {folder} ({megabytes(free)} free now); nothing half-written "
            f"is kept. Free some space, or write to another folder",
        ) from None
    finally:
        sys.unraisablehook, sys.excepthook = hooks


def variables_size(*holders):
    """The bytes of the variables of models and optimizers (unbuilt ones have none): a saved file's size, near enough."""
    total = 0
    for holder in holders:
        for variable in getattr(holder, "variables", None) or ():
            total += math.prod(variable.shape) * _itemsize(variable.dtype)
    return total


def _itemsize(dtype):
    try:
        return numpy.dtype(str(dtype)).itemsize
    except TypeError:  # bfloat16 and other types numpy lacks: none is wider than 4 bytes
        return 4


def _existing(folder):
    """``folder``, or the nearest folder above it that exists (what a new folder's disk is)."""
    path = pathlib.Path(os.path.abspath(folder))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
