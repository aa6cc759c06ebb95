"""Where a task stands in its cluster, without starting one: its scratch folder's name."""

import types

from keras_googlenet.training import cluster


def task(task_type, index):
    """What `cluster.scratch_dir` reads of a MultiWorkerMirroredStrategy."""
    return types.SimpleNamespace(cluster_resolver=types.SimpleNamespace(task_type=task_type, task_id=index))


def test_a_scratch_folder_is_unique_per_task_type_and_index_and_the_same_for_a_restarted_task(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(cluster.tempfile, "tempdir", None)  # re-read TMPDIR
    run = tmp_path / "run"
    folders = {name: cluster.scratch_dir(run, task(*name)) for name in (("chief", 0), ("worker", 0), ("worker", 1))}
    assert len(set(folders.values())) == 3  # TFJob's chief 0 and worker 0 are two tasks
    assert all(folder.parent == tmp_path for folder in folders.values())
    assert folders["worker", 1].name.endswith("_worker_1")
    assert cluster.scratch_dir(run, task("worker", 1)) == folders["worker", 1]  # a restarted task finds its folder
    assert cluster.scratch_dir(tmp_path / "other", task("worker", 1)) != folders["worker", 1]
