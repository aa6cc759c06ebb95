"""Where the package reads and writes: local paths, and gs:// and s3:// URIs through fsspec.

``--output-dir gs://bucket/run`` once made a local folder named ``gs:`` and
reported the run as saved "to" the bucket: in a container that folder dies
with it. This module reads a path's scheme and refuses, in one line and
before TensorFlow is imported, what cannot work: an unknown scheme, a store
whose fsspec extra is missing, or a URI given where only local paths are
read yet. It imports nothing heavy; `objects` talks to the stores and
`mirror` keeps a run folder at a URI in step with a local one.
"""

import dataclasses
import hashlib
import importlib.util
import os
import re


@dataclasses.dataclass(frozen=True)
class ObjectStore:
    """An object store that users name by its URI scheme."""

    name: str  # for messages: "a Google Cloud Storage" URI
    module: str  # its fsspec implementation
    extra: str  # the package extra that installs it
    copy: str  # the command that copies a local folder there


OBJECT_STORES = {
    "gs": ObjectStore("a Google Cloud Storage", "gcsfs", "gcs", "gcloud storage cp -r"),
    "s3": ObjectStore("an Amazon S3", "s3fs", "s3", "aws s3 cp --recursive"),
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


def is_object_store(path):
    """Whether ``path`` is a ``gs://`` or ``s3://`` URI given as a string."""
    return isinstance(path, str) and scheme(path) in OBJECT_STORES


def bucket(uri):
    """The bucket of ``gs://bucket/a/b``: ``"bucket"``."""
    return uri.split("://", 1)[1].split("/", 1)[0]


def join(uri, *parts):
    """``uri`` and ``parts`` joined by single slashes."""
    return "/".join([uri.rstrip("/"), *(part.strip("/") for part in parts)])


def digest(path):
    """A short, stable name for ``path``, for the local folders named after it."""
    return hashlib.sha256(os.fspath(path).encode()).hexdigest()[:12]


def check_local(path, argument):
    """Raises a one-line ValueError naming ``argument`` when ``path`` is a URI rather than a local path."""
    found = scheme(path)
    if found is None:
        return
    if found in OBJECT_STORES:
        store = OBJECT_STORES[found]
        raise ValueError(
            f"`{argument}` is {store.name} URI, and this argument reads local paths only: use a local "
            f"path, and copy the files with `{store.copy}`. Received: {argument}={os.fspath(path)!r}"
        )
    raise ValueError(f"`{argument}` must be a local path: {found}:// URIs are not supported. Received: {argument}={os.fspath(path)!r}")


def check_path_or_uri(path, argument):
    """Raises a one-line ValueError unless ``path`` is local, or a gs:// or s3:// URI whose extra is installed.

    Reads no bucket: `objects.check_bucket` does, once the extra is known to be there.
    """
    found = scheme(path)
    if found is None:
        return
    shown = f"Received: {argument}={os.fspath(path)!r}"
    store = OBJECT_STORES.get(found)
    if store is None:
        raise ValueError(f"`{argument}` must be a local path or a gs:// or s3:// URI: {found}:// is not supported. {shown}")
    if not isinstance(path, str):
        raise ValueError(f"`{argument}` must be a URI as a string: a pathlib path collapses {found}:// to {found}:/. {shown}")
    if not bucket(path):
        raise ValueError(f"`{argument}` must name a bucket, as {found}://BUCKET/FOLDER. {shown}")
    if importlib.util.find_spec(store.module) is None:
        raise ValueError(
            f"`{argument}` is {store.name} URI, which needs {store.module}: "
            f'pip install "keras-googlenet[{store.extra}]". {shown}'
        )
