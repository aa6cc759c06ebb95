"""Backups between epoch ends: every N steps (``--backup-every``), and at the step where SIGTERM stops a run.

A SIGKILL without warning loses at most ``backup_every`` steps; a SIGTERM
loses none (`preemption`). Under MultiWorkerMirroredStrategy every task
must stop at the same step, or the others would wait in that step's
all-reduce for ever: the tasks share their stop requests in a collective
every `AGREE_EVERY` steps and at each epoch end, and all stop at the first
of those where any task has one.
"""

import keras

from keras_googlenet.training import cluster, preemption

# The tasks compare their stop requests every this many steps: a collective
# outside the training step costs a round trip, and a SIGTERM waits at most
# this many steps (seconds on a GPU) for the others.
AGREE_EVERY = 8


class StepBackups(keras.callbacks.Callback):
    """Backs up the step reached every ``backup_every`` steps, and on a stop request, then stops.

    Put it after the callbacks that write an epoch's files, and after the
    upload (``push``), so that a stop at an epoch end leaves that epoch
    whole, here and in a bucket.

    Args:
        backup: the run's `checkpointing.EpochBackup`.
        steps_per_epoch: the steps of a whole epoch.
        backup_every: back up every this many steps of the run (counted from
            its first), or None for epoch ends only.
        first_step: the steps of the first epoch done before this `fit`
            (a resumed epoch's).
        push: called after each backup (the bucket's upload), or None.
    """

    def __init__(self, backup, steps_per_epoch, backup_every=None, first_step=0, push=None):
        super().__init__()
        self.backup, self.steps_per_epoch, self.backup_every = backup, steps_per_epoch, backup_every
        self.first_step, self.push = first_step, push
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = self.first_step + batch + 1  # the steps of this epoch done
        if step >= self.steps_per_epoch:  # the epoch end backs it up
            return
        run_step = self.epoch * self.steps_per_epoch + step
        stop = self._stop_agreed(run_step)
        if stop or (self.backup_every and run_step % self.backup_every == 0):
            self.backup.save_step(self.epoch, step)
            if self.push:
                self.push()
        if stop:
            raise preemption.Preempted(self.epoch, step, self.backup.backup_dir)

    def on_epoch_end(self, epoch, logs=None):
        self.first_step = 0
        if self._stop_agreed(None):  # the epoch's backup and files are written: stop after it
            raise preemption.Preempted(epoch + 1, 0, self.backup.backup_dir)

    def _stop_agreed(self, run_step):
        """Whether to stop now; under multi-worker, only at the steps where every task asks the others (``None``: an epoch end)."""
        strategy = self.model.distribute_strategy
        if not cluster.is_multi_worker(strategy):
            return preemption.requested()
        if run_step is not None and run_step % AGREE_EVERY:
            return False
        return any(cluster.gather_from_replicas(strategy, float(preemption.requested())))
