"""KerasHub presets: a checkpoint's main head, loaded back by KerasHub's own API in a new process."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import lane
from markers import needs_torch

pytestmark = pytest.mark.needs("keras_hub", 'pip install -e ".[kerashub]"')  # the test extra installs it
# The tests of the saved presets are slow (two GoogLeNets, the CLI's export
# and KerasHub loading them in new processes); the quick tier keeps the
# argument checks and the classes' own tests.

SIZE = 80
CLASS_NAMES = ["bird", "cat", "person", "food"]
# KerasHub's name for GoogLeNet* classes (its snake case): the preset must not carry it.
KERASHUB_DEFAULT_NAME = "goog_le_net"

# Runs in a new process, so nothing is registered but what the import registers.
LOADER = """
import json, sys
import numpy as np
import keras
import keras_googlenet.kerashub  # first: KerasHub never imports the module that defines the classes
import keras_hub

presets, crops_path, out, check_bfloat16 = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "1"
crops = np.load(crops_path)
results = {}
for variant, preset in presets.items():
    classifier = keras_hub.models.ImageClassifier.from_preset(preset)
    # The preprocessor (resizing only) and the model called as a user would, eagerly.
    probabilities = classifier(classifier.preprocessor(crops), training=False)
    results[variant + "_probabilities"] = keras.ops.convert_to_numpy(probabilities)
    results[variant + "_class_names"] = np.array(classifier.class_names)
    results[variant + "_classifier_class"] = np.array(type(classifier).__name__)
    backbone = keras_hub.models.Backbone.from_preset(preset)
    results[variant + "_features"] = keras.ops.convert_to_numpy(backbone(crops, training=False))
    if check_bfloat16:
        bfloat16 = keras_hub.models.Backbone.from_preset(preset, dtype="bfloat16")
        results[variant + "_bfloat16_dtypes"] = np.array(sorted({str(v.dtype) for v in bfloat16.variables}))
