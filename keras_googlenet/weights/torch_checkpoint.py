"""Reading PyTorch checkpoints (``torch.save`` files) without PyTorch.

`load_state_dict` returns a state dict as numpy arrays keyed by name. Both
formats that ``torch.save`` writes are read:

- the zip format (torch >= 1.6): ``<archive>/data.pkl`` holds the pickled
  object, each tensor storage is a raw record ``<archive>/data/<key>``;
- the legacy format (torch < 1.6, or ``_use_new_zipfile_serialization=False``),
  which torchvision's 2019 ``googlenet-1378be20.pth`` predates the zip format
  for: five consecutive pickles (magic number, protocol version, sys info, the
  object, the sorted storage keys), then each storage as a little-endian int64
  element count followed by its raw bytes.

The file is untrusted input (project issue 12):

- Pickles can run arbitrary code, so the unpickler is restricted: it resolves
  only the tensor-rebuild functions, the ``torch.*Storage`` types and
  ``collections.OrderedDict``, each to a stand-in defined here, and refuses
  every other global before anything is called.
- A pickle can also *modify* what it is handed (the BUILD opcode sets
  attributes or calls ``__setstate__``). Every stand-in is therefore a fresh
  object per lookup that refuses to change, so one file cannot alter how the
  next one is read.
- A file of a few hundred bytes can declare a tensor of billions of elements,
  and a deflated record can inflate a thousandfold. Names, shapes, strides and
  record sizes are checked against what a GoogLeNet holds (the bounds below)
  before any tensor data is read or allocated.
"""

import collections
import math
import os
import pickle
import re
import struct
import zipfile
import zlib

import numpy as np

# torch.serialization's MAGIC_NUMBER and PROTOCOL_VERSION of the legacy format.
_LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL_VERSION = 1001

# The storage types a state dict can hold, by their pickled name in `torch`.
# BFloat16 has no numpy dtype: it is read as uint16 and widened to float32.
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}

# What a GoogLeNet checkpoint can hold, checked before any data is read.
# torchvision's GoogLeNet with both aux heads has 364 tensors and 13,020,019
# elements in all; its largest tensor is aux1.fc1.weight, 1024 x 2048 =
# 2,097,152 elements (fc.weight is 1000 x 1024), the longest name 44 characters,
# and data.pkl is 52 KB (torch 2.13). The bounds leave room for more classes
# and wider heads; at worst the storages read and the tensors copied from them
# take 2 x 256 MiB (float64), where a crafted file could ask for gigabytes.
_MAX_TENSORS = 1024  # also the most storages
_MAX_DIMS = 8  # conv kernels have 4
_MAX_TENSOR_ELEMENTS = 2**24  # 16,777,216: 8x the largest tensor
_MAX_TOTAL_ELEMENTS = 2**25  # 33,554,432: 2.6x the network, in storages and in tensors
_MAX_PICKLE_BYTES = 2**20  # 20x GoogLeNet's data.pkl; a pickle's objects grow with its length
_MAX_NAME_LENGTH = 256
# torch names storages by a decimal counter (zip) or object id (legacy).
_STORAGE_KEY = re.compile(r"[0-9A-Za-z_]{1,64}")
# torch.save stores records uncompressed, and float weights barely deflate if
# a checkpoint is re-zipped; deflate reaches 1032:1 on zeros. Small records
# (zero-initialised biases) may compress well, so only large ones are checked.
_MAX_INFLATION = 100
_INFLATION_CHECKED_FROM = 2**20  # bytes


class _CorruptError(Exception):
    """Raised inside the reader; `load_state_dict` turns it into one ValueError line."""


class _UnsafePickleError(Exception):
    """What the pickle tried that a state dict never does, e.g. "calls `os.system`"."""


def _describe(value):
    """A short description of a value from the pickle, safe to format (no deep or huge repr)."""
    if isinstance(value, str):
        return repr(value[:60]) + ("..." if len(value) > 60 else "")
    return f"a {type(value).__name__}"


class _Frozen:
    """An object handed to the pickle: fixed once built, so a BUILD opcode cannot alter it."""

    __slots__ = ()

    def __init__(self, **fields):
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def _refuse(self, *unused):
        raise _UnsafePickleError(f"modifies {self._what()}")

    __setattr__ = __delattr__ = __setstate__ = _refuse


