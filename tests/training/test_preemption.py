"""A preempted `train`: SIGTERM (what Kubernetes, Vertex AI and the clouds send first) backs up the step it stops at, in one line, and the same command resumes from that step.

`--backup-every` bounds what a SIGKILL, which gives no warning, costs: here into an s3:// bucket
(moto's server), resumed by a process with an empty disk of its own.
"""

import json
import os
import re
import signal
import textwrap

import pytest

from keras_googlenet import cli
from keras_googlenet.training import preemption

import lane

STEPS_PER_EPOCH = 6  # 12 images, batch 2: an epoch is one pass over them

# In the lane's folder: `train` with the stand-in network (its mechanics are
# the subject) on 12 images, each in a class of its own, so that the labels
# that the stand-in counts (`tiny_googlenet.SEEN`) name the images.
#   - "sigterm": held after step 3 of epoch 2 (1/3), sent SIGTERM there, then run again;
#   - "sigkill": into s3://runs/sigkill with --backup-every 2, held after step 3 of epoch 2,
#     killed, then run again with another TMPDIR (a new machine: nothing but the bucket).
SCRIPT = textwrap.dedent(
    """
    import json, os, pathlib, signal, subprocess, sys, time
    import local_cluster, object_stores, tiny_googlenet
    from PIL import Image

    server = object_stores.s3(".")
    os.environ.update(server.env, KERAS_GOOGLENET_LEASE_TERM_S="3")  # a killed run's lease lapses in 3 s
    object_stores.make_bucket("s3", "runs")

    for split, count in (("train", 12), ("validation", 2)):
        for index in range(count):
            folder = pathlib.Path("images", split, f"c{index:02d}")
            folder.mkdir(parents=True)
            Image.new("RGB", (8, 8), (index * 20, 0, 0)).save(folder / "image.png")  # validation: 2 of the classes

    OUTPUT = {"sigterm": "sigterm", "sigkill": "s3://runs/sigkill"}

    def run(name, *extra, hold=None):
        command = local_cluster.tiny_train_command(
            "--data", "images", "--epochs", "3", "--batch-size", "2", "--image-size", "80", "--verbose", "2",
            "--output-dir", OUTPUT[name], *extra,
        )
        seen, temporary = pathlib.Path(name + "-seen"), pathlib.Path(f"{name}-tmp-{'first' if hold else 'second'}")
        seen.mkdir(exist_ok=True)
        temporary.mkdir()
        env = {**os.environ, tiny_googlenet.SEEN: str(seen), "TMPDIR": str(temporary.resolve())}
        if hold:
            env[tiny_googlenet.HOLD] = f"1/3:{name}-held"
        return command, subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    result = {}
    for name, extra, stop in (("sigterm", (), signal.SIGTERM), ("sigkill", ("--backup-every", "2"), signal.SIGKILL)):
        command, first = run(name, *extra, hold=True)
        deadline = time.monotonic() + 240
        while not os.path.exists(f"{name}-held"):  # a file another process creates: polled
            if first.poll() is not None or time.monotonic() > deadline:
                sys.exit("the hold was not reached: " + first.stderr.read()[-3000:])
            time.sleep(0.05)
        if name == "sigkill":  # step 2's backup uploads in the background: kill once it has landed
            while object_stores.backup_point("s3://runs/sigkill") != {"epoch": 1, "batch": 2}:  # epoch 2 (1 done), step 2
                if first.poll() is not None or time.monotonic() > deadline:
                    sys.exit("step 2's backup never reached the bucket: " + first.stderr.read()[-3000:])
                time.sleep(0.05)

        def locked():  # the lock file, or the bucket's lease
            return os.path.exists(f"{name}/train.lock") or "train.lease" in object_stores.listing("s3://runs/sigkill")

        lock_held = locked()
        sent = time.monotonic()
        first.send_signal(stop)
        _, stderr = first.communicate(timeout=120)
        result[name] = {
            "returncode": first.returncode, "stderr": stderr, "seconds": time.monotonic() - sent,
            "lock_held": lock_held, "lock_left": locked(), "first_pid": first.pid,
        }
        _, second = run(name, *extra)
        stdout, second_stderr = second.communicate(timeout=240)
        result[name].update(
            second_pid=second.pid, second_returncode=second.returncode, second_stdout=stdout,
            second_stderr=second_stderr[-3000:],
        )
    result["sigkill"]["history"] = object_stores.read("s3://runs/sigkill/history.csv")
    result["sigkill"]["left_on_the_second_disk"] = [str(p) for p in pathlib.Path("sigkill-tmp-second").rglob("*") if "autograph" not in p.name]
    server.stop()
    json.dump(result, open("result.json", "w"))
    """
)


def _preempted_runs(folder):
    """A lane job: SCRIPT."""
    return [lane.python("-c", SCRIPT)]


@pytest.fixture(scope="module")
def preempted(lane_result):
    folder = lane_result(_preempted_runs)
    return json.loads((folder / "result.json").read_text()), folder


def _seen(folder, name, pid, epoch):
    path = folder / f"{name}-seen" / f"{pid}-{epoch}.json"
    return json.loads(path.read_text()) if path.exists() else [0] * 12


