"""Grad-CAM: where each head of a GoogLeNet looks for a class.

Class activation mapping was introduced on GoogLeNet (Zhou et al., "Learning
Deep Features for Discriminative Localization", CVPR 2016), and Grad-CAM
(Selvaraju et al., ICCV 2017, https://arxiv.org/abs/1610.02391) computes it
for any layer: the feature maps ``A`` of a layer, weighted per channel by the
spatial mean of the gradient of the class score (the logit, before the
softmax) with respect to ``A``, summed and passed through a ReLU. Behind a
global average pool and a linear classifier, as ``main``'s, the weights are
the classifier's own and Grad-CAM is the CAM of Zhou et al.

The network is split at the chosen layer into a part that computes ``A`` and
a part from ``A`` to the head's logits, so that each backend's own gradient
(TF's tape, ``jax.grad``, torch autograd) is taken with respect to ``A``.
"""

import numpy as np

from keras_googlenet.model import architecture

HEADS = ("main", "aux1", "aux2")


def default_layer(head="main"):
    """The layer a head's map is taken from: inception 5b for ``main``, 4a and 4d for the auxiliary heads."""
    _check_head(head)
    blocks = {value: key for key, value in architecture.AUX_HEAD_AFTER.items()}
    block = blocks.get(head, architecture.INCEPTION_BLOCKS[-1].name)
    return f"inception_{block}_output"


def classifier_layer(head="main"):
    """The dense layer whose outputs are a head's logits (Caffe's ``loss3/classifier``, ``loss1/classifier``...)."""
    _check_head(head)
    return "loss3_classifier" if head == "main" else f"{head}_classifier"


def grad_cam(model, images, class_index=None, head="main", layer=None, batch_size=32):
    """Grad-CAM heatmaps of a GoogLeNet for a batch of images.

    Args:
        model: a GoogLeNet (``include_top=True``), three-head or inference
            model; trained weights make the maps meaningful.
        images: a float array (n, height, width, 3) of what the model takes
            (scaled by `preprocess_input`, or raw pixels for a model built
            with ``include_preprocessing=True``).
        class_index: ``None`` for each image's top class of ``head``, an int
            for one class for all, or a sequence of one int per image.
        head: ``"main"``, ``"aux1"`` (looks at inception 4a) or ``"aux2"``
            (4d).
        layer: the name of the layer whose maps are weighted; the head's
            inception block (`default_layer`) when ``None``. Any layer that
            the rest of the head reads alone (a block output, a pool, a stem
            layer), not a branch inside a block.
        batch_size: images per forward and backward pass.

    Returns:
        ``(heatmaps, class_indices)``: float32 (n, height, width) in [0, 1],
        each map divided by its maximum (all zeros where no location raises
        the class score: a flat map), and the int classes they are for.
        `grad_cam_with_logits` also returns the head's logits.
    """
    heatmaps, indices, _ = grad_cam_with_logits(model, images, class_index, head, layer, batch_size)
    return heatmaps, indices


def grad_cam_with_logits(model, images, class_index=None, head="main", layer=None, batch_size=32):
    """`grad_cam`, plus the head's logits (n, classes) from the same forward pass.

    One forward pass per batch gives the logits, the top classes and the
    feature maps; the backward pass reuses it. A caller that shows scores
    beside the map (``predict --cam``) takes them from here, so they are the
    scores of exactly the pixels mapped.
    """
    import keras

    images = _check_images(images, model)
    features_model, tail = split_at(model, layer or default_layer(head), head)
    classes = int(tail.output_shape[-1])
    chosen = None if class_index is None else _class_indices(class_index, len(images), classes)
    maps, logits, indices = [], [], []
    for start in range(0, len(images), batch_size):
        features = features_model(images[start : start + batch_size], training=False)
        batch_logits, pullback = _logits_and_pullback(tail, features)
        batch_logits = keras.ops.convert_to_numpy(batch_logits)
        batch_indices = np.argmax(batch_logits, axis=-1) if chosen is None else chosen[start : start + batch_size]
        gradients = pullback(keras.ops.one_hot(keras.ops.convert_to_tensor(batch_indices, "int32"), classes))
        maps.append(_weighted_maps(keras.ops.convert_to_numpy(features), keras.ops.convert_to_numpy(gradients)))
        logits.append(batch_logits)
        indices.append(batch_indices)
    return _upsample(np.concatenate(maps), images.shape[1:3]), np.concatenate(indices).astype(int), np.concatenate(logits)


