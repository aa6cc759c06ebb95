"""Marks shared by test files in several folders (tests/support is on pytest's path)."""

import pytest

# PyTorch writes the .pth checkpoints and runs the reference model of the parity
# tests. Not in the [test] extra: PyPI's default wheel brings CUDA (GBs); .ci/run
# installs the CPU one beside it. conftest skips, or fails under CI (`needs`).
needs_torch = pytest.mark.needs("torch", "pip install torch==2.13.0")
