"""Part 7: what an epoch-end backup costs training, to a local folder and to a bucket.

One subprocess builds GoogLeNet at ``image_size`` (1000 classes, SGD with
momentum: the backup holds the weights and the optimizer's slots), starts the
GCS emulator (fake-gcs-server, from the ``[test]`` extra, as the tests do) on
127.0.0.1, and times, ``repeats`` times each:

- the local write, the reference: `EpochBackup.on_epoch_end` (the weights
  and the optimizer's state to an h5 file, renamed into place);
- the upload in the foreground: `RunMirror.push` of that backup to the
  emulator, what training waited for before uploads went to the background;
- the wait with the upload in the background: `PushAtEpochEnd.on_epoch_end`,
  which returns once the upload has started, after waiting for the previous
  one. Here the previous one has finished (as after an epoch longer than an
  upload); an epoch shorter than the upload waits for the difference.

The goal: training waits for the upload no longer than the local write takes.
The emulator is on the loopback, in memory: a real bucket adds the network
(tens of MB at the machine's upload rate) to the upload, not to the wait.
"""

import os
import pathlib
import statistics
import sys
import tempfile

from benchmarks import common


def run(image_size=224, variant="bn", warmup=1, repeats=3, classes=1000):
    """Runs the timings in one subprocess; returns a part dict (see `common`)."""
    result = common.run_in_subprocess(
        "benchmarks.backup", "backup_times",
        {"image_size": image_size, "variant": variant, "warmup": warmup, "repeats": repeats, "classes": classes},
    )
    if not result.get("available", True):
        return result
    write_s = result["write"]["median_s"]
    rows = [
        common.row("local write (EpochBackup)", 1, result["write"], write_s, size_mb=result["size_mb"]),
        common.row("upload in the foreground (RunMirror.push)", 1, result["upload"], write_s, size_mb=result["size_mb"]),
        common.row("wait, upload in the background (PushAtEpochEnd)", 1, result["wait"], write_s, size_mb=result["size_mb"]),
    ]
    for r in rows:
        r.pop("images_per_s")
    waited = result["wait"]["median_s"]
    return {
        "title": f"7. Epoch-end backup of a {image_size} px GoogLeNet ({result['size_mb']:.0f} MB) to a local folder and to a bucket",
        "reference": "the local write",
        "ratio": "time / the local write's time (lower is better)",
        "columns": ["case", "size_mb", "median_ms", "min_ms", "ratio"],
        "rows": rows,
        "goals": [common.goal("training's wait for the upload / the local write", waited / write_s, "<= 1", waited <= write_s)],
        "notes": [
            "The bucket is fake-gcs-server on 127.0.0.1, in memory: a real one adds the network to the upload "
            "(about 8 s for 100 MB at 100 Mbit/s), which training does not wait for unless an epoch is shorter.",
            f"Each epoch end uploads latest.weights.h5 and previous.weights.h5 (the one before, renamed): "
            f"{result['uploaded_mb']:.0f} MB in the bucket. Peak RSS {result['peak_rss_mib']:.0f} MiB.",
        ],
    }


def backup_times(image_size, variant, warmup, repeats, classes=1000):
    """Median times of the local backup write, its upload, and the wait with the upload in the background."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "support"))
    import keras
    import object_stores  # the tests' emulator starter

    from keras_googlenet.model.googlenet import GoogLeNet
    from keras_googlenet.storage import mirror, objects
    from keras_googlenet.training import checkpointing, remote_output

    model = GoogLeNet(variant=variant, input_shape=(image_size, image_size, 3), classes=classes)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)  # its slots: what a backup after a step holds
    with tempfile.TemporaryDirectory() as tmp:
        server = object_stores.gcs(tmp)
        os.environ.update(server.env)
        try:
            objects.filesystem("gs://bench").mkdir("bench")
            run_dir = pathlib.Path(tmp, "run")
            backup = checkpointing.EpochBackup(run_dir / "backup")
            backup.set_model(model)
            runs = mirror.RunMirror("gs://bench/run", run_dir)
            push = remote_output.PushAtEpochEnd(runs, None)
            write = common.measure(lambda: backup.on_epoch_end(0), warmup, repeats)

            def upload():
                backup.on_epoch_end(0)  # a new backup to upload, written untimed
                return common.measure(runs.push, 0, 1)["times_s"][0]

            def background():
                backup.on_epoch_end(0)
                waited = common.measure(lambda: push.on_epoch_end(0), 0, 1)["times_s"][0]
                runs.wait()  # the next epoch is longer than the upload
                return waited

            upload_times = [upload() for _ in range(warmup + repeats)][warmup:]
            wait_times = [background() for _ in range(warmup + repeats)][warmup:]
            uploaded = listing_size_mb("gs://bench/run/backup")
            size_mb = sum(p.stat().st_size for p in (run_dir / "backup").glob("*.h5")) / 2**20 / 2  # latest and previous
        finally:
            server.stop()
    return {
        "write": write,
        "upload": {"median_s": statistics.median(upload_times), "times_s": upload_times},
        "wait": {"median_s": statistics.median(wait_times), "times_s": wait_times},
        "size_mb": size_mb,
        "uploaded_mb": uploaded,
    }


def listing_size_mb(uri):
    """The MB under ``uri`` in the bucket: the test that the uploads happened."""
    from keras_googlenet.storage import objects

    fs = objects.filesystem(uri)
    return sum(fs.info(path)["size"] for path in fs.find(objects.key(uri))) / 2**20
