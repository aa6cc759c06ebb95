"""The background lane: child processes whose results tests only read, run one at a time beside the tests.

On 2 cores the suite's main process is one busy core; the other idles once
the digits builds (digits_models) are done, while tests such as the JAX and
torch parity checks, the scaling benchmark or the KerasHub presets wait
15-40 s each on a child of their own. Those children need nothing from the
main process, so they run in the lane instead: a test marks the job it reads,

    @lane.reads(job)  # job(folder) -> [argv or (argv, env), ...], run in order in folder
    def test_x(lane_result):
        folder = lane_result(job)

and conftest starts the lane with the session, after the digits builds, in
the order the tests come. A test that needs a job before its turn moves it
to the front. Only one lane process runs at a time, and none beside a test
marked ``alone`` (one whose own children take gigabytes: Ray's cluster,
Chromium), so that the process tree stays within its memory budget.

A job's steps run with the checkout's package (``PYTHONPATH``) and
``tests/support`` importable; their output goes to ``folder/log.txt``. A
failed step fails the tests that read the job, with the log's tail.
"""

import os
import pathlib
import subprocess
import sys
import threading
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
SUPPORT = pathlib.Path(__file__).resolve().parent


def name(job):
    """A job's name, its folder's: its function's, with a functools.partial's arguments (short words, such as a backend)."""
    args = getattr(job, "args", ())
    function = getattr(job, "func", job)
    return "_".join([function.__name__.strip("_"), *map(str, args)])


class Lane:
    def __init__(self, folder, jobs, before=None):
        """Runs ``jobs`` in ``folder/NAME`` one at a time, after ``before`` (a Popen) exits."""
        self.folder, self.before = pathlib.Path(folder), before
        # The environment as the session began: a test's monkeypatched variables (its TMPDIR,
        # an emulator's endpoint) must not reach a job that starts while it runs.
        self.environ = dict(os.environ)
        self.jobs = {name(job): job for job in jobs}
        self.pending = list(self.jobs)  # names, in order, once each
        self.done, self.failed = {}, {}
        self.condition = threading.Condition()
        self.paused, self.running, self.process = 0, None, None
        self.started = time.monotonic()
        self.events = []  # (seconds since the lane started, what happened): its waits, for the summary
        self.closed = False
        self.thread = threading.Thread(target=self._run, name="lane", daemon=True)
        self.thread.start()

    def result(self, job, timeout):
        """The job's folder once it has finished; raises with its log's tail if it failed or ran past ``timeout`` s."""
        deadline, job, asked = time.monotonic() + timeout, name(job), self.elapsed()
        with self.condition:
            if job in self.pending:  # wanted now: next in line
                self.pending.remove(job)
                self.pending.insert(0, job)
                self.condition.notify_all()
            while job not in self.done and job not in self.failed:
                if job not in self.pending and job != self.running:
                    raise RuntimeError(f"lane job {job} was never queued: mark the test that reads it with @pytest.mark.lane")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"lane job {job} took over {timeout} s")
                self.condition.wait(min(left, 5.0))
        self.waited(asked, job)
        if job in self.failed:
            raise RuntimeError(f"lane job {job} failed: {self.failed[job]}")
        return self.done[job]

    def pause(self):
        """Waits for the running job (or the process the lane waits for), and starts none until `resume`."""
        with self.condition:
            self.paused += 1
            asked = self.elapsed()
            while self.running is not None or (self.before is not None and self.before.poll() is None):
                self.condition.wait(0.5)  # `before` is another process: polled
            self.events.append((asked, f"paused for an alone test (its wait: {self.elapsed() - asked:.0f} s)"))

    def resume(self):
        with self.condition:
            self.paused -= 1
            self.events.append((self.elapsed(), "resumed"))
            self.condition.notify_all()

    def elapsed(self):
        """Seconds since the lane started (the session, near enough)."""
        return time.monotonic() - self.started

    def waited(self, since, what):
        """Adds a test's wait since ``since`` (`elapsed`) for ``what`` to the summary, if it lasted a second or more."""
        if self.elapsed() - since >= 1:
            self.events.append((since, f"a test waited {self.elapsed() - since:.0f} s for {what}"))

    def close(self):
        with self.condition:
            self.closed = True
            self.condition.notify_all()
            process = self.process
        if process and process.poll() is None:
            process.kill()
            process.wait()
        self.thread.join(timeout=30)

    def _run(self):
        if self.before is not None:
            self.before.wait()
            self.events.append((self.elapsed(), "the digits builds ended"))
        while True:
            with self.condition:
                while not self.closed and (self.paused or not self.pending):
                    self.condition.wait()
                if self.closed:
                    return
                job = self.running = self.pending.pop(0)
            outcome = self._run_job(job)
            with self.condition:
                self.running = None
                (self.done if isinstance(outcome, pathlib.Path) else self.failed)[job] = outcome
                self.condition.notify_all()

    def _run_job(self, job):
        """The job's folder, or why it failed."""
        folder = self.folder / job
        try:
            folder.mkdir(parents=True)
            steps = self.jobs[job](folder)
            env = {**self.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), str(SUPPORT), self.environ.get("PYTHONPATH")]))}
            # One op at a time per TensorFlow process (each op still uses both cores): the
            # README's snippet, 224 px at batch 32, peaked at 3.16 GB with TF's default, 2.74
            # with this, and ran 12% faster beside the main process's tests.
            env.setdefault("TF_NUM_INTEROP_THREADS", "1")
            with open(folder / "log.txt", "w") as log:
                for step in steps:
                    argv, extra_env = step if isinstance(step, tuple) else (step, {})
                    log.write(f"$ {' '.join(map(str, argv))}\n")
                    log.flush()
                    with self.condition:
                        if self.closed:
                            return "the session ended first"
                        self.process = subprocess.Popen(argv, cwd=folder, env={**env, **extra_env}, stdout=log, stderr=subprocess.STDOUT)
                    started = time.monotonic()
                    returncode = self.process.wait()
                    seconds = time.monotonic() - started
                    log.write(f"# {seconds:.1f} s\n")
                    self.events.append((started - self.started, f"{seconds:6.1f} s  {job}"))
                    if returncode != 0:
                        log.flush()
                        tail = (folder / "log.txt").read_text()[-3000:]
                        return f"{argv[:3]} exited with {returncode}; the log ({folder / 'log.txt'}) ends:\n{tail}"
        except Exception as error:  # the job's own function: reported to its tests, not lost in this thread
            return f"{type(error).__name__}: {error}"
        return folder


    def summary(self):
        """One line per step run (its start, seconds and job) and per wait, in the order they began."""
        # Not the step's peak RSS: os.wait4's ru_maxrss starts at the forking process's own (pytest's).
        return [f"at {at:5.0f} s  {what}" for at, what in sorted(self.events)]


def reads(job):
    """The mark of a test that reads ``job``: ``pytest.mark.lane(job)``, which would take a lone function for the test."""
    import pytest

    return pytest.mark.lane.with_args(job)


def python(*args):
    """An argv that runs this interpreter."""
    return [sys.executable, *map(str, args)]
