"""What every benchmark shares: timing, the machine, subprocesses and the report.

A part is a function returning a dict:
``{"title", "reference", "ratio", "rows": [...], "goals": [...], "notes": [...]}``.
Each row is ``{"case", "batch", "median_ms", "images_per_s", "ratio", ...}`` or
``{"case", "available": False, "reason"}``; each goal is
``{"goal", "value", "target", "met", "why"}``. `markdown` renders any of them.
"""

import importlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import traceback

# "Going deeper with convolutions", Section 5: "1.5 billion multiply-adds" per
# image at inference; one multiply-add is two floating-point operations.
PAPER_FLOPS_PER_IMAGE = 2 * 1.5e9

QUICK = {"warmup": 1, "repeats": 3}
FULL = {"warmup": 2, "repeats": 7}


def measure(fn, warmup, repeats):
    """Median wall time of ``fn()`` after ``warmup`` untimed calls.

    ``fn`` must block until its result exists (call ``.numpy()`` or similar).
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "times_s": times}


def row(case, batch, timing, reference_s=None, **extra):
    """A table row from a `measure` result; ``ratio`` is time over the reference's time."""
    median = timing["median_s"]
    result = {
        "case": case,
        "batch": batch,
        "median_ms": 1e3 * median,
        "min_ms": 1e3 * min(timing["times_s"]),
        "images_per_s": batch / median,
        "ratio": median / reference_s if reference_s else None,
        "repeats_ms": [1e3 * t for t in timing["times_s"]],
    }
    result.update(extra)
    return result


def unavailable(case, reason):
    return {"case": case, "available": False, "reason": reason}


def goal(name, value, target, met, why=""):
    return {"goal": name, "value": value, "target": target, "met": bool(met) if value is not None else None, "why": why}


def cpu_threads():
    """The cores this process may run on (the affinity mask, not the host's count)."""
    return len(os.sched_getaffinity(0))


def _cpu_flags_and_model():
    flags, model, mhz = set(), platform.processor(), None
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "flags" and not flags:
                    flags = set(value.split())
                elif key == "model name":
                    model = value.strip()
                elif key == "cpu MHz" and mhz is None:
                    mhz = float(value)
    except OSError:
        pass
    return flags, model, mhz


def peak_gflops():
    """An estimate of the CPU's fp32 peak: cores x clock x FLOP per cycle.

    FLOP per cycle assumes two fused multiply-add pipes per core (every x86
    core since Haswell and Zen 2), each as wide as the widest vector ISA in
    the flags: 16 fp32 lanes with avx512f, 8 with avx2/fma, 4 otherwise. The
    clock is /proc/cpuinfo's "cpu MHz": under a hypervisor the base clock,
    so turbo can take achieved rates past 100%. On Zen 4, which splits 512-bit
    FMAs in two, the width term overstates the peak by 2x.
    """
    flags, model, mhz = _cpu_flags_and_model()
    lanes = 16 if "avx512f" in flags else 8 if {"avx2", "fma"} <= flags else 4
    flop_per_cycle = 2 * 2 * lanes  # two FMA pipes, two FLOP per FMA
    cores = cpu_threads()
    peak = cores * (mhz or 0.0) / 1e3 * flop_per_cycle
    how = (
        f"{cores} cores x {mhz or 0:.0f} MHz x {flop_per_cycle} FLOP/cycle "
        f"(2 FMA pipes x {lanes} fp32 lanes, from the CPU flags)"
    )
    return {"peak_gflops": peak or None, "how": how, "cpu": model}


def achieved_gflops(images_per_s, image_size=224):
    """GFLOP/s from the paper's count at 224 px, scaled by area for other sizes."""
    return images_per_s * PAPER_FLOPS_PER_IMAGE * (image_size / 224) ** 2 / 1e9


def machine_info():
    """The machine, the library versions and the load when the run starts."""
    versions = {}
    for name in ("tensorflow", "keras", "jax", "torch", "onnxruntime", "tf2onnx", "ai_edge_litert", "numpy"):
        try:
            from importlib.metadata import version

            versions[name] = version(name.replace("_", "-"))
        except Exception:  # noqa: BLE001 - an absent package is a fact to report
            versions[name] = None
    flags, model, mhz = _cpu_flags_and_model()
    return {
        "cpu": model,
        "cpu_mhz": mhz,
        "cores": cpu_threads(),
        "memory_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "load_average": os.getloadavg(),
        "peak": peak_gflops(),
    }


