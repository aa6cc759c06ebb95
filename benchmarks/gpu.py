"""Part 5 (optional): our model on the Keras JAX backend against PyTorch, same GPU.

For a GPU machine with JAX and PyTorch but no TensorFlow:

    python -m benchmarks.gpu [--quick] [--json runs/gpu.json] [--batch 256] [--no-compile]

Both sides use bfloat16 mixed precision: Keras' ``mixed_bfloat16`` policy
with XLA, and PyTorch's autocast with channels_last memory, eager and under
`torch.compile`. Training is one SGD (momentum 0.9) step on the three-head
'bn' model, inference the main head alone, both on data already on the
device. Each framework runs in its own subprocess, so neither holds the
other's GPU memory (JAX preallocates most of it). Ratios are images/s over
PyTorch eager AMP's (higher is faster). Nothing here imports TensorFlow;
each child reports whether it was imported anyway.
"""

import argparse
import json
import os
import sys
import time

from benchmarks import common

REFERENCE = "pytorch AMP, channels_last"
# benchmarks.torch_googlenet reads the filter counts from keras_googlenet,
# which imports Keras: on its torch backend Keras loads neither TF nor JAX.
TORCH_ENV = {"KERAS_BACKEND": "torch"}
CASES = ("keras jax", REFERENCE, "pytorch AMP, channels_last, torch.compile")


def run(image_size=224, batch=256, warmup=2, repeats=10, cases=CASES, modes=None, progress=None):
    """Runs each case in each ``(mode, batch)`` of ``modes``; returns a part dict (see `common`).

    ``modes`` defaults to training at ``batch`` and inference at 1 and
    ``batch``. ``progress``, if given, gets the part dict after each mode, so
    a run cut short still leaves its finished rows.
    """
    rows = []
    for mode, batch_size in modes or (("train", batch), ("infer", 1), ("infer", batch)):
        kwargs = {"image_size": image_size, "batch": batch_size, "warmup": warmup, "repeats": repeats, "mode": mode}
        results = {}
        for case in cases:
            if case == "keras jax":
                results[case] = common.run_in_subprocess(
                    "benchmarks.gpu", "keras_jax", kwargs, env={"KERAS_BACKEND": "jax"}
                )
            else:
                results[case] = common.run_in_subprocess(
                    "benchmarks.gpu", "torch_amp", dict(kwargs, compile="torch.compile" in case), env=TORCH_ENV
                )
        reference = results.get(REFERENCE, {})
        for case, result in results.items():
            name = f"{mode}: {case}"
            if not result.get("available", True):
                rows.append(dict(common.unavailable(name, result["reason"]), batch=batch_size))
                continue
            r = common.row(name, batch_size, result, None, device=result["device"],
                           tensorflow_imported=result["tensorflow_imported"])
            r["ratio"] = reference["median_s"] / result["median_s"] if "median_s" in reference else None
            rows.append(r)
        if progress:
            progress(_part(rows, image_size))
    return _part(rows, image_size)


def _part(rows, image_size):
    devices = sorted({r["device"] for r in rows if "device" in r})
    return {
        "title": f"5. GPU, bfloat16 mixed precision, {image_size} px, {', '.join(devices) or 'no device'}",
        "reference": REFERENCE,
        "ratio": f"images/s / {REFERENCE} images/s in the same mode and batch (higher is faster)",
        "columns": ["case", "batch", "median_ms", "images_per_s", "ratio"],
        "rows": rows,
        "goals": [],
        "notes": ["Training: the three-head 'bn' model, SGD momentum 0.9, loss weights 1 / 0.3 / 0.3. "
                  "Inference: main head only. Inputs already on the device; each time ends with a device sync."],
    }


def keras_jax(image_size, batch, warmup, repeats, mode):
    """Our model on the Keras JAX backend under ``mixed_bfloat16``: one step or one forward pass."""
    if os.environ.get("KERAS_BACKEND") != "jax":
        raise RuntimeError("keras_jax needs KERAS_BACKEND=jax set before Keras is imported")
    import jax
    import keras
    import numpy as np

    import keras_googlenet as kg

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    rng = np.random.default_rng(0)
    images = jax.device_put(rng.uniform(-1.0, 1.0, (batch, image_size, image_size, 3)).astype("float32"))
    labels = jax.device_put(rng.integers(0, 1000, (batch,)).astype("int32"))
    if mode == "train":
        model = kg.GoogLeNet(variant="bn", input_shape=(image_size, image_size, 3))
        optimizer = keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)
        kg.compile_googlenet(model, optimizer=optimizer, jit_compile=True)
        targets = {name: labels for name in model.output_names}
        # train_on_batch returns the losses as Python floats: a device sync.
        timing = common.measure(lambda: model.train_on_batch(images, targets), warmup, repeats)
    else:
        model = kg.GoogLeNet(variant="bn", input_shape=(image_size, image_size, 3), aux_heads=False)
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        forward = jax.jit(lambda t, n, x: model.stateless_call(t, n, x, training=False)[0])
        timing = common.measure(lambda: forward(trainable, non_trainable, images).block_until_ready(), warmup, repeats)
    timing["device"] = str(jax.devices()[0].device_kind)
    timing["tensorflow_imported"] = "tensorflow" in sys.modules
    return timing


def torch_amp(image_size, batch, warmup, repeats, mode, compile=False):
    """The torchvision-equivalent GoogLeNet with bfloat16 autocast and channels_last."""
    import torch

    from benchmarks.torch_googlenet import torchvision_googlenet

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    model = torchvision_googlenet(num_classes=1000, aux_logits=mode == "train").to(device, memory_format=torch.channels_last)
    images = torch.empty(batch, 3, image_size, image_size, device=device).uniform_(-1.0, 1.0)
    images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 1000, (batch,), device=device)
    cross_entropy = torch.nn.CrossEntropyLoss()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if mode == "train":
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def forward_loss(x, y):
            with torch.autocast(device, dtype=torch.bfloat16):
                main, aux2, aux1 = model(x)
                return cross_entropy(main, y) + 0.3 * (cross_entropy(aux1, y) + cross_entropy(aux2, y))

        forward_loss = torch.compile(forward_loss) if compile else forward_loss

        def step():
            optimizer.zero_grad(set_to_none=True)
            forward_loss(images, labels).backward()
            optimizer.step()
            sync()
    else:
        model.eval()
        forward = torch.compile(model) if compile else model

        def step():
            with torch.inference_mode(), torch.autocast(device, dtype=torch.bfloat16):
                forward(images)
            sync()

    timing = common.measure(step, warmup, repeats)
    timing["device"] = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    timing["tensorflow_imported"] = "tensorflow" in sys.modules
    return timing


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 warm-up and 3 repeats instead of 2 and 10")
    parser.add_argument("--json", default=os.path.join("runs", "gpu.json"), help="where to write the JSON report")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=256, help="the training and large inference batch (default: 256)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile case")
    args = parser.parse_args(argv)
    settings = {"warmup": 1, "repeats": 3} if args.quick else {"warmup": 2, "repeats": 10}
    cases = [c for c in CASES if not (args.no_compile and "torch.compile" in c)]
    report = {"mode": "quick" if args.quick else "full", "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              **settings, "machine": common.machine_info(), "parts": []}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)

    def write(part):
        report["parts"] = [dict(part, part="gpu")]
        report["load_average_end"] = os.getloadavg()
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)

    write(common.run_part("gpu", run, image_size=args.image_size, batch=args.batch, cases=cases, progress=write, **settings))
    print(common.markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
