"""Training for balanced predictions (issue 18): logit-adjusted loss, class-balanced sampling, checkpoints chosen
on PublicTest balanced accuracy."""

import csv
import json

import keras
import numpy as np
import pytest

from edge import contract
from train.config import TrainConfig
from train.fit import fit
from train.input import class_sampling_weights, make_train_dataset
from train.model import LogitAdjustedCrossentropy
from train.targets import class_prior


def test_logit_adjusted_loss_is_the_cross_entropy_of_the_adjusted_logits():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 7)).astype(np.float32)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    targets = np.eye(7, dtype=np.float32)[[0, 1, 2, 3, 6]]
    prior = np.array([0.1, 0.02, 0.04, 0.27, 0.15, 0.12, 0.3])
    tau = 0.8
    adjusted = logits + tau * np.log(prior)
    log_softmax = adjusted - np.log(np.exp(adjusted).sum(axis=1, keepdims=True))
    by_hand = -(targets * log_softmax).sum(axis=1).mean()
    loss = LogitAdjustedCrossentropy(prior.tolist(), tau)
    assert float(loss(targets, probabilities)) == pytest.approx(by_hand, rel=1e-4)
    plain = keras.losses.CategoricalCrossentropy()(targets, probabilities)
    assert float(LogitAdjustedCrossentropy(prior.tolist(), 0.0)(targets, probabilities)) == pytest.approx(float(plain), rel=1e-5)


def test_sampling_weights_go_from_the_data_mix_to_every_class_equally():
    targets = np.eye(7)[[3] * 60 + [6] * 30 + [1] * 10]
    natural = class_sampling_weights(targets, 0.0)
    assert natural[3] == pytest.approx(0.6) and natural[1] == pytest.approx(0.1) and natural[0] == 0
    balanced = class_sampling_weights(targets, 1.0)
    assert balanced[[1, 3, 6]] == pytest.approx([1 / 3] * 3) and balanced[0] == 0
    assert class_prior(targets)[3] == pytest.approx(0.6)


def test_class_balanced_sampling_draws_rare_classes_as_often_as_common_ones():
    rng = np.random.default_rng(1)
    labels = np.array([3] * 400 + [6] * 150 + [1] * 20)
    images = rng.integers(0, 256, (len(labels), 48, 48), np.uint8)
    config = TrainConfig(data="", batch_size=32, balanced_sampling=1.0)
    # the op seeds combine with TensorFlow's global seed (as in fit()): set it, so the draws do not depend on which
    # test ran before in this process
    keras.utils.set_random_seed(config.seed)
    dataset = make_train_dataset(images, np.eye(7, dtype=np.float32)[labels], config)
    drawn = np.concatenate([y.numpy().argmax(axis=1) for _, y in dataset.take(30)])  # endless: 30 batches
    shares = np.bincount(drawn, minlength=7)[[1, 3, 6]] / len(drawn)
    assert shares == pytest.approx([1 / 3] * 3, abs=0.07)  # 960 draws; natural mix would give disgust 3.5%
    assert {tuple(x.shape) for x, _ in dataset.take(3)} == {(32, 48, 48, 1)}  # every batch full-sized


