"""The torch-free reader of torch.save files: both formats, no torch at run time, refusals."""

import collections
import os
import pickle
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest

from markers import needs_torch
from keras_googlenet.weights.torch_checkpoint import load_state_dict

pytestmark = pytest.mark.after_alone  # torch in the main process: after Ray's cluster test (conftest)

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
        "from keras_googlenet.weights.torch_checkpoint import load_state_dict\n"
        f"sums = [float(load_state_dict(p)['w'].sum()) for p in {paths!r}]\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print(sums)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
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


# --- Crafted files (issue 12): pickles written opcode by opcode, zips header by header --------------
# Opcodes from CPython's Lib/pickletools.py; torch.save's layout as pickletools shows it.

PROTO2, STOP, MARK, TUPLE, TUPLE2 = b"\x80\x02", b".", b"(", b"t", b"\x86"
NONE, NEWFALSE, EMPTY_DICT, SETITEM, POP = b"N", b"\x89", b"}", b"s", b"0"
REDUCE, BUILD, BINPERSID = b"R", b"b", b"Q"
LEGACY_MAGIC, LEGACY_PROTOCOL = 0x1950A86A20F9469CFC6C, 1001  # torch/serialization.py


def op_int(n):  # LONG1: a length byte, then little-endian two's complement
    data = n.to_bytes(n.bit_length() // 8 + 1, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def op_str(text):  # BINUNICODE
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def op_global(module, name):  # GLOBAL
    return f"c{module}\n{name}\n".encode()


def op_tuple(*items):
    return MARK + b"".join(items) + TUPLE


def op_storage(numel, key="0", legacy=False):
    """A storage through torch's persistent id; the legacy format adds view_metadata=None."""
    fields = [op_str("storage"), op_global("torch", "FloatStorage"), op_str(key), op_str("cpu"), op_int(numel)]
    return op_tuple(*fields, *([NONE] if legacy else [])) + BINPERSID


def op_tensor(size, stride, numel, offset=0, key="0", legacy=False):
    """torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)."""
    arguments = op_tuple(
        op_storage(numel, key, legacy), op_int(offset), op_tuple(*map(op_int, size)),
        op_tuple(*map(op_int, stride)), NEWFALSE, EMPTY_DICT,
    )
    return op_global("torch._utils", "_rebuild_tensor_v2") + arguments + REDUCE


def state_pickle(*entries):
    """A pickled dict of (name, tensor opcodes) entries."""
    return PROTO2 + EMPTY_DICT + b"".join(op_str(name) + value + SETITEM for name, value in entries) + STOP


def stored(data):
    return zipfile.ZIP_STORED, data, zlib.crc32(data), len(data)


def deflated_zeros(mebibytes):
    """A deflated record of that many MiB of zeros, about 1 KB per MiB, made without deflating them all."""
    zeros = bytes(2**20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate, as zip records hold
    # A full flush empties the window, so every further MiB deflates to the same block.
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(mebibytes):
        crc = zlib.crc32(zeros, crc)
    return zipfile.ZIP_DEFLATED, block * mebibytes + compressor.flush(), crc, mebibytes * 2**20


def write_zip(path, records):
    """A zip of {name: (method, data, crc, uncompressed size)}, with the sizes as given (APPNOTE 4.3.7-16)."""
    body, central = bytearray(), bytearray()
    for name, (method, data, crc, size) in records.items():
        encoded = name.encode()
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(data),
                               size, len(encoded), 0, 0, 0, 0, 0, len(body)) + encoded
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), size,
                            len(encoded), 0) + encoded + data
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(records), len(records), len(central), len(body), 0)
    path.write_bytes(bytes(body + central + end))
    return path


def zip_checkpoint(path, data_pkl, storages=None):
    """torch.save's zip layout: archive/data.pkl and a record archive/data/<key> per storage."""
    storages = {"0": stored(b"")} if storages is None else storages
    records = {"archive/data.pkl": stored(data_pkl)}
    records.update({f"archive/data/{key}": record for key, record in storages.items()})
    return write_zip(path, records)


def legacy_checkpoint(path, data_pkl, storages=(("0", 0, b""),)):
    """torch.save's legacy layout: magic, protocol, sys info, object, keys, then (int64 count, bytes) each."""
    header = [LEGACY_MAGIC, LEGACY_PROTOCOL, {"protocol_version": LEGACY_PROTOCOL, "little_endian": True}]
    keys = pickle.dumps([key for key, _, _ in storages], protocol=2)
    data = b"".join(struct.pack("<q", numel) + raw for _, numel, raw in storages)
    path.write_bytes(b"".join(pickle.dumps(x, protocol=2) for x in header) + data_pkl + keys + data)
    return path


