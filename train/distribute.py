"""Where training runs: one device, every GPU of a machine, or several machines, through tf.distribute.

`--distribute none` keeps TensorFlow's default strategy (one device). `mirrored` is MirroredStrategy over
the machine's GPUs (over its logical CPUs when it has none). `multi-worker` is MultiWorkerMirroredStrategy,
which reads the cluster and this process's task from TF_CONFIG as TensorFlow documents it.

Scaling, the documented way (Goyal et al. 2017, "Accurate, Large Minibatch SGD"): `--batch-size` is per
replica, so a step sees batch_size x replicas faces, and the whole learning-rate schedule (peak and
floor) is multiplied by the replicas. Batch normalisation is synchronised across replicas, so N replicas of
B faces compute what one device computes on N x B.

Only the chief writes the run folder. Every worker trains and saves (saving can take part in collective
ops), the others into a temporary folder that is removed when they finish.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import keras
import tensorflow as tf

from train.arch import make_model
from train.config import TrainConfig

MIXED = "mixed_float16"


def cluster_from_environment() -> dict:
    """TF_CONFIG, checked: a clear error instead of a hang when it is missing or malformed."""
    text = os.environ.get("TF_CONFIG", "")
    if not text:
        raise ValueError("--distribute multi-worker (train.distribute) reads the cluster from TF_CONFIG, which is not set "
                         '(e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}\')')
    try:
        tf_config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not JSON ({error}): {text!r}") from None
    cluster, task = tf_config.get("cluster"), tf_config.get("task")
    if not isinstance(cluster, dict) or not cluster or not isinstance(task, dict):
        raise ValueError(f'TF_CONFIG needs "cluster" (task type -> addresses) and "task" ({{"type", "index"}}), got {text!r}')
    addresses = cluster.get(task.get("type"))
    if not isinstance(addresses, list) or not isinstance(task.get("index"), int) or not 0 <= task["index"] < len(addresses):
        raise ValueError(f"TF_CONFIG task {task!r} is not one of its cluster's tasks {cluster!r}")
    return tf_config


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy([device.name for device in gpus or tf.config.list_logical_devices("CPU")])
    if name == "multi-worker":
        cluster_from_environment()
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"--distribute (train.distribute) must be none, mirrored or multi-worker, got {name!r}")


def chief_and_task(strategy: tf.distribute.Strategy) -> tuple[bool, str | None]:
    """(whether this process is the chief, its task "type:index"); the chief is task "chief", else worker 0."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None or resolver.task_type is None:
        return True, None
    task_type, task_id = resolver.task_type, resolver.task_id
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "chief" or (task_type == "worker" and task_id == 0 and not has_chief), f"{task_type}:{task_id}"


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds of each epoch (training and the PublicTest evaluation)."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(round(time.time() - self.started, 2))


