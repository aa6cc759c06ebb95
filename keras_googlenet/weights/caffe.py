"""Reading Caffe's ``.caffemodel`` without Caffe, protobuf stubs or OpenCV.

A ``.caffemodel`` is one binary ``NetParameter`` message (protobuf wire format,
https://protobuf.dev/programming-guides/encoding/). The field numbers below are
those of BVLC Caffe's ``src/caffe/proto/caffe.proto``:

- ``NetParameter``: ``layers = 2`` (``V1LayerParameter``, the 2014 format of
  ``bvlc_googlenet.caffemodel``) and ``layer = 100`` (``LayerParameter``, V2).
- ``V1LayerParameter``: ``layer = 1`` (a ``V0LayerParameter``: the V0 format,
  refused), ``name = 4``, ``type = 5`` (an enum), ``blobs = 6``.
- ``LayerParameter``: ``name = 1``, ``type = 2`` (a string), ``blobs = 7``.
- ``BlobProto``: ``num``, ``channels``, ``height``, ``width`` = 1..4 (the V1
  4D shape), ``data = 5`` (packed float), ``shape = 7``, ``double_data = 8``.
- ``BlobShape``: ``dim = 1`` (packed int64).

Every other field is skipped by its wire type. `read_caffemodel` returns the
layers that hold blobs; `convert_layers` checks them against the "paper"
GoogLeNet (bvlc_googlenet) and turns them into Keras layouts.
"""

import dataclasses
import math
import os

import numpy as np

from keras_googlenet.model import architecture

# Wire types (protobuf encoding spec). 3 and 4 are the deprecated groups.
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5

# The Caffe names of the auxiliary heads' layers ("loss1/fc") and of the main
# classifier ("loss3/classifier"), as in bvlc_googlenet's train_val.prototxt.
CAFFE_HEADS = {"aux1": "loss1", "aux2": "loss2", "main": "loss3"}


@dataclasses.dataclass
class CaffeLayer:
    """A layer with weights: its Caffe name and type, and its blobs in Caffe's shapes."""

    name: str
    type: str
    blobs: list


class CaffeModelError(ValueError):
    """A file that is not a readable ``.caffemodel`` of GoogLeNet; the message names the file."""


