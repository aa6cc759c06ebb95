"""The first hour from a pip install: the wheel, installed into a fresh venv, runs the README's predict line in an empty folder.

No network: the new venv takes the wheel with ``--no-deps`` and finds
TensorFlow and the rest in this venv's site-packages, through a ``.pth``
file, behind its own: the keras_googlenet imported is the wheel's, and
nothing of the clone is on its path.
"""

import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

from keras_googlenet.data import images

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def readme_line(prefix):
    """The README's command line that starts with ``prefix``, without its comment."""
    for line in (REPO_ROOT / "README.md").read_text().splitlines():
        if line.startswith(prefix):
            return line.split("  #", 1)[0].strip()
    raise AssertionError(f"no README line starts with {prefix!r}")


def build_wheel(folder):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(folder), str(REPO_ROOT)],
        capture_output=True, text=True, timeout=240,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = folder.glob("keras_googlenet-*.whl")
    return wheel


def fresh_venv(folder, wheel):
    """A venv at ``folder`` with the wheel installed and this venv's packages (TensorFlow, ...) behind it; returns its bin folder."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=120)
    bin_dir = folder / "bin"
    installed = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True, text=True, timeout=120,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    site = subprocess.run(
        [str(bin_dir / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    # A .pth line only adds the folder: this venv's own .pth files (the clone's editable install) do not run.
    (pathlib.Path(site) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return bin_dir


@pytest.mark.slow
def test_the_readme_predict_line_runs_from_a_wheel_installed_in_a_fresh_venv(digits_exports, tmp_path):
    wheel = build_wheel(tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    licences = [name for name in names if ".dist-info/" in name and name.rsplit("/", 1)[-1] == "LICENSE"]
    assert licences and "Apache License" in zipfile.ZipFile(wheel).read(licences[0]).decode()[:200]
    for name in ("photos/owl.jpg", "photos/NOTICE", "imagenet_class_index.json", "keras_imagenet_class_index.json"):
        assert f"keras_googlenet/assets/{name}" in names, name
    assert not any(name.startswith(("tests/", "benchmarks/")) for name in names)

    bin_dir = fresh_venv(tmp_path / "venv", wheel)
    user = tmp_path / "user"  # an empty folder: no clone, no photos, only what the README's lines wrote
    shutil.copytree(pathlib.Path(digits_exports["tflite_int8"]).parent, user / "exports")
    line = readme_line("keras-googlenet predict exports/googlenet_int8.tflite")
    command = shlex.split(line)
    ran = subprocess.run(
        [str(bin_dir / command[0]), *command[1:]], cwd=user, capture_output=True, text=True, timeout=300,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    shown = re.findall(r"^(\S+):$", ran.stdout, re.MULTILINE)
    assert [pathlib.Path(path).name for path in shown] == [path.name for path in images.sample_photos()]
    assert all(str(tmp_path / "venv") in path for path in shown), shown  # the photos of the installed package
    assert len(re.findall(r"^ +\d\.\d{4}  \S", ran.stdout, re.MULTILINE)) == 6 * 3  # --top-k 3
