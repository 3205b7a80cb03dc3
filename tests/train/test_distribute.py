"""Training past one device: --arch networks, --mixed-precision, --distribute mirrored and multi-worker (on CPUs)."""

import json
import os
import socket
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
from conftest import ROOT, synthetic_faces, write_csv

from train.arch import PARAMETERS, make_model, model_file
from train.config import TrainConfig
from train.distribute import cluster_from_environment
from train.fit import fit

pytestmark = pytest.mark.tf  # needs TensorFlow: make check leaves these to make test

CHILD_ENV = {"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TF_CPP_MIN_LOG_LEVEL": "2",
             "HOME": os.environ.get("HOME", "/tmp")}


@pytest.mark.parametrize(("arch", "parameters"), [("mini_xception", 58_423), ("vgg13", 6_927_431), ("resnet18", 11_180_871)])
def test_each_arch_builds_its_network_with_a_float32_softmax_even_in_mixed_precision(arch, parameters):
    model = make_model(arch)
    assert model.count_params() == parameters == PARAMETERS[arch]
    assert model.name == arch and model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 7)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        mixed = make_model(arch)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert mixed.layers[-2].compute_dtype == "float16"  # the network computes in float16 ...
    assert mixed.layers[-1].name == "predictions" and mixed.layers[-1].compute_dtype == "float32"  # ... the softmax not
    assert mixed.output.dtype == "float32" and mixed.count_params() == parameters


def test_an_unknown_arch_or_strategy_names_its_flag():
    with pytest.raises(ValueError, match=r"--arch \(train.arch\) must be one of mini_xception, vgg13, resnet18"):
        TrainConfig(data="", arch="vgg16")
    with pytest.raises(ValueError, match=r"--distribute \(train.distribute\) must be one of none, mirrored, multi-worker"):
        TrainConfig(data="", distribute="horovod")


@pytest.mark.parametrize(
    ("tf_config", "message"),
    [
        (None, "reads the cluster from TF_CONFIG, which is not set"),
        ("{not json", "TF_CONFIG is not JSON"),
        ('{"cluster": {}}', 'TF_CONFIG needs "cluster"'),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "is not one of its cluster's tasks"),
    ],
)
def test_a_missing_or_malformed_tf_config_is_a_clear_error(monkeypatch, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ValueError, match=message):
        cluster_from_environment()


@pytest.mark.slow
def test_a_teacher_arch_trains_and_writes_its_own_model_file(small_csv, tmp_path):
    report = fit(TrainConfig(data=str(small_csv), out_dir=str(tmp_path), arch="vgg13", epochs=1, batch_size=16, verbose=0,
                             cache_dir=str(tmp_path / "cache")))
    assert model_file("vgg13") == "vgg13.keras" and (tmp_path / "vgg13.keras").is_file()
    assert not (tmp_path / "mini_xception.keras").exists()
    assert report["arch"] == "vgg13" and report["parameters"] == 6_927_431 and report["model"] == "vgg13.keras"
    compute = report["compute"]
    assert compute["strategy"] == "none" and compute["replicas"] == 1 and compute["precision"] == "float32"
    assert compute["global_batch_size"] == 16 and len(compute["epoch_seconds"]) == 1 and compute["seconds_per_epoch"] > 0
    assert compute["replica_devices"] and all("CPU" in device for device in compute["replica_devices"])


