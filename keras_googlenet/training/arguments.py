"""The checks of `training.train`'s arguments, made before TensorFlow is imported.

`check_train_arguments` is the one place that says which values `train`
accepts: `train` calls it first, and `keras-googlenet train` calls it before
importing TensorFlow (seconds) and before printing the plan, so that a bad
value, a missing ``--data`` folder or a busy ``--output-dir`` answers at
once. It imports only light modules: the standard library, `defaults`,
`architecture` (the minimum input size) and `output_lock`.
"""

import math
import os
import pathlib

from keras_googlenet.model import architecture
from keras_googlenet.training import output_lock
from keras_googlenet.data import sources
from keras_googlenet import storage
from keras_googlenet.defaults import DEFAULT_DATA, MIXED_PRECISION_POLICIES, SCHEDULES, SPLITS, STRATEGIES

def check_train_arguments(**arguments):
    """Raises a one-line ValueError (or FileNotFoundError) for the first bad argument of `train`.

    Takes `training.train`'s keyword arguments by name (extra ones, such as
    ``callbacks``, are ignored). Besides each value's type and range, it
    checks that ``image_size`` fits the variant, that ``data`` names a
    folder that exists when it is a path (see `sources.data_is_path`), and that no
    other run holds ``output_dir`` (`output_lock.check_output_dir_free`).
    Nothing is created.
    """
    _check_counts(arguments)
    _check_rates(arguments)
    _check_choices(arguments)
    _check_image_size(arguments["image_size"], arguments["variant"], arguments["aux_heads"])
    check_data(arguments["data"])
    _check_splits(arguments)
    _check_output_dir(arguments["output_dir"])


def _check_counts(arguments):
    for name in ("epochs", "batch_size", "image_size"):
        _require_int(name, arguments[name], minimum=1)
    for name in ("steps_per_epoch", "devices", "backup_every"):
        if arguments.get(name) is not None:
            _require_int(name, arguments[name], minimum=1, or_none=True)
    _require_int("seed", arguments["seed"])


def _require_int(name, value, minimum=None, or_none=False):
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        allowed = "an int" + (f" >= {minimum}" if minimum is not None else "") + (" or None" if or_none else "")
        raise ValueError(f"`{name}` must be {allowed}. Received: {name}={value!r}")


# name: (whether a number is allowed, what is). Every comparison with NaN is
# false, so NaN fails each test; infinity fails the upper bounds.
_RANGES = {
    "learning_rate": (lambda value: 0 < value < math.inf, "> 0"),
    "weight_decay": (lambda value: 0 <= value < math.inf, ">= 0"),
    "warmup_epochs": (lambda value: 0 <= value < math.inf, ">= 0"),
    "label_smoothing": (lambda value: 0 <= value < 1, "in [0, 1)"),
    "ema_momentum": (lambda value: 0 <= value < 1, "in [0, 1)"),
    "min_crop_area": (lambda value: 0 < value <= 1, "in (0, 1]"),
}


def _check_rates(arguments):
    for name, (allows, allowed) in _RANGES.items():
        value = arguments[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not allows(value):
            raise ValueError(f"`{name}` must be a finite number {allowed}. Received: {name}={value!r}")


def _check_choices(arguments):
    choices = {
        "variant": sorted(architecture.VARIANTS),
        "schedule": SCHEDULES,
        "mixed_precision": MIXED_PRECISION_POLICIES,
        "verbose": ("auto", 0, 1, 2),
    }
    for name, allowed in choices.items():
        value = arguments[name]
        if isinstance(value, bool) or value not in allowed:
            raise ValueError(f"`{name}` must be one of {allowed}. Received: {name}={value!r}")
    # A `tf.distribute.Strategy` object is checked by `cluster.make_strategy`:
    # telling one apart here would import TensorFlow.
    strategy = arguments["strategy"]
    if isinstance(strategy, str) and strategy not in STRATEGIES:
        raise ValueError(
            f"`strategy` must be one of {STRATEGIES} or a tf.distribute.Strategy. Received: strategy={strategy!r}"
        )


def _check_image_size(image_size, variant, aux_heads):
    # The builder checks this too, but only after the data is read.
    minimum = architecture.minimum_input_size(variant, aux_heads)
    if image_size < minimum:
        raise ValueError(
            f"`image_size` must be at least {minimum} for variant {variant!r}"
            f"{' with aux heads' if aux_heads else ''}. Received: image_size={image_size!r}"
        )


def check_data(data):
    """Raises if ``data`` is not a source name, or is a path but no existing folder, or a URI that cannot be read.

    A gs:// or s3:// folder is fetched by `train` (`storage.staging`); its
    bucket is read then, not here.
    """
    if not isinstance(data, (str, os.PathLike)) or not os.fspath(data):
        raise ValueError(f"`data` must be 'digits', a folder path or a tfds name. Received: data={data!r}")
    if storage.scheme(data):
        storage.check_path_or_uri(data, "data")
        return
    if not sources.data_is_path(data):
        return  # tfds' catalogue needs TensorFlow: a tfds name is checked when it is loaded
    folder = pathlib.Path(data).expanduser()
    if folder.is_dir():
        sources.check_image_folder(folder, received=os.fspath(data))
        return
    if folder.exists():
        raise ValueError(
            f"`data` must be a folder with one subfolder of images per class, not a file. Received: data={_shown(data)}"
        )
    raise FileNotFoundError(f"The image folder does not exist. Received: data={_shown(data)}")


def _check_splits(arguments):
    # The digits and image folders have these two splits; a tfds dataset has
    # its own (and slices such as "train[:10%]"), which tfds checks.
    if arguments["data"] != DEFAULT_DATA and not sources.data_is_path(arguments["data"]):
        return
    for name in ("split", "validation_split"):
        value = arguments[name]
        if value is None and name == "validation_split":
            continue
        if value not in SPLITS:
            raise ValueError(f"`{name}` must be one of {SPLITS}. Received: {name}={value!r}")


def _shown(data):
    return repr(os.fspath(data))


def _check_output_dir(output_dir):
    if not isinstance(output_dir, (str, os.PathLike)) or not os.fspath(output_dir):
        raise ValueError(f"`output_dir` must be a folder path. Received: output_dir={output_dir!r}")
    storage.check_path_or_uri(output_dir, "output_dir")
    if storage.is_object_store(output_dir):
        from keras_googlenet.storage import objects  # fsspec: light, but only for buckets

        objects.check_bucket(output_dir, "output_dir")
        return
    path = pathlib.Path(output_dir)
    if path.exists() and not path.is_dir():
        raise ValueError(f"`output_dir` must be a folder, not a file. Received: output_dir={_shown(output_dir)}")
    # In a TF_CONFIG cluster only the chief takes the lock, and only the
    # strategy knows which task that is: there `train` checks it later.
    if not os.environ.get("TF_CONFIG"):
        output_lock.check_output_dir_free(path)
