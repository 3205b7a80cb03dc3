"""`python -m train soup`: the mean of several runs' weights, BatchNorm measured again (issue 18)."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import ROOT

from edge import contract
from edge.vision.model import file_sha256
from train.model import load_keras_model, make_mini_xception
from train.soup import SOUP_FILE, make_soup
from train.splits import Split

pytestmark = pytest.mark.tf


def saved_model(folder, seed: int, trained_on: str = "ferplus"):
    keras.utils.set_random_seed(seed)
    model = make_mini_xception()
    rng = np.random.default_rng(seed)
    for layer in model.layers:  # BatchNorm statistics as a trained run has them, not the identity
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, _, _ = layer.get_weights()
            layer.set_weights([gamma, beta, rng.normal(size=gamma.shape), rng.uniform(0.5, 2.0, gamma.shape)])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mini_xception.keras"
    model.save(path)
    report = {"trained_on": trained_on, "model_sha256": file_sha256(path), "epochs_run": 3, "best_epoch": 3,
              "float_accuracy": {"PublicTest": 0.5}, "config": {"seed": seed, "learning_rate": 2e-4}}
    (folder / "train_report.json").write_text(json.dumps(report))
    return path


@pytest.fixture(scope="module")
def training():
    rng = np.random.default_rng(7)
    return Split(rng.integers(0, 256, (1200, 48, 48), np.uint8), rng.integers(0, 7, 1200))


@pytest.fixture(scope="module")
def souped(tmp_path_factory, training):
    root = tmp_path_factory.mktemp("soup")
    paths = [saved_model(root / f"run{seed}", seed) for seed in (1, 2, 3)]
    out = root / "soup" / "mini_xception.keras"
    progress = []
    record = make_soup(paths, training, out, faces=1000, seed=0, progress=progress.append)
    assert progress[0].startswith("BatchNorm 1/14: ") and progress[-1].startswith("BatchNorm 14/14: ")
    return paths, out, record


def test_every_learnt_weight_is_the_mean_of_the_runs(souped):
    paths, out, _ = souped
    runs = [load_keras_model(path, "test", compile=False) for path in paths]
    soup = load_keras_model(out, "test", compile=False)
    assert soup.count_params() == 58_423
    for index, variable in enumerate(soup.weights):
        if "moving" in variable.path:
            continue
        expected = np.mean([run.weights[index].numpy() for run in runs], axis=0)
        np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-6, atol=1e-7, err_msg=variable.path)


def test_batch_norm_statistics_are_those_of_the_averaged_network_on_training_faces(souped, training):
    paths, out, record = souped
    soup = load_keras_model(out, "test", compile=False)
    norms = [layer for layer in soup.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert record["batch_norm_layers"] == len(norms) == 14 and record["batch_norm_faces"] == 1000
    chosen = np.sort(np.random.default_rng(0).choice(len(training), 1000, replace=False))
    inputs = contract.scale_pixels(training.images[chosen])
    for layer in (norms[0], norms[-1]):  # the first and the last: the last depends on every statistic before it
        activations = keras.Model(soup.input, layer.input)(inputs, training=False).numpy()
        activations = activations.reshape(-1, activations.shape[-1])
        _, _, mean, variance = layer.get_weights()
        np.testing.assert_allclose(mean, activations.mean(axis=0), rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(variance, activations.var(axis=0), rtol=1e-3, atol=1e-4)
    run = load_keras_model(paths[0], "test", compile=False)
    assert not np.allclose(run.get_layer(norms[0].name).get_weights()[2], norms[0].get_weights()[2])  # measured, not copied


def test_the_soup_is_recorded_beside_it_so_convert_and_its_card_can_tell(souped):
    paths, out, record = souped
    written = json.loads((out.parent / SOUP_FILE).read_text())
    assert written == record and written["model_sha256"] == file_sha256(out)
    assert [i["sha256"] for i in written["ingredients"]] == [file_sha256(path) for path in paths]
    assert [i["seed"] for i in written["ingredients"]] == [1, 2, 3]
    report = json.loads((out.parent / "train_report.json").read_text())
    assert report["model_sha256"] == file_sha256(out) and report["trained_on"] == "ferplus"
    assert "float_accuracy" not in report  # one run's figures would be wrong for the soup
    assert "uniform weight soup of 3 runs" in report["stages"]


def test_a_soup_needs_two_distinct_runs_of_one_architecture_and_label_set(tmp_path, training):
    one = saved_model(tmp_path / "one", 1)
    with pytest.raises(ValueError, match="at least two models"):
        make_soup([one], training, tmp_path / "out.keras")
    with pytest.raises(ValueError, match="same model as"):
        make_soup([one, one], training, tmp_path / "out.keras")
    with pytest.raises(FileNotFoundError, match="missing.keras: no such model file"):
        make_soup([one, tmp_path / "missing.keras"], training, tmp_path / "out.keras")
    other_labels = saved_model(tmp_path / "fer", 2, trained_on="fer2013")
    with pytest.raises(ValueError, match="different labels"):
        make_soup([one, other_labels], training, tmp_path / "out.keras")
    broken = saved_model(tmp_path / "broken", 4)
    (tmp_path / "broken" / "train_report.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"broken/train_report.json: not a valid training report"):
        make_soup([one, broken], training, tmp_path / "out.keras")
    small = make_mini_xception(num_classes=3)
    small.save(tmp_path / "small.keras")
    with pytest.raises(ValueError, match="does not have the layout"):
        make_soup([one, tmp_path / "small.keras"], training, tmp_path / "out.keras")
    assert not (tmp_path / "out.keras").exists()


def test_the_command_refuses_to_overwrite_a_run_it_averages(tmp_path):
    one, two = saved_model(tmp_path / "one", 1), saved_model(tmp_path / "two", 2)
    before = file_sha256(one)
    result = subprocess.run(
        [sys.executable, "-m", "train", "soup", str(one), str(two), "--data", str(tmp_path / "none.csv"), "--out", str(one)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,  # this checkout's train, wherever pytest was started
    )
    assert result.returncode == 2
    assert f"--out {one} is one of the models being averaged" in result.stderr
    assert file_sha256(one) == before
    missing = subprocess.run(  # named before the (here absent) data is read
        [sys.executable, "-m", "train", "soup", str(one), str(tmp_path / "gone.keras"), "--data", str(tmp_path / "none.csv"),
         "--out", str(tmp_path / "soup.keras")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert missing.returncode == 2 and "gone.keras: no such model file" in missing.stderr and "none.csv" not in missing.stderr
