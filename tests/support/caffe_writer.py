"""Writes Caffe files for the tests: a .caffemodel (protobuf wire format) and a .prototxt.

Written from the protobuf encoding spec and caffe.proto's field numbers
(BVLC/caffe src/caffe/proto/caffe.proto), independently of
`keras_googlenet.weights.caffe`, which reads them. The network is walked from
`keras_googlenet.model.architecture`'s tables, as bvlc_googlenet's train_val.prototxt
lays it out: the prototxt is what OpenCV's Caffe importer runs as the reference.
"""

import struct

import numpy as np

from keras_googlenet.model import architecture

# V1LayerParameter.LayerType values (caffe.proto).
V1_TYPES = {"Convolution": 4, "InnerProduct": 14, "ReLU": 18, "Pooling": 17, "Data": 5, "SoftmaxWithLoss": 21}


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def key(number, wire):
    return varint(number << 3 | wire)


def length_delimited(number, payload):
    return key(number, 2) + varint(len(payload)) + payload


def blob(array, version, packed=True, double=False):
    """A BlobProto: V1 with num/channels/height/width, V2 with a BlobShape."""
    array = np.asarray(array)
    if version == "V1":
        dims = (1,) * (4 - array.ndim) + array.shape  # (1, 1, out, in) for an InnerProduct
        out = b"".join(key(number, 0) + varint(dim) for number, dim in zip((1, 2, 3, 4), dims))
    else:
        out = length_delimited(7, length_delimited(1, b"".join(varint(d) for d in array.shape)))
    number, dtype, wire, code = (8, "<f8", 1, "<d") if double else (5, "<f4", 5, "<f")
    flat = array.astype(dtype).ravel()
    if packed:
        return out + length_delimited(number, flat.tobytes())
    return out + b"".join(key(number, wire) + struct.pack(code, value) for value in flat.tolist())


def layer(name, layer_type, blobs, version, **blob_options):
    encoded = [blob(b, version, **blob_options) for b in blobs]
    if version == "V1":  # V1LayerParameter: name = 4, type = 5 (enum), blobs = 6
        body = length_delimited(4, name.encode()) + key(5, 0) + varint(V1_TYPES[layer_type])
        return length_delimited(2, body + b"".join(length_delimited(6, b) for b in encoded))
    # LayerParameter: name = 1, type = 2 (string), bottom = 3, top = 4, blobs = 7
    body = length_delimited(1, name.encode()) + length_delimited(2, layer_type.encode())
    body += length_delimited(3, b"bottom") + length_delimited(4, name.encode())
    return length_delimited(100, body + b"".join(length_delimited(7, b) for b in encoded))


def caffemodel_bytes(weights, version="V2", **blob_options):
    """A NetParameter with a data layer, each weighted layer followed by a ReLU, and a loss."""
    out = length_delimited(1, b"GoogleNet") + layer("data", "Data", [], version)
    for name, (layer_type, blobs) in weights.items():
        out += layer(name, layer_type, blobs, version, **blob_options)
        out += layer(f"{name}/relu", "ReLU", [], version)
    return out + layer("loss3/loss3", "SoftmaxWithLoss", [], version)


def write_caffemodel(path, weights, version="V2", **blob_options):
    path.write_bytes(caffemodel_bytes(weights, version, **blob_options))
    return path


