"""Peak memory of `predict` on a folder, against the number of images in it.

    python -m benchmarks.predict_memory                  # 50 and 400 JPEGs of 256 px, a 224 px model
    python -m benchmarks.predict_memory --counts 20 80 --image-size 96

Each count runs `predict.print_predictions` on a folder of generated JPEGs
in a fresh Python, whose peak RSS (``ru_maxrss``) is reported: a streaming
`predict` holds one batch at a time, so the peak should not grow with the
number of images. The model is a random-weight GoogLeNet: memory does not
depend on the weights' values.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

from benchmarks import common

COUNTS = (50, 400)
PHOTO_SIZE = 256


def write_photos(folder, count, size=PHOTO_SIZE, seed=0):
    """``count`` JPEGs of ``size`` px: smooth colour gradients plus noise, like photos compress."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    for i in range(count):
        colours = rng.uniform(0, 255, (2, 3)).astype(np.float32)
        mix = (ramp[:, None, None] + ramp[None, :, None]) / 2
        pixels = colours[0] * (1 - mix) + colours[1] * mix + rng.normal(0, 12, (size, size, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(os.path.join(folder, f"photo_{i:04d}.jpg"), quality=90)


def write_model(path, image_size):
    import keras_googlenet as kg

    kg.GoogLeNet(variant="bn", input_shape=(image_size, image_size, 3), aux_heads=False).save(path)


def predict_folder(model, folder):
    """The child: classifies every image of ``folder`` as the `predict` command does."""
    from keras_googlenet.inference import predict

    lines = []
    start = time.perf_counter()
    predict.print_predictions(model, folder, top=5, print_fn=lines.append)
    return {"images": sum(line.endswith(":") for line in lines), "seconds": time.perf_counter() - start}


def run(counts=COUNTS, image_size=224, photo_size=PHOTO_SIZE):
    """Peak RSS of `predict` for each count of images; returns the rows and the growth per image."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="predict_memory_") as tmp:
        model = os.path.join(tmp, "googlenet.keras")
        write_model(model, image_size)
        for count in counts:
            folder = os.path.join(tmp, f"photos_{count}")
            os.mkdir(folder)
            write_photos(folder, count, photo_size)
            result = common.run_in_subprocess("benchmarks.predict_memory", "predict_folder", {"model": model, "folder": folder})
            rows.append({"count": count, **result})
    measured = [r for r in rows if r.get("available", True)]
    growth = None
    if len(measured) >= 2:
        first, last = measured[0], measured[-1]
        growth = (last["peak_rss_mib"] - first["peak_rss_mib"]) / (last["count"] - first["count"])
    return {"image_size": image_size, "photo_size": photo_size, "rows": rows, "mib_per_image": growth}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.predict_memory", description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=list(COUNTS), help="images per run (default: 50 400)")
    parser.add_argument("--image-size", type=int, default=224, help="the model's input size (default: 224)")
    parser.add_argument("--photo-size", type=int, default=PHOTO_SIZE, help="the generated JPEGs' size (default: 256)")
    args = parser.parse_args(argv)
    report = run(args.counts, args.image_size, args.photo_size)
    for row in report["rows"]:
        if row.get("available", True):
            print(f"{row['count']:>5} images: peak RSS {row['peak_rss_mib']:7.0f} MiB, {row['seconds']:6.1f} s")
        else:
            print(f"{row['count']:>5} images: not measured ({row['reason']})")
    if report["mib_per_image"] is not None:
        print(f"growth: {report['mib_per_image']:.2f} MiB per image")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
