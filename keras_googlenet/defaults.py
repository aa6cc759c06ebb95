"""Default values and choices shared by the library and the command line.

This module imports nothing, so that `keras-googlenet --help` and argument
errors answer without loading TensorFlow (seconds) just to print a default.
"""

# train: the README's main job, the "bn" variant at 96 px on the built-in
# digits, 4 epochs on two CPU cores. Batch norm lets SGD converge in that time.
DEFAULT_DATA = "digits"
DEFAULT_VARIANT = "bn"
DEFAULT_IMAGE_SIZE = 96
DEFAULT_EPOCHS = 4
DEFAULT_BATCH_SIZE = 32
DEFAULT_LEARNING_RATE = 0.01
# The digits are 8x8: the paper's smallest crop (8% of the area) keeps 2x2
# pixels of them, no digit. 0.08 is right for natural images (ImageNet).
DEFAULT_MIN_CROP_AREA = 0.5
DEFAULT_OUTPUT_DIR = "runs/googlenet"
# The Caffe solver (bvlc_googlenet/quick_solver.prototxt): weight decay 0.0002.
WEIGHT_DECAY = 2e-4
# The splits of the digits and of an image folder (a tfds dataset has its own).
SPLITS = ("train", "validation")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker")
SCHEDULES = ("paper", "cosine", "constant")
MIXED_PRECISION_POLICIES = (None, "mixed_float16", "mixed_bfloat16")

# The files that travel beside a model, which its readers look for next to it:
# the class names (beside a checkpoint or a .tflite), the variant and input
# size (beside a .tflite), and the record of the training that made a
# checkpoint (quoted by a KerasHub preset's model card).
LABELS_FILE = "labels.txt"
METADATA_FILE = "metadata.json"
SUMMARY_FILE = "summary.json"
SIDECAR_FILES = (LABELS_FILE, METADATA_FILE, SUMMARY_FILE)

# export
FORMATS = ("savedmodel", "tflite", "onnx")  # what "all" writes
# A KerasHub preset needs the optional keras-hub ("keras-googlenet[kerashub]"):
# asked for by name, never part of "all".
KERASHUB_FORMAT = "kerashub"
EXPORT_FORMATS = (*FORMATS, KERASHUB_FORMAT)
QUANTIZATIONS = ("fp32", "fp16", "dynamic", "int8")
# The int8 file's input: uint8 pixels (MediaPipe's CPU path), int8 (q = pixel - 128), or
# float32 pixels, quantized inside the graph: what MediaPipe's web GPU delegate feeds correctly.
INT8_IO_TYPES = ("uint8", "int8", "float32")
# Opset 17 is supported by every onnxruntime since 1.13 and by tf2onnx 1.16+.
DEFAULT_OPSET = 17
DEFAULT_EXPORT_DIR = "exports"

# train --ray-workers: how many times Ray Train restarts the worker group
# after losing a worker before the run fails (each restart resumes from the
# last epoch backed up).
DEFAULT_RAY_MAX_FAILURES = 3
# Ray's own storage (its run state and the final report): this folder of the run.
RAY_STORAGE_DIR = "ray"
