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


_requested = threading.Event()
_deferring = threading.Event()  # set while fit runs: a SIGTERM then waits for the end of the step


def requested():
    """Whether a SIGTERM has asked this process to stop."""
    return _requested.is_set()


def _on_sigterm(signum, frame):
    _requested.set()
    if not _deferring.is_set():
        raise Preempted()


@contextlib.contextmanager
def stop_on_sigterm():
    """SIGTERM stops the run inside this block (`Preempted`), from the main thread only; elsewhere it does nothing.

    Python runs signal handlers in the main thread alone: a `train` called in
    another thread (a Ray Train worker) keeps the process's own handling.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _requested.clear()
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
