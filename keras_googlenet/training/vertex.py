"""Where a run goes in a Vertex AI custom job that names no output folder.

A custom job with a base output directory gets three gs:// folders in its
environment (Vertex AI, "Prepare training code", environment variables):
``AIP_CHECKPOINT_DIR``, ``AIP_MODEL_DIR`` and ``AIP_TENSORBOARD_LOG_DIR``.
When ``train`` is given no output folder there, the run takes them:

- the run itself (checkpoints, backup, ``history.csv``, curves, labels,
  ``summary.json`` and the lease) goes to ``AIP_CHECKPOINT_DIR``: a retried
  job resumes from it;
- TensorBoard's logs go to ``AIP_TENSORBOARD_LOG_DIR``, which a Vertex AI
  TensorBoard instance reads;
- at the end, the model (the best checkpoint and ``labels.txt``) is copied to
  ``AIP_MODEL_DIR``.

Light: the CLI resolves the folder before TensorFlow loads.
"""

import dataclasses
import os

from keras_googlenet.defaults import DEFAULT_OUTPUT_DIR

CHECKPOINT_DIR = "AIP_CHECKPOINT_DIR"
MODEL_DIR = "AIP_MODEL_DIR"
TENSORBOARD_LOG_DIR = "AIP_TENSORBOARD_LOG_DIR"


@dataclasses.dataclass(frozen=True)
class Outputs:
    """A run's folder, and the other folders that Vertex AI gives (None elsewhere)."""

    run: object  # a path or a URI
    tensorboard: str = None
    model: str = None


def output_dir(given):
    """The run's folder: ``given``, else ``AIP_CHECKPOINT_DIR`` in a Vertex AI job, else the default."""
    if given is not None:
        return given
    return os.environ.get(CHECKPOINT_DIR) or DEFAULT_OUTPUT_DIR


def outputs(given):
    """`Outputs` of a run into ``given`` (resolved by `output_dir`): Vertex AI's other folders if it is ``AIP_CHECKPOINT_DIR``."""
    run = output_dir(given)
    checkpoints = os.environ.get(CHECKPOINT_DIR)
    if not checkpoints or not isinstance(run, str) or run.rstrip("/") != checkpoints.rstrip("/"):
        return Outputs(run)
    return Outputs(run, os.environ.get(TENSORBOARD_LOG_DIR) or None, os.environ.get(MODEL_DIR) or None)
