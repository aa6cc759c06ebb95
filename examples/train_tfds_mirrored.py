"""Train GoogLeNet on a tensorflow-datasets dataset with MirroredStrategy.

On a machine with GPUs, MirroredStrategy replicates over all of them; on a
CPU-only machine, ``--devices N`` splits the CPU into N logical devices so
the same code path runs (slowly). The global batch is ``--batch-size`` times
the number of replicas.

    python examples/train_tfds_mirrored.py --data tf_flowers --epochs 30
    python examples/train_tfds_mirrored.py --data digits --devices 2 --epochs 1 --steps-per-epoch 5

tfds datasets other than the built-in "digits" must already be in
``--data-dir`` (or be downloadable); ImageNet needs ``--manual-dir``.
"""

import argparse

from keras_googlenet import training


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="tf_flowers", help="a tfds name, e.g. tf_flowers, imagenette/320px (default: tf_flowers)")
    parser.add_argument("--data-dir", default=None, help="tfds data folder (default: tfds's)")
    parser.add_argument("--manual-dir", default=None, help="hand-downloaded archives, for imagenet2012")
    parser.add_argument("--output-dir", default="runs/tfds_mirrored", help="where checkpoints and logs go")
    parser.add_argument("--epochs", type=int, default=2, help="number of epochs (default: 2)")
    parser.add_argument("--steps-per-epoch", type=int, default=None, help="batches per epoch (default: one pass)")
    parser.add_argument("--batch-size", type=int, default=16, help="batch size per replica (default: 16)")
    parser.add_argument("--image-size", type=int, default=224, help="input size (default: 224)")
    parser.add_argument("--devices", type=int, default=None, help="logical CPU devices, when there is no GPU")
    args = parser.parse_args()

    training.train(
        args.data, output_dir=args.output_dir, strategy="mirrored", devices=args.devices, epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size, image_size=args.image_size,
        # Natural images: the paper's crops (8%-100% of the area) and schedule.
        min_crop_area=0.08, schedule="paper", data_dir=args.data_dir, manual_dir=args.manual_dir,
    )


if __name__ == "__main__":
    main()
