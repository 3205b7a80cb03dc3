"""Several models averaged (`--model ferplus,fer2013`, edge/vision/ensemble.py), on the bundled models and real
faces (no TensorFlow needed)."""

import copy
import json
import shutil

import cv2
import numpy as np
import pytest

from edge import contract, pipeline
from edge.config import SAMPLE_CLIP, RunConfig, bundled_model
from edge.measure.evaluate import evaluate, format_report, labelled_images
from edge.vision.detect import FaceDetector
from edge.vision.ensemble import ModelEnsemble, inferences_per_face
from edge.vision.faces import load_model
from edge.vision.model import EmotionModel, ModelError, sidecar_path
from edge.vision.stills import StillAnalyzer
from edge.web.state import model_summary


@pytest.fixture(scope="module")
def real_faces(grace_hopper_gray):
    """Faces as the runtime crops them: Grace Hopper's, and those Haar finds in the first frames of the sample clip."""
    detector = FaceDetector()
    crops = [contract.crop_face(grace_hopper_gray, box) for box in detector.detect(grace_hopper_gray)]
    capture = cv2.VideoCapture(str(SAMPLE_CLIP))
    for _ in range(40):
        ok, frame = capture.read()
        if not ok:
            break
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        crops += [contract.crop_face(gray, box) for box in detector.detect(gray)]
    capture.release()
    assert len(crops) >= 5
    return np.stack(crops)


@pytest.fixture(scope="module")
def pair():
    return [EmotionModel(bundled_model("ferplus")), EmotionModel(bundled_model("fer2013"))]


def test_the_ensemble_scores_are_the_mean_of_each_models_own(pair, real_faces):
    ensemble = ModelEnsemble(pair)
    scores = ensemble.classify(real_faces)
    each = [model.classify(real_faces) for model in pair]  # each with its sidecar's views and correction
    assert pair[0].flip_tta and pair[1].shift_tta == 3 and pair[0].class_offsets and pair[1].class_offsets is None
    np.testing.assert_allclose(scores, (each[0] + each[1]) / 2, atol=1e-6)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(each[0], each[1], atol=0.05)  # the two models do disagree on these faces
    assert ensemble.classify(real_faces[:0]).shape == (0, len(contract.LABELS))
    assert ensemble.labels == contract.LABELS and ensemble.inferences_per_face == 2 + 10 == inferences_per_face(ensemble)
    assert inferences_per_face(pair[0]) == 2 and inferences_per_face(pair[1]) == 10


def test_models_with_other_labels_or_preprocessing_are_refused_naming_both(pair, tmp_path):
    path = tmp_path / "other.tflite"
    shutil.copy(bundled_model("fer2013"), path)
    shutil.copy(sidecar_path(bundled_model("fer2013")), sidecar_path(path))
    relabelled = copy.copy(EmotionModel(path))
    relabelled.labels = tuple(reversed(contract.LABELS))  # what a sidecar for another label order would give
    with pytest.raises(ModelError, match="cannot be averaged: their labels differ") as error:
        ModelEnsemble([pair[0], relabelled])
    assert str(pair[0].path) in str(error.value) and str(path) in str(error.value)
    resized = copy.copy(EmotionModel(path))
    resized.sidecar = copy.deepcopy(resized.sidecar)
    resized.sidecar["contract"]["resize"] = "cv2.INTER_NEAREST"
    with pytest.raises(ModelError, match=r"cannot be averaged: contract.resize differs") as error:
        ModelEnsemble([pair[0], resized])
    assert str(pair[0].path) in str(error.value) and str(path) in str(error.value)
    with pytest.raises(ModelError, match="two or more models"):
        ModelEnsemble(pair[:1])


def test_a_members_note_on_its_outputs_names_its_file(pair):
    noted = copy.copy(pair[1])
    noted.output_note = "outputs are not probabilities (no softmax?)"
    assert ModelEnsemble(pair).output_note == ""
    assert ModelEnsemble([pair[0], noted]).output_note == "fer2013_int8.tflite: outputs are not probabilities (no softmax?)"


