"""TFLite model metadata: what MediaPipe, the TFLite Task Library and Android Studio read.

A `.tflite` file is a TFLite flatbuffer whose ``Model.metadata`` list may name
a buffer ``"TFLITE_METADATA"``; that buffer holds a second flatbuffer, a
``ModelMetadata`` of the TFLite Support schema
(tensorflow/tflite-support, ``tensorflow_lite_support/metadata/metadata_schema.fbs``,
file identifier ``"M001"``). Associated files such as ``labels.txt`` travel as
an uncompressed zip archive appended to the flatbuffer.

The part of the schema an image classifier needs is written here as data
(`_SCHEMA`) and walked by a small generic writer and reader, so neither
tflite-support nor mediapipe is needed at run time.
"""

import dataclasses
import io
import pathlib
import zipfile

import flatbuffers
import numpy as np
from flatbuffers import number_types
from flatbuffers.table import Table

METADATA_NAME = "TFLITE_METADATA"  # the Model.metadata entry MediaPipe looks up
FILE_IDENTIFIER = b"M001"
TFLITE_FILE_IDENTIFIER = b"TFL3"
# Every field written below exists since schema 1.0.0 (tflite-support
# metadata/cc/metadata_version.cc lists what later versions added).
MIN_PARSER_VERSION = "1.0.0"
LABELS_FILE = "labels.txt"
# keras_googlenet's own record (`model_info.ModelInfo` as JSON, with
# ``raw_pixels``), zipped beside the labels; other readers ignore it.
MODEL_INFO_FILE = "keras_googlenet.json"

# Enum values, from metadata_schema.fbs.
COLOR_SPACE_RGB = 1
TENSOR_AXIS_LABELS = 2

# The tables used, each field in schema order: a field's position is its
# vtable slot, and a union takes two slots (its type byte, then the value).
# A type is "string", "byte", "uint", "[float]", "[string]", a table name, a
# [table name] vector, or ("union", {member table: type code}).
_SCHEMA = {
    "ModelMetadata": [
        ("name", "string"),
        ("description", "string"),
        ("version", "string"),
        ("subgraph_metadata", ["SubGraphMetadata"]),
        ("author", "string"),
        ("license", "string"),
        ("associated_files", ["AssociatedFile"]),
        ("min_parser_version", "string"),
    ],
    "SubGraphMetadata": [
        ("name", "string"),
        ("description", "string"),
        ("input_tensor_metadata", ["TensorMetadata"]),
        ("output_tensor_metadata", ["TensorMetadata"]),
    ],
    "TensorMetadata": [
        ("name", "string"),
        ("description", "string"),
        ("dimension_names", "[string]"),
        ("content", "Content"),
        ("process_units", ["ProcessUnit"]),
        ("stats", "Stats"),
        ("associated_files", ["AssociatedFile"]),
    ],
    "Content": [
        ("content_properties", ("union", {"FeatureProperties": 1, "ImageProperties": 2})),
        ("range", "ValueRange"),
    ],
    "FeatureProperties": [],
    "ImageProperties": [("color_space", "byte"), ("default_size", "ImageSize")],
    "ImageSize": [("width", "uint"), ("height", "uint")],
    "ValueRange": [("min", "int"), ("max", "int")],
    "ProcessUnit": [("options", ("union", {"NormalizationOptions": 1}))],
    "NormalizationOptions": [("mean", "[float]"), ("std", "[float]")],
    "Stats": [("max", "[float]"), ("min", "[float]")],
    "AssociatedFile": [
        ("name", "string"),
        ("description", "string"),
        ("type", "byte"),
        ("locale", "string"),
        ("version", "string"),
    ],
}
_SCALARS = {"byte": number_types.Int8Flags, "uint": number_types.Uint32Flags, "int": number_types.Int32Flags}


def _is_scalar(kind):
    return isinstance(kind, str) and kind in _SCALARS


def _slots(table):
    """Each field of a table with its first vtable slot (a union takes two)."""
    slot = 0
    for field, kind in _SCHEMA[table]:
        yield field, kind, slot
        slot += 2 if isinstance(kind, tuple) else 1


