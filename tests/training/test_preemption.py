"""A preempted `train`: SIGTERM (what Kubernetes, Vertex AI and the clouds send first) ends it in one line, and the same command resumes."""

import json
import textwrap

import pytest

from keras_googlenet import cli

import lane

# In the lane's folder: `train` with the stand-in network (its mechanics are
# the subject), held after the whole end of its first epoch, is sent SIGTERM
# there; then the same command runs again.
SCRIPT = textwrap.dedent(
    """
    import json, os, signal, subprocess, sys, time
    import local_cluster, tiny_googlenet

    command = local_cluster.tiny_train_command(
        "--epochs", "3", "--steps-per-epoch", "1", "--batch-size", "2", "--image-size", "80",
        "--validation-split", "none", "--verbose", "2", "--output-dir", "run",
    )
    first = subprocess.Popen(
        command, env={**os.environ, tiny_googlenet.HOLD: "0:held"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 240
    while not os.path.exists("held"):  # a file another process creates: polled
        if first.poll() is not None or time.monotonic() > deadline:
            sys.exit("the first epoch did not end: " + first.stderr.read()[-3000:])
        time.sleep(0.05)
    lock_held = os.path.exists("run/train.lock")
    sent = time.monotonic()
    first.send_signal(signal.SIGTERM)
    _, stderr = first.communicate(timeout=120)
    result = {
        "returncode": first.returncode, "stderr": stderr, "seconds": time.monotonic() - sent,
        "lock_held": lock_held, "lock_left": os.path.exists("run/train.lock"),
    }
    second = subprocess.run(command, capture_output=True, text=True, timeout=240)
    result.update(second_returncode=second.returncode, second_stdout=second.stdout, second_stderr=second.stderr[-3000:])
    json.dump(result, open("result.json", "w"))
    """
)


def _terminated_run(folder):
    """A lane job: SCRIPT."""
    return [lane.python("-c", SCRIPT)]


@pytest.fixture(scope="module")
def terminated(lane_result):
    folder = lane_result(_terminated_run)
    return json.loads((folder / "result.json").read_text()), folder / "run"


@pytest.mark.slow
@lane.reads(_terminated_run)
def test_sigterm_exits_143_in_one_line_and_releases_the_lock(terminated):
    result, run = terminated
    assert result["returncode"] == cli.TERMINATED_STATUS == 143, result["stderr"][-3000:]
    ours = [line for line in result["stderr"].splitlines() if line.startswith("keras-googlenet")]
    assert ours == [
        "keras-googlenet train: error: stopped by SIGTERM; the backup in run holds the last finished epoch: "
        "run the same command to resume there"
    ], result["stderr"][-3000:]
    assert "Traceback" not in result["stderr"]
    # Held by the run until the signal; a SIGKILL leaves the file behind, SIGTERM's unwinding removes it.
    assert result["lock_held"] and not result["lock_left"]
    assert result["seconds"] < 30  # within Kubernetes' default grace period


@pytest.mark.slow
@lane.reads(_terminated_run)
def test_the_same_command_resumes_after_the_epoch_the_sigterm_interrupted(terminated):
    result, run = terminated
    assert result["second_returncode"] == 0, result["second_stderr"]
    assert "Resuming after epoch 1 from the backup" in result["second_stdout"]
    rows = (run / "history.csv").read_text().splitlines()
    assert [int(row.split(",")[0]) for row in rows[1:]] == [0, 1, 2]
