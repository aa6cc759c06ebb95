"""Part 1: CPU inference latency of every runtime, against onnxruntime.

Keras `predict`, the model under `tf.function` with XLA off and on, and the
exported SavedModel, TFLite (fp32, fp16, int8; XNNPACK, thread count set) and
ONNX graphs, all from one random-weight model, on the same random batch. The
reference is onnxruntime on the exported ONNX graph; each ratio is a median
latency over onnxruntime's at the same batch size.

One more TFLite file is timed beside the export's int8 file: the same model
converted as the int8 export was before its softmax (and the paper variant's
LRN) stayed in float, fully integer with a uint8 output
(`INTEGER_SOFTMAX_INT8`). A goal compares the two at batch 1.
"""

import os
import tempfile

import numpy as np

from benchmarks import common

REFERENCE = "onnxruntime"
INT8 = "TFLite int8"
INTEGER_SOFTMAX_INT8 = "TFLite int8, integer softmax"
# The float softmax (and float LRN) may cost the int8 file at most 10% at batch 1.
INT8_LATENCY_LIMIT = 1.10


def run(image_size=224, batch_sizes=(1, 32), variant="bn", warmup=1, repeats=3, threads=None):
    """Times every runtime at each batch size; returns a part dict (see `common`)."""
    import keras_googlenet as kg

    threads = threads or common.cpu_threads()
    model = kg.GoogLeNet(variant=variant, input_shape=(image_size, image_size, 3), aux_heads=False)
    rng = np.random.default_rng(0)
    notes = [
        f"{variant!r} variant, random weights, {image_size} px, {threads} threads for TFLite (XNNPACK) and "
        "onnxruntime; TF uses its default pools (one intra-op thread per core).",
        "of peak pct: achieved GFLOP/s over the fp32 peak estimate above; not given for int8.",
    ]
    with tempfile.TemporaryDirectory() as workdir:
        runtimes, unavailable = _runtimes(model, workdir, image_size, threads, variant)
        rows = []
        for batch in batch_sizes:
            images = rng.uniform(-1.0, 1.0, (batch, image_size, image_size, 3)).astype("float32")
            timings = {}
            for name, make in runtimes.items():
                try:
                    fn = make(batch, images)
                    timings[name] = common.measure(fn, warmup, repeats)
                except Exception as error:  # noqa: BLE001 - one runtime's failure is a row, not a crash
                    timings[name] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
            reference = timings.get(REFERENCE)
            reference_s = reference["median_s"] if isinstance(reference, dict) else None
            for name in list(runtimes) + list(unavailable):
                timing = timings.get(name, unavailable.get(name))
                if isinstance(timing, dict):
                    r = common.row(name, batch, timing, reference_s)
                    r["gflops"] = common.achieved_gflops(r["images_per_s"], image_size)
                    rows.append(r)
                else:
                    rows.append(dict(common.unavailable(name, timing), batch=batch))
    peak = common.peak_gflops()["peak_gflops"]
    for r in rows:
        # int8 multiply-adds run on VNNI units, not against the fp32 peak.
        if "gflops" in r and peak and "int8" not in r["case"]:
            r["of_peak_pct"] = 100 * r["gflops"] / peak
    return {
        "title": f"1. CPU inference, {image_size} px",
        "reference": REFERENCE,
        "ratio": f"median latency / {REFERENCE} latency at the same batch (lower is faster); "
        "GFLOP/s counts 3 GFLOP per image (the paper's 1.5 G multiply-adds)",
        "columns": ["case", "batch", "median_ms", "images_per_s", "ratio", "gflops", "of_peak_pct"],
        "rows": rows,
        "goals": _goals(rows, batch_sizes),
        "notes": notes,
    }


def _runtimes(model, workdir, image_size, threads, variant):
    """Callables ``make(batch, images) -> fn`` by runtime name, and the reasons for those missing."""
    import tensorflow as tf

    def keras_predict(batch, images):
        return lambda: model.predict(images, batch_size=batch, verbose=0)

    def compiled(jit_compile):
        forward = tf.function(lambda x: model(x, training=False), jit_compile=jit_compile)

        def make(batch, images):
            x = tf.constant(images)
            return lambda: forward(x).numpy()

        return make

    runtimes = {
        "keras predict": keras_predict,
        "tf.function, XLA off": compiled(False),
        "tf.function, XLA on": compiled(True),
    }
    unavailable = {}
    exported = _export_all(model, workdir, image_size, variant)
    loaders = {
        "SavedModel": _savedmodel,
        "TFLite fp32": lambda path: _tflite(path, threads),
        "TFLite fp16": lambda path: _tflite(path, threads),
        INT8: lambda path: _tflite(path, threads),
        INTEGER_SOFTMAX_INT8: lambda path: _tflite(path, threads),
        REFERENCE: lambda path: _onnxruntime(path, threads),
    }
    for name, load in loaders.items():
        path = exported.get(name)
        if isinstance(path, str) and os.path.exists(path):
            runtimes[name] = load(path)
        else:
            unavailable[name] = path or "not exported"
    return runtimes, unavailable


