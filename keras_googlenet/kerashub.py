"""GoogLeNet in KerasHub's API: a `Backbone`, its image converter, preprocessor and `ImageClassifier`.

KerasHub finds a preset's classes by their registered names
(``keras_googlenet>GoogLeNetBackbone``) and never imports a third-party
module, so this module must be imported before ``from_preset``::

    import keras_googlenet.kerashub  # registers the classes with Keras
    classifier = keras_hub.models.ImageClassifier.from_preset("path/to/kerashub")

All four classes are needed: with KerasHub's stock converter, preprocessor or
classifier, ``ImageClassifier.from_preset`` finds no subclass compatible with
`GoogLeNetBackbone`. They follow KerasHub's own ResNet. The backbone takes raw
RGB pixels in [0, 255] and scales them itself (`layers.Preprocessing`): the
image converter only does ``x * scale + offset``, which cannot swap RGB to
BGR as the "paper" variant needs, so the converter only resizes.
`kerashub_preset.save_preset` writes a preset from a training checkpoint.

Needs keras-hub: ``pip install "keras-googlenet[kerashub]"``.
"""

import keras

try:
    import keras_hub
except ImportError:  # an optional extra: say how to get it, in one line
    raise ImportError('keras_googlenet.kerashub needs keras-hub: pip install "keras-googlenet[kerashub]"') from None

from keras_googlenet.model.googlenet import GoogLeNet, model_variant

BACKBONE_NAME = "googlenet_backbone"
CLASSIFIER_NAME = "googlenet_image_classifier"


@keras.saving.register_keras_serializable(package="keras_googlenet")
class GoogLeNetBackbone(keras_hub.models.Backbone):
    """GoogLeNet (Inception v1) up to inception 5b, as a KerasHub backbone.

    ``GoogLeNet(include_top=False, include_preprocessing=True)``: it takes raw
    RGB pixels in [0, 255] and returns the 4D features of inception 5b
    (1024 channels).

    Args:
        variant: ``"paper"`` or ``"bn"``, as `GoogLeNet`'s; ``None`` means
            ``"paper"``.
        image_shape: the input shape without the batch size. Defaults to
            ``(None, None, 3)``: any size from `minimum_input_size` up.
        dtype: ``None``, a dtype policy name or a `keras.DTypePolicy`, for
            the weights and computations (see `GoogLeNet`).
    """

    def __init__(self, variant=None, image_shape=(None, None, 3), dtype=None, **kwargs):
        kwargs.setdefault("name", BACKBONE_NAME)
        network = GoogLeNet(
            include_top=False, variant=variant, input_shape=tuple(image_shape), include_preprocessing=True, dtype=dtype
        )
        super().__init__(inputs=network.input, outputs=network.output, dtype=dtype, **kwargs)
        self.variant = model_variant(network)
        self.image_shape = tuple(image_shape)

    def get_config(self):
        config = super().get_config()
        config.update(variant=self.variant, image_shape=self.image_shape)
        return config


@keras.saving.register_keras_serializable(package="keras_googlenet")
class GoogLeNetImageConverter(keras_hub.layers.ImageConverter):
    """Resizes images for `GoogLeNetBackbone`; leave ``scale`` and ``offset`` None, the backbone scales."""

    backbone_cls = GoogLeNetBackbone

    def __init__(self, **kwargs):
        kwargs.setdefault("name", "googlenet_image_converter")
        super().__init__(**kwargs)


@keras.saving.register_keras_serializable(package="keras_googlenet")
class GoogLeNetImageClassifierPreprocessor(keras_hub.models.ImageClassifierPreprocessor):
    """Turns images into `GoogLeNetImageClassifier` inputs with a `GoogLeNetImageConverter`."""

    backbone_cls = GoogLeNetBackbone
    image_converter_cls = GoogLeNetImageConverter

    def __init__(self, image_converter=None, **kwargs):
        kwargs.setdefault("name", "googlenet_image_classifier_preprocessor")
        super().__init__(image_converter, **kwargs)


@keras.saving.register_keras_serializable(package="keras_googlenet")
class GoogLeNetImageClassifier(keras_hub.models.ImageClassifier):
    """KerasHub's `ImageClassifier` on a `GoogLeNetBackbone`, which also keeps its class names.

    The head is the paper's main classifier: global average pooling, dropout
    and one dense layer. The two auxiliary heads of training are not part of
    it (an `ImageClassifier` has one output).

    Args:
        backbone: a `GoogLeNetBackbone`.
        num_classes: the number of classes.
        class_names: ``None`` or one name per class, saved with the preset
            and read back as ``classifier.class_names``.
        **kwargs: what `keras_hub.models.ImageClassifier` takes
            (``preprocessor``, ``activation``, ``dropout``, ...).
    """

    backbone_cls = GoogLeNetBackbone
    preprocessor_cls = GoogLeNetImageClassifierPreprocessor

    def __init__(self, backbone, num_classes, class_names=None, **kwargs):
        if class_names is not None:
            class_names = list(class_names)
            if len(class_names) != num_classes or not all(isinstance(name, str) for name in class_names):
                raise ValueError(
                    f"`class_names` must be {num_classes} strings, one per class. Received: class_names={class_names!r}"
                )
        kwargs.setdefault("name", CLASSIFIER_NAME)
        super().__init__(backbone, num_classes, **kwargs)
        # A tuple: Keras would wrap a list attribute in a tracked list, which json cannot write.
        self.class_names = tuple(class_names) if class_names is not None else None

    def get_config(self):
        config = super().get_config()
        config.update(class_names=list(self.class_names) if self.class_names is not None else None)
        return config
