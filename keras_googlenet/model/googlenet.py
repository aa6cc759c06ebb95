"""The GoogLeNet (Inception v1) builder.

Reference:
- [Going deeper with convolutions](https://arxiv.org/abs/1409.4842)
  (Szegedy et al., CVPR 2015)

The network is walked from the tables in `keras_googlenet.model.architecture`. Layer
names follow the Caffe reference prototxt (`inception_4a/5x5_reduce` becomes
`inception_4a_5x5_reduce`: Keras 3 forbids "/" in layer names).
"""

import os

import keras
from keras import layers

from keras_googlenet.model import architecture
from keras_googlenet import weights as pretrained_weights
# Computed from the table, where the argument checks read it without Keras;
# importable from here too.
from keras_googlenet.model.architecture import minimum_input_size
from keras_googlenet.model.layers import LocalResponseNormalization, MeanPadding, Preprocessing

_POOLINGS = (None, "avg", "max")


def GoogLeNet(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    aux_heads=True,
    variant=None,
    include_preprocessing=False,
    name="googlenet",
    dtype=None,
):
    """Instantiates the GoogLeNet (Inception v1) architecture.

    Reference:
    - [Going deeper with convolutions](https://arxiv.org/abs/1409.4842)
      (Szegedy et al., CVPR 2015)

    With ``include_top=True`` and ``aux_heads=True`` the model has three
    outputs, in this order: ``main`` and the auxiliary classifiers ``aux1``
    (on inception 4a) and ``aux2`` (on inception 4d). Compile it with
    `keras_googlenet.compile_googlenet`, which weights the auxiliary losses by
    0.3 as in the paper, and use `keras_googlenet.inference_model` to drop the
    auxiliary heads for prediction and export.

    Each variant expects its own input scaling: call
    `keras_googlenet.preprocess_input(x, variant=...)` with the same variant.

    Args:
        include_top: whether to include the classifier heads. Defaults to
            ``True``.
        weights: ``None`` (random initialisation, the default),
            ``"imagenet"`` (downloaded once with a sha256 check, converted and
            cached under ``~/.keras/models``, offline afterwards: see
            `keras_googlenet.weights`), the path to Caffe's
            ``bvlc_googlenet.caffemodel`` (variant ``"paper"``), the path to
            torchvision's ``googlenet`` ``.pth`` (variant ``"bn"``; both read
            without Caffe or PyTorch), or the path to a Keras weights file
            (``.weights.h5``) of the same architecture. ``"imagenet"`` is
            Caffe's BVLC GoogLeNet for ``"paper"``, with all three heads
            trained (68.7% top-1), and torchvision's weights for ``"bn"``
            (69.8% top-1), whose auxiliary heads are untrained: they are
            freshly initialised, with a warning.
        input_tensor: optional Keras tensor (the output of `keras.Input()`) to
            use as the image input of the model.
        input_shape: optional shape tuple, ``(224, 224, 3)`` by default. Inputs
            must be at least 31x31 ("paper") or 15x15 ("bn"), and 79x79 with
            the auxiliary heads, whose 5x5 pool needs 5x5 maps after inception
            4a and 4d. `minimum_input_size()` computes it.
        pooling: the pooling of the features when ``include_top=False``:
            ``None`` for the 4D output of inception 5b, ``"avg"`` or ``"max"``
            for global pooling to a 2D output. Defaults to ``None``.
        classes: the number of classes, used when ``include_top=True``.
            Defaults to 1000.
        classifier_activation: the activation of the classifier outputs, a
            string or callable. ``None`` returns logits. Only ``"softmax"`` or
            ``None`` with pretrained weights. Defaults to ``"softmax"``.
        aux_heads: whether to build the two auxiliary classifiers when
            ``include_top=True``. Defaults to ``True``.
        variant: ``"paper"`` (the 2014 network: biases, LRN, 5x5 branch) or
            ``"bn"`` (Inception v1 with batch norm, as torchvision and TF-slim,
            whose ImageNet weights exist). ``None`` always means ``"paper"``,
            as `preprocess_input`'s default: ``weights="imagenet"`` then gives
            BVLC's weights with trained auxiliary heads.
        include_preprocessing: whether the model scales its input itself
            (a `Preprocessing` layer first): it then takes raw RGB pixels in
            [0, 255], as keras.applications' EfficientNetV2 or ConvNeXt do,
            and `preprocess_input` must not be applied. Defaults to
            ``False``, the convention of keras.applications' InceptionV3:
            call `preprocess_input(x, variant=...)` first.
        name: the name of the model. Defaults to ``"googlenet"``.
        dtype: the dtype policy of the layers, as KerasHub's backbones take
            it: ``None`` (the global policy, see
            `keras.config.set_dtype_policy`), a policy name such as
            ``"float32"``, ``"bfloat16"`` or ``"mixed_bfloat16"``, or a
            `keras.DTypePolicy`. The softmax outputs stay float32, as under
            mixed precision. Defaults to ``None``.

    Returns:
        A `keras.Model` instance.
    """
    pretrained = _is_pretrained(weights)
    variant = _validate_arguments(
        include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, aux_heads, variant, pretrained,
    )
    if not isinstance(include_preprocessing, bool):
        raise ValueError(
            f"The `include_preprocessing` argument must be True or False. Received: include_preprocessing={include_preprocessing!r}"
        )
    dtype = _validate_dtype(dtype)
    config = architecture.VARIANTS[variant]
    input_shape = _resolve_input_shape(input_shape, input_tensor)
    _validate_input_shape(input_shape, include_top, include_top and aux_heads, variant, pretrained)

    img_input = _image_input(input_tensor, input_shape)
    x = Preprocessing(variant, dtype=dtype, name="preprocessing")(img_input) if include_preprocessing else img_input
    x = _stem(x, config, dtype)
    # 28 x 28 x 192
    aux_features = {}
    for block in architecture.INCEPTION_BLOCKS:
        x = _inception(x, block, config, dtype)
        if block.name in architecture.AUX_HEAD_AFTER:
            aux_features[architecture.AUX_HEAD_AFTER[block.name]] = x
        if block.name in architecture.POOL_AFTER:
            pool_size = config.pool4_size if block.name == "4e" else 3
            pool_name = architecture.POOL_AFTER[block.name]
            x = _max_pool_ceil(x, pool_size, f"{pool_name}_{pool_size}x{pool_size}_s2", dtype)
    # 7 x 7 x 1024

    if include_top:
        outputs = _heads(x, aux_features if aux_heads else {}, classes, classifier_activation, config, dtype)
    elif pooling == "avg":
        outputs = layers.GlobalAveragePooling2D(dtype=dtype, name="avg_pool")(x)
    elif pooling == "max":
        outputs = layers.GlobalMaxPooling2D(dtype=dtype, name="max_pool")(x)
    else:
        outputs = x

    inputs = keras.utils.get_source_inputs(input_tensor) if input_tensor is not None else img_input
    model = keras.Model(inputs, outputs, name=name)

    if weights is not None:
        _load_weights(model, weights)
    return model


