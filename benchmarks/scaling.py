"""Part 4: MirroredStrategy on 1 and 2 logical CPU devices at the same global batch.

One subprocess splits the CPU into two logical devices with
`cluster.configure_cpu_devices` (this must happen before TensorFlow
initialises, hence the subprocess) and times a `fit` step, compiled as
`training.train` compiles it, under a MirroredStrategy over the first device,
then under `cluster.make_strategy("mirrored")` over both. The
logical devices share one intra-op thread pool, so the 1-replica case is not
slowed by the split. The ratio is the 2-replica work rate (images/s) over the
1-replica one; the goal is at least 0.9, i.e. replication costs under 10%.
"""

from benchmarks import common


def run(image_size=224, batch=32, variant="bn", warmup=1, repeats=3):
    """Runs both strategies in one subprocess; returns a part dict (see `common`)."""
    result = common.run_in_subprocess(
        "benchmarks.scaling", "mirrored_steps",
        {"image_size": image_size, "batch": batch, "variant": variant, "warmup": warmup, "repeats": repeats},
    )
    if not result.get("available", True):
        return result
    one = result["replicas"]["1"]
    rows = []
    for replicas, timing in result["replicas"].items():
        r = common.row(f"MirroredStrategy, {replicas} replica(s)", batch, timing, None)
        r["ratio"] = one["median_s"] / timing["median_s"]  # work rate over the 1-replica rate
        r["per_replica_batch"] = batch // int(replicas)
        rows.append(r)
    ratio = rows[-1]["ratio"]
    return {
        "title": f"4. Replica scaling on CPU, {image_size} px, global batch {batch}",
        "reference": "1 replica",
        "ratio": "images/s / 1-replica images/s at the same global batch (higher is better)",
        "columns": ["case", "batch", "per_replica_batch", "median_ms", "min_ms", "images_per_s", "ratio"],
        "rows": rows,
        "goals": [common.goal("2-replica work rate / 1-replica", ratio, ">= 0.9", ratio >= 0.9)],
        "notes": [f"Both strategies in one process with 2 logical CPU devices over {result['threads']} cores; "
                  f"peak RSS {result['peak_rss_mib']:.0f} MiB."],
    }


def mirrored_steps(image_size, batch, variant, warmup, repeats):
    """Median `fit` step time under MirroredStrategy over 1 and over 2 logical CPUs."""
    import tensorflow as tf

    from keras_googlenet.training import cluster

    from benchmarks.training import fit_step_times

    cluster.configure_cpu_devices(2)
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    timings = {}
    for replicas, strategy in ((1, tf.distribute.MirroredStrategy(devices[:1])), (2, cluster.make_strategy("mirrored"))):
        timings[str(replicas)] = fit_step_times(strategy, image_size, batch, variant, warmup, repeats)
    return {"replicas": timings, "threads": common.cpu_threads(), "devices": devices}
