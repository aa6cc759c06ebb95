"""The classification task on top of the network: losses, metrics, inference."""

import keras
from keras import ops

from keras_googlenet.model import architecture

OUTPUT_NAMES = tuple(architecture.LOSS_WEIGHTS)


@keras.saving.register_keras_serializable(package="keras_googlenet")
class SparseCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy of integer labels or one-hot labels, with optional label smoothing.

    Integer labels have shape ``(batch,)`` or ``(batch, 1)``; one-hot labels
    (as `keras.utils.to_categorical` makes them) have shape ``(batch,
    classes)``, and are told apart by that last dimension. Keras'
    `SparseCategoricalCrossentropy` has no label smoothing, so integer labels
    are one-hot encoded here when smoothing is asked for.
    """

    def __init__(self, from_logits=False, label_smoothing=0.0, name="sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        if not _is_one_hot(y_true, y_pred):
            if not self.label_smoothing:
                return keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=self.from_logits)
            y_true = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), ops.shape(y_pred)[-1])
        return keras.losses.categorical_crossentropy(
            ops.cast(y_true, y_pred.dtype), y_pred, from_logits=self.from_logits, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        config = super().get_config()
        config.update(from_logits=self.from_logits, label_smoothing=self.label_smoothing)
        return config


class _IntegerOrOneHotLabels:
    """Turns one-hot labels into class indices before a sparse accuracy metric sees them."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        if _is_one_hot(y_true, y_pred):
            y_true = ops.argmax(y_true, axis=-1)
        return super().update_state(y_true, y_pred, sample_weight=sample_weight)


@keras.saving.register_keras_serializable(package="keras_googlenet")
class Top1Accuracy(_IntegerOrOneHotLabels, keras.metrics.SparseCategoricalAccuracy):
    """`SparseCategoricalAccuracy` that also takes one-hot labels."""


@keras.saving.register_keras_serializable(package="keras_googlenet")
class TopKAccuracy(_IntegerOrOneHotLabels, keras.metrics.SparseTopKCategoricalAccuracy):
    """`SparseTopKCategoricalAccuracy` that also takes one-hot labels."""


def _is_one_hot(y_true, y_pred):
    """Whether labels are one-hot rows rather than class indices, from their static shape.

    Raises a one-line ValueError for labels that are neither: without it
    Keras fails deep inside with "Argument `output` must have rank ...".
    """
    classes = y_pred.shape[-1]
    if len(y_true.shape) < len(y_pred.shape) or y_true.shape[-1] == 1:
        return False
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] in (classes, None):
        return True
    raise ValueError(
        f"The labels must be integer class indices, shape (batch,), or one-hot rows, shape (batch, {classes}) "
        f"as keras.utils.to_categorical makes them. Received: labels of shape {tuple(y_true.shape)}"
    )


def compile_googlenet(
    model,
    optimizer=None,
    loss_weights=None,
    label_smoothing=0.0,
    from_logits=None,
    **compile_kwargs,
):
    """Compiles a GoogLeNet for training on integer labels or one-hot labels.

    Every output gets categorical cross-entropy (`SparseCrossentropy`, which
    takes either kind of labels), weighted as in the
    paper (``{"main": 1.0, "aux1": 0.3, "aux2": 0.3}``) unless overridden.
    Top-1 and top-5 accuracy are reported on ``main`` only. ``loss`` is
    passed as a dict because Keras rejects a single loss with a dict of
    ``loss_weights`` on a multi-output model.

    Args:
        model: a model from `GoogLeNet(include_top=True)`, with or without
            auxiliary heads.
        optimizer: a Keras optimizer or its name; SGD with momentum 0.9 (the
            paper's) when ``None``.
        loss_weights: a dict from output name to weight, merged over the
            paper's weights.
        label_smoothing: the label smoothing factor, 0 to disable.
        from_logits: whether the outputs are logits; inferred from the
            ``main`` output's activation when ``None``.
        **compile_kwargs: passed on to `model.compile`.

    Returns:
        The compiled model.
    """
    outputs = [name for name in OUTPUT_NAMES if name in model.output_names]
    if "main" not in outputs:
        raise ValueError(
            "compile_googlenet needs a model with a 'main' output (include_top=True). "
            f"Received: model.output_names={model.output_names}"
        )
    weights = {name: architecture.LOSS_WEIGHTS[name] for name in outputs}
    unknown = set(loss_weights or {}) - set(outputs)
    if unknown:
        raise ValueError(
            f"`loss_weights` keys must be outputs of the model {outputs}. Received: loss_weights={loss_weights}"
        )
    weights.update(loss_weights or {})
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"`label_smoothing` must be in [0, 1). Received: label_smoothing={label_smoothing!r}")
    if from_logits is None:
        from_logits = model.get_layer("main").activation is not keras.activations.softmax
    if optimizer is None:
        optimizer = keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)
    model.compile(
        optimizer=optimizer,
        loss={name: SparseCrossentropy(from_logits, label_smoothing) for name in outputs},
        loss_weights=weights,
        metrics={
            "main": [Top1Accuracy(name="top1"), TopKAccuracy(k=5, name="top5")]
        },
        **compile_kwargs,
    )
    return model


def build_from_element_spec(model, dataset):
    """Creates a compiled ``model``'s loss, metric and optimizer variables from the element spec of ``dataset``, before `fit`.

    Without a distribution strategy at compile time, Keras' TensorFlow trainer
    (3.15) creates a multi-output model's per-head loss trackers inside the
    first trace of its train step, and TensorFlow traces a function that
    created variables a second time: for the three-head GoogLeNet that was 5 s
    of a 24 s `train` at 32 px on 2 CPU cores, at every start. Keras builds
    the same state this way under a strategy (`Trainer._symbolic_build`, which
    has no public name), but from a first batch that every `fit` and every
    validation pass reads and all-reduces again, only to find the model built
    (under `MultiWorkerMirroredStrategy` that reduce fails on a nested batch,
    keras-team/keras#20585). Once built here, the model skips that step.

    Args:
        model: a compiled model.
        dataset: the ``tf.data.Dataset`` of ``(images, targets)`` it will be fit on.
    """
    batch = keras.tree.map_structure(lambda spec: keras.KerasTensor(spec.shape, spec.dtype.name), dataset.element_spec)
    model._symbolic_build(data_batch=batch)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None


def inference_model(model):
    """The single-output model of the ``main`` head, sharing the weights.

    The paper discards the auxiliary classifiers at inference; exports need a
    single output too (TFLite reorders multiple outputs).
    """
    if model.output_names == ["main"]:
        return model
    if "main" not in model.output_names:
        raise ValueError(
            "inference_model needs a model with a 'main' output (include_top=True). "
            f"Received: model.output_names={model.output_names}"
        )
    # `model.input`, not `model.inputs`: a one-element list makes every call warn that the
    # input structure does not match.
    return keras.Model(model.input, model.get_layer("main").output, name=f"{model.name}_inference")