np.savez(out, **results)
"""


def _peaked_checkpoint(folder, variant, photo_paths):
    """A random three-head GoogLeNet whose main head is scaled so the photos get peaked probabilities."""
    import keras

    import keras_googlenet as kg
    from keras_googlenet.data import images
    from keras_googlenet.artifacts import model_info

    keras.utils.set_random_seed(7)
    model = kg.GoogLeNet(variant=variant, input_shape=(SIZE, SIZE, 3), classes=len(CLASS_NAMES))
    pooled = keras.Model(model.input, model.get_layer("pool5_7x7_s1").output)
    features = pooled.predict(images.prepare_images(photo_paths, SIZE, variant), verbose=0)
    dense = model.get_layer("loss3_classifier")
    kernel = np.random.default_rng(0).normal(size=dense.kernel.shape)
    logits = features @ kernel
    # Centred per class, so that the photos' top classes differ, and several
    # units apart, so that softmax rows come near 1.
    scale = 8.0 / np.std(logits - logits.mean(axis=0))
    dense.set_weights([(kernel * scale).astype("float32"), (-logits.mean(axis=0) * scale).astype("float32")])
    folder.mkdir()
    model.save(folder / "best.keras")
    model_info.write_labels(folder / "labels.txt", CLASS_NAMES)
    return folder / "best.keras"


def _references(checkpoint, variant, photo_paths):
    """What `predict` gives for the photos, and the inception 5b features of the same weights."""
    import keras

    import keras_googlenet as kg
    from keras_googlenet.data import images
    from keras_googlenet.inference import runtimes

    scaled = images.prepare_images(photo_paths, SIZE, variant)
    probabilities = runtimes.load_predictor(checkpoint)(scaled)
    model = keras.saving.load_model(checkpoint, compile=False)
    # GoogLeNet(include_top=False) with the checkpoint's weights, set by layer name.
    features_model = kg.GoogLeNet(include_top=False, variant=variant, input_shape=(SIZE, SIZE, 3))
    for layer in features_model.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return probabilities, features_model.predict(scaled, verbose=0)


def build_presets(root):
    """Run in the lane: both variants as presets, "bn" from Python (with a training summary), "paper" by the CLI; their references."""
    from keras_googlenet import cli
    from keras_googlenet.data import images
    from keras_googlenet.export import kerashub_preset

    photo_paths = images.sample_photos()
    checkpoints = {variant: _peaked_checkpoint(root / variant, variant, photo_paths) for variant in ("bn", "paper")}
    summary = {"history": {"loss": [2.0, 1.5, 1.2]}, "evaluation": {"top1": 0.875, "examples": 40}, "global_batch_size": 32}
    (root / "bn" / "summary.json").write_text(json.dumps(summary))
    kerashub_preset.save_preset(checkpoints["bn"], root / "bn_preset", name="googlenet_bn_photos")
    # The CLI's own entry, in this process: a process of its own cost 9 s of
    # TensorFlow's start; what a preset holds is loaded in new ones below.
    command = ["export", str(checkpoints["paper"]), "--format", "kerashub", "--output-dir", str(root / "paper_export")]
    assert cli.main(command) == 0, command
    for variant, checkpoint in checkpoints.items():
        probabilities, features = _references(checkpoint, variant, photo_paths)
        np.savez(root / f"references_{variant}.npz", probabilities=probabilities, features=features)
    np.save(root / "crops.npy", images.prepare_images(photo_paths, SIZE, "bn", raw_pixels=True))  # raw pixels: the preset scales them


def _presets(folder):
    """A lane job: `build_presets`; each preset loaded back by KerasHub on every backend, in new processes."""
    paths = json.dumps({"bn": "bn_preset", "paper": "paper_export/kerashub"})
    loaders = [(lane.python("-c", LOADER, paths, "crops.npy", "loaded_tensorflow.npz", "1"), {"KERAS_BACKEND": "tensorflow"})]
    for backend in ("jax", "torch"):
        if importlib.util.find_spec(backend):  # the torch test skips without it (needs_torch), and fails under CI
            loaders.append((lane.python("-c", LOADER, paths, "crops.npy", f"loaded_{backend}.npz", "0"), {"KERAS_BACKEND": backend}))
    return [
        lane.python(__file__, str(folder)),
        *loaders,
    ]


@pytest.fixture(scope="module")
def presets(lane_result):
    """The lane's presets: their folders, the checkpoints' probabilities and features, and the photos' crops."""
    root = lane_result(_presets)
    saved = {variant: np.load(root / f"references_{variant}.npz") for variant in ("bn", "paper")}
    references = {variant: (npz["probabilities"], npz["features"]) for variant, npz in saved.items()}
    paths = {"bn": str(root / "bn_preset"), "paper": str(root / "paper_export" / "kerashub")}
    return {"root": root, "paths": paths, "references": references, "crops": root / "crops.npy"}


def _loaded(presets, backend):
    """What KerasHub loaded from the presets in a new process on ``backend``."""
    return dict(np.load(presets["root"] / f"loaded_{backend}.npz"))


@pytest.fixture(scope="module")
def loaded_tensorflow(presets):
    return _loaded(presets, "tensorflow")


@pytest.mark.slow
@lane.reads(_presets)
def test_reference_probabilities_are_peaked_so_a_1e5_tolerance_means_something(presets):
    for probabilities, _ in presets["references"].values():
        assert probabilities.max() > 0.95
        assert len(set(probabilities.argmax(axis=1))) > 1


@pytest.mark.slow
@lane.reads(_presets)
@pytest.mark.parametrize("variant", ["bn", "paper"])
def test_image_classifier_from_preset_gives_the_checkpoint_probabilities_on_the_photos(presets, loaded_tensorflow, variant):
    expected, _ = presets["references"][variant]
    assert str(loaded_tensorflow[f"{variant}_classifier_class"]) == "GoogLeNetImageClassifier"
    np.testing.assert_allclose(loaded_tensorflow[f"{variant}_probabilities"], expected, atol=1e-5, rtol=0)


@pytest.mark.slow
@lane.reads(_presets)
@pytest.mark.parametrize("variant", ["bn", "paper"])
def test_backbone_from_preset_gives_the_include_top_false_features(presets, loaded_tensorflow, variant):
    _, expected = presets["references"][variant]
    features = loaded_tensorflow[f"{variant}_features"]
    # 3 x 3 for "bn" and 2 x 2 for "paper" (Caffe's ceil-mode pools) at 80 px.
    assert features.shape == expected.shape and (features.shape[0], features.shape[-1]) == (6, 1024)
    np.testing.assert_allclose(features, expected, atol=1e-5 * np.abs(expected).max(), rtol=0)


