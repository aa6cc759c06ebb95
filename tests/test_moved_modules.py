"""0.1's module paths still import for one release, as the moved modules themselves, each with a DeprecationWarning."""

import importlib
import pathlib
import re
import sys

import pytest

import keras_googlenet as kg
from keras_googlenet import _moved

CHANGELOG = pathlib.Path(__file__).resolve().parents[1] / "CHANGELOG.md"


def _changelog_table():
    """The moved modules of CHANGELOG.md's 0.2.0 table, which users read: old -> new, relative to keras_googlenet."""
    rows = re.findall(r"^\| `keras_googlenet\.(\w+)` \| `keras_googlenet\.([\w.]+)` \|$", CHANGELOG.read_text(), re.M)
    return dict(rows)


CHANGELOG_TABLE = _changelog_table()


def _forget(old):
    """As if 0.1's path had never been imported in this process."""
    sys.modules.pop(f"keras_googlenet.{old}", None)
    vars(kg).pop(old, None)


def test_the_moved_table_is_the_changelog_table():
    assert len(CHANGELOG_TABLE) == 29  # every 0.1 module but the three that became packages of their name
    assert _moved.MOVED == CHANGELOG_TABLE


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
    assert [w.filename for w in caught] == [__file__]  # once, at this line


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
