"""`train`'s bad arguments, missing data folder and busy output folder are refused before TensorFlow.

The CLI runs in a fresh interpreter whose imports of TensorFlow, Keras,
h5py and NumPy fail loudly: an error path that loads them (seconds on a
loaded machine) exits 1 with that failure instead of the expected line.
"""

import hashlib
import os
import pathlib
import subprocess
import sys
import threading

import pytest

from keras_googlenet.training import output_lock, arguments as train_arguments
from keras_googlenet.data import sources

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
HEAVY_MODULES = ("tensorflow", "keras", "h5py", "numpy", "ray")

NO_HEAVY_IMPORTS = f"""
import sys


class RefuseHeavyImports:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {HEAVY_MODULES!r}:
            raise AssertionError(f"{{name}} was imported on the error path")
        return None


sys.meta_path.insert(0, RefuseHeavyImports())
from keras_googlenet import cli

sys.exit(cli.main(sys.argv[1:]))
"""


def _train(cwd, *argv):
    """``keras-googlenet train *argv`` in ``cwd``, where importing TensorFlow, Keras, h5py or NumPy fails."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("TF_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-c", NO_HEAVY_IMPORTS, "train", *argv], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=120,
    )


def _held_out(relative_path):
    return int(hashlib.sha1(relative_path.encode()).hexdigest(), 16) < 0.2 * 2**160


HELD_OUT_DOGS = [name for name in (f"{index}.jpg" for index in range(100)) if _held_out(f"dog/{name}")][:2]


@pytest.mark.parametrize(
    "classes, message",
    [
        ({"cat": ["a.jpg"]}, "The image folder has one class ('cat'): a classifier needs two or more"),
        ({"cat": ["a.jpg"], "dog": ["notes.txt"]}, "The class folder 'dog' holds no images (.jpg, .jpeg, .png, .gif, .bmp, .webp)"),
        ({}, "The image folder has no class subfolders"),
        ({"train/cat": ["a.jpg"], "train/dog": [], "val/cat": ["b.jpg"]}, "The class folder 'dog' holds no images"),
        # Both of dog's files fall in the 20% that a fixed hash of the path holds out (SHA-1 below 0.2 * 2**160).
        ({"cat": ["c.jpg"], "dog": HELD_OUT_DOGS}, "The class folder 'dog' has 2 image(s), and the 20% of the folder held out for validation takes them all: none is left to train on"),
    ],
)
def test_an_image_folder_that_cannot_train_a_classifier_is_refused_before_tensorflow(classes, message, tmp_path):
    data = tmp_path / "photos"
    data.mkdir()
    for name, files in classes.items():
        (data / name).mkdir(parents=True)
        for file in files:
            (data / name / file).write_bytes(b"not decoded: only the names are read")
    result = _train(tmp_path, "--data", "photos", "--output-dir", "X")
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr.startswith(f"keras-googlenet train: error: {message}") and result.stderr.endswith("Received: --data='photos'\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]  # no X/, no lock file


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--epochs", "-1"], "--epochs must be an int >= 1. Received: --epochs=-1"),
        (["--batch-size", "0"], "--batch-size must be an int >= 1. Received: --batch-size=0"),
        (["--image-size", "64"], "--image-size must be at least 79 for variant 'bn' with aux heads. Received: --image-size=64"),
        (["--image-size", "14", "--no-aux-heads"], "--image-size must be at least 15 for variant 'bn'. Received: --image-size=14"),
        (["--variant", "paper", "--image-size", "30", "--no-aux-heads"], "--image-size must be at least 31 for variant 'paper'. Received: --image-size=30"),
        (["--learning-rate", "0"], "--learning-rate must be a finite number > 0. Received: --learning-rate=0.0"),
        (["--learning-rate", "nan"], "--learning-rate must be a finite number > 0. Received: --learning-rate=nan"),
        (["--weight-decay=-1e-4"], "--weight-decay must be a finite number >= 0. Received: --weight-decay=-0.0001"),
        (["--warmup-epochs", "inf"], "--warmup-epochs must be a finite number >= 0. Received: --warmup-epochs=inf"),
        (["--label-smoothing", "1"], "--label-smoothing must be a finite number in [0, 1). Received: --label-smoothing=1.0"),
        (["--ema-momentum", "1"], "--ema-momentum must be a finite number in [0, 1). Received: --ema-momentum=1.0"),
        (["--min-crop-area", "0"], "--min-crop-area must be a finite number in (0, 1]. Received: --min-crop-area=0.0"),
        (["--steps-per-epoch", "0"], "--steps-per-epoch must be an int >= 1 or None. Received: --steps-per-epoch=0"),
        (["--devices", "0"], "--devices must be an int >= 1 or None. Received: --devices=0"),
        (["--data", "/nonexistent"], "The image folder does not exist. Received: --data='/nonexistent'"),
        (["--data", "./photos/flowers"], "The image folder does not exist. Received: --data='./photos/flowers'"),
        (["--data", "my photos"], "The image folder does not exist. Received: --data='my photos'"),
        (["--ray-workers", "0"], "--ray-workers must be an int >= 1. Received: --ray-workers=0"),
        (["--ray-address", "auto"], "--ray-address needs --ray-workers. Received: --ray-address='auto'"),
        (["--split", "val"], "--split must be one of ('train', 'validation'). Received: --split='val'"),
        (["--validation-split", "test"], "--validation-split must be one of ('train', 'validation'). Received: --validation-split='test'"),
    ],
)
def test_a_bad_value_is_one_line_before_tensorflow_and_creates_nothing(tmp_path, argv, message):
    result = _train(tmp_path, *argv, "--output-dir", "X")
    assert (result.returncode, result.stdout, result.stderr) == (2, "", f"keras-googlenet train: error: {message}\n")
    assert list(tmp_path.iterdir()) == []  # no X/, no lock file


def test_a_data_file_is_not_called_a_missing_folder(tmp_path):
    (tmp_path / "labels.txt").write_text("cat\ndog\n")
    result = _train(tmp_path, "--data", "labels.txt", "--output-dir", "X")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "keras-googlenet train: error: --data must be a folder with one subfolder of images per class, not a file. "
        "Received: --data='labels.txt'\n"
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["labels.txt"]


def test_an_output_dir_that_is_a_file_is_refused_before_tensorflow(tmp_path):
    (tmp_path / "run").write_text("")
    result = _train(tmp_path, "--output-dir", "run")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "keras-googlenet train: error: --output-dir must be a folder, not a file. Received: --output-dir='run'\n"


def test_a_busy_output_dir_is_refused_in_one_line_naming_the_pid_before_tensorflow(tmp_path, lock_holder):
    result = _train(tmp_path, "--output-dir", "run", "--epochs", "1")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"keras-googlenet train: error: Another training run (PID {lock_holder.pid}) is writing to run: wait for it "
        "to end, or train into another output_dir. Received: --output-dir='run'\n"
    )
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == ["train.lock"]


def test_checking_the_lock_creates_nothing_and_passes_a_killed_runs_lock_file(tmp_path):
    output_lock.check_output_dir_free(tmp_path / "new" / "run")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "train.lock").write_text("999999\n")  # left by a run killed with SIGKILL: no process holds it
    output_lock.check_output_dir_free(tmp_path)
    with output_lock.lock_output_dir(tmp_path):
        assert (tmp_path / "train.lock").read_text() == f"{os.getpid()}\n"
        with pytest.raises(ValueError, match=rf"^Another training run \(PID {os.getpid()}\) is writing to {tmp_path}:"):
            output_lock.check_output_dir_free(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_run_starting_during_a_check_waits_for_it_instead_of_refusing(tmp_path):
    import fcntl

    (tmp_path / "train.lock").write_text("")
    checking = os.open(tmp_path / "train.lock", os.O_RDONLY)
    fcntl.flock(checking, fcntl.LOCK_SH)  # what check_output_dir_free holds for a moment
    threading.Timer(0.05, os.close, [checking]).start()
    with output_lock.lock_output_dir(tmp_path):
        assert (tmp_path / "train.lock").read_text() == f"{os.getpid()}\n"


@pytest.mark.parametrize(
    "data, is_path",
    [
        ("digits", False),
        ("tf_flowers", False),
        ("imagenette/320px", False),
        ("imagenet2012_subset/1pct:5.0.0", False),
        ("huggingface:beans", False),
        ("/data/flowers", True),
        ("./flowers", True),
        ("../flowers", True),
        ("~/flowers", True),
        ("C:\\flowers", True),
        ("my flowers", True),
        ("flowers/", True),
        (pathlib.Path("tf_flowers"), True),
    ],
)
def test_data_is_a_path_unless_it_is_digits_or_has_the_form_of_a_tfds_name(data, is_path):
    assert sources.data_is_path(data) is is_path


def test_an_existing_folder_named_like_a_tfds_dataset_is_a_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tf_flowers").mkdir()
    assert sources.data_is_path("tf_flowers") is True


VALID = dict(
    data="digits", output_dir="runs/x", epochs=1, batch_size=2, steps_per_epoch=None, image_size=96, variant="bn",
    aux_heads=True, learning_rate=0.01, schedule="paper", warmup_epochs=1, weight_decay=0.0, label_smoothing=0.0,
    ema_momentum=0.99, mixed_precision=None, min_crop_area=0.5, strategy="auto", devices=None, seed=0, verbose="auto",
    split="train", validation_split="validation",
)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"epochs": True}, "`epochs` must be an int >= 1. Received: epochs=True"),
        ({"batch_size": 2.0}, "`batch_size` must be an int >= 1. Received: batch_size=2.0"),
        ({"seed": None}, "`seed` must be an int. Received: seed=None"),
        ({"backup_every": 0}, "`backup_every` must be an int >= 1 or None. Received: backup_every=0"),
        ({"backup_every": 2.5}, "`backup_every` must be an int >= 1 or None. Received: backup_every=2.5"),
        ({"schedule": "linear"}, "`schedule` must be one of ('paper', 'cosine', 'constant'). Received: schedule='linear'"),
        ({"variant": "v3"}, "`variant` must be one of ['bn', 'paper']. Received: variant='v3'"),
        ({"mixed_precision": "float16"}, "`mixed_precision` must be one of (None, 'mixed_float16', 'mixed_bfloat16')."),
        ({"verbose": True}, "`verbose` must be one of ('auto', 0, 1, 2). Received: verbose=True"),
        ({"strategy": "tpu"}, "`strategy` must be one of ('auto', 'default', 'mirrored', 'multi_worker') or a"),
        ({"learning_rate": "0.1"}, "`learning_rate` must be a finite number > 0. Received: learning_rate='0.1'"),
        ({"data": 3}, "`data` must be 'digits', a folder path or a tfds name. Received: data=3"),
        ({"output_dir": None}, "`output_dir` must be a folder path. Received: output_dir=None"),
        ({"validation_split": "val"}, "`validation_split` must be one of ('train', 'validation'). Received: validation_split='val'"),
    ],
)
def test_python_values_of_the_wrong_kind_are_refused_by_name(bad, message):
    with pytest.raises(ValueError) as error:
        train_arguments.check_train_arguments(**{**VALID, **bad})
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_valid_defaults_pass_and_create_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train_arguments.check_train_arguments(**VALID)
    assert list(tmp_path.iterdir()) == []


def test_the_argument_checks_import_no_heavy_module():
    code = "import sys\nimport keras_googlenet.training.arguments\nprint(sorted(m for m in sys.modules if m.split('.')[0] in {!r}))"
    result = subprocess.run(
        [sys.executable, "-c", code.format(HEAVY_MODULES)], env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True, text=True, timeout=120,
    )
    assert result.stdout.strip() == "[]", result.stderr


def test_python_callers_of_train_get_the_same_checks_before_the_plan(tmp_path):
    from keras_googlenet.training import run as training

    lines = []
    with pytest.raises(FileNotFoundError, match=r"^The image folder does not exist\. Received: data='/nonexistent'$"):
        training.train("/nonexistent", output_dir=tmp_path / "run", print_fn=lines.append)
    with pytest.raises(ValueError, match=r"^`label_smoothing` must be a finite number in \[0, 1\)\. Received: label_smoothing=1\.5$"):
        training.train(output_dir=tmp_path / "run", label_smoothing=1.5, print_fn=lines.append)
    assert lines == [] and list(tmp_path.iterdir()) == []


def test_in_a_tf_config_cluster_the_lock_is_left_to_the_chief(tmp_path, monkeypatch):
    # Local workers share the chief's output_dir, which the chief locks: the
    # other workers must not be refused by it.
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with output_lock.lock_output_dir(tmp_path):
        with pytest.raises(ValueError, match="Another training run"):
            train_arguments.check_train_arguments(**{**VALID, "output_dir": tmp_path})
        monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 1}}')
        train_arguments.check_train_arguments(**{**VALID, "output_dir": tmp_path})


def test_a_tfds_split_is_left_to_tfds(tmp_path, monkeypatch):
    # tfds datasets have their own splits and slices: only tfds can tell them.
    monkeypatch.chdir(tmp_path)
    train_arguments.check_train_arguments(**{**VALID, "data": "tf_flowers", "split": "train[:80%]", "validation_split": "train[80%:]"})
