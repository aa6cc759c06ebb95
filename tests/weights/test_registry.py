"""Pretrained weights: torchvision parity, the ImageNet description, download, cache, conversion."""

import dataclasses
import functools
import hashlib
import http.server
import pathlib
import threading

import numpy as np
import pytest
from PIL import Image

from markers import needs_torch
import keras_googlenet as kg
from keras_googlenet import weights
from keras_googlenet.data import images
from keras_googlenet.weights import registry, torch_checkpoint, torchvision

pytestmark = pytest.mark.after_alone  # torch in the main process: after Ray's cluster test (conftest)

# The constants of torchvision's Normalize and transform_input, written out
# again here so that the algebra test does not reuse the code it checks.
MEAN = np.array([0.485, 0.456, 0.406], dtype="float64")
STD = np.array([0.229, 0.224, 0.225], dtype="float64")


def imagenet_normalize(pixels):
    """torchvision's ToTensor + Normalize(mean, std), channels last."""
    return (pixels / 255.0 - MEAN) / STD


def torchvision_transform_input(normalized):
    """torchvision GoogLeNet._transform_input, channels last."""
    return normalized * (STD / 0.5) + (MEAN - 0.5) / 0.5


def test_transform_input_after_imagenet_normalisation_is_bn_preprocessing():
    pixels = np.random.default_rng(0).uniform(0, 255, size=(2, 8, 8, 3))
    expected = torchvision_transform_input(imagenet_normalize(pixels))
    np.testing.assert_allclose(kg.preprocess_input(pixels.copy(), variant="bn"), expected, atol=1e-6)
    np.testing.assert_allclose(expected, pixels / 127.5 - 1.0, atol=1e-12)


def test_imagenet_weights_say_where_they_come_from_and_how_good_they_are():
    entry = weights.PRETRAINED_WEIGHTS[("imagenet", "bn")]
    assert entry is weights.IMAGENET1K_V1 and weights.lookup("imagenet", "bn") is entry
    assert entry.trained_heads == ("main",) and entry.sha256 is None and entry.file_format == "pth"
    assert entry.url == "https://download.pytorch.org/models/googlenet-1378be20.pth"
    assert entry.file_name == f"googlenet-{entry.sha256_prefix}.pth"
    assert entry.metrics == {"acc@1": 69.778, "acc@5": 89.53}
    assert entry.variant == "bn" and (entry.resize_size, entry.crop_size) == (256, 224)
    assert len(entry.categories) == 1000 and entry.categories[0] == "tench"
    np.testing.assert_allclose(entry.preprocess(np.array([0.0, 127.5, 255.0])), [-1.0, 0.0, 1.0])


def test_imagenet_num_params_is_the_trainable_size_of_the_bn_main_network():
    model = kg.GoogLeNet(variant="bn", aux_heads=False)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == weights.IMAGENET1K_V1.num_params


def test_cache_directory_follows_cache_dir_then_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    assert weights.cache_directory() == str(tmp_path / "home" / "models")
    assert weights.cache_directory(str(tmp_path / "other")) == str(tmp_path / "other" / "models")


def test_conversion_refuses_a_state_dict_that_is_not_googlenet():
    with pytest.raises(ValueError, match=r"has no 'conv1\.conv\.weight'\. Received: state_dict with 1 keys"):
        torchvision.convert_state_dict({"features.0.weight": np.zeros((64, 3, 3, 3))})


@pytest.mark.parametrize("variant", ["paper", None])
def test_pth_weights_refuse_the_paper_variant_which_none_means(tmp_path, variant):
    path = tmp_path / "googlenet.pth"
    path.write_bytes(b"not read: the arguments are checked first")
    with pytest.raises(ValueError, match=r"A \.pth file holds variant='bn' weights; pass variant='bn'\. Received: variant='paper'"):
        kg.GoogLeNet(weights=str(path), variant=variant)


def test_pth_weights_keep_the_pretrained_input_checks(tmp_path):
    path = tmp_path / "googlenet.pth"
    path.write_bytes(b"not read: the arguments are checked first")
    with pytest.raises(ValueError, match=r"input_shape must be \(224, 224, 3\).* Received: input_shape=\(200, 200, 3\)"):
        kg.GoogLeNet(weights=str(path), variant="bn", input_shape=(200, 200, 3))
    with pytest.raises(ValueError, match=r"`classes` must be 1000.* Received: classes=10"):
        kg.GoogLeNet(weights=str(path), variant="bn", classes=10)


def test_missing_pth_is_refused_before_building():
    with pytest.raises(ValueError, match=r"does not exist\. Received: weights='/nowhere/googlenet\.pth'"):
        kg.GoogLeNet(weights="/nowhere/googlenet.pth", variant="bn")


# --- Against PyTorch: torchvision's semantics, random weights ------------------------------------



