"""A cluster of local `keras-googlenet train` processes, one TF_CONFIG each, for the multi-worker tests.

Each task runs in its own process group with its output in a log file (a
full pipe would block it), and `LocalCluster.close` kills every group, so
that no task outlives its test.
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def tf_configs(tasks):
    """``[(task_type, index, TF_CONFIG)]`` for a cluster of ``{task_type: count}`` on 127.0.0.1 (free ports)."""
    sockets = [socket.socket() for _ in range(sum(tasks.values()))]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        ports = iter(sock.getsockname()[1] for sock in sockets)
        cluster = {task_type: [f"127.0.0.1:{next(ports)}" for _ in range(count)] for task_type, count in tasks.items()}
    finally:
        for sock in sockets:
            sock.close()
    return [
        (task_type, index, json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}}))
        for task_type, addresses in cluster.items()
        for index in range(len(addresses))
    ]


def train_command(*args):
    return [sys.executable, "-m", "keras_googlenet.cli", "train", *args]


def tiny_train_command(*args):
    """`train_command` with `tiny_googlenet`'s stand-in for the network: for the tests of the mechanics."""
    return [sys.executable, str(pathlib.Path(__file__).with_name("tiny_googlenet.py")), "train", *args]


class LocalCluster:
    """Starts ``command`` once per TF_CONFIG of ``configs``; ``temporary`` is every task's TMPDIR.

    ``task_env`` maps a task's name (``"worker1"``) to more environment variables for it.
    """

    def __init__(self, configs, command, log_dir, temporary, task_env=None):
        self.names, self.logs, self.processes = [], [], []
        for task_type, index, tf_config in configs:
            name = f"{task_type}{index}"
            log = pathlib.Path(log_dir) / f"{name}.log"
            with open(log, "a") as file:  # the child keeps its own copy of the descriptor
                self.processes.append(
                    subprocess.Popen(
                        command, cwd=REPO_ROOT, stdout=file, stderr=subprocess.STDOUT, start_new_session=True,
                        env={
                            **os.environ, "TF_CONFIG": tf_config, "TMPDIR": str(temporary), "PYTHONUNBUFFERED": "1",
                            **(task_env or {}).get(name, {}),
                        },
                    )
                )
            self.names.append(name)
            self.logs.append(log)

    def log(self, name):
        return self.logs[self.names.index(name)].read_text()

    def wait(self, timeout):
        """The exit codes of every task, waiting at most ``timeout`` seconds in all (None: still running)."""
        deadline = time.monotonic() + timeout
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        return [process.poll() for process in self.processes]

    def kill(self, name):
        process = self.processes[self.names.index(name)]
        _kill_group(process)
        process.wait()
        return process.returncode

    def close(self):
        for process in self.processes:
            _kill_group(process)
            process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def report(self):
        return "\n".join(f"--- {name}:\n{log.read_text()[-3000:]}" for name, log in zip(self.names, self.logs))


def _kill_group(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the process and anything it started
    except ProcessLookupError:
        pass
