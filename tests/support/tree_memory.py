"""A pytest plugin: the peak memory of the whole process tree, and the tests it happened in.

    python -m pytest -p tree_memory

`/usr/bin/time -v` reports only the largest single process; the suite starts
children (the digits builds, cluster workers, Ray, Chromium), so a sampler
process reads pytest's process and all its descendants with psutil every
second. It sums RSS, which counts the shared libraries that each TensorFlow
process maps (about 0.5 GB) once per process, and PSS, which shares them out:
the memory the tree really holds. The summary names the tests during which
each peaked. The sampler is a process of its own because reading a large
process's smaps holds the GIL for about 0.1 s. CONTRIBUTING records the
figures (the budget is 6 GB).
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

GIB = 2**30


def sample(pid, folder):
    """Runs in the sampler process until ``pid`` exits or ``folder/stop`` appears; writes ``folder/peaks.json``."""
    import psutil

    root, me = psutil.Process(pid), os.getpid()
    peaks, by_test = {"rss": [0, ""], "pss": [0, ""]}, {}
    # TREE_MEMORY_TIMELINE=FILE: one line a second, seconds, pytest's own PSS, the tree's PSS (GiB), the test.
    timeline = open(os.environ["TREE_MEMORY_TIMELINE"], "w", buffering=1) if os.environ.get("TREE_MEMORY_TIMELINE") else None
    started = time.monotonic()
    while root.is_running() and not (folder / "stop").exists():
        test = (folder / "current").read_text() if (folder / "current").exists() else "(collection)"
        rss = pss = own = 0
        for member in [root] + root.children(recursive=True):
            try:
                if member.pid != me:
                    full = member.memory_full_info()
                    rss, pss = rss + full.rss, pss + full.pss
                    own = full.pss if member.pid == pid else own
            except psutil.Error:
                pass
        by_test[test] = max(by_test.get(test, 0), pss)
        if timeline:
            timeline.write(f"{time.monotonic() - started:.0f}\t{own / GIB:.2f}\t{pss / GIB:.2f}\t{test}\n")
        for key, value in (("rss", rss), ("pss", pss)):
            if value > peaks[key][0]:
                peaks[key] = [value, test]
        (folder / "peaks.tmp").write_text(json.dumps({"peaks": peaks, "by_test": by_test}))
        os.replace(folder / "peaks.tmp", folder / "peaks.json")
        time.sleep(1.0)


class TreeMemory:
    def __init__(self):
        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="tree_memory_"))
        self.sampler = subprocess.Popen([sys.executable, __file__, str(os.getpid()), str(self.folder)])

    def test_started(self, nodeid):
        (self.folder / "current").write_text(nodeid)

    def report(self):
        (self.folder / "stop").touch()
        self.sampler.wait(timeout=30)
        found = json.loads((self.folder / "peaks.json").read_text())
        lines = [f"peak tree {key.upper()}: {value / GIB:.2f} GiB, during {test}" for key, (value, test) in found["peaks"].items()]
        top = sorted(found["by_test"].items(), key=lambda item: -item[1])[:10]
        return lines + ["tests with the largest tree PSS:"] + [f"  {value / GIB:5.2f} GiB  {test}" for test, value in top]


_monitor = None


def pytest_configure(config):
    global _monitor
    if not hasattr(config, "workerinput"):  # under pytest-xdist: the controller, whose tree holds the workers
        _monitor = TreeMemory()


def pytest_runtest_logstart(nodeid, location):
    if _monitor:
        _monitor.test_started(nodeid)


def pytest_terminal_summary(terminalreporter):
    if _monitor:
        for line in _monitor.report():
            terminalreporter.write_line(line)


if __name__ == "__main__":
    sample(int(sys.argv[1]), pathlib.Path(sys.argv[2]))
