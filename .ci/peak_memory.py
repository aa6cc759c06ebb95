"""Runs a command and prints the peak resident memory of its whole process tree.

    python .ci/peak_memory.py -- python -m pytest -q

`/usr/bin/time -v` reports only the largest single process; the test suite
starts children (cluster workers, Ray, Chromium, the emulators), so this
samples the tree with psutil every 0.2 s and sums it. CONTRIBUTING records
the figures (issue 34's budget: 6 GB).
"""

import subprocess
import sys
import threading
import time

import psutil


def tree_rss(process):
    """The summed RSS in bytes of a process and all its descendants (vanished ones count 0)."""
    total = 0
    try:
        members = [process] + process.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def main(command):
    child = subprocess.Popen(command)
    root = psutil.Process(child.pid)
    peak = [0, 0.0]
    done = threading.Event()

    def sample():
        start = time.monotonic()
        while not done.wait(0.2):
            rss = tree_rss(root)
            if rss > peak[0]:
                peak[:] = [rss, time.monotonic() - start]

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = child.wait()
    done.set()
    sampler.join()
    print(f"peak tree RSS: {peak[0] / 2**30:.2f} GiB at {peak[1]:.0f} s", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments[:1] == ["--"]:
        arguments = arguments[1:]
    sys.exit(main(arguments))
