"""The builder against the paper: outputs, Table 1, parameter counts, sizes, round trips."""

import textwrap

import keras
import numpy as np
import pytest

import keras_googlenet as kg
from keras_googlenet.model import architecture
from keras_googlenet.model.googlenet import head_parameter_counts

import lane

# Table 1 of "Going deeper with convolutions", typed in from the paper as the
# test's own oracle: input channels, #1x1, #3x3 reduce, #3x3, #5x5 reduce,
# #5x5, pool proj.
PAPER_TABLE_1 = {
    "3a": (192, 64, 96, 128, 16, 32, 32),
    "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64),
    "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64),
    "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}


def paper_conv_weights(block, kernel_5x5=5):
    """Conv weights of one inception module, without biases."""
    c_in, n1, r3, n3, r5, n5, proj = PAPER_TABLE_1[block]
    return n1 * c_in + r3 * c_in + 9 * r3 * n3 + r5 * c_in + kernel_5x5**2 * r5 * n5 + proj * c_in


def paper_parameters(classes=1000, aux=False):
    """All parameters of the paper's network, with biases, from Table 1."""
    stem = (7 * 7 * 3 * 64 + 64) + (64 * 64 + 64) + (3 * 3 * 64 * 192 + 192)
    blocks = sum(paper_conv_weights(name) + sum(PAPER_TABLE_1[name][i] for i in (1, 2, 3, 4, 5, 6)) for name in PAPER_TABLE_1)
    main = 1024 * classes + classes
    total = stem + blocks + main
    if aux:
        for c_in in (512, 528):  # outputs of 4a and 4d
            total += (c_in * 128 + 128) + (4 * 4 * 128 * 1024 + 1024) + (1024 * classes + classes)
    return total


def conv_kernel_count(model, prefix):
    return sum(
        int(np.prod(layer.kernel.shape))
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D) and layer.name.startswith(prefix)
    )


@pytest.fixture(scope="module")
def paper_model():
    return kg.GoogLeNet()


def test_default_model_has_main_aux1_aux2_outputs_of_1000_classes(paper_model):
    assert paper_model.output_names == ["main", "aux1", "aux2"]
    assert [tuple(output.shape) for output in paper_model.outputs] == [(None, 1000)] * 3
    assert tuple(paper_model.input.shape) == (None, 224, 224, 3)


def test_block_table_matches_the_paper():
    assert [block.name for block in architecture.INCEPTION_BLOCKS] == list(PAPER_TABLE_1)
    channels = 192
    for block in architecture.INCEPTION_BLOCKS:
        row = PAPER_TABLE_1[block.name]
        assert row[0] == channels, block.name
        assert (
            block.filters_1x1, block.filters_3x3_reduce, block.filters_3x3,
            block.filters_5x5_reduce, block.filters_5x5, block.pool_proj,
        ) == row[1:]
        channels = block.output_channels
    assert channels == 1024


def test_inception_3a_has_163328_conv_weights(paper_model):
    assert paper_conv_weights("3a") == 163_328
    assert conv_kernel_count(paper_model, "inception_3a_") == 163_328


@pytest.mark.parametrize("block", list(PAPER_TABLE_1))
def test_every_block_has_the_papers_conv_weights(paper_model, block):
    assert conv_kernel_count(paper_model, f"inception_{block}_") == paper_conv_weights(block)


def test_paper_variant_without_aux_heads_has_about_7m_parameters():
    model = kg.GoogLeNet(aux_heads=False)
    assert model.count_params() == paper_parameters()
    assert 6_990_000 <= model.count_params() <= 7_010_000


def test_paper_variant_with_aux_heads_has_about_13_4m_parameters(paper_model):
    assert paper_model.count_params() == paper_parameters(aux=True)
    assert abs(paper_model.count_params() - 13_400_000) < 50_000
    counts = head_parameter_counts(paper_model)
    assert counts["main"] == 1024 * 1000 + 1000
    assert counts["aux1"] == (512 * 128 + 128) + (2048 * 1024 + 1024) + (1024 * 1000 + 1000)
    assert sum(counts.values()) == paper_model.count_params()


def test_bn_variant_main_path_has_torchvisions_trainable_parameter_count():
    model = kg.GoogLeNet(variant="bn", aux_heads=False)
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    assert trainable == 6_624_904  # torchvision GoogLeNet_Weights.IMAGENET1K_V1 num_params
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 3 + 6 * 9 and not any(conv.use_bias for conv in convs)


def test_bn_variant_has_a_3x3_kernel_in_the_5x5_branch_and_a_2x2_pool4():
    model = kg.GoogLeNet(variant="bn", aux_heads=False)
    assert model.get_layer("inception_4a_5x5").kernel.shape[:2] == (3, 3)
    assert model.get_layer("pool4_2x2_s2").pool_size == (2, 2)
    assert model.get_layer("conv1_7x7_s2_bn").epsilon == pytest.approx(1e-3)
    assert model.get_layer("pool5_drop_7x7_s1").rate == pytest.approx(0.2)


