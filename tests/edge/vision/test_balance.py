"""Balanced accuracy, macro-F1 over the classes present, and the class-prior correction the runtime applies
(issue 18). No TensorFlow: copies of the shipped int8 model and hand-computed confusion matrices."""

import json
import shutil

import numpy as np
import pytest

from edge import contract
from edge.config import RunConfig, bundled_model
from edge.metrics import NO_FACE, balanced_accuracy, classification_metrics
from edge.vision.model import EmotionModel, ModelError, sidecar_digest, sidecar_path

NAMES = ("a", "b", "c")


def test_metrics_against_a_hand_computed_confusion_matrix():
    # truth a a a a b b c c c c; predicted a a a b b c c c a c
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    predicted = np.array([0, 0, 0, 1, 1, 2, 2, 2, 0, 2])
    metrics = classification_metrics(labels, predicted, NAMES)
    assert metrics["confusion_matrix"] == [[3, 1, 0], [0, 1, 1], [1, 0, 3]]
    assert metrics["accuracy"] == 0.7
    # recalls 3/4, 1/2, 3/4 -> 2/3; precisions 3/4, 1/2, 3/4 -> F1 = recall here
    assert metrics["balanced_accuracy"] == round((0.75 + 0.5 + 0.75) / 3, 4)
    assert metrics["macro_f1"] == round((0.75 + 0.5 + 0.75) / 3, 4)
    assert metrics["classes_averaged"] == list(NAMES)
    assert balanced_accuracy(labels, predicted, 3) == pytest.approx(2 / 3)


