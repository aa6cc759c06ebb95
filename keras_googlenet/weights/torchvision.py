"""torchvision's GoogLeNet state dict (``googlenet-1378be20.pth``) to Keras layer weights.

The ``.pth`` file is read without PyTorch by
`keras_googlenet.weights.torch_checkpoint`; this module maps its keys and
layouts onto the "bn" variant's layers.
"""

import numpy as np

from keras_googlenet.model import architecture
from keras_googlenet.weights import torch_checkpoint


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


def read_layer_weights(path):
    """``{Keras layer name: [arrays]}`` from torchvision's ``googlenet`` ``.pth``; errors name the file."""
    state_dict = torch_checkpoint.load_state_dict(path)
    try:
        return convert_state_dict(state_dict)
    except ValueError as error:
        reason = str(error).split(" Received:")[0]
        raise ValueError(f"{reason} Received: path={path!r}") from None
