"""The module paths of keras_googlenet 0.1, which moved into stage packages in 0.2.

For one release, ``import keras_googlenet.predict`` and ``from keras_googlenet
import predict`` still give the moved module, with a `DeprecationWarning` that
names the new path, so that users' imports and ``custom_objects`` keep working
while they update them. CHANGELOG.md has the whole table.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

# 0.1's module -> its 0.2 path, both relative to keras_googlenet. 0.1's model,
# training and export became the packages of those names (their `former` in _lazy.attach).
MOVED = {
    "architecture": "model.architecture",
    "imagenet_utils": "model.imagenet_utils",
    "layers": "model.layers",
    "scaling": "model.scaling",
    "task": "model.task",
    "augment": "data.augment",
    "datasets": "data.datasets",
    "images": "data.images",
    "pipeline": "data.pipeline",
    "sources": "data.sources",
    "model_info": "artifacts.model_info",
    "tflite_metadata": "artifacts.tflite_metadata",
    "checkpointing": "training.checkpointing",
    "cluster": "training.cluster",
    "curves": "training.curves",
    "evaluation": "training.evaluation",
    "output_lock": "training.output_lock",
    "ray_training": "training.ray",
    "train_arguments": "training.arguments",
    "int8_bias": "export.int8_bias",
    "int8_input": "export.int8_input",
    "kerashub_preset": "export.kerashub_preset",
    "cam": "inference.cam",
    "cam_images": "inference.cam_images",
    "mediapipe_client": "inference.mediapipe_client",
    "predict": "inference.predict",
    "runtimes": "inference.runtimes",
    "summary": "inference.summary",
    "verify": "inference.verify",
}
PACKAGE = "keras_googlenet"


def warn(old, new):
    """The one DeprecationWarning for a 0.1 path, pointed at the line that used it.

    stacklevel 3: this function, its caller (a loader or a package's
    ``__getattr__``), then the user's line; warnings skips importlib's frames.
    """
    message = f"{old} moved to {new} in keras_googlenet 0.2; the old path goes in 0.3 (CHANGELOG.md)."
    warnings.warn(message, DeprecationWarning, stacklevel=3)


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds 0.1's module paths, after the real files were not found (it sits last on `sys.meta_path`)."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, old = fullname.rpartition(".")
        if package != PACKAGE or old not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, _MovedModuleLoader(f"{PACKAGE}.{MOVED[old]}"))


class _MovedModuleLoader(importlib.abc.Loader):
    def __init__(self, new_name):
        self.new_name = new_name

    def create_module(self, spec):
        return None  # a placeholder, replaced in sys.modules by the moved module itself

    def exec_module(self, module):
        warn(module.__name__, self.new_name)
        # The import system returns what sys.modules holds after exec_module:
        # the moved module, so that its classes and functions are the same objects.
        sys.modules[module.__name__] = importlib.import_module(self.new_name)


def install():
    """Puts the finder last on `sys.meta_path`, once."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