def crafted(folder, form, data_pkl, numel=0, raw=b""):
    """`data_pkl` with one storage '0' of `numel` float32 elements, in the zip or legacy format."""
    if form == "zip":
        return zip_checkpoint(folder / "crafted.pth", data_pkl, {"0": stored(raw)})
    return legacy_checkpoint(folder / "crafted.pth", data_pkl, [("0", numel, raw)])


def assert_one_line_naming(error, path, start="The file is not a readable PyTorch state dict"):
    message = str(error.value)
    assert "\n" not in message and message.startswith(start), message
    assert message.endswith(f"Received: path={str(path)!r}"), message


@pytest.mark.parametrize("form", ["zip", "legacy"])
def test_a_crafted_checkpoint_with_sane_numbers_loads_exactly(tmp_path, form):
    # The control for the refusals below: the crafting itself is right.
    raw = struct.pack("<6f", 0.5, -1.0, 2.0, 3.25, -4.5, 6.0)
    data_pkl = state_pickle(("fc.weight", op_tensor((2, 3), (1, 2), 6, legacy=form == "legacy")))
    loaded = load_state_dict(crafted(tmp_path, form, data_pkl, 6, raw))
    assert list(loaded) == ["fc.weight"] and loaded["fc.weight"].dtype == np.float32
    np.testing.assert_array_equal(loaded["fc.weight"], [[0.5, 2.0, -4.5], [-1.0, 3.25, 6.0]])


def modifying_pickles():
    """Pickles that BUILD on an allowed object to change it for later loads, then hold {} (issue 12)."""
    rename = EMPTY_DICT + op_str("name") + op_str("BFloat16Storage") + SETITEM
    defaults = EMPTY_DICT + op_str("__defaults__") + op_tuple(op_int(0)) + SETITEM
    grow = EMPTY_DICT + op_str("numel") + op_int(2**40) + SETITEM
    payloads = {
        "storage type, dict state": op_global("torch", "FloatStorage") + rename + BUILD,
        "storage type, slot state": op_global("torch", "FloatStorage") + NONE + rename + TUPLE2 + BUILD,
        "rebuild function": op_global("torch._utils", "_rebuild_tensor_v2") + NONE + defaults + TUPLE2 + BUILD,
        "storage": op_storage(1) + NONE + grow + TUPLE2 + BUILD,
    }
    return {name: PROTO2 + payload + POP + EMPTY_DICT + STOP for name, payload in payloads.items()}


@needs_torch
@pytest.mark.parametrize("form", ["zip", "legacy"])
@pytest.mark.parametrize("target", sorted(modifying_pickles()))
def test_a_pickle_that_modifies_an_allowed_global_is_refused_and_later_loads_stay_exact(tmp_path, form, target):
    torch = pytest.importorskip("torch")
    path = crafted(tmp_path, form, modifying_pickles()[target])
    with pytest.raises(ValueError, match=r"its pickle modifies .*nothing was run\)") as error:
        load_state_dict(path)
    assert_one_line_naming(error, path, start="Refusing to load the checkpoint")
    legitimate = tmp_path / "legitimate.pth"
    torch.save({"w": torch.tensor([1.5, -2.25, 3.0])}, legitimate, _use_new_zipfile_serialization=form == "zip")
    loaded = load_state_dict(legitimate)["w"]
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, [1.5, -2.25, 3.0])  # it read 9.18e-41 after a rename to BFloat16


def refuse_quickly(path, match):
    """Loads `path`, expecting a one-line refusal within a second or two and a few MB."""
    tracemalloc.start()  # traces numpy's buffers and zipfile's inflated bytes too
    start = time.perf_counter()
    try:
        with pytest.raises(ValueError, match=match) as error:
            load_state_dict(path)
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert_one_line_naming(error, path)
    assert seconds < 2, f"took {seconds:.1f} s"  # it was 102 s for a 2 GB record; < 0.1 s here
    assert peak < 8 * 2**20, f"allocated {peak / 2**20:.0f} MiB"


@pytest.mark.parametrize("form", ["zip", "legacy"])
@pytest.mark.parametrize("size, stride", [((2**31,), (0,)), ((2**16, 2**16), (0, 0))])
def test_a_huge_tensor_over_a_tiny_storage_is_refused_before_allocating(tmp_path, form, size, stride):
    # 410 bytes declaring 2^31 or 2^32 float32s with stride 0 made the reader allocate 8-16 GiB.
    data_pkl = state_pickle(("fc.weight", op_tensor(size, stride, 1, legacy=form == "legacy")))
    path = crafted(tmp_path, form, data_pkl, 1, struct.pack("<f", 1.5))
    refuse_quickly(path, r"has a malformed or too large shape: at most 16777216 elements")


