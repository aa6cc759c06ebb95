"""Pretrained GoogLeNet weights: where they come from, conversion, cache and loading.

One `PretrainedWeights` object says everything about a set of weights, as
torchvision's ``GoogLeNet_Weights`` enum does: URL, checksum, accuracy,
parameter count, preprocessing and categories. The only set is torchvision's
``IMAGENET1K_V1``, which torchvision ported from TF-slim's ``inception_v1``
(the "bn" variant here). Loading it needs no PyTorch: the ``.pth`` file is
read by `keras_googlenet.torch_checkpoint`, converted once to a Keras
``.weights.h5`` and cached beside it.
"""

import dataclasses
import hashlib
import os
import urllib.parse
import warnings

import keras
import numpy as np

from keras_googlenet import architecture, torch_checkpoint
from keras_googlenet.imagenet_utils import imagenet_classes, preprocess_input

CACHE_SUBDIR = "models"  # as keras.applications: ~/.keras/models


@dataclasses.dataclass(frozen=True)
class PretrainedWeights:
    """A published set of GoogLeNet weights and everything needed to use it.

    Attributes:
        name: the value of ``GoogLeNet(weights=...)`` that selects these weights.
        url: where the PyTorch checkpoint is downloaded from.
        sha256_prefix: the first hex digits of the file's sha256, which
            torch.hub puts in the file name (``googlenet-1378be20.pth``).
        variant: the `keras_googlenet.architecture.VARIANTS` entry they fit.
        num_params: the trainable parameters of the main network.
        metrics: the published single-crop ImageNet-1k validation accuracy (%).
        resize_size, crop_size: the published evaluation transform: resize the
            short side, then centre-crop.
        source: where the weights come from, in words.
    """

    name: str
    url: str
    sha256_prefix: str
    variant: str
    num_params: int
    metrics: dict
    resize_size: int
    crop_size: int
    source: str

    @property
    def file_name(self):
        return os.path.basename(urllib.parse.urlsplit(self.url).path)

    @property
    def converted_file_name(self):
        """The cached Keras weights: ``googlenet-1378be20.pth`` -> ``googlenet-1378be20_keras_bn.weights.h5``."""
        return f"{os.path.splitext(self.file_name)[0]}_keras_{self.variant}.weights.h5"

    @property
    def categories(self):
        """The 1000 class names, in the order of the classifier's outputs."""
        return tuple(name for _, name in imagenet_classes())

    def preprocess(self, x):
        """Scales RGB images in [0, 255] as these weights expect (`preprocess_input` of the variant)."""
        return preprocess_input(x, variant=self.variant)


IMAGENET1K_V1 = PretrainedWeights(
    name="imagenet",
    url="https://download.pytorch.org/models/googlenet-1378be20.pth",
    sha256_prefix="1378be20",
    variant="bn",
    num_params=6_624_904,
    metrics={"acc@1": 69.778, "acc@5": 89.53},
    resize_size=256,
    crop_size=224,
    source="torchvision GoogLeNet_Weights.IMAGENET1K_V1, ported from TF-slim inception_v1",
)

# `GoogLeNet(weights=name)` looks the name up here.
PRETRAINED_WEIGHTS = {IMAGENET1K_V1.name: IMAGENET1K_V1}


def cache_directory(cache_dir=None):
    """The folder that holds downloaded and converted weights.

    ``cache_dir/models`` when given, else ``$KERAS_HOME/models`` (read at each
    call, unlike `keras.utils.get_file`, which reads it once at import), else
    ``~/.keras/models``.
    """
    base = cache_dir or os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(os.path.expanduser(base), CACHE_SUBDIR)