def test_a_class_without_faces_is_left_out_of_the_averages_not_counted_as_zero():
    # no face of class c (CK+48 has no neutral); one a is wrongly called c
    labels = np.array([0, 0, 0, 0, 1, 1])
    predicted = np.array([0, 0, 0, 2, 1, 0])
    metrics = classification_metrics(labels, predicted, NAMES)
    assert metrics["classes_averaged"] == ["a", "b"]
    assert metrics["balanced_accuracy"] == round((3 / 4 + 1 / 2) / 2, 4)
    f1_a = 2 * (3 / 4) * (3 / 4) / (3 / 4 + 3 / 4)  # precision 3/4 (3 of 4 called a), recall 3/4
    f1_b = 2 * 1.0 * 0.5 / 1.5
    assert metrics["macro_f1"] == round((f1_a + f1_b) / 2, 4)
    assert metrics["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert balanced_accuracy(labels, predicted, 3) == pytest.approx(0.625)


def test_no_face_counts_against_recall_and_ties_in_scores_go_to_the_first_label():
    labels = np.array([0, 1, 1])
    scores = np.array([[0.5, 0.5, 0.0], [0.2, 0.4, 0.4], [0.0, 0.0, 1.0]])
    predicted = scores.argmax(axis=1)  # ties: 0 and 1 -> 0; 1 and 2 -> 1
    assert predicted.tolist() == [0, 1, 2]
    predicted[2] = NO_FACE
    metrics = classification_metrics(labels, predicted, NAMES)
    assert metrics["balanced_accuracy"] == round((1.0 + 0.5) / 2, 4)
    assert metrics["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]


def test_balance_scores_divides_by_the_prior_and_renormalises():
    scores = np.array([[0.6, 0.3, 0.1]], np.float32)
    prior = [0.6, 0.3, 0.1]
    assert np.allclose(contract.balance_scores(scores, prior, 1.0), [[1 / 3, 1 / 3, 1 / 3]])
    half = contract.balance_scores(scores, prior, 0.5)
    expected = np.sqrt([0.6, 0.3, 0.1]) / np.sqrt([0.6, 0.3, 0.1]).sum()
    assert np.allclose(half, [expected]) and half.sum() == pytest.approx(1.0)
    assert contract.balance_scores(scores, prior, 0.0) is scores


@pytest.fixture
def model_copy(tmp_path):
    path = tmp_path / "model.tflite"
    shipped = bundled_model("ferplus")
    shutil.copy(shipped, path)
    shutil.copy(sidecar_path(shipped), sidecar_path(path))
    return path


def set_contract(model_path, redigest=True, drop=(), **fields):
    path = sidecar_path(model_path)
    sidecar = json.loads(path.read_text())
    sidecar["contract"].update(fields)
    for key in drop:
        sidecar["contract"].pop(key, None)
    if redigest:
        sidecar["digest"] = sidecar_digest(sidecar)
    path.write_text(json.dumps(sidecar, indent=2))


def a_face(grace_hopper_gray):
    return contract.crop_face(grace_hopper_gray, (150, 100, 220, 250))[np.newaxis]


def test_the_sidecars_prior_and_tau_flip_a_known_faces_label_and_balance_zero_restores_it(model_copy, grace_hopper_gray):
    face = a_face(grace_hopper_gray)
    plain = EmotionModel(model_copy, balance=0.0).classify(face)[0]
    first, second = np.argsort(plain)[::-1][:2]
    assert plain[second] > 0  # int8 scores: a class at 0 could not be lifted by any prior
    prior = np.full(contract.NUM_CLASSES, 1.0)
    prior[second] = plain[second] / plain[first] / 100  # rare enough that the runner-up wins at tau 1
    prior = (prior / prior.sum()).tolist()
    set_contract(model_copy, balance=1.0, class_prior=prior, drop=("class_offsets",))  # the prior alone

    corrected_model = EmotionModel(model_copy)
    assert corrected_model.balance == 1.0 and corrected_model.sidecar_verified
    corrected = corrected_model.classify(face)[0]
    assert corrected.argmax() == second != plain.argmax()
    assert corrected.sum() == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(corrected, contract.balance_scores(plain[np.newaxis], prior, 1.0)[0], atol=1e-6)

    restored = EmotionModel(model_copy, balance=0.0).classify(face)[0]
    assert restored.argmax() == plain.argmax() and np.allclose(restored, plain)


def test_balance_scores_adds_per_class_offsets_to_the_corrected_log_scores():
    scores = np.array([[0.6, 0.3, 0.1]], np.float32)
    prior = [0.6, 0.3, 0.1]
    offsets = [0.0, 0.0, np.log(2.0)]  # class c counted twice over after the correction
    shifted = contract.balance_scores(scores, prior, 1.0, offsets)
    assert np.allclose(shifted, [[0.25, 0.25, 0.5]]) and shifted.sum() == pytest.approx(1.0)
    assert np.allclose(contract.balance_scores(scores, prior, 1.0, [3.0, 3.0, 3.0 + np.log(2.0)]), shifted)  # a common shift is nothing
    assert contract.balance_scores(scores, prior, 0.0, offsets) is scores  # tau 0: the scores as trained


def test_the_sidecars_offsets_flip_a_label_and_another_tau_or_balance_zero_drops_them(model_copy, grace_hopper_gray):
    face = a_face(grace_hopper_gray)
    plain = EmotionModel(model_copy, balance=0.0).classify(face)[0]
    first, second = np.argsort(plain)[::-1][:2]
    assert plain[second] > 0
    prior = [1 / 7] * 7  # a uniform prior: tau alone changes nothing, the offsets do all of it
    offsets = [0.0] * 7
    offsets[second] = float(np.log(plain[first] / plain[second]) + 0.5)
    set_contract(model_copy, balance=0.5, class_prior=prior, class_offsets=offsets)

    model = EmotionModel(model_copy)
    assert model.sidecar_verified and model.class_offsets == offsets
    corrected = model.classify(face)[0]
    assert corrected.argmax() == second != plain.argmax() and corrected.sum() == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(corrected, contract.balance_scores(plain[np.newaxis], prior, 0.5, offsets)[0], atol=1e-6)
    assert EmotionModel(model_copy, balance=0.5).class_offsets == offsets  # the recorded tau, given explicitly
    other_tau = EmotionModel(model_copy, balance=0.8)
    assert other_tau.class_offsets is None and other_tau.classify(face)[0].argmax() == plain.argmax()
    restored = EmotionModel(model_copy, balance=0.0).classify(face)[0]
    assert np.allclose(restored, plain)
    set_contract(model_copy, redigest=False, class_offsets=[0.0] * 7)  # offsets edited by hand after conversion
    with pytest.raises(ModelError, match="digest differs"):
        EmotionModel(model_copy)


def test_the_recorded_tau_is_covered_by_the_digest(model_copy):
    set_contract(model_copy, balance=0.5, class_prior=[1 / 7] * 7)
    EmotionModel(model_copy)
    set_contract(model_copy, redigest=False, balance=1.0)  # tau edited by hand after conversion
    with pytest.raises(ModelError, match="digest differs"):
        EmotionModel(model_copy)


@pytest.mark.parametrize("fields, message", [
    ({"balance": 1.5, "class_prior": [1 / 7] * 7}, "contract.balance must be a number from 0.0 to 1.0"),
    ({"balance": "high", "class_prior": [1 / 7] * 7}, "contract.balance must be a number"),
    ({"balance": 0.5, "class_prior": [0.5, 0.5]}, "contract.class_prior must be 7 positive shares"),
    ({"balance": 0.5, "class_prior": [0.0, 0.2, 0.2, 0.2, 0.2, 0.1, 0.1]}, "contract.class_prior must be 7 positive shares"),
    ({"balance": 0.5, "drop": ("class_prior",)}, "records no contract.class_prior"),
    ({"balance": 0.5, "class_prior": [1 / 7] * 7, "class_offsets": [0.1] * 6}, "contract.class_offsets must be 7 numbers from -8 to 8"),
    ({"balance": 0.5, "class_prior": [1 / 7] * 7, "class_offsets": [0, 0, 0, 0, 0, 0, 50]}, "contract.class_offsets must be 7 numbers"),
    ({"balance": 0.5, "class_prior": [1 / 7] * 7, "class_offsets": [0, 0, 0, 0, 0, 0, True]}, "contract.class_offsets must be 7 numbers"),
    ({"balance": 0.0, "class_prior": [1 / 7] * 7, "class_offsets": [0.1] * 7}, "class_offsets are fitted at a tau, but contract.balance is 0"),
])
def test_a_sidecar_with_an_impossible_balance_or_prior_is_refused_naming_the_key(model_copy, fields, message):
    set_contract(model_copy, **fields)
    with pytest.raises(ModelError, match=message) as error:
        EmotionModel(model_copy)
    assert str(sidecar_path(model_copy)) in str(error.value)


def test_balance_on_the_command_line_needs_a_recorded_prior(model_copy):
    set_contract(model_copy, balance=0.0, drop=("class_prior", "class_offsets"))  # as a sidecar written before priors were recorded
    assert EmotionModel(model_copy).balance == 0.0
    with pytest.raises(ModelError, match="--balance 0.5"):
        EmotionModel(model_copy, balance=0.5)


def test_the_balance_setting_is_bounded_like_every_setting():
    assert RunConfig().balance is None  # the sidecar decides
    with pytest.raises(ValueError, match=r"--balance \(run.balance\) must be between 0 and 1, got 1.5"):
        RunConfig(balance=1.5)


def test_shipped_sidecars_record_a_valid_prior_and_their_balanced_figures():
    for name in ("fer2013", "ferplus"):
        model = EmotionModel(bundled_model(name))
        assert model.sidecar_verified
        assert model.class_prior is not None and sum(model.class_prior) == pytest.approx(1.0, abs=1e-4)
        assert set(model.sidecar["balanced_accuracy"]) == {"PublicTest", "PrivateTest"}
        assert 0 <= model.balance <= 1
