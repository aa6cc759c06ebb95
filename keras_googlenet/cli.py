"""The `keras-googlenet` command line: argument parsing over the library.

Each subcommand has one ``_add_<command>(subparsers)`` function that declares
its options and calls `_finish` with a small handler calling the library.
Bad input (ValueError, OSError) becomes one line on stderr naming the --flag,
exit status 2; any other exception one line and exit status 1. ``--debug``
shows the traceback and TensorFlow's start-up logs instead.

Nothing heavy is imported here: ``--help`` and argument errors must answer
in well under a second, so each handler imports its library module, and a
command whose arguments the library can check without TensorFlow (`train`)
passes that check to `_finish`, which runs before TensorFlow is imported.
"""

import argparse
import contextlib
import os
import re
import sys

from keras_googlenet import defaults
from keras_googlenet.training import preemption

_RAY_EXTRA = 'pip install "keras-googlenet[ray]"'
_DEBUG_HELP = "show the full traceback of an error, and TensorFlow's start-up logs"


class _OneLineErrorParser(argparse.ArgumentParser):
    """Reports a usage error in one line (argparse prints the whole usage first)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _finish(parser, handler, *, check=None, uri_arguments=(), reads=(), writes=(), **library_names):
    """Sets the handler, its light check, and the flag that each library argument name stands for.

    ``check(args)``, if given, runs before TensorFlow is imported (seconds):
    it imports only light library modules, so that bad values answer at once.
    ``library_names`` maps a library argument that differs from its option's
    dest to that dest, e.g. ``formats="format"``: a library ValueError saying
    ``Received: formats=...`` is then shown as ``Received: --format=...``.
    ``uri_arguments`` name the path arguments that the library itself takes
    as gs:// or s3:// URIs; ``reads`` and ``writes`` those that may be URIs
    too, fetched before the handler runs and uploaded after it succeeded
    (`_staged`).
    """
    flags = {}
    for action in parser._actions:
        if action.option_strings:
            flags[action.dest] = max(action.option_strings, key=len)
        else:
            flags[action.dest] = action.metavar or action.dest.upper()
    flags.update({name: flags[dest] for name, dest in library_names.items()})
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
    check = _local_paths_first(check, (*uri_arguments, *reads, *writes))
    parser.set_defaults(handler=handler, check=check, flags=flags, reads=reads, writes=writes, shown=str)


# The arguments that name files or folders this package reads or writes
# itself. Not --data-dir or --manual-dir: tensorflow-datasets reads those,
# and reads gs:// itself.
PATH_ARGUMENTS = ("output_dir", "checkpoint", "model", "exports", "report", "cam", "data", "labels", "calibration_data", "images", "image", "weights")


def _local_paths_first(check, uri_arguments=()):
    """``check``, after refusing any path argument that is a URI it cannot take: nothing may go to a folder named ``gs:``.

    The ``uri_arguments`` may be gs:// or s3:// URIs whose extra is installed
    (`storage.check_path_or_uri`); the others must be local (`storage.check_local`).
    """
    from keras_googlenet import storage  # light: no TensorFlow

    def checked(args):
        for name in PATH_ARGUMENTS:
            value = getattr(args, name, None)
            for path in value if isinstance(value, list) else [value]:
                (storage.check_path_or_uri if name in uri_arguments else storage.check_local)(path, name)
        for name, what in _MUST_EXIST.items():
            value = getattr(args, name, None)
            if value is not None and not storage.scheme(value) and not os.path.exists(value):
                raise FileNotFoundError(f"The {what} does not exist. Received: {name}={value!r}")
        if check:
            check(args)

    return checked


# The local inputs that a command cannot start without, checked before TensorFlow
# loads (seconds), in this order: the library would find each missing only after.
_MUST_EXIST = {"exports": "export folder", "checkpoint": "checkpoint file", "model": "model file", "labels": "labels file"}


def _add_summary(subparsers):
    parser = subparsers.add_parser(
        "summary",
        help="build a GoogLeNet, print its layers, per-head parameter counts and a prediction on a photo",
        description="Builds GoogLeNet, prints its summary, the parameter count of the backbone and of each "
        "head, and the top-5 ImageNet classes for a photo (a bundled one by default). Random weights "
        "unless --weights is given, so the classes are meaningless without it.",
    )
    parser.add_argument("--variant", default=None, choices=["paper", "bn"], help="network variant (default: paper; bn for torchvision's weights)")
    parser.add_argument("--weights", default=None, help="'imagenet' (BVLC for paper, torchvision for bn), a Caffe .caffemodel, a torchvision .pth (with --variant bn) or a .weights.h5 path (default: random)")
    parser.add_argument("--image", default=None, help="photo to classify (default: a bundled photo of an owl)")
    parser.add_argument("--input-size", type=int, default=224, help="input height and width in pixels (default: 224)")
    _finish(parser, _summary, input_shape="input_size")


def _summary(args):
    from keras_googlenet.inference import summary

    summary.print_summary(variant=args.variant, weights=args.weights, image=args.image, input_size=args.input_size)


def _add_convert_weights(subparsers):
    parser = subparsers.add_parser(
        "convert-weights",
        help="convert Caffe's bvlc_googlenet.caffemodel or torchvision's googlenet .pth to a Keras .weights.h5",
        description="Reads Caffe's bvlc_googlenet.caffemodel (V1 or V2 format, without Caffe) or torchvision's "
        "googlenet .pth (without PyTorch), picked by the extension or else the content, checks every layer and "
        "shape, and writes a Keras .weights.h5: GoogLeNet(variant='paper') with its three trained heads from a "
        "caffemodel, GoogLeNet(variant='bn', aux_heads=False) from a .pth, whose auxiliary heads are untrained. "
        "Prints the file and the GoogLeNet call that loads it.",
    )
    parser.add_argument("src", metavar="SRC", help="the .caffemodel or .pth file, e.g. bvlc_googlenet.caffemodel")
    parser.add_argument("out", metavar="OUT", help="the .weights.h5 file to write")
    _finish(parser, _convert_weights, path="src", dst="out")


def _convert_weights(args):
    from keras_googlenet import weights
    from keras_googlenet.model import googlenet as model

    out, variant, aux_heads = weights.convert_file(args.src, args.out, build_model=model.GoogLeNet)
    print(f"{out}: load it with GoogLeNet(weights={out!r}, variant={variant!r}, aux_heads={aux_heads})")


def _add_export(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="export a .keras checkpoint to SavedModel, TFLite (fp32/fp16/dynamic/int8), ONNX or a KerasHub preset",
        description="Exports the main head of a .keras checkpoint (the auxiliary heads are dropped; EMA weights "
        "are already in a checkpoint trained with EMA). Class names come from --labels, a labels.txt beside the "
        "checkpoint, or ImageNet for 1000 classes, and are written with every export.",
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="the .keras checkpoint, e.g. runs/googlenet/best.keras")
    parser.add_argument("--output-dir", default=defaults.DEFAULT_EXPORT_DIR, help=f"folder to write to (default: {defaults.DEFAULT_EXPORT_DIR})")
    parser.add_argument("--format", default="all", choices=[*defaults.EXPORT_FORMATS, "all"], help=f"what to write (default: all, which is {', '.join(defaults.FORMATS)}; {defaults.KERASHUB_FORMAT!r} writes a KerasHub preset in OUTPUT_DIR/{defaults.KERASHUB_FORMAT} and needs keras-googlenet[kerashub])")
    parser.add_argument("--quantize", nargs="+", default=["fp32"], choices=defaults.QUANTIZATIONS, help="TFLite variants, one or more: float32, float16 weights, int8 weights, full integer (default: fp32)")
    parser.add_argument("--calibration-data", default=None, help="int8 calibration images (activation ranges, and the bias correction of the rounded kernels): an image folder, or a training source ('digits', a class-folder tree, a tfds name) of which 128 training images are used")
    parser.add_argument("--int8-io", nargs="+", default=["uint8"], choices=defaults.INT8_IO_TYPES, help="input type of the int8 model: uint8 pixels, int8 (pixel - 128) or float32 pixels (the int8 file for MediaPipe's web GPU delegate); its output is float32 probabilities either way. Several types write one file each from one calibration: googlenet_int8.tflite for the first, googlenet_int8_TYPE_input.tflite for the others (default: uint8)")
    parser.add_argument("--labels", default=None, help="labels file, one class name per line")
    parser.add_argument("--opset", type=int, default=defaults.DEFAULT_OPSET, help=f"ONNX opset (default: {defaults.DEFAULT_OPSET})")
    _finish(parser, _export, reads=("checkpoint",), writes=("output_dir",), formats="format", source="calibration_data", model="checkpoint")


def _export(args):
    from keras_googlenet.export import convert as export

    _show_native_logs_if_debug(args)
    formats = "all" if args.format == "all" else [args.format]
    paths = export.export(
        args.checkpoint, args.output_dir, formats=formats, quantize=args.quantize, calibration_data=args.calibration_data,
        int8_io=tuple(args.int8_io), labels=args.labels, opset=args.opset,
    )
    for name, path in paths.items():
        print(f"{name:<15} {args.shown(str(path))}")


def _add_verify(subparsers):
    parser = subparsers.add_parser(
        "verify",
        help="run every export in its own runtime and compare it with the Keras checkpoint",
        description="Prints max |delta probability|, top-1 agreement, top-5 overlap, size and batch-1 latency of "
        "each export in a folder written by `export`, saves them as JSON, and fails (exit 2) when one misses its "
        "threshold: 1e-5 for float32, 100% top-1 for fp16, 99% top-1 for dynamic and int8. Where the mediapipe "
        "package is installed, each .tflite is also run by MediaPipe Tasks' ImageClassifier, as an app runs it "
        "(float32: the same top-5 and 1e-4).",
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="the .keras checkpoint the exports came from")
    parser.add_argument("exports", metavar="EXPORTS", help="the folder written by `export`")
    parser.add_argument("--images", nargs="+", default=None, help="image files or folders (default: the six bundled photos)")
    parser.add_argument("--int8-images", default=None, help="a few hundred images for dynamic and int8: an image folder, or a source ('digits', ...) whose validation split is used (default: --images)")
    parser.add_argument("--report", default=None, help="JSON report path (default: EXPORTS/parity.json)")
    parser.add_argument("--labels", default=None, help="labels file, one class name per line")
    parser.add_argument("--no-mediapipe", dest="mediapipe", action="store_false", help="skip the MediaPipe rows even where mediapipe is installed")
    _finish(parser, _verify, check=_default_report, reads=("checkpoint", "exports"), writes=("report",), image="images", report_path="report")


def _default_report(args):
    """EXPORTS/parity.json, settled before `_staged` replaces a URI of EXPORTS by its local copy."""
    from keras_googlenet import storage

    if args.report is None:
        join = storage.join if storage.is_object_store(args.exports) else os.path.join
        args.report = join(args.exports, "parity.json")


def _verify(args):
    from keras_googlenet.data import images
    from keras_googlenet.inference import verify

    _show_native_logs_if_debug(args)
    verify.run(
        args.checkpoint, args.exports, images=args.images or images.sample_photos(), int8_images=args.int8_images,
        report_path=args.report, labels=args.labels, mediapipe=args.mediapipe, print_fn=lambda line: print(args.shown(line)),
    )


def _show_native_logs_if_debug(args):
    """--debug: `native_stderr` hides nothing (the converter's and LiteRT's own lines)."""
    if getattr(args, "debug", False):
        import logging

        from keras_googlenet import native_stderr

        logging.getLogger(native_stderr.LOGGER_NAME).setLevel(logging.DEBUG)


def _add_predict(subparsers):
    parser = subparsers.add_parser(
        "predict",
        help="classify images with a .keras, SavedModel, .tflite or .onnx model",
        description="Prints the top-k classes of each image, named by the class names stored with the model.",
    )
    parser.add_argument("model", metavar="MODEL", help="a .keras checkpoint, a SavedModel folder, a .tflite or an .onnx file")
    parser.add_argument("images", metavar="IMAGES", nargs="*", help="image files or folders (default: the six photos bundled with the package)")
    parser.add_argument("--top-k", type=int, default=5, help="classes per image (default: 5)")
    parser.add_argument("--labels", default=None, help="labels file overriding the stored class names")
    parser.add_argument("--cam", default=None, metavar="DIR", help="also write one PNG per image to DIR: the crop the model saw, its Grad-CAM heatmap for the top class and the top-k classes (.keras checkpoints only: exports have no gradients)")
    _finish(parser, _predict, reads=("model",), top="top_k", image="images", checkpoint="model", output_dir="cam")


def _predict(args):
    from keras_googlenet.inference import predict

    _show_native_logs_if_debug(args)
    if args.cam and not args.model.endswith(".keras"):
        # Before any work: exported models keep no gradients.
        raise ValueError(f"--cam needs a .keras checkpoint: exported models have no gradients. Received: MODEL={args.model!r}")
    if not args.images:  # wherever pip put the package
        from keras_googlenet.data import images

        args.images = [str(path) for path in images.sample_photos()]
    failed = predict.print_predictions(args.model, args.images, top=args.top_k, labels=args.labels)
    if args.cam:
        from keras_googlenet.inference import cam_images

        written = cam_images.write_cam_images(args.model, args.images, args.cam, top=args.top_k, labels=args.labels)
        print(f"Grad-CAM pictures: {len(written)} in {args.cam}")
    return 1 if failed else 0  # every other image is printed; each unreadable one is named once, in its place


def _add_train(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="train a three-head GoogLeNet (default: the built-in digits, a few minutes on CPU), then evaluate it",
        description="Trains GoogLeNet with model.fit under an automatically chosen distribution strategy, with the "
        "paper's loss weights (1.0 / 0.3 / 0.3), SGD with momentum 0.9 and its learning rate schedule. Writes the "
        "best and last .keras checkpoints, a CSV history, TensorBoard logs and a PNG of the curves to --output-dir, "
        "and backs up every epoch there: the same command resumes an interrupted run. Then evaluates on "
        "--validation-split and prints where everything is.",
    )
    parser.add_argument("--data", default=defaults.DEFAULT_DATA, help="'digits' (built in, offline), an image folder (one subfolder per class) or a tfds name (default: digits)")
    parser.add_argument("--split", default="train", help="split to train on (default: train)")
    parser.add_argument("--validation-split", default="validation", help="split to evaluate each epoch and at the end, or 'none' (default: validation)")
    parser.add_argument("--output-dir", default=None, help=f"folder or gs:// or s3:// URI for checkpoints, logs, curves and backups (default: {defaults.DEFAULT_OUTPUT_DIR}; in a Vertex AI job, AIP_CHECKPOINT_DIR, with TensorBoard's logs in AIP_TENSORBOARD_LOG_DIR and the model copied to AIP_MODEL_DIR)")
    parser.add_argument("--epochs", type=int, default=defaults.DEFAULT_EPOCHS, help=f"number of epochs (default: {defaults.DEFAULT_EPOCHS})")
    parser.add_argument("--batch-size", type=int, default=defaults.DEFAULT_BATCH_SIZE, help=f"batch size per replica; the global batch is this times the replicas (default: {defaults.DEFAULT_BATCH_SIZE})")
    parser.add_argument("--steps-per-epoch", type=int, default=None, help="batches per epoch (default: one pass over the split)")
    parser.add_argument("--image-size", type=int, default=defaults.DEFAULT_IMAGE_SIZE, help=f"input height and width, at least 79 with aux heads (default: {defaults.DEFAULT_IMAGE_SIZE})")
    parser.add_argument("--variant", default=defaults.DEFAULT_VARIANT, choices=["paper", "bn"], help=f"network variant (default: {defaults.DEFAULT_VARIANT})")
    parser.add_argument("--no-aux-heads", dest="aux_heads", action="store_false", help="train the main head only (default: all three heads)")
    parser.add_argument("--learning-rate", type=float, default=defaults.DEFAULT_LEARNING_RATE, help=f"peak learning rate (default: {defaults.DEFAULT_LEARNING_RATE})")
    parser.add_argument("--schedule", default="paper", choices=defaults.SCHEDULES, help="'paper': x0.96 every 8 epochs; 'cosine': warmup then cosine decay; 'constant' (default: paper)")
    parser.add_argument("--warmup-epochs", type=float, default=1, help="warmup of the cosine schedule, in epochs (default: 1)")
    parser.add_argument("--weight-decay", type=float, default=defaults.WEIGHT_DECAY, help=f"weight decay, not on biases and batch norm (default: {defaults.WEIGHT_DECAY}, Caffe's)")
    parser.add_argument("--label-smoothing", type=float, default=0.0, help="label smoothing factor in [0, 1) (default: 0)")
    parser.add_argument("--ema", dest="use_ema", action="store_true", help="keep an exponential moving average of the weights (Polyak averaging), used for evaluation and the checkpoints")
    parser.add_argument("--ema-momentum", type=float, default=0.99, help="momentum of the moving average (default: 0.99)")
    parser.add_argument("--mixed-precision", default=None, choices=["mixed_float16", "mixed_bfloat16"], help="mixed precision policy (default: float32)")
    parser.add_argument("--min-crop-area", type=float, default=defaults.DEFAULT_MIN_CROP_AREA, help=f"smallest random training crop, as a fraction of the image area (default: {defaults.DEFAULT_MIN_CROP_AREA}, for the 8x8 digits; the paper's is 0.08)")
    parser.add_argument("--strategy", default="auto", choices=defaults.STRATEGIES, help="distribution strategy; 'auto': multi-worker with a TF_CONFIG cluster, mirrored over GPUs or --devices, else one device (default: auto)")
    parser.add_argument("--devices", type=int, default=None, help="split the CPU into this many logical devices, to test mirrored training on one machine (default: none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights, data order and augmentation (default: 0)")
    parser.add_argument("--data-dir", default=None, help="tensorflow-datasets data folder (default: tfds's)")
    parser.add_argument("--manual-dir", default=None, help="folder of hand-downloaded archives, for ImageNet (default: none)")
    parser.add_argument("--backup-every", type=int, default=None, metavar="N", help="also back up every N steps, so that a kill without warning (SIGKILL) loses at most N steps; SIGTERM always backs up the step it stops at (default: at epoch ends only)")
    parser.add_argument("--keep-backup", action="store_true", help="keep backup/ once the run has finished, to train it on later with more --epochs (default: deleted at the end, as Keras' BackupAndRestore does)")
    parser.add_argument("--verbose", default="auto", choices=["auto", "0", "1", "2"], help="fit's progress output: auto (a progress bar on a terminal, one line per epoch in a log), 0 silent, 1 progress bar, 2 one line per epoch (default: auto)")
    _add_ray_options(parser)
    _finish(parser, _train, check=_check_train, uri_arguments=("output_dir", "data"), source="data", workers="ray_workers", address="ray_address", gpus_per_worker="ray_gpus_per_worker", cpus_per_worker="ray_cpus_per_worker", max_failures="ray_max_failures")


def _add_ray_options(parser):
    group = parser.add_argument_group("Ray Train", f"run the same training on a Ray cluster (needs {_RAY_EXTRA})")
    group.add_argument("--ray-workers", type=int, default=None, metavar="N", help="train on N Ray Train workers, one MultiWorkerMirroredStrategy replica each (default: no Ray)")
    group.add_argument("--ray-address", default=None, metavar="ADDR", help="the Ray cluster to join, e.g. 'auto' or 'ray://head:10001' (default: a new local one)")
    group.add_argument("--ray-gpus-per-worker", type=float, default=0, metavar="G", help="GPUs each worker reserves (default: 0)")
    group.add_argument("--ray-cpus-per-worker", type=float, default=1, metavar="C", help="CPUs each worker reserves; its TensorFlow threads follow (default: 1)")
    group.add_argument("--ray-max-failures", type=int, default=defaults.DEFAULT_RAY_MAX_FAILURES, metavar="K", help=f"worker losses Ray recovers from by restarting the group, which resumes at the last backup (the first unfinished epoch, or the step that a SIGTERM or --backup-every backed up); -1: no limit (default: {defaults.DEFAULT_RAY_MAX_FAILURES})")


def _train(args):
    kwargs = _train_arguments(args)
    if args.ray_workers is not None:  # --ray-address alone was refused by _check_train
        return _train_on_ray(args, kwargs)
    from keras_googlenet.training import run as training

    # SIGTERM (a preempted machine) stops `train` at the end of a step, with a
    # backup of it (`preemption`); Ctrl-C stops it at once.
    training.train(**kwargs)


def _train_on_ray(args, kwargs):
    from keras_googlenet.training import ray as ray_training

    try:
        result = ray_training.train_on_ray(
            args.ray_workers, address=args.ray_address, gpus_per_worker=args.ray_gpus_per_worker,
            cpus_per_worker=args.ray_cpus_per_worker, max_failures=args.ray_max_failures, debug=args.debug, **kwargs,
        )
    except ray_training.RayNotInstalled:
        raise ValueError(f"--ray-workers needs Ray Train, which is not installed: {_RAY_EXTRA}") from None
    if result.error is not None:
        raise result.error


def _train_arguments(args):
    """`training.train`'s keyword arguments from the parsed options."""
    return dict(
        data=args.data, output_dir=args.output_dir, split=args.split,
        validation_split=None if args.validation_split.lower() == "none" else args.validation_split,
        epochs=args.epochs, batch_size=args.batch_size, steps_per_epoch=args.steps_per_epoch,
        image_size=args.image_size, variant=args.variant, aux_heads=args.aux_heads,
        learning_rate=args.learning_rate, schedule=args.schedule, warmup_epochs=args.warmup_epochs,
        weight_decay=args.weight_decay, label_smoothing=args.label_smoothing, use_ema=args.use_ema,
        ema_momentum=args.ema_momentum, mixed_precision=args.mixed_precision, min_crop_area=args.min_crop_area,
        strategy=args.strategy, devices=args.devices, seed=args.seed, data_dir=args.data_dir,
        manual_dir=args.manual_dir, keep_backup=args.keep_backup, backup_every=args.backup_every, verbose=args.verbose if args.verbose == "auto" else int(args.verbose),
    )