def random_torchvision_googlenet(seed=0):
    """torchvision's googlenet as loaded with weights: transform_input=True, eval mode, random weights.

    BN running statistics are random too, so that a mix-up of mean and
    variance or of gamma and beta changes the logits.
    """
    import torch

    from benchmarks.torch_googlenet import torchvision_googlenet

    generator = torch.Generator().manual_seed(seed)
    model = torchvision_googlenet(aux_logits=True, transform_input=True)
    state = model.state_dict()
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        if key.endswith(("running_var", "bn.weight")):
            new = torch.empty(value.shape).uniform_(0.5, 1.5, generator=generator)
        elif value.dim() == 1:  # BN beta and running mean, FC biases
            new = 0.1 * torch.randn(value.shape, generator=generator)
        else:  # He initialisation keeps the activations near unit scale through 60 layers
            fan_in = value[0].numel()
            new = torch.randn(value.shape, generator=generator) * (2.0 / fan_in) ** 0.5
        state[key] = new
    model.load_state_dict(state)
    return model.eval()


@pytest.fixture(scope="module")
def torch_model():
    return random_torchvision_googlenet()


@pytest.fixture(scope="module")
def checkpoints(torch_model, tmp_path_factory):
    """The torch model's state dict, saved in the legacy format (as the 2019 file) and the zip format."""
    import torch

    folder = tmp_path_factory.mktemp("checkpoints")
    paths = {"legacy": folder / "legacy.pth", "zip": folder / "zip.pth"}
    torch.save(torch_model.state_dict(), paths["legacy"], _use_new_zipfile_serialization=False)
    torch.save(torch_model.state_dict(), paths["zip"])
    return paths


def photo_batch(photo_paths, size):
    return np.stack([
        np.asarray(Image.fromarray(images.load_image(path)).resize((size, size), Image.BILINEAR), dtype="float32")
        for path in photo_paths
    ])


def torch_forward(module, pixels):
    """torchvision's pipeline: Normalize, NCHW, then the model (with transform_input=True)."""
    import torch

    normalized = imagenet_normalize(pixels.astype("float64")).astype("float32")
    with torch.no_grad():
        return module(torch.from_numpy(normalized).permute(0, 3, 1, 2))


@needs_torch
@pytest.mark.slow
def test_logits_match_torchvision_at_224_px_from_a_legacy_pth(torch_model, checkpoints, photo_paths):
    pixels = photo_batch(photo_paths, 224)
    model = kg.GoogLeNet(weights=str(checkpoints["legacy"]), variant="bn", aux_heads=False, classifier_activation=None)
    keras_logits = model.predict(kg.preprocess_input(pixels.copy(), variant="bn"), verbose=0)
    torch_logits = torch_forward(torch_model, pixels).numpy()
    assert torch_logits.std() > 0.1  # logits that would expose a wrong weight
    assert np.abs(keras_logits - torch_logits).max() <= 1e-4
    assert (keras_logits.argmax(-1) == torch_logits.argmax(-1)).all()


@needs_torch
@pytest.mark.slow
def test_logits_match_torchvision_at_200_px_through_the_backbone_from_a_zip_pth(torch_model, checkpoints, photo_paths):
    # Pretrained weights with include_top=True take 224 px only (the
    # keras.applications rule). torchvision's adaptive pool takes any size, so
    # at 200 px (25 x 25 maps before pool3, where ceil_mode rounds up) the
    # Keras logits are the include_top=False backbone, average-pooled, times
    # the checkpoint's own fc weights.
    pixels = photo_batch(photo_paths, 200)
    backbone = kg.GoogLeNet(
        weights=str(checkpoints["zip"]), variant="bn", include_top=False, pooling="avg", input_shape=(200, 200, 3)
    )
    features = backbone.predict(kg.preprocess_input(pixels.copy(), variant="bn"), verbose=0)
    state = torch_checkpoint.load_state_dict(checkpoints["zip"])
    keras_logits = features @ state["fc.weight"].T + state["fc.bias"]
    torch_logits = torch_forward(torch_model, pixels).numpy()
    assert torch_logits.std() > 0.1
    assert np.abs(keras_logits - torch_logits).max() <= 1e-4


@needs_torch
@pytest.mark.slow
def test_untrained_torchvision_aux_heads_are_fresh_and_the_warning_names_the_trained_ones(checkpoints):
    with pytest.warns(UserWarning, match=r"aux1 and aux2 are untrained.*variant='paper'\) \(or variant=None\) loads BVLC's trained"):
        model = kg.GoogLeNet(weights=str(checkpoints["zip"]), variant="bn", classifier_activation=None)
    assert model.output_names == ["main", "aux1", "aux2"]
    state = torch_checkpoint.load_state_dict(checkpoints["zip"])
    np.testing.assert_array_equal(
        model.get_layer("inception_4a_5x5").kernel.numpy(),
        state["inception4a.branch3.1.conv.weight"].transpose(2, 3, 1, 0),
    )


