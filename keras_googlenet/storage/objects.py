"""Objects in gs:// and s3:// buckets through fsspec's gcsfs and s3fs.

Credentials and endpoints come from the clients' own chains, so that nothing
here is new to a user of pandas, Hugging Face datasets or Ray on the same
buckets: Application Default Credentials for GCS (``STORAGE_EMULATOR_HOST``
for an emulator), the AWS chain and environment for S3 (``AWS_ENDPOINT_URL``
for MinIO, Ceph or an emulator). Both clients retry throttling (429, 503)
and dropped connections with backoff themselves.

Each upload is one object, which a reader sees whole or not at all: no
partial file is ever visible under its final name.
"""

import logging
import os
import pathlib

from keras_googlenet import storage

_GCSFS_NOISE = "Could not determine bucket type"  # gcsfs' probe for zonal buckets, at WARNING on every bucket


class _DropGcsfsProbe(logging.Filter):
    def filter(self, record):
        return not record.getMessage().startswith(_GCSFS_NOISE)


def filesystem(uri):
    """The fsspec filesystem of ``uri``'s scheme (its extra must be installed: `storage.check_path_or_uri`)."""
    import fsspec

    logger = logging.getLogger("gcsfs")
    if not any(isinstance(f, _DropGcsfsProbe) for f in logger.filters):
        logger.addFilter(_DropGcsfsProbe())
    found = storage.scheme(uri)
    if found == "gs" and os.environ.get("STORAGE_EMULATOR_HOST"):
        # An emulator (fake-gcs-server) has GCS's JSON API only. gcsfs' default class
        # also probes each bucket's layout through the Storage Control gRPC API, over
        # TLS, retrying for minutes; and an emulator checks no credentials, which gcsfs
        # would otherwise look for (the metadata server first, a warning per try).
        from gcsfs.core import GCSFileSystem

        return GCSFileSystem(token="anon")
    return fsspec.filesystem(found)


def key(uri):
    """``uri`` without its scheme, as fsspec names objects: ``bucket/a/b``."""
    return uri.split("://", 1)[1].rstrip("/")


def check_bucket(uri, argument):
    """Raises a one-line ValueError naming the bucket when it does not exist or cannot be read."""
    name, shown = storage.bucket(uri), f"Received: {argument}={uri!r}"
    try:
        found = filesystem(uri).exists(name)
    except Exception as error:  # noqa: BLE001  each client has its own: RefreshError, ClientError, aiohttp's...
        raise ValueError(
            f"`{argument}`: the bucket {name!r} could not be reached ({describe(error)}); check the "
            f"credentials and the network. {shown}"
        ) from None
    if not found:
        raise ValueError(
            f"`{argument}`: the bucket {name!r} does not exist, or these credentials cannot see it; "
            f"create it first. {shown}"
        )


def describe(error):
    """``Type: first line`` of an exception, for one-line messages."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def download_tree(uri, local_dir, skip=()):
    """Copies every object under ``uri`` into ``local_dir``, keeping their relative paths; returns those paths.

    Objects whose relative path starts with one of ``skip`` are left. Each
    file is written beside its final name and renamed, so that a download
    cut short leaves no partial file under a name the run trusts.
    """
    fs, root = filesystem(uri), key(uri)
    local_dir = pathlib.Path(local_dir)
    copied = []
    for remote in sorted(fs.find(root)):
        relative = remote[len(root):].lstrip("/")
        if not relative or relative.startswith(tuple(skip)):
            continue
        _get(fs, remote, local_dir / relative)
        copied.append(relative)
    return copied


def download_file(uri, local_path):
    """Copies the object at ``uri`` to ``local_path``, which appears only once it is whole."""
    _get(filesystem(uri), key(uri), pathlib.Path(local_path))


def _get(fs, remote, target):
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".download-{target.name}")
    fs.get_file(remote, str(partial))
    os.replace(partial, target)


def upload_file(local_path, uri):
    """Uploads one file as one object at ``uri``."""
    filesystem(uri).put_file(os.fspath(local_path), key(uri))


def upload_tree(local_dir, uri):
    """Uploads every file under ``local_dir`` to ``uri``, keeping their relative paths; returns those paths."""
    local_dir = pathlib.Path(local_dir)
    relatives = sorted(path.relative_to(local_dir).as_posix() for path in local_dir.rglob("*") if path.is_file())
    for relative in relatives:
        upload_file(local_dir / relative, storage.join(uri, relative))
    return relatives


def remove_tree(uri):
    """Deletes every object under ``uri/``; nothing there is not an error."""
    fs, root = filesystem(uri), key(uri)
    if fs.isdir(root):
        fs.rm(root, recursive=True)


def kind(uri):
    """``"folder"`` when objects exist under ``uri/``, ``"file"`` when an object is at ``uri``, else None."""
    fs, name = filesystem(uri), key(uri)
    if fs.isfile(name):
        return "file"
    return "folder" if fs.isdir(name) else None