def _check_train(args):
    from keras_googlenet.training import ray as ray_training, vertex, arguments as train_arguments  # light: no TensorFlow, no Ray

    args.output_dir = vertex.output_dir(args.output_dir)

    train_arguments.check_train_arguments(**_train_arguments(args))
    if args.ray_workers is None and args.ray_address is not None:
        raise ValueError(f"--ray-address needs --ray-workers. Received: ray_address={args.ray_address!r}")
    if args.ray_workers is not None:
        ray_training.check_ray_arguments(
            args.ray_workers, args.ray_address, args.ray_gpus_per_worker, args.ray_cpus_per_worker,
            args.ray_max_failures,
        )


def _add_evaluate(subparsers):
    parser = subparsers.add_parser(
        "evaluate",
        help="top-1 and top-5 accuracy of a .keras checkpoint on a split, with 1, 10 or 144 crops per image",
        description="Evaluates the main head of a checkpoint written by `train`. With 10 or 144 crops the softmax "
        "outputs are averaged over the crops, as in Section 7 of the paper.",
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a .keras checkpoint (best.keras or last.keras of a training run)")
    parser.add_argument("--data", default="digits", help="'digits' (built in), an image folder or a tfds name (default: digits)")
    parser.add_argument("--split", default="validation", help="split to evaluate (default: validation)")
    parser.add_argument("--crops", type=int, default=1, choices=[1, 10, 144], help="crops per image: 1 centre crop, 10 (corners, centre and mirrors) or the paper's 144 (default: 1)")
    parser.add_argument("--batch-size", type=int, default=32, help="crops per forward pass (default: 32)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N images (default: all)")
    parser.add_argument("--data-dir", default=None, help="tensorflow-datasets data folder (default: tfds's)")
    parser.add_argument("--manual-dir", default=None, help="folder of hand-downloaded archives, for ImageNet (default: none)")
    _finish(parser, _evaluate, reads=("checkpoint", "data"), source="data", model="checkpoint")


def _evaluate(args):
    from keras_googlenet.training import evaluation

    scores = evaluation.print_evaluation(
        args.checkpoint, data=args.data, split=args.split, crops=args.crops, batch_size=args.batch_size,
        limit=args.limit, data_dir=args.data_dir, manual_dir=args.manual_dir, print_fn=lambda line: print(args.shown(line)),
    )
    return 1 if scores["skipped"] else 0  # as predict: every other image is scored, each unreadable one named


COMMANDS = (_add_summary, _add_convert_weights, _add_export, _add_verify, _add_predict, _add_train, _add_evaluate)


def build_parser():
    parser = _OneLineErrorParser(
        prog="keras-googlenet",
        description="GoogLeNet (Inception v1) for Keras 3: build, train, evaluate, export and predict.",
    )
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.debug:
        return _run(args)
    try:
        status = _run(args, quiet=True)
    except (ValueError, OSError) as error:  # bad input; FileNotFoundError and PermissionError are OSErrors
        _report(args.command, _name_flags(args.shown(_first_line(error)), args.flags))
        return 2
    except preemption.Preempted as stop:
        _report(args.command, _preempted_message(stop, getattr(args, "output_dir", None)))
        return preemption.EXIT_STATUS
    except KeyboardInterrupt:
        _report(args.command, "interrupted")
        return 130
    except Exception as error:  # a bug, or a failure inside TensorFlow: one line, the rest behind --debug
        if _disk_full(error):  # TensorFlow's own writes (TensorBoard, SavedModel) say so in words
            _report(args.command, f"the disk is full: {args.shown(_first_line(error))}")
        else:
            _report(args.command, f"{type(error).__name__}: {args.shown(_first_line(error))} (run with --debug for the traceback)")
        return 1
    return status


def _disk_full(error):
    from keras_googlenet.storage import disk

    return disk.is_disk_full(error)


def _run(args, quiet=False):
    """Checks the arguments, stages their URIs, then runs the handler; ``quiet`` hides TensorFlow's start-up lines."""
    args.check(args)  # before TensorFlow: a bad value answers at once, not after its import
    with _staged(args):
        if quiet and getattr(args, "ray_workers", None) is None:  # Ray's driver runs no TensorFlow: its workers do (0.5 GB)
            _quiet_tensorflow()
        return args.handler(args) or 0


@contextlib.contextmanager
def _staged(args):
    """The gs:// and s3:// URIs of ``args.reads`` fetched and ``args.writes`` uploaded around the handler (`storage.staging`).

    Before TensorFlow loads, so that a missing object answers at once. Each
    URI argument is replaced by its local copy, and ``args.shown`` puts the
    URI back into what the command prints.
    """
    from keras_googlenet import storage

    names = [name for name in (*args.reads, *args.writes) if storage.is_object_store(getattr(args, name, None))]
    if not names:
        yield
        return
    from keras_googlenet.storage import staging

    stage = staging.Staging()
    args.shown = stage.shown
    try:
        for name in names:
            uri = getattr(args, name)
            local = stage.fetch(uri, name, beside=defaults.SIDECAR_FILES) if name in args.reads else stage.output(uri, name)
            setattr(args, name, local)
        yield
        stage.upload()
    finally:
        stage.close()


def _preempted_message(stop, output_dir):
    where = f" in {output_dir}" if output_dir else ""
    if stop.epoch is None:
        return f"stopped by SIGTERM; the backup{where} holds the last backed-up step: run the same command to resume there"
    return f"stopped by SIGTERM {stop.where()}, backed up{where}: run the same command to resume there"


def _report(command, message):
    print(f"keras-googlenet {command}: error: {message}", file=sys.stderr)


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _name_flags(message, flags):
    """Shows a library message in the command's terms: ``formats`` becomes ``--format``."""
    message = re.sub(r"`(\w+)`", lambda match: flags.get(match.group(1), match.group(0)), message)
    head, received, tail = message.partition("Received: ")
    tail = re.sub(r"(^|, )(\w+)=", lambda match: match.group(1) + flags.get(match.group(2), match.group(2)) + "=", tail)
    return head + received + tail


# Lines TensorFlow's C++ code prints to fd 2 while its shared libraries load
# (oneDNN, cudart stub, cuInit): absl-formatted, "I0000 00:00:17... port.cc:153] ...".
_TF_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\)|[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\]"
    r"|To enable the following instructions:"
)


def _quiet_tensorflow():
    """Imports TensorFlow without its C++ start-up lines; other output passes through.

    TF_CPP_MIN_LOG_LEVEL=3 hides the lines logged once absl is initialised
    (cpu_feature_guard, cuInit), but TF 2.21 prints the oneDNN and cudart
    lines while its libraries load, before absl reads any setting: only
    capturing file descriptor 2 during the import hides those.
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from keras_googlenet import native_stderr  # the standard library only

    with native_stderr.filtered_fd2(_TF_NOISE):
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            pass  # the command that needs it reports it


if __name__ == "__main__":
    sys.exit(main())