@pytest.fixture()
def imagenet_from_file_url(checkpoints, tmp_path, monkeypatch):
    """Points weights='imagenet' at a file:// copy of the zip checkpoint, named with its sha256 prefix."""
    data = checkpoints["zip"].read_bytes()
    prefix = hashlib.sha256(data).hexdigest()[:8]
    served = tmp_path / "server" / f"googlenet-{prefix}.pth"
    served.parent.mkdir()
    served.write_bytes(data)
    entry = dataclasses.replace(weights.IMAGENET1K_V1, url=served.as_uri(), sha256_prefix=prefix)
    monkeypatch.setitem(registry.PRETRAINED_WEIGHTS, ("imagenet", "bn"), entry)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return entry, served


@needs_torch
@pytest.mark.slow
def test_imagenet_weights_are_downloaded_converted_once_then_read_from_the_cache(
    imagenet_from_file_url, checkpoints, tmp_path, monkeypatch
):
    entry, served = imagenet_from_file_url
    conversions = []
    read = registry.read_layer_weights
    monkeypatch.setattr(registry, "read_layer_weights", lambda *args: conversions.append(args) or read(*args))

    first = kg.GoogLeNet(weights="imagenet", variant="bn", include_top=False, pooling="avg")
    cache = pathlib.Path(weights.cache_directory())
    assert cache == tmp_path / "keras_home" / "models"
    assert sorted(p.name for p in cache.iterdir()) == sorted([entry.file_name, entry.converted_file_name])
    assert len(conversions) == 1

    served.unlink()  # offline from now on
    (cache / entry.file_name).unlink()  # the converted file alone is enough
    second = kg.GoogLeNet(weights="imagenet", variant="bn", include_top=False, pooling="avg")
    assert len(conversions) == 1
    expected = torch_checkpoint.load_state_dict(checkpoints["zip"])["conv1.bn.running_var"]
    for model in (first, second):
        np.testing.assert_array_equal(model.get_layer("conv1_7x7_s2_bn").moving_variance.numpy(), expected)

    # A .pth put in the cache by hand is converted without any download.
    (cache / entry.converted_file_name).unlink()
    (cache / entry.file_name).write_bytes(checkpoints["zip"].read_bytes())
    third = kg.GoogLeNet(weights="imagenet", variant="bn", include_top=False, pooling="avg")
    assert len(conversions) == 2
    np.testing.assert_array_equal(third.get_layer("conv1_7x7_s2_bn").moving_variance.numpy(), expected)


def test_download_with_a_wrong_sha256_prefix_fails_and_deletes_the_file(tmp_path):
    served = tmp_path / "server" / "googlenet-1378be20.pth"
    served.parent.mkdir()
    served.write_bytes(b"a tampered or truncated download")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{served.name}"
        entry = dataclasses.replace(weights.IMAGENET1K_V1, url=url)
        with pytest.raises(ValueError, match=r"Checksum mismatch .* expected 1378be20; the file was deleted\. Received: url='http://127"):
            weights.download(entry, cache_dir=str(tmp_path / "cache"))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert not (tmp_path / "cache" / "models" / served.name).exists()


def test_download_from_an_unreachable_url_says_how_to_work_offline(tmp_path):
    entry = dataclasses.replace(weights.IMAGENET1K_V1, url=(tmp_path / "missing" / "googlenet-1378be20.pth").as_uri())
    with pytest.raises(ValueError, match=r"Could not download .* put googlenet-1378be20\.pth in .* or pass weights= a local \.pth path\. Received: weights='imagenet'"):
        weights.download(entry, cache_dir=str(tmp_path / "cache"))


@needs_torch
@pytest.mark.slow
def test_convert_file_writes_keras_weights_equal_to_the_pth_and_says_where_they_load(checkpoints, tmp_path):
    out = tmp_path / "googlenet.weights.h5"
    assert weights.convert_file(checkpoints["legacy"], out, build_model=kg.GoogLeNet) == (str(out), "bn", False)
    from_h5 = kg.GoogLeNet(weights=str(out), variant="bn", aux_heads=False)
    state = torch_checkpoint.load_state_dict(checkpoints["legacy"])
    np.testing.assert_array_equal(from_h5.get_layer("loss3_classifier").kernel.numpy(), state["fc.weight"].T)
    np.testing.assert_array_equal(
        from_h5.get_layer("inception_5b_pool_proj_bn").moving_mean.numpy(),
        state["inception5b.branch4.1.bn.running_mean"],
    )


def test_a_pth_that_is_not_googlenet_is_refused_naming_the_file(tmp_path):
    import pickle
    import zipfile

    path = tmp_path / "other.pth"  # a torch.save zip of an empty state dict, written by hand
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("other/data.pkl", pickle.dumps({}, protocol=2))
    with pytest.raises(ValueError, match=r"has no 'conv1\.conv\.weight'\. Received: path='.*other\.pth'"):
        weights.read_layer_weights(path)