@dataclass
class Run:
    """One training process's place in the run: its strategy, whether it writes the run folder, where it writes."""

    config: TrainConfig
    strategy: tf.distribute.Strategy
    chief: bool
    task: str | None
    out_dir: Path  # the run folder on the chief, a temporary folder on the other workers
    workers: int = 1
    timer: EpochTimer = field(default_factory=EpochTimer)

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync)

    @property
    def global_batch_size(self) -> int:
        return self.config.batch_size * self.replicas

    def pipeline_config(self) -> TrainConfig:
        """The settings the input pipeline batches with: one global batch a step, split among the replicas."""
        return self.config if self.replicas == 1 else replace(self.config, batch_size=self.global_batch_size)

    def learning_rate_scale(self) -> int:
        return self.replicas

    @property
    def synchronized_batch_norm(self) -> bool:
        return self.replicas > 1

    @contextlib.contextmanager
    def building(self):
        """Create (or load) the model here: its variables live on the replicas, in the run's precision."""
        previous = keras.mixed_precision.global_policy()
        with self.strategy.scope():
            if self.config.mixed_precision:
                keras.mixed_precision.set_global_policy(MIXED)
            try:
                yield
            finally:
                keras.mixed_precision.set_global_policy(previous)

    def prepare(self, model: keras.Model) -> None:
        """Two workarounds for Keras 3 under MultiWorkerMirroredStrategy, which its fit() does not support
        (keras-team/keras#20585, open in Keras 3.15); tests/train/test_distribute.py runs two workers through them.

        - Keras builds the metrics and optimizer from the first distributed batch, reduced as one nested
          structure, which MultiWorkerMirroredStrategy.reduce refuses ("unsupported type PerReplica"): build
          from this worker's first replica's batch, whose shapes are all the build needs.
        - Keras averages each step's logged loss and metrics over the replicas along axis 0, which a scalar
          has not ("Invalid reduction dimension 0"): average scalars over the replicas as a whole, as Keras
          does under MirroredStrategy. Undone by finish().
        """
        if not isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return
        from keras.src.backend.tensorflow import trainer as keras_trainer

        reduce = self.original_reduce = keras_trainer.reduce_per_replica

        def reduce_scalars_whole(values, strategy, reduction):
            def one(value):
                local = strategy.experimental_local_results(value)[0] if isinstance(value, tf.distribute.DistributedValues) else value
                if reduction == "auto" and getattr(local, "shape", None) is not None and local.shape.rank == 0:
                    return strategy.reduce("MEAN", value, axis=None)
                return reduce(value, strategy, reduction)

            return tf.nest.map_structure(one, values)

        keras_trainer.reduce_per_replica = reduce_scalars_whole
        build = model._maybe_symbolic_build

        def build_from_local_batch(iterator=None, data_batch=None):
            if iterator is not None:
                for _, _, batches in iterator:
                    data_batch = tf.nest.map_structure(lambda value: self.strategy.experimental_local_results(value)[0], next(batches))
                    break
            return build(data_batch=data_batch)

        model._maybe_symbolic_build = build_from_local_batch

    def plain_copy_needed(self) -> bool:
        return self.config.mixed_precision or self.synchronized_batch_norm

    def describe(self) -> dict:
        """What the training report records about where and how fast the run trained."""
        gpus = []
        for gpu in tf.config.list_physical_devices("GPU"):
            details = tf.config.experimental.get_device_details(gpu)
            gpus.append({"device": gpu.name, "name": details.get("device_name", ""),
                         "compute_capability": ".".join(map(str, details.get("compute_capability", ())))})
        seconds = self.timer.seconds
        return {
            "strategy": self.config.distribute,
            "replicas": self.replicas,
            "workers": self.workers,
            "task": self.task,
            "replica_devices": self.replica_devices(),
            "gpus": gpus,
            "precision": MIXED if self.config.mixed_precision else "float32",
            "batch_size_per_replica": self.config.batch_size,
            "global_batch_size": self.global_batch_size,
            "peak_learning_rate": self.config.learning_rate * self.learning_rate_scale(),
            "epoch_seconds": seconds,
            # the first epoch also traces and compiles the step functions
            "seconds_per_epoch": round(sum(seconds[1:]) / len(seconds[1:]), 2) if len(seconds) > 1 else (seconds or [None])[0],
        }

    def replica_devices(self) -> list[str]:
        if self.config.distribute == "none":  # the default strategy: TensorFlow's default device
            return [device.name for device in tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")][:1]
        return list(self.strategy.extended.worker_devices)

    def finish(self) -> None:
        if getattr(self, "original_reduce", None) is not None:
            from keras.src.backend.tensorflow import trainer as keras_trainer

            keras_trainer.reduce_per_replica = self.original_reduce
        if not self.chief:
            shutil.rmtree(self.out_dir, ignore_errors=True)


def start(config: TrainConfig) -> Run:
    """The strategy first (MultiWorkerMirroredStrategy must exist before other TensorFlow work), then this
    process's folder: the run folder on the chief, a temporary one on every other worker."""
    strategy = make_strategy(config.distribute)
    chief, task = chief_and_task(strategy)
    workers = sum(map(len, cluster_from_environment()["cluster"].values())) if config.distribute == "multi-worker" else 1
    if chief:
        out_dir = config.run_dir()
        out_dir.mkdir(parents=True, exist_ok=True)
    else:
        out_dir = Path(tempfile.mkdtemp(prefix=f"fer-edge-{task.replace(':', '')}-"))
    print(f"strategy {config.distribute}: {strategy.num_replicas_in_sync} replica(s)"
          + (f", task {task} ({'chief' if chief else 'writes to ' + str(out_dir)})" if task else ""))
    return Run(config, strategy, chief, task, out_dir, workers)


def save_plain(checkpoint: Path, target: Path, config: TrainConfig) -> None:
    """The artifact is the same float32 network, batch normalisation per device, however it trained (mixed
    precision, synchronised replicas): convert and the teachers' loaders see one kind of model."""
    trained = keras.models.load_model(checkpoint, compile=False)
    plain = make_model(config.arch, l2=config.l2)
    plain.set_weights(trained.get_weights())
    partial = target.with_name(f".{target.name}.partial.keras")
    plain.save(partial)
    partial.replace(target)