def _pack(builder, table, values):
    """Writes one table (children first, as flatbuffers requires); returns its offset."""
    offsets = {}
    for field, kind, _ in _slots(table):
        if field not in values or _is_scalar(kind):
            continue
        value = values[field]
        if kind == "string":
            offsets[field] = builder.CreateString(value)
        elif kind == "[float]":
            offsets[field] = _vector(builder, [float(v) for v in value], builder.PrependFloat32)
        elif kind == "[string]":
            offsets[field] = _vector(builder, [builder.CreateString(v) for v in value], builder.PrependUOffsetTRelative)
        elif isinstance(kind, list):
            children = [_pack(builder, kind[0], child) for child in value]
            offsets[field] = _vector(builder, children, builder.PrependUOffsetTRelative)
        elif isinstance(kind, tuple):
            member, child = value
            offsets[field] = _pack(builder, member, child)
        else:
            offsets[field] = _pack(builder, kind, value)
    builder.StartObject(sum(2 if isinstance(kind, tuple) else 1 for _, kind in _SCHEMA[table]))
    for field, kind, slot in _slots(table):
        if field not in values:
            continue
        if _is_scalar(kind):
            getattr(builder, f"Prepend{_SCALARS[kind].__name__[:-5]}Slot")(slot, values[field], 0)
        elif isinstance(kind, tuple):
            builder.PrependUint8Slot(slot, kind[1][values[field][0]], 0)
            builder.PrependUOffsetTRelativeSlot(slot + 1, offsets[field], 0)
        else:
            builder.PrependUOffsetTRelativeSlot(slot, offsets[field], 0)
    return builder.EndObject()


def _vector(builder, items, prepend):
    builder.StartVector(4, len(items), 4)  # every element type used here is 4 bytes
    for item in reversed(items):
        prepend(item)
    return builder.EndVector()


def _unpack(buffer, position, table):
    """Reads one table into a dict of the fields present."""
    tab = Table(buffer, position)
    values = {}
    for field, kind, slot in _slots(table):
        offset = tab.Offset(4 + 2 * slot)
        if not offset:
            continue
        if _is_scalar(kind):
            values[field] = tab.Get(_SCALARS[kind], offset + tab.Pos)
        elif kind == "string":
            values[field] = tab.String(offset + tab.Pos).decode("utf-8")
        elif isinstance(kind, tuple):
            code = tab.Get(number_types.Uint8Flags, offset + tab.Pos)
            members = {number: name for name, number in kind[1].items()}
            value_offset = tab.Offset(4 + 2 * (slot + 1))
            if code in members and value_offset:
                values[field] = (members[code], _unpack(buffer, tab.Indirect(value_offset + tab.Pos), members[code]))
        elif isinstance(kind, list) or kind.startswith("["):
            start, length = tab.Vector(offset), tab.VectorLen(offset)
            items = [start + 4 * i for i in range(length)]
            if kind == "[float]":
                values[field] = [tab.Get(number_types.Float32Flags, item) for item in items]
            elif kind == "[string]":
                values[field] = [tab.String(item).decode("utf-8") for item in items]
            else:
                values[field] = [_unpack(buffer, tab.Indirect(item), kind[0]) for item in items]
        else:
            values[field] = _unpack(buffer, tab.Indirect(offset + tab.Pos), kind)
    return values


