"""`import keras_googlenet` loads nothing heavy, yet every public name and submodule is an attribute (SPEC 1)."""

import os
import pathlib
import subprocess
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _python(code):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_stages_and_their_entry_points_resolve_as_attributes_without_importing_tensorflow_or_ray_first():
    code = (
        "import sys, types, keras_googlenet as kg\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules, 'ray' in sys.modules, 'keras_googlenet.training.run' in sys.modules)\n"
        "print(isinstance(kg.model.imagenet_utils, types.ModuleType), kg.model.imagenet_utils.__name__)\n"
        "print(kg.training.train.__module__, kg.export.export.__module__, kg.model.GoogLeNet is kg.GoogLeNet)\n"
        "print('training' in dir(kg), 'train' in dir(kg.training), 'run' in dir(kg.training))\n"
    )
    result = _python(code)
    assert result.stdout.split() == [
        "False", "False", "False", "False",
        "True", "keras_googlenet.model.imagenet_utils",
        "keras_googlenet.training.run", "keras_googlenet.export.convert", "True",
        "True", "True", "True",
    ], result.stderr


def test_the_public_names_import_from_the_top_level_from_their_stage():
    import keras_googlenet as kg

    homes = {name: getattr(kg, name).__module__ for name in kg.__all__}
    assert homes == {
        "GoogLeNet": "keras_googlenet.model.googlenet",
        "LocalResponseNormalization": "keras_googlenet.model.layers",
        "compile_googlenet": "keras_googlenet.model.task",
        "decode_predictions": "keras_googlenet.model.imagenet_utils",
        "inference_model": "keras_googlenet.model.task",
        "minimum_input_size": "keras_googlenet.model.architecture",
        "preprocess_input": "keras_googlenet.model.imagenet_utils",
    }


def test_an_unknown_attribute_still_raises_attribute_error_naming_it():
    import pytest

    import keras_googlenet as kg

    with pytest.raises(AttributeError, match="has no attribute 'not_a_module'"):
        kg.not_a_module