def _image_input(input_tensor, input_shape):
    if input_tensor is None:
        return layers.Input(shape=input_shape, name="image")
    if not keras.backend.is_keras_tensor(input_tensor):
        return layers.Input(tensor=input_tensor, shape=input_shape, name="image")
    return input_tensor


def _stem(x, config, dtype):
    """Table 1's rows before inception 3a: conv1, pool1, conv2 (reduce and 3x3), pool2; LRN in "paper"."""
    # 224 x 224 x 3
    x = layers.ZeroPadding2D(3, dtype=dtype, name=architecture.STEM_CONV1_PAD)(x)
    x = _conv(x, architecture.STEM_CONV1_FILTERS, 7, architecture.STEM_CONV1, config, dtype, strides=2, padding="valid")
    # 112 x 112 x 64
    x = _max_pool_ceil(x, 3, "pool1_3x3_s2", dtype)
    if config.lrn:
        x = _lrn(x, "pool1_norm1", dtype)
    # 56 x 56 x 64
    x = _conv(x, architecture.STEM_CONV2_REDUCE_FILTERS, 1, "conv2_3x3_reduce", config, dtype)
    x = _conv(x, architecture.STEM_CONV2_FILTERS, 3, "conv2_3x3", config, dtype)
    if config.lrn:
        x = _lrn(x, "conv2_norm2", dtype)
    # 56 x 56 x 192
    return _max_pool_ceil(x, 3, "pool2_3x3_s2", dtype)


