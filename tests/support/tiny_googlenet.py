"""A stand-in for `GoogLeNet` in the tests of training's mechanics, and a `keras-googlenet` that trains it.

Checkpoints, backups, resumes, kills, locks and cluster shapes do not
depend on the network: they need a model with GoogLeNet's outputs
(``main``, ``aux1``, ``aux2``), names and arguments. Tracing the real
three-head train step takes 10-17 s of CPU in each process; this one's
takes about one. The tests of what the real network does under `train`
keep it: the digits builds, test_run's short training, test_kubernetes (a
chief and a worker), the scaling benchmark (two replicas) and the README's
model snippet.

Run as a script, it is the `keras-googlenet` command with this stand-in in
`train`: ``python tests/support/tiny_googlenet.py train ...``.

Its epochs take milliseconds, so a kill test cannot wait for "the first
backup, a whole epoch before the next": with ``TINY_GOOGLENET_HOLD`` set to
``EPOCH:PATH``, `train` stops at the end of epoch EPOCH (counted from 0,
after the built-in callbacks: the backup, checkpoints and history row are
written), creates PATH and sleeps until it is killed, or until a SIGTERM
asks it to stop (`preemption.requested`). ``EPOCH/STEP:PATH`` holds at
the end of step STEP (from 1) of that epoch instead. Only the first to
create PATH holds, and writes its pid there: a restarted run that (wrongly)
ran that epoch again, or a second worker of the same cluster, goes on.
Several holds are separated by commas.

With ``TINY_GOOGLENET_SEEN`` set to a folder, the stand-in counts the labels
it trains on (each in a class of its own in the preemption test), and
writes each epoch's counts so far to ``FOLDER/<pid>-<epoch>.json`` at every
step's end.

With ``TINY_GOOGLENET_STALE_BACKUP`` set, the process's own copy of the
chief's backup lacks ``latest.weights.h5`` when training reads it: a task
of a bucket run that fetched the run while the chief was still uploading
its last backup (`cluster.agree_on_resume_point`).
"""

import importlib.abc
import json
import importlib.machinery
import os
import pathlib
import sys
import time

HOLD = "TINY_GOOGLENET_HOLD"
SEEN = "TINY_GOOGLENET_SEEN"
STALE_BACKUP = "TINY_GOOGLENET_STALE_BACKUP"
RUN_MODULE = "keras_googlenet.training.run"

OUTPUT_NAMES = ("main", "aux1", "aux2")


def tiny_googlenet(input_shape=(224, 224, 3), classes=1000, aux_heads=True, variant="bn", name="googlenet", **unused):
    """GoogLeNet's outputs and names on one strided convolution (batch norm for ``"bn"``, as the real variants)."""
    import keras
    from keras import layers

    pixels = keras.Input(input_shape, name="input_layer")
    x = layers.Conv2D(8, 3, strides=4, use_bias=variant != "bn", name="conv1_7x7_s2")(pixels)
    if variant == "bn":
        x = layers.BatchNormalization(name="conv1_7x7_s2_bn")(x)
    features = layers.GlobalAveragePooling2D(name="pool5_7x7_s1")(layers.ReLU()(x))
    names = OUTPUT_NAMES if aux_heads else OUTPUT_NAMES[:1]
    heads = [layers.Dense(classes, activation="softmax", name=head)(features) for head in names]
    model = keras.Model(pixels, heads if aux_heads else heads[0], name=name)
    if os.environ.get(SEEN):
        _count_labels(model, classes)
    return model


def _count_labels(model, classes):
    """Adds ``model.seen``, the count of each label its training steps have had since it was last zeroed."""
    import tensorflow as tf

    model.seen = tf.Variable(tf.zeros([classes], tf.int64), trainable=False)  # outside Keras' weights and backups
    train_step = model.train_step

    def counting_train_step(data):
        labels = data[1]["main"] if isinstance(data[1], dict) else data[1]
        model.seen.assign_add(tf.reduce_sum(tf.one_hot(labels, classes, dtype=tf.int64), axis=0))
        return train_step(data)

    model.train_step = counting_train_step


def holds():
    """The callbacks that ``TINY_GOOGLENET_SEEN`` and ``TINY_GOOGLENET_HOLD`` ask for: none when they are unset."""
    import keras

    class WriteSeen(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            self.model.seen.assign(self.model.seen * 0)

        def on_train_batch_end(self, batch, logs=None):
            counts = [int(count) for count in self.model.seen.numpy()]
            (pathlib.Path(os.environ[SEEN]) / f"{os.getpid()}-{self.epoch}.json").write_text(json.dumps(counts))

    callbacks = [WriteSeen()] if os.environ.get(SEEN) else []
    holds = [_hold(*entry.split(":", 1)) for entry in os.environ.get(HOLD, "").split(",") if entry]
    return callbacks + holds


def _hold(point, path):
    """The callback that holds at ``point`` (``EPOCH`` or ``EPOCH/STEP``), creating ``path`` with the process's pid in it."""
    import keras

    from keras_googlenet.training import preemption

    epoch, _, step = point.partition("/")

    def hold():
        try:
            with open(path, "x") as file:  # once per PATH: a restarted run, or a second worker, goes on
                file.write(str(os.getpid()))
        except FileExistsError:
            return
        while not preemption.requested():  # a SIGTERM's handler returns into this loop
            time.sleep(0.05)

    class Hold(keras.callbacks.Callback):
        def on_epoch_begin(self, index, logs=None):
            self.epoch = index

        def on_train_batch_end(self, batch, logs=None):
            # A resumed epoch's fit counts its batches from 0: only the first run holds (PATH exists).
            if step and self.epoch == int(epoch) and batch + 1 == int(step):
                hold()

        def on_epoch_end(self, index, logs=None):
            if not step and index == int(epoch):
                hold()

    return Hold()


def use_in_train(monkeypatch):
    """Makes `training.run.train` build the stand-in (a pytest ``monkeypatch``)."""
    from keras_googlenet.training import run

    monkeypatch.setattr(run, "GoogLeNet", tiny_googlenet)


def _patch(run):
    """The stand-in, the holds and a stale backup in the module `keras_googlenet.training.run`."""
    run.GoogLeNet = tiny_googlenet
    if os.environ.get(STALE_BACKUP):
        last_good_backup = run.checkpointing._last_good_backup

        def without_the_latest(backup_dir, *args):
            (pathlib.Path(backup_dir) / run.checkpointing.LATEST_BACKUP).unlink(missing_ok=True)
            return last_good_backup(backup_dir, *args)

        run.checkpointing._last_good_backup = without_the_latest
    train = run.train
    run.train = lambda *args, callbacks=(), **kwargs: train(*args, callbacks=[*callbacks, *holds()], **kwargs)


class _PatchRunWhenImported(importlib.abc.MetaPathFinder):
    """Patches `keras_googlenet.training.run` as it is imported, so that a process imports TensorFlow only if it trains."""

    def find_spec(self, name, path, target=None):
        if name != RUN_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            _patch(module)

        spec.loader.exec_module = exec_module
        return spec


def patch_train_when_imported():
    """`train` in this process builds the stand-in and honours ``TINY_GOOGLENET_HOLD``, wherever it is imported from.

    `stand_in_site/sitecustomize.py` calls this in every Python process that
    has that folder on its PYTHONPATH: Ray's workers, which the test cannot
    patch otherwise.
    """
    if RUN_MODULE in sys.modules:
        _patch(sys.modules[RUN_MODULE])
    elif not any(isinstance(finder, _PatchRunWhenImported) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchRunWhenImported())


def main():
    from keras_googlenet import cli

    patch_train_when_imported()
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