@pytest.mark.slow
@lane.reads(_presets)
@pytest.mark.parametrize("variant", ["bn", "paper"])
def test_preset_carries_the_checkpoint_class_names(loaded_tensorflow, variant):
    assert loaded_tensorflow[f"{variant}_class_names"].tolist() == CLASS_NAMES


@pytest.mark.slow
@lane.reads(_presets)
@pytest.mark.parametrize("variant", ["bn", "paper"])
def test_from_preset_with_bfloat16_builds_bfloat16_weights(loaded_tensorflow, variant):
    assert loaded_tensorflow[f"{variant}_bfloat16_dtypes"].tolist() == ["bfloat16"]


@pytest.mark.slow
@lane.reads(_presets)
@pytest.mark.parametrize("backend", ["jax", pytest.param("torch", marks=needs_torch)])
def test_presets_give_the_same_probabilities_and_features_on_other_backends(presets, backend):
    loaded = _loaded(presets, backend)
    for variant, (probabilities, features) in presets["references"].items():
        np.testing.assert_allclose(loaded[f"{variant}_features"], features, atol=1e-5 * np.abs(features).max(), rtol=0)
        # Other convolution kernels round differently: logits several units
        # apart move by ~5e-5, probabilities by up to 1.1e-5 on one 2-core
        # machine and 2.01e-5 (JAX, a 0.50 probability) on another. A wrong
        # weight layout moves them by more than 1e-2.
        np.testing.assert_allclose(loaded[f"{variant}_probabilities"], probabilities, atol=5e-5, rtol=0)


@pytest.mark.slow
@lane.reads(_presets)
def test_preset_has_keras_hub_files_a_model_card_and_our_name(presets):
    bn, paper = (presets["paths"][variant] for variant in ("bn", "paper"))
    for folder in (bn, paper):
        names = set(os.listdir(folder))
        assert {"config.json", "task.json", "model.weights.h5", "task.weights.h5", "metadata.json", "README.md"} <= names
        for name in names - {"model.weights.h5", "task.weights.h5"}:
            assert KERASHUB_DEFAULT_NAME not in open(os.path.join(folder, name)).read(), name
    metadata = json.loads(open(os.path.join(paper, "metadata.json")).read())
    assert metadata["keras_googlenet"] == {
        "name": f"googlenet_paper_{SIZE}", "variant": "paper", "image_size": SIZE, "class_names": CLASS_NAMES, "raw_pixels": True,
    }
    assert json.loads(open(os.path.join(bn, "metadata.json")).read())["keras_googlenet"]["name"] == "googlenet_bn_photos"


@pytest.mark.slow
@lane.reads(_presets)
def test_model_card_names_the_variant_size_classes_training_and_how_to_load(presets):
    card = open(os.path.join(presets["paths"]["bn"], "README.md")).read()
    assert card.startswith("---\nlibrary_name: keras-hub\n")
    assert "# googlenet_bn_photos" in card
    assert "variant `bn`" in card and f"{SIZE} x {SIZE}" in card
    assert "`bird`, `cat`, `person`, `food`" in card
    assert "for 3 epochs, global batch size 32; top-1 87.50% on 40 validation images" in card
    assert "import keras_googlenet.kerashub" in card and "Licence" in card
    paper_card = open(os.path.join(presets["paths"]["paper"], "README.md")).read()
    assert "`BGR` channel order, mean [104.0, 117.0, 123.0]" in paper_card
    assert "Training**: not recorded" in paper_card


def test_export_refuses_an_unknown_format_before_loading_anything(tmp_path):
    from keras_googlenet.export import convert as export

    with pytest.raises(ValueError, match=r"^`formats` must be from .*'kerashub'.*Received: formats=\['kerashub', 'hub'\]$"):
        export.export(tmp_path / "missing.keras", tmp_path / "out", formats=["kerashub", "hub"])


def test_export_says_how_to_install_keras_hub_when_it_is_missing(tmp_path, monkeypatch):
    import importlib.util

    from keras_googlenet.export import convert as export

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "keras_hub" else find_spec(name, *a))
    with pytest.raises(ValueError, match=r'pip install "keras-googlenet\[kerashub\]"\. Received: formats=\[\'kerashub\'\]$'):
        export.export(tmp_path / "missing.keras", tmp_path / "out", formats=["kerashub"])


