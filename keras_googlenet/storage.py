"""Which paths the package can read and write: local ones. A URI (``scheme://...``) is refused in one line.

``--output-dir gs://bucket/run`` used to make a local folder named ``gs:``
and report the run as saved "to" the bucket: in a container that folder
dies with it. Until object storage is supported, every path argument that
names a URI is refused before anything is written and before TensorFlow is
imported, with a line that says what to do instead. Imports nothing heavy.
"""

import os
import re

# Object stores that users name, with the command that copies a local folder there.
OBJECT_STORES = {
    "gs": ("a Google Cloud Storage", "gcloud storage cp -r"),
    "s3": ("an Amazon S3", "aws s3 cp --recursive"),
}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_COLLAPSED_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):/")


def scheme(path):
    """The URI scheme of ``path`` in lower case (``"gs"`` for ``gs://b/x``), or None for a local path."""
    if not isinstance(path, (str, os.PathLike)):
        return None
    text = os.fspath(path)
    # pathlib collapses "gs://b" to "gs:/b": a PathLike keeps only one slash.
    pattern = _SCHEME if isinstance(path, str) else _COLLAPSED_SCHEME
    match = pattern.match(text) if isinstance(text, str) else None
    return match.group(1).lower() if match else None


def check_local(path, argument):
    """Raises a one-line ValueError naming ``argument`` when ``path`` is a URI rather than a local path."""
    found = scheme(path)
    if found is None:
        return
    if found in OBJECT_STORES:
        store, copy = OBJECT_STORES[found]
        raise ValueError(
            f"`{argument}` is {store} URI, and this version reads and writes local paths only: use a local "
            f"path, and copy the files with `{copy}`. Received: {argument}={os.fspath(path)!r}"
        )
    raise ValueError(f"`{argument}` must be a local path: {found}:// URIs are not supported. Received: {argument}={os.fspath(path)!r}")
