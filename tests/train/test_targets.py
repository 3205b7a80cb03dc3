"""Training targets: FER2013 labels or FER+ votes, mixed with shares of FER+ votes and a teacher's predictions."""

import json

import keras
import numpy as np
import pytest
from conftest import synthetic_faces, synthetic_votes, write_csv, write_ferplus

from edge.contract import with_shifts
from train.arch import make_model
from train.config import TrainConfig
from train.data import DatasetError, load_fer2013
from train.ferplus import FerPlusVotes, load_ferplus
from train.fit import fit
from train.input import make_train_dataset
from train.model import predict_probabilities
from train.splits import Split, take_splits
from train.targets import soften, teacher_predictions, training_targets

# needs TensorFlow: make check leaves these to make test
pytestmark = pytest.mark.tf


def votes_for(rows: list[list[int]]) -> FerPlusVotes:
    """Votes given as 10 counts in FER+ order of the 7 canonical classes then contempt, unknown, NF."""
    table = np.array(rows, np.float32)
    return FerPlusVotes(emotions=table[:, :7], others=table[:, 7:])


@pytest.fixture
def split() -> Split:
    votes = votes_for([
        [6, 0, 0, 4, 0, 0, 0, 0, 0, 0],  # angry 6, happy 4: an emotion won
        [0, 0, 0, 0, 0, 0, 2, 0, 8, 0],  # unknown won: no FER+ target
        [0, 0, 0, 0, 5, 5, 0, 0, 0, 0],  # a tie between two emotions still trains
    ])
    return Split(images=np.zeros((3, 48, 48), np.uint8), labels=np.array([3, 6, 4]), votes=votes)


def config(**overrides) -> TrainConfig:
    return TrainConfig(data="fer2013.csv", **overrides)


def test_fer2013_targets_without_mixing_are_one_hot(split):
    images, targets = training_targets(split, config())
    assert len(images) == 3
    np.testing.assert_array_equal(targets, np.eye(7, dtype=np.float32)[[3, 6, 4]])


def test_ferplus_share_mixes_votes_and_keeps_the_label_where_no_emotion_won(split):
    _, targets = training_targets(split, config(ferplus_weight=0.3))
    expected = 0.7 * np.eye(7)[[3, 6, 4]]
    expected[0] += 0.3 * np.array([0.6, 0, 0, 0.4, 0, 0, 0])
    expected[1] += 0.3 * np.eye(7)[6]  # unknown won: the FER2013 label keeps the FER+ share
    expected[2] += 0.3 * np.array([0, 0, 0, 0, 0.5, 0.5, 0])
    np.testing.assert_allclose(targets, expected, atol=1e-6)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-6)


def test_teacher_share_is_softened_and_follows_the_kept_rows(split):
    teacher = np.array([[0.9, 0.1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1.0], [0.5, 0.5, 0, 0, 0, 0, 0]], np.float32)
    _, targets = training_targets(split, config(teacher="t.keras", teacher_weight=0.4, teacher_temperature=1.0), teacher)
    np.testing.assert_allclose(targets, 0.6 * np.eye(7)[[3, 6, 4]] + 0.4 * teacher, atol=1e-5)
    # FER+ labels drop the face unknown won, and the teacher's row for it with it
    images, targets = training_targets(split, config(labels="ferplus", teacher="t.keras", teacher_weight=0.5), teacher)
    assert len(images) == len(targets) == 2
    np.testing.assert_allclose(targets[1], 0.5 * np.array([0, 0, 0, 0, 0.5, 0.5, 0]) + 0.5 * teacher[2], atol=1e-5)


def test_soften_keeps_the_order_and_flattens_with_temperature():
    probabilities = np.array([[0.7, 0.2, 0.1, 0, 0, 0, 0]], np.float32)
    np.testing.assert_allclose(soften(probabilities, 1.0), probabilities, atol=1e-6)
    warm = soften(probabilities, 2.0)[0]
    assert warm.sum() == pytest.approx(1.0, abs=1e-6)
    assert warm[0] > warm[1] > warm[2] > warm[3] and warm[0] < 0.7 and warm[2] > 0.1
    np.testing.assert_allclose(warm[:3], np.sqrt([0.7, 0.2, 0.1]) / np.sqrt([0.7, 0.2, 0.1]).sum(), rtol=1e-4)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"teacher": "t.keras", "teacher_weight": 0.6, "ferplus_weight": 0.5}, "--teacher-weight .* --ferplus-weight .* at most 1"),
        ({"teacher_weight": 0.5}, "--teacher-weight .* no --teacher"),
        ({"labels": "ferplus", "ferplus_weight": 0.2}, "--ferplus-weight .* --labels fer2013"),
        ({"teacher_temperature": 0.0}, "--teacher-temperature"),
        ({"teacher_shift": 3}, "--teacher-shift .* --teacher-weight is 0"),
        ({"teacher": "t.keras", "teacher_weight": 0.5, "teacher_shift": 9}, "--teacher-shift"),
    ],
)
def test_mixing_settings_that_cannot_work_name_their_flags(overrides, message):
    with pytest.raises(ValueError, match=message):
        config(**overrides)