class _Global(_Frozen):
    """An allowed global (a function or OrderedDict), resolved to `function`."""

    __slots__ = ("name", "function")

    def __call__(self, *args):
        return self.function(*args)

    def _what(self):
        return f"`{self.name}`"


class _StorageType(_Frozen):
    """What the unpickler returns for ``torch.FloatStorage`` and the like: a dtype tag."""

    __slots__ = ("name", "dtype")

    def __init__(self, name):
        super().__init__(name=name, dtype=_STORAGE_DTYPES[name])

    def _what(self):
        return f"`torch.{self.name}`"


class _StateDict(collections.OrderedDict):
    """A fresh OrderedDict; BUILD passes it the Module's ``_metadata``, which is not needed here."""

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise _UnsafePickleError("modifies an OrderedDict with something other than its attributes")


class _Storage(_Frozen):
    """A tensor storage whose bytes are read after the pickle (legacy) or on demand (zip)."""

    __slots__ = ("key", "storage_type", "numel", "array")

    def __init__(self, key, storage_type, numel):
        super().__init__(key=key, storage_type=storage_type, numel=numel, array=None)

    @property
    def nbytes(self):
        return self.numel * self.storage_type.dtype.itemsize

    def fill(self, data):
        if len(data) != self.nbytes:
            raise _CorruptError(
                f"storage {self.key!r} holds {len(data)} bytes, expected "
                f"{self.numel} x {self.storage_type.dtype.itemsize}"
            )
        object.__setattr__(self, "array", np.frombuffer(data, dtype=self.storage_type.dtype))

    def _what(self):
        return f"storage {self.key!r}"


class _TensorRef(_Frozen):
    """A tensor to materialise once its storage is read; its geometry was checked when built."""

    __slots__ = ("storage", "offset", "size", "stride", "numel")

    def to_numpy(self):
        flat = self.storage.array
        array = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.size, strides=[s * flat.itemsize for s in self.stride],
            writeable=False,
        )
        array = np.array(array)  # a contiguous copy, independent of the file's bytes
        if self.storage.storage_type.name == "BFloat16Storage":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array

    def _what(self):
        return "a tensor"


