"""Part 3: the input pipeline's images/s against the training step's consumption.

A temporary folder of JPEGs, written from the bundled photos as resized,
cropped and colour-jittered copies, is read by `keras_googlenet.data.pipeline`
with the paper's training augmentation. The ratio is the pipeline's images/s
over the training step's images/s measured in part 2 (target at least 3x:
training must never wait for input).
"""

import os
import tempfile

import numpy as np

from benchmarks import common

CLASSES = 4


def run(image_size=224, batch=32, images=256, warmup=1, repeats=3, batches_per_repeat=4,
        consumption_images_per_s=None, variant="bn", photos=None):
    """Times ``batches_per_repeat`` batches per repeat; returns a part dict (see `common`)."""
    reason = common.missing("keras_googlenet.data.pipeline")
    if reason:
        return {"available": False, "reason": reason}
    from keras_googlenet.data import pipeline

    with tempfile.TemporaryDirectory() as folder:
        write_jpegs(folder, images, photos)
        # As `training.train` reads it: shuffled, augmented, repeated.
        dataset, _ = pipeline.make_dataset(
            folder, "train", image_size, batch, training=True, variant=variant, seed=0, repeat=True
        )
        batches = iter(dataset)

        def read():
            for _ in range(batches_per_repeat):
                next(batches)

        timing = common.measure(read, warmup, repeats)
    r = common.row("pipeline (decode + augment)", batch * batches_per_repeat, timing)
    r["batch"] = batch
    r["images_per_s"] = batch * batches_per_repeat / timing["median_s"]
    r["median_ms"] = 1e3 * timing["median_s"] / batches_per_repeat  # per batch
    ratio = r["images_per_s"] / consumption_images_per_s if consumption_images_per_s else None
    r["ratio"] = ratio
    rows = [r]
    if consumption_images_per_s:
        rows.append({"case": "training step consumption (part 2)", "batch": batch,
                     "median_ms": 1e3 * batch / consumption_images_per_s,
                     "images_per_s": consumption_images_per_s, "ratio": 1.0})
    return {
        "title": f"3. Input pipeline, {images} JPEGs, {image_size} px, batch {batch}",
        "reference": "training consumption",
        "ratio": "pipeline images/s / training step images/s (higher is better)",
        "rows": rows,
        "goals": [common.goal("pipeline / training consumption", ratio, ">= 3.0", ratio is not None and ratio >= 3.0)],
        "notes": [f"`pipeline.make_dataset(training=True)` alone on {common.cpu_threads()} cores; in training it "
                  "shares them with the step. median ms is per batch."],
    }


def write_jpegs(folder, count, photos=None, seed=0):
    """Writes ``count`` JPEGs in ``CLASSES`` class folders: random crops, sizes and tints of the photos.

    ``photos``: image paths; the six bundled with keras_googlenet by default.
    """
    from PIL import Image

    from keras_googlenet.data import images

    rng = np.random.default_rng(seed)
    sources = [Image.open(path).convert("RGB") for path in photos or images.sample_photos()]
    for i in range(count):
        image = sources[i % len(sources)]
        width, height = image.size
        crop = rng.uniform(0.6, 1.0)
        left = int(rng.uniform(0, 1 - crop) * width)
        top = int(rng.uniform(0, 1 - crop) * height)
        box = (left, top, left + int(crop * width), top + int(crop * height))
        # Photo-like sizes around 500 px, as ImageNet's, so decoding costs what it would.
        size = int(rng.uniform(300, 640))
        copy = image.crop(box).resize((size, int(size * rng.uniform(0.7, 1.3))))
        tint = np.clip(np.asarray(copy, dtype=np.float32) * rng.uniform(0.8, 1.2, 3), 0, 255).astype(np.uint8)
        class_dir = os.path.join(folder, f"class_{i % CLASSES}")
        os.makedirs(class_dir, exist_ok=True)
        Image.fromarray(tint).save(os.path.join(class_dir, f"{i:05d}.jpg"), quality=90)
