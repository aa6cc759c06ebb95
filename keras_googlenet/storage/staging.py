"""A command's gs:// and s3:// arguments, staged on the local disk around it.

`export`, `verify`, `predict` and `evaluate` hand their files to libraries
that read and write local paths only: Keras, LiteRT, onnxruntime, tf2onnx,
Pillow. (TensorFlow's own gs:// cannot be pointed at an emulator or another
endpoint, and it has no s3:// since TF 2.6.) So a `Staging` copies what a
command reads from a bucket into a temporary folder before it runs, gives it
a local folder for what it writes, and uploads that folder once the command
has succeeded. A command that fails uploads nothing: its inputs are still
in the bucket, and a half-written export never reaches it.

Training writes a run that outlives many uploads, with a lease: it has its
own `mirror`.
"""

import os
import pathlib
import shutil
import tempfile

from keras_googlenet import storage
from keras_googlenet.storage import objects


class Staging:
    """A temporary folder holding the local copies of a command's URIs; `close` deletes it."""

    def __init__(self):
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="keras_googlenet_stage_"))
        self._outputs = []  # (local path, URI), uploaded by `upload`
        self._uris = {}  # local path -> URI, for `shown`
        self._keep = False

    def fetch(self, uri, argument, beside=()):
        """The local path of a copy of the object or the folder at ``uri``.

        A single file comes with the files named in ``beside`` that sit next
        to it in the bucket (``labels.txt`` beside a checkpoint). Raises a
        one-line error naming ``argument`` when nothing is at ``uri``.
        """
        objects.check_bucket(uri, argument)
        local, found = self._place(uri), objects.kind(uri)
        if found == "folder":
            objects.download_tree(uri, local)
        elif found == "file":
            objects.download_file(uri, local)
            folder = uri.rstrip("/").rsplit("/", 1)[0]
            for name in beside:
                if objects.kind(storage.join(folder, name)) == "file":
                    objects.download_file(storage.join(folder, name), local.parent / name)
        else:
            raise FileNotFoundError(f"`{argument}`: no object or folder at {uri}. Received: {argument}={uri!r}")
        return str(local)

    def output(self, uri, argument):
        """A local path, not yet created, whose file or folder `upload` sends to ``uri``."""
        objects.check_bucket(uri, argument)
        local = self._place(uri)
        self._outputs.append((local, uri.rstrip("/")))
        return str(local)

    def upload(self):
        """Uploads each output that the command wrote, one object per file.

        Raises a one-line OSError naming the local copy when an upload fails
        (the clients have retried already); `close` then keeps it.
        """
        for local, uri in self._outputs:
            try:
                if local.is_dir():
                    objects.upload_tree(local, uri)
                elif local.is_file():
                    objects.upload_file(local, uri)
            except Exception as error:  # noqa: BLE001  gcsfs, s3fs and their HTTP layers raise their own
                self._keep = True
                copy = storage.OBJECT_STORES[storage.scheme(uri)].copy
                raise OSError(
                    f"Could not upload to {uri} ({objects.describe(error)}); the files are in {local}: "
                    f"copy them with `{copy} {local} {uri}`."
                ) from None

    def shown(self, text):
        """``text`` with each local copy's path replaced by its URI, for what the command prints."""
        for local, uri in sorted(self._uris.items(), key=lambda item: -len(item[0])):
            text = text.replace(local, uri)
        return text

    def close(self):
        """Deletes the local copies, unless an upload failed and they are the only ones."""
        if not self._keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def _place(self, uri):
        """A path in the folder, named after ``uri``'s last part so that the libraries see the same name."""
        name = uri.rstrip("/").rsplit("/", 1)[-1] or storage.bucket(uri)
        local = self.root / storage.digest(uri) / name
        local.parent.mkdir(parents=True, exist_ok=True)
        self._uris[os.fspath(local)] = uri.rstrip("/")
        return local