def _rebuild_parameter(data, requires_grad, backward_hooks, *unused):
    # torch._utils._rebuild_parameter: an nn.Parameter is its tensor here.
    return data


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the allowed globals, to fresh frozen stand-ins; storages come through persistent ids."""

    def __init__(self, file):
        super().__init__(file)
        self.storages = {}  # key -> _Storage, shared by every tensor on that storage
        self.storage_elements = 0

    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        functions = {
            "torch._utils._rebuild_tensor_v2": self._rebuild_tensor,
            "torch._utils._rebuild_parameter": _rebuild_parameter,
            "collections.OrderedDict": _StateDict,
        }
        qualified = f"{module}.{name}"
        if qualified not in functions:
            raise _UnsafePickleError(f"calls `{qualified}`")
        return _Global(name=qualified, function=functions[qualified])

    def persistent_load(self, pid):
        # torch's persistent id: ("storage", storage_type, key, location, numel),
        # plus view_metadata (None since torch 0.4) in the legacy format.
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise _CorruptError(f"a persistent id is not a torch storage id: {_describe(pid)}")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not _STORAGE_KEY.fullmatch(key):
            raise _CorruptError(f"malformed storage id with key {_describe(key)}")
        if len(pid) == 6 and pid[5] is not None:
            # (view_key, offset, size): storage views, which torch dropped in 0.4 (2018).
            raise _CorruptError("storage views (torch < 0.4 checkpoints) are not supported")
        if key in self.storages:
            storage = self.storages[key]
            if storage.numel != numel or storage.storage_type.name != storage_type.name:
                raise _CorruptError(f"storage {key!r} is declared twice with different types or sizes")
            return storage
        if not isinstance(numel, int) or not 0 <= numel <= _MAX_TOTAL_ELEMENTS - self.storage_elements:
            raise _CorruptError(
                f"storage {key!r} declares {_describe_count(numel)} elements, more than the "
                f"{_MAX_TOTAL_ELEMENTS} a GoogLeNet checkpoint's storages may hold in all"
            )
        if len(self.storages) >= _MAX_TENSORS:
            raise _CorruptError(f"more than {_MAX_TENSORS} storages")
        self.storage_elements += numel
        self.storages[key] = _Storage(key, storage_type, numel)
        return self.storages[key]

    def _rebuild_tensor(self, storage, offset, size, stride, *unused):
        # torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
        # requires_grad, backward_hooks[, metadata]): only the first four matter here.
        if not isinstance(storage, _Storage):
            raise _CorruptError("a tensor is rebuilt from something other than a storage")
        if not (isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride) <= _MAX_DIMS):
            raise _CorruptError(f"a tensor on storage {storage.key!r} has a malformed size or stride")
        size, stride = _int_tuple(size, _MAX_TENSOR_ELEMENTS), _int_tuple(stride, _MAX_TOTAL_ELEMENTS)
        numel = math.prod(size) if size is not None else None
        if not isinstance(offset, int) or stride is None or numel is None or numel > _MAX_TENSOR_ELEMENTS:
            raise _CorruptError(
                f"a tensor on storage {storage.key!r} has a malformed or too large shape: at most "
                f"{_MAX_TENSOR_ELEMENTS} elements (GoogLeNet's largest tensor has 2,097,152), "
                f"each dimension and stride a non-negative int"
            )
        # Any strides are allowed (torch.save keeps a view's), as long as every
        # element lies inside the storage: the copy is then bounded by `numel`.
        end = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if numel else offset
        if not 0 <= offset <= end <= storage.numel:
            raise _CorruptError(f"a tensor of size {size} reaches past its storage {storage.key!r}")
        return _TensorRef(storage=storage, offset=offset, size=size, stride=stride, numel=numel)


def _int_tuple(values, bound):
    """`values` as a tuple of ints in [0, bound], or None."""
    if all(isinstance(n, int) and 0 <= n <= bound for n in values):
        return tuple(int(n) for n in values)
    return None


def _describe_count(value):
    return str(value) if isinstance(value, int) and abs(value) < 10**30 else _describe(value)


class _BoundedReader:
    """A file for the unpickler that refuses to hand one pickle more than `_MAX_PICKLE_BYTES`.

    The legacy format's pickles are not length-prefixed; without a bound, a
    pickle of millions of one-byte opcodes builds millions of objects. The C
    unpickler reads ahead through ``peek`` and then ``read``s only what it
    consumed, leaving the file at the next pickle; the budget counts the reads.
    """

    def __init__(self, file):
        self.file, self.left = file, _MAX_PICKLE_BYTES

    def _take(self, data):
        self.left -= len(data)
        if self.left < 0:
            raise _CorruptError(f"a pickle is longer than {_MAX_PICKLE_BYTES} bytes")
        return data

    def read(self, size=-1):
        return self._take(self.file.read(min(size, self.left + 1) if size >= 0 else self.left + 1))

    def peek(self, size=0):
        return self.file.peek(size)[: self.left + 1]

    def readline(self):
        return self._take(self.file.readline(self.left + 1))

    def readinto(self, buffer):
        data = self.read(memoryview(buffer).nbytes)
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)


def load_state_dict(path):
    """Reads a ``torch.save`` file of a state dict, without importing PyTorch.

    Args:
        path: the checkpoint (``.pth``, ``.pt``), zip or legacy format.

    Returns:
        A dict ``{name: numpy array}`` in the file's order.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a readable PyTorch state dict (truncated,
            corrupt, another format, larger than a GoogLeNet's) or its pickle
            names a global other than the tensor and storage types or modifies
            one (it is refused, never run). Always one line naming the file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"The PyTorch checkpoint does not exist. Received: path={path!r}")
    try:
        state = _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
        return {name: tensor.to_numpy() for name, tensor in state.items()}
    except _UnsafePickleError as error:
        raise ValueError(
            f"Refusing to load the checkpoint: its pickle {error}, which a PyTorch state dict never does "
            f"(the file may be malicious; nothing was run). Received: path={path!r}"
        ) from None
    # zipfile raises zlib.error, NotImplementedError (unknown compression) and
    # RuntimeError (encryption) besides BadZipFile; RecursionError and
    # MemoryError guard what the bounds above do not foresee.
    except (_CorruptError, pickle.UnpicklingError, zipfile.BadZipFile, zlib.error, EOFError, struct.error,
            OSError, KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError,
            NotImplementedError, RuntimeError, MemoryError) as error:
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise ValueError(
            f"The file is not a readable PyTorch state dict (truncated or corrupt?): {reason}. "
            f"Received: path={path!r}"
        ) from None


