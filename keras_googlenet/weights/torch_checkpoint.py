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

Pickles can run arbitrary code, so the unpickler is restricted: it resolves
only the tensor-rebuild functions, the ``torch.*Storage`` types and
``collections.OrderedDict``, each to a harmless stand-in defined here, and
refuses every other global before anything is called.
"""

import collections
import os
import pickle
import struct
import zipfile

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


class _StorageType:
    """What the unpickler returns for ``torch.FloatStorage`` and the like: a dtype tag."""

    def __init__(self, name):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class _Storage:
    """A tensor storage whose bytes are read after the pickle (legacy) or on demand (zip)."""

    def __init__(self, key, storage_type, numel):
        self.key = key
        self.storage_type = storage_type
        self.numel = numel
        self.array = None  # a flat numpy array once read

    def fill(self, data):
        itemsize = self.storage_type.dtype.itemsize
        if len(data) != self.numel * itemsize:
            raise _CorruptError(
                f"storage {self.key!r} holds {len(data)} bytes, expected {self.numel} x {itemsize}"
            )
        self.array = np.frombuffer(data, dtype=self.storage_type.dtype)


class _TensorRef:
    """A tensor to materialise once its storage is read: ``_rebuild_tensor_v2``'s arguments."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def to_numpy(self):
        flat = self.storage.array
        size, stride = tuple(self.size), tuple(self.stride)
        last = self.offset + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else self.offset - 1
        if self.offset < 0 or min(stride, default=0) < 0 or last >= len(flat):
            raise _CorruptError(f"a tensor of size {size} reaches past its storage {self.storage.key!r}")
        array = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=size, strides=[s * flat.itemsize for s in stride], writeable=False
        )
        array = np.array(array)  # a contiguous copy, independent of the file's bytes
        if self.storage.storage_type.name == "BFloat16Storage":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array


class _CorruptError(Exception):
    """Raised inside the reader; `load_state_dict` turns it into one ValueError line."""


class _UnsafeGlobalError(Exception):
    pass


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    # torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
    # requires_grad, backward_hooks[, metadata]): only the first four matter here.
    if not isinstance(storage, _Storage) or not isinstance(storage_offset, int):
        raise _CorruptError("a tensor is rebuilt from something other than a storage")
    if not all(isinstance(n, int) for n in (*size, *stride)) or len(size) != len(stride):
        raise _CorruptError("a tensor has a malformed size or stride")
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks, *unused):
    # torch._utils._rebuild_parameter: an nn.Parameter is its tensor here.
    return data


_ALLOWED_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only `_ALLOWED_GLOBALS`; tensor storages come through persistent ids."""

    def __init__(self, file, storages):
        super().__init__(file)
        self.storages = storages  # key -> _Storage, shared by every tensor on that storage

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _UnsafeGlobalError(f"{module}.{name}") from None

    def persistent_load(self, pid):
        # torch's persistent id: ("storage", storage_type, key, location, numel),
        # plus view_metadata (None since torch 0.4) in the legacy format.
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise _CorruptError(f"unknown persistent id {pid!r:.80}")
        storage_type, key, numel = pid[1], str(pid[2]), pid[4]
        if not isinstance(storage_type, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise _CorruptError(f"malformed storage id {pid!r:.80}")
        if len(pid) == 6 and pid[5] is not None:
            # (view_key, offset, size): storage views, which torch dropped in 0.4 (2018).
            raise _CorruptError("storage views (torch < 0.4 checkpoints) are not supported")
        return self.storages.setdefault(key, _Storage(key, storage_type, numel))


def load_state_dict(path):
    """Reads a ``torch.save`` file of a state dict, without importing PyTorch.

    Args:
        path: the checkpoint (``.pth``, ``.pt``), zip or legacy format.

    Returns:
        A dict ``{name: numpy array}`` in the file's order.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a readable PyTorch state dict (truncated,
            corrupt, another format) or its pickle names a global other than
            the tensor and storage types (it is refused, never run).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"The PyTorch checkpoint does not exist. Received: path={path!r}")
    try:
        if zipfile.is_zipfile(path):
            state = _read_zip(path)
        else:
            state = _read_legacy(path)
        return _to_numpy_state_dict(state)
    except _UnsafeGlobalError as error:
        raise ValueError(
            f"Refusing to load the checkpoint: its pickle calls `{error}`, and only tensors and storages "
            f"are allowed (it may be malicious; nothing was run). Received: path={path!r}"
        ) from None
    except (_CorruptError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, struct.error,
            KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError, MemoryError) as error:
        reason = " ".join(str(error).split())[:160] or type(error).__name__
        raise ValueError(
            f"The file is not a readable PyTorch state dict (truncated or corrupt?): {reason}. "
            f"Received: path={path!r}"
        ) from None


def _read_zip(path):
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
        if len(pickles) != 1:
            raise _CorruptError("the zip archive has no <archive>/data.pkl record")
        prefix = pickles[0][: -len("data.pkl")]
        storages = {}
        with archive.open(pickles[0]) as file:
            state = _RestrictedUnpickler(file, storages).load()
        for key, storage in storages.items():
            storage.fill(archive.read(f"{prefix}data/{key}"))
    return state


def _read_legacy(path):
    with open(path, "rb") as file:
        header = [_RestrictedUnpickler(file, {}).load() for _ in range(3)]
        if header[0] != _LEGACY_MAGIC_NUMBER:
            raise _CorruptError("neither a zip archive nor a legacy torch.save file (bad magic number)")
        if header[1] != _LEGACY_PROTOCOL_VERSION:
            raise _CorruptError(f"unsupported legacy protocol version {header[1]!r}")
        if not isinstance(header[2], dict) or not header[2].get("little_endian", False):
            raise _CorruptError("only little-endian checkpoints are supported")
        storages = {}
        state = _RestrictedUnpickler(file, storages).load()
        keys = _RestrictedUnpickler(file, {}).load()
        if not isinstance(keys, list) or set(map(str, keys)) != set(storages):
            raise _CorruptError("the storage key list does not match the pickled tensors")
        for key in keys:
            storage = storages[str(key)]
            (numel,) = struct.unpack("<q", _read_exactly(file, 8))
            if numel != storage.numel:
                raise _CorruptError(f"storage {key!r} has {numel} elements, expected {storage.numel}")
            storage.fill(_read_exactly(file, numel * storage.storage_type.dtype.itemsize))
    return state


def _read_exactly(file, size):
    data = file.read(size)
    if len(data) != size:
        raise _CorruptError(f"the file ends {size - len(data)} bytes early")
    return data


def _to_numpy_state_dict(state):
    if not isinstance(state, dict):
        raise _CorruptError(f"the checkpoint holds a {type(state).__name__}, not a state dict")
    result = {}
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, _TensorRef):
            raise _CorruptError(f"entry {name!r:.60} is not a tensor")
        result[name] = value.to_numpy()
    return result
