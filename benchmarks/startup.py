"""Start-up time of the command line: `keras-googlenet --help` and an argument error.

Each case runs in a fresh Python process (as a user's shell does), three
times; the median wall time is printed. The goal (issue 12) is at most 1 s:
neither needs Keras or TensorFlow, which take seconds to import.

    python -m benchmarks.startup
"""

import os
import pathlib
import statistics
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
CASES = {
    "keras-googlenet --help": ["--help"],
    "keras-googlenet train --help": ["train", "--help"],
    "keras-googlenet export --format coreml (argument error)": ["export", "best.keras", "--format", "coreml"],
    # Checked by the library, before TensorFlow (issue 18): creates nothing.
    "keras-googlenet train --epochs -1 (value error)": ["train", "--epochs", "-1"],
    "keras-googlenet train --data /nonexistent (missing folder)": ["train", "--data", "/nonexistent"],
    "import keras_googlenet": None,
}
GOAL_S = 1.0


def time_command(argv, runs=3):
    """Median wall seconds of ``python -m keras_googlenet.cli ARGV`` (or of the bare import) over ``runs``."""
    command = [sys.executable, "-c", "import keras_googlenet"] if argv is None else [
        sys.executable, "-m", "keras_googlenet.cli", *argv]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    for case, argv in CASES.items():
        median = time_command(argv)
        print(f"{median:6.3f} s  {'ok ' if median <= GOAL_S else 'SLOW'}  {case}")


if __name__ == "__main__":
    main()
