"""LocalResponseNormalization against Caffe's formula and TF's implementation."""

import numpy as np
import pytest
import tensorflow as tf

import keras_googlenet as kg


def caffe_lrn(x, size=5, alpha=1e-4, beta=0.75, k=1.0):
    """Caffe's LRN (ACROSS_CHANNELS), written out channel by channel."""
    channels = x.shape[-1]
    out = np.empty_like(x)
    for c in range(channels):
        lo, hi = max(0, c - size // 2), min(channels, c + size // 2 + 1)
        out[..., c] = x[..., c] / (k + alpha / size * np.sum(x[..., lo:hi] ** 2, axis=-1)) ** beta
    return out


def test_lrn_matches_caffes_formula():
    x = np.random.default_rng(0).uniform(0, 300, (2, 3, 4, 9)).astype("float32")
    np.testing.assert_allclose(kg.LocalResponseNormalization()(x), caffe_lrn(x), rtol=1e-5)


def test_lrn_matches_tf_with_alpha_divided_by_size():
    x = np.random.default_rng(1).uniform(0, 300, (1, 5, 5, 16)).astype("float32")
    expected = tf.nn.local_response_normalization(x, depth_radius=2, bias=1.0, alpha=1e-4 / 5, beta=0.75)
    np.testing.assert_allclose(kg.LocalResponseNormalization()(x), expected, rtol=1e-5)


def test_lrn_round_trips_through_its_config():
    layer = kg.LocalResponseNormalization(size=3, alpha=2e-4, beta=0.5, bias=2.0, name="norm")
    clone = kg.LocalResponseNormalization.from_config(layer.get_config())
    x = np.random.default_rng(2).uniform(0, 10, (1, 2, 2, 6)).astype("float32")
    np.testing.assert_allclose(clone(x), caffe_lrn(x, size=3, alpha=2e-4, beta=0.5, k=2.0), rtol=1e-5)


def test_lrn_rejects_an_even_window():
    with pytest.raises(ValueError, match=r"Received: size=4"):
        kg.LocalResponseNormalization(size=4)