def read_caffemodel(path):
    """Reads the layers that hold weights from a ``.caffemodel`` (V1 or V2 format).

    Returns:
        A list of `CaffeLayer`, in file order; layers without blobs (data,
        ReLU, pooling, losses) are left out.

    Raises:
        FileNotFoundError: there is no such file.
        CaffeModelError: the file is empty, truncated, text (a ``.prototxt``),
            in the V0 format, or not a Caffe ``NetParameter``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"The Caffe model file does not exist. Received: path={path!r}")
    with open(path, "rb") as file:
        data = memoryview(file.read())
    if not data:
        raise CaffeModelError(f"The Caffe model file is empty. Received: path={path!r}")
    if _looks_like_text(data):
        raise CaffeModelError(
            "The file is text (a .prototxt describes the network; the weights are in the binary "
            f".caffemodel). Received: path={path!r}"
        )
    try:
        return _read_net(data)
    except _WireError as error:
        raise CaffeModelError(f"Not a readable Caffe model: {error}. Received: path={path!r}") from None


class _WireError(Exception):
    pass


def _looks_like_text(data):
    head = bytes(data[:256])
    printable = sum(32 <= byte < 127 or byte in b"\t\r\n" for byte in head)
    return printable == len(head) and (b":" in head or b"{" in head or b"#" in head)


def _varint(data, pos, end):
    result = shift = 0
    while True:
        if pos >= end:
            raise _WireError(f"it is truncated (a number runs past byte {end})")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _WireError(f"a malformed number at byte {pos}")


def _next_field(data, pos, end):
    """Reads the field at ``pos``: ``(field number, wire type, value, next position)``.

    ``value`` is an int for varints, a ``(start, end)`` span for the other
    wire types: bytes are not copied.
    """
    key, pos = _varint(data, pos, end)
    number, wire = key >> 3, key & 7
    if number == 0:
        raise _WireError(f"field number 0 at byte {pos}")
    if wire == _VARINT:
        value, pos = _varint(data, pos, end)
        return number, wire, value, pos
    if wire == _LEN:
        size, pos = _varint(data, pos, end)
    elif wire in (_I64, _I32):
        size = 8 if wire == _I64 else 4
    else:
        raise _WireError(f"wire type {wire} (field {number}) at byte {pos}")
    if pos + size > end:
        raise _WireError(f"it is truncated (field {number} needs {size} bytes at byte {pos}, the message ends at {end})")
    return number, wire, (pos, pos + size), pos + size


def _fields(data, start, end):
    """Yields ``(field number, wire type, value)`` of the message in ``data[start:end]``."""
    pos = start
    while pos < end:
        number, wire, value, pos = _next_field(data, pos, end)
        yield number, wire, value


def _read_net(data):
    layers = []
    formats = set()
    for number, wire, value in _fields(data, 0, len(data)):
        if number == 2 and wire == _LEN:
            formats.add("V1")
            layers.append(_read_layer(data, *value, name_field=4, type_field=5, blobs_field=6))
        elif number == 100 and wire == _LEN:
            formats.add("V2")
            layers.append(_read_layer(data, *value, name_field=1, type_field=2, blobs_field=7))
    if not layers:
        raise _WireError("it has no layers (NetParameter fields 2 and 100)")
    if len(formats) > 1:
        raise _WireError("it mixes V1 `layers` and V2 `layer` fields, which Caffe itself refuses")
    return [layer for layer in layers if layer.blobs]


def _read_layer(data, start, end, name_field, type_field, blobs_field):
    name, layer_type, blobs = None, None, []
    for number, wire, value in _fields(data, start, end):
        if name_field == 4 and number == 1:
            raise _WireError(
                "it is in the V0 format (a V0LayerParameter inside each layer), which predates 2014's V1; "
                "upgrade it with Caffe's upgrade_net_proto_binary"
            )
        if number == name_field and wire == _LEN:
            name = bytes(data[value[0]:value[1]]).decode("utf-8", "replace")
        elif number == type_field:
            layer_type = str(value) if wire == _VARINT else bytes(data[value[0]:value[1]]).decode("utf-8", "replace")
        elif number == blobs_field and wire == _LEN:
            blobs.append(_read_blob(data, *value))
    if name is None:
        raise _WireError(f"a layer without a name at byte {start}")
    return CaffeLayer(name, _V1_TYPES.get(layer_type, layer_type), [_shaped(blob, name) for blob in blobs])


# The V1LayerParameter.LayerType values of the layers that hold weights here.
_V1_TYPES = {"4": "Convolution", "14": "InnerProduct"}


def _read_blob(data, start, end):
    """One BlobProto: ``(shape or None, legacy 4D dims, float array)``."""
    shape, legacy, chunks = None, [0, 0, 0, 0], []
    pos = start
    while pos < end:
        number, wire, value, pos = _next_field(data, pos, end)
        if number in (1, 2, 3, 4) and wire == _VARINT:
            legacy[number - 1] = value
        elif number == 7 and wire == _LEN:
            shape = _read_shape(data, *value)
        elif number in (5, 8) and wire == _LEN:  # packed, as Caffe writes
            chunks.append(_packed(data, *value, "<f4" if number == 5 else "<f8", number))
        elif (number, wire) in ((5, _I32), (8, _I64)):
            # Not packed: one tagged value after another. Read the whole run
            # at once (a strided view) instead of millions of fields.
            run, pos = _unpacked_run(data, value[0], end, "<f4" if number == 5 else "<f8")
            chunks.append(run)
    values = np.concatenate(chunks) if len(chunks) > 1 else (chunks[0] if chunks else np.zeros(0, "<f4"))
    return shape, tuple(legacy), values


def _packed(data, start, end, dtype, number):
    itemsize = np.dtype(dtype).itemsize
    if (end - start) % itemsize:
        raise _WireError(f"packed field {number} of {end - start} bytes is not a whole number of values")
    return np.frombuffer(data, dtype=dtype, count=(end - start) // itemsize, offset=start)


def _unpacked_run(data, first, end, dtype):
    """The run of unpacked values from ``first`` on: ``(values, position after the run)``.

    Fields 5 and 8 have one-byte keys, so value ``i`` sits at ``first + i * stride``.
    """
    stride = np.dtype(dtype).itemsize + 1
    raw = np.frombuffer(data, dtype="u1", count=end - first + 1, offset=first - 1)
    keys = raw[: (len(raw) // stride) * stride : stride]
    other = np.flatnonzero(keys != raw[0])
    count = int(other[0]) if other.size else len(keys)
    values = np.ndarray((count,), dtype=dtype, buffer=data, offset=first, strides=(stride,))
    return values.astype(dtype), first - 1 + count * stride


def _read_shape(data, start, end):
    dims = []
    for number, wire, value in _fields(data, start, end):
        if number == 1 and wire == _VARINT:
            dims.append(value)
        elif number == 1 and wire == _LEN:  # packed int64, as Caffe writes
            pos, stop = value
            while pos < stop:
                dim, pos = _varint(data, pos, stop)
                dims.append(dim)
    return tuple(dims)


def _shaped(blob, layer_name):
    shape, legacy, values = blob
    if shape is None:
        shape = legacy  # V1: num, channels, height, width
    if math.prod(shape) != values.size:
        raise _WireError(f"a blob of layer {layer_name!r} has {values.size} values for its shape {shape}")
    return values.reshape(shape)


def paper_layer_shapes(classes=1000):
    """``{Caffe layer name: [weight shape, bias shape]}`` of bvlc_googlenet, in Caffe's layouts.

    Built from `keras_googlenet.model.architecture`'s tables, in the prototxt's
    order: the stem, each inception module (with an auxiliary head after 4a
    and 4d) and the main classifier.
    """
    paper = architecture.VARIANTS["paper"]
    shapes = {}

    def conv(name, filters, channels, kernel):
        shapes[name] = [(filters, channels, kernel, kernel), (filters,)]

    def dense(name, units, inputs):
        shapes[name] = [(units, inputs), (units,)]

    conv("conv1/7x7_s2", architecture.STEM_CONV1_FILTERS, 3, 7)
    conv("conv2/3x3_reduce", architecture.STEM_CONV2_REDUCE_FILTERS, architecture.STEM_CONV1_FILTERS, 1)
    conv("conv2/3x3", architecture.STEM_CONV2_FILTERS, architecture.STEM_CONV2_REDUCE_FILTERS, 3)
    channels = architecture.STEM_CONV2_FILTERS
    for block in architecture.INCEPTION_BLOCKS:
        prefix = f"inception_{block.name}/"
        conv(prefix + "1x1", block.filters_1x1, channels, 1)
        conv(prefix + "3x3_reduce", block.filters_3x3_reduce, channels, 1)
        conv(prefix + "3x3", block.filters_3x3, block.filters_3x3_reduce, 3)
        conv(prefix + "5x5_reduce", block.filters_5x5_reduce, channels, 1)
        conv(prefix + "5x5", block.filters_5x5, block.filters_5x5_reduce, paper.branch_5x5_kernel)
        conv(prefix + "pool_proj", block.pool_proj, channels, 1)
        channels = block.output_channels
        if block.name in architecture.AUX_HEAD_AFTER:
            loss = CAFFE_HEADS[architecture.AUX_HEAD_AFTER[block.name]]
            side = aux_map_side()
            conv(f"{loss}/conv", architecture.AUX_CONV_FILTERS, channels, 1)
            dense(f"{loss}/fc", architecture.AUX_FC_UNITS, architecture.AUX_CONV_FILTERS * side * side)
            dense(f"{loss}/classifier", classes, architecture.AUX_FC_UNITS)
    dense(f"{CAFFE_HEADS['main']}/classifier", classes, channels)
    return shapes


def aux_map_side(input_size=architecture.DEFAULT_INPUT_SIZE):
    """The side of the auxiliary heads' pooled map: 4 at 224 px (a 5x5 stride-3 pool of 14x14)."""
    aux_input = architecture.feature_map_sizes(input_size, "paper")[3]
    return (aux_input - architecture.AUX_POOL_SIZE) // architecture.AUX_POOL_STRIDE + 1