@pytest.mark.slow
def test_mixed_precision_trains_resumes_and_ships_a_float32_model(small_csv, tmp_path):
    settings = dict(data=str(small_csv), out_dir=str(tmp_path), mixed_precision=True, epochs=2, batch_size=16, verbose=0,
                    cache_dir=str(tmp_path / "cache"))
    report = fit(TrainConfig(**settings))
    assert report["compute"]["precision"] == "mixed_float16" and report["parameters"] == 58_423
    # The run ships the epoch it chose on PublicTest, whichever that is on this CPU: the report names it (the best of
    # the history's monitored column), and the checkpoint kept for it is what ships, as float32.
    history = np.genfromtxt(tmp_path / "history.csv", delimiter=",", names=True)
    assert report["epochs_run"] == len(history) == 2
    assert report["best_epoch"] == int(np.argmax(history["val_accuracy"])) + 1
    last = keras.models.load_model(tmp_path / ".train" / "last.keras", compile=False)  # the last epoch's, to resume from
    chosen = keras.models.load_model(tmp_path / ".train" / "mini_xception.keras", compile=False)  # the chosen epoch's
    for checkpoint in (last, chosen):
        assert checkpoint.layers[-2].compute_dtype == "float16"  # resumable as it trained
    shipped = keras.models.load_model(tmp_path / "mini_xception.keras")
    assert {layer.dtype_policy.name for layer in shipped.layers} == {"float32"}  # what convert quantizes
    for trained, plain in zip(chosen.get_weights(), shipped.get_weights(), strict=True):
        np.testing.assert_array_equal(trained, plain)
    # the kept checkpoint is the epoch the report names: the last one exactly when the last epoch was chosen
    same_as_last = all(np.array_equal(a, b) for a, b in zip(last.get_weights(), chosen.get_weights(), strict=True))
    assert same_as_last == (report["best_epoch"] == report["epochs_run"])
    assert keras.mixed_precision.global_policy().name == "float32"  # the run left the process as it found it

    state = json.loads((tmp_path / ".train" / "state.json").read_text())  # stopped after the first epoch
    state["next_epoch"] = 1
    state.pop("finished", None)
    (tmp_path / ".train" / "state.json").write_text(json.dumps(state))
    (tmp_path / "history.csv").write_text("\n".join((tmp_path / "history.csv").read_text().splitlines()[:2]) + "\n")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Skipping variable loading for optimizer")  # the loss scale's state too
        resumed = fit(TrainConfig(**settings, resume=True))
    assert resumed["epochs_run"] == 2 and resumed["compute"]["precision"] == "mixed_float16"


MIRRORED_SCRIPT = """
import json, sys
import tensorflow as tf
tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
from train.config import TrainConfig
from train.fit import fit
from train.model import predict_probabilities
from train.data import load_fer2013
from train.splits import take_splits

data, folder = sys.argv[1], sys.argv[2]
# Augmentation off and one step an epoch (the whole Training split, 84 faces): under a strategy Keras iterates
# the dataset once more before training, which moves each epoch's shuffle along; with one batch an epoch the
# shuffle only reorders faces within the batch, and the comparison is of the distributed arithmetic alone.
common = dict(data=data, epochs=3, warmup_epochs=0, patience=5, verbose=0, cache_dir=folder + "/cache", flip=False,
              rotation_degrees=0, shift_fraction=0, zoom_fraction=0, brightness=0, contrast=0)
one = fit(TrainConfig(out_dir=folder + "/one", batch_size=84, learning_rate=2e-3, min_learning_rate=2e-5, **common))
two = fit(TrainConfig(out_dir=folder + "/two", distribute="mirrored", batch_size=42, learning_rate=1e-3, min_learning_rate=1e-5,
                      **common))
models = [keras.models.load_model(folder + f"/{name}/.train/last.keras") for name in ("one", "two")]
differences = np.concatenate([np.abs(a - b).ravel() for a, b in zip(*(m.get_weights() for m in models))])
public = take_splits(load_fer2013(data, cache_dir=folder + "/cache"), 0, 1337)["PublicTest"].images
probabilities = [predict_probabilities(m, public) for m in models]
histories = [np.genfromtxt(folder + f"/{name}/history.csv", delimiter=",", names=True) for name in ("one", "two")]

state = json.load(open(folder + "/two/.train/state.json"))  # stop the mirrored run after its second epoch
steps_before = int(models[1].optimizer.iterations.numpy())
state["next_epoch"] = 2
state.pop("finished", None)
json.dump(state, open(folder + "/two/.train/state.json", "w"))
lines = open(folder + "/two/history.csv").read().splitlines()
open(folder + "/two/history.csv", "w").write("\\n".join(lines[:3]) + "\\n")
refused = ""
try:  # on one device: another global batch and learning rate
    fit(TrainConfig(out_dir=folder + "/two", batch_size=42, learning_rate=1e-3, min_learning_rate=1e-5, resume=True, **common))
except ValueError as error:
    refused = str(error)
resumed = fit(TrainConfig(out_dir=folder + "/two", distribute="mirrored", batch_size=42, learning_rate=1e-3, min_learning_rate=1e-5,
                          resume=True, **common))
print("RESULT " + json.dumps({
    "compute": two["compute"], "weights_p99": float(np.percentile(differences, 99)), "weights_median": float(np.median(differences)),
    "probabilities": float(np.abs(probabilities[0] - probabilities[1]).max()),
    "same_class": int((probabilities[0].argmax(1) == probabilities[1].argmax(1)).sum()), "faces": len(public),
    "loss": [histories[0]["loss"].tolist(), histories[1]["loss"].tolist()],
    "accuracy": [one["float_accuracy"], two["float_accuracy"]],
    "steps_before": steps_before,
    "steps_after": int(keras.models.load_model(folder + "/two/.train/last.keras").optimizer.iterations.numpy()),
    "resumed_epochs": resumed["epochs_run"], "resumed_compute": resumed["compute"], "refused": refused,
}))
"""


