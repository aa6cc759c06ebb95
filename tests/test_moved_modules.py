"""0.1's module paths still import for one release, as the moved modules themselves, each with a DeprecationWarning."""

import importlib
import pathlib
import sys

import pytest

import keras_googlenet as kg
from keras_googlenet import _moved

CHANGELOG = pathlib.Path(__file__).resolve().parents[1] / "CHANGELOG.md"

# The table of CHANGELOG.md's 0.2.0 entry, written out again: the test of _moved.MOVED.
CHANGELOG_TABLE = {
    "architecture": "model.architecture", "imagenet_utils": "model.imagenet_utils", "layers": "model.layers",
    "scaling": "model.scaling", "task": "model.task",
    "augment": "data.augment", "datasets": "data.datasets", "images": "data.images", "pipeline": "data.pipeline",
    "sources": "data.sources",
    "model_info": "artifacts.model_info", "tflite_metadata": "artifacts.tflite_metadata",
    "checkpointing": "training.checkpointing", "cluster": "training.cluster", "curves": "training.curves",
    "evaluation": "training.evaluation", "output_lock": "training.output_lock", "ray_training": "training.ray",
    "train_arguments": "training.arguments",
    "int8_bias": "export.int8_bias", "int8_input": "export.int8_input", "kerashub_preset": "export.kerashub_preset",
    "cam": "inference.cam", "cam_images": "inference.cam_images", "mediapipe_client": "inference.mediapipe_client",
    "predict": "inference.predict", "runtimes": "inference.runtimes", "summary": "inference.summary",
    "verify": "inference.verify",
}


def _forget(old):
    """As if 0.1's path had never been imported in this process."""
    sys.modules.pop(f"keras_googlenet.{old}", None)
    vars(kg).pop(old, None)


def test_the_moved_table_is_the_changelog_table():
    assert _moved.MOVED == CHANGELOG_TABLE
    changelog = CHANGELOG.read_text()
    for old, new in CHANGELOG_TABLE.items():
        assert f"| `keras_googlenet.{old}` | `keras_googlenet.{new}` |" in changelog


@pytest.mark.parametrize("old", sorted(CHANGELOG_TABLE))
def test_an_old_module_path_imports_the_moved_module_with_a_warning(old):
    new = importlib.import_module(f"keras_googlenet.{CHANGELOG_TABLE[old]}")
    _forget(old)
    with pytest.warns(DeprecationWarning, match=f"keras_googlenet.{old} moved to keras_googlenet.{CHANGELOG_TABLE[old]}"):
        assert importlib.import_module(f"keras_googlenet.{old}") is new
    assert new.__name__ == f"keras_googlenet.{CHANGELOG_TABLE[old]}"  # the moved module keeps its own name and spec
    assert new.__spec__.name == new.__name__


def test_from_import_of_an_old_module_warns_at_the_caller():
    _forget("predict")
    with pytest.warns(DeprecationWarning, match="keras_googlenet.predict moved to keras_googlenet.inference.predict") as caught:
        from keras_googlenet import predict
    assert predict is importlib.import_module("keras_googlenet.inference.predict")
    assert caught[0].filename == __file__


def test_an_old_name_of_a_module_that_became_a_package_warns_and_resolves():
    from keras_googlenet.training import run

    with pytest.warns(DeprecationWarning, match="keras_googlenet.training.make_optimizer moved to keras_googlenet.training.run.make_optimizer"):
        from keras_googlenet.training import make_optimizer
    assert make_optimizer is run.make_optimizer


def test_the_entry_points_of_the_packages_resolve_without_a_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        from keras_googlenet.export import export
        from keras_googlenet.model import GoogLeNet
        from keras_googlenet.training import TrainingResult, evaluate, train, train_on_ray
    assert [f.__module__ for f in (train, TrainingResult, train_on_ray, evaluate, export, GoogLeNet)] == [
        "keras_googlenet.training.run", "keras_googlenet.training.run", "keras_googlenet.training.ray",
        "keras_googlenet.training.evaluation", "keras_googlenet.export.convert", "keras_googlenet.model.googlenet",
    ]


def test_a_name_that_never_existed_is_still_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'not_a_module'"):
        kg.training.not_a_module
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("keras_googlenet.not_a_module")