def bvlc_layers():
    """``[(caffe name, type, weight shape, input blob)]`` of bvlc_googlenet, in prototxt order."""
    rows = []

    def conv(name, filters, channels, kernel, bottom):
        rows.append((name, "Convolution", (filters, channels, kernel, kernel), bottom))

    conv("conv1/7x7_s2", 64, 3, 7, "data")
    conv("conv2/3x3_reduce", 64, 64, 1, "pool1/norm1")
    conv("conv2/3x3", 192, 64, 3, "conv2/3x3_reduce")
    channels, bottom = 192, "pool2/3x3_s2"
    for block in architecture.INCEPTION_BLOCKS:
        p = f"inception_{block.name}/"
        conv(p + "1x1", block.filters_1x1, channels, 1, bottom)
        conv(p + "3x3_reduce", block.filters_3x3_reduce, channels, 1, bottom)
        conv(p + "3x3", block.filters_3x3, block.filters_3x3_reduce, 3, p + "3x3_reduce")
        conv(p + "5x5_reduce", block.filters_5x5_reduce, channels, 1, bottom)
        conv(p + "5x5", block.filters_5x5, block.filters_5x5_reduce, 5, p + "5x5_reduce")
        conv(p + "pool_proj", block.pool_proj, channels, 1, p + "pool")
        channels = block.output_channels
        bottom = {"3b": "pool3/3x3_s2", "4e": "pool4/3x3_s2"}.get(block.name, p + "output")
        if block.name in ("4a", "4d"):
            loss = "loss1" if block.name == "4a" else "loss2"
            conv(f"{loss}/conv", 128, channels, 1, f"{loss}/ave_pool")
            rows.append((f"{loss}/fc", "InnerProduct", (1024, 128 * 4 * 4), f"{loss}/conv"))
            rows.append((f"{loss}/classifier", "InnerProduct", (1000, 1024), f"{loss}/fc"))
    rows.append(("loss3/classifier", "InnerProduct", (1000, channels), "pool5/7x7_s1"))
    return rows


def random_bvlc_weights(seed=0, classifier_scale=1.0):
    """Random bvlc_googlenet weights: ``{caffe name: (type, [weight, bias])}``, Caffe layouts.

    He-scaled, so that activations keep their size through the network, with
    the classifiers' weights times ``classifier_scale`` so that the softmax is
    peaked (a near-uniform softmax would make top-1 agreement meaningless).
    """
    rng = np.random.default_rng(seed)
    weights = {}
    for name, layer_type, shape, _ in bvlc_layers():
        fan_in = int(np.prod(shape[1:]))
        scale = (2.0 / fan_in) ** 0.5 * (classifier_scale if name.endswith("classifier") else 1.0)
        weight = (rng.standard_normal(shape) * scale).astype("float32")
        bias = (0.1 * rng.standard_normal(shape[0])).astype("float32")
        weights[name] = (layer_type, [weight, bias])
    return weights


class _Prototxt:
    """Prototxt text, one layer per line; weighted layers take their shapes from `bvlc_layers`."""

    def __init__(self, input_size):
        self.rows = {name: (shape, bottom) for name, _, shape, bottom in bvlc_layers()}
        self.lines = [f'name: "GoogleNet"\nlayer {{ name: "data" type: "Input" top: "data" '
                      f"input_param {{ shape {{ dim: 1 dim: 3 dim: {input_size} dim: {input_size} }} }} }}"]

    def add(self, name, kind, bottoms, params="", top=None):
        bottom = " ".join(f'bottom: "{b}"' for b in bottoms)
        self.lines.append(f'layer {{ name: "{name}" type: "{kind}" {bottom} top: "{top or name}" {params} }}')

    def conv(self, name):
        (filters, _, kernel, _), bottom = self.rows[name]
        stride = 2 if name == "conv1/7x7_s2" else 1
        self.add(name, "Convolution", [bottom], f"convolution_param {{ num_output: {filters} kernel_size: {kernel} "
                 f"pad: {kernel // 2} stride: {stride} }}")
        self.add(f"{name}/relu", "ReLU", [name], top=name)

    def pool(self, name, bottom, method, kernel, stride, pad=0):
        self.add(name, "Pooling", [bottom], f"pooling_param {{ pool: {method} kernel_size: {kernel} stride: {stride} pad: {pad} }}")

    def lrn(self, name, bottom):
        self.add(name, "LRN", [bottom], "lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 }")

    def dense(self, name, relu=False, dropout=None):
        (units, _), bottom = self.rows[name]
        self.add(name, "InnerProduct", [bottom], f"inner_product_param {{ num_output: {units} }}")
        if relu:
            self.add(f"{name}/relu", "ReLU", [name], top=name)
        if dropout:
            self.add(f"{name}/drop", "Dropout", [name], f"dropout_param {{ dropout_ratio: {dropout} }}", top=name)

    def classifier(self, loss, bottom, pool, dropout):
        """An auxiliary head (loss1, loss2) or the main one (loss3) and its softmax."""
        if loss == "loss3":
            self.pool("pool5/7x7_s1", bottom, "AVE", 7, 1)
            self.add("pool5/drop_7x7_s1", "Dropout", ["pool5/7x7_s1"], f"dropout_param {{ dropout_ratio: {dropout} }}",
                     top="pool5/7x7_s1")
            self.dense("loss3/classifier")
            self.add("prob", "Softmax", ["loss3/classifier"])
            return
        self.pool(f"{loss}/ave_pool", bottom, "AVE", *pool)
        self.conv(f"{loss}/conv")
        self.dense(f"{loss}/fc", relu=True, dropout=dropout)
        self.dense(f"{loss}/classifier")
        self.add(f"{loss}/prob", "Softmax", [f"{loss}/classifier"])


