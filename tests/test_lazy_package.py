"""`import keras_googlenet` loads nothing heavy, yet every public name and submodule is an attribute (SPEC 1)."""

import os
import pathlib
import subprocess
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _python(code):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_submodules_resolve_as_attributes_without_importing_tensorflow_first():
    code = (
        "import sys, types, keras_googlenet as kg\n"
        "print('tensorflow' in sys.modules, 'keras_googlenet.training.run' in sys.modules)\n"
        "print(isinstance(kg.model.imagenet_utils, types.ModuleType), kg.model.imagenet_utils.__name__)\n"
        "print(isinstance(kg.training.run, types.ModuleType), callable(kg.training.run.train), 'training' in dir(kg))\n"
    )
    result = _python(code)
    assert result.stdout.split() == ["False", "False", "True", "keras_googlenet.model.imagenet_utils", "True", "True", "True"], result.stderr


def test_an_unknown_attribute_still_raises_attribute_error_naming_it():
    import pytest

    import keras_googlenet as kg

    with pytest.raises(AttributeError, match="has no attribute 'not_a_module'"):
        kg.not_a_module