def test_paper_variant_has_a_true_5x5_branch_lrn_and_dropout_0_4(paper_model):
    assert paper_model.get_layer("inception_4a_5x5").kernel.shape[:2] == (5, 5)
    assert isinstance(paper_model.get_layer("pool1_norm1"), kg.LocalResponseNormalization)
    assert isinstance(paper_model.get_layer("conv2_norm2"), kg.LocalResponseNormalization)
    assert paper_model.get_layer("pool5_drop_7x7_s1").rate == pytest.approx(0.4)


@pytest.mark.parametrize("variant", ["paper", "bn"])
def test_feature_maps_at_224_are_56_28_14_7_and_aux_pools_are_4x4(variant):
    model = kg.GoogLeNet(variant=variant)
    pool4 = "pool4_3x3_s2" if variant == "paper" else "pool4_2x2_s2"
    sizes = [model.get_layer(name).output.shape[1:3] for name in ("pool1_3x3_s2", "pool2_3x3_s2", "pool3_3x3_s2", pool4)]
    assert sizes == [(56, 56), (28, 28), (14, 14), (7, 7)]
    assert tuple(model.get_layer("aux1_ave_pool").output.shape) == (None, 4, 4, 512)
    assert tuple(model.get_layer("aux2_ave_pool").output.shape) == (None, 4, 4, 528)


@pytest.mark.parametrize("size", [113, 160, 225])
def test_max_pools_round_up_like_caffe_and_torchvision(size):
    def ceil_pool(n, k):  # torch.nn.MaxPool2d(k, 2, ceil_mode=True)
        return -(-(n - k) // 2) + 1

    model = kg.GoogLeNet(variant="bn", include_top=False, input_shape=(size, size, 3))
    expected = (size + 2 * 3 - 7) // 2 + 1
    for name, k in (("pool1_3x3_s2", 3), ("pool2_3x3_s2", 3), ("pool3_3x3_s2", 3), ("pool4_2x2_s2", 2)):
        expected = ceil_pool(expected, k)
        assert model.get_layer(name).output.shape[1] == expected, name


def test_include_top_false_with_avg_pooling_gives_1024_features():
    model = kg.GoogLeNet(include_top=False, pooling="avg", input_shape=(160, 160, 3))
    assert tuple(model.output.shape) == (None, 1024)
    assert tuple(kg.GoogLeNet(include_top=False, pooling="max", input_shape=(160, 160, 3)).output.shape) == (None, 1024)
    assert tuple(kg.GoogLeNet(include_top=False, input_shape=(160, 160, 3)).output.shape) == (None, 5, 5, 1024)


def test_aux_heads_false_builds_a_single_output_model():
    model = kg.GoogLeNet(aux_heads=False, classes=10, input_shape=(96, 96, 3))
    assert model.output_names == ["main"]
    assert tuple(model.output.shape) == (None, 10)


def test_input_tensor_becomes_the_model_input():
    tensor = keras.Input((96, 96, 3))
    model = kg.GoogLeNet(input_tensor=tensor, classes=5)
    assert model.inputs[0] is tensor
    assert tuple(model.outputs[0].shape) == (None, 5)


def test_outputs_are_probabilities_and_logits_without_activation():
    images = np.random.default_rng(0).uniform(-1, 1, (2, 96, 96, 3)).astype("float32")
    model = kg.GoogLeNet(variant="bn", classes=7, input_shape=(96, 96, 3))
    main, aux1, aux2 = model.predict(images, verbose=0)
    for probs in (main, aux1, aux2):
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    logits_model = kg.GoogLeNet(classes=7, input_shape=(96, 96, 3), classifier_activation=None, aux_heads=False)
    assert logits_model.get_layer("main").activation is keras.activations.linear


def test_softmax_outputs_stay_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = kg.GoogLeNet(variant="paper", input_shape=(96, 96, 3), classes=10)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert [output.dtype for output in model.outputs] == ["float32"] * 3
    assert model.get_layer("inception_3a_1x1").compute_dtype == "float16"


def test_inference_model_drops_aux_heads_and_shares_weights():
    model = kg.GoogLeNet(variant="bn", classes=10, input_shape=(96, 96, 3))
    predictor = kg.inference_model(model)
    assert predictor.output_names == ["main"]
    assert predictor.count_params() == model.count_params() - sum(
        head_parameter_counts(model)[head] for head in ("aux1", "aux2")
    )
    images = np.random.default_rng(1).uniform(-1, 1, (2, 96, 96, 3)).astype("float32")
    np.testing.assert_allclose(predictor.predict(images, verbose=0), model.predict(images, verbose=0)[0], atol=1e-6)
    model.get_layer("loss3_classifier").bias.assign(np.arange(10, dtype="float32"))
    np.testing.assert_array_equal(predictor.get_layer("loss3_classifier").bias.numpy(), np.arange(10))
    assert kg.inference_model(predictor) is predictor


def test_fit_reports_per_head_losses_weighted_1_03_03():
    # compile_googlenet's weighting, on the stand-in with GoogLeNet's heads: the
    # real three-head network trains in the digits builds, test_kubernetes and
    # the scaling benchmark.
    from tiny_googlenet import tiny_googlenet

    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (4, 96, 96, 3)).astype("float32")
    labels = rng.integers(0, 10, 4)
    model = kg.compile_googlenet(tiny_googlenet(variant="bn", classes=10, input_shape=(96, 96, 3)))
    history = model.fit(images, {"main": labels, "aux1": labels, "aux2": labels}, batch_size=4, epochs=1, verbose=0)
    logs = {key: values[-1] for key, values in history.history.items()}
    assert {"main_loss", "aux1_loss", "aux2_loss", "main_top1", "main_top5"} <= set(logs)
    assert logs["loss"] == pytest.approx(logs["main_loss"] + 0.3 * logs["aux1_loss"] + 0.3 * logs["aux2_loss"], rel=1e-4)