@pytest.mark.tf
def test_a_run_chosen_on_balanced_accuracy_records_it_and_reloads_with_its_loss(small_csv, tmp_path):
    config = TrainConfig(data=str(small_csv), out_dir=str(tmp_path), epochs=3, batch_size=16, patience=5, verbose=0,
                         cache_dir=str(tmp_path / "cache"), logit_adjust=1.0, balanced_sampling=0.5, select_on="balanced_accuracy")
    report = fit(config)
    with (tmp_path / "history.csv").open() as stream:
        history = list(csv.DictReader(stream))
    balanced = [float(row["val_balanced_accuracy"]) for row in history]
    assert report["best_epoch"] == int(np.argmax(balanced)) + 1
    assert report["best_val_balanced_accuracy_during_training"] == round(max(balanced), 4)
    assert "balanced accuracy" in report["selected_on"]
    assert sum(report["class_prior"].values()) == pytest.approx(1.0, abs=1e-4)
    assert set(report["float_balanced_accuracy"]) == {"PublicTest", "PublicTest_flip_tta", "PrivateTest", "PrivateTest_flip_tta"}
    reloaded = keras.models.load_model(tmp_path / "mini_xception.keras")  # the custom loss is registered
    assert isinstance(reloaded.loss, LogitAdjustedCrossentropy) and reloaded.loss.tau == 1.0
    assert reloaded.count_params() == 58_423
    state = json.loads((tmp_path / ".train" / "state.json").read_text())
    assert state["best_val_accuracy"] == pytest.approx(max(balanced), abs=1e-6)  # the monitored figure resumes too
    state.pop("finished")  # as if it had stopped after its first epoch
    state["next_epoch"] = 1
    (tmp_path / ".train" / "state.json").write_text(json.dumps(state))
    for changed in ({"logit_adjust": 0.5}, {"balanced_sampling": 0.0}, {"select_on": "accuracy"}):
        with pytest.raises(ValueError, match=f"changed since it started: {next(iter(changed))}"):
            fit(TrainConfig(**{**config.__dict__, **changed, "resume": True}))
    assert contract.NUM_CLASSES == len(report["class_prior"])


@pytest.mark.tf
def test_a_run_chosen_on_the_mean_balanced_accuracy_of_both_label_sets(tmp_path):
    """--select-on mean_balanced_accuracy (issue 31's rule): each epoch logs the balanced accuracy on FER2013 labels and
    on the FER+ majority and their mean, which chooses the checkpoint; without FER+ votes it is refused."""
    from conftest import synthetic_faces, synthetic_votes, write_csv, write_ferplus

    from edge.metrics import balanced_accuracy
    from train.data import load_fer2013
    from train.ferplus import load_ferplus
    from train.model import predict_probabilities
    from train.splits import take_splits

    images, labels, splits = synthetic_faces(140)
    data = write_csv(tmp_path / "fer2013.csv", images, labels, splits)
    config = TrainConfig(data=str(data), out_dir=str(tmp_path / "run"), epochs=3, batch_size=16, patience=5, verbose=0,
                         cache_dir=str(tmp_path / "cache"), select_on="mean_balanced_accuracy")
    with pytest.raises(Exception, match="fer2013new.csv: FER\\+ votes not found"):
        fit(config)
    write_ferplus(tmp_path / "fer2013new.csv", synthetic_votes(labels)[0], splits)
    report = fit(config)
    with (tmp_path / "run" / "history.csv").open() as stream:
        history = list(csv.DictReader(stream))
    means = [float(row["val_mean_balanced_accuracy"]) for row in history]
    for row, mean in zip(history, means, strict=True):
        assert mean == pytest.approx((float(row["val_balanced_accuracy_fer2013"]) + float(row["val_balanced_accuracy_ferplus"])) / 2)
        assert float(row["val_balanced_accuracy"]) == pytest.approx(float(row["val_balanced_accuracy_fer2013"]))  # its own set
    assert report["best_epoch"] == int(np.argmax(means)) + 1
    assert report["best_val_mean_balanced_accuracy_during_training"] == round(max(means), 4)
    assert report["selected_on"].startswith("PublicTest mean balanced accuracy")
    # the figure of the chosen model, measured again: one view, every PublicTest face / its clear FER+ majorities
    dataset = load_fer2013(str(data), cache_dir=str(tmp_path / "cache"))
    public = take_splits(dataset, 0, config.seed, load_ferplus(tmp_path / "fer2013new.csv", dataset))["PublicTest"]
    model = keras.models.load_model(tmp_path / "run" / "mini_xception.keras", compile=False)
    predicted = predict_probabilities(model, public.images, flip_tta=False).argmax(axis=1)
    majority = public.votes.majority()
    clear = majority >= 0
    again = (balanced_accuracy(public.labels, predicted) + balanced_accuracy(majority[clear], predicted[clear])) / 2
    assert again == pytest.approx(max(means), abs=1e-6)
