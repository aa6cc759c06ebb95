"""Fine-tune GoogLeNet on an image folder: train a new head on a frozen backbone, then unfreeze.

The folder holds one subfolder per class (and optionally ``train/`` and
``validation/`` folders above them); see `keras_googlenet.data.datasets`. The
backbone starts from ``--weights`` ("imagenet" for torchvision's ported
weights once cached, a ``.weights.h5`` file, or nothing for random weights).

    python examples/finetune_folder.py path/to/flowers --weights imagenet
    python examples/finetune_folder.py path/to/folder --image-size 96 --head-epochs 1 --finetune-epochs 1
"""

import argparse

import keras

import keras_googlenet as kg
from keras_googlenet.training import checkpointing, run as training
from keras_googlenet.artifacts import model_info
from keras_googlenet.data import pipeline


def build_classifier(classes, image_size, weights):
    """The "bn" backbone (include_top=False) under a new `main` softmax head."""
    backbone = kg.GoogLeNet(include_top=False, weights=weights, variant="bn", input_shape=(image_size, image_size, 3), pooling="avg")
    x = keras.layers.Dropout(0.2, name="pool5_drop_7x7_s1")(backbone.output)
    x = keras.layers.Dense(classes, name="loss3_classifier")(x)
    outputs = keras.layers.Activation("softmax", dtype="float32", name="main")(x)
    return keras.Model(backbone.inputs, outputs, name="googlenet_finetuned"), backbone


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="image folder, one subfolder per class")
    parser.add_argument("--weights", default=None, help="backbone weights: imagenet, a .weights.h5 file, or none (default: random)")
    parser.add_argument("--image-size", type=int, default=224, help="input size (default: 224)")
    parser.add_argument("--batch-size", type=int, default=16, help="batch size (default: 16)")
    parser.add_argument("--head-epochs", type=int, default=3, help="epochs with the backbone frozen (default: 3)")
    parser.add_argument("--finetune-epochs", type=int, default=3, help="epochs with everything trainable (default: 3)")
    parser.add_argument("--learning-rate", type=float, default=0.01, help="head learning rate; fine-tuning uses a tenth (default: 0.01)")
    parser.add_argument("--output", default="finetuned.keras", help="the saved model (default: finetuned.keras)")
    args = parser.parse_args()

    def data(split):
        # The training split repeats: a folder's dataset has no known length
        # (unreadable files are dropped on the fly), so without repeat and
        # steps_per_epoch Keras finds each epoch's end by running out of
        # data, and warns "Your input ran out of data".
        dataset, info = pipeline.make_dataset(
            args.folder, split=split, image_size=args.image_size, batch_size=args.batch_size, variant="bn", seed=0,
            repeat=split == "train",
        )
        return dataset.map(lambda images, targets: (images, targets["main"])), info

    train_data, info = data("train")
    validation_data, _ = data("validation")
    # One pass over the training images per epoch; `pipeline` drops the last, partial batch.
    steps_per_epoch = max(1, info.num_examples["train"] // args.batch_size)
    # The validation pass is counted too (its last batch may be partial), so
    # that Keras does not have to run out of data to end it.
    validation_steps = -(-info.num_examples["validation"] // args.batch_size)
    fit_options = dict(
        validation_data=validation_data, steps_per_epoch=steps_per_epoch, validation_steps=validation_steps, verbose=2,
        shuffle=False,  # the pipeline shuffles; fit cannot shuffle a dataset and warns when asked to
    )
    model, backbone = build_classifier(info.num_classes, args.image_size, args.weights)

    # Phase 1: only the new head learns; frozen batch norm layers run in
    # inference mode (Keras 3), so their ImageNet statistics are kept.
    backbone.trainable = False
    kg.compile_googlenet(model, optimizer=training.make_optimizer(args.learning_rate))
    model.fit(train_data, epochs=args.head_epochs, **fit_options)

    # Phase 2: everything learns, at a tenth of the rate so that the
    # pretrained features are adjusted, not overwritten.
    backbone.trainable = True
    kg.compile_googlenet(model, optimizer=training.make_optimizer(args.learning_rate / 10))
    model.fit(train_data, epochs=args.head_epochs + args.finetune_epochs, initial_epoch=args.head_epochs, **fit_options)

    checkpointing.write_atomically(args.output, model.save)
    checkpointing.write_atomically(
        args.output.removesuffix(".keras") + "_labels.txt", lambda path: model_info.write_labels(path, info.class_names)
    )
    print(f"Saved {args.output}")


if __name__ == "__main__":
    main()