def test_save_preset_refuses_an_empty_name_before_loading(tmp_path):
    from keras_googlenet.export import kerashub_preset

    with pytest.raises(ValueError, match=r"^The preset `name` must be a non-empty string on one line\. Received: name=''$"):
        kerashub_preset.save_preset(tmp_path / "missing.keras", tmp_path / "preset", name="")


def test_save_preset_refuses_a_folder_under_a_file_before_loading(tmp_path):
    from keras_googlenet.export import kerashub_preset

    (tmp_path / "notes.txt").write_text("a file")
    with pytest.raises(ValueError, match=r"^The preset folder cannot be created under the file .*notes\.txt'\. Received: directory="):
        kerashub_preset.save_preset(tmp_path / "missing.keras", tmp_path / "notes.txt" / "preset")


def test_classifier_refuses_class_names_of_another_length():
    from keras_googlenet import kerashub

    backbone = kerashub.GoogLeNetBackbone(variant="bn", image_shape=(SIZE, SIZE, 3))
    with pytest.raises(ValueError, match=r"^`class_names` must be 3 strings, one per class\. Received: class_names=\['a', 'b'\]$"):
        kerashub.GoogLeNetImageClassifier(backbone, 3, class_names=["a", "b"])


def test_backbone_round_trips_through_its_config():
    from keras_googlenet import kerashub

    backbone = kerashub.GoogLeNetBackbone(variant="paper", image_shape=(SIZE, SIZE, 3), dtype="bfloat16")
    clone = kerashub.GoogLeNetBackbone.from_config(backbone.get_config())
    assert (clone.variant, clone.image_shape, clone.name) == ("paper", (SIZE, SIZE, 3), "googlenet_backbone")
    assert [layer.name for layer in clone.layers] == [layer.name for layer in backbone.layers]
    assert {v.dtype for v in clone.weights} == {"bfloat16"}
    assert clone.count_params() == backbone.count_params()


def test_googlenet_dtype_sets_the_weights_and_keeps_the_softmax_outputs_float32():
    import keras_googlenet as kg

    model = kg.GoogLeNet(variant="paper", input_shape=(SIZE, SIZE, 3), classes=4, dtype="bfloat16")
    assert {v.dtype for v in model.weights} == {"bfloat16"}
    assert [output.dtype for output in model.outputs] == ["float32"] * 3
    mixed = kg.GoogLeNet(variant="bn", input_shape=(SIZE, SIZE, 3), classes=4, aux_heads=False, dtype="mixed_bfloat16")
    assert {v.dtype for v in mixed.weights} == {"float32"}
    assert mixed.get_layer("inception_3a_1x1").compute_dtype == "bfloat16"


@pytest.mark.parametrize("dtype", ["int32", "int8_from_float32", "float33", 16])
def test_googlenet_refuses_a_dtype_that_is_no_floating_policy(dtype):
    import keras_googlenet as kg

    with pytest.raises(ValueError, match=rf"^The `dtype` argument must be None, .*\. Received: dtype={dtype!r}$"):
        kg.GoogLeNet(dtype=dtype)


def test_importing_the_package_loads_neither_keras_hub_nor_tensorflow():
    code = "import sys, keras_googlenet; print(sorted({'keras_hub', 'tensorflow', 'keras'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], check=True, timeout=120, capture_output=True, text=True)
    assert result.stdout.strip() == "[]"


def test_the_kerashub_classes_keep_the_registered_names_that_presets_carry():
    import keras

    from keras_googlenet import kerashub

    names = {cls.__name__: keras.saving.get_registered_name(cls) for cls in (
        kerashub.GoogLeNetBackbone, kerashub.GoogLeNetImageConverter,
        kerashub.GoogLeNetImageClassifierPreprocessor, kerashub.GoogLeNetImageClassifier,
    )}
    assert names == {name: f"keras_googlenet>{name}" for name in names}
    assert kerashub.GoogLeNetBackbone.__module__ == "keras_googlenet.kerashub"  # the module a preset's config.json names


if __name__ == "__main__":
    build_presets(pathlib.Path(sys.argv[1]))