def test_compile_loss_weights_are_overridable():
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (2, 96, 96, 3)).astype("float32")
    labels = rng.integers(0, 10, 2)
    model = kg.compile_googlenet(
        kg.GoogLeNet(variant="bn", classes=10, input_shape=(96, 96, 3)), loss_weights={"aux1": 0.5, "aux2": 0.0}
    )
    logs = model.evaluate(images, {"main": labels, "aux1": labels, "aux2": labels}, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(logs["main_loss"] + 0.5 * logs["aux1_loss"], rel=1e-4)
    with pytest.raises(ValueError, match=r"Received: loss_weights=\{'aux3': 1.0\}"):
        kg.compile_googlenet(model, loss_weights={"aux3": 1.0})


def test_keras_file_round_trip_keeps_outputs_and_the_lrn_layer(tmp_path):
    model = kg.GoogLeNet(variant="paper", classes=10, input_shape=(96, 96, 3))
    kg.compile_googlenet(model, label_smoothing=0.1)
    path = tmp_path / "googlenet.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored.get_layer("pool1_norm1"), kg.LocalResponseNormalization)
    assert restored.get_layer("pool1_norm1").get_config()["beta"] == 0.75
    images = np.random.default_rng(2).uniform(-100, 100, (2, 96, 96, 3)).astype("float32")
    for before, after in zip(model.predict(images, verbose=0), restored.predict(images, verbose=0)):
        np.testing.assert_array_equal(before, after)


def test_weights_file_is_loaded(tmp_path):
    model = kg.GoogLeNet(variant="bn", classes=10, input_shape=(96, 96, 3), aux_heads=False)
    path = tmp_path / "trained.weights.h5"
    model.save_weights(path)
    restored = kg.GoogLeNet(variant="bn", classes=10, input_shape=(96, 96, 3), aux_heads=False, weights=str(path))
    for before, after in zip(model.weights, restored.weights):
        np.testing.assert_array_equal(before.numpy(), after.numpy())


def _jax_build(folder):
    """A lane job: a JAX process builds GoogLeNet and predicts, and says whether TensorFlow was imported."""
    script = textwrap.dedent(
        """
        import sys
        import numpy as np, keras, keras_googlenet as kg
        assert keras.backend.backend() == "jax", keras.backend.backend()
        # "paper", for its LRN layer; "bn" runs on JAX in the GPU benchmark's smoke test.
        model = kg.GoogLeNet(variant="paper", classes=10, input_shape=(80, 80, 3))
        main, aux1, aux2 = model.predict(np.ones((2, 80, 80, 3), "float32"), verbose=0)
        assert main.shape == (2, 10) and np.allclose(main.sum(axis=1), 1.0, atol=1e-5), main
        assert "tensorflow" not in sys.modules, "building GoogLeNet on JAX imported TensorFlow"
        open("jax_ok", "w").close()
        """
    )
    return [(lane.python("-c", script), {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"})]


@pytest.mark.slow  # a JAX process compiling GoogLeNet; test_preprocessing's JAX check stays in the quick tier
@pytest.mark.needs("jax", "pip install jax[cpu]")
@lane.reads(_jax_build)
def test_model_builds_and_runs_on_the_jax_backend_without_importing_tensorflow(lane_result):
    assert (lane_result(_jax_build) / "jax_ok").exists()