def _export_all(model, workdir, image_size, variant):
    """Exports with `keras_googlenet.export.convert`; a path or a reason per runtime name.

    The public `export()` takes a checkpoint and writes the SavedModel once
    for every TFLite variant, as a user would; int8 is calibrated on the
    bundled photos, prepared as `predict` prepares them.
    """
    names = {"SavedModel": "savedmodel", "TFLite fp32": "tflite_fp32", "TFLite fp16": "tflite_fp16",
             INT8: "tflite_int8", INTEGER_SOFTMAX_INT8: "integer_softmax_int8", REFERENCE: "onnx"}
    reason = common.missing("keras_googlenet.export.convert")
    if reason:
        return dict.fromkeys(names, reason)
    from keras_googlenet.export import convert as export
    from keras_googlenet.data import images
    from keras_googlenet.artifacts import model_info

    checkpoint = os.path.join(workdir, "googlenet.keras")
    model.save(checkpoint)
    photos = images.prepare_images(images.sample_photos(), image_size, variant, raw_pixels=True)  # exports take pixels
    try:
        paths = export.export(
            checkpoint, os.path.join(workdir, "export"), formats="all", quantize=("fp32", "fp16", "int8"),
            calibration_data=photos,
        )
        paths["integer_softmax_int8"] = _integer_softmax_int8(
            paths["savedmodel"], export.representative_batches(photos, model_info.checkpoint_info(model)),
            os.path.join(workdir, "integer_softmax_int8.tflite"),
        )
    except Exception as error:  # noqa: BLE001 - reported per runtime, the Keras rows still run
        return dict.fromkeys(names, f"export failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
    return {name: paths.get(key, f"export() wrote no {key}") for name, key in names.items()}


def _integer_softmax_int8(saved_model, calibration, path):
    """The int8 file as `export` wrote it before issue 19: every op integer, uint8 pixels in, uint8 probabilities out."""
    import tensorflow as tf

    from keras_googlenet.export import convert as export

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=["serving_default"])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = export.representative_dataset(calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.uint8
    with open(path, "wb") as file:
        file.write(converter.convert())
    return path


def _savedmodel(path):
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    serve = loaded.signatures["serving_default"]

    def make(batch, images):
        x = tf.constant(images)
        return lambda: [t.numpy() for t in serve(x).values()]

    return make


def _tflite(path, threads):
    from ai_edge_litert.interpreter import Interpreter

    def make(batch, images):
        # The default op resolver applies the XNNPACK delegate to float and
        # int8 graphs; num_threads sets its thread pool.
        interpreter = Interpreter(model_path=path, num_threads=threads)
        (inp,) = interpreter.get_input_details()
        interpreter.resize_tensor_input(inp["index"], list(images.shape), strict=False)
        interpreter.allocate_tensors()
        x = _quantize(images, inp)
        (out,) = interpreter.get_output_details()

        def fn():
            interpreter.set_tensor(inp["index"], x)
            interpreter.invoke()
            return interpreter.get_tensor(out["index"])

        return fn

    return make


def _quantize(images, detail):
    """The input as the interpreter wants it: float, or int8 with its scale and zero point."""
    if detail["dtype"] == np.float32:
        return images
    scale, zero_point = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(images / scale + zero_point), info.min, info.max).astype(detail["dtype"])


def _onnxruntime(path, threads):
    import onnxruntime as ort

    def make(batch, images):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda: session.run(None, {name: images})

    return make


def _goals(rows, batch_sizes):
    def median(case, batch):
        return next((r["median_ms"] for r in rows if r["case"] == case and r["batch"] == batch and "median_ms" in r), None)

    goals = []
    for batch in batch_sizes:
        ratios = {r["case"]: r["ratio"] for r in rows if r["batch"] == batch and r.get("ratio") is not None}
        exported = {k: v for k, v in ratios.items() if k in ("SavedModel", "TFLite fp32")}
        best = min(exported.items(), key=lambda kv: kv[1]) if exported else (None, None)
        goals.append(
            common.goal(
                f"exported fp32 latency <= 1.0x onnxruntime, batch {batch} (best: {best[0]})",
                best[1], "<= 1.0", best[1] is not None and best[1] <= 1.0,
            )
        )
        fp32, int8 = median("TFLite fp32", batch), median(INT8, batch)
        ratio = int8 / fp32 if fp32 and int8 else None
        goals.append(
            common.goal(f"TFLite int8 / fp32 latency, batch {batch}", ratio, "<= 0.4", ratio is not None and ratio <= 0.4)
        )
    int8, integer = median(INT8, 1), median(INTEGER_SOFTMAX_INT8, 1)
    ratio = int8 / integer if int8 and integer else None
    goals.append(
        common.goal(
            f"{INT8} (the export) / {INTEGER_SOFTMAX_INT8} latency, batch 1", ratio,
            f"<= {INT8_LATENCY_LIMIT}", ratio is not None and ratio <= INT8_LATENCY_LIMIT,
        )
    )
    return goals
