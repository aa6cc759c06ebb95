"""Launch multi-worker training on this machine: N processes, one TF_CONFIG each.

Each worker runs the same ``keras-googlenet train`` command with its own
TF_CONFIG; `keras_googlenet.training.run` sees a cluster of several workers and
picks MultiWorkerMirroredStrategy. Worker 0 is the chief and writes the
checkpoints, logs, curves and the backup to ``--output-dir``; the others
write theirs to scratch folders, and every worker resumes from the chief's
backup. On real machines, run the same command on each host with TF_CONFIG
naming every host and its own index, and ``--output-dir`` on a folder they
all share (see docs/beyond-one-machine.md).

    python examples/multiworker_launch.py --workers 2 -- --epochs 1 --steps-per-epoch 4 --image-size 80

Everything after ``--`` goes to ``keras-googlenet train`` (see its --help).
"""

import argparse
import os
import subprocess
import sys

from keras_googlenet.training import cluster


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="number of local worker processes (default: 2)")
    parser.add_argument("--output-dir", default="runs/multiworker", help="the chief's output folder")
    parser.add_argument("train_args", nargs="*", help="arguments for `keras-googlenet train`, after --")
    args = parser.parse_args()
    configs = cluster.local_worker_configs(args.workers)
    command = [sys.executable, "-m", "keras_googlenet.cli", "train", "--output-dir", args.output_dir, *args.train_args]
    processes = []
    for index, tf_config in enumerate(configs):
        env = {**os.environ, "TF_CONFIG": tf_config}
        # Only the chief's output is shown; the others' goes to their log files.
        output = None if index == 0 else open(f"{args.output_dir.rstrip('/')}_worker{index}.log", "w")
        processes.append(subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT if output else None))
    codes = [process.wait() for process in processes]
    print(f"Worker exit codes: {codes}")
    sys.exit(max(codes, key=abs))


if __name__ == "__main__":
    main()
