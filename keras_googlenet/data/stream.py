"""The endless training stream, which a resumed run enters at any position.

The stream is the training split pass after pass, each pass in an order set
by the seed and the pass's number alone (`datasets.ListedSplit.pass_in_order`),
so that position ``k`` of the stream is the same example in every run with
that seed. A run resumed after ``steps`` global batches starts at
``steps * global_batch_size``: the examples before it are skipped while
still encoded (a file name, a TFRecord), and none of the interrupted epoch's
is seen twice or left out. Each example carries its position, which seeds
its augmentation (`pipeline.make_dataset`).
"""

import random

import tensorflow as tf

from keras_googlenet.data import datasets


def training_stream(source, split="train", seed=None, start=0, shuffle_buffer=1024, **source_options):
    """``(dataset, info)``: ``(position, image, label)`` from position ``start`` on, forever.

    Args:
        source: ``"digits"``, an image folder or a tfds name, as in
            `datasets.load_examples`.
        split: the split to stream.
        seed: the int that sets every pass's order; ``None`` draws one, for
            a stream that no later run re-enters.
        start: the position to start at, from 0.
        shuffle_buffer: the records a tfds pass mixes at once (a list's
            pass is a full permutation).
        **source_options: `datasets.load_examples`' ``data_dir``,
            ``manual_dir`` and ``validation_fraction``.
    """
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ValueError(f"`start` must be an int >= 0. Received: start={start!r}")
    reader, info = datasets.open_source(source, split, **source_options)
    if not reader.count:
        raise ValueError(f"The number of {split!r} examples of {info.name!r} is unknown. Received: source={source!r}")
    seed = random.randrange(1 << 31) if seed is None else seed
    first_pass, offset = divmod(start, reader.count)
    items = (
        tf.data.Dataset.counter(first_pass)
        .flat_map(lambda pass_index: reader.pass_in_order(seed, pass_index, shuffle_buffer))
        .skip(offset)
    )
    positioned = tf.data.Dataset.zip(tf.data.Dataset.counter(start), items)
    dataset = positioned.map(
        lambda position, item: (position, *reader.decode(*item)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return reader.decoded(dataset), info
