"""The published GoogLeNet weights: what they are, where they come from, cache and loading.

One `PretrainedWeights` object says everything about a set of weights, as
torchvision's ``GoogLeNet_Weights`` enum or timm's pretrained configs do: URL,
checksum, size, file format, variant, trained heads, accuracy, parameter
counts, input scaling, evaluation transform and licence. ``weights="imagenet"``
names one set per variant:

- ``"paper"``: Caffe's BVLC GoogLeNet (the model zoo's replication of the
  paper), all three heads trained;
- ``"bn"``: torchvision's ``IMAGENET1K_V1`` (ported from TF-slim), main head
  only.

A download is checked, converted once to a Keras ``.weights.h5`` beside it
in the cache and read from there afterwards, offline. This package never
imports the model builder: the caller passes it in (``build_model``), so the
data flows one way.
"""

import dataclasses
import hashlib
import os
import urllib.parse
import warnings

import keras
import numpy as np

from keras_googlenet.model import architecture
from keras_googlenet.model.imagenet_utils import imagenet_classes, preprocess_input
from keras_googlenet.weights import caffe, torchvision

CACHE_SUBDIR = "models"  # as keras.applications: ~/.keras/models
FORMATS = ("caffemodel", "pth")


@dataclasses.dataclass(frozen=True)
class PretrainedWeights:
    """A published set of GoogLeNet weights and everything needed to use it.

    Attributes:
        name: the set's own name (``"bvlc_googlenet"``).
        weights: the value of ``GoogLeNet(weights=...)`` that selects it,
            together with ``variant``.
        variant: the `keras_googlenet.model.architecture.VARIANTS` entry it fits.
        url: where the file is downloaded from.
        sha256: the file's full sha256, or ``None`` where only a prefix is
            published.
        sha256_prefix: the leading hex digits of the sha256 that must match
            (all of them when ``sha256`` is known; torch.hub file names carry 8).
        file_size: the file's size in bytes, or ``None`` where unknown.
        file_format: ``"caffemodel"`` or ``"pth"``: which reader converts it.
        trained_heads: the heads whose weights were trained: ``("main",)``
            or ``("main", "aux1", "aux2")``.
        metrics: the published single-crop ImageNet-1k validation accuracy (%).
        num_params: the parameters of the network with the main head only.
        num_params_with_aux: with the trained auxiliary heads too, or ``None``.
        resize_size, crop_size: the evaluation transform: resize the short
            side, then centre-crop.
        licence: the terms the weights are published under.
        source: where the weights come from, in words.
    """

    name: str
    weights: str
    variant: str
    url: str
    sha256: str | None
    sha256_prefix: str
    file_size: int | None
    file_format: str
    trained_heads: tuple
    metrics: dict
    num_params: int
    num_params_with_aux: int | None
    resize_size: int
    crop_size: int
    licence: str
    source: str

    @property
    def file_name(self):
        return os.path.basename(urllib.parse.urlsplit(self.url).path)

    @property
    def converted_file_name(self):
        """The cached Keras weights: ``bvlc_googlenet.caffemodel`` -> ``bvlc_googlenet_keras_paper.weights.h5``."""
        return f"{os.path.splitext(self.file_name)[0]}_keras_{self.variant}.weights.h5"

    @property
    def aux_heads(self):
        """Whether the auxiliary heads are trained (and so converted)."""
        return {"aux1", "aux2"} <= set(self.trained_heads)

    @property
    def input_scaling(self):
        """Channel order, mean and std: the variant's `architecture.InputScaling`, stated nowhere else."""
        return architecture.VARIANTS[self.variant].input_scaling

    @property
    def categories(self):
        """The 1000 class names, in the order of the classifier's outputs."""
        return tuple(name for _, name in imagenet_classes())

    def preprocess(self, x):
        """Scales RGB images in [0, 255] as these weights expect (`preprocess_input` of the variant)."""
        return preprocess_input(x, variant=self.variant)


BVLC_GOOGLENET = PretrainedWeights(
    name="bvlc_googlenet",
    weights="imagenet",
    variant="paper",
    url="http://dl.caffe.berkeleyvision.org/bvlc_googlenet.caffemodel",
    sha256="6f7101e3a2183738a7125a0c5021ba82a1feb4228c5ca0924d991b6daf6f6fad",
    sha256_prefix="6f7101e3a2183738a7125a0c5021ba82a1feb4228c5ca0924d991b6daf6f6fad",
    file_size=53_533_754,
    file_format="caffemodel",
    trained_heads=("main", "aux1", "aux2"),
    metrics={"acc@1": 68.7, "acc@5": 88.9},  # the model zoo card: centre crop
    num_params=6_998_552,
    num_params_with_aux=13_378_280,
    resize_size=256,
    crop_size=224,
    licence="unrestricted use (BVLC model zoo card)",
    source="Caffe model zoo bvlc_googlenet, the BVLC replication of the paper (iteration 2,400,000)",
)

