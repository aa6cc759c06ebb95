"""Caffe's BVLC GoogLeNet weights: the .caffemodel reader, its errors, and parity with OpenCV's importer.

The tests write their own caffemodels (tests/support/caffe_writer.py, from the
protobuf spec) with random weights; OpenCV's Caffe importer, run in a
subprocess, is the independent reference.
"""

import dataclasses
import hashlib
import importlib.util
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import caffe_writer
import keras_googlenet as kg
from keras_googlenet import weights
from keras_googlenet.data import images
from keras_googlenet.weights import caffe, registry

needs_opencv = pytest.mark.skipif(
    importlib.util.find_spec("cv2") is None, reason="OpenCV's Caffe importer is the reference: pip install 'opencv-contrib-python<5'"
)

# Typed in from bvlc_googlenet's train_val.prototxt: BGR, mean_value 104, 117, 123.
BVLC_MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype="float32")


def caffe_input(pixels):
    """What Caffe's data layer feeds bvlc_googlenet: BGR, minus the mean, no scaling."""
    return pixels[..., ::-1] - BVLC_MEAN_BGR


def photo_batch(photo_paths, size):
    return np.stack([
        np.asarray(Image.fromarray(images.load_image(path)).resize((size, size), Image.BILINEAR), dtype="float32")
        for path in photo_paths
    ])


@pytest.fixture(scope="module")
def random_weights():
    return caffe_writer.random_bvlc_weights(seed=0)


@pytest.fixture(scope="module")
def v2_file(random_weights, tmp_path_factory):
    return caffe_writer.write_caffemodel(tmp_path_factory.mktemp("v2") / "bvlc.caffemodel", random_weights, "V2")


# --- The registry entry -----------------------------------------------------------------------


def test_bvlc_entry_states_the_model_zoo_facts():
    entry = weights.lookup("imagenet", "paper")
    assert entry is weights.BVLC_GOOGLENET and entry.name == "bvlc_googlenet"
    assert entry.url == "http://dl.caffe.berkeleyvision.org/bvlc_googlenet.caffemodel"
    assert entry.sha256 == "6f7101e3a2183738a7125a0c5021ba82a1feb4228c5ca0924d991b6daf6f6fad"
    assert entry.file_size == 53_533_754 and entry.file_format == "caffemodel"
    assert entry.trained_heads == ("main", "aux1", "aux2")
    assert entry.metrics == {"acc@1": 68.7, "acc@5": 88.9}
    assert (entry.resize_size, entry.crop_size) == (256, 224)
    assert entry.licence.startswith("unrestricted")
    scaling = entry.input_scaling
    assert (scaling.channel_order, scaling.mean, scaling.std) == ("BGR", (104.0, 117.0, 123.0), (1.0, 1.0, 1.0))


def test_bvlc_parameter_counts_are_those_of_the_paper_model():
    with_aux = kg.GoogLeNet(weights=None)
    without_aux = kg.GoogLeNet(weights=None, aux_heads=False)
    assert with_aux.count_params() == weights.BVLC_GOOGLENET.num_params_with_aux == 13_378_280
    assert without_aux.count_params() == weights.BVLC_GOOGLENET.num_params == 6_998_552


def test_paper_preprocessing_is_caffes_data_layer():
    pixels = np.random.default_rng(0).uniform(0, 255, size=(2, 5, 5, 3)).astype("float32")
    np.testing.assert_allclose(kg.preprocess_input(pixels, variant="paper"), caffe_input(pixels), atol=1e-4)
    np.testing.assert_allclose(weights.BVLC_GOOGLENET.preprocess(pixels), caffe_input(pixels), atol=1e-4)


