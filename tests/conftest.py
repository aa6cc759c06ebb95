"""Shared fixtures. Tests read the real photos from ../shared/data/photos."""

import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
PHOTOS_DIR = SHARED_DATA / "photos"


@pytest.fixture(scope="session")
def photo_paths():
    """The six Apache-2.0 photos from google-coral/test_data, sorted by name."""
    paths = sorted(PHOTOS_DIR.glob("*.*"))
    if not paths:
        pytest.fail(f"No photos in {PHOTOS_DIR}: the shared data folder must sit beside the repository")
    return paths
