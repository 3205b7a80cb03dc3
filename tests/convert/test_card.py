"""The model card is regenerated from report.json + sidecar + train_report.json, and every figure matches them."""

import copy
import json
import re

import numpy as np
import pytest

from convert.card import CARD_FILE, render_model_card, write_model_card
from convert.evaluate import classification_metrics, gate, markdown_summary
from edge.contract import LABELS, describe

# FER2013's real class counts on its two test splits, in canonical label order.
SUPPORT = {"PublicTest": [467, 56, 496, 895, 653, 415, 607], "PrivateTest": [491, 55, 528, 879, 594, 416, 626]}
INT8 = "mini_xception_int8.tflite"


def predictions(labels: np.ndarray, hit_rate: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Right with a per-class probability, else a random other class."""
    wrong = (labels + rng.integers(1, len(LABELS), len(labels))) % len(LABELS)
    return np.where(rng.random(len(labels)) < hit_rate[labels], labels, wrong)


def fake_artifacts(seed: int = 0) -> tuple[dict, dict, dict]:
    rng = np.random.default_rng(seed)
    hit_rate = np.array([0.55, 0.45, 0.4, 0.85, 0.5, 0.78, 0.65])
    results, predicted = {}, {}
    for split, counts in SUPPORT.items():
        labels = np.repeat(np.arange(len(LABELS)), counts)
        predicted["keras", split] = predictions(labels, hit_rate, rng)
        flips = rng.random(len(labels)) < 0.02  # int8 and float32 disagree with Keras on a few faces
        predicted["int8", split] = np.where(flips, predictions(labels, hit_rate, rng), predicted["keras", split])
        predicted["float32", split] = np.where(rng.random(len(labels)) < 0.002, labels, predicted["keras", split])
        for name in ("keras", "int8", "float32"):
            results.setdefault(name, {})[split] = classification_metrics(labels, predicted[name, split])
    report = {
        "keras_model": "mini_xception.keras",
        "keras_sha256": "5e" * 32,
        "int8_model": INT8,
        "parameters": 58423,
        "labels": list(LABELS),
        "flip_tta": True,
        "evaluated_with": "ai-edge-litert 1.4.0",
        "split_sizes": {"Training": 28709, "PublicTest": 3589, "PrivateTest": 3589},
        "sizes_bytes": {"keras": 905366, "int8": 88912, "float32": 238716},
        "results": results,
        "agreement_privatetest": round(
            float(np.mean(predicted["keras", "PrivateTest"] == predicted["int8", "PrivateTest"])), 4
        ),
        "config": {"keras_model": "models/mini_xception.keras", "calibration_count": 300, "limit": 0, "max_drop": 1.0},
    }
    report.update(trained_on="fer2013", judged_by="fer2013", accuracy_by_label_set={}, ferplus={
        "votes": "/data/fer2013new.csv", "note": None, "excluded": {"PublicTest": 81, "PrivateTest": 77}})
    for name in ("keras", "int8", "float32"):
        by_set = report["accuracy_by_label_set"][name] = {"fer2013": {}, "ferplus_majority": {}}
        for split in SUPPORT:
            by_set["fer2013"][f"{split}_flip_tta"] = results[name][split]["accuracy"]
            by_set["fer2013"][split] = round(results[name][split]["accuracy"] - rng.uniform(0, 0.01), 4)
            by_set["ferplus_majority"][split] = round(rng.uniform(0.6, 0.7), 4)
            by_set["ferplus_majority"][f"{split}_flip_tta"] = round(rng.uniform(0.6, 0.7), 4)
    failures = gate(report, 1.0, 55.0)
    report["gate"] = {"max_drop": 1.0, "min_accuracy": 55.0, "passed": not failures, "failures": failures}
    report["seconds"] = 212.4
    sidecar = {
        "model": INT8,
        "labels": list(LABELS),
        "input_shape": [48, 48, 1],
        "input_dtype": "int8",
        "output_dtype": "int8",
        "contract": describe(),
        "input_quantization": {"scale": 0.007843137718737125, "zero_point": -1},
        "output_quantization": {"scale": 0.00390625, "zero_point": -128},
        "sha256": "3f1c9a4be0d2c8e7a6b5d4c3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a291807",
        "size_bytes": 88912,
        "parameters": 58423,
        "source_model": "mini_xception.keras",
        "quantization": "int8",
    }
    train_report = {
        "model": "mini_xception.keras",
        "model_sha256": "5e" * 32,
        "parameters": 58423,
        "epochs_run": 87,
        "best_epoch": 67,
        "selected_on": "PublicTest (validation); PrivateTest only reported",
        "config": {
            "batch_size": 64,
            "learning_rate": 0.001,
            "l2": 0.01,
            "label_smoothing": 0.1,
            "seed": 1337,
            "rotation_degrees": 10.0,
            "shift_fraction": 0.1,
            "zoom_fraction": 0.1,
            "brightness": 0.15,
            "contrast": 0.2,
            "flip": True,
        },
    }
    return report, sidecar, train_report


def write_artifacts(folder, report, sidecar, train_report=None):
    (folder / "report.json").write_text(json.dumps(report, indent=2))
    (folder / "mini_xception_int8.json").write_text(json.dumps(sidecar, indent=2))
    if train_report is not None:
        (folder / "train_report.json").write_text(json.dumps(train_report, indent=2))
    return write_model_card(folder).read_text()


@pytest.fixture
def artifacts():
    return fake_artifacts()


@pytest.fixture
def card(tmp_path, artifacts):
    return write_artifacts(tmp_path, *artifacts)


def numbers(tree) -> list[float]:
    if isinstance(tree, dict):
        return [n for value in tree.values() for n in numbers(value)]
    if isinstance(tree, list):
        return [n for value in tree for n in numbers(value)]
    return [tree] if isinstance(tree, int | float) and not isinstance(tree, bool) else []


def rows(card: str) -> set[str]:
    return {line for line in card.splitlines() if line.startswith("|")}


def test_card_is_written_beside_the_model(tmp_path, artifacts):
    write_artifacts(tmp_path, *artifacts)
    assert (tmp_path / CARD_FILE).is_file()


def test_every_result_figure_appears_formatted(card, artifacts):
    report, sidecar, _ = artifacts
    table_rows = rows(card)
    for model, splits in report["results"].items():
        for split, metrics in splits.items():
            assert (f"| {model} | {split} | {metrics['accuracy'] * 100:.2f}% | {metrics['balanced_accuracy'] * 100:.2f}% | "
                    f"{metrics['macro_f1']:.3f} |") in table_rows
    private = report["results"]["int8"]["PrivateTest"]
    for label, m in private["per_class"].items():
        assert (
            f"| {label} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']:,} |" in table_rows
        )
    for label, row in zip(LABELS, private["confusion_matrix"], strict=True):
        assert "| " + " | ".join([label, *map(str, row)]) + " |" in table_rows
    for label in LABELS:  # per-class support of both test splits, from the Keras results
        public, private_ = (report["results"]["keras"][s]["per_class"][label]["support"] for s in SUPPORT)
        assert f"| {label} | {public:,} | {private_:,} |" in table_rows
    for split, size in report["split_sizes"].items():
        assert f"| {split} | {size:,} |" in card
    assert f"{report['agreement_privatetest'] * 100:.2f}%" in card
    assert f"**Parameters:** {report['parameters']:,}." in card
    int8_bytes = report["sizes_bytes"]["int8"]
    assert f"| int8 | {int8_bytes:,} bytes ({int8_bytes / 1024:.1f} KiB) |" in table_rows
    assert sidecar["sha256"] in card
    for end in ("input", "output"):
        quant = sidecar[f"{end}_quantization"]
        assert f"scale {quant['scale']:.6g}, zero point {quant['zero_point']}" in card
    assert report["evaluated_with"] in card


def test_float_vs_int8_table_shows_the_gap_in_points(card, artifacts):
    results = artifacts[0]["results"]
    reference = results["keras"]["PrivateTest"]["accuracy"]
    for name in ("int8", "float32"):
        metrics = results[name]["PrivateTest"]
        assert f"| {metrics['macro_f1']:.3f} | {(metrics['accuracy'] - reference) * 100:+.2f} |" in card


def test_no_stray_numbers(card, artifacts):
    report, sidecar, train_report = artifacts
    values = numbers(report) + numbers(sidecar) + numbers(train_report)
    percentages = re.findall(r"(\d+(?:\.\d+)?)%", card)
    assert percentages, "the card shows no percentages"
    allowed = {f"{v * 100:.2f}" for v in values} | {f"{report['gate']['min_accuracy']:.2f}"}
    assert [p for p in percentages if p not in allowed] == []
    scores = re.findall(r"(?<![\d.])(\d\.\d{3})(?![\d.])", card)  # F1, precision, recall
    assert scores and [s for s in scores if s not in {f"{v:.3f}" for v in values}] == []


def test_changing_the_report_changes_the_card(tmp_path, artifacts, card):
    report, sidecar, train_report = copy.deepcopy(artifacts)
    private = report["results"]["int8"]["PrivateTest"]
    private["accuracy"], private["balanced_accuracy"], private["macro_f1"] = 0.4321, 0.3456, 0.3579
    private["confusion_matrix"][0][0] = 9876
    private["per_class"]["disgust"]["recall"] = 0.0123
    report["parameters"] = train_report["parameters"] = 123457
    report["sizes_bytes"]["int8"] = 77777
    report["agreement_privatetest"] = 0.9012
    sidecar["sha256"] = "ab" * 32
    new_card = write_artifacts(tmp_path, report, sidecar, train_report)
    expected = [
        "| int8 | PrivateTest | 43.21% | 34.56% | 0.358 |",
        "| angry | 9876 |",
        "123,457",
        "77,777 bytes (76.0 KiB)",
        "90.12%",
        "lowest recall is disgust (0.012)",
        "ab" * 32,
        f"| disgust | {private['per_class']['disgust']['precision']:.3f} | 0.012 |",
    ]
    for text in expected:
        assert text not in card
        assert text in new_card
    assert artifacts[1]["sha256"] not in new_card


def test_sections_and_caveats(card):
    headings = [line for line in card.splitlines() if line.startswith("#")]
    for heading in (
        "## Model details",
        "## Intended use",
        "## Out-of-scope uses",
        "## Training data",
        "## Evaluation",
        "### Float vs int8 (PrivateTest)",
        "## Preprocessing contract",
        "## Known limitations",
    ):
        assert heading in headings
    assert "EU AI Act, Art. 5(1)(f)" in card and "medical or safety reasons" in card
    assert "not a felt emotion" in card
    for topic in (
        "Label noise",
        "Class imbalance",
        "Posed vs spontaneous",
        "Head pose",
        "Lighting",
        "Occlusion",
        "Demographic coverage",
    ):
        assert f"**{topic}" in card
    assert "(confusion_int8.png)" in card
    assert "averages each face with its mirror image" in card
    assert "on FER2013 PrivateTest, with the model selected on PublicTest" in card


def test_preprocessing_contract_comes_from_the_sidecar(card, artifacts):
    contract = artifacts[1]["contract"]
    assert f"x = p / {1 / contract['pixel_scale']:g} - {abs(contract['pixel_offset']):g}" in card
    assert contract["resize"] in card
    quant = artifacts[1]["input_quantization"]
    assert f"round(x / {quant['scale']:.6g}) - {-quant['zero_point']}, -128, 127)" in card  # zero point -1
    assert f"(q + {-artifacts[1]['output_quantization']['zero_point']}) x" in card  # zero point -128


def test_flip_tta_off_is_stated(tmp_path, artifacts):
    report, sidecar, train_report = copy.deepcopy(artifacts)
    report["flip_tta"] = sidecar["contract"]["flip_tta"] = False
    card = write_artifacts(tmp_path, report, sidecar, train_report)
    assert "mirror image" not in card and "neither the runtime nor the reported figures" in card


def test_training_details_and_optional_class_counts(tmp_path, artifacts):
    report, sidecar, train_report = copy.deepcopy(artifacts)
    card = write_artifacts(tmp_path, report, sidecar, train_report)
    assert "87 epochs run, best at epoch 67" in card and "Per-class counts of Training are not in the report" in card
    # as train.data's Fer2013.class_counts() gives them: per split, a list in label order
    report["class_counts"] = {"Training": [3995, 436, 4097, 7215, 4830, 3171, 4965]}
    (tmp_path / "train_report.json").unlink()
    card = write_artifacts(tmp_path, report, sidecar)
    assert "| class | Training | PublicTest | PrivateTest |" in card and "| disgust | 436 | 56 | 55 |" in card
    assert "training details are left out" in card


def test_a_soup_says_its_training_details_are_each_runs(tmp_path, artifacts):
    report, sidecar, train_report = copy.deepcopy(artifacts)
    train_report["soup"] = {"ingredients": [{"model": f"runs/s{i}/mini_xception.keras", "seed": i} for i in range(4)]}
    train_report["stages"] = "a uniform weight soup of 4 runs of these settings"
    card = write_artifacts(tmp_path, report, sidecar, train_report)
    assert "Training (each of the 4 runs averaged, as the first): 87 epochs run" in card
    assert "Stages: a uniform weight soup of 4 runs of these settings." in card
    assert "equalized first" not in card  # a model converted before equalization
    sidecar["equalize"] = 0.5
    assert "each separable convolution equalized first (strength 0.5" in write_artifacts(tmp_path, report, sidecar, train_report)


def test_train_report_of_another_model_is_left_out(tmp_path, artifacts):
    """Every mini-Xception has 58,423 parameters: the report is tied to the Keras file by its sha256."""
    report, sidecar, train_report = copy.deepcopy(artifacts)
    assert "epochs run" in write_artifacts(tmp_path, report, sidecar, train_report)
    train_report["model_sha256"] = "0f" * 32  # same parameter count, another file
    assert "epochs run" not in write_artifacts(tmp_path, report, sidecar, train_report)


def test_missing_report_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="report.json"):
        write_model_card(tmp_path)


def test_label_mismatch_is_rejected(artifacts):
    report, sidecar, train_report = copy.deepcopy(artifacts)
    sidecar["labels"] = sidecar["labels"][::-1]
    with pytest.raises(ValueError, match="labels"):
        render_model_card(report, sidecar, train_report)


def test_both_label_sets_are_shown_with_and_without_flip(card, artifacts):
    report = artifacts[0]
    table_rows = rows(card)
    for name, label_sets in report["accuracy_by_label_set"].items():
        for key, title in (("fer2013", "FER2013 labels"), ("ferplus_majority", "FER+ majority")):
            values = label_sets[key]
            cells = [f"{values[k] * 100:.2f}%" for k in ("PublicTest", "PublicTest_flip_tta", "PrivateTest", "PrivateTest_flip_tta")]
            assert f"| {name} | {title} | " + " | ".join(cells) + " |" in table_rows
    assert "left out: 81 of 3,589 PublicTest, 77 of 3,589 PrivateTest" in card
    assert "### Overall (against the FER2013 labels, as the gate judges it)" in card


def test_a_ferplus_model_says_so_and_data_without_votes_is_explained(tmp_path, artifacts):
    report, sidecar, train_report = copy.deepcopy(artifacts)
    report.update(trained_on="ferplus", judged_by="ferplus_majority")
    train_report.update(trained_on="ferplus", train_images=24_941)
    card = write_artifacts(tmp_path, report, sidecar, train_report)
    assert "trained on FER2013's faces with FER+ votes" in card and "**Labels: FER+ votes.**" in card
    assert "24,941 of the 28,709 Training faces were trained on" in card
    assert "int8 on PrivateTest against the FER+ majority" in card
    report["ferplus"] = {"votes": None, "note": "no FER+ figures: x.zip is the image-folder release", "excluded": None}
    for label_sets in report["accuracy_by_label_set"].values():
        label_sets.pop("ferplus_majority")
    card = write_artifacts(tmp_path, report, sidecar, train_report)
    assert "No FER+ figures: x.zip is the image-folder release." in card and "| FER+ majority |" not in card


def test_both_label_sets_side_by_side_with_balanced_accuracy_and_their_mean(tmp_path, artifacts):
    report, sidecar, train_report = copy.deepcopy(artifacts)
    assert "| int8, as the runtime runs it |" not in write_artifacts(tmp_path, report, sidecar, train_report)  # no balanced figures: no table
    balanced = {"fer2013": {}, "ferplus_majority": {}}
    for offset, values in enumerate(balanced.values()):
        for split in SUPPORT:
            values[split], values[f"{split}_flip_tta"] = 0.5 + offset / 10, 0.55 + offset / 10 + (split == "PrivateTest") / 100
    report["balanced_by_label_set"] = {"int8": {"balanced_accuracy": balanced}}
    card = write_artifacts(tmp_path, report, sidecar, train_report)
    accuracy = report["accuracy_by_label_set"]["int8"]
    for split in SUPPORT:  # flip averaging on, as the fake sidecar says: the flip figures
        key = f"{split}_flip_tta"
        cells = [accuracy["fer2013"][key], balanced["fer2013"][key], accuracy["ferplus_majority"][key], balanced["ferplus_majority"][key]]
        mean = (balanced["fer2013"][key] + balanced["ferplus_majority"][key]) / 2
        assert f"| {split} | " + " | ".join(f"{v * 100:.2f}%" for v in cells) + f" | {mean * 100:.2f}% |" in rows(card)
    assert "| PrivateTest | " in markdown_summary(report) and "mean of the two balanced" in markdown_summary(report)