def _heads(x, aux_features, classes, classifier_activation, config, dtype):
    """The main classifier on inception 5b, then an auxiliary one per entry of ``aux_features``."""
    x = layers.GlobalAveragePooling2D(dtype=dtype, name="pool5_7x7_s1")(x)
    x = layers.Dropout(config.dropout, dtype=dtype, name="pool5_drop_7x7_s1")(x)
    x = layers.Dense(classes, dtype=dtype, name="loss3_classifier")(x)
    main = _classifier_output(x, classifier_activation, "main")
    if not aux_features:
        return main
    return [main] + [
        _aux_head(aux_features[head], head, classes, classifier_activation, config, dtype) for head in ("aux1", "aux2")
    ]


def _conv(x, filters, kernel_size, name, config, dtype, strides=1, padding="same"):
    """A convolution and its ReLU: with bias (paper) or followed by BN (bn)."""
    if not config.batch_norm:
        return layers.Conv2D(
            filters, kernel_size, strides=strides, padding=padding, activation="relu", dtype=dtype, name=name
        )(x)
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False, dtype=dtype, name=name)(x)
    x = layers.BatchNormalization(
        epsilon=config.bn_epsilon, momentum=config.bn_momentum, dtype=dtype, name=f"{name}_bn"
    )(x)
    return layers.Activation("relu", dtype=dtype, name=f"{name}_relu")(x)


def _max_pool_ceil(x, pool_size, name, dtype):
    """A stride-2 max pool that rounds its output size up (Caffe, ceil_mode).

    One row and column of zeros at the end give ``ceil((n - k) / 2) + 1``
    outputs for every ``n``, as Caffe and torchvision do. Zeros are exact
    padding here because every pooled map comes right after a ReLU.
    """
    x = layers.ZeroPadding2D(((0, 1), (0, 1)), dtype=dtype, name=f"{name}_pad")(x)
    return layers.MaxPooling2D(pool_size, strides=2, dtype=dtype, name=name)(x)


def _lrn(x, name, dtype):
    return LocalResponseNormalization(
        size=architecture.LRN_SIZE,
        alpha=architecture.LRN_ALPHA,
        beta=architecture.LRN_BETA,
        bias=architecture.LRN_BIAS,
        dtype=dtype,
        name=name,
    )(x)


def _inception(x, block, config, dtype):
    """One inception module: four branches concatenated on the channel axis."""
    prefix = f"inception_{block.name}"
    branch_1x1 = _conv(x, block.filters_1x1, 1, f"{prefix}_1x1", config, dtype)
    branch_3x3 = _conv(x, block.filters_3x3_reduce, 1, f"{prefix}_3x3_reduce", config, dtype)
    branch_3x3 = _conv(branch_3x3, block.filters_3x3, 3, f"{prefix}_3x3", config, dtype)
    branch_5x5 = _conv(x, block.filters_5x5_reduce, 1, f"{prefix}_5x5_reduce", config, dtype)
    branch_5x5 = _conv(branch_5x5, block.filters_5x5, config.branch_5x5_kernel, f"{prefix}_5x5", config, dtype)
    branch_pool = layers.MaxPooling2D(3, strides=1, padding="same", dtype=dtype, name=f"{prefix}_pool")(x)
    branch_pool = _conv(branch_pool, block.pool_proj, 1, f"{prefix}_pool_proj", config, dtype)
    return layers.Concatenate(dtype=dtype, name=f"{prefix}_output")([branch_1x1, branch_3x3, branch_5x5, branch_pool])