def peak_rss_mib():
    """This process's peak resident set size (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_in_subprocess(module, function, kwargs, env=None, timeout=900):
    """Calls ``module.function(**kwargs)`` in a fresh Python; returns its dict.

    A fresh process gives each framework its own peak RSS and lets a child set
    TensorFlow's logical devices, which must happen before TF initialises.
    The child's peak RSS is added as ``peak_rss_mib``. A child that fails
    returns ``{"available": False, "reason": <its last error line>}``.
    """
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        command = [sys.executable, "-m", "benchmarks.common", module, function, json.dumps(kwargs), out]
        child_env = dict(os.environ, **(env or {}))
        try:
            done = subprocess.run(command, env=child_env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"available": False, "reason": f"{module}.{function} ran past {timeout} s"}
        if done.returncode != 0 or not os.path.exists(out):
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            return {"available": False, "reason": lines[-1] if lines else f"exit status {done.returncode}"}
        with open(out) as f:
            return json.load(f)


def _child_main(module, function, kwargs, out):
    result = getattr(importlib.import_module(module), function)(**json.loads(kwargs))
    result["peak_rss_mib"] = peak_rss_mib()
    with open(out, "w") as f:
        json.dump(result, f)


def run_part(name, fn, **kwargs):
    """Runs one part; a missing dependency or a failure becomes a reason, not a crash."""
    start = time.perf_counter()
    try:
        result = fn(**kwargs)
    except Exception as error:  # noqa: BLE001 - one broken part must not hide the others
        traceback.print_exc()
        result = {"available": False, "reason": f"{type(error).__name__}: {error}"}
    result.setdefault("available", True)
    result["part"] = name
    result["wall_s"] = time.perf_counter() - start
    return result


def missing(module):
    """The reason a module cannot be imported, or None when it can."""
    try:
        importlib.import_module(module)
    except ImportError as error:
        return f"not available: {module} cannot be imported ({error})"
    return None


def _fmt(value, digits=1):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) >= 0.1 or value == 0 else f"{value:.3f}"
    return str(value)


def markdown(report):
    """The report as Markdown: the machine, then one table per part, then the goals."""
    machine = report["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    lines = [
        f"Machine: {machine['cpu']}, {machine['cores']} cores at {machine['cpu_mhz']:.0f} MHz, "
        f"{machine['memory_gib']:.0f} GiB; Python {machine['python']}; {versions}.",
        "",
        f"Load average at start {_load(machine['load_average'])}, at end {_load(report.get('load_average_end'))}; "
        f"mode {report['mode']}; medians of {report['repeats']} repeats after {report['warmup']} warm-up.",
        "",
        f"CPU fp32 peak estimate: {_fmt(machine['peak']['peak_gflops'])} GFLOP/s = {machine['peak']['how']}.",
        "",
    ]
    goals = []
    for part in report["parts"]:
        lines.append(f"**{part.get('title', part['part'])}**" + (f" ({part['wall_s']:.0f} s)" if "wall_s" in part else ""))
        lines.append("")
        if not part.get("available", True):
            lines += [f"Not available: {part['reason']}", ""]
            continue
        columns = part.get("columns", ["case", "batch", "median_ms", "images_per_s", "ratio"])
        headers = {"median_ms": "median ms", "min_ms": "min ms", "images_per_s": "img/s", "peak_rss_mib": "peak RSS MiB"}
        lines.append("| " + " | ".join(headers.get(c, c.replace("_", " ")) for c in columns) + " |")
        lines.append("|" + " --- |" * len(columns))
        for r in part["rows"]:
            if r.get("available", True):
                lines.append("| " + " | ".join(_fmt(r.get(c), 2 if c == "ratio" else 1) for c in columns) + " |")
            else:
                lines.append(f"| {r['case']} | not available: {r['reason']} |" + " |" * (len(columns) - 2))
        lines.append("")
        if part.get("ratio"):
            lines.append(f"ratio: {part['ratio']}.")
        lines += [f"- {note}" for note in part.get("notes", [])]
        lines.append("")
        goals += part.get("goals", [])
    if goals:
        lines += ["| goal | value | target | met | why |", "| --- | --- | --- | --- | --- |"]
        for g in goals:
            lines.append(f"| {g['goal']} | {_fmt(g['value'], 2)} | {g['target']} | {_fmt(g['met'])} | {g['why']} |")
    return "\n".join(lines).rstrip() + "\n"


def _load(load):
    return "-" if not load else "/".join(f"{x:.1f}" for x in load)


if __name__ == "__main__":
    _child_main(*sys.argv[1:5])
