"""The convert-weights command with Caffe and torchvision files (tests for the lead's cli.py change)."""

import numpy as np
import pytest

import caffe_writer
import keras_googlenet as kg
from keras_googlenet import cli


@pytest.mark.slow
def test_convert_weights_command_converts_a_v1_caffemodel_with_three_trained_heads(tmp_path, capsys):
    random_weights = caffe_writer.random_bvlc_weights(seed=0)
    src = caffe_writer.write_caffemodel(tmp_path / "bvlc_googlenet.caffemodel", random_weights, "V1")
    out = tmp_path / "bvlc.weights.h5"
    assert cli.main(["convert-weights", str(src), str(out)]) == 0
    assert capsys.readouterr().out.strip().endswith("variant='paper', aux_heads=True)")
    model = kg.GoogLeNet(weights=str(out))
    np.testing.assert_array_equal(model.get_layer("aux1_classifier").bias.numpy(), random_weights["loss1/classifier"][1][1])


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("bad.pth", b"\x00" * 64, "PyTorch"),
        ("deploy.caffemodel", b'name: "GoogleNet"\nlayer { name: "data" }\n', "is text (a .prototxt"),
        ("empty.caffemodel", b"", "is empty"),
    ],
)
def test_convert_weights_command_reports_a_bad_file_in_one_line(tmp_path, capsys, name, content, message):
    bad = tmp_path / name
    bad.write_bytes(content)
    assert cli.main(["convert-weights", str(bad), str(tmp_path / "out.weights.h5")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and repr(str(bad)) in err
    assert not (tmp_path / "out.weights.h5").exists()
