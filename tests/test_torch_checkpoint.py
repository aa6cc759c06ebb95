"""The torch-free reader of torch.save files: both formats, no torch at run time, refusals."""

import collections
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from conftest import needs_torch
from keras_googlenet.torch_checkpoint import load_state_dict

FORMATS = {"zip": True, "legacy": False}  # torch.save's _use_new_zipfile_serialization


def tricky_state_dict():
    """Tensors that exercise the reader: views with offsets and strides, shared storage, dtypes."""
    import torch

    generator = torch.Generator().manual_seed(0)
    base = torch.randn(4, 6, generator=generator)
    state = collections.OrderedDict(
        kernel=torch.randn(8, 3, 7, 7, generator=generator),
        transposed=base.t(),  # non-contiguous strides
        window=base[1:3, 2:],  # a storage offset, on the same storage as `transposed`
        count=torch.tensor(12345678901, dtype=torch.int64),  # num_batches_tracked is a 0-d int64
        half=torch.randn(5, generator=generator).half(),
        empty=torch.zeros(0, 3),
    )
    state._metadata = {"": {"version": 1}}  # as Module.state_dict() sets
    return state


@pytest.fixture(scope="module", params=sorted(FORMATS))
def saved(request, tmp_path_factory):
    torch = pytest.importorskip("torch")
    state = tricky_state_dict()
    path = tmp_path_factory.mktemp(request.param) / "state.pth"
    torch.save(state, path, _use_new_zipfile_serialization=FORMATS[request.param])
    return path, {key: value.numpy() for key, value in state.items()}


@needs_torch
def test_reads_every_tensor_of_a_torch_save_file_exactly(saved):
    path, expected = saved
    loaded = load_state_dict(path)
    assert list(loaded) == list(expected)
    for key, value in expected.items():
        assert loaded[key].dtype == value.dtype and loaded[key].shape == value.shape, key
        np.testing.assert_array_equal(loaded[key], value, err_msg=key)


@needs_torch
def test_the_fixture_really_writes_both_torch_save_formats(saved):
    path, _ = saved
    is_zip = zipfile.is_zipfile(path)
    assert is_zip == (path.parent.name.startswith("zip"))


@needs_torch
@pytest.mark.slow
def test_reader_needs_no_torch(tmp_path):
    torch = pytest.importorskip("torch")
    paths = []
    for name, zipped in FORMATS.items():
        paths.append(str(tmp_path / f"{name}.pth"))
        torch.save({"w": torch.arange(6.0).reshape(2, 3)}, paths[-1], _use_new_zipfile_serialization=zipped)
    script = (
        "import sys\n"
        "from keras_googlenet.torch_checkpoint import load_state_dict\n"
        f"sums = [float(load_state_dict(p)['w'].sum()) for p in {paths!r}]\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print(sums)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[15.0, 15.0]"


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def malicious_files(folder):
    """A payload where torch puts its pickle: in a zip archive, and as a legacy file's object pickle."""
    marker = folder / "pwned"
    payload = pickle.dumps({"conv1.conv.weight": _Exploit(marker)}, protocol=2)
    zipped = folder / "zip.pth"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
    legacy = folder / "legacy.pth"
    header = b"".join(pickle.dumps(x, protocol=2) for x in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    legacy.write_bytes(header + payload)
    return marker, [zipped, legacy]


def test_a_malicious_pickle_is_refused_without_running(tmp_path):
    marker, paths = malicious_files(tmp_path)
    for path in paths:
        with pytest.raises(ValueError, match=r"calls `(posix|os|nt)\.system`.* nothing was run\)\. Received: path="):
            load_state_dict(path)
    assert not marker.exists()


def test_a_plain_pickle_of_an_arbitrary_object_is_refused(tmp_path):
    path = tmp_path / "object.pth"
    path.write_bytes(pickle.dumps(collections.Counter(a=1), protocol=2))
    with pytest.raises(ValueError, match=r"calls `collections\.Counter`"):
        load_state_dict(path)


@needs_torch
@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_a_truncated_file_gives_one_clear_line(saved, tmp_path, keep):
    path, _ = saved
    data = path.read_bytes()
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError) as error:
        load_state_dict(truncated)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("The file is not a readable PyTorch state dict")
    assert message.endswith(f"Received: path={str(truncated)!r}")


@needs_torch
def test_a_corrupted_storage_size_is_caught(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "state.pth"
    torch.save({"w": torch.ones(4)}, path)
    corrupt = tmp_path / "corrupt.pth"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(corrupt, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            target.writestr(item, data[:8] if item.filename.endswith("/data/0") else data)
    with pytest.raises(ValueError, match=r"storage '0' holds 8 bytes, expected 4 x 4\. Received: path="):
        load_state_dict(corrupt)


def test_a_file_of_another_kind_gives_one_clear_line(tmp_path):
    path = tmp_path / "photo.pth"
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    with pytest.raises(ValueError, match=r"^The file is not a readable PyTorch state dict .*Received: path='.*photo\.pth'$"):
        load_state_dict(path)


def test_a_missing_file_names_the_path():
    with pytest.raises(FileNotFoundError, match=r"Received: path='/nowhere/googlenet\.pth'"):
        load_state_dict("/nowhere/googlenet.pth")
