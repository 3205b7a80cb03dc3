"""The model and sidecar checks of edge/vision/model.py, on copies of the shipped model (no TensorFlow needed)."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from edge import contract
from edge.config import bundled_model
from edge.vision.model import EmotionModel, ModelError, file_sha256, sidecar_digest, sidecar_path


@pytest.fixture
def model_copy(tmp_path):
    path = tmp_path / "model.tflite"
    shipped = bundled_model("fer2013")  # a sidecar whose accuracy includes flip averaging
    shutil.copy(shipped, path)
    shutil.copy(sidecar_path(shipped), sidecar_path(path))
    return path


def edit_sidecar(model_path, change, redigest=False):
    path = sidecar_path(model_path)
    sidecar = json.loads(path.read_text())
    change(sidecar)
    if redigest:  # as someone who knows the scheme would
        sidecar["digest"] = sidecar_digest(sidecar)
    path.write_text(json.dumps(sidecar, indent=2))
    return path


def swap_sad_and_neutral(labels):
    sad, neutral = labels.index("sad"), labels.index("neutral")
    labels[sad], labels[neutral] = "neutral", "sad"


def test_the_shipped_model_loads_with_its_digest_verified(model_copy):
    model = EmotionModel(model_copy)
    assert model.labels == contract.LABELS and model.sidecar_verified
    assert model.sidecar["sha256"] == file_sha256(model_copy)


@pytest.mark.parametrize("redigest", [False, True])
def test_edited_labels_are_refused(model_copy, redigest):
    where = edit_sidecar(model_copy, lambda s: swap_sad_and_neutral(s["labels"]), redigest)
    with pytest.raises(ModelError) as error:
        EmotionModel(model_copy)
    assert str(where) in str(error.value) and "labels" in str(error.value) and "'neutral', 'sad'" not in str(error.value)


def test_labels_edited_in_both_places_are_refused(model_copy):
    def both(sidecar):
        swap_sad_and_neutral(sidecar["labels"])
        swap_sad_and_neutral(sidecar["contract"]["labels"])

    edit_sidecar(model_copy, both, redigest=True)
    with pytest.raises(ModelError, match="trained and evaluated with"):
        EmotionModel(model_copy)


def test_edited_accuracy_is_refused(model_copy):
    where = edit_sidecar(model_copy, lambda s: s["accuracy"].update(PrivateTest=0.99))
    with pytest.raises(ModelError) as error:
        EmotionModel(model_copy)
    assert str(where) in str(error.value) and "digest" in str(error.value)


def test_a_sidecar_without_digest_loads_but_is_marked_unverified(model_copy):
    edit_sidecar(model_copy, lambda s: s.pop("digest"))
    assert not EmotionModel(model_copy).sidecar_verified
    info = subprocess.run([sys.executable, "-m", "edge", "info", str(model_copy)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert info.returncode == 0, info.stderr
    accuracy = next(line for line in info.stdout.splitlines() if line.startswith("accuracy"))
    private = json.loads(sidecar_path(model_copy).read_text())["accuracy"]["PrivateTest"]
    assert f"PrivateTest {private * 100:.2f}% (flip TTA)" in accuracy
    sidecar_line = next(line for line in info.stdout.splitlines() if line.startswith("sidecar"))
    assert "no digest" in sidecar_line and "accuracy unverified" in sidecar_line


def test_edge_info_refuses_an_edited_accuracy(model_copy):
    edit_sidecar(model_copy, lambda s: s["accuracy"].update(PrivateTest=0.99))
    info = subprocess.run([sys.executable, "-m", "edge", "info", str(model_copy)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert info.returncode == 2 and "99" not in info.stdout and "digest differs" in info.stderr


def test_a_changed_model_file_is_refused(model_copy):
    data = bytearray(model_copy.read_bytes())
    data[-1] ^= 0xFF
    model_copy.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256 differs"):
        EmotionModel(model_copy)


def test_a_different_preprocessing_contract_is_refused(model_copy):
    edit_sidecar(model_copy, lambda s: s["contract"].update(pixel_scale=1 / 255), redigest=True)
    with pytest.raises(ModelError, match="contract.pixel_scale"):
        EmotionModel(model_copy)


@pytest.mark.parametrize(
    "text, message",
    [(None, "sidecar JSON missing"), ("{not json", "not valid JSON"), ('{"labels": []}', "sidecar lacks input_shape")],
)
def test_broken_sidecars_name_the_file(model_copy, text, message):
    path = sidecar_path(model_copy)
    if text is None:
        path.unlink()
    else:
        path.write_text(text)
    with pytest.raises(ModelError) as error:
        EmotionModel(model_copy)
    assert str(path) in str(error.value) and message in str(error.value)


def test_missing_model_and_bad_thread_count(model_copy, tmp_path):
    with pytest.raises(ModelError, match="model file not found"):
        EmotionModel(tmp_path / "none.tflite")
    with pytest.raises(ModelError, match="--num-threads"):
        EmotionModel(model_copy, num_threads=0)


def test_flip_averaging_follows_the_sidecar_unless_a_setting_says_otherwise(model_copy):
    """A model that reached its target without mirrors says so in its sidecar: the runtime then runs one
    inference per face, unless --flip-tta asks for mirrors anyway."""
    from edge.config import RunConfig
    from edge.vision.faces import load_model

    assert load_model(RunConfig(model=str(model_copy))).flip_tta is True  # the shipped sidecar: on
    edit_sidecar(model_copy, lambda sidecar: sidecar["contract"].update(flip_tta=False), redigest=True)
    assert load_model(RunConfig(model=str(model_copy))).flip_tta is False
    assert load_model(RunConfig(model=str(model_copy), flip_tta=True)).flip_tta is True
    assert load_model(RunConfig(model=str(model_copy))).classify(np.zeros((3, 48, 48), np.uint8)).shape == (3, 7)


def test_shift_averaging_follows_the_sidecar_and_averages_the_shifted_copies(model_copy):
    """A model whose accuracy was measured with shifted copies says so in its sidecar; the runtime then
    averages each face over its five shifts (and their mirrors when flip averaging is on)."""
    from edge.config import RunConfig
    from edge.vision.faces import load_model

    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (3, 48, 48), dtype=np.uint8)
    edit_sidecar(model_copy, lambda sidecar: sidecar["contract"].update(shift_tta=3), redigest=True)
    model = load_model(RunConfig(model=str(model_copy)))
    assert (model.shift_tta, model.flip_tta) == (3, True)
    plain = EmotionModel(model_copy, flip_tta=True, shift_tta=0, balance=0.0)
    by_hand = np.mean([plain.classify(contract.with_shifts(faces, 3)[i * 3 : i * 3 + 3]) for i in range(5)], axis=0)
    by_hand = contract.balance_scores(by_hand, model.class_prior, model.balance)  # then the sidecar's class-prior correction
    np.testing.assert_allclose(model.classify(faces), by_hand, atol=1e-6)
    assert not np.allclose(plain.classify(faces), by_hand, atol=1e-3)  # the copies change the answer
    assert load_model(RunConfig(model=str(model_copy), shift_tta=0)).shift_tta == 0
