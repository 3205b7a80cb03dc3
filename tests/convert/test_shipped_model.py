"""Each shipped model in edge/assets: its accuracy recomputed on both label sets, with and without flip averaging,
equals its committed report, and the targets hold. Reads ../shared/data/fer2013.tar.gz and fer2013new.csv
(CI has them there)."""

import json

import numpy as np
import pytest
from conftest import REAL_CKPLUS, REAL_CSV, REAL_FERPLUS

from convert.evaluate import predict_in_batches
from edge.config import BUNDLED_MODEL, BUNDLED_MODELS, DEFAULT_MODEL, bundled_model
from edge.metrics import classification_metrics
from edge.vision.model import EmotionModel, file_sha256, read_sidecar, sidecar_path

# re-scores the shipped models on the real FER2013 test splits: tens of seconds
pytestmark = pytest.mark.slow

SHIPPED = [name for name in BUNDLED_MODELS if bundled_model(name).is_file()]
MAX_DROP_POINTS = 0.3
MAX_SIZE_BYTES = 120_000
MAX_PARAMETERS = 100_000
# PrivateTest accuracy and balanced accuracy of the int8 model against the label set it was trained on, with the
# sidecar's own test-time averaging and class-prior correction. fer2013: issue 14's target (67%). ferplus: since
# issue 18 the default is chosen for balanced accuracy on PublicTest, which traded accuracy (80.63% before) for
# every expression (balanced 64.7% before). Its PrivateTest figures, 78.21% / 74.97% (a soup of four runs, tau and
# per-class offsets fitted on PublicTest), meet that targets (78% / 74%): a re-shipped default must too.
TARGET_ACCURACY = {"fer2013": 0.67, "ferplus": 0.78}
TARGET_BALANCED_ACCURACY = {"fer2013": 0.65, "ferplus": 0.74}


def report_of(name: str) -> dict:
    return json.loads((bundled_model(name).parent / "report.json").read_text())


@pytest.fixture(scope="module")
def real_splits(tmp_path_factory):
    from train.data import load_fer2013
    from train.ferplus import load_ferplus
    from train.splits import take_splits

    for path in (REAL_CSV, REAL_FERPLUS):
        if not path.exists():
            pytest.fail(f"{path} is missing: the shipped-model tests need it (CI provides it there)")
    dataset = load_fer2013(REAL_CSV, cache_dir=tmp_path_factory.mktemp("cache"))
    return take_splits(dataset, 0, 0, load_ferplus(REAL_FERPLUS, dataset))


def test_the_default_model_is_shipped():
    assert DEFAULT_MODEL in SHIPPED and BUNDLED_MODEL == bundled_model(DEFAULT_MODEL)


@pytest.mark.parametrize("name", SHIPPED)
def test_bundled_files_belong_together(name):
    path, report = bundled_model(name), report_of(name)
    sidecar = read_sidecar(sidecar_path(path))
    assert report["int8_model"] == path.name and sidecar["sha256"] == file_sha256(path)
    assert report["sizes_bytes"]["int8"] == path.stat().st_size == sidecar["size_bytes"]
    assert sidecar["trained_on"] == report["trained_on"] == name
    assert sidecar["accuracy_by_label_set"] == report["accuracy_by_label_set"]["int8"]
    assert (path.parent / "MODEL_CARD.md").read_text().startswith(f"# Model card: {path.name}")


@pytest.mark.parametrize("name", SHIPPED)
def test_recomputed_accuracy_equals_the_committed_report(name, real_splits):
    report = report_of(name)
    measured = report["accuracy_by_label_set"]["int8"]
    for flip in (False, True):
        model = EmotionModel(bundled_model(name), flip_tta=flip)  # the sidecar's shifts and class-prior correction
        for split in ("PublicTest", "PrivateTest"):
            key = f"{split}_flip_tta" if flip else split
            predicted = predict_in_batches(model.classify, real_splits[split].images).argmax(axis=1)
            majority = real_splits[split].votes.majority()
            clear = majority >= 0
            assert abs(np.mean(predicted == real_splits[split].labels) - measured["fer2013"][key]) <= 0.001, key
            assert abs(np.mean(predicted[clear] == majority[clear]) - measured["ferplus_majority"][key]) <= 0.001, key
            assert report["ferplus"]["excluded"][split] == int((~clear).sum())


