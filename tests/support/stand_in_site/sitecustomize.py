"""Puts `tiny_googlenet`'s stand-in into `train` in every Python process with this folder on PYTHONPATH (Ray's workers)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # tests/support

import tiny_googlenet  # noqa: E402 - the standard library only

tiny_googlenet.patch_train_when_imported()
