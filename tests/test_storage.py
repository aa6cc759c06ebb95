"""URIs that an argument cannot take: refused in one line naming the argument, before anything is written or TensorFlow loads.

`train --output-dir` and `--data`, and the models and folders that `export`, `verify`,
`predict` and `evaluate` read and write, take gs:// and s3:// URIs (tested on emulators in
tests/training/test_object_store_output.py and tests/test_object_store_commands.py); the
images that `predict` classifies, its `--cam` pictures and the Python API's export are local.
"""

import os
import pathlib
import subprocess
import sys

import pytest

from keras_googlenet import cli, storage

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "path, expected",
    [
        ("gs://bucket/runs/g1", "gs"),
        ("S3://bucket/x", "s3"),
        ("hdfs://namenode/runs", "hdfs"),
        ("http://example.com/w.h5", "http"),
        (pathlib.Path("gs://bucket/runs/g1"), "gs"),  # pathlib made it "gs:/bucket/runs/g1"
        ("runs/googlenet", None),
        ("/abs/best.keras", None),
        ("gs:/bucket", None),  # a string with one slash is a local folder named "gs:"... as the user typed it
        ("C:\\runs", None),
        (None, None),
        (3, None),
    ],
)
def test_scheme_is_found_only_in_a_uri(path, expected):
    assert storage.scheme(path) == expected


@pytest.mark.parametrize(
    "argv, flag, value, hint",
    [
        (["train", "--output-dir", "hdfs://nn/runs/g1"], "--output-dir", "hdfs://nn/runs/g1", "or a gs:// or s3:// URI: hdfs:// is not supported"),
        (["train", "--output-dir", "gs:///runs"], "--output-dir", "gs:///runs", "must name a bucket"),
        (["train", "--data", "az://container/photos"], "--data", "az://container/photos", "az:// is not supported"),
        (["export", "best.keras", "--output-dir", "hdfs://nn/exports"], "--output-dir", "hdfs://nn/exports", "hdfs:// is not supported"),
        (["export", "s3:///best.keras"], "CHECKPOINT", "s3:///best.keras", "must name a bucket"),
        (["predict", "best.keras", "photo.jpg", "gs://b/x.jpg"], "IMAGES", "gs://b/x.jpg", "gcloud storage cp -r"),
        (["predict", "best.keras", "photo.jpg", "--cam", "s3://b/cams"], "--cam", "s3://b/cams", "aws s3 cp --recursive"),
        (["verify", "best.keras", "exports", "--report", "ftp://h/r.json"], "--report", "ftp://h/r.json", "ftp:// is not supported"),
    ],
)
def test_a_uri_is_refused_in_one_line_naming_the_flag_and_nothing_is_written(argv, flag, value, hint, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"keras-googlenet {argv[0]}: error: ") and "\n" not in err, err
    assert f"Received: {flag}={value!r}" in err and hint in err, err
    assert list(tmp_path.iterdir()) == []  # never a local folder named "gs:"


def test_the_refusal_comes_before_tensorflow_is_imported(tmp_path):
    code = (
        "import sys\nfrom keras_googlenet import cli\nstatus = cli.main(sys.argv[1:])\n"
        "print(status, [m for m in ('tensorflow', 'keras') if m in sys.modules])"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code, "train", "--output-dir", "hdfs://nn/runs/g1"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.stdout.split() == ["2", "[]"], result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_python_api_refuses_a_uri_output_dir_before_writing(tmp_path, monkeypatch):
    from keras_googlenet.export import convert
    from keras_googlenet.training import run

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"`output_dir` must be a local path or a gs:// or s3:// URI: hdfs:// .*Received: output_dir='hdfs://b/r'$"):
        run.train(output_dir="hdfs://b/r")
    with pytest.raises(ValueError, match=r"`data` must be a local path or a gs:// or s3:// URI: hdfs:// .*Received: data='hdfs://b/photos'$"):
        run.train(data="hdfs://b/photos", output_dir="run")
    with pytest.raises(ValueError, match=r"`output_dir` is an Amazon S3 URI.*Received: output_dir='s3://b/exports'$"):
        convert.export(tmp_path / "best.keras", "s3://b/exports")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("uri, module, extra", [("gs://b/run", "gcsfs", "gcs"), ("s3://b/run", "s3fs", "s3")])
def test_a_bucket_without_its_extra_is_refused_naming_the_extra(uri, module, extra, tmp_path, monkeypatch, capsys):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else find_spec(name, *a))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--output-dir", uri]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f'needs {module}: pip install "keras-googlenet[{extra}]"' in err, err
    assert f"Received: --output-dir={uri!r}" in err
    assert list(tmp_path.iterdir()) == []


def test_a_bucket_uri_given_as_a_pathlib_path_is_refused_for_its_collapsed_slashes():
    with pytest.raises(ValueError, match=r"as a string: a pathlib path collapses gs:// to gs:/"):
        storage.check_path_or_uri(pathlib.Path("gs://b/run"), "output_dir")