@pytest.mark.slow
def test_importing_the_weights_package_does_not_import_the_model(tmp_path):
    # keras_googlenet/__init__ imports the builder, so the package is stubbed:
    # only the weights modules and what they import are loaded.
    package = pathlib.Path(kg.__file__).parent
    code = (
        "import sys, types\n"
        f"stub = types.ModuleType('keras_googlenet'); stub.__path__ = [{str(package)!r}]\n"
        "sys.modules['keras_googlenet'] = stub\n"
        "import keras_googlenet.weights\n"
        "assert 'keras_googlenet.weights.caffe' in sys.modules\n"
        "print(sorted(m for m in sys.modules if m.startswith('keras_googlenet.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "keras_googlenet.weights.registry" in result.stdout
    assert "keras_googlenet.model.googlenet" not in result.stdout


# --- Reading the wire format ------------------------------------------------------------------


def small_net(**blob_options):
    """Two layers of bvlc_googlenet with distinct values, enough for the reader alone."""
    rng = np.random.default_rng(1)
    return {
        "conv1/7x7_s2": ("Convolution", [rng.standard_normal((64, 3, 7, 7)), rng.standard_normal(64)]),
        "loss3/classifier": ("InnerProduct", [rng.standard_normal((1000, 1024)), rng.standard_normal(1000)]),
    }


@pytest.mark.parametrize(
    "version, options",
    [("V1", {}), ("V2", {}), ("V1", {"packed": False}), ("V2", {"double": True}), ("V2", {"packed": False, "double": True})],
    ids=["v1", "v2", "v1-unpacked", "v2-double", "v2-unpacked-double"],
)
def test_v1_and_v2_layers_read_back_in_caffe_shapes(tmp_path, version, options):
    net = small_net()
    path = caffe_writer.write_caffemodel(tmp_path / "net.caffemodel", net, version, **options)
    layers = caffe.read_caffemodel(path)
    assert [(layer.name, layer.type) for layer in layers] == [
        ("conv1/7x7_s2", "Convolution"), ("loss3/classifier", "InnerProduct")
    ]
    conv, fc = layers
    dtype = "float64" if options.get("double") else "float32"
    np.testing.assert_array_equal(conv.blobs[0], net["conv1/7x7_s2"][1][0].astype(dtype))
    # V1 keeps Caffe's 4D blob shapes: (1, 1, out, in) and (1, 1, 1, out).
    assert fc.blobs[0].shape == ((1, 1, 1000, 1024) if version == "V1" else (1000, 1024))
    assert fc.blobs[1].shape == ((1, 1, 1, 1000) if version == "V1" else (1000,))
    np.testing.assert_array_equal(fc.blobs[1].ravel(), net["loss3/classifier"][1][1].astype(dtype))


def test_conversion_gives_keras_layouts_and_permutes_the_aux_fc_inputs(v2_file, random_weights):
    converted = caffe.read_layer_weights(v2_file)
    assert len(converted) == 64 and "aux1_fc" in converted and "loss3_classifier" in converted
    conv = random_weights["inception_4a/5x5"][1][0]  # (out, in, kh, kw)
    assert converted["inception_4a_5x5"][0][4, 1, 7, 30] == conv[30, 7, 4, 1]
    # loss1/fc reads the 128 x 4 x 4 map in Caffe's CHW order: input c*16 + h*4 + w.
    # Keras' Flatten of the 4 x 4 x 128 map puts (h, w, c) at h*512 + w*128 + c.
    fc = random_weights["loss1/fc"][1][0]  # (1024, 2048)
    kernel = converted["aux1_fc"][0]  # (2048, 1024)
    for h, w, c, unit in [(0, 0, 0, 0), (1, 2, 3, 4), (3, 3, 127, 1023), (2, 0, 64, 500)]:
        assert kernel[h * 512 + w * 128 + c, unit] == fc[unit, c * 16 + h * 4 + w]
    np.testing.assert_array_equal(converted["loss3_classifier"][0], random_weights["loss3/classifier"][1][0].T)
    np.testing.assert_array_equal(converted["aux2_classifier"][1], random_weights["loss2/classifier"][1][1])


# --- Bad files: one clear error naming the file, nothing loaded ------------------------------


def refused(path, match):
    with pytest.raises(ValueError, match=match) as error:
        weights.read_layer_weights(path)
    message = str(error.value)
    assert "\n" not in message and message.endswith(f"Received: path={str(path)!r}")
    return message


def test_an_empty_file_is_refused(tmp_path):
    (tmp_path / "empty.caffemodel").write_bytes(b"")
    refused(tmp_path / "empty.caffemodel", "is empty")


def test_a_truncated_file_is_refused(tmp_path, v2_file):
    data = v2_file.read_bytes()
    (tmp_path / "cut.caffemodel").write_bytes(data[: len(data) // 2])
    refused(tmp_path / "cut.caffemodel", r"Not a readable Caffe model: it is truncated")


def test_a_prototxt_passed_as_weights_is_refused(tmp_path):
    path = tmp_path / "deploy.caffemodel"
    path.write_text(caffe_writer.prototxt(224))
    refused(path, r"is text \(a \.prototxt describes the network; the weights are in the binary \.caffemodel\)")


def test_the_v0_format_is_refused(tmp_path):
    v0_layer = caffe_writer.length_delimited(1, caffe_writer.length_delimited(1, b"conv1"))  # V1.layer = V0LayerParameter
    path = tmp_path / "v0.caffemodel"
    path.write_bytes(caffe_writer.length_delimited(2, v0_layer))
    refused(path, r"V0 format .* upgrade_net_proto_binary")


def test_a_file_that_is_not_a_net_is_refused(tmp_path):
    path = tmp_path / "random.caffemodel"
    path.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))
    refused(path, r"Not a readable Caffe model")


def test_the_first_missing_layer_is_named(tmp_path):
    path = caffe_writer.write_caffemodel(tmp_path / "missing.caffemodel", small_net(), "V1")
    refused(path, r"has no layer 'conv2/3x3_reduce': it is not bvlc_googlenet")


def test_an_extra_layer_with_weights_is_named(tmp_path):
    net = {"conv1/7x7_s2": small_net()["conv1/7x7_s2"], "fc6": ("InnerProduct", [np.zeros((10, 4)), np.zeros(10)])}
    path = caffe_writer.write_caffemodel(tmp_path / "alexnet.caffemodel", net, "V2")
    refused(path, r"has a layer 'fc6' \(InnerProduct\) with weights that bvlc_googlenet does not have")


def test_a_wrong_shape_names_the_layer_and_both_shapes(tmp_path):
    net = small_net()
    net["inception_4a/5x5"] = ("Convolution", [np.zeros((48, 16, 3, 3)), np.zeros(48)])  # torchvision's 3x3
    path = caffe_writer.write_caffemodel(tmp_path / "bn.caffemodel", net, "V1")
    refused(path, r"layer 'inception_4a/5x5' has a blob of shape \(48, 16, 3, 3\), bvlc_googlenet's is \(48, 16, 5, 5\)")


def test_ten_classes_are_refused_naming_the_classifier(tmp_path):
    net = {"loss3/classifier": ("InnerProduct", [np.zeros((10, 1024)), np.zeros(10)])}
    path = caffe_writer.write_caffemodel(tmp_path / "ten.caffemodel", net, "V2")
    refused(path, r"'loss3/classifier' has a blob of shape \(10, 1024\), bvlc_googlenet's is \(1000, 1024\)")


def test_a_failed_load_leaves_the_model_as_it_was(tmp_path, random_weights):
    net = dict(random_weights)
    net["loss2/classifier"] = ("InnerProduct", [np.zeros((1000, 512)), np.zeros(1000)])  # the last aux layer
    path = caffe_writer.write_caffemodel(tmp_path / "late.caffemodel", net, "V2")
    model = kg.GoogLeNet(input_shape=(224, 224, 3))
    before = model.get_layer("conv1_7x7_s2").kernel.numpy().copy()
    with pytest.raises(ValueError, match="loss2/classifier"):
        weights.load_pretrained(model, str(path), "paper", build_model=kg.GoogLeNet)
    np.testing.assert_array_equal(model.get_layer("conv1_7x7_s2").kernel.numpy(), before)


def test_assign_weights_checks_every_layer_before_setting_any():
    model = kg.GoogLeNet(include_top=False, input_shape=(64, 64, 3), aux_heads=False)
    layer_weights = {layer.name: [np.ones(w.shape) for w in layer.weights] for layer in model.layers if layer.weights}
    layer_weights["inception_5b_pool_proj"][0] = np.ones((1, 1, 832, 1))
    before = model.get_layer("conv1_7x7_s2").kernel.numpy().copy()
    with pytest.raises(ValueError, match=r"layer 'inception_5b_pool_proj' the shapes \[\(1, 1, 832, 1\), \(128,\)\]"):
        weights.assign_weights(model, layer_weights, "These weights")
    np.testing.assert_array_equal(model.get_layer("conv1_7x7_s2").kernel.numpy(), before)


# --- The builder's rules -------------------------------------------------------------------------


def test_caffe_weights_refuse_the_bn_variant(tmp_path):
    path = tmp_path / "bvlc.caffemodel"
    path.write_bytes(b"not read: the arguments are checked first")
    with pytest.raises(ValueError, match=r"A \.caffemodel file holds variant='paper' weights; pass variant='paper' \(or None\)\. Received: variant='bn'"):
        kg.GoogLeNet(weights=str(path), variant="bn")
    with pytest.raises(ValueError, match=r"`classes` must be 1000.* Received: classes=10"):
        kg.GoogLeNet(weights=str(path), classes=10)


def test_imagenet_has_one_set_per_variant_and_none_means_paper():
    assert weights.lookup("imagenet", "paper").trained_heads == ("main", "aux1", "aux2")
    assert weights.lookup("imagenet", "bn") is weights.IMAGENET1K_V1


@pytest.mark.slow
def test_a_file_without_aux_heads_loads_the_rest_and_warns(tmp_path, random_weights):
    net = {name: value for name, value in random_weights.items() if not name.startswith(("loss1/", "loss2/"))}
    path = caffe_writer.write_caffemodel(tmp_path / "deploy_only.caffemodel", net, "V2")
    with pytest.warns(UserWarning, match=r"have no auxiliary heads \(Caffe's loss1/\*, loss2/\*\): aux1 and aux2 start fresh"):
        model = kg.GoogLeNet(weights=str(path))
    np.testing.assert_array_equal(model.get_layer("loss3_classifier").bias.numpy(), random_weights["loss3/classifier"][1][1])
    assert not np.array_equal(model.get_layer("aux1_classifier").bias.numpy(), random_weights["loss1/classifier"][1][1])


@pytest.mark.slow
def test_convert_file_writes_all_three_heads_for_the_paper_model(v2_file, random_weights, tmp_path):
    out = tmp_path / "bvlc.weights.h5"
    assert weights.convert_file(v2_file, out, build_model=kg.GoogLeNet) == (str(out), "paper", True)
    model = kg.GoogLeNet(weights=str(out))
    np.testing.assert_array_equal(model.get_layer("aux2_classifier").kernel.numpy(), random_weights["loss2/classifier"][1][0].T)
    # The format is read from the content when the name does not say it.
    renamed = tmp_path / "bvlc.bin"
    renamed.write_bytes(v2_file.read_bytes())
    assert weights.detect_format(renamed) == "caffemodel"


# --- Download, checksum and cache ------------------------------------------------------------


@pytest.fixture()
def served_bvlc(v2_file, tmp_path, monkeypatch):
    """Points weights='imagenet' (variant "paper") at a file:// copy of a random caffemodel, with its sha256."""
    served = tmp_path / "server" / "bvlc_googlenet.caffemodel"
    served.parent.mkdir()
    served.write_bytes(v2_file.read_bytes())
    digest = hashlib.sha256(served.read_bytes()).hexdigest()
    entry = dataclasses.replace(
        weights.BVLC_GOOGLENET, url=served.as_uri(), sha256=digest, sha256_prefix=digest, file_size=served.stat().st_size
    )
    monkeypatch.setitem(registry.PRETRAINED_WEIGHTS, ("imagenet", "paper"), entry)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return entry, served


@pytest.mark.slow
def test_imagenet_downloads_checks_converts_once_then_works_offline(served_bvlc, random_weights, tmp_path, monkeypatch):
    entry, served = served_bvlc
    reads = []
    read = registry.read_layer_weights
    monkeypatch.setattr(registry, "read_layer_weights", lambda *args: reads.append(args) or read(*args))
    first = kg.GoogLeNet(weights="imagenet")  # variant=None: the paper network, BVLC's weights
    cache = tmp_path / "keras_home" / "models"
    assert sorted(p.name for p in cache.iterdir()) == ["bvlc_googlenet.caffemodel", "bvlc_googlenet_keras_paper.weights.h5"]
    served.unlink()  # offline from now on
    (cache / entry.file_name).unlink()  # the converted file alone is enough
    second = kg.GoogLeNet(weights="imagenet", include_top=False, input_shape=(193, 193, 3))
    assert len(reads) == 1
    expected = random_weights["loss1/fc"][1][1]
    np.testing.assert_array_equal(first.get_layer("aux1_fc").bias.numpy(), expected)
    for model in (first, second):
        np.testing.assert_array_equal(
            model.get_layer("inception_5b_1x1").bias.numpy(), random_weights["inception_5b/1x1"][1][1]
        )


def test_a_download_with_the_wrong_sha256_is_deleted_and_not_cached(served_bvlc, tmp_path, monkeypatch):
    entry, served = served_bvlc
    monkeypatch.setitem(registry.PRETRAINED_WEIGHTS, ("imagenet", "paper"), dataclasses.replace(entry, sha256_prefix="0" * 64))
    with pytest.raises(ValueError, match=r"Checksum mismatch for the downloaded bvlc_googlenet\.caffemodel .*; the file was deleted\. Received: url='file://"):
        kg.GoogLeNet(weights="imagenet")
    assert list((tmp_path / "keras_home" / "models").iterdir()) == []


# --- Against OpenCV's Caffe importer ----------------------------------------------------------


@pytest.fixture(scope="module")
def peaked_model(random_weights, tmp_path_factory, photo_paths):
    """Random weights whose three softmaxes are peaked and differ between the photos, in V1 and V2 files.

    He-scaled random nets give every image nearly the same logits, dominated
    by the mean feature. From a first OpenCV pass, each classifier is rescaled
    and its bias set so that the logits become ``s * (L - mean_over_photos(L))
    + noise``: logits with a standard deviation of about 4, whose top-1 depends on the photo.
    """
    folder = tmp_path_factory.mktemp("peaked")
    first = caffe_writer.write_caffemodel(folder / "first.caffemodel", random_weights, "V2")
    batch = caffe_input(photo_batch(photo_paths, 224))
    names = ["loss3/classifier", "loss1/classifier", "loss2/classifier"]
    logits = caffe_writer.opencv_forward(folder, caffe_writer.prototxt(224), first, batch, names)
    net = dict(random_weights)
    rng = np.random.default_rng(1)
    for name in names:
        deviation = logits[name] - logits[name].mean(0)
        scale = 4.0 / deviation.std()
        weight, bias = net[name][1]
        mean_logits = logits[name].mean(0)
        new_bias = scale * (bias - mean_logits) + rng.standard_normal(bias.shape).astype("float32")
        net[name] = ("InnerProduct", [weight * scale, new_bias.astype("float32")])
    return {
        "V1": caffe_writer.write_caffemodel(folder / "v1.caffemodel", net, "V1"),
        "V2": caffe_writer.write_caffemodel(folder / "v2.caffemodel", net, "V2"),
    }


KERAS_OUTPUTS = {  # OpenCV blob name -> Keras layer name
    "prob": "main", "loss1/prob": "aux1", "loss2/prob": "aux2",
    "loss3/classifier": "loss3_classifier", "loss1/classifier": "aux1_classifier", "loss2/classifier": "aux2_classifier",
    "inception_4a/output": "inception_4a_output", "inception_5b/output": "inception_5b_output",
}


@needs_opencv
@pytest.mark.slow
def test_three_heads_match_opencv_at_224_px_from_a_v1_file(peaked_model, photo_paths, tmp_path):
    import keras

    pixels = photo_batch(photo_paths, 224)
    reference = caffe_writer.opencv_forward(
        tmp_path, caffe_writer.prototxt(224), peaked_model["V1"], caffe_input(pixels), list(KERAS_OUTPUTS)
    )
    model = kg.GoogLeNet(weights=str(peaked_model["V1"]))
    probe = keras.Model(model.input, [model.get_layer(name).output for name in KERAS_OUTPUTS.values()])
    ours = dict(zip(KERAS_OUTPUTS, probe.predict(kg.preprocess_input(pixels, variant="paper"), verbose=0)))
    for head in ("prob", "loss1/prob", "loss2/prob"):
        probabilities = reference[head]
        assert probabilities.max(-1).mean() > 0.3, head  # peaked: uniform would be 0.001
        assert len(set(probabilities.argmax(-1))) >= 3, head  # the photo decides, not the bias
        assert np.abs(ours[head] - probabilities).max() <= 1e-4, head
        assert (ours[head].argmax(-1) == probabilities.argmax(-1)).all(), head
    for name in ("loss3/classifier", "loss1/classifier", "loss2/classifier"):
        assert np.abs(ours[name] - reference[name]).max() <= 1e-4 * np.abs(reference[name]).max(), name
    for name in ("inception_4a/output", "inception_5b/output"):
        expected = reference[name].transpose(0, 2, 3, 1)
        assert np.abs(ours[name] - expected).max() <= 1e-5 * np.abs(expected).max(), name


@needs_opencv
@pytest.mark.slow
@pytest.mark.parametrize("size", [224, 160, 193])
def test_backbone_matches_opencv_at_other_sizes_from_a_v2_file(peaked_model, photo_paths, tmp_path, size):
    # 193 px: maps of 97, 48, 24, 12 and 6 (pool2, pool3 and pool4 round 22.5,
    # 10.5 and 4.5 up); 160 px: 80, 40, 20, 10, 5. Caffe's max pools round
    # up, which the builder's padded pools reproduce.
    pixels = photo_batch(photo_paths, size)
    names = ["inception_4a/output", "inception_5b/output"]
    reference = caffe_writer.opencv_forward(
        tmp_path, caffe_writer.prototxt(size, heads=False), peaked_model["V2"], caffe_input(pixels), names
    )
    model = kg.GoogLeNet(weights=str(peaked_model["V2"]), include_top=False, input_shape=(size, size, 3))
    import keras

    probe = keras.Model(model.input, [model.get_layer("inception_4a_output").output, model.output])
    ours = probe.predict(kg.preprocess_input(pixels, variant="paper"), verbose=0)
    for name, value in zip(names, ours):
        expected = reference[name].transpose(0, 2, 3, 1)
        assert value.shape == expected.shape, name
        assert np.abs(value - expected).max() <= 1e-5 * np.abs(expected).max(), name