def pack_metadata(metadata):
    """A ``ModelMetadata`` dict (see `classifier_metadata`) as flatbuffer bytes."""
    builder = flatbuffers.Builder(1024)
    builder.Finish(_pack(builder, "ModelMetadata", metadata), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def unpack_metadata(data):
    """The ``ModelMetadata`` flatbuffer bytes as a dict of the fields present."""
    data = bytearray(data)
    if data[4:8] != FILE_IDENTIFIER:
        raise ValueError(f"Not a TFLite metadata flatbuffer: its file identifier is {bytes(data[4:8])!r}, not {FILE_IDENTIFIER!r}")
    root = flatbuffers.encode.Get(flatbuffers.packer.uoffset, data, 0)
    return _unpack(data, root, "ModelMetadata")


def classifier_metadata(class_names, *, name, description, version="", author="", license="", quantized_output=False):
    """The ``ModelMetadata`` of an image classifier taking raw RGB pixels.

    The input is RGB in [0, 255] (float32, or uint8 with scale 1 and zero
    point 0): the model scales it itself, so the normalization is mean 0,
    std 1. MediaPipe refuses a float32 input without NormalizationOptions.
    The output is the softmax probabilities, its class names in
    `LABELS_FILE` (no labels file when ``class_names`` is ``None``); the
    stats follow tflite-support's metadata writer ([0, 1] for float, [0, 255]
    for uint8).
    """
    image = {
        "name": "image",
        "description": "RGB pixels in [0, 255], centre-cropped to the model's input size.",
        "content": {"content_properties": ("ImageProperties", {"color_space": COLOR_SPACE_RGB})},
        "process_units": [{"options": ("NormalizationOptions", {"mean": [0.0], "std": [1.0]})}],
        "stats": {"max": [255.0], "min": [0.0]},
    }
    probabilities = {
        "name": "probability",
        "description": "Probabilities of the classes.",
        "content": {"content_properties": ("FeatureProperties", {})},
        "stats": {"max": [255.0 if quantized_output else 1.0], "min": [0.0]},
    }
    if class_names is not None:
        probabilities["associated_files"] = [{"name": LABELS_FILE, "description": "One class name per line.", "type": TENSOR_AXIS_LABELS}]
    metadata = {
        "name": name,
        "description": description,
        "version": version,
        "subgraph_metadata": [{"input_tensor_metadata": [image], "output_tensor_metadata": [probabilities]}],
        "author": author,
        "license": license,
        "min_parser_version": MIN_PARSER_VERSION,
    }
    return {key: value for key, value in metadata.items() if value != ""}


def labels_text(class_names):
    """`LABELS_FILE`'s content: one name per line, UTF-8."""
    for name in class_names:
        if not isinstance(name, str) or not name.strip() or "\n" in name or "\r" in name:
            raise ValueError(f"A class name must be a non-empty string on one line. Received: label={name!r}")
    return "".join(f"{name}\n" for name in class_names).encode("utf-8")


def add_metadata(model, metadata, files):
    """A `.tflite` model with metadata and associated files added.

    Args:
        model: the TFLite flatbuffer (bytes), as the converter writes it.
        metadata: a ``ModelMetadata`` dict, e.g. from `classifier_metadata`.
        files: a dict from file name to bytes, zipped (stored) after the flatbuffer.

    Returns:
        The bytes of the new `.tflite` file.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    flatbuffer = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    flatbuffer.metadata = flatbuffer.metadata or []
    entry = next((entry for entry in flatbuffer.metadata if _decode(entry.name) == METADATA_NAME), None)
    if entry is None:  # else the metadata is replaced in its own buffer
        entry = schema.MetadataT()
        entry.name, entry.buffer = METADATA_NAME, len(flatbuffer.buffers)
        flatbuffer.buffers.append(schema.BufferT())
        flatbuffer.metadata.append(entry)
    flatbuffer.buffers[entry.buffer].data = np.frombuffer(pack_metadata(metadata), np.uint8)
    builder = _AlignedBuilder(1024)
    builder.Finish(flatbuffer.Pack(builder), file_identifier=TFLITE_FILE_IDENTIFIER)
    output = io.BytesIO()
    output.write(builder.Output())
    # Stored, not deflated: MediaPipe's and the Task Library's zip readers
    # take associated files uncompressed. Offsets count from the file start,
    # as tflite-support's MetadataPopulator writes them.
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_STORED) as archive:
        for file_name, data in files.items():
            archive.writestr(file_name, data)
    return output.getvalue()


class _AlignedBuilder(flatbuffers.Builder):
    """Writes byte arrays 16-byte aligned, as TFLite's schema asks of weight
    buffers (``Buffer.data: [ubyte] (force_align: 16)``); the generated
    ``Pack`` aligns numpy data only to its element size."""

    def CreateNumpyVector(self, x):
        if x.dtype != np.uint8:
            return super().CreateNumpyVector(x)
        self.StartVector(1, x.size, 16)
        self.head -= x.size
        self.Bytes[self.head : self.head + x.size] = x.tobytes()
        self.vectorNumElems = x.size
        return self.EndVector()


def _decode(name):
    return name.decode("utf-8") if isinstance(name, bytes) else name


@dataclasses.dataclass(frozen=True)
class TFLiteMetadata:
    """What `read_metadata` finds in a `.tflite` file.

    ``labels`` come from the output's TENSOR_AXIS_LABELS file; ``mean`` and
    ``std`` from the input's NormalizationOptions (``(x - mean) / std``);
    ``input_range`` from its stats; ``files`` holds every zipped file.
    """

    name: str
    description: str
    version: str
    author: str
    license: str
    labels: tuple
    mean: tuple
    std: tuple
    input_range: tuple
    color_space: str
    min_parser_version: str
    files: dict
    metadata: dict  # the whole ModelMetadata, as `unpack_metadata` reads it


def read_metadata(path):
    """Reads the metadata and associated files of a `.tflite` file.

    Returns:
        A `TFLiteMetadata`, or ``None`` for a model without metadata.
    """
    data = _read_model_bytes(path)
    metadata = _find_metadata(data, path)
    if metadata is None:
        return None
    files = _zipped_files(data)
    subgraph = (metadata.get("subgraph_metadata") or [{}])[0]
    image = (subgraph.get("input_tensor_metadata") or [{}])[0]
    output = (subgraph.get("output_tensor_metadata") or [{}])[0]
    normalization = next(
        (unit["options"][1] for unit in image.get("process_units", []) if unit.get("options", ("",))[0] == "NormalizationOptions"),
        {},
    )
    label_files = [f["name"] for f in output.get("associated_files", []) if f.get("type") == TENSOR_AXIS_LABELS]
    labels = None
    if label_files and label_files[0] in files:
        labels = tuple(line for line in files[label_files[0]].decode("utf-8").splitlines() if line)
    properties = image.get("content", {}).get("content_properties", ("", {}))
    color_space = {1: "RGB", 2: "GRAYSCALE"}.get(properties[1].get("color_space")) if properties[0] == "ImageProperties" else None
    stats = image.get("stats", {})
    return TFLiteMetadata(
        name=metadata.get("name", ""),
        description=metadata.get("description", ""),
        version=metadata.get("version", ""),
        author=metadata.get("author", ""),
        license=metadata.get("license", ""),
        labels=labels,
        mean=tuple(normalization["mean"]) if "mean" in normalization else None,
        std=tuple(normalization["std"]) if "std" in normalization else None,
        input_range=(stats["min"][0], stats["max"][0]) if stats.get("min") and stats.get("max") else None,
        color_space=color_space,
        min_parser_version=metadata.get("min_parser_version", ""),
        files=files,
        metadata=metadata,
    )


def _read_model_bytes(path):
    if not pathlib.Path(path).is_file():
        raise FileNotFoundError(f"The TFLite model file does not exist. Received: model={str(path)!r}")
    data = pathlib.Path(path).read_bytes()
    if data[4:8] != TFLITE_FILE_IDENTIFIER:
        raise ValueError(f"The file is not a TFLite model (no {TFLITE_FILE_IDENTIFIER.decode()} identifier). Received: model={str(path)!r}")
    return data


def _find_metadata(data, path):
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if _decode(entry.Name()) == METADATA_NAME:
            try:
                return unpack_metadata(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
            except (ValueError, IndexError, UnicodeDecodeError) as error:
                raise ValueError(f"The model's {METADATA_NAME} cannot be read ({error}). Received: model={str(path)!r}") from None
    return None


def _zipped_files(data):
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except zipfile.BadZipFile:
        return {}