IMAGENET1K_V1 = PretrainedWeights(
    name="torchvision_imagenet1k_v1",
    weights="imagenet",
    variant="bn",
    url="https://download.pytorch.org/models/googlenet-1378be20.pth",
    sha256=None,  # torch.hub publishes only the prefix in the file name
    sha256_prefix="1378be20",
    file_size=None,
    file_format="pth",
    trained_heads=("main",),
    metrics={"acc@1": 69.778, "acc@5": 89.53},
    num_params=6_624_904,
    num_params_with_aux=None,  # torchvision documents its auxiliary heads as untrained
    resize_size=256,
    crop_size=224,
    licence="BSD-3-Clause (torchvision)",
    source="torchvision GoogLeNet_Weights.IMAGENET1K_V1, ported from TF-slim inception_v1",
)

# Every published set, keyed by ``(GoogLeNet(weights=...), variant)``.
PRETRAINED_WEIGHTS = {(entry.weights, entry.variant): entry for entry in (BVLC_GOOGLENET, IMAGENET1K_V1)}
PRETRAINED_NAMES = frozenset(weights for weights, _ in PRETRAINED_WEIGHTS)


def lookup(weights, variant):
    """The `PretrainedWeights` that ``GoogLeNet(weights=weights, variant=variant)`` loads."""
    if (weights, variant) not in PRETRAINED_WEIGHTS:
        raise ValueError(
            f"No published weights {weights!r} for variant={variant!r}; there are "
            f"{sorted(PRETRAINED_WEIGHTS)}. Received: weights={weights!r}"
        )
    return PRETRAINED_WEIGHTS[(weights, variant)]


def cache_directory(cache_dir=None):
    """The folder that holds downloaded and converted weights.

    ``cache_dir/models`` when given, else ``$KERAS_HOME/models`` (read at each
    call, unlike `keras.utils.get_file`, which reads it once at import), else
    ``~/.keras/models``.
    """
    base = cache_dir or os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(os.path.expanduser(base), CACHE_SUBDIR)


def download(entry, cache_dir=None):
    """Downloads a set's file into the cache (with progress) unless it is there; checks its sha256.

    Returns:
        The path of the file in the cache.

    Raises:
        ValueError: the download failed, or the file's sha256 does not match
            (the file is then deleted, so that nothing bad stays cached).
    """
    directory = cache_directory(cache_dir)
    os.makedirs(directory, exist_ok=True)
    try:
        # The sha256 is checked below: get_file leaves a mismatching file in
        # place, and torch.hub names carry only a prefix.
        path = keras.utils.get_file(
            fname=entry.file_name, origin=entry.url, cache_dir=os.path.dirname(directory), cache_subdir=CACHE_SUBDIR,
        )
    except Exception as error:  # get_file raises a bare Exception for URL errors
        reason = " ".join(str(error).split())[:200]
        raise ValueError(
            f"Could not download the {entry.name} weights ({reason}); offline, put {entry.file_name} in "
            f"{directory} or pass weights= a local .{entry.file_format} path. Received: weights={entry.weights!r}"
        ) from None
    digest = _sha256(path)
    if not digest.startswith(entry.sha256_prefix):
        size = os.path.getsize(path)
        os.remove(path)  # so that the next call downloads it again
        expected_size = f", expected {entry.file_size}" if entry.file_size else ""
        raise ValueError(
            f"Checksum mismatch for the downloaded {entry.file_name} ({size} bytes{expected_size}): its sha256 "
            f"starts with {digest[:8]}, expected {entry.sha256_prefix[:8]}; the file was deleted. "
            f"Received: url={entry.url!r}"
        )
    return path


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# The reader of each file format, and the variant its weights fit.
_READERS = {"caffemodel": caffe.read_layer_weights, "pth": torchvision.read_layer_weights}
FORMAT_VARIANTS = {"caffemodel": "paper", "pth": "bn"}


def detect_format(path):
    """``"caffemodel"`` or ``"pth"``: by the extension, else by the first bytes."""
    path = os.fspath(path)
    if path.endswith(".caffemodel"):
        return "caffemodel"
    if path.endswith((".pth", ".pt")):
        return "pth"
    if not os.path.isfile(path):
        raise FileNotFoundError(f"The weights file does not exist. Received: path={path!r}")
    with open(path, "rb") as file:
        head = file.read(4)
    # torch.save writes a zip archive, or (legacy) a pickle: protocol 2 starts with 0x80.
    return "pth" if head.startswith((b"PK\x03\x04", b"\x80")) else "caffemodel"


def read_layer_weights(path, file_format=None):
    """``{Keras layer name: [arrays]}`` from a ``.caffemodel`` or torchvision ``.pth`` file, checked."""
    return _READERS[file_format or detect_format(path)](os.fspath(path))


