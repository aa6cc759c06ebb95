"""The tf.data input pipeline: source, transform, scaling, batches for the three heads."""

import tensorflow as tf

from keras_googlenet.model import architecture, scaling, task
from keras_googlenet.data import augment, datasets, stream


def make_dataset(
    source,
    split="train",
    image_size=224,
    batch_size=32,
    training=None,
    variant="paper",
    seed=None,
    data_dir=None,
    manual_dir=None,
    shuffle_buffer=1024,
    repeat=False,
    drop_remainder=None,
    cache=False,
    validation_fraction=0.2,
    crop_area_range=augment.CROP_AREA_RANGE,
    start=0,
):
    """Batches of preprocessed images with one target per GoogLeNet head.

    Training (``split == "train"`` by default) shuffles and applies the
    paper's augmentation (`augment.train_transform`); otherwise each image is
    resized and centre-cropped (`augment.eval_transform`). Images are then
    scaled by `preprocess_input` for ``variant``. With a seed, the order and
    every augmentation are the same from run to run: each element's random
    ops are seeded by ``(seed, its position in the shuffled stream)``.

    Args:
        source: ``"digits"``, an image folder or a tfds name; see
            `datasets.load_examples`.
        split: the split to read, ``"train"`` or ``"validation"`` (any split
            name for tfds).
        image_size: the height and width of the images.
        batch_size: the number of images per batch (the global batch size
            under a distribution strategy).
        training: whether to shuffle and augment; ``split == "train"`` when
            ``None``.
        variant: ``"paper"`` or ``"bn"``, the model variant whose
            `preprocess_input` scaling to apply; ``None`` for raw pixels in
            [0, 255], for a model built with ``include_preprocessing=True``.
        seed: an int for a reproducible order and augmentation, or ``None``.
        data_dir: where tfds keeps its datasets.
        manual_dir: the hand-downloaded archives of a tfds dataset (ImageNet).
        shuffle_buffer: the number of examples the shuffle mixes at once.
        repeat: whether to repeat forever (then pass ``steps_per_epoch`` to fit).
        drop_remainder: whether to drop the last, smaller batch; ``training``
            when ``None``.
        cache: ``False``, ``True`` (decoded images kept in memory) or a file
            path prefix. A cached source is mixed only by the shuffle buffer.
        validation_fraction: the held-out fraction when the source has no
            validation split.
        crop_area_range: the area range of the training crops, as a fraction
            of the image; the paper's (0.08, 1.0) by default.
        start: with ``training`` and ``repeat`` (and no ``cache``), the
            number of examples of the stream to skip: a run resumed after
            ``steps`` batches passes ``steps * batch_size``, and gets the
            batches that an uninterrupted run would have had next
            (`stream.training_stream`).

    Returns:
        ``(dataset, info)``: batches of ``(images, {"main": y, "aux1": y,
        "aux2": y})`` with float32 images ``(batch, image_size, image_size,
        3)`` and int64 labels ``(batch,)``, and the source's
        `datasets.DatasetInfo`.
    """
    for argument, value in (("image_size", image_size), ("batch_size", batch_size), ("shuffle_buffer", shuffle_buffer)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{argument}` must be a positive int. Received: {argument}={value!r}")
    if variant is not None and variant not in architecture.VARIANTS:
        raise ValueError(f"`variant` must be one of {sorted(architecture.VARIANTS)}. Received: variant={variant!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"`seed` must be an int or None. Received: seed={seed!r}")
    if not isinstance(cache, (bool, str)):
        raise ValueError(f"`cache` must be True, False or a file path prefix. Received: cache={cache!r}")
    low, high = crop_area_range
    if not 0 < low <= high <= 1:
        raise ValueError(
            "`crop_area_range` must be (low, high) with 0 < low <= high <= 1. "
            f"Received: crop_area_range={crop_area_range!r}"
        )
    training = split == "train" if training is None else training
    drop_remainder = training if drop_remainder is None else drop_remainder

    if start and not (training and repeat and cache is False):
        raise ValueError(f"`start` needs the endless training stream: training and repeat, without cache. Received: start={start!r}")
    options = {"data_dir": data_dir, "manual_dir": manual_dir, "validation_fraction": validation_fraction}
    if training and repeat and cache is False:
        # Every pass in an order of its own, which a resumed run re-enters at `start`.
        dataset, info = stream.training_stream(source, split, seed, start, shuffle_buffer, **options)
    else:
        dataset, info = datasets.load_examples(source, split=split, seed=seed, shuffle=training and not cache, **options)
        if cache is not False:
            dataset = dataset.cache("" if cache is True else cache)
        if training:
            dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            dataset = dataset.repeat()
        if training:
            dataset = dataset.enumerate().map(lambda position, example: (position, *example))

    if training:

        def transform(position, image, label):
            element_seed = None if seed is None else tf.stack([tf.constant(seed, tf.int64), position])
            return augment.train_transform(image, image_size, seed=element_seed, area_range=crop_area_range), label

        # The position in the stream seeds each element, so a repeated image
        # gets a new crop in every epoch.
        dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True if seed is not None else None)
    else:
        dataset = dataset.map(
            lambda image, label: (augment.eval_transform(image, image_size), label),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(
        lambda images, labels: (preprocess(images, variant), {name: labels for name in task.OUTPUT_NAMES}),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return dataset.prefetch(tf.data.AUTOTUNE), info


def preprocess(images, variant):
    """`keras_googlenet.preprocess_input` as TF ops, for use inside tf.data.

    ``variant=None`` leaves the pixels in [0, 255], for a model built with
    ``include_preprocessing=True``.

    Keras ops follow the Keras backend, and tf.data needs TF ops whatever the
    backend: the same `scaling.scale_pixels` runs on TF tensors here.
    """
    images = tf.cast(images, tf.float32)
    return images if variant is None else scaling.scale_pixels(images, variant)