def prototxt(input_size, heads=True):
    """bvlc_googlenet's deploy network as prototxt text (V2), with three softmax heads or none."""
    net = _Prototxt(input_size)
    net.conv("conv1/7x7_s2")
    net.pool("pool1/3x3_s2", "conv1/7x7_s2", "MAX", 3, 2)
    net.lrn("pool1/norm1", "pool1/3x3_s2")
    net.conv("conv2/3x3_reduce")
    net.conv("conv2/3x3")
    net.lrn("conv2/norm2", "conv2/3x3")
    net.pool("pool2/3x3_s2", "conv2/norm2", "MAX", 3, 2)
    for block in architecture.INCEPTION_BLOCKS:
        p = f"inception_{block.name}/"
        net.pool(p + "pool", net.rows[p + "1x1"][1], "MAX", 3, 1, pad=1)
        for branch in ("1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool_proj"):
            net.conv(p + branch)
        net.add(p + "output", "Concat", [p + "1x1", p + "3x3", p + "5x5", p + "pool_proj"])
        if block.name in ("3b", "4e"):
            net.pool(f"{'pool3' if block.name == '3b' else 'pool4'}/3x3_s2", p + "output", "MAX", 3, 2)
        if heads and block.name in ("4a", "4d"):
            net.classifier("loss1" if block.name == "4a" else "loss2", p + "output", pool=(5, 3), dropout=0.7)
    if heads:
        net.classifier("loss3", "inception_5b/output", pool=None, dropout=0.4)
    return "\n".join(net.lines) + "\n"


# Run in a subprocess: importing cv2 after TensorFlow has crashed the process.
_OPENCV_SCRIPT = """
import sys
import cv2
import numpy as np
prototxt, model, inputs, names, out = sys.argv[1:6]
net = cv2.dnn.readNetFromCaffe(prototxt, model)
names = names.split(",")
batch = np.load(inputs)
results = {name: [] for name in names}
for image in batch:
    net.setInput(np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32))
    for name, value in zip(names, net.forward(names)):
        results[name].append(value[0])
np.savez(out, **{str(i): np.stack(results[name]) for i, name in enumerate(names)})
"""


def opencv_forward(folder, prototxt_text, caffemodel, inputs, names):
    """Runs OpenCV's Caffe importer on preprocessed NHWC inputs; returns ``{blob name: NCHW or (N, units) array}``."""
    import subprocess
    import sys

    prototxt_path = folder / "deploy.prototxt"
    prototxt_path.write_text(prototxt_text)
    np.save(folder / "inputs.npy", np.asarray(inputs, dtype="float32"))
    out = folder / "opencv.npz"
    subprocess.run(
        [sys.executable, "-c", _OPENCV_SCRIPT, str(prototxt_path), str(caffemodel), str(folder / "inputs.npy"),
         ",".join(names), str(out)],
        check=True, capture_output=True, timeout=600,
    )
    with np.load(out) as results:
        return {name: results[str(i)] for i, name in enumerate(names)}
