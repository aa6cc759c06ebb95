"""The PNG of the training curves, drawn from the CSV history."""

import csv
import math

import matplotlib

matplotlib.use("Agg")  # no display: training runs headless
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from keras_googlenet.training import checkpointing  # noqa: E402

HEADS = ("main", "aux1", "aux2")
ACCURACIES = ("main_top1", "main_top5")


def plot_training_curves(csv_path, png_path):
    """Plots the loss of each head and main's top-1 and top-5 per epoch.

    Read from the `CSVLogger` history rather than a `History` object so that
    a resumed run plots every epoch, not only those since the restart.
    Validation curves are dashed when present.
    """
    with open(csv_path, newline="") as file:
        rows = list(csv.DictReader(file))
    epochs = [int(row["epoch"]) + 1 for row in rows]
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(11, 4))
    for axes, keys, title in (
        (loss_axes, [f"{head}_loss" for head in HEADS], "loss per head"),
        (accuracy_axes, list(ACCURACIES), "main head accuracy"),
    ):
        for key in keys:
            for prefix, style in (("", "-"), ("val_", "--")):
                # A single-output model logs "top1", not "main_top1".
                name = key if not rows or f"{prefix}{key}" in rows[0] else key.removeprefix("main_")
                values = [checkpointing.logged_number(row.get(f"{prefix}{name}")) for row in rows]
                if any(math.isfinite(value) for value in values):
                    axes.plot(epochs, values, style, marker="o", label=f"{prefix}{name}")
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(title)
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    accuracy_axes.set_ylim(0, 1)
    figure.tight_layout()
    # Atomically: a run killed while drawing keeps its previous curves.
    checkpointing.write_atomically(png_path, lambda path: figure.savefig(path, dpi=100))
    plt.close(figure)
    return str(png_path)
