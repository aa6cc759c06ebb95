"""Hiding the known chatter that native code (TFLite, its converter, LiteRT) writes to stderr, and only that.

C++ code writes to file descriptor 2 directly, past `sys.stderr` and Python's
logging: only pointing fd 2 at a file for the duration and writing back the
lines that are not known noise hides it. Real errors pass through. With the
``keras_googlenet`` logger at DEBUG level (the CLI's ``--debug``), nothing is
hidden.
"""

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings

LOGGER_NAME = "keras_googlenet"

# Known noise, matched at the start of a line:
# - the int8 calibrator: "fully_quantize: 0, inference_type: 6, input_inference_type: UINT8, ..."
# - LiteRT's interpreter: "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
# - absl INFO and WARNING lines (converter passes, "Ignored output_format."):
#   "I0000 00:00:1795988335.523440    8409 port.cc:153] ..."; E and F lines pass.
NOISE = re.compile(
    r"fully_quantize: \d|INFO: Created TensorFlow Lite XNNPACK delegate|WARNING: All log messages before absl::"
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\]"
)


def showing_everything():
    """Whether nothing is hidden: the ``keras_googlenet`` logger is at DEBUG (``--debug``)."""
    return logging.getLogger(LOGGER_NAME).isEnabledFor(logging.DEBUG)


@contextlib.contextmanager
def quiet():
    """Runs the block with the known native noise, and tf2onnx's `np.object` FutureWarning, hidden."""
    if showing_everything():
        yield
        return
    with warnings.catch_warnings():
        # keras' tf2onnx_lib probes `hasattr(np, "object")`, which numpy 2 answers with a FutureWarning.
        warnings.filterwarnings("ignore", message=r"In the future `np\.object`", category=FutureWarning)
        with filtered_fd2(NOISE):
            yield


@contextlib.contextmanager
def filtered_fd2(noise):
    """Runs the block with file descriptor 2 captured; then writes back the lines ``noise`` does not match."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not noise.match(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()