def test_the_model_flag_takes_a_comma_separated_list(tmp_path):
    config = RunConfig(model="ferplus, fer2013")
    assert config.model_paths() == [bundled_model("ferplus"), bundled_model("fer2013")]
    assert RunConfig().model_paths() == [bundled_model("ferplus")]
    with pytest.raises(ValueError, match="names several models; this command takes one"):
        config.model_path()
    for value, message in (("ferplus,,fer2013", "an empty name between commas"), ("ferplus,", "an empty name between commas"),
                           ("ferplus,ferplus", "ferplus_int8.tflite twice"), ("ferplus,fer2014", "'fer2014': not a bundled model")):
        with pytest.raises(ValueError, match=message):
            RunConfig(model=value).model_paths()
    mine = tmp_path / "mine.tflite"  # a path and a bundled name mix
    shutil.copy(bundled_model("fer2013"), mine)
    shutil.copy(sidecar_path(bundled_model("fer2013")), sidecar_path(mine))
    assert RunConfig(model=f"ferplus,{mine}").model_paths() == [bundled_model("ferplus"), mine]


def test_load_model_gives_one_model_or_the_ensemble_and_the_overrides_apply_to_each():
    assert isinstance(load_model(RunConfig(model="fer2013")), EmotionModel)
    ensemble = load_model(RunConfig(model="ferplus,fer2013"))
    assert isinstance(ensemble, ModelEnsemble) and [m.path for m in ensemble.members] == [bundled_model("ferplus"), bundled_model("fer2013")]
    assert ensemble.flip_tta == [True, True] and ensemble.shift_tta == [0, 3] and ensemble.balance == [0.35, 0.3]
    plain = load_model(RunConfig(model="ferplus,fer2013", flip_tta=False, shift_tta=0, balance=0.0))
    assert plain.flip_tta == [False, False] and plain.shift_tta == [0, 0] and plain.balance == [0.0, 0.0]
    assert plain.class_offsets == [None, None] and plain.inferences_per_face == 2


def test_the_start_record_and_the_live_view_name_every_model(tmp_path):
    log = tmp_path / "events.jsonl"
    pipeline.run(RunConfig(source="sample", model="ferplus,fer2013", log=str(log), max_frames=3))
    start = json.loads(log.read_text().splitlines()[0])
    assert start["event"] == "start" and start["model"] == f"{bundled_model('ferplus')},{bundled_model('fer2013')}"
    shas = [json.loads(sidecar_path(bundled_model(name)).read_text())["sha256"] for name in ("ferplus", "fer2013")]
    assert start["sha256"] == shas and start["flip_tta"] == [True, True] and start["inferences_per_face"] == 12
    assert start["sidecar_verified"] is True and start["sidecar"].startswith("ferplus_int8.json: digest verified")
    assert "; fer2013_int8.json: digest verified" in start["sidecar"]
    assert load_model(RunConfig(model=start["model"])).path == start["model"]  # the record's model loads it again
    assert "model_note" not in start  # both bundled models give probabilities
    summary = model_summary(load_model(RunConfig(model="ferplus,fer2013")))
    assert summary["name"] == "ferplus_int8 + fer2013_int8" and summary["trained_on"] == "ferplus + fer2013"
    assert summary["sha256"] == shas and summary["accuracy"] == {} and summary["inferences_per_face"] == 12


def test_eval_reports_an_ensemble_like_any_model(tmp_path, real_faces):
    for index, face in enumerate(real_faces[:4]):
        folder = tmp_path / "faces" / ("happy" if index % 2 else "neutral")
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{index}.png"), face)
    ensemble = load_model(RunConfig(model="ferplus,fer2013"))
    report = evaluate(labelled_images(tmp_path / "faces"), StillAnalyzer(FaceDetector(), ensemble), crops=True)
    expected = ensemble.classify(np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p, _ in labelled_images(tmp_path / "faces").images]))
    truth = np.array([label for _, label in labelled_images(tmp_path / "faces").images])
    assert report["accuracy"] == pytest.approx(float((expected.argmax(axis=1) == truth).mean()), abs=1e-4)
    assert report["balance"] == [0.35, 0.3] and report["inferences_per_face"] == 12
    text = format_report(report)
    assert "class-prior correction per model (tau 0.35 with offsets, tau 0.3), then the models' probabilities averaged" in text
    assert "inferences a face  12" in text
