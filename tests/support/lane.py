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
Chromium), so that the process tree stays within its memory budget. A job
marked `light` (near 1 GiB) may also run in a test that waits on the lane,
beside another light one (`Lane.result`).

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
        self.light = {name(job) for job in jobs if getattr(job, "lane_light", False)}
        self.pending = list(self.jobs)  # names, in order, once each
        self.done, self.failed = {}, {}
        self.condition = threading.Condition()
        self.paused, self.running = 0, None  # `running`: the lane thread's job
        self.helping = set()  # light jobs that a waiting test runs itself (`result`)
        self.processes = set()
        self.steps = []  # (job, seconds) per step run
        self.started = time.monotonic()
        self.events = []  # (seconds since the lane started, what happened): its waits, for the summary
        self.closed = False
        self.thread = threading.Thread(target=self._run, name="lane", daemon=True)
        self.thread.start()

    def result(self, job, timeout):
        """The job's folder once it has finished; raises with its log's tail if it failed or ran past ``timeout`` s.

        While it waits, the calling thread runs a light job that is still
        pending beside the lane's own, if that one is light too (`light`):
        at the session's end the main process would otherwise idle while the
        lane runs its last jobs one by one.
        """
        deadline, job, asked = time.monotonic() + timeout, name(job), self.elapsed()
        with self.condition:
            if job in self.pending:  # wanted now: next in line
                self.pending.remove(job)
                self.pending.insert(0, job)
                self.condition.notify_all()
        while True:
            with self.condition:
                if job in self.done or job in self.failed:
                    break
                if job not in self.pending and job != self.running and job not in self.helping:
                    raise RuntimeError(f"lane job {job} was never queued: mark the test that reads it with @pytest.mark.lane")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"lane job {job} took over {timeout} s")
                helped = self._light_job_to_run_here()
                if helped is None:
                    self.condition.wait(min(left, 5.0))
                    continue
                beside = self.running
            started = self.elapsed()
            self._finish(helped, self._run_job(helped))
            self.events.append((started, f"{self.elapsed() - started:6.1f} s  {helped}, run by a waiting test beside {beside}"))
        if self.elapsed() - asked >= 1:
            self.events.append((asked, f"a test waited {self.elapsed() - asked:.0f} s for {job}"))
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

    def close(self):
        with self.condition:
            self.closed = True
            self.condition.notify_all()
            processes = list(self.processes)
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        self.thread.join(timeout=30)

    def _light_job_to_run_here(self):
        """A pending light job, taken from the queue, if the lane's own job is light too; called with the lock held."""
        # Two light jobs beside the main process stay within the memory budget;
        # a heavy one (a real network at 224 px, KerasHub's loaders) does not.
        if self.paused or self.running not in self.light:
            return None
        job = next((job for job in self.pending if job in self.light), None)
        if job is not None:
            self.pending.remove(job)
            self.helping.add(job)
        return job

    def _finish(self, job, outcome):
        with self.condition:
            self.helping.discard(job)
            if self.running == job:
                self.running = None
            (self.done if isinstance(outcome, pathlib.Path) else self.failed)[job] = outcome
            self.condition.notify_all()

    def _run(self):
        if self.before is not None:
            self.before.wait()
            self.events.append((self.elapsed(), "the digits builds ended"))
        while True:
            with self.condition:
                # A heavy job waits for the light one that a test runs itself.
                while not self.closed and (self.paused or not self.pending or (self.helping and self.pending[0] not in self.light)):
                    self.condition.wait()
                if self.closed:
                    return
                job = self.running = self.pending.pop(0)
            self._finish(job, self._run_job(job))

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
                        process = subprocess.Popen(argv, cwd=folder, env={**env, **extra_env}, stdout=log, stderr=subprocess.STDOUT)
                        self.processes.add(process)
                    started = time.monotonic()
                    returncode = process.wait()
                    with self.condition:
                        self.processes.discard(process)
                    seconds = time.monotonic() - started
                    log.write(f"# {seconds:.1f} s\n")
                    if threading.current_thread() is self.thread:
                        self.events.append((started - self.started, f"{seconds:6.1f} s  {job}"))
                    self.steps.append((job, seconds))
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


def light(job):
    """Marks ``job`` light (its processes stay near 1 GiB PSS): a test waiting on the lane may run it beside another light one."""
    job.lane_light = True
    return job


def reads(job):
    """The mark of a test that reads ``job``: ``pytest.mark.lane(job)``, which would take a lone function for the test."""
    import pytest

    return pytest.mark.lane.with_args(job)


def python(*args):
    """An argv that runs this interpreter."""
    return [sys.executable, *map(str, args)]