@pytest.mark.slow
def test_mirrored_over_two_cpus_trains_as_one_device_and_resumes(tmp_path):
    """MirroredStrategy over two logical CPUs, 42 faces each, against one device on 84 with the same (scaled)
    learning rate. Tolerances: PublicTest probabilities within 1e-3, the same class for every face, losses
    within 1e-3; 99% of weights within 1e-3 (Adam's step is about the learning rate whatever the gradient's
    size, so weights whose gradient is float noise may differ by a few steps' worth: the max is not a test)."""
    data = write_csv(tmp_path / "fer2013.csv", *synthetic_faces(140))
    result = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, str(data), str(tmp_path)], env=CHILD_ENV, cwd=ROOT,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))[7:])
    compute = found["compute"]
    assert compute["strategy"] == "mirrored" and compute["replicas"] == 2 and compute["global_batch_size"] == 84
    assert compute["peak_learning_rate"] == pytest.approx(2e-3) and len(compute["replica_devices"]) == 2
    assert found["probabilities"] < 1e-3 and found["same_class"] == found["faces"]
    np.testing.assert_allclose(found["loss"][0], found["loss"][1], atol=1e-3)
    assert found["weights_p99"] < 1e-3
    assert found["accuracy"][0] == found["accuracy"][1]
    # resumed after the second epoch: one more step on the optimizer's own count, under the same strategy
    assert found["steps_before"] == 3 and found["steps_after"] == 4 and found["resumed_epochs"] == 3
    assert found["resumed_compute"]["replicas"] == 2
    assert "replicas 2 -> 1" in found["refused"]


BALANCED_MIRRORED_SCRIPT = """
import json, sys
import tensorflow as tf
tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from train.config import TrainConfig
from train.fit import fit

data, folder = sys.argv[1], sys.argv[2]
report = fit(TrainConfig(data=data, out_dir=folder + "/run", distribute="mirrored", batch_size=14, balanced_sampling=1.0,
                         epochs=2, warmup_epochs=0, patience=5, verbose=0, cache_dir=folder + "/cache"))
steps = int(keras.models.load_model(folder + "/run/.train/last.keras").optimizer.iterations.numpy())
print("RESULT " + json.dumps({"compute": report["compute"], "steps": steps, "epochs": report["epochs_run"],
                              "train_images": report["train_images"]}))
"""


