"""Runs the CPU benchmarks, prints a Markdown report and writes JSON.

    python -m benchmarks.run --quick                    # every CPU part, ~10 min on 2 cores
    python -m benchmarks.run --parts inference --json runs/inference.json
    python -m benchmarks.run --markdown runs/benchmarks.json   # re-render a saved run

Every figure is a ratio against a reference timed in the same run, beside the
absolute numbers; each time is the median of several repeats after warm-up.
The GPU comparison is a separate script, `python -m benchmarks.gpu`, for a
machine without TensorFlow.
"""

import argparse
import json
import os
import sys
import time

from benchmarks import common

PARTS = ("inference", "training", "pipeline", "scaling", "weights", "ray", "backup")


def run(parts=PARTS, quick=False, image_size=224, batch=32, variant="bn", pipeline_images=None):
    """Runs the named parts in order; returns the report dict that `common.markdown` renders."""
    unknown = [part for part in parts if part not in PARTS]
    if unknown:
        raise ValueError(f"`parts` must be from {list(PARTS)}. Received: parts={list(parts)}")
    settings = common.QUICK if quick else common.FULL
    report = {
        "mode": "quick" if quick else "full",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "image_size": image_size,
        "batch": batch,
        "variant": variant,
        **settings,
        "machine": common.machine_info(),
        "parts": [],
    }
    consumption = None
    for part in parts:
        print(f"[benchmarks] {part} ...", file=sys.stderr, flush=True)
        if part == "inference":
            from benchmarks import inference

            result = common.run_part(part, inference.run, image_size=image_size, batch_sizes=(1, batch),
                                     variant=variant, **settings)
        elif part == "training":
            from benchmarks import training

            # PyTorch's first CPU steps run several times slower than the later ones
            # (seen here: 5 to 12 s, then about 2 s), so training warms up twice even in quick mode.
            steps = {"warmup": max(settings["warmup"], 2), "repeats": max(settings["repeats"], 5)}
            result = common.run_part(part, training.run, image_size=image_size, batch=batch, variant=variant, **steps)
            consumption = result.get("consumption_images_per_s")
        elif part == "pipeline":
            from benchmarks import pipeline

            images = pipeline_images or (128 if quick else 512)
            result = common.run_part(part, pipeline.run, image_size=image_size, batch=batch, images=images,
                                     consumption_images_per_s=consumption, variant=variant, **settings)
        elif part == "weights":
            from benchmarks import weights_load

            result = common.run_part(part, weights_load.run, repeats=1 if quick else 3)
        elif part == "backup":
            from benchmarks import backup

            result = common.run_part(part, backup.run, image_size=image_size, variant=variant, **settings)
        elif part == "ray":
            from benchmarks import ray_workers

            result = common.run_part(part, ray_workers.run, image_size=image_size, batch=batch, variant=variant, **settings)
        else:
            from benchmarks import scaling

            result = common.run_part(part, scaling.run, image_size=image_size, batch=batch, variant=variant, **settings)
        print(f"[benchmarks] {part} done in {result['wall_s']:.0f} s", file=sys.stderr, flush=True)
        report["parts"].append(result)
    report["load_average_end"] = os.getloadavg()
    return report


def write_json(report, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(report, f, indent=1)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 warm-up and 3 repeats instead of 2 and 7")
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS, help="the parts to run (default: all)")
    parser.add_argument("--json", default=os.path.join("runs", "benchmarks.json"), help="where to write the JSON report")
    parser.add_argument("--image-size", type=int, default=224, help="input size in pixels (default: 224)")
    parser.add_argument("--batch", type=int, default=32, help="the large batch size (default: 32)")
    parser.add_argument("--variant", default="bn", choices=["bn", "paper"], help="network variant (default: bn, torchvision's)")
    parser.add_argument("--markdown", metavar="JSON", help="only print the Markdown of a saved report")
    args = parser.parse_args(argv)
    if args.markdown:
        with open(args.markdown) as f:
            print(common.markdown(json.load(f)))
        return 0
    report = run(args.parts, quick=args.quick, image_size=args.image_size, batch=args.batch, variant=args.variant)
    write_json(report, args.json)
    print(common.markdown(report))
    print(f"JSON written to {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
