"""Loading pretrained weights: parse + convert a full-size file against reading the cached .weights.h5.

    python -m benchmarks.weights_load            # full size: 53 MB caffemodel and .pth, random weights
    python -m benchmarks.weights_load --quick    # one repeat each

Each case runs in a fresh process. A case reports its median time, the peak
of Python and numpy allocations (tracemalloc) and the rise of the process's
peak RSS over its RSS before the case, both against the file's size.
Targets: the first load of either file <= 5 s on 2 cores; peak memory <= 3x
the file size. PyTorch writes the .pth (``torch.save`` of a state dict in
torchvision's layout) and is needed for that row only.
"""

import argparse
import gc
import json
import os
import resource
import sys
import tempfile
import time
import tracemalloc

from benchmarks import common

TITLE = "Loading pretrained weights (53 MB, random values)"
TARGET_FIRST_LOAD_S = 5.0
TARGET_PEAK_RATIO = 3.0


def write_files(folder):
    """A full-size bvlc_googlenet .caffemodel (V1, as the 2014 file) and torchvision .pth; returns their paths."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
    import pathlib

    import caffe_writer  # the tests' wire-format writer

    caffemodel = caffe_writer.write_caffemodel(pathlib.Path(folder) / "bvlc_googlenet.caffemodel",
                                               caffe_writer.random_bvlc_weights(seed=0), "V1")
    pth = os.path.join(folder, "googlenet.pth")
    done = common.run_in_subprocess("benchmarks.weights_load", "write_pth", {"path": pth}, env={"KERAS_BACKEND": "torch"})
    return str(caffemodel), (pth if done.get("available", True) else None), done.get("reason")


def write_pth(path):
    """torch.save of torchvision's GoogLeNet state dict, random weights (run with PyTorch)."""
    import torch

    from benchmarks.torch_googlenet import torchvision_googlenet

    torch.save(torchvision_googlenet(aux_logits=True, transform_input=True).state_dict(), path)
    return {"bytes": os.path.getsize(path)}


def _rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _reset_peak_rss():
    """Sets the process's peak RSS (VmHWM) to its current RSS; False where the kernel does not allow it.

    `getrusage`'s peak is the whole life of the process: TensorFlow's start-up
    and the warm-up model peak above the RSS measured before a case, and were
    counted as the case's rise (39.5x the file under `benchmarks.run`).
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # Linux >= 4.0: reset the peak RSS
        return True
    except OSError:
        return False


def _peak_rss_mib(reset):
    if reset:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_case(case, path, repeats=3):
    """Times one case in this process: ``parse`` (read + convert), ``first`` (GoogLeNet from the file) or ``cached``."""
    import keras_googlenet as kg
    from keras_googlenet import weights

    variant = weights.FORMAT_VARIANTS[weights.detect_format(path)] if case != "cached" else "paper"
    if case == "parse":
        step = lambda: weights.read_layer_weights(path)  # noqa: E731
    elif case == "first":
        step = lambda: kg.GoogLeNet(weights=path, variant=variant, aux_heads=variant == "paper")  # noqa: E731
    else:
        model = kg.GoogLeNet()
        step = lambda: model.load_weights(path)  # noqa: E731
    kg.GoogLeNet(variant=variant)  # TensorFlow's first graph is not the weights' cost
    gc.collect()
    reset = _reset_peak_rss()  # the baseline: after TF and Keras are initialised
    rss_before = _rss_mib()
    tracemalloc.start()
    times = []
    for _ in range(repeats):
        gc.collect()  # the previous repeat's reference cycles would count in this one's peak
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_rss = _peak_rss_mib(reset)
    return {"median_s": sorted(times)[len(times) // 2], "traced_peak_mib": traced_peak / 2**20,
            "rss_rise_mib": max(peak_rss - rss_before, 0.0)}


def run(repeats=3, **unused):
    """The benchmark part: one row per file and case, and the two goals."""
    rows, goals = [], []
    with tempfile.TemporaryDirectory() as folder:
        caffemodel, pth, pth_reason = write_files(folder)
        h5 = os.path.join(folder, "bvlc.weights.h5")
        converted = common.run_in_subprocess("benchmarks.weights_load", "convert", {"src": caffemodel, "dst": h5})
        cases = [("caffemodel", "parse", caffemodel), ("caffemodel", "first", caffemodel), ("pth", "parse", pth),
                 ("pth", "first", pth), ("weights.h5", "cached", h5 if converted.get("available", True) else None)]
        for file_kind, case, path in cases:
            name = f"{file_kind}: {case}"
            if path is None:
                rows.append(common.unavailable(name, pth_reason if file_kind == "pth" else converted.get("reason")))
                continue
            result = common.run_in_subprocess("benchmarks.weights_load", "measure_case",
                                              {"case": case, "path": path, "repeats": repeats})
            if not result.get("available", True):
                rows.append(common.unavailable(name, result["reason"]))
                continue
            size_mib = os.path.getsize(path) / 2**20
            rows.append({"case": name, "file_mib": size_mib, "median_s": result["median_s"],
                         "traced_peak_mib": result["traced_peak_mib"], "rss_rise_mib": result["rss_rise_mib"],
                         "peak_over_file": max(result["traced_peak_mib"], result["rss_rise_mib"]) / size_mib})
    for r in rows:
        if "median_s" in r and r["case"].endswith("first"):
            goals.append(common.goal(f"{r['case']} (s)", r["median_s"], f"<= {TARGET_FIRST_LOAD_S}",
                                     r["median_s"] <= TARGET_FIRST_LOAD_S, "build + parse + convert + set"))
        if "median_s" in r and r["case"].endswith("parse"):
            goals.append(common.goal(f"{r['case']} peak / file size", r["peak_over_file"], f"<= {TARGET_PEAK_RATIO}",
                                     r["peak_over_file"] <= TARGET_PEAK_RATIO, "max of tracemalloc and RSS rise"))
    return {"title": TITLE, "columns": ["case", "file_mib", "median_s", "traced_peak_mib", "rss_rise_mib", "peak_over_file"],
            "rows": rows, "goals": goals,
            "notes": ["first = GoogLeNet(weights=<file>): build the model, parse, convert, set by name",
                      "cached = model.load_weights of the converted .weights.h5 (what later weights='imagenet' calls read)"]}


def convert(src, dst):
    import keras_googlenet as kg
    from keras_googlenet import weights

    return {"converted": weights.convert_file(src, dst, build_model=kg.GoogLeNet)[0]}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.weights_load", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat per case instead of three")
    parser.add_argument("--json", help="also write the part as JSON here")
    args = parser.parse_args(argv)
    part = common.run_part("weights", run, repeats=1 if args.quick else 3)
    report = {"mode": "quick" if args.quick else "full", "repeats": 1 if args.quick else 3, "warmup": 0,
              "machine": common.machine_info(), "parts": [part], "load_average_end": os.getloadavg()}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    print(common.markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