def _read_zip(path):
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
        if len(pickles) != 1:
            raise _CorruptError("the zip archive does not hold exactly one <archive>/data.pkl record")
        info = archive.getinfo(pickles[0])
        if info.file_size > _MAX_PICKLE_BYTES:
            raise _CorruptError(f"{info.filename} declares {info.file_size} bytes, more than {_MAX_PICKLE_BYTES}")
        with archive.open(info) as file:
            unpickler = _RestrictedUnpickler(file)
            state = _check_state_dict(unpickler.load())
        # Every record's declared size is checked before the first is inflated.
        prefix = pickles[0][: -len("data.pkl")]
        records = [(storage, _storage_record(archive, f"{prefix}data/{key}", storage))
                   for key, storage in unpickler.storages.items()]
        for storage, record in records:
            storage.fill(archive.read(record))
    return state


def _storage_record(archive, name, storage):
    """The zip entry of `storage`, once its sizes agree with the storage's."""
    info = archive.getinfo(name)
    itemsize = storage.storage_type.dtype.itemsize
    if info.file_size != storage.nbytes:
        raise _CorruptError(
            f"storage {storage.key!r} holds {info.file_size} bytes, expected {storage.numel} x {itemsize}"
        )
    # zipfile stops inflating at file_size, so with file_size bounded the
    # record cannot inflate further; the ratio catches a bomb within the bound.
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise _CorruptError(f"record {name!r} is stored with {info.compress_size} bytes for {info.file_size}")
    if info.file_size >= _INFLATION_CHECKED_FROM and info.file_size > _MAX_INFLATION * info.compress_size:
        raise _CorruptError(
            f"record {name!r} inflates {info.compress_size} bytes to {info.file_size}, "
            f"more than {_MAX_INFLATION}x (a zip bomb?)"
        )
    return info


def _read_legacy(path):
    with open(path, "rb") as file:
        header = [_RestrictedUnpickler(_BoundedReader(file)).load() for _ in range(3)]
        if header[0] != _LEGACY_MAGIC_NUMBER:
            raise _CorruptError("neither a zip archive nor a legacy torch.save file (bad magic number)")
        if header[1] != _LEGACY_PROTOCOL_VERSION:
            raise _CorruptError(f"unsupported legacy protocol version {_describe_count(header[1])}")
        if not isinstance(header[2], dict) or header[2].get("little_endian") is not True:
            raise _CorruptError("only little-endian checkpoints are supported")
        unpickler = _RestrictedUnpickler(_BoundedReader(file))
        state = _check_state_dict(unpickler.load())
        storages = unpickler.storages
        keys = _RestrictedUnpickler(_BoundedReader(file)).load()
        if not (isinstance(keys, list) and len(keys) == len(storages) and all(key in storages for key in keys)):
            raise _CorruptError("the storage key list does not match the pickled tensors")
        for key in keys:
            storage = storages[key]
            (numel,) = struct.unpack("<q", _read_exactly(file, 8))
            if numel != storage.numel:  # checked before reading: the pickled count was bounded
                raise _CorruptError(f"storage {key!r} has {numel} elements, expected {storage.numel}")
            storage.fill(_read_exactly(file, storage.nbytes))
    return state


def _read_exactly(file, size):
    data = file.read(size)
    if len(data) != size:
        raise _CorruptError(f"the file ends {size - len(data)} bytes early")
    return data


def _check_state_dict(state):
    """`state` once it is a dict of at most `_MAX_TENSORS` named tensors of bounded total size."""
    if not isinstance(state, dict):
        raise _CorruptError(f"the checkpoint holds {_describe(state)}, not a state dict")
    if len(state) > _MAX_TENSORS:
        raise _CorruptError(f"the checkpoint holds {len(state)} entries, more than {_MAX_TENSORS}")
    for name, value in state.items():
        if not (isinstance(name, str) and 0 < len(name) <= _MAX_NAME_LENGTH and name.isprintable()):
            raise _CorruptError(f"an entry's name is not a printable string of at most {_MAX_NAME_LENGTH} "
                                f"characters: {_describe(name)}")
        if not isinstance(value, _TensorRef):
            raise _CorruptError(f"entry {name!r} is not a tensor")
    total = sum(tensor.numel for tensor in state.values())
    if total > _MAX_TOTAL_ELEMENTS:
        raise _CorruptError(f"the tensors hold {total} elements, more than {_MAX_TOTAL_ELEMENTS}")
    return state