def keras_layer_name(caffe_name):
    """``inception_4a/5x5_reduce`` -> ``inception_4a_5x5_reduce``, ``loss1/fc`` -> ``aux1_fc``."""
    for head, loss in CAFFE_HEADS.items():
        if head != "main" and caffe_name.startswith(f"{loss}/"):
            caffe_name = head + caffe_name[len(loss):]
    return caffe_name.replace("/", "_")


def convert_layers(layers, path):
    """Checks Caffe layers against bvlc_googlenet and converts them to Keras layer weights.

    Every layer and shape is checked before anything is returned. The
    auxiliary heads may be absent as a whole (a deploy-only file): they are
    then left out of the result.

    Args:
        layers: the `CaffeLayer` list that `read_caffemodel` returns.
        path: the file, for the error messages.

    Returns:
        ``{Keras layer name: [kernel, bias]}``.

    Raises:
        CaffeModelError: a layer is missing, extra or of another shape; the
            message names the first such layer and both shapes.
    """
    expected = paper_layer_shapes()
    found = {}
    for layer in layers:
        if layer.name not in expected:
            raise CaffeModelError(
                f"The Caffe model has a layer {layer.name!r} ({layer.type}) with weights that bvlc_googlenet "
                f"does not have: it is another network. Received: path={path!r}"
            )
        found[layer.name] = _check_blobs(layer, expected[layer.name], path)
    heads_present = {head for head, loss in CAFFE_HEADS.items() if any(n.startswith(f"{loss}/") for n in found)}
    for name in expected:
        head = next((h for h, loss in CAFFE_HEADS.items() if name.startswith(f"{loss}/")), None)
        if name not in found and (head in (None, "main") or head in heads_present):
            raise CaffeModelError(
                f"The Caffe model has no layer {name!r}: it is not bvlc_googlenet. Received: path={path!r}"
            )
    return {keras_layer_name(name): _to_keras(name, blobs) for name, blobs in found.items()}


