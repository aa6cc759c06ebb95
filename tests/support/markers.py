"""Marks shared by test files in several folders (tests/support is on pytest's path)."""

import importlib.util

import pytest

# PyTorch writes the .pth checkpoints and runs the reference model of the parity tests.
needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None,
    reason="PyTorch (CPU) is a test dependency that writes the checkpoints: pip install torch==2.13.0",
)
