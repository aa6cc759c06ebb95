"""Every bad argument of GoogLeNet raises one ValueError line naming it and its value."""

import pytest

import keras_googlenet as kg


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"weights": "imagenet21k"}, r"`weights` argument must be None, 'imagenet' or the path .* Received: weights='imagenet21k'"),
        ({"weights": "/nowhere/model.weights.h5"}, r"weights file does not exist\. Received: weights='/nowhere/model.weights.h5'"),
        ({"weights": "imagenet", "input_shape": (160, 160, 3)}, r"input_shape must be \(224, 224, 3\).* Received: input_shape=\(160, 160, 3\)"),
        ({"input_shape": (64, 64, 3)}, r"at least 79x79 .*4a and 4d.* Received: input_shape=\(64, 64, 3\)"),
        ({"input_shape": (64, 64, 3)}, r"aux_heads=False lowers it to 31x31\)\. Received"),
        ({"variant": "bn", "input_shape": (64, 64, 3)}, r"aux_heads=False lowers it to 15x15\)\. Received"),
        ({"input_shape": (3, 224, 224)}, r"channels_last.*e\.g\. \(224, 224, 3\).* Received: input_shape=\(3, 224, 224\)"),
        ({"input_shape": (1, 96, 96), "include_top": False}, r"channels_last.* Received: input_shape=\(1, 96, 96\)"),
        ({"weights": "nope.h5"}, r"weights file does not exist\. Received: weights='nope\.h5'"),
        ({"weights": "/nowhere/googlenet.pth", "variant": "bn"}, r"weights file does not exist\. Received: weights='/nowhere/googlenet\.pth'"),
        ({"input_shape": (24, 24, 3), "include_top": False}, r"at least 31x31\. Received: input_shape=\(24, 24, 3\)"),
        ({"weights": "imagenet", "include_top": False, "input_shape": (224, 224, 1)}, r"3 channels .* Received: input_shape=\(224, 224, 1\)"),
        ({"input_shape": (224, 224, 0)}, r"channel count >= 1\. Received: input_shape=\(224, 224, 0\)"),
        ({"input_shape": (224, 224)}, r"\(height, width, channels\)\. Received: input_shape=\(224, 224\)"),
        ({"include_top": False, "pooling": "mean"}, r"`pooling` argument must be None, 'avg' or 'max'\. Received: pooling='mean'"),
        ({"variant": "v3"}, r"`variant` argument must be one of \['bn', 'paper'\]\. Received: variant='v3'"),
        ({"classes": 0}, r"`classes` argument must be an int >= 1\. Received: classes=0"),
        ({"weights": "imagenet", "classes": 10}, r"`classes` must be 1000.* Received: classes=10"),
        ({"weights": "imagenet", "classifier_activation": "sigmoid"}, r"must be 'softmax' or None\. Received: classifier_activation='sigmoid'"),
        ({"weights": "/nowhere/bvlc_googlenet.caffemodel", "variant": "bn"}, r"A \.caffemodel file holds variant='paper' weights.* Received: variant='bn'"),
        ({"input_shape": (None, None, 3)}, r"auxiliary heads need a fixed input size.* Received: input_shape=\(None, None, 3\)"),
    ],
)
def test_bad_argument_raises_one_line_naming_it(kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        kg.GoogLeNet(**kwargs)
    assert "\n" not in str(error.value)


def test_bn_variant_accepts_smaller_inputs_than_paper_without_heads():
    assert kg.minimum_input_size("bn", aux_heads=False) < kg.minimum_input_size("paper", aux_heads=False)
    model = kg.GoogLeNet(variant="bn", include_top=False, input_shape=(31, 31, 3))
    assert model.output.shape[1] >= 1


@pytest.mark.parametrize("content, problem", [(b"", "is empty"), (b"<html>404 Not Found</html>", "is not an HDF5 file")])
def test_a_weights_h5_that_is_not_hdf5_is_named_in_one_line(tmp_path, content, problem):
    path = tmp_path / "model.weights.h5"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"weights file {problem}.* Received: weights='{path}'") as error:
        kg.GoogLeNet(weights=str(path), input_shape=(96, 96, 3))
    assert "\n" not in str(error.value)


def test_an_existing_file_of_another_kind_is_not_called_missing(tmp_path):
    path = tmp_path / "model.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(ValueError, match=r"must be None, 'imagenet' or the path to a weights file"):
        kg.GoogLeNet(weights=str(path))