def download_checkpoint(weights=IMAGENET1K_V1, cache_dir=None):
    """Downloads a checkpoint into the cache (with progress) unless it is there; checks its sha256 prefix.

    Returns:
        The path of the ``.pth`` file in the cache.

    Raises:
        ValueError: the download failed, or the file's sha256 does not start
            with ``weights.sha256_prefix`` (the file is then deleted).
    """
    directory = cache_directory(cache_dir)
    os.makedirs(directory, exist_ok=True)
    try:
        # Checked below: get_file wants a full hash, the file name carries a prefix.
        path = keras.utils.get_file(
            fname=weights.file_name, origin=weights.url, cache_dir=os.path.dirname(directory),
            cache_subdir=CACHE_SUBDIR,
        )
    except Exception as error:  # get_file raises a bare Exception for URL errors
        reason = " ".join(str(error).split())[:200]
        raise ValueError(
            f"Could not download the {weights.name!r} weights ({reason}); offline, put {weights.file_name} "
            f"in {directory} or pass weights= a local .pth path. Received: weights={weights.name!r}"
        ) from None
    digest = _sha256(path)
    if not digest.startswith(weights.sha256_prefix):
        os.remove(path)  # so that the next call downloads it again
        raise ValueError(
            f"Checksum mismatch for the downloaded {weights.file_name}: its sha256 starts with {digest[:8]}, "
            f"expected {weights.sha256_prefix}; the file was deleted. Received: url={weights.url!r}"
        )
    return path


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _torchvision_layer_names():
    """torchvision module prefixes of each BasicConv2d, mapped to our layer names (Caffe's)."""
    names = {"conv1": "conv1_7x7_s2", "conv2": "conv2_3x3_reduce", "conv3": "conv2_3x3"}
    for block in architecture.INCEPTION_BLOCKS:
        ours, theirs = f"inception_{block.name}", f"inception{block.name}"
        names.update({
            f"{theirs}.branch1": f"{ours}_1x1",
            f"{theirs}.branch2.0": f"{ours}_3x3_reduce",
            f"{theirs}.branch2.1": f"{ours}_3x3",
            f"{theirs}.branch3.0": f"{ours}_5x5_reduce",
            f"{theirs}.branch3.1": f"{ours}_5x5",  # a 3x3 kernel in torchvision and TF-slim
            f"{theirs}.branch4.1": f"{ours}_pool_proj",  # branch4.0 is the max pool
        })
    return names


def convert_state_dict(state_dict):
    """Converts torchvision's GoogLeNet state dict to the "bn" variant's layer weights.

    Conv kernels go from OIHW to HWIO, BN becomes ``[gamma, beta, moving_mean,
    moving_variance]`` of the ``<name>_bn`` layer, and ``fc`` is transposed
    into ``loss3_classifier``. torchvision's ``transform_input`` needs no
    weights: `preprocess_input(x, variant="bn")` scales to [-1, 1], which is
    what ImageNet normalisation followed by ``transform_input`` gives.

    The ``aux1.*`` and ``aux2.*`` entries are dropped: torchvision documents
    them as not trained, and its auxiliary heads pool adaptively to 4x4 (windows
    of 4 at offsets 0, 3, 7, 10 on a 14x14 map) where the paper's heads built
    here pool 5x5 with stride 3, so the layouts do not map.

    Args:
        state_dict: ``{name: array}``, as `torch_checkpoint.load_state_dict` returns.

    Returns:
        ``{keras layer name: [arrays]}``, ready for ``layer.set_weights``.

    Raises:
        ValueError: a key is missing or unexpected.
    """
    converted = {}
    used = set()

    def take(key):
        if key not in state_dict:
            raise ValueError(
                f"The checkpoint is not a torchvision GoogLeNet state dict: it has no {key!r}. "
                f"Received: state_dict with {len(state_dict)} keys"
            )
        used.add(key)
        return np.asarray(state_dict[key], dtype="float32")

    for prefix, name in _torchvision_layer_names().items():
        converted[name] = [take(f"{prefix}.conv.weight").transpose(2, 3, 1, 0)]
        converted[f"{name}_bn"] = [
            take(f"{prefix}.bn.{key}") for key in ("weight", "bias", "running_mean", "running_var")
        ]
    converted["loss3_classifier"] = [take("fc.weight").T, take("fc.bias")]
    unexpected = [
        key for key in state_dict
        if key not in used and not key.startswith(("aux1.", "aux2.")) and not key.endswith(".num_batches_tracked")
    ]
    if unexpected:
        raise ValueError(
            f"The checkpoint has {len(unexpected)} keys that torchvision's GoogLeNet does not, such as "
            f"{unexpected[0]!r}. Received: state_dict with {len(state_dict)} keys"
        )
    return converted