@pytest.mark.parametrize("form", ["zip", "legacy"])
def test_a_storage_larger_than_a_googlenet_is_refused_before_reading_it(tmp_path, form):
    # 2^28 float32s (1 GiB) declared; the legacy file then claims as much and ends.
    data_pkl = state_pickle(("fc.weight", op_tensor((2**14,), (1,), 2**28, legacy=form == "legacy")))
    path = crafted(tmp_path, form, data_pkl, 2**28, bytes(64))
    refuse_quickly(path, r"storage '0' declares 268435456 elements, more than the 33554432")


@pytest.mark.parametrize("numel, match", [
    (4, r"storage '0' holds 67108864 bytes, expected 4 x 4"),  # the record's size is not the storage's
    (2**24, r"inflates \d+ bytes to 67108864, more than 100x"),  # sizes agree, but 1000:1
])
def test_a_zip_bomb_storage_record_is_refused_before_inflating(tmp_path, numel, match):
    data_pkl = state_pickle(("fc.weight", op_tensor((4,), (1,), numel)))
    path = zip_checkpoint(tmp_path / "bomb.pth", data_pkl, {"0": deflated_zeros(64)})  # 64 MiB in 66 KB
    refuse_quickly(path, match)


def malformed_files():
    """name -> (the file's bytes or a writer of it, a regular expression for the reason given)."""
    tensor = op_tensor((2,), (1,), 2)
    many = [(f"t{i}", op_tensor((1,), (1,), 1, key=str(i))) for i in range(1025)]
    header = (LEGACY_MAGIC, LEGACY_PROTOCOL, {"little_endian": True})
    legacy_header = b"".join(pickle.dumps(x, protocol=2) for x in header)
    return {
        "empty": (b"", "Ran out of input"),
        "three bytes": (b"PK\x03", "pickle data was truncated"),
        "a zip without data.pkl": (lambda p: write_zip(p, {"archive/other": stored(b"x")}),
                                   "exactly one <archive>/data.pkl"),
        "a corrupt deflate record": (lambda p: zip_checkpoint(p, state_pickle(("w", tensor)), {
            "0": (zipfile.ZIP_DEFLATED, b"\xff" * 8, 0, 8)}), "Error -3"),
        "an unknown compression method": (lambda p: zip_checkpoint(p, state_pickle(("w", tensor)), {
            "0": (99, bytes(8), 0, 8)}), "compression method is not supported"),
        "a data.pkl over 1 MiB": (lambda p: zip_checkpoint(p, PROTO2 + b"N0" * 2**19 + EMPTY_DICT + STOP),
                                  "declares 1048580 bytes, more than 1048576"),
        "a legacy pickle over 1 MiB": (legacy_header + PROTO2 + b"N0" * 2**19 + EMPTY_DICT + STOP,
                                       "a pickle is longer than 1048576 bytes"),
        "a legacy file with another magic number": (pickle.dumps(12345, protocol=2) * 3, "bad magic number"),
        "a big-endian legacy file": (b"".join(pickle.dumps(x, protocol=2) for x in (
            LEGACY_MAGIC, LEGACY_PROTOCOL, {"little_endian": False})), "only little-endian"),
        "a legacy storage that ends early": (lambda p: legacy_checkpoint(
            p, state_pickle(("w", op_tensor((2,), (1,), 2, legacy=True))), [("0", 2, b"\0" * 5)]), "3 bytes early"),
        "a list, not a dict": (lambda p: zip_checkpoint(p, pickle.dumps([1.0], protocol=2)), "holds a list"),
        "an entry that is not a tensor": (lambda p: zip_checkpoint(p, pickle.dumps({"w": 1.0}, protocol=2)),
                                          "entry 'w' is not a tensor"),
        "a name with a newline": (lambda p: zip_checkpoint(p, state_pickle(("fc\nweight", tensor))), "printable"),
        "a name of 300 characters": (lambda p: zip_checkpoint(p, state_pickle(("w" * 300, tensor))), "printable"),
        "a tensor past its storage": (lambda p: zip_checkpoint(p, state_pickle(
            ("w", op_tensor((4,), (1,), 3)))), r"reaches past its storage"),
        "a negative stride": (lambda p: zip_checkpoint(p, state_pickle(
            ("w", op_tensor((2,), (-1,), 2, offset=1)))), "each dimension and stride a non-negative int"),
        "a storage key that is a path": (lambda p: zip_checkpoint(p, state_pickle(
            ("w", op_tensor((2,), (1,), 2, key="../0")))), "malformed storage id with key '../0'"),
        "1025 tensors": (lambda p: zip_checkpoint(p, state_pickle(*many)), "more than 1024 storages"),
    }


@pytest.mark.parametrize("case", sorted(malformed_files()))
def test_every_malformed_file_gives_one_line_naming_it(tmp_path, case):
    content, reason = malformed_files()[case]
    path = tmp_path / "model.pth"
    if callable(content):
        content(path)
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=reason) as error:
        load_state_dict(path)
    assert_one_line_naming(error, path)