def split_at(model, layer, head="main"):
    """Two models: input to ``layer``'s output, and that output to ``head``'s logits."""
    import keras

    names = {item.name for item in model.layers}
    for name in (layer, classifier_layer(head)):
        if name not in names:
            raise ValueError(
                f"The model has no layer {name!r} (head {head!r} needs include_top=True and, for aux1/aux2, "
                f"aux_heads=True). Received: layer={layer!r}, head={head!r}"
            )
    features = model.get_layer(layer).output
    try:
        tail = keras.Model(features, model.get_layer(classifier_layer(head)).output)
    except ValueError:
        raise ValueError(
            f"The {head!r} head does not read layer {layer!r} alone (a branch inside an inception block?): "
            f"pick a block output such as {default_layer(head)!r}. Received: layer={layer!r}"
        ) from None
    return keras.Model(model.input, features), tail


def _logits_and_pullback(tail, features):
    """The head's logits at ``features``, and ``pullback(w)``: d(sum of w * logits) / d(features).

    The backward pass reuses the forward one, with the backend's own autodiff
    (TF's tape, ``jax.vjp``, torch autograd).
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        features = tf.convert_to_tensor(features)
        with tf.GradientTape() as tape:
            tape.watch(features)
            logits = tail(features, training=False)
        return logits, lambda weights: tape.gradient(logits, features, output_gradients=tf.cast(weights, logits.dtype))
    if backend == "jax":
        import jax

        trainable = [v.value for v in tail.trainable_variables]
        frozen = [v.value for v in tail.non_trainable_variables]
        logits, vjp = jax.vjp(lambda values: tail.stateless_call(trainable, frozen, values, training=False)[0], features)
        return logits, lambda weights: vjp(weights.astype(logits.dtype))[0]
    if backend == "torch":
        import torch

        features = features.detach().clone().requires_grad_(True)
        logits = tail(features, training=False)
        return logits, lambda weights: torch.autograd.grad(logits, features, weights.to(logits.dtype))[0]
    raise ValueError(f"Grad-CAM needs the tensorflow, jax or torch backend. Received: backend={backend!r}")


def _weighted_maps(features, gradients):
    """ReLU(sum_k alpha_k A_k), alpha_k the spatial mean of the gradient (Grad-CAM, eq. 1-2)."""
    alphas = gradients.mean(axis=(1, 2), keepdims=True)
    return np.maximum((alphas * features).sum(axis=-1), 0.0)


def _upsample(maps, size):
    """Each map resized bilinearly to the image size, then divided by its maximum."""
    from PIL import Image

    out = np.zeros((len(maps), *size), dtype=np.float32)
    for i, heatmap in enumerate(maps):
        resized = np.asarray(Image.fromarray(heatmap.astype(np.float32)).resize(size[::-1], Image.BILINEAR))
        peak = float(resized.max())
        if peak > 0:
            out[i] = np.clip(resized / peak, 0.0, 1.0)
    return out


def _class_indices(class_index, count, classes):
    values = np.broadcast_to(np.asarray(class_index), (count,)) if np.ndim(class_index) == 0 else np.asarray(class_index)
    if values.shape != (count,) or values.dtype.kind not in "iu" or values.min() < 0 or values.max() >= classes:
        raise ValueError(
            f"`class_index` must be None, or one int in [0, {classes}) or one per image ({count}). "
            f"Received: class_index={class_index!r}"
        )
    return values


def _check_head(head):
    if head not in HEADS:
        raise ValueError(f"`head` must be one of {list(HEADS)}. Received: head={head!r}")


def _check_images(images, model):
    images = np.asarray(images, dtype=np.float32)
    expected = tuple(model.input_shape[1:])
    if images.ndim != 4 or any(e is not None and e != s for e, s in zip(expected, images.shape[1:])) or not len(images):
        raise ValueError(
            f"`images` must be a batch of shape (n, {', '.join(str(e) for e in expected)}). Received: images.shape={images.shape}"
        )
    return images