def _aux_head(x, head, classes, classifier_activation, config, dtype):
    """An auxiliary classifier (Section 5): 4 x 4 x 128 at 224 px, FC 1024, FC classes."""
    x = layers.AveragePooling2D(
        architecture.AUX_POOL_SIZE, strides=architecture.AUX_POOL_STRIDE, dtype=dtype, name=f"{head}_ave_pool"
    )(x)
    x = _conv(x, architecture.AUX_CONV_FILTERS, 1, f"{head}_conv", config, dtype)
    x = layers.Flatten(dtype=dtype, name=f"{head}_flatten")(x)
    x = layers.Dense(architecture.AUX_FC_UNITS, activation="relu", dtype=dtype, name=f"{head}_fc")(x)
    x = layers.Dropout(architecture.AUX_DROPOUT, dtype=dtype, name=f"{head}_drop_fc")(x)
    x = layers.Dense(classes, dtype=dtype, name=f"{head}_classifier")(x)
    return _classifier_output(x, classifier_activation, head)


def _classifier_output(x, classifier_activation, name):
    # A separate float32 activation keeps the softmax in float32 under mixed
    # precision, and gives the output the name that losses and metrics key on.
    return layers.Activation(classifier_activation, dtype="float32", name=name)(x)


def _validate_arguments(
    include_top, weights, input_tensor, input_shape, pooling, classes,
    classifier_activation, aux_heads, variant, pretrained,
):
    """Checks every argument before anything is built; returns the variant."""
    if variant is None:
        variant = "paper"  # always, with or without weights: the package's network
    if variant not in architecture.VARIANTS:
        raise ValueError(
            f"The `variant` argument must be one of {sorted(architecture.VARIANTS)}. "
            f"Received: variant={variant!r}"
        )
    _validate_weights_file(weights, variant)  # a file of the other variant: say so first
    _validate_weights_source(weights, pretrained)
    if pooling not in _POOLINGS:
        raise ValueError(
            f"The `pooling` argument must be None, 'avg' or 'max'. Received: pooling={pooling!r}"
        )
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ValueError(f"The `classes` argument must be an int >= 1. Received: classes={classes!r}")
    if pretrained and include_top and classes != 1000:
        raise ValueError(
            "With pretrained weights and include_top=True, `classes` must be 1000; use "
            f"include_top=False and a new head to fine-tune. Received: classes={classes}"
        )
    if pretrained and classifier_activation not in ("softmax", None):
        raise ValueError(
            "With pretrained weights, `classifier_activation` must be 'softmax' or None. "
            f"Received: classifier_activation={classifier_activation!r}"
        )
    if input_tensor is not None and not _is_tensor(input_tensor):
        raise ValueError(
            "The `input_tensor` argument must be a Keras or backend tensor. "
            f"Received: input_tensor={input_tensor!r}"
        )
    if keras.backend.image_data_format() != "channels_last":
        raise ValueError(
            "GoogLeNet supports channels_last only. Received: "
            f"image_data_format={keras.backend.image_data_format()!r}"
        )
    return variant


def _validate_dtype(dtype):
    """The dtype policy the layers take: None (the global one), or a floating policy by name or object."""
    if dtype is None:
        return None
    try:
        policy = keras.dtype_policies.get(dtype)
    except (ValueError, TypeError):
        policy = None
    # Integer and quantized policies ("int8_from_float32") cannot hold
    # trained weights: keras.quantizers does that after building.
    floating = policy is not None and "float" in policy.variable_dtype and "float" in policy.compute_dtype
    if not floating or policy.quantization_mode is not None:
        raise ValueError(
            "The `dtype` argument must be None, a floating dtype policy name such as 'float32', 'bfloat16' or "
            f"'mixed_float16', or a keras.DTypePolicy. Received: dtype={dtype!r}"
        )
    return policy


