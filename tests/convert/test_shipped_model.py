"""The shipped int8 model: its PrivateTest accuracy recomputed from FER2013 equals the committed report,
and the targets hold. Reads ../shared/data/fer2013.zip (CI has it there)."""

import json

import numpy as np
from conftest import ROOT

from convert.evaluate import predict_in_batches
from edge.config import BUNDLED_MODEL
from edge.model import EmotionModel, file_sha256
from train.data import load_fer2013

REPORT = json.loads((ROOT / "models" / "report.json").read_text())
MAX_DROP_POINTS = 0.5
MAX_SIZE_BYTES = 120_000
TARGET_ACCURACY = 0.66


def test_bundled_model_is_the_reported_one():
    assert file_sha256(BUNDLED_MODEL) == file_sha256(ROOT / "models" / REPORT["int8_model"])
    assert BUNDLED_MODEL.with_suffix(".json").read_text() == (ROOT / "models" / REPORT["int8_model"]).with_suffix(".json").read_text()


def test_recomputed_accuracy_equals_the_committed_report(real_data, tmp_path):
    dataset = load_fer2013(real_data, cache_dir=tmp_path)
    model = EmotionModel(BUNDLED_MODEL)
    for split in ("PublicTest", "PrivateTest"):
        faces, labels = dataset.split(split)
        accuracy = float(np.mean(predict_in_batches(model.classify, faces).argmax(axis=1) == labels))
        assert abs(accuracy - REPORT["results"]["int8"][split]["accuracy"]) <= 0.001, split


def test_size_and_quantization_cost_meet_the_targets():
    assert REPORT["sizes_bytes"]["int8"] <= MAX_SIZE_BYTES
    drop = REPORT["results"]["keras"]["PrivateTest"]["accuracy"] - REPORT["results"]["int8"]["PrivateTest"]["accuracy"]
    assert drop * 100 <= MAX_DROP_POINTS
    assert REPORT["gate"]["passed"] and REPORT["config"]["limit"] == 0


def test_privatetest_accuracy_meets_the_target():
    assert REPORT["results"]["int8"]["PrivateTest"]["accuracy"] >= TARGET_ACCURACY