def _reference_model():
    """The model a converted ``.weights.h5`` is saved from and loaded into: "bn", main head only."""
    from keras_googlenet.model import GoogLeNet  # model imports this module

    return GoogLeNet(variant="bn", aux_heads=False, classifier_activation=None, name="googlenet_bn")


def convert_checkpoint(src, dst):
    """Converts torchvision's ``googlenet`` ``.pth`` to a Keras ``.weights.h5``, without PyTorch.

    The result loads into ``GoogLeNet(variant="bn", aux_heads=False)``
    (any ``classifier_activation``) with ``model.load_weights(dst)``, or as
    ``GoogLeNet(weights=dst, variant="bn", aux_heads=False)``.

    Returns:
        ``dst``.
    """
    if not str(dst).endswith(".weights.h5"):
        raise ValueError(f"The output must be a .weights.h5 file. Received: dst={str(dst)!r}")
    layer_weights = convert_state_dict(torch_checkpoint.load_state_dict(src))
    model = _reference_model()
    assign_weights(model, layer_weights)
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    model.save_weights(dst)
    return dst


def converted_weights_file(weights=IMAGENET1K_V1, cache_dir=None):
    """The cached ``.weights.h5`` of a published set: converted once, then read from the cache.

    Offline, it works when either the converted file or the ``.pth`` is in
    the cache folder (`cache_directory`).
    """
    converted = os.path.join(cache_directory(cache_dir), weights.converted_file_name)
    if not os.path.isfile(converted):
        checkpoint = download_checkpoint(weights, cache_dir)
        convert_checkpoint(checkpoint, converted + ".partial.weights.h5")
        os.replace(converted + ".partial.weights.h5", converted)  # never a half-written cache entry
    return converted


def pretrained_layer_weights(weights, cache_dir=None):
    """``{layer name: [arrays]}`` from ``"imagenet"`` (via the cache) or a local ``.pth`` path."""
    if weights in PRETRAINED_WEIGHTS:
        model = _reference_model()
        model.load_weights(converted_weights_file(PRETRAINED_WEIGHTS[weights], cache_dir))
        return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}
    return convert_state_dict(torch_checkpoint.load_state_dict(weights))


def assign_weights(model, layer_weights):
    """Sets each layer of ``model`` found in ``layer_weights``, by name.

    Layers absent from ``layer_weights`` must be auxiliary-head layers, which
    keep their fresh initialisation (with a warning). Without a top, the
    classifier's entry is simply unused: the backbone alone is loaded.
    """
    fresh = []
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in layer_weights:
            if not layer.name.startswith(tuple(architecture.AUX_HEAD_AFTER.values())):
                raise ValueError(
                    f"The pretrained weights have no layer {layer.name!r}: build the \"bn\" variant. "
                    f"Received: model={model.name!r}"
                )
            fresh.append(layer.name)
            continue
        expected = [tuple(w.shape) for w in layer.weights]
        received = [tuple(np.shape(w)) for w in layer_weights[layer.name]]
        if expected != received:
            raise ValueError(
                f"The pretrained weights of layer {layer.name!r} have shapes {received}, the model's are "
                f"{expected}. Received: model={model.name!r}"
            )
        layer.set_weights(layer_weights[layer.name])
    if fresh:
        warnings.warn(
            "The auxiliary heads (aux1, aux2) are freshly initialised: the published weights have no "
            "trained auxiliary heads. Pass aux_heads=False for inference.",
            stacklevel=3,
        )
