"""One writer per run folder in a bucket: a lease object, renewed while the run lives and taken over once it lapses.

A local folder has `flock`, which the kernel drops when its holder dies. An
object store has no lock, and a create-if-absent lock object would outlive a
``kill -9`` for ever. So the run writes ``train.lease`` (its holder and the
time it lapses) and rewrites it every `RENEW_FRACTION` of its term; a run
that finds a lapsed lease takes it over by compare-and-swap, which the stores
guarantee: GCS's ``ifGenerationMatch`` and S3's ``If-Match`` (``0`` and
``If-None-Match: *`` for a first lease). Of two runs that both find it lapsed,
one write wins and the other is refused. A holder whose renewal is refused
has been taken over (it was stopped longer than the term): `Lease.lost`
says so, and training stops before it writes again.

The term is compared across machines: their clocks must agree to well
within it (NTP gives milliseconds; the default term is a minute).
"""

import json
import os
import socket
import threading
import time
import uuid

from keras_googlenet import storage
from keras_googlenet.storage import objects

LEASE_FILE = "train.lease"
TERM_S = float(os.environ.get("KERAS_GOOGLENET_LEASE_TERM_S", 60))  # the tests shorten it
RENEW_FRACTION = 0.25


class Conflict(Exception):
    """The object changed since it was read (or exists, for a first write)."""


def _gcs_read(fs, bucket, key):
    headers, contents = fs.call("GET", "b/{}/o/{}", bucket, key, alt="media")
    return contents, headers["x-goog-generation"]


def _gcs_write(fs, bucket, key, data, version):
    """A multipart upload, the kind on which GCS (and fake-gcs-server) check ``ifGenerationMatch``."""
    metadata = json.dumps({"name": key})
    body = (
        f"--lease\nContent-Type: application/json; charset=UTF-8\n\n{metadata}\n--lease\n"
        "Content-Type: application/json\n\n"
    ).encode() + data + b"\n--lease--"
    try:
        out = fs.call(
            "POST", f"{fs._location}/upload/storage/v1/b/{bucket}/o", uploadType="multipart",
            ifGenerationMatch=str(version or 0), headers={"Content-Type": 'multipart/related; boundary="lease"'},
            data=body, json_out=True,
        )
    except FileExistsError:  # gcsfs' name for 412 Precondition Failed
        raise Conflict from None
    return out["generation"]


def _s3_read(fs, bucket, key):
    path = f"{bucket}/{key}"
    version = fs.info(path, refresh=True)["ETag"]  # before the body: a newer body only makes the swap fail
    return fs.cat_file(path), version


def _s3_write(fs, bucket, key, data, version):
    condition = {"IfMatch": version} if version else {"IfNoneMatch": "*"}
    try:
        out = fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, **condition)
    except OSError as error:  # s3fs turns botocore's ClientError into an OSError, the ClientError its cause
        if _s3_code(error) in ("PreconditionFailed", "ConditionalRequestConflict"):  # 412, and 409 for a race
            raise Conflict from None
        raise
    fs.invalidate_cache(f"{bucket}/{key}")
    return out["ETag"]


def _s3_code(error):
    """The S3 error code behind an exception s3fs raised, or None."""
    for cause in (error, error.__cause__, error.__context__):
        code = getattr(cause, "response", {}).get("Error", {}).get("Code")
        if code:
            return code
    return None


_STORES = {"gs": (_gcs_read, _gcs_write), "s3": (_s3_read, _s3_write)}


class Lease:
    """The lease on ``uri`` (a run folder); `acquire` it, and `release` it when the run ends."""

    def __init__(self, uri, term_s=None):
        self.uri = uri.rstrip("/")
        self.term_s = TERM_S if term_s is None else term_s
        self.holder = {"host": socket.gethostname(), "pid": os.getpid(), "id": uuid.uuid4().hex}
        self.lost = False
        self._fs = objects.filesystem(uri)
        self._bucket, _, folder = objects.key(uri).partition("/")
        self._key = "/".join(filter(None, [folder, LEASE_FILE]))
        self._read, self._write = _STORES[storage.scheme(uri)]
        self._version, self._stop = None, threading.Event()
        self._renewer = None

    def acquire(self, argument="output_dir", say=print):
        """Takes the lease, then renews it in a thread; raises a one-line ValueError while another run holds it.

        A lease that is neither lapsed nor released may belong to a run that
        was killed: this waits, until the holder renews it (it is alive:
        refused, within a quarter of the term) or it lapses (taken over,
        within one term).
        """
        try:
            self._version = self._write(self._fs, self._bucket, self._key, self._encoded(), None)
        except Conflict:
            self._take_over(argument, say)
        self._renewer = threading.Thread(target=self._renew_until_stopped, name="lease", daemon=True)
        self._renewer.start()
        return self

    def _take_over(self, argument, say):
        current, version = self._current()
        seen, announced = version, False
        while current and not current.get("released") and current.get("expires", 0) > time.time():
            if version != seen:  # renewed: its holder is alive
                raise ValueError(
                    f"Another run holds {self.uri} (host {current.get('host')!r}, pid {current.get('pid')}) and "
                    f"renews its lease: wait for it to end, or train into another folder. "
                    f"Received: {argument}={self.uri!r}"
                )
            if not announced:
                say(
                    f"Waiting up to {current['expires'] - time.time():.0f} s for the lease of the run that wrote "
                    f"{self.uri} (host {current.get('host')!r}, pid {current.get('pid')}) to lapse: that run may have been killed."
                )
                announced = True
            time.sleep(min(1.0, self.term_s * RENEW_FRACTION / 4))
            current, version = self._current()
        try:  # lapsed, released or gone: take it over, unless another run just did
            self._version = self._write(self._fs, self._bucket, self._key, self._encoded(), version)
        except Conflict:
            raise ValueError(
                f"Another run took over {self.uri} a moment ago: train into another folder. Received: {argument}={self.uri!r}"
            ) from None

    def release(self):
        """Stops renewing and marks the lease released, unless it was lost meanwhile."""
        self._stop.set()
        if self._renewer:
            self._renewer.join()
        if self._version is not None and not self.lost:
            try:
                self._write(self._fs, self._bucket, self._key, self._encoded(released=True), self._version)
            except Conflict:
                self.lost = True

    def _renew_until_stopped(self):
        while not self._stop.wait(self.term_s * RENEW_FRACTION):
            try:
                self._version = self._write(self._fs, self._bucket, self._key, self._encoded(), self._version)
            except Conflict:
                self.lost = True
                return
            except Exception:  # noqa: BLE001  a transient failure: the next renewal tries again within the term
                continue

    def _body(self, released=False):
        return {**self.holder, "expires": time.time() + self.term_s, **({"released": True} if released else {})}

    def _encoded(self, released=False):
        return json.dumps(self._body(released)).encode()

    def _current(self):
        try:
            contents, version = self._read(self._fs, self._bucket, self._key)
        except FileNotFoundError:
            return None, None
        try:
            return json.loads(contents), version
        except ValueError:
            return None, version  # not ours to read: treated as lapsed
