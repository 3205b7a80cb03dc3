"""`edge eval`: a labelled folder built here, with answers known from the model's own output."""

import json
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest
from conftest import ROOT, grace_hopper_path

from edge import contract
from edge.config import BUNDLED_MODEL
from edge.measure.evaluate import evaluate, format_report, labelled_images
from edge.metrics import NO_FACE, classification_metrics
from edge.vision.detect import FaceDetector
from edge.vision.stills import StillAnalyzer


@pytest.fixture
def labelled(tmp_path, bundled_model):
    """Grace Hopper in the folder of the label the model gives her (right) and in another one (wrong),
    a faceless image (no face: wrong), a contempt folder (skipped) and a corrupt file (reported)."""
    photo = cv2.imread(str(grace_hopper_path()))
    faces = StillAnalyzer(FaceDetector(), bundled_model).faces(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))
    predicted = contract.LABELS[int(np.argmax(faces[0].scores))]
    other = next(label for label in ("sad", "surprise") if label != predicted)
    synonym = {"happy": "happiness", "sad": "sadness", "angry": "anger", "fear": "fearful", "surprise": "surprised"}
    folders = {
        synonym.get(predicted, predicted): ["grace.jpg"],
        synonym[other]: ["grace.jpg", "blank.png", "broken.jpg"],
        "contempt": ["grace.jpg"],
    }
    for folder, names in folders.items():
        (tmp_path / folder).mkdir()
        for name in names:
            path = tmp_path / folder / name
            if name == "grace.jpg":
                cv2.imwrite(str(path), photo)
            elif name == "blank.png":
                cv2.imwrite(str(path), np.full((200, 200, 3), 128, np.uint8))
            else:
                path.write_bytes(b"\xff\xd8 not a jpeg")
    return tmp_path, predicted, other


def test_eval_on_a_labelled_folder(labelled, bundled_model):
    root, predicted, other = labelled
    folder = labelled_images(root)
    assert folder.skipped_folders == ["contempt"] and len(folder.images) == 4
    report = evaluate(folder, StillAnalyzer(FaceDetector(), bundled_model), crops=False)
    assert report["images"] == 3 and report["images_with_face"] == 2
    assert report["accuracy"] == pytest.approx(1 / 3, abs=1e-4) and report["accuracy_with_face"] == 0.5
    assert report["detection_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert report["per_class"][predicted]["recall"] == 1.0 and report["per_class"][other]["recall"] == 0.0
    assert report["per_class"][other]["support"] == 2 and report["per_class"][predicted]["precision"] == 0.5
    assert len(report["unreadable"]) == 1 and "broken.jpg" in report["unreadable"][0]["error"]
    wrong = sorted((m["image"].split("/")[1], m["predicted"]) for m in report["misclassified"])
    assert wrong == [("blank.png", "no face"), ("grace.jpg", predicted)]
    # two classes have images: balanced accuracy and macro-F1 average those two, not all seven
    assert report["classes_averaged"] == sorted([predicted, other], key=contract.LABELS.index)
    assert report["balanced_accuracy"] == 0.5  # recall 1 and 0
    assert report["macro_f1"] == round((2 * 0.5 * 1.0 / 1.5 + 0.0) / 2, 4)


def test_no_face_counts_against_recall_and_accuracy_only():
    metrics = classification_metrics(np.array([0, 0, 1]), np.array([0, NO_FACE, 0]), names=("a", "b"))
    assert metrics["accuracy"] == pytest.approx(1 / 3, abs=1e-4)
    assert metrics["per_class"]["a"]["recall"] == 0.5 and metrics["per_class"]["a"]["precision"] == 0.5
    assert metrics["confusion_matrix"] == [[1, 0], [1, 0]]


def test_crops_mode_agrees_with_the_models_direct_output(tmp_path, bundled_model):
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (6, 48, 48), dtype=np.uint8)
    expected = bundled_model.classify(faces).argmax(axis=1)
    for i, face in enumerate(faces):
        folder = tmp_path / contract.LABELS[i % 7]
        folder.mkdir(exist_ok=True)
        cv2.imwrite(str(folder / f"face{i}.png"), face)
    report = evaluate(labelled_images(tmp_path), StillAnalyzer(FaceDetector(), bundled_model), crops=True)
    truth = np.array([i % 7 for i in range(6)])
    order = np.argsort([f"{contract.LABELS[t]}/face{i}.png" for i, t in enumerate(truth)])
    assert report["accuracy"] == pytest.approx(float((expected == truth).mean()), abs=1e-4)
    assert report["confusion_matrix"] == classification_metrics(truth[order], expected[order])["confusion_matrix"]
    # the default's correction, as the runtime applied it: its tau and the per-class offsets fitted at that tau
    assert report["balance"] == bundled_model.balance > 0 and report["class_offsets"] == bundled_model.sidecar["contract"]["class_offsets"]
    assert f"class-prior correction tau {bundled_model.balance:g} and the sidecar's per-class offsets" in format_report(report)


@pytest.mark.slow
def test_eval_crops_on_fer2013_privatetest_gives_the_convert_reports_accuracy(real_data, tmp_path):
    """What a user runs on the extracted zip: the figure must be the one the convert report states."""
    with zipfile.ZipFile(real_data) as archive:
        members = [n for n in archive.namelist() if "/PrivateTest_" in n]
        archive.extractall(tmp_path / "fer", members)
    out = tmp_path / "eval"
    result = subprocess.run(
        [sys.executable, "-m", "edge", "eval", str(tmp_path / "fer" / "test"), "--crops", "--pattern", "PrivateTest_*", "--out-dir", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "eval_report.json").read_text())
    # the convert report's figure on the same (JPEG-decoded) faces; the CSV's original pixels differ a little
    converted = json.loads((BUNDLED_MODEL.parent / "report.json").read_text())["image_folder_release"]
    assert converted["judged_by"] == "fer2013" and converted["flip_tta"] == report["flip_tta"]
    assert report["images"] == 3589 and abs(report["accuracy"] - converted["accuracy"]["PrivateTest"]) <= 0.001
    assert (out / "confusion.png").is_file() and f"accuracy           {report['accuracy'] * 100:.2f}%" in result.stdout
