"""Top-1 and top-5 accuracy of a trained GoogLeNet, with the paper's multi-crop testing."""

import os

import numpy as np
import tensorflow as tf

from keras_googlenet.data import augment, datasets, pipeline
from keras_googlenet.model import googlenet as model_lib, task
from keras_googlenet.artifacts import model_info

# The number of crops per image and the `augment.multi_crop` scheme that
# makes them; 1 is the single centre crop of `augment.eval_transform`.
CROP_SCHEMES = {1: None, 10: "10crop", 144: "144crop"}


def evaluate(model, data="digits", split="validation", crops=1, batch_size=32, limit=None, data_dir=None, manual_dir=None):
    """Top-1 and top-5 accuracy of the ``main`` head on a split.

    With several crops per image the softmax outputs are averaged over the
    crops before ranking, as in Section 7 of the paper ("averaging over
    multiple crops and over all the individual classifiers").

    Args:
        model: a `.keras` checkpoint path or a Keras model (three-head or
            inference); its input size and variant set the preprocessing.
        data: ``"digits"``, an image folder or a tfds name; see
            `datasets.load_examples`.
        split: the split to evaluate.
        crops: 1 (the centre crop), 10 (4 corners and centre, and their
            mirrors) or 144 (Section 7's 4 scales x 3 squares x 6 crops x 2).
        batch_size: the number of crops the model sees at once.
        limit: evaluate only the first ``limit`` images, or all when ``None``.
        data_dir: where tfds keeps its datasets.
        manual_dir: the hand-downloaded archives of a tfds dataset (ImageNet).

    Returns:
        A dict ``{"top1", "top5", "examples", "crops"}``, and ``"skipped"``:
        the unreadable files of an image folder, each named in a warning.
    """
    if crops not in CROP_SCHEMES:
        raise ValueError(f"`crops` must be one of {tuple(CROP_SCHEMES)}. Received: crops={crops!r}")
    for name, value, minimum in (("batch_size", batch_size, 1), ("limit", limit, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
            raise ValueError(f"`{name}` must be an int >= {minimum}. Received: {name}={value!r}")
    if isinstance(model, (str, os.PathLike)):
        net = model_info.load_checkpoint(model)
    else:
        net = task.inference_model(model)
    size, variant, classes = int(net.input_shape[1]), model_lib.model_variant(net), int(net.output_shape[-1])
    if model_lib.includes_preprocessing(net):
        variant = None  # the model takes raw pixels

    examples, info = datasets.load_examples(data, split=split, data_dir=data_dir, manual_dir=manual_dir)
    if info.num_classes != classes:
        raise ValueError(
            f"The model has {classes} classes but {info.name!r} has {info.num_classes}. Received: data={str(data)!r}"
        )
    if limit is not None:
        examples = examples.take(limit)

    def views(image, label):
        if crops == 1:
            stack = augment.eval_transform(image, size)[None]
        else:
            stack = augment.multi_crop(image, size, scheme=CROP_SCHEMES[crops])
        return pipeline.preprocess(stack, variant), label

    images_per_batch = max(1, batch_size // crops)
    batches = examples.map(views, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(images_per_batch)
    # Called directly, not through `predict`: a model trained under a
    # distribution strategy would otherwise run this as a collective step.
    forward = tf.function(lambda x: net(x, training=False), reduce_retracing=True)

    top1 = top5 = count = 0
    for stacks, labels in batches.prefetch(tf.data.AUTOTUNE):
        n = stacks.shape[0]
        probabilities = forward(tf.reshape(stacks, (n * crops, size, size, 3)))
        mean = np.asarray(probabilities, dtype=np.float64).reshape(n, crops, classes).mean(axis=1)
        ranked = np.argsort(-mean, axis=1, kind="stable")[:, :5]
        labels = labels.numpy()
        top1 += int(np.sum(ranked[:, 0] == labels))
        top5 += int(np.sum(np.any(ranked == labels[:, None], axis=1)))
        count += n
    if not count:
        raise ValueError(f"The split has no images. Received: split={split!r}")
    return {"top1": top1 / count, "top5": top5 / count, "examples": count, "crops": crops, "skipped": info.skipped}


def print_evaluation(checkpoint, data="digits", split="validation", crops=1, batch_size=32, limit=None, data_dir=None, manual_dir=None, print_fn=print):
    """Evaluates a checkpoint and prints its top-1 and top-5 accuracy, and how many files it skipped."""
    scores = evaluate(checkpoint, data, split, crops, batch_size, limit, data_dir, manual_dir)
    skipped = f"; {scores['skipped']} unreadable file(s) skipped, named above" if scores["skipped"] else ""
    print_fn(
        f"{checkpoint} on {str(data)!r} {split!r} ({scores['examples']} images, {crops} crop(s) each): "
        f"top-1 {scores['top1']:.4f}, top-5 {scores['top5']:.4f}{skipped}"
    )
    return scores