def _validate_weights_file(weights, variant):
    """A .caffemodel or .pth must fit the variant, and any weights file must exist."""
    file_format = _weights_file_format(weights)
    if file_format and variant != pretrained_weights.FORMAT_VARIANTS[file_format]:
        # Caffe's weights are the paper's network (biases, LRN, 5x5);
        # torchvision's are TF-slim's batch-norm one (a 3x3 "5x5" branch).
        fits = pretrained_weights.FORMAT_VARIANTS[file_format]
        raise ValueError(
            f"A .{file_format} file holds variant={fits!r} weights; pass variant={fits!r}"
            f"{' (or None)' if fits == 'paper' else ''}. Received: variant={variant!r}"
        )
    if (_is_weights_path(weights) or file_format) and not os.path.isfile(weights):
        raise ValueError(f"The weights file does not exist. Received: weights={weights!r}")


def _validate_weights_source(weights, pretrained):
    """The weights name or path: a missing file is named as missing, a non-HDF5 .weights.h5 as such."""
    looks_like_path = isinstance(weights, os.PathLike) or (
        isinstance(weights, str) and (os.sep in weights or "/" in weights or os.path.splitext(weights)[1] != "")
    )
    if weights is not None and not (isinstance(weights, str) and weights in pretrained_weights.PRETRAINED_WEIGHTS):
        if looks_like_path and not os.path.isfile(weights):
            raise ValueError(f"The weights file does not exist. Received: weights={weights!r}")
    if not (weights is None or pretrained or _is_weights_path(weights)):
        raise ValueError(
            "The `weights` argument must be None, 'imagenet' or the path to a weights file "
            f"(.weights.h5, Caffe's .caffemodel or torchvision's .pth). Received: weights={weights!r}"
        )
    if _is_weights_path(weights) and not _is_hdf5(weights):
        empty = os.path.getsize(weights) == 0
        raise ValueError(
            f"The weights file is {'empty' if empty else 'not an HDF5 file, as .weights.h5 files are'}. "
            f"Received: weights={weights!r}"
        )


def _is_hdf5(path):
    """Whether the file holds the HDF5 signature, at byte 0 or 512, 1024, 2048... (HDF5 spec, III.A "Superblock")."""
    size = os.path.getsize(path)
    with open(path, "rb") as file:
        offset = 0
        while offset + len(_HDF5_SIGNATURE) <= size:
            file.seek(offset)
            if file.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE:
                return True
            offset = 512 if offset == 0 else offset * 2
    return False


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _resolve_input_shape(input_shape, input_tensor):
    if input_shape is None and input_tensor is not None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None:
        return (architecture.DEFAULT_INPUT_SIZE, architecture.DEFAULT_INPUT_SIZE, 3)
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(
            f"The `input_shape` argument must be (height, width, channels). Received: input_shape={input_shape!r}"
        )
    return tuple(input_shape)


