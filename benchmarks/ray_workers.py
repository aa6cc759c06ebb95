"""Part 6: Ray Train, N workers against 1 on this machine, at the same global batch and cores.

Each case is one `ray_training.train_on_ray` run in a fresh subprocess (its
own local Ray cluster): 1 worker reserving every core, then N workers
reserving ``cores // N`` each, with the global batch split between them. A
Keras callback on the chief times each training step after the first
(which compiles); the ratio is the N-worker work rate over the 1-worker one.
On one machine the N workers share the cores the 1 worker had, so the figure
shows Ray's and the all-reduce's overhead only, never a speed-up: that needs
N machines (or GPUs), which this part cannot measure.
"""

import json
import os
import statistics
import tempfile
import time

from benchmarks import common

TITLE = "6. Ray Train workers on one machine"


def run(image_size=96, batch=32, variant="bn", workers=2, warmup=1, repeats=3):
    """Times 1 and ``workers`` Ray Train workers; returns a part dict (see `common`)."""
    reason = common.missing("ray.train")
    if reason:
        return {"title": TITLE, "available": False, "reason": reason}
    cores = common.cpu_threads()
    timings = {}
    for count in (1, workers):
        timings[count] = common.run_in_subprocess(
            "benchmarks.ray_workers", "ray_steps",
            {"workers": count, "cpus_per_worker": max(1, cores // count), "image_size": image_size,
             "batch": batch, "variant": variant, "warmup": warmup, "repeats": repeats},
        )
    return _part(timings, batch, image_size, cores)


def _part(timings, batch, image_size, cores):
    """The part dict from ``{workers: ray_steps result}``; the first entry is the reference."""
    unavailable = [t["reason"] for t in timings.values() if not t.get("available", True)]
    if unavailable:
        return {"title": TITLE, "available": False, "reason": unavailable[0]}
    (one, reference), *_ = timings.items()
    rows = []
    for count, timing in timings.items():
        r = common.row(f"Ray Train, {count} worker(s) x {timing['cpus_per_worker']} CPU", batch, timing, None)
        r["ratio"] = reference["median_s"] / timing["median_s"]  # work rate over the 1-worker rate
        r["per_worker_batch"] = batch // count
        r["run_s"] = timing["run_s"]
        r["run_ratio"] = timing["run_s"] / reference["run_s"]
        rows.append(r)
    ratio = rows[-1]["ratio"]
    return {
        "title": f"{TITLE}, {image_size} px, global batch {batch}, {cores} cores",
        "reference": f"{one} worker",
        "ratio": "images/s / 1-worker images/s at the same global batch and cores (higher is better)",
        "columns": ["case", "batch", "per_worker_batch", "median_ms", "min_ms", "images_per_s", "ratio", "run_s", "run_ratio"],
        "rows": rows,
        "goals": [common.goal(f"{rows[-1]['case']} work rate / 1 worker", ratio, ">= 0.8", ratio >= 0.8,
                              "the cost of the all-reduce and of N processes on the same cores")],
        "notes": [
            "Each case is a fresh local Ray cluster; run_s is the whole train_on_ray call (Ray's start, the "
            "workers' start, compiling, the steps), run_ratio its ratio to the 1-worker call.",
            "The workers share this machine's cores: this shows the overhead of Ray Train and of the "
            "all-reduce over the loopback, not the speed-up of N machines.",
        ],
    }


def ray_steps(workers, cpus_per_worker, image_size, batch, variant, warmup, repeats):
    """Median time of a training step on the chief of ``workers`` Ray Train workers, in this process."""
    from keras_googlenet.training import ray as ray_training

    with tempfile.TemporaryDirectory() as folder:
        times_file = os.path.join(folder, "step_times.json")
        start = time.perf_counter()
        ray_training.train_on_ray(
            workers, cpus_per_worker=cpus_per_worker, max_failures=0, output_dir=os.path.join(folder, "run"),
            epochs=1, steps_per_epoch=1 + warmup + repeats, batch_size=max(1, batch // workers),
            image_size=image_size, variant=variant, validation_split=None, verbose=0,
            callbacks=[_step_timer(times_file)],
        )
        run_s = time.perf_counter() - start
        with open(times_file) as f:
            intervals = json.load(f)[warmup:]  # the first step (compiling) is not among them
    return {"median_s": statistics.median(intervals), "times_s": intervals, "run_s": run_s,
            "cpus_per_worker": cpus_per_worker}


def _step_timer(path):
    """A Keras callback that writes, on the chief, the seconds between consecutive step ends."""
    import keras

    class StepTimer(keras.callbacks.Callback):
        # Defined here, so that Ray ships it by value to workers that may not
        # import `benchmarks`.
        def on_train_begin(self, logs=None):
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

        def on_train_end(self, logs=None):
            task = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task", {})
            if task.get("index", 0) == 0:
                with open(path, "w") as f:
                    json.dump([b - a for a, b in zip(self.ends, self.ends[1:])], f)

    return StepTimer()
