"""A full disk is one line naming the folder, with the sizes where known: no traceback, no crash, nothing half-written kept.

The real thing is a small tmpfs, which needs root to mount (the test skips
without it). The messages and the clean-up are also tested everywhere with a
disk that reports little free space, or an ENOSPC raised in the write.
"""

import collections
import errno
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from keras_googlenet.storage import disk
from keras_googlenet.training import checkpointing

import local_cluster
import tiny_googlenet

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
MB = 2**20
Usage = collections.namedtuple("Usage", "total used free")


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MB tmpfs at tmp_path/disk, unmounted after the test."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}): the injected tests cover the messages")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(folder, leave_mb):
    """Fills ``folder``'s disk up to ``leave_mb`` MB; returns the filler file."""
    filler = folder / "filler"
    with open(filler, "wb") as file:
        file.write(b"\0" * max(0, shutil.disk_usage(folder).free - leave_mb * MB))
    return filler


def test_a_write_that_cannot_fit_is_refused_before_it_starts(tmp_path, monkeypatch):
    (tmp_path / "best.keras").write_bytes(b"the last good one")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(100 * MB, 97 * MB, 3 * MB))
    written = []
    with pytest.raises(disk.DiskFull) as error:
        checkpointing.write_atomically(tmp_path / "best.keras", written.append, needed=40 * MB)
    assert error.value.errno == errno.ENOSPC and str(error.value) == (
        f"No room for best.keras in {tmp_path}: it needs about 48 MB and the disk has 3 MB free. "
        "Free some space, or write to another folder"
    )
    assert written == [] and sorted(p.name for p in tmp_path.iterdir()) == ["best.keras"]
    assert (tmp_path / "best.keras").read_bytes() == b"the last good one"


@pytest.mark.parametrize("raised", [
    OSError(errno.ENOSPC, "No space left on device"),
    RuntimeError("Can't decrement id ref count (file write failed: errno = 28, error message = 'No space left on device')"),
])
def test_a_disk_that_fills_during_a_write_is_one_line_and_keeps_the_last_good_file(raised, tmp_path):
    (tmp_path / "latest.weights.h5").write_bytes(b"the last good one")

    def write(temporary):
        pathlib.Path(temporary).write_bytes(b"half")
        raise raised

    with pytest.raises(disk.DiskFull, match=rf"The disk filled while writing latest.weights.h5 in {tmp_path} \(") as error:
        checkpointing.write_atomically(tmp_path / "latest.weights.h5", write)
    assert "\n" not in str(error.value) and error.value.__suppress_context__
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.weights.h5"]  # no temporary left
    assert (tmp_path / "latest.weights.h5").read_bytes() == b"the last good one"


def test_any_other_error_of_a_write_passes_unchanged(tmp_path):
    def write(temporary):
        raise PermissionError(errno.EACCES, "Permission denied")

    with pytest.raises(PermissionError):
        checkpointing.write_atomically(tmp_path / "x.txt", write)


def test_exports_that_cannot_fit_are_refused_before_any_is_written(tmp_path, monkeypatch):
    model = tiny_googlenet.tiny_googlenet(input_shape=(32, 32, 3), classes=10, aux_heads=False)
    model.save(tmp_path / "model.keras")
    from keras_googlenet.export import convert

    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(100 * MB, 99 * MB, 1 * MB))
    with pytest.raises(disk.DiskFull, match=rf"No room for the exports in {tmp_path / 'exports'}: it needs about "):
        convert.export(tmp_path / "model.keras", tmp_path / "exports", formats=["savedmodel", "onnx"])
    assert not list((tmp_path / "exports").iterdir())


@pytest.mark.slow
def test_train_on_a_full_disk_says_so_in_one_line_and_runs_once_there_is_room(small_disk, tmp_path):
    run = small_disk / "run"
    filler = fill(small_disk, leave_mb=4)  # less than a backup needs with its margin
    command = local_cluster.tiny_train_command(
        "--output-dir", str(run), "--epochs", "2", "--steps-per-epoch", "2", "--batch-size", "4", "--image-size", "32",
        "--no-aux-heads", "--validation-split", "none", "--verbose", "0",
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "tests" / "support")])}
    full = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert full.returncode == 2, full.stderr[-3000:]  # an OSError, no crash (139)
    errors = [line for line in full.stderr.strip().splitlines() if "failed call to cuInit" not in line]  # no GPU here
    assert errors == [
        f"keras-googlenet train: error: No room for next.weights.h5 in {run / 'backup'}: it needs about 8 MB and the "
        "disk has 4 MB free. Free some space, or write to another folder"
    ], full.stderr[-3000:]
    assert not [path for path in run.rglob("*") if path.name.startswith(checkpointing.TEMPORARY_PREFIX)]
    assert not (run / "backup" / checkpointing.LATEST_BACKUP).exists()

    filler.unlink()
    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [row.split(",")[0] for row in (run / "history.csv").read_text().splitlines()[1:]] == ["0", "1"]


def test_every_export_format_and_quantization_has_a_size_estimate():
    from keras_googlenet import defaults
    from keras_googlenet.export import convert

    model = tiny_googlenet.tiny_googlenet(input_shape=(32, 32, 3), classes=10, aux_heads=False)
    formats = [name for name in defaults.EXPORT_FORMATS]
    weights = disk.variables_size(model)
    needed = convert._bytes_needed(model, formats, list(defaults.QUANTIZATIONS), ("uint8", "float32"))
    assert weights < needed < 10 * weights