def assign_weights(model, layer_weights, source):
    """Sets each layer of ``model`` found in ``layer_weights``, by name; all or nothing.

    Every layer is checked before the first is set. Layers absent from
    ``layer_weights`` must be auxiliary-head layers, which keep their fresh
    initialisation. Without a top, the classifiers' entries are unused.

    Returns:
        The names of the layers left fresh.
    """
    plan, fresh = [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in layer_weights:
            if not layer.name.startswith(tuple(f"{head}_" for head in architecture.AUX_HEAD_AFTER.values())):
                raise ValueError(f"{source} have no weights for layer {layer.name!r}. Received: model={model.name!r}")
            fresh.append(layer.name)
            continue
        expected = [tuple(w.shape) for w in layer.weights]
        received = [tuple(np.shape(w)) for w in layer_weights[layer.name]]
        if expected != received:
            raise ValueError(
                f"{source} give layer {layer.name!r} the shapes {received}, the model's are {expected}. "
                f"Received: model={model.name!r}"
            )
        plan.append((layer, layer_weights[layer.name]))
    for layer, arrays in plan:
        layer.set_weights(arrays)
    return fresh


def _reference_model(build_model, variant, aux_heads):
    """The model a converted ``.weights.h5`` is saved from and read back into: logits, 224 px."""
    return build_model(variant=variant, aux_heads=aux_heads, classifier_activation=None, name=f"googlenet_{variant}")


def save_keras_weights(layer_weights, dst, variant, build_model):
    """Writes layer weights as the ``.weights.h5`` of the variant's reference model.

    The auxiliary heads are saved when ``layer_weights`` has them. The file is
    written beside ``dst`` and renamed: never a half-written file.

    Returns:
        Whether the auxiliary heads were saved.
    """
    aux_heads = all(f"{head}_fc" in layer_weights for head in architecture.AUX_HEAD_AFTER.values())
    model = _reference_model(build_model, variant, aux_heads)
    assign_weights(model, layer_weights, f"The weights for {dst!r}")
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    partial = f"{dst[: -len('.weights.h5')]}.partial.weights.h5"
    model.save_weights(partial)
    os.replace(partial, dst)
    return aux_heads


def convert_file(src, dst, build_model):
    """Converts a ``.caffemodel`` (bvlc_googlenet) or torchvision ``.pth`` to a Keras ``.weights.h5``.

    The format is picked by the extension, else by the content. The result
    loads into ``GoogLeNet(variant=v, aux_heads=a)`` with ``model.load_weights``
    or ``GoogLeNet(weights=dst, variant=v, aux_heads=a)``.

    Args:
        src: the file to convert.
        dst: the ``.weights.h5`` to write.
        build_model: `keras_googlenet.GoogLeNet` (this package does not import it).

    Returns:
        ``(dst, v, a)``: the variant and whether the auxiliary heads are in the file.
    """
    dst = os.fspath(dst)
    if not dst.endswith(".weights.h5"):
        raise ValueError(f"The output must be a .weights.h5 file. Received: dst={dst!r}")
    file_format = detect_format(src)
    variant = FORMAT_VARIANTS[file_format]
    aux_heads = save_keras_weights(read_layer_weights(src, file_format), dst, variant, build_model)
    return dst, variant, aux_heads


def cached_layer_weights(entry, build_model, cache_dir=None):
    """The layer weights of a published set: downloaded and converted once, then read from the cache.

    Offline, it works when either the converted ``.weights.h5`` or the
    original file is in the cache folder (`cache_directory`).
    """
    converted = os.path.join(cache_directory(cache_dir), entry.converted_file_name)
    if not os.path.isfile(converted):
        layer_weights = read_layer_weights(download(entry, cache_dir), entry.file_format)
        save_keras_weights(layer_weights, converted, entry.variant, build_model)
        return layer_weights
    model = _reference_model(build_model, entry.variant, entry.aux_heads)
    model.load_weights(converted)
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def load_pretrained(model, weights, variant, build_model, cache_dir=None):
    """Loads published weights (``"imagenet"``) or a ``.caffemodel`` / ``.pth`` file into ``model``, by layer name.

    Set by name, so that ``include_top=False`` takes the backbone only. Auxiliary
    heads that the weights do not train stay fresh, with a warning that says
    where trained ones are.
    """
    if isinstance(weights, str) and weights in PRETRAINED_NAMES:
        entry = lookup(weights, variant)
        layer_weights, source = cached_layer_weights(entry, build_model, cache_dir), f"The {entry.name} weights"
    else:
        weights = os.fspath(weights)
        layer_weights, source = read_layer_weights(weights), f"The weights in {weights!r}"
    if assign_weights(model, layer_weights, source):
        warnings.warn(_fresh_heads_message(variant, source), stacklevel=4)


def _fresh_heads_message(variant, source):
    if variant == "bn":
        return (
            "The auxiliary heads aux1 and aux2 are untrained: torchvision's ImageNet weights have none. "
            "GoogLeNet(weights='imagenet', variant='paper') (or variant=None) loads BVLC's trained ones; "
            "pass aux_heads=False for inference."
        )
    return (
        f"{source} have no auxiliary heads (Caffe's loss1/*, loss2/*): aux1 and aux2 start fresh. "
        "GoogLeNet(weights='imagenet') loads BVLC's trained ones; pass aux_heads=False for inference."
    )
