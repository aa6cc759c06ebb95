"""Part 2: one CPU training step with the three heads, against PyTorch.

Our step is `model.fit` on what `keras_googlenet.training.run.train` builds: its
strategy choice, `GoogLeNet`, `make_optimizer` (SGD momentum 0.9, weight
decay 2e-4) and `compile_googlenet` (losses weighted 1 / 0.3 / 0.3). The
reference is the torchvision-equivalent GoogLeNet of
`benchmarks.torch_googlenet` with the same batch, optimizer and loss weights.
Each runs in its own subprocess, so each peak RSS is its own. The ratio is
images/s over PyTorch's (higher is faster).
"""

import statistics
import time

from benchmarks import common

REFERENCE = "pytorch"
OURS = "keras train path (jit_compile auto)"
XLA = "keras train path, XLA on"
CASES = (OURS, XLA, REFERENCE)
LEARNING_RATE = 0.01
# Those of keras_googlenet.training.run.make_optimizer (Section 6 and the Caffe solver).
MOMENTUM = 0.9
WEIGHT_DECAY = 2e-4


def run(image_size=224, batch=32, variant="bn", warmup=1, repeats=3, cases=CASES):
    """Runs each case's steps in a subprocess; returns a part dict (see `common`)."""
    kwargs = {"image_size": image_size, "batch": batch, "warmup": warmup, "repeats": repeats}
    calls = {
        OURS: ("keras_step", dict(kwargs, variant=variant, jit_compile="auto"), None),
        XLA: ("keras_step", dict(kwargs, variant=variant, jit_compile=True), None),
        # benchmarks.torch_googlenet reads the filter counts from keras_googlenet,
        # which imports Keras: its torch backend keeps TensorFlow out of this RSS.
        REFERENCE: ("torch_step", kwargs, {"KERAS_BACKEND": "torch"}),
    }
    results = {case: common.run_in_subprocess("benchmarks.training", *calls[case]) for case in cases}
    reference_s = results.get(REFERENCE, {}).get("median_s")
    rows = []
    for name, result in results.items():
        if not result.get("available", True):
            rows.append(common.unavailable(name, result["reason"]))
            continue
        r = common.row(name, batch, result, None, peak_rss_mib=result["peak_rss_mib"], threads=result["threads"],
                       xla=result.get("jit_compile"))
        # Throughput ratio: our img/s over the reference's, so > 1 means faster.
        r["ratio"] = reference_s / result["median_s"] if reference_s else None
        rows.append(r)
    ours = next((r for r in rows if r["case"] == OURS), {})
    ratio = ours.get("ratio")
    xla = next((r for r in rows if r["case"] == XLA), {}).get("ratio")
    why = f"with XLA on: {xla:.2f}x" if xla is not None else ""
    return {
        "title": f"2. CPU training step, {image_size} px, batch {batch}, three heads",
        "reference": REFERENCE,
        "ratio": "images/s / PyTorch images/s (higher is faster)",
        "columns": ["case", "batch", "median_ms", "min_ms", "images_per_s", "ratio", "peak_rss_mib", "threads", "xla"],
        "rows": rows,
        "goals": [common.goal("Keras training img/s / PyTorch img/s", ratio, ">= 1.0", ratio is not None and ratio >= 1.0, why)],
        "notes": [f"{variant!r} variant (torchvision's architecture), random weights and labels, SGD lr "
                  f"{LEARNING_RATE} momentum {MOMENTUM} weight decay {WEIGHT_DECAY}, loss weights 1 / 0.3 / 0.3."],
        "consumption_images_per_s": ours.get("images_per_s"),
    }


def keras_step(image_size, batch, variant, warmup, repeats, jit_compile):
    """The median step time of `model.fit` on the model, optimizer and strategy `train` builds."""
    from keras_googlenet.training import cluster

    timing = fit_step_times(cluster.make_strategy("auto"), image_size, batch, variant, warmup, repeats, jit_compile)
    timing["threads"] = common.cpu_threads()
    return timing


def fit_step_times(strategy, image_size, batch, variant, warmup, repeats, jit_compile="auto"):
    """Times `fit` steps as `keras_googlenet.training.run.train` compiles them, on one in-memory batch.

    The same `GoogLeNet`, `make_optimizer` (SGD momentum 0.9, weight decay)
    and `compile_googlenet` as `train`, under ``strategy``; the batch is
    fixed so that the input pipeline (part 3) is not part of the step.
    """
    import numpy as np
    import tensorflow as tf

    import keras_googlenet as kg
    from keras_googlenet.training import run as training

    rng = np.random.default_rng(0)
    images = rng.uniform(-1.0, 1.0, (batch, image_size, image_size, 3)).astype("float32")
    labels = rng.integers(0, 1000, (batch,))
    with strategy.scope():
        model = kg.GoogLeNet(variant=variant, input_shape=(image_size, image_size, 3))
        optimizer = training.make_optimizer(LEARNING_RATE)
        kg.compile_googlenet(model, optimizer=optimizer, jit_compile=jit_compile)
    targets = {name: labels for name in model.output_names}
    dataset = tf.data.Dataset.from_tensors((images, targets)).repeat()
    timer = _StepTimer()
    model.fit(dataset, epochs=1, steps_per_epoch=warmup + repeats, callbacks=[timer], verbose=0)
    times = timer.times[warmup:]
    return {"median_s": statistics.median(times), "times_s": times, "jit_compile": bool(model.jit_compile),
            "replicas": strategy.num_replicas_in_sync}


def _StepTimer():
    import keras

    class StepTimer(keras.callbacks.Callback):
        """Wall time of each training step; reading the loss waits for the step to finish."""

        def __init__(self):
            super().__init__()
            self.times = []

        def on_train_batch_begin(self, batch, logs=None):
            self._start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            float(logs["loss"])
            self.times.append(time.perf_counter() - self._start)

    return StepTimer()


def torch_step(image_size, batch, warmup, repeats):
    """The median time of one SGD step of the torchvision-equivalent GoogLeNet."""
    import torch

    from benchmarks.torch_googlenet import torchvision_googlenet

    torch.manual_seed(0)
    torch.set_num_threads(common.cpu_threads())
    # TensorFlow flushes denormals to zero on CPU; so does the reference here,
    # or tiny gradients of a random-weight model could slow only PyTorch.
    torch.set_flush_denormal(True)
    model = torchvision_googlenet(num_classes=1000, aux_logits=True, transform_input=False).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    images = torch.empty(batch, 3, image_size, image_size).uniform_(-1.0, 1.0)
    labels = torch.randint(0, 1000, (batch,))
    cross_entropy = torch.nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        main, aux2, aux1 = model(images)  # torchvision's order: main, aux2, aux1
        loss = cross_entropy(main, labels) + 0.3 * (cross_entropy(aux1, labels) + cross_entropy(aux2, labels))
        loss.backward()
        optimizer.step()
        return loss.item()

    timing = common.measure(step, warmup, repeats)
    timing["threads"] = torch.get_num_threads()
    return timing
