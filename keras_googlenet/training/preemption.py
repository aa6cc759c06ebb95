"""SIGTERM, the signal a preempted machine gets: it stops `train` at the end of the step it is in.

Kubernetes, Vertex AI and the clouds stop a preempted or evicted machine
with SIGTERM, then SIGKILL after a grace period (30 s by default on
Kubernetes). While `model.fit` runs, the signal only asks for a stop
(`requested`): `step_backups.StepBackups` backs up the step reached, then
raises `Preempted`, so that the next run starts at that step. Outside
`fit` (listing the data, building the model, the final evaluation) it
raises `Preempted` at once, and the run resumes at its last backup.

Light: the CLI imports it without TensorFlow.
"""

import contextlib
import ctypes
import os
import signal
import threading

# 128 + SIGTERM, as a shell reports it: not 0, so that a TFJob's chief stopped
# this way does not end the job as succeeded (restartPolicy: OnFailure restarts it).
EXIT_STATUS = 143


class Preempted(KeyboardInterrupt):
    """`train` stopped by SIGTERM; it unwinds as from Ctrl-C, freeing the lock or lease on the way.

    Attributes:
        epoch: the epochs done, or None when it stopped outside `fit`.
        step: the steps of the next epoch done; with ``epoch``, the point
            that the backup holds.
        backup_dir: where that backup is, or None.
    """

    def __init__(self, epoch=None, step=0, backup_dir=None):
        super().__init__(epoch, step, backup_dir)
        self.epoch, self.step, self.backup_dir = epoch, step, backup_dir

    def where(self):
        """Where the run stopped, for a person: "in epoch 3 after its step 17" or "at the end of epoch 3" (1-based)."""
        if self.epoch is None:
            return "outside training"
        return f"at the end of epoch {self.epoch}" if not self.step else f"in epoch {self.epoch + 1} after its step {self.step}"


_SIGACTION_BYTES = 1024
_requested = threading.Event()
_deferring = threading.Event()  # set while fit runs: a SIGTERM then waits for the end of the step


def requested():
    """Whether a SIGTERM has asked this process to stop."""
    return _requested.is_set()


def _on_sigterm(signum, frame):
    _requested.set()
    if not _deferring.is_set():
        raise Preempted()


def deferring_to(fallback):
    """A SIGTERM handler for a process whose `train` runs in another thread: a stop request while `fit` runs, else ``fallback`` (a function).

    Python runs signal handlers in the main thread alone, so a `train` in
    another thread (a Ray Train worker's) cannot install `stop_on_sigterm`'s:
    the process's own handler (``fallback``, Ray's exit) is wrapped with this
    one instead (`training.ray.worker_process_setup`). Outside `fit` it
    runs as before, and the run resumes at its last backup.
    """

    def handler(signum, frame):
        if _deferring.is_set():
            _requested.set()
        else:
            fallback(signum, frame)

    return handler


@contextlib.contextmanager
def handler_kept():
    """Puts the SIGTERM handler that was set before the block back after it, at the C level.

    TensorFlow's multi-worker runtime (its coordination service's
    ``preemption_notifier``) replaces the process's SIGTERM handler with its
    own, which only logs "SIGTERM caught", when `MultiWorkerMirroredStrategy`
    is made. Python's handler then never runs. `signal.signal` cannot put it
    back from a thread other than the main one (a Ray worker's `train`), so
    the handler is saved and restored with libc's ``sigaction``, as opaque
    bytes. Where libc cannot be loaded, nothing is restored.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        saved = ctypes.create_string_buffer(_SIGACTION_BYTES)  # larger than any libc's struct sigaction
        kept = libc.sigaction(signal.SIGTERM, None, saved) == 0
    except (OSError, AttributeError):
        kept = False
    try:
        yield
    finally:
        if kept:
            libc.sigaction(signal.SIGTERM, saved, None)


def request_as_it_arrives():
    """Makes each SIGTERM a stop request at once, in a thread of its own; call it from the main thread.

    Python calls a signal's handler in the main thread, at its next line of
    Python. A Ray worker's main thread waits in Ray's C++ task loop and runs
    none for minutes, so its handler (`deferring_to`'s) waits too. CPython
    also writes each signal's number to the wakeup fd as it arrives, from
    C: a thread reading it sets the request while `fit` runs in another
    thread, where `step_backups` sees it. The fd set before, if any, still
    gets every number.
    """
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)

    def watch():
        while True:
            numbers = os.read(read_end, 64)
            if signal.SIGTERM in numbers and _deferring.is_set():
                _requested.set()
            if previous != -1:
                with contextlib.suppress(OSError):
                    os.write(previous, numbers)

    threading.Thread(target=watch, name="keras_googlenet_sigterm", daemon=True).start()


@contextlib.contextmanager
def stop_on_sigterm():
    """SIGTERM stops the run inside this block (`Preempted`), from the main thread only; elsewhere it does nothing.

    Python runs signal handlers in the main thread alone: a `train` called in
    another thread keeps the process's own handling, or `deferring_to`'s.
    """
    _requested.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def deferred():
    """Inside this block (``model.fit``), a SIGTERM waits for the end of the step instead of raising."""
    _deferring.set()
    try:
        yield
    finally:
        _deferring.clear()
    if _requested.is_set():  # it came after the last step's check: stop here
        raise Preempted()
