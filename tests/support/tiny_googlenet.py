"""A stand-in for `GoogLeNet` in the tests of training's mechanics, and a `keras-googlenet` that trains it.

Checkpoints, backups, resumes, kills, locks and cluster shapes do not
depend on the network: they need a model with GoogLeNet's outputs
(``main``, ``aux1``, ``aux2``), names and arguments. Tracing the real
three-head train step takes 10-17 s of CPU in each process; this one's
takes about one. The tests of what the real network does under `train`
keep it: tests/training/test_run.py, test_kubernetes.py, test_ray.py, the
scaling benchmark (MirroredStrategy) and the digits builds.

Run as a script, it is the `keras-googlenet` command with this stand-in in
`train`: ``python tests/support/tiny_googlenet.py train ...``.

Its epochs take milliseconds, so a kill test cannot wait for "the first
backup, a whole epoch before the next": with ``TINY_GOOGLENET_HOLD`` set to
``EPOCH:PATH``, `train` stops at the end of epoch EPOCH (counted from 0,
after the built-in callbacks: the backup, checkpoints and history row are
written), creates PATH and sleeps until it is killed.
"""

import os
import pathlib
import sys
import time

HOLD = "TINY_GOOGLENET_HOLD"

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
    return keras.Model(pixels, heads if aux_heads else heads[0], name=name)


def holds():
    """The callbacks that ``TINY_GOOGLENET_HOLD`` asks for: none when it is unset."""
    if not os.environ.get(HOLD):
        return []
    import keras

    epoch, path = os.environ[HOLD].split(":", 1)

    class HoldAtEpochEnd(keras.callbacks.Callback):
        def on_epoch_end(self, index, logs=None):
            if index == int(epoch):
                pathlib.Path(path).touch()
                while True:
                    time.sleep(60)

    return [HoldAtEpochEnd()]


def use_in_train(monkeypatch):
    """Makes `training.run.train` build the stand-in (a pytest ``monkeypatch``)."""
    from keras_googlenet.training import run

    monkeypatch.setattr(run, "GoogLeNet", tiny_googlenet)


def main():
    from keras_googlenet import cli

    cli._quiet_tensorflow()  # as the command does, before `run` imports TensorFlow
    from keras_googlenet.training import run

    run.GoogLeNet = tiny_googlenet
    train = run.train
    run.train = lambda *args, callbacks=(), **kwargs: train(*args, callbacks=[*callbacks, *holds()], **kwargs)
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
