"""Checkpoints written by 0.1, whose config names its flat modules, still load and give 0.1's probabilities.

checkpoint_0_1/ holds a "bn" and a "paper" checkpoint that 0.1's `train` wrote
(checkpoint_0_1/make.py says how), and 0.1's probabilities for a fixed input.
"""

import importlib.util
import json
import pathlib

import numpy as np
import pytest

HERE = pathlib.Path(__file__).resolve().parent / "checkpoint_0_1"
EXPECTED = json.loads((HERE / "expected.json").read_text())


def fixed_input():
    """make.py's own input, read from that file (it is not on the path)."""
    spec = importlib.util.spec_from_file_location("make_checkpoint_0_1", HERE / "make.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    assert make.SIZE == EXPECTED["size"]
    return make.fixed_input()


def test_the_checkpoints_name_0_1_modules():
    import zipfile

    with zipfile.ZipFile(HERE / "paper.keras") as archive:
        config = archive.read("config.json").decode()
    assert '"module": "keras_googlenet.layers"' in config and '"module": "keras_googlenet.task"' in config


@pytest.mark.parametrize("variant", ["bn", "paper"])
def test_load_checkpoint_gives_0_1_probabilities(variant):
    from keras_googlenet.artifacts import model_info

    model = model_info.load_checkpoint(HERE / f"{variant}.keras")
    probabilities = model.predict(fixed_input(), verbose=0)[0]
    np.testing.assert_allclose(probabilities, EXPECTED["probabilities"][variant], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", ["bn", "paper"])
def test_keras_load_model_restores_0_1_losses_and_metrics_once_the_classes_are_registered(variant):
    import keras

    from keras_googlenet.model import layers, task  # noqa: F401 (registers the classes by name)

    model = keras.saving.load_model(HERE / f"{variant}.keras")
    assert model.output_names == ["main", "aux1", "aux2"]
    assert {type(loss) for loss in model.loss.values()} == {task.SparseCrossentropy}
    assert model.get_compile_config()["loss_weights"] == {"main": 1.0, "aux1": 0.3, "aux2": 0.3}