def _check_blobs(layer, shapes, path):
    if len(layer.blobs) != len(shapes):
        raise CaffeModelError(
            f"The Caffe layer {layer.name!r} has {len(layer.blobs)} blobs, bvlc_googlenet's has "
            f"{len(shapes)} (weights and bias). Received: path={path!r}"
        )
    blobs = []
    for blob, shape in zip(layer.blobs, shapes):
        # V1 stores an InnerProduct's weights as (1, 1, out, in) and every
        # bias as (1, 1, 1, out): drop leading ones, nothing else.
        squeezed = blob
        while squeezed.ndim > len(shape) and squeezed.shape[0] == 1:
            squeezed = squeezed[0]
        if squeezed.shape != shape:
            raise CaffeModelError(
                f"The Caffe layer {layer.name!r} has a blob of shape {tuple(blob.shape)}, bvlc_googlenet's is "
                f"{shape}. Received: path={path!r}"
            )
        blobs.append(squeezed)
    return blobs


def _to_keras(name, blobs):
    """Caffe layouts to Keras: OIHW -> HWIO, (out, in) -> (in, out)."""
    weight, bias = blobs
    if weight.ndim == 4:
        kernel = weight.transpose(2, 3, 1, 0)
    elif name.endswith("/fc"):
        # The auxiliary FC reads the 128 x 4 x 4 map flattened in Caffe's CHW
        # order; Keras' Flatten is HWC, so the inputs are permuted, not just
        # transposed.
        side = aux_map_side()
        units = weight.shape[0]
        kernel = weight.reshape(units, architecture.AUX_CONV_FILTERS, side, side).transpose(2, 3, 1, 0)
        kernel = kernel.reshape(side * side * architecture.AUX_CONV_FILTERS, units)
    else:
        kernel = weight.T
    return [np.ascontiguousarray(kernel, dtype="float32"), np.asarray(bias, dtype="float32")]


def read_layer_weights(path):
    """``{Keras layer name: [kernel, bias]}`` from a bvlc_googlenet ``.caffemodel``."""
    return convert_layers(read_caffemodel(path), os.fspath(path))