@pytest.mark.slow
def test_distillation_and_ferplus_share_train_end_to_end(tmp_path, monkeypatch):
    images, labels, splits = synthetic_faces(140)
    data = write_csv(tmp_path / "fer2013.csv", images, labels, splits)
    common = dict(data=str(data), epochs=1, batch_size=16, verbose=0, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(DatasetError, match="fer2013new.csv: FER\\+ votes not found"):
        fit(TrainConfig(out_dir=str(tmp_path / "novotes"), ferplus_weight=0.3, **common))
    write_ferplus(tmp_path / "fer2013new.csv", synthetic_votes(labels)[0], splits)
    fit(TrainConfig(out_dir=str(tmp_path / "teacher"), **common))
    teacher = tmp_path / "teacher" / "mini_xception.keras"
    with pytest.raises(ValueError, match="--teacher .* names no model file"):
        fit(TrainConfig(out_dir=str(tmp_path / "x"), teacher=" , ", teacher_weight=0.5, **common))
    with pytest.raises(FileNotFoundError, match="--teacher .*missing.keras is not a file"):
        fit(TrainConfig(out_dir=str(tmp_path / "x"), teacher=f"{teacher},{tmp_path / 'missing.keras'}", teacher_weight=0.5, **common))
    # a teacher of another architecture beside it: the student's targets take the two teachers' average
    big_teacher = tmp_path / "vgg13.keras"
    make_model("vgg13", l2=0.0).save(big_teacher)
    seen = []

    def recording_dataset(images, targets, config):
        seen.append(targets)
        return make_train_dataset(images, targets, config)

    monkeypatch.setattr("train.fit.make_train_dataset", recording_dataset)
    student = TrainConfig(out_dir=str(tmp_path / "student"), teacher=f"{teacher},{big_teacher}", teacher_weight=0.4,
                          teacher_temperature=2.0, ferplus_weight=0.3, **common)
    report = fit(student)
    stored = json.loads((tmp_path / "student" / "train_report.json").read_text())
    assert stored == report and report["train_images"] == int((splits == "Training").sum())
    assert report["config"]["teacher_weight"] == 0.4 and report["config"]["ferplus_weight"] == 0.3
    assert report["parameters"] == 58_423 and report["arch"] == "mini_xception"

    training = take_splits(load_fer2013(str(data), cache_dir=str(tmp_path / "cache")), 0, student.seed,
                           load_ferplus(tmp_path / "fer2013new.csv", load_fer2013(str(data), cache_dir=str(tmp_path / "cache"))))["Training"]
    each = [predict_probabilities(keras.models.load_model(path, compile=False), training.images, flip_tta=True)
            for path in (teacher, big_teacher)]
    _, expected = training_targets(training, student, np.mean(each, axis=0))
    np.testing.assert_allclose(seen[0], expected, atol=1e-5)  # the flip-averaged predictions, averaged over teachers
    for alone in each:  # neither teacher alone gives these targets
        assert np.abs(seen[0] - training_targets(training, student, alone)[1]).max() > 1e-3


def test_a_shifted_teacher_averages_its_ten_views_chunk_by_chunk(tmp_path):
    teacher = tmp_path / "teacher.keras"
    keras.utils.set_random_seed(3)
    make_model("mini_xception").save(teacher)
    model = keras.models.load_model(teacher, compile=False)
    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    shifted = teacher_predictions(config(teacher=str(teacher), teacher_weight=0.5, teacher_shift=3), faces, chunk=2)
    # by hand: each of the five views (the face, then shifted right, left, down, up) flip-averaged, then their mean
    views = with_shifts(faces, 3).reshape(5, *faces.shape)
    expected = np.mean([predict_probabilities(model, view, flip_tta=True) for view in views], axis=0)
    np.testing.assert_allclose(shifted, expected, atol=1e-5)
    np.testing.assert_allclose(shifted.sum(axis=1), 1.0, atol=1e-5)
    flip_only = teacher_predictions(config(teacher=str(teacher), teacher_weight=0.5), faces)
    np.testing.assert_allclose(flip_only, predict_probabilities(model, faces, flip_tta=True), atol=1e-6)
    assert np.abs(shifted - flip_only).max() > 1e-4  # the shifts change the targets


def test_teacher_predictions_are_cached_by_content_and_a_bad_cache_is_recomputed(tmp_path, monkeypatch, capsys):
    teacher = tmp_path / "teacher.keras"
    keras.utils.set_random_seed(4)
    make_model("mini_xception").save(teacher)
    faces = np.random.default_rng(1).integers(0, 256, (4, 48, 48), dtype=np.uint8)
    shifted = config(teacher=str(teacher), teacher_weight=0.5, teacher_shift=2)
    cache = tmp_path / "cache"
    first = teacher_predictions(shifted, faces, cache_dir=cache)
    (cache_file,) = cache.glob("teacher-*.npy")

    def no_model(*args, **kwargs):
        raise AssertionError("the teacher was loaded although its predictions are cached")

    monkeypatch.setattr("train.targets.load_keras_model", no_model)
    np.testing.assert_array_equal(teacher_predictions(shifted, faces, cache_dir=cache), first)
    assert "from the cache" in capsys.readouterr().out
    # other faces or another shift are other entries, never the cached one
    with pytest.raises(AssertionError, match="cached"):
        teacher_predictions(shifted, faces[::-1].copy(), cache_dir=cache)
    with pytest.raises(AssertionError, match="cached"):
        teacher_predictions(config(teacher=str(teacher), teacher_weight=0.5, teacher_shift=1), faces, cache_dir=cache)
    monkeypatch.undo()
    cache_file.write_bytes(b"not an array")  # a damaged cache: computed again, said, and replaced
    np.testing.assert_allclose(teacher_predictions(shifted, faces, cache_dir=cache), first, atol=1e-6)
    assert "unreadable" in capsys.readouterr().out
    np.save(cache_file, np.zeros((3, 7), np.float32))  # another shape
    np.testing.assert_allclose(teacher_predictions(shifted, faces, cache_dir=cache), first, atol=1e-6)
    assert "computing again" in capsys.readouterr().out
    np.testing.assert_allclose(np.load(cache_file), first, atol=1e-6)
    assert not list(cache.glob("*.partial*"))