def _validate_input_shape(input_shape, include_top, with_aux_heads, variant, pretrained):
    height, width, channels = input_shape
    if height in (1, 3, 4) and channels is not None and channels > 4:
        # (3, 224, 224) is PyTorch's order; as (height, width, channels) it would be 3 pixels high.
        raise ValueError(
            "GoogLeNet is channels_last: input_shape is (height, width, channels), e.g. (224, 224, 3); this one "
            f"looks channels_first. Received: input_shape={input_shape}"
        )
    if channels is None or channels < 1 or (pretrained and channels != 3):
        allowed = "3 channels with pretrained weights" if pretrained else "a channel count >= 1"
        raise ValueError(f"GoogLeNet needs {allowed}. Received: input_shape={input_shape}")
    if pretrained and include_top and input_shape != (224, 224, 3):
        raise ValueError(
            "With pretrained weights and include_top=True, input_shape must be (224, 224, 3); "
            f"use include_top=False for other sizes. Received: input_shape={input_shape}"
        )
    if with_aux_heads and (height is None or width is None):
        raise ValueError(
            "The auxiliary heads need a fixed input size; pass aux_heads=False or a full input_shape. "
            f"Received: input_shape={input_shape}"
        )
    minimum = minimum_input_size(variant, with_aux_heads)
    for size in (height, width):
        if size is not None and size < minimum:
            reason = (
                " (the 4a and 4d maps must be at least 5x5 for the auxiliary heads; aux_heads=False lowers it to "
                f"{minimum_input_size(variant, False)}x{minimum_input_size(variant, False)})"
                if with_aux_heads else ""
            )
            raise ValueError(
                f"The input must be at least {minimum}x{minimum}{reason}. Received: input_shape={input_shape}"
            )


def _is_weights_path(weights):
    return isinstance(weights, (str, os.PathLike)) and str(weights).endswith(".weights.h5")


def _is_pretrained(weights):
    """Published weights by name ("imagenet"), a .caffemodel or a .pth: the keras.applications rules apply."""
    return (isinstance(weights, str) and weights in pretrained_weights.PRETRAINED_NAMES) or bool(
        _weights_file_format(weights)
    )


def _weights_file_format(weights):
    """"caffemodel" or "pth" for a path to such a file by its extension, else None."""
    if not isinstance(weights, (str, os.PathLike)):
        return None
    path = str(weights)
    return "caffemodel" if path.endswith(".caffemodel") else "pth" if path.endswith((".pth", ".pt")) else None


def _is_tensor(value):
    return keras.backend.is_keras_tensor(value) or keras.ops.is_tensor(value)


def _load_weights(model, weights):
    if _is_weights_path(weights):
        model.load_weights(weights)
        return
    # "imagenet", a .caffemodel or a .pth: set by layer name, so that
    # include_top=False takes the backbone only. The weights package builds
    # its reference model with GoogLeNet, which it must not import.
    pretrained_weights.load_pretrained(model, weights, model_variant(model), build_model=GoogLeNet)


def head_parameter_counts(model):
    """Parameter counts of the shared backbone and of each head, by layer name.

    Returns:
        A dict ``{"backbone": n, "main": n, "aux1": n, "aux2": n}`` holding
        the heads the model has; the values add up to ``model.count_params()``.
    """
    head_of_layer = {"loss3_classifier": "main", "main": "main"}
    counts = {"backbone": 0}
    for layer in model.layers:
        head = head_of_layer.get(layer.name) or next(
            (aux for aux in ("aux1", "aux2") if layer.name == aux or layer.name.startswith(f"{aux}_")), "backbone"
        )
        counts[head] = counts.get(head, 0) + layer.count_params()
    return counts


def clone_with_weights(model, clone_function=None):
    """A copy of a functional model whose layers ``clone_function`` makes (the same by default), each with the weights of the layer of its name."""
    copy = keras.models.clone_model(model, clone_function=clone_function)
    for layer in model.layers:
        if layer.weights:
            copy.get_layer(layer.name).set_weights(layer.get_weights())
    return copy


def includes_preprocessing(model):
    """Whether a model scales its input itself (``include_preprocessing=True``, or `int8_input`'s conv1): it takes raw pixels."""
    return any(isinstance(layer, (Preprocessing, MeanPadding)) for layer in model.layers)


def model_variant(model):
    """The variant a GoogLeNet was built as: "bn" when it has batch norm layers."""
    has_batch_norm = any(isinstance(layer, layers.BatchNormalization) for layer in model.layers)
    return "bn" if has_batch_norm else "paper"
