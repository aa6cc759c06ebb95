"""The GoogLeNet architecture as data: the paper's Table 1 and the two variants.

This is the only place that holds the numbers of "Going deeper with
convolutions" (Szegedy et al., 2014, https://arxiv.org/abs/1409.4842).
`keras_googlenet.model.googlenet` walks these tables; tests check them against the paper.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class InceptionBlock:
    """One row of Table 1: the filter counts of an inception module."""

    name: str
    filters_1x1: int
    filters_3x3_reduce: int
    filters_3x3: int
    filters_5x5_reduce: int
    filters_5x5: int
    pool_proj: int

    @property
    def output_channels(self):
        return self.filters_1x1 + self.filters_3x3 + self.filters_5x5 + self.pool_proj


# Table 1, rows "inception (3a)" to "inception (5b)":
#   name, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj
INCEPTION_BLOCKS = (
    InceptionBlock("3a", 64, 96, 128, 16, 32, 32),  # 28 x 28 x 256
    InceptionBlock("3b", 128, 128, 192, 32, 96, 64),  # 28 x 28 x 480
    InceptionBlock("4a", 192, 96, 208, 16, 48, 64),  # 14 x 14 x 512
    InceptionBlock("4b", 160, 112, 224, 24, 64, 64),  # 14 x 14 x 512
    InceptionBlock("4c", 128, 128, 256, 24, 64, 64),  # 14 x 14 x 512
    InceptionBlock("4d", 112, 144, 288, 32, 64, 64),  # 14 x 14 x 528
    InceptionBlock("4e", 256, 160, 320, 32, 128, 128),  # 14 x 14 x 832
    InceptionBlock("5a", 256, 160, 320, 32, 128, 128),  # 7 x 7 x 832
    InceptionBlock("5b", 384, 192, 384, 48, 128, 128),  # 7 x 7 x 1024
)

# The stem, Table 1 rows "convolution" to "max pool" before 3a (Caffe names):
# conv1/7x7_s2 (64), pool1, conv2/3x3_reduce (64), conv2/3x3 (192), pool2.
STEM_CONV1_FILTERS = 64
# conv1's layer name and that of the zero padding before it, where export folds the input scaling in.
STEM_CONV1 = "conv1_7x7_s2"
STEM_CONV1_PAD = "conv1_pad"
STEM_CONV2_REDUCE_FILTERS = 64
STEM_CONV2_FILTERS = 192

# The stride-2 max pools between the stages: pool3 after 3b, pool4 after 4e.
POOL_AFTER = {"3b": "pool3", "4e": "pool4"}

# The auxiliary classifiers (Section 5): on top of 4a and 4d.
AUX_HEAD_AFTER = {"4a": "aux1", "4d": "aux2"}
AUX_POOL_SIZE = 5  # "average pooling layer with 5x5 filter size and stride 3"
AUX_POOL_STRIDE = 3
AUX_CONV_FILTERS = 128
AUX_FC_UNITS = 1024
AUX_DROPOUT = 0.7

# The loss weights of Section 5: "the losses of the auxiliary classifiers were
# weighted by 0.3".
LOSS_WEIGHTS = {"main": 1.0, "aux1": 0.3, "aux2": 0.3}


@dataclasses.dataclass(frozen=True)
class InputScaling:
    """How a variant's first layer wants RGB pixels in [0, 255] scaled.

    ``y = (x[..., channels] - mean) / std``, where ``channels`` reorders RGB
    into ``channel_order`` and ``mean`` and ``std`` are per channel, in that
    order, in pixel units. Every place that scales images (`preprocess_input`,
    the tf.data pipeline, the `Preprocessing` layer of exports, the weights
    registry) reads these numbers; none restates them.
    """

    channel_order: str  # "RGB" or "BGR"
    mean: tuple
    std: tuple

    @property
    def swaps_channels(self):
        return self.channel_order == "BGR"


@dataclasses.dataclass(frozen=True)
class Variant:
    """How a variant differs from the table: normalisation, kernels, pools, head."""

    name: str
    description: str
    batch_norm: bool  # conv without bias + BN, or conv with bias
    bn_epsilon: float
    bn_momentum: float
    lrn: bool  # LRN after pool1 and after conv2/3x3
    branch_5x5_kernel: int  # the kernel of the "#5x5" branch
    pool4_size: int  # the max pool after 4e
    dropout: float  # main head, before the classifier
    input_scaling: InputScaling


VARIANTS = {
    "paper": Variant(
        name="paper",
        description="the 2014 paper (Caffe bvlc_googlenet): biases, LRN, true 5x5",
        batch_norm=False,
        bn_epsilon=0.0,
        bn_momentum=0.0,
        lrn=True,
        branch_5x5_kernel=5,
        pool4_size=3,
        dropout=0.4,
        # Caffe's bvlc_googlenet train_val.prototxt: BGR, mean_value 104, 117,
        # 123, no scaling (not keras.applications' "caffe" mean 103.939, ...).
        input_scaling=InputScaling("BGR", (104.0, 117.0, 123.0), (1.0, 1.0, 1.0)),
    ),
    # torchvision `googlenet` and TF-slim `inception_v1`, whose ImageNet weights
    # we load. torchvision keeps a 3x3 kernel in the "5x5" branch ("a known bug"
    # in its source) for compatibility with those weights.
    "bn": Variant(
        name="bn",
        description="Inception v1 with batch norm (torchvision / TF-slim weights)",
        batch_norm=True,
        bn_epsilon=1e-3,
        bn_momentum=0.9,  # torchvision's momentum=0.1 in Keras terms
        lrn=False,
        branch_5x5_kernel=3,
        pool4_size=2,
        dropout=0.2,
        # [-1, 1]: TF-slim's inception_preprocessing, which torchvision's
        # transform_input reproduces from its ImageNet normalisation.
        input_scaling=InputScaling("RGB", (127.5, 127.5, 127.5), (127.5, 127.5, 127.5)),
    ),
}

# LRN as in the Caffe reference: local_size 5, alpha 1e-4, beta 0.75, k 1.
LRN_SIZE = 5
LRN_ALPHA = 1e-4
LRN_BETA = 0.75
LRN_BIAS = 1.0

DEFAULT_INPUT_SIZE = 224


def feature_map_sizes(input_size, variant):
    """Spatial sizes after conv1, pool1, pool2, pool3 and pool4.

    Every stride-2 max pool rounds up (Caffe and torchvision's
    ``ceil_mode=True``): the builder pads one row and column at the end, so
    224 px gives 112, 56, 28, 14 and 7. The 4a/4d maps are the pool3 size.
    """
    size = (input_size - 1) // 2 + 1  # conv1/7x7_s2 with padding 3
    sizes = [size]
    for pool_size in (3, 3, 3, VARIANTS[variant].pool4_size):
        size = (size + 1 - pool_size) // 2 + 1 if size + 1 >= pool_size else 0
        sizes.append(size)
    return sizes


def minimum_input_size(variant="paper", aux_heads=True):
    """The smallest height and width the network accepts.

    Every pooled map must keep at least one pixel, and with the auxiliary
    heads the 4a and 4d maps must hold their 5x5 average pool. Computed
    from the table, without Keras, so that arguments are checked at once.
    """
    size = 1
    while not _fits(size, variant, aux_heads):
        size += 1
    return size


def _fits(size, variant, aux_heads):
    sizes = feature_map_sizes(size, variant)
    aux_map = sizes[3]
    return min(sizes) >= 1 and (not aux_heads or aux_map >= AUX_POOL_SIZE)
