import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from edge import contract
from train.config import TrainConfig
from train.fit import fit
from train.model import make_mini_xception, predict_probabilities

# needs TensorFlow: make check leaves these to make test
pytestmark = pytest.mark.tf


def test_mini_xception_has_the_papers_parameter_count():
    model = make_mini_xception()
    assert model.count_params() == 58_423
    assert model.input_shape == (None, *contract.INPUT_SHAPE)
    assert model.output_shape == (None, contract.NUM_CLASSES)
    assert not any("dense" in layer.name for layer in model.layers)


def test_predictions_run_in_fixed_batches_and_pad_nothing_into_results(small_dataset):
    images = small_dataset[0][:37]
    model = make_mini_xception()
    seen = []

    class RecordingModel:
        def __call__(self, inputs, training=False):
            seen.append(tuple(inputs.shape))
            return model(inputs, training=training)

    probabilities = predict_probabilities(RecordingModel(), images, batch_size=16, flip_tta=False)
    assert seen == [(16, 48, 48, 1)] * 3
    assert probabilities.shape == (37, 7)
    np.testing.assert_allclose(probabilities, model(contract.scale_pixels(images), training=False).numpy(), atol=1e-5)
    with_tta = predict_probabilities(RecordingModel(), images, batch_size=16, flip_tta=True)
    mirrored = model(contract.scale_pixels(images[:, :, ::-1]), training=False).numpy()
    np.testing.assert_allclose(with_tta, (probabilities + mirrored) / 2, atol=1e-5)


def run_fit(csv_path, out_dir, **overrides):
    config = dict(data=str(csv_path), out_dir=str(out_dir), epochs=2, batch_size=16, patience=5, verbose=0, cache_dir=str(out_dir / "cache"))
    config.update(overrides)
    return fit(TrainConfig(**config))


@pytest.mark.slow
def test_smoke_training_writes_every_artifact(small_csv, tmp_path):
    report = run_fit(small_csv, tmp_path)
    for name in ("mini_xception.keras", "history.csv", "curves.png", "train_report.json"):
        assert (tmp_path / name).is_file(), name
    stored = json.loads((tmp_path / "train_report.json").read_text())
    assert stored == report
    assert report["parameters"] == 58_423 and report["epochs_run"] == 2
    assert set(report["float_accuracy"]) == {"PublicTest", "PublicTest_flip_tta", "PrivateTest", "PrivateTest_flip_tta"}
    assert report["float_accuracy_privatetest"] == report["float_accuracy"]["PrivateTest_flip_tta"]
    assert not (tmp_path / "mini_xception.keras.partial").exists()


@pytest.mark.slow
def test_resume_continues_where_the_run_stopped(small_csv, tmp_path, capsys):
    import keras

    run_fit(small_csv, tmp_path, epochs=3, select_on="balanced_accuracy")  # the checkpoint chosen by another figure
    # simulate a run stopped after its first epoch
    first = keras.models.load_model(tmp_path / ".train" / "last.keras")
    steps_per_epoch = int(first.optimizer.iterations.numpy()) // 3
    import json as json_module

    state = json_module.loads((tmp_path / ".train" / "state.json").read_text())
    state["next_epoch"] = 1
    del state["finished"]  # an interrupted run never got that far
    (tmp_path / ".train" / "state.json").write_text(json_module.dumps(state))
    history = (tmp_path / "history.csv").read_text().splitlines()
    (tmp_path / "history.csv").write_text("\n".join(history[:2]) + "\n")
    capsys.readouterr()
    report = run_fit(small_csv, tmp_path, epochs=3, resume=True, select_on="balanced_accuracy")
    assert f"resuming at epoch 2 (best PublicTest balanced accuracy so far {state['best_val_accuracy']:.4f})" in capsys.readouterr().out
    resumed = keras.models.load_model(tmp_path / ".train" / "last.keras")
    assert int(resumed.optimizer.iterations.numpy()) == 5 * steps_per_epoch  # 3 + 2 more: the optimizer state went on
    epochs = [line.split(",")[0] for line in (tmp_path / "history.csv").read_text().splitlines()[1:]]
    assert epochs == ["0", "1", "2"] and report["epochs_run"] == 3
    for epochs in (3, 4):  # finished: one answer, whatever --epochs says (issue 22: it used to advise more epochs, then refuse them)
        with pytest.raises(ValueError, match="finished \\(all 3 epochs.*nothing to resume"):
            run_fit(small_csv, tmp_path, epochs=epochs, resume=True, select_on="balanced_accuracy")


def test_resume_without_a_run_is_a_clear_error(small_csv, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        run_fit(small_csv, tmp_path, resume=True)


@pytest.mark.slow
def test_training_survives_a_dataset_not_divisible_by_the_batch(small_csv, tmp_path):
    """Regression: tensorflow-cpu 2.21 with oneDNN segfaulted when the last batch was smaller.
    Run in a child process with oneDNN forced on, so a crash fails this test instead of killing pytest."""
    script = (
        "from train.config import TrainConfig\nfrom train.fit import fit\n"
        f"fit(TrainConfig(data={str(small_csv)!r}, out_dir={str(tmp_path)!r}, epochs=2, batch_size=24, verbose=0))\n"
    )
    env = {"TF_ENABLE_ONEDNN_OPTS": "1", "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"training crashed (exit {result.returncode}):\n{result.stderr[-2000:]}"


def test_an_odd_batch_is_refused_before_training_while_onednn_is_on(small_csv, tmp_path, monkeypatch):
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    with pytest.raises(ValueError, match=r"--batch-size \(train.batch_size\) 21 is odd: .*oneDNN.*TF_ENABLE_ONEDNN_OPTS=0"):
        run_fit(small_csv, tmp_path, batch_size=21)
    assert not (tmp_path / "mini_xception.keras").exists() and not (tmp_path / "history.csv").exists()


@pytest.mark.slow
def test_the_train_cli_trains_on_an_odd_batch_with_onednn_off(small_csv, tmp_path):
    """Regression: with oneDNN on, every odd batch (1, 3, 7, 9, 15, 21, 33, 63, 65 tried) crashed the first
    training step (exit -11 or -6); the CLI turns oneDNN off for the run and says so."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no TF_ENABLE_ONEDNN_OPTS
    result = subprocess.run(
        [sys.executable, "-m", "train", "fit", "--data", str(small_csv), "--out-dir", str(tmp_path / "run"), "--epochs", "1",
         "--batch-size", "21", "--cache-dir", str(tmp_path / "cache")],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, f"exit {result.returncode}:\n{result.stderr[-2000:]}"
    assert "--batch-size 21 is odd: oneDNN turned off for this run" in result.stderr
    assert json.loads((tmp_path / "run" / "train_report.json").read_text())["config"]["batch_size"] == 21


def test_train_cli_reports_bad_data_without_a_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("emotion,pixels,Usage\n0,1 2,Training\n")
    result = subprocess.run(
        [sys.executable, "-m", "train", "summary", "--data", str(bad), "--cache-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert f"{bad} row 2" in result.stderr and "Traceback" not in result.stderr
