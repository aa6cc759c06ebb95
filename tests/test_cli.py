"""The CLI's summary command, its start-up cost and its error handling."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

from keras_googlenet import cli, defaults

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
HEAVY_MODULES = ("keras", "tensorflow", "numpy", "jax", "torch")


def _python(code, *args, **env):
    """Runs ``code`` in a fresh interpreter on this checkout; returns the completed process."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **env}
    return subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_summary_prints_parameters_per_head_and_a_top5_for_the_bundled_photo(capsys):
    assert cli.main(["summary", "--input-size", "96"]) == 0
    out = capsys.readouterr().out
    counts = {part: int(number.replace(",", "")) for part, number in re.findall(r"^  (backbone|main|aux1|aux2|total)\s+([\d,]+)$", out, re.M)}
    assert set(counts) == {"backbone", "main", "aux1", "aux2", "total"}
    assert counts["backbone"] + counts["main"] + counts["aux1"] + counts["aux2"] == counts["total"]
    assert counts["main"] == 1024 * 1000 + 1000
    top5 = re.findall(r"^\s+\d\.\d{4}\s+(n\d{8})\s+\S", out, re.M)
    assert len(top5) == 5


@pytest.mark.parametrize(
    "argv, message",
    [
        (["summary", "--image", "/no/such/photo.jpg"], "image file does not exist. Received: --image='/no/such/photo.jpg'"),
        (["summary", "--input-size", "40"], "at least 79x79"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and err.startswith("keras-googlenet summary: error:")


def test_a_non_image_file_is_reported_by_name(tmp_path, capsys):
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    assert cli.main(["summary", "--input-size", "96", "--image", str(text)]) == 2
    assert f"not a readable image (UnidentifiedImageError). Received: --image='{text}'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["train", "--help"], ["export", "--help"], ["export", "m.keras", "--format", "coreml"], ["train", "--epochs", "x"]],
)
def test_help_and_argument_errors_import_no_heavy_module(argv):
    code = (
        "import sys\nfrom keras_googlenet import cli\ntry:\n    cli.main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        f"print([m for m in {HEAVY_MODULES!r} if m in sys.modules])"
    )
    result = _python(code, *argv)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stderr


def test_importing_the_package_loads_nothing_until_a_name_is_used():
    result = _python(f"import sys, keras_googlenet as kg\nprint([m for m in {HEAVY_MODULES!r} if m in sys.modules], 'GoogLeNet' in dir(kg))")
    assert result.stdout.split() == ["[]", "True"], result.stderr


def test_package_names_resolve_lazily_and_unknown_ones_raise_attribute_error():
    import keras_googlenet as kg
    from keras_googlenet.model import googlenet as model

    assert kg.GoogLeNet is model.GoogLeNet and kg.minimum_input_size("paper", aux_heads=True) == 79
    assert set(kg.__all__) <= set(dir(kg))
    with pytest.raises(AttributeError, match="has no attribute 'ResNet50'"):
        kg.ResNet50


@pytest.mark.slow
def test_a_command_prints_no_tensorflow_start_up_lines():
    result = _python("import sys\nfrom keras_googlenet import cli\nsys.exit(cli.main(sys.argv[1:]))", "summary", "--input-size", "40")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "keras-googlenet summary: error: The input must be at least 79x79 (the 4a and 4d maps must be at least 5x5 for "
        "the auxiliary heads; aux_heads=False lowers it to 31x31). Received: --input-size=(40, 40, 3)"
    ]


@pytest.mark.parametrize("debug_first", [True, False])
def test_debug_lets_the_traceback_through(debug_first):
    argv = ["--debug", "summary", "--image", "/no/such.jpg"] if debug_first else ["summary", "--image", "/no/such.jpg", "--debug"]
    with pytest.raises(ValueError, match="Received: image='/no/such.jpg'"):
        cli.main(argv)


@pytest.mark.parametrize(
    "error, status, message",
    [
        (PermissionError(13, "Permission denied", "runs/x"), 2, "[Errno 13] Permission denied: 'runs/x'"),
        (OSError("disk full"), 2, "disk full"),
        (FileNotFoundError("no file\nsecond line"), 2, "no file"),
        (RuntimeError("boom\nin graph"), 1, "RuntimeError: boom (run with --debug for the traceback)"),
        (KeyError("main"), 1, "KeyError: 'main' (run with --debug for the traceback)"),
    ],
)
def test_every_error_is_one_line_without_debug(monkeypatch, capsys, error, status, message):
    from keras_googlenet.inference import summary

    def fail(**kwargs):
        raise error

    monkeypatch.setattr(summary, "print_summary", fail)
    assert cli.main(["summary"]) == status
    assert capsys.readouterr().err == f"keras-googlenet summary: error: {message}\n"


def test_help_lists_the_choices_of_export(capsys):
    with pytest.raises(SystemExit):
        cli.main(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--format {savedmodel,tflite,onnx,kerashub,all}" in text
    assert "--quantize {fp32,fp16,dynamic,int8}" in text
    assert "--int8-io {uint8,int8,float32}" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["export", "m.keras", "--format", "coreml"], "argument --format: invalid choice: 'coreml' (choose from 'savedmodel', 'tflite', 'onnx', 'kerashub', 'all')"),
        (["export", "m.keras", "--quantize", "fp32", "int4"], "argument --quantize: invalid choice: 'int4'"),
        (["export", "m.keras", "--int8-io", "float16"], "argument --int8-io: invalid choice: 'float16'"),
    ],
)
def test_export_choices_are_checked_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["export", __file__, "--opset", "9"], "The --opset argument must be an int >= 13. Received: --opset=9"),
        (["export", "/no/best.keras"], "Received: CHECKPOINT='/no/best.keras'"),
        (["export", __file__, "--int8-io", "uint8", "uint8"], "distinct ones. Received: --int8-io=('uint8', 'uint8')"),
        (["predict", "/no/model.onnx", "x.jpg"], "Received: MODEL='/no/model.onnx'"),
        (["verify", "/no/best.keras", "/no/exports"], "Received: EXPORTS='/no/exports'"),
        (["train", "--epochs", "0"], "Received: --epochs=0"),
        (["evaluate", "/no/model.keras"], "Received: CHECKPOINT='/no/model.keras'"),
        (["convert-weights", "/no/googlenet.pth", "out.weights.h5"], "Received: SRC='/no/googlenet.pth'"),
    ],
)
def test_library_errors_name_the_flag_not_the_python_argument(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_every_python_name_in_a_message_becomes_its_flag():
    flags = {"formats": "--format", "quantize": "--quantize", "checkpoint": "CHECKPOINT"}
    message = "`formats` must be from ['onnx']. Received: formats=['x'], quantize=['y'], checkpoint='a/formats=1'"
    assert cli._name_flags(message, flags) == (
        "--format must be from ['onnx']. Received: --format=['x'], --quantize=['y'], CHECKPOINT='a/formats=1'"
    )


def test_the_six_photos_ship_inside_the_package():
    from keras_googlenet.data import images
    from keras_googlenet.inference import verify

    paths = images.sample_photos()
    assert [path.name for path in paths] == ["bird.png", "cat.png", "grace_hopper.png", "hot_dog.jpg", "owl.jpg", "parrot.jpg"]
    assert all(path.is_file() and REPO_ROOT / "keras_googlenet" in path.parents for path in paths)
    assert images.load_image(images.sample_photo("owl.jpg")).shape[-1] == 3
    assert sorted(pathlib.Path(verify.DEFAULT_IMAGES).glob("*.jpg")) == [path for path in paths if path.suffix == ".jpg"]


def test_no_code_reads_the_shared_folder_beside_the_clone():
    # A clone has no shared data folder beside it: the photos and class indexes ship in keras_googlenet/data.
    pattern = re.compile(r"""["']shared["']|\.\./shared""")
    offenders = [
        str(path.relative_to(REPO_ROOT)) for folder in ("keras_googlenet", "tests", "benchmarks", "examples")
        for path in (REPO_ROOT / folder).rglob("*.py") if pattern.search(path.read_text())
    ]
    assert offenders == []


def test_package_data_covers_every_data_file():
    import configparser
    import fnmatch

    config = configparser.ConfigParser()
    config.read(REPO_ROOT / "setup.cfg")
    declared = {package: [p.strip() for p in patterns.replace("\n", ",").split(",") if p.strip()]
                for package, patterns in config["options.package_data"].items()}
    data = REPO_ROOT / "keras_googlenet" / "assets"
    for path in (p for p in data.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        package = ".".join(path.parent.relative_to(REPO_ROOT).parts)
        assert any(fnmatch.fnmatch(path.name, pattern) for pattern in declared.get(package, ())), path
    assert config["options"]["packages"].strip() == "find_namespace:"


def test_the_readmes_output_folders_are_ignored_by_git():
    ignored = (REPO_ROOT / ".gitignore").read_text().splitlines()
    assert {"runs/", "exports/"} <= set(ignored)
    cam_folders = set(re.findall(r"--cam ([a-z_]+)", (REPO_ROOT / "docs" / "grad-cam.md").read_text()))
    assert cam_folders and {folder + "/" for folder in cam_folders} <= set(ignored), cam_folders  # `predict --cam cams`
    assert defaults.DEFAULT_EXPORT_DIR + "/" in ignored and defaults.DEFAULT_OUTPUT_DIR.split("/")[0] + "/" in ignored


@pytest.mark.parametrize(
    "argv, message",
    [
        (["export", "/no/best.keras"], "The checkpoint file does not exist. Received: CHECKPOINT='/no/best.keras'"),
        (["predict", "/no/googlenet.tflite", "x.jpg"], "The model file does not exist. Received: MODEL='/no/googlenet.tflite'"),
        (["evaluate", "/no/best.keras"], "The checkpoint file does not exist. Received: CHECKPOINT='/no/best.keras'"),
        (["verify", "/no/best.keras", "/no/exports"], "The export folder does not exist. Received: EXPORTS='/no/exports'"),
        (["predict", "m.keras", "x.jpg", "--labels", "/no/labels.txt"], "The model file does not exist. Received: MODEL='m.keras'"),
    ],
)
def test_a_missing_model_is_refused_before_tensorflow_loads(argv, message, tmp_path):
    code = (
        "import sys\nfrom keras_googlenet import cli\nstatus = cli.main(sys.argv[1:])\n"
        "print(status, [m for m in ('tensorflow', 'keras') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *argv], env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, cwd=tmp_path,
        capture_output=True, text=True, timeout=120,
    )
    assert result.stdout.split() == ["2", "[]"], result.stderr
    assert result.stderr.strip() == f"keras-googlenet {argv[0]}: error: {message}"
    assert list(tmp_path.iterdir()) == []


def test_a_keras_file_of_another_network_is_refused_naming_the_file_and_what_it_is(tmp_path, capsys):
    import keras

    from keras_googlenet.data import images

    inputs = keras.Input((32, 32, 3))
    other = keras.Model(inputs, keras.layers.Dense(5, activation="softmax", name="predictions")(keras.layers.GlobalAveragePooling2D()(inputs)), name="mobilenet_stand_in")
    other.save(tmp_path / "mobilenet.keras")
    for argv in (["export", str(tmp_path / "mobilenet.keras"), "--output-dir", str(tmp_path / "out")],
                 ["predict", str(tmp_path / "mobilenet.keras"), str(images.sample_photo("owl.jpg"))]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err == (
            f"keras-googlenet {argv[0]}: error: The checkpoint is not a GoogLeNet checkpoint: it holds a Keras model named "
            "'mobilenet_stand_in' with outputs ['predictions'], without GoogLeNet's layers; use one written by "
            f"`keras-googlenet train` or keras_googlenet.GoogLeNet. Received: {'CHECKPOINT' if argv[0] == 'export' else 'MODEL'}="
            f"'{tmp_path / 'mobilenet.keras'}'\n"
        ), err
    assert not (tmp_path / "out").exists()