@pytest.mark.slow
@lane.reads(_preempted_runs)
def test_sigterm_backs_up_the_step_exits_143_in_one_line_and_releases_the_lock(preempted):
    result, _ = preempted
    run = result["sigterm"]
    assert run["returncode"] == preemption.EXIT_STATUS == 143, run["stderr"][-3000:]
    ours = [line for line in run["stderr"].splitlines() if line.startswith("keras-googlenet")]
    assert ours == [
        "keras-googlenet train: error: stopped by SIGTERM in epoch 2 after its step 3, backed up in sigterm: "
        "run the same command to resume there"
    ], run["stderr"][-3000:]
    assert "Traceback" not in run["stderr"]
    # Held by the run until the signal; a SIGKILL leaves the file behind, SIGTERM's unwinding removes it.
    assert run["lock_held"] and not run["lock_left"]
    assert run["seconds"] < 30  # within Kubernetes' default grace period


@pytest.mark.slow
@lane.reads(_preempted_runs)
def test_the_resumed_run_trains_each_image_of_the_interrupted_epoch_once(preempted):
    result, folder = preempted
    run = result["sigterm"]
    assert run["second_returncode"] == 0, run["second_stderr"]
    assert f"Resuming in epoch 2 after its step 3 of {STEPS_PER_EPOCH} from the backup" in run["second_stdout"]
    # The rest of epoch 2 is a fit of its own, still shown as one of the run's 3 epochs.
    assert re.findall(r"^Epoch (\d+/\d+)$", run["second_stdout"], re.MULTILINE) == ["2/3", "3/3"], run["second_stdout"]
    before, after = (_seen(folder, "sigterm", run[pid], 1) for pid in ("first_pid", "second_pid"))
    # Each image is its own class: 3 steps of 2 before the signal, 3 after, each image once in all.
    assert sum(before) == sum(after) == 6, (before, after)
    assert [a + b for a, b in zip(before, after)] == [1] * 12, (before, after)
    # The epochs around it are whole passes too.
    assert _seen(folder, "sigterm", run["first_pid"], 0) == [1] * 12
    assert _seen(folder, "sigterm", run["second_pid"], 2) == [1] * 12
    rows = (folder / "sigterm" / "history.csv").read_text().splitlines()
    assert [int(row.split(",")[0]) for row in rows[1:]] == [0, 1, 2]


@pytest.mark.slow
@lane.reads(_preempted_runs)
def test_after_a_sigkill_backup_every_resumes_from_the_last_backed_up_step_in_the_bucket(preempted):
    result, folder = preempted
    run = result["sigkill"]
    assert run["returncode"] == -9 and run["lock_left"]  # the lease, until it lapses
    assert run["second_returncode"] == 0, run["second_stderr"]
    assert "Fetched the run's " in run["second_stdout"]  # onto an empty disk, from the bucket
    # Steps 6 + 2 of the run: a backup; step 3 was lost with the kill.
    assert f"Resuming in epoch 2 after its step 2 of {STEPS_PER_EPOCH} from the backup" in run["second_stdout"], run["second_stdout"]
    before, after = (_seen(folder, "sigkill", run[pid], 1) for pid in ("first_pid", "second_pid"))
    assert sum(before) == 6 and sum(after) == 8  # the lost step's two images are trained again
    assert sorted(a + b for a, b in zip(before, after)) == [1] * 10 + [2] * 2
    rows = run["history"].splitlines()
    assert [int(row.split(",")[0]) for row in rows[1:]] == [0, 1, 2]
    assert run["left_on_the_second_disk"] == []  # the run's local mirror is gone once the bucket holds it


def test_a_sigterm_outside_fit_stops_at_once_and_inside_waits_for_the_end_of_the_step():
    with preemption.stop_on_sigterm():
        with pytest.raises(preemption.Preempted) as outside:
            os.kill(os.getpid(), signal.SIGTERM)
        assert outside.value.epoch is None and preemption.requested()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler before it is back
    with preemption.stop_on_sigterm():
        assert not preemption.requested()  # each run starts with no request
        with pytest.raises(preemption.Preempted) as after_fit:
            with preemption.deferred():
                os.kill(os.getpid(), signal.SIGTERM)  # only a request: the block goes on
                assert preemption.requested()
        assert after_fit.value.epoch is None  # one that came after the last step's check stops after fit


def test_backup_every_must_be_a_positive_int(capsys):
    assert cli.main(["train", "--backup-every", "0", "--output-dir", "never-made"]) == 2
    assert capsys.readouterr().err.strip() == (
        "keras-googlenet train: error: --backup-every must be an int >= 1 or None. Received: --backup-every=0"
    )


def test_a_process_whose_training_runs_in_another_thread_defers_only_while_fit_runs():
    # A Ray Train worker: Ray's handler (the fallback) exits the process; ours wraps it.
    calls = []
    with preemption.stop_on_sigterm():  # a new request flag; the handler before it is restored at the end
        signal.signal(signal.SIGTERM, preemption.deferring_to(lambda signum, frame: calls.append(signum)))
        os.kill(os.getpid(), signal.SIGTERM)
        assert calls == [signal.SIGTERM] and not preemption.requested()  # outside fit: the process's own handling
        with pytest.raises(preemption.Preempted):
            with preemption.deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                assert calls == [signal.SIGTERM] and preemption.requested()  # inside: a request, and fit goes on
