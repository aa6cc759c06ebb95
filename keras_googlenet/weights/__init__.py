"""Pretrained GoogLeNet weights: the registry of published sets, their readers, cache and loading.

- `registry`: the published sets (`PretrainedWeights`), download, checksum,
  cache, conversion to ``.weights.h5`` and loading by layer name.
- `caffe`: Caffe's ``.caffemodel`` (BVLC GoogLeNet, the "paper" variant).
- `torchvision` and `torch_checkpoint`: torchvision's ``.pth`` ("bn"), read
  without PyTorch.

This package never imports `keras_googlenet.model.googlenet`: the builder calls into
it and passes itself in where a model must be built.
"""

from keras_googlenet.weights.registry import (
    BVLC_GOOGLENET,
    FORMAT_VARIANTS,
    IMAGENET1K_V1,
    PRETRAINED_NAMES,
    PRETRAINED_WEIGHTS,
    PretrainedWeights,
    assign_weights,
    cache_directory,
    cached_layer_weights,
    convert_file,
    detect_format,
    download,
    load_pretrained,
    lookup,
    read_layer_weights,
)

__all__ = [
    "BVLC_GOOGLENET",
    "FORMAT_VARIANTS",
    "IMAGENET1K_V1",
    "PRETRAINED_NAMES",
    "PRETRAINED_WEIGHTS",
    "PretrainedWeights",
    "assign_weights",
    "cache_directory",
    "cached_layer_weights",
    "convert_file",
    "detect_format",
    "download",
    "load_pretrained",
    "lookup",
    "read_layer_weights",
]