@pytest.mark.slow
def test_mirrored_with_class_balanced_sampling_counts_epochs_in_global_batches(tmp_path):
    """Balanced sampling makes an endless stream, so fit() is told the steps of an epoch: under a strategy they are
    Training faces over the global batch (both replicas' faces), not over one replica's."""
    data = write_csv(tmp_path / "fer2013.csv", *synthetic_faces(140))
    result = subprocess.run([sys.executable, "-c", BALANCED_MIRRORED_SCRIPT, str(data), str(tmp_path)], env=CHILD_ENV, cwd=ROOT,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert found["compute"]["strategy"] == "mirrored" and found["compute"]["global_batch_size"] == 28
    assert found["epochs"] == 2 and found["steps"] == 2 * (found["train_images"] // 28) == 6  # 84 // 28 = 3 steps an epoch (6 over one replica's 14)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_on_two_local_processes_only_the_chief_writes_and_the_model_converts(tmp_path):
    from convert.config import ConvertConfig
    from convert.run import convert_and_evaluate

    data = write_csv(tmp_path / "fer2013.csv", *synthetic_faces(140))
    run_dir, scratch = tmp_path / "run", tmp_path / "scratch"
    scratch.mkdir()
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        env = CHILD_ENV | {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
                           "TMPDIR": str(scratch)}
        command = [sys.executable, "-m", "train", "fit", "--data", str(data), "--out-dir", str(run_dir), "--distribute",
                   "multi-worker", "--epochs", "1", "--batch-size", "16", "--cache-dir", str(tmp_path / "cache")]
        workers.append(subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err[-3000:]
    assert "worker worker:1 trained 1 epochs; the chief wrote the run folder" in outputs[1][0]
    assert "task worker:0 (chief)" in outputs[0][0]
    written = outputs[1][0].split("task worker:1 (writes to ")[1].split(")")[0]
    assert written.startswith(str(scratch / "fer-edge-worker1-"))  # the other worker's own temporary folder ...
    assert not list(scratch.glob("fer-edge-*"))  # ... gone when it finished
    report = json.loads((run_dir / "train_report.json").read_text())
    compute = report["compute"]
    assert compute["strategy"] == "multi-worker" and compute["workers"] == 2 and compute["replicas"] == 2
    assert compute["task"] == "worker:0" and compute["global_batch_size"] == 32
    assert report["epochs_run"] == 1 and report["parameters"] == 58_423

    model = keras.models.load_model(run_dir / "mini_xception.keras")
    assert model.count_params() == 58_423
    converted = convert_and_evaluate(ConvertConfig(data=str(data), keras_model=str(run_dir / "mini_xception.keras"),
                                                   out_dir=str(tmp_path / "converted"), calibration_count=70, max_drop=100.0,
                                                   cache_dir=str(tmp_path / "cache")))
    assert (tmp_path / "converted" / "mini_xception_int8.tflite").is_file() and converted["parameters"] == 58_423
    assert set(converted["results"]) >= {"keras", "int8"}  # scored as the runtime runs it (a 1-epoch model: no gate to pass)


def test_convert_refuses_a_teacher_before_reading_any_data(tmp_path):
    from convert.config import ConvertConfig
    from convert.run import convert_and_evaluate

    teacher = tmp_path / "resnet18.keras"
    make_model("resnet18").save(teacher)
    missing_data = tmp_path / "no-such-fer2013.csv"  # never opened: the model is checked first
    with pytest.raises(ValueError, match=r"resnet18 of 11,180,871 parameters, not the 58,423-parameter mini_xception .*--teacher"):
        convert_and_evaluate(ConvertConfig(data=str(missing_data), keras_model=str(teacher), out_dir=str(tmp_path / "out")))
    assert not (tmp_path / "out" / "resnet18_int8.tflite").exists()
