"""examples/kubernetes/tfjob.yaml: a Kubeflow TFJob of the unchanged `keras-googlenet train`, and the cluster it makes.

Kubernetes cannot run here. The tests read the manifest, check it as the
training operator and the CLI would, derive the TF_CONFIG the operator gives
each replica, and run the manifest's command with it as local processes. The
operator's TF_CONFIG (kubeflow/training-operator,
pkg/controller.v1/tensorflow/tensorflow.go, genTFConfigJSONStr): the
addresses of every replica type but the evaluator, under its lower-cased
name, the pod's own type and index, and ``"environment": "cloud"``.
"""

import json
import pathlib
import sys

import pytest
import yaml

import local_cluster
from keras_googlenet import cli

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
MANIFEST = REPO_ROOT / "examples" / "kubernetes" / "tfjob.yaml"
TIMEOUT_S = 400


@pytest.fixture(scope="module")
def manifest():
    documents = list(yaml.safe_load_all(MANIFEST.read_text()))
    [tfjob] = [document for document in documents if document["kind"] == "TFJob"]
    claims = {document["metadata"]["name"]: document for document in documents if document["kind"] == "PersistentVolumeClaim"}
    return tfjob, claims


def containers(tfjob):
    """{replica type: its TensorFlow container}; the operator finds it by the name "tensorflow"."""
    found = {}
    for replica_type, spec in tfjob["spec"]["tfReplicaSpecs"].items():
        [container] = [c for c in spec["template"]["spec"]["containers"] if c["name"] == "tensorflow"]
        found[replica_type] = container
    return found


def operator_tf_configs(tfjob):
    shape = {
        replica_type.lower(): spec["replicas"]
        for replica_type, spec in tfjob["spec"]["tfReplicaSpecs"].items()
        if replica_type != "Evaluator"
    }
    return [
        (task_type, index, json.dumps({**json.loads(tf_config), "environment": "cloud"}))
        for task_type, index, tf_config in local_cluster.tf_configs(shape)
    ]


def test_the_tfjob_runs_the_same_valid_train_command_on_a_chief_and_workers_that_restart_on_failure(manifest):
    tfjob, _ = manifest
    assert (tfjob["apiVersion"], tfjob["kind"]) == ("kubeflow.org/v1", "TFJob")
    specs = tfjob["spec"]["tfReplicaSpecs"]
    assert set(specs) == {"Chief", "Worker"}
    assert specs["Chief"]["replicas"] == 1 and specs["Worker"]["replicas"] >= 1
    assert {spec["restartPolicy"] for spec in specs.values()} == {"OnFailure"}
    commands = {replica_type: container["command"] for replica_type, container in containers(tfjob).items()}
    command = commands["Chief"]
    assert commands["Worker"] == command
    assert command[:2] == ["keras-googlenet", "train"]
    args = cli.build_parser().parse_args(command[1:])  # exits 2 on a flag `train` does not know
    assert (args.command, args.data, args.output_dir) == ("train", "digits", "/runs/googlenet")
    ports = [port for container in containers(tfjob).values() for port in container["ports"]]
    assert {(port["name"], port["containerPort"]) for port in ports} == {("tfjob-port", 2222)}


def test_every_replica_writes_to_one_shared_read_write_many_volume_and_runs_the_repository_image(manifest):
    tfjob, claims = manifest
    for replica_type, container in containers(tfjob).items():
        args = cli.build_parser().parse_args(container["command"][1:])
        pod = tfjob["spec"]["tfReplicaSpecs"][replica_type]["template"]["spec"]
        [mount] = [m for m in container["volumeMounts"] if pathlib.PurePosixPath(args.output_dir).is_relative_to(m["mountPath"])]
        [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        claim = claims[volume["persistentVolumeClaim"]["claimName"]]
        assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
        assert container["image"].rsplit("/", 1)[-1] == "keras-googlenet:latest"
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "COPY . /src" in dockerfile and "/src" in dockerfile.split("RUN pip install", 1)[1].splitlines()[0]


@pytest.mark.slow
@pytest.mark.alone  # a chief and a worker, each a TensorFlow process training the real network: about 2.4 GB
def test_the_replicas_train_together_with_the_tf_config_the_operator_gives_them(manifest, tmp_path):
    tfjob, _ = manifest
    output_dir, temporary = tmp_path / "runs" / "googlenet", tmp_path / "tmp"
    temporary.mkdir()
    # The manifest's command, sized for a test: argparse keeps the last value of a repeated flag.
    command = [
        sys.executable, "-m", "keras_googlenet.cli", *containers(tfjob)["Chief"]["command"][1:],
        "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2", "--image-size", "80",
        "--validation-split", "none", "--verbose", "2", "--output-dir", str(output_dir),
    ]
    configs = operator_tf_configs(tfjob)
    assert [(task_type, index) for task_type, index, _ in configs] == [("chief", 0), ("worker", 0)]
    with local_cluster.LocalCluster(configs, command, tmp_path, temporary) as tasks:
        assert tasks.wait(TIMEOUT_S) == [0, 0], tasks.report()
        chief_log, worker_log = tasks.log("chief0"), tasks.log("worker0")
    # On today's main the chief and worker 0 shared backup/worker_0, and the
    # chief failed at the first epoch end.
    assert "with MultiWorkerMirroredStrategy (2 replica(s), global batch 4)" in chief_log
    assert f"Last checkpoint: {output_dir / 'last.keras'}" in chief_log
    assert "Last checkpoint" not in worker_log
    assert sorted(p.name for p in (output_dir / "backup").iterdir()) == ["latest.weights.h5", "training_metadata.json"]
    assert (output_dir / "history.csv").read_text().splitlines()[1].startswith("0,")
    assert not list(temporary.glob("keras_googlenet_*"))
