"""Which label set a model was trained on, where FER+ votes come from, and flip averaging from one pass each way."""

import json

import numpy as np
import pytest
from conftest import synthetic_faces, synthetic_votes, write_csv, write_ferplus

from convert.labelsets import find_votes, trained_on, with_and_without_flip
from edge.contract import average_mirrors, with_mirrors
from train.data import DatasetError, load_fer2013


def test_trained_on_comes_from_the_training_report_or_labels(tmp_path):
    model = tmp_path / "mini_xception.keras"
    assert trained_on(model, None) == ("fer2013", "default: no train_report.json beside mini_xception.keras and no --labels")
    assert trained_on(model, "ferplus") == ("ferplus", "--labels")
    report = tmp_path / "train_report.json"
    report.write_text(json.dumps({"trained_on": "ferplus"}))
    assert trained_on(model, None) == ("ferplus", str(report))
    assert trained_on(model, "ferplus") == ("ferplus", "--labels")
    with pytest.raises(ValueError, match=f"--labels fer2013 but {report} says the model was trained on ferplus"):
        trained_on(model, "fer2013")
    report.write_text(json.dumps({"parameters": 1}))  # from before --labels existed: FER2013 was all there was
    assert trained_on(model, None) == ("fer2013", str(report))
    report.write_text("{not json")
    with pytest.raises(ValueError, match="train_report.json: not a valid training report"):
        trained_on(model, None)
    with pytest.raises(ValueError, match="--labels 'fer': expected one of fer2013, ferplus"):
        trained_on(model, "fer")


def test_votes_beside_the_csv_are_found_and_a_missing_file_is_explained(tmp_path):
    images, labels, splits = synthetic_faces(35)
    data = write_csv(tmp_path / "fer2013.csv", images, labels, splits)
    dataset = load_fer2013(data)
    votes, note = find_votes(dataset, str(data), None)
    assert votes is None and f"{tmp_path / 'fer2013new.csv'} not found" in note
    rows, majority = synthetic_votes(labels)
    write_ferplus(tmp_path / "fer2013new.csv", rows, splits)
    votes, note = find_votes(dataset, str(data), None)
    assert note is None and votes.majority().tolist() == majority.tolist()
    with pytest.raises(DatasetError, match="elsewhere.csv: FER\\+ votes not found"):
        find_votes(dataset, str(data), str(tmp_path / "elsewhere.csv"))  # an explicit file must exist


def test_flip_averaging_from_one_pass_each_way_equals_the_runtimes():
    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    weights = np.random.default_rng(1).normal(size=(48 * 48, 7))

    def classify(batch):  # any function of the pixels that tells a face from its mirror
        return batch.reshape(len(batch), -1).astype(np.float64) @ weights

    both = with_and_without_flip(classify, faces)
    np.testing.assert_array_equal(both[False], classify(faces))
    np.testing.assert_allclose(both[True], average_mirrors(classify(with_mirrors(faces))))
    assert not np.allclose(both[True], both[False])