@pytest.mark.parametrize("name", SHIPPED)
def test_size_and_quantization_cost_meet_the_targets(name):
    report = report_of(name)
    assert report["sizes_bytes"]["int8"] <= MAX_SIZE_BYTES and report["parameters"] <= MAX_PARAMETERS
    drop = report["results"]["keras"]["PrivateTest"]["accuracy"] - report["results"]["int8"]["PrivateTest"]["accuracy"]
    assert drop * 100 <= MAX_DROP_POINTS
    assert report["gate"]["passed"] and report["config"]["limit"] == 0


@pytest.mark.parametrize("name", SHIPPED)
def test_privatetest_accuracy_meets_the_target(name):
    report = report_of(name)
    key = "PrivateTest_flip_tta" if report["flip_tta"] else "PrivateTest"
    judged = {"fer2013": "fer2013", "ferplus": "ferplus_majority"}[name]
    assert report["results"]["int8"]["PrivateTest"]["accuracy"] == report["accuracy_by_label_set"]["int8"][judged][key]
    assert report["results"]["int8"]["PrivateTest"]["accuracy"] >= TARGET_ACCURACY[name]


@pytest.mark.parametrize("name", SHIPPED)
def test_recomputed_balanced_accuracy_and_microsofts_figure_equal_the_report(name, real_splits):
    """As the runtime runs the model (the sidecar's flip, shifts and tau): accuracy, balanced accuracy and macro-F1
    against the label set it is judged by, and accuracy under Microsoft's FER+ rule."""
    report = report_of(name)
    model = EmotionModel(bundled_model(name))
    assert model.balance == report["balance"]["tau"] and model.flip_tta == report["flip_tta"]
    for split in ("PublicTest", "PrivateTest"):
        predicted = predict_in_batches(model.classify, real_splits[split].images).argmax(axis=1)
        if report["judged_by"] == "ferplus_majority":
            truth = real_splits[split].votes.majority()
        else:
            truth = real_splits[split].labels
        counted = truth >= 0
        metrics = classification_metrics(truth[counted], predicted[counted])
        recorded = report["results"]["int8"][split]
        for key in ("accuracy", "balanced_accuracy", "macro_f1"):
            assert abs(metrics[key] - recorded[key]) <= 0.001, (split, key)
        microsoft = real_splits[split].votes.microsoft_majority()
        kept = microsoft >= 0
        assert abs(np.mean(predicted[kept] == microsoft[kept]) - report["ferplus_microsoft"]["int8"][split]) <= 0.001
        assert report["ferplus_microsoft"]["excluded"][split] == int((~kept).sum())


@pytest.mark.parametrize("name", SHIPPED)
def test_privatetest_balanced_accuracy_meets_the_target_and_tau_was_chosen_on_publictest(name):
    report = report_of(name)
    assert report["results"]["int8"]["PrivateTest"]["balanced_accuracy"] >= TARGET_BALANCED_ACCURACY[name]
    assert "PrivateTest" not in json.dumps(report["balance"]["sweep_publictest"])
    recorded = [row for row in report["balance"]["sweep_publictest"] if row["tau"] == report["balance"]["tau"]]
    assert recorded
    # the reported PublicTest figure is tau's, or, with per-class offsets fitted on PublicTest at that tau, theirs
    at_publictest = report["balance"].get("class_offsets_publictest", recorded[0])
    assert at_publictest["accuracy"] == report["results"]["int8"]["PublicTest"]["accuracy"]
    assert "PrivateTest" not in json.dumps(report["balance"].get("class_offsets_cross_validated", {}))


@pytest.mark.parametrize("name", SHIPPED)
def test_ckplus48_figures_in_the_report_are_what_edge_eval_crops_measures(name):
    """CK+48 is a check the developers can see, never a choice: recomputed here from the zip in ../shared/data."""
    from convert.evaluate import ckplus_accuracy

    if not REAL_CKPLUS.exists():
        pytest.fail(f"{REAL_CKPLUS} is missing: the shipped-model tests need it (CI provides it there)")
    recorded = report_of(name)["ckplus48"]
    measured = ckplus_accuracy(bundled_model(name), str(REAL_CKPLUS))
    assert measured["images"] == recorded["images"] == 981 - 54  # contempt skipped
    assert measured["skipped_folders"] == ["contempt"] and "neutral" not in measured["classes_averaged"]
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        assert measured[key] == recorded[key], key
