"""The line that `train` prints for each epoch: the main head's loss and accuracy, in 120 columns.

Keras' own line shows every metric of every head: 330 characters for the
three-head GoogLeNet with validation, wrapped over three lines of a
terminal. `EpochLine` is Keras' progress bar and epoch line showing four
numbers; every metric, of every head, is still in ``history.csv`` and
TensorBoard.
"""

import keras

# Each shown metric under its short name, in this order. Keras prefixes a
# metric with its output's name only when the model has several outputs.
SHOWN = (
    ("loss", ("loss",)),
    ("top1", ("main_top1", "top1")),
    ("val_top1", ("val_main_top1", "val_top1")),
    ("val_top5", ("val_main_top5", "val_top5")),
)


def shown(logs):
    """The metrics of ``logs`` that an epoch's line shows, by their short names, in `SHOWN`'s order."""
    logs = logs or {}
    found = {}
    for name, keys in SHOWN:
        key = next((key for key in keys if key in logs), None)
        if key is not None:
            found[name] = logs[key]
    return found


class EpochLine(keras.callbacks.ProgbarLogger):
    """Keras' `ProgbarLogger`, showing `shown`'s metrics only; `fit` takes it in place of its own.

    Args:
        epochs: the run's epochs, shown as "Epoch 2/3" also by a `fit`
            that ends earlier (the rest of a resumed epoch), or None: the
            ``fit``'s own.
    """

    def __init__(self, epochs=None):
        super().__init__()
        self.run_epochs = epochs

    def set_params(self, params):
        super().set_params(params)
        self.epochs = self.run_epochs or self.epochs

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, shown(logs))

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, shown(logs))
