"""The TF_CONFIG of Ray Train's workers, set by a backend of our own instead of Ray's `TensorflowTrainer`.

`ray.train.tensorflow` imports TensorFlow at import (its package imports
`tensorflow_checkpoint`), in the driver that builds the trainer and in Ray's
controller actor that unpickles its `TensorflowConfig`: 0.5 GB and seconds in
each, neither of which runs a step. The workers need only ``TF_CONFIG``,
which Ray's backend writes as this one does (and ``TF_USE_LEGACY_KERAS=1``,
for Ray's tf_keras callback, which we do not use). Imported by Ray's
processes when they unpickle `TfConfig`; it imports no TensorFlow.
"""

import dataclasses
import json
import os
import socket

import ray
from ray.train.backend import Backend, BackendConfig


@dataclasses.dataclass
class TfConfig(BackendConfig):
    """A `BackendConfig` whose backend gives each worker the ``TF_CONFIG`` of the whole group."""

    @property
    def backend_cls(self):
        return _TfConfigBackend


class _TfConfigBackend(Backend):
    def on_start(self, worker_group, backend_config):
        addresses = worker_group.execute(_worker_address)
        ray.get([
            worker_group.execute_single_async(index, _set_tf_config, addresses=addresses, index=index)
            for index in range(len(addresses))
        ])


def _worker_address():
    """``host:port`` of a port free on this worker's node (freed again: TensorFlow binds it)."""
    with socket.socket() as probe:
        probe.bind(("", 0))
        port = probe.getsockname()[1]
    host = ray.util.get_node_ip_address()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _set_tf_config(addresses, index):
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}})


def data_parallel_trainer():
    """Ray Train's `DataParallelTrainer` (Train V2's where it is on, the default since 2.49)."""
    from ray.train.v2._internal.constants import is_v2_enabled

    if is_v2_enabled():
        from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer
    else:
        from ray.train.data_parallel_trainer import DataParallelTrainer
    return DataParallelTrainer
