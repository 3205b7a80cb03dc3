"""convert/run.py end to end on a small trained model: the int8 model, its sidecar, reports and card, the runtime
loading what convert wrote, both label sets, bundling, the class-prior correction and offsets."""

import json
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT

from convert.config import ConvertConfig
from convert.quantize import QuantizationError, check_full_int8
from convert.run import convert_and_evaluate
from edge import contract
from edge.vision.model import EmotionModel, ModelError, Quantization, dequantize, file_sha256, quantize, sidecar_path
from train.model import make_mini_xception, predict_probabilities

# needs TensorFlow: make check leaves these to make test
pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A small trained-for-a-moment model converted end to end on a synthetic dataset, with FER+ votes beside it."""
    from conftest import synthetic_faces, synthetic_votes, write_csv, write_ferplus

    folder = tmp_path_factory.mktemp("convert")
    csv_path = write_csv(folder / "fer2013.csv", *synthetic_faces(210))
    faces, labels, splits = synthetic_faces(210)
    write_ferplus(folder / "fer2013new.csv", synthetic_votes(labels)[0], splits)
    import keras

    keras.utils.set_random_seed(0)  # the same model every run, so every figure the tests read is reproducible
    model = make_mini_xception()
    model.compile("adam", "sparse_categorical_crossentropy")
    images, labels, _ = synthetic_faces(210)
    model.fit(images[..., None].astype(np.float32) / 127.5 - 1, labels, epochs=2, batch_size=30, verbose=0)
    model.save(folder / "mini_xception.keras")
    config = ConvertConfig(data=str(csv_path), keras_model=str(folder / "mini_xception.keras"), out_dir=str(folder),
                           calibration_count=70, cache_dir=str(folder / "cache"), max_drop=100.0, min_accuracy=None)
    report = convert_and_evaluate(config)
    return folder, report, config


def test_conversion_writes_a_full_int8_model_with_sidecar_and_reports(converted):
    folder, report, _ = converted
    int8 = folder / "mini_xception_int8.tflite"
    check_full_int8(int8)  # raises if a float op or QUANTIZE/DEQUANTIZE slipped in
    sidecar = json.loads(sidecar_path(int8).read_text())
    assert sidecar["input_dtype"] == "int8" and sidecar["output_dtype"] == "int8"
    assert sidecar["labels"] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert sidecar["input_shape"] == [48, 48, 1] and sidecar["parameters"] == 58_423
    assert set(sidecar["input_quantization"]) == {"scale", "zero_point"}
    assert sidecar["accuracy"]["PrivateTest"] == report["results"]["int8"]["PrivateTest"]["accuracy"]
    for name in ("report.json", "report.md", "confusion_int8.png", "mini_xception_float32.tflite", "mini_xception_float32.json"):
        assert (folder / name).is_file(), name
    assert json.loads((folder / "report.json").read_text()) == report
    assert set(report["results"]) == {"keras", "int8", "float32"}
    assert report["sizes_bytes"]["int8"] < report["sizes_bytes"]["float32"]


def test_runtime_float_model_matches_keras_through_the_shared_contract(converted, small_dataset):
    import keras

    folder, _, _ = converted
    keras_model = keras.models.load_model(folder / "mini_xception.keras")
    faces = small_dataset[0][:20]
    runtime_model = EmotionModel(folder / "mini_xception_float32.tflite")
    # then the class-prior correction convert chose and recorded, as the runtime applies it
    expected = contract.balance_scores(predict_probabilities(keras_model, faces), runtime_model.class_prior, runtime_model.balance)
    runtime = runtime_model.classify(faces)
    np.testing.assert_allclose(runtime, expected, atol=1e-4)
    int8 = EmotionModel(folder / "mini_xception_int8.tflite").classify(faces)
    assert np.abs(int8 - expected).max() < 0.1  # quantization error, not a preprocessing mismatch


def test_float_model_is_refused_as_full_int8(converted, tmp_path):
    folder, _, _ = converted
    with pytest.raises(QuantizationError, match="input tensor is float32.*output tensor is float32"):
        check_full_int8(folder / "mini_xception_float32.tflite")
    # dynamic-range quantization: int8 weights but float activations and ops
    converter = tf.lite.TFLiteConverter.from_keras_model(make_mini_xception())
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    path = tmp_path / "dynamic.tflite"
    path.write_bytes(converter.convert())
    with pytest.raises(QuantizationError, match="float tensors in op"):
        check_full_int8(path)


def test_convert_cli_exits_non_zero_when_the_gate_fails(converted, tmp_path):
    folder, _, config = converted
    result = subprocess.run(
        [sys.executable, "-m", "convert", "--data", config.data, "--keras-model", config.keras_model,
         "--out-dir", str(tmp_path), "--calibration-count", "70", "--min-accuracy", "99", "--cache-dir", str(tmp_path / "c")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "accuracy gate FAILED" in result.stderr and "below --min-accuracy 99" in result.stderr


def copy_model(folder, tmp_path):
    for suffix in (".tflite", ".json"):
        shutil.copy(folder / f"mini_xception_int8{suffix}", tmp_path / f"m{suffix}")
    return tmp_path / "m.tflite"


def test_runtime_refuses_a_changed_model_or_a_foreign_sidecar(converted, tmp_path):
    folder, _, _ = converted
    path = copy_model(folder, tmp_path)
    EmotionModel(path)  # loads as shipped
    content = bytearray(path.read_bytes())
    content[-1] ^= 0xFF
    path.write_bytes(bytes(content))
    with pytest.raises(ModelError, match="sha256 differs"):
        EmotionModel(path)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s["contract"].update(pixel_scale=1 / 255), "contract.pixel_scale"),
        (lambda s: s.update(input_shape=[64, 64, 1]), "input_shape"),
        (lambda s: s.update(labels=s["labels"][:6]), "labels .* differ from the labels the model was trained"),
        (lambda s: s.pop("sha256"), "lacks sha256"),
    ],
)
def test_runtime_refuses_a_mismatched_sidecar(converted, tmp_path, change, message):
    folder, _, _ = converted
    path = copy_model(folder, tmp_path)
    sidecar = json.loads(sidecar_path(path).read_text())
    change(sidecar)
    sidecar_path(path).write_text(json.dumps(sidecar))
    with pytest.raises(ModelError, match=message):
        EmotionModel(path)


def test_missing_or_corrupt_model_and_sidecar_are_clear_errors(converted, tmp_path):
    folder, _, _ = converted
    with pytest.raises(ModelError, match="model file not found"):
        EmotionModel(tmp_path / "none.tflite")
    path = copy_model(folder, tmp_path)
    sidecar_path(path).write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        EmotionModel(path)
    sidecar_path(path).unlink()
    with pytest.raises(ModelError, match="sidecar JSON missing"):
        EmotionModel(path)
    garbage = tmp_path / "g.tflite"
    garbage.write_bytes(b"\x00" * 64)
    write_sidecar_for_garbage = json.loads((folder / "mini_xception_int8.json").read_text())
    from edge.vision.model import file_sha256, sidecar_digest

    write_sidecar_for_garbage["sha256"] = file_sha256(garbage)
    write_sidecar_for_garbage["digest"] = sidecar_digest(write_sidecar_for_garbage)
    sidecar_path(garbage).write_text(json.dumps(write_sidecar_for_garbage))
    with pytest.raises(ModelError, match="not a loadable TFLite model"):
        EmotionModel(garbage)


def test_quantize_and_dequantize_saturate_and_widen():
    q = Quantization(scale=1 / 127.5, zero_point=-1)
    values = np.array([-1.0, 0.0, 0.5, 5.0], np.float32)
    quantized = quantize(values, q)
    assert quantized.dtype == np.int8 and quantized.tolist() == [-128, -1, 63, 127]
    out = Quantization(scale=1 / 256, zero_point=-128)
    np.testing.assert_allclose(dequantize(np.array([-128, 127], np.int8), out), [0.0, 255 / 256])


def direct_accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    counted = truth >= 0
    return round(float(np.mean(predicted[counted] == truth[counted])), 4)


def test_both_label_sets_match_a_direct_computation(converted):
    """Each model's accuracy against FER2013 labels and the FER+ majority, flip averaging off and on, recomputed
    here from the synthetic truth with the runtime's own EmotionModel(flip_tta=...) and the Keras model."""
    import keras
    from conftest import synthetic_faces, synthetic_votes

    folder, report, _ = converted
    images, labels, splits = synthetic_faces(210)
    majority = synthetic_votes(labels)[1]
    keras_model = keras.models.load_model(folder / "mini_xception.keras")
    assert report["trained_on"] == "fer2013" and report["judged_by"] == "fer2013"
    for split in ("PublicTest", "PrivateTest"):
        rows = splits == split
        assert report["ferplus"]["excluded"][split] == int(np.sum(majority[rows] < 0)) > 0
        for flip in (False, True):
            key = f"{split}_flip_tta" if flip else split
            scores = {
                # the Keras scores with the class-prior correction convert recorded (the runtime's models apply it themselves)
                "keras": contract.balance_scores(predict_probabilities(keras_model, images[rows], flip_tta=flip),
                                                 list(report["balance"]["class_prior"].values()), report["balance"]["tau"]),
                "int8": EmotionModel(folder / "mini_xception_int8.tflite", flip_tta=flip).classify(images[rows]),
                "float32": EmotionModel(folder / "mini_xception_float32.tflite", flip_tta=flip).classify(images[rows]),
            }
            for name, probabilities in scores.items():
                measured = report["accuracy_by_label_set"][name]
                predicted = probabilities.argmax(axis=1)
                assert measured["fer2013"][key] == direct_accuracy(predicted, labels[rows]), (name, key)
                assert measured["ferplus_majority"][key] == direct_accuracy(predicted, majority[rows]), (name, key)
    sidecar = json.loads((folder / "mini_xception_int8.json").read_text())
    assert sidecar["trained_on"] == "fer2013"
    assert sidecar["accuracy_by_label_set"] == report["accuracy_by_label_set"]["int8"]
    assert sidecar["accuracy"]["PrivateTest"] == report["accuracy_by_label_set"]["int8"]["fer2013"]["PrivateTest_flip_tta"]
    text = (folder / "report.md").read_text()
    assert "| int8 | FER+ majority |" in text and "| keras | FER2013 labels |" in text
    card = (folder / "MODEL_CARD.md").read_text()
    assert "### Both label sets" in card and "| int8 | FER+ majority |" in card


def test_a_model_trained_on_ferplus_is_judged_and_bundled_by_the_ferplus_majority(converted, tmp_path):
    folder, first, config = converted
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(folder / "mini_xception.keras", run)
    train_report = json.loads((ROOT / "models" / "train_report.json").read_text())  # a real one, relabelled
    train_report.update(trained_on="ferplus", parameters=first["parameters"], train_images=101,
                        model_sha256=file_sha256(run / "mini_xception.keras"))  # the report of this very file
    (run / "train_report.json").write_text(json.dumps(train_report))
    ferplus_config = replace(config, keras_model=str(run / "mini_xception.keras"), out_dir=str(run), name="ferplus",
                                  float32=False, bundle_dir=str(tmp_path / "assets" / "ferplus"))
    report = convert_and_evaluate(ferplus_config)
    assert report["trained_on"] == "ferplus" and report["judged_by"] == "ferplus_majority"
    assert report["trained_on_from"] == str(run / "train_report.json")
    judged = report["accuracy_by_label_set"]["int8"]["ferplus_majority"]
    for split in ("PublicTest", "PrivateTest"):
        metrics = report["results"]["int8"][split]
        assert metrics["accuracy"] == judged[f"{split}_flip_tta"]
        counted = sum(m["support"] for m in metrics["per_class"].values())
        assert counted == report["split_sizes"][split] - report["ferplus"]["excluded"][split]
    bundled = sorted(p.name for p in (tmp_path / "assets" / "ferplus").iterdir())
    assert bundled == ["MODEL_CARD.md", "confusion_int8.png", "ferplus_int8.json", "ferplus_int8.tflite", "report.json", "report.md"]
    sidecar = json.loads((tmp_path / "assets" / "ferplus" / "ferplus_int8.json").read_text())
    assert sidecar["trained_on"] == "ferplus" and sidecar["accuracy_judged_by"] == "ferplus_majority"
    card = (tmp_path / "assets" / "ferplus" / "MODEL_CARD.md").read_text()
    assert "**Labels: FER+ votes.**" in card and "101 of the 126 Training faces" in card
    assert "int8 on PrivateTest against the FER+ majority" in card
    EmotionModel(tmp_path / "assets" / "ferplus" / "ferplus_int8.tflite")  # sha256 of the bundled pair agrees


def test_a_failed_gate_bundles_nothing_and_no_flip_tta_is_recorded(converted, tmp_path):
    _, _, config = converted
    failing = replace(config, out_dir=str(tmp_path / "out"), float32=False, min_accuracy=99.5, flip_tta=False,
                      bundle_dir=str(tmp_path / "assets"))
    report = convert_and_evaluate(failing)
    assert not report["gate"]["passed"] and not (tmp_path / "assets").exists()
    # without flip averaging: the sidecar says so, so the runtime skips the mirrors, and the gated figures match
    sidecar = json.loads((tmp_path / "out" / "mini_xception_int8.json").read_text())
    assert sidecar["contract"]["flip_tta"] is False and EmotionModel(tmp_path / "out" / "mini_xception_int8.tflite").flip_tta is False
    for split in ("PublicTest", "PrivateTest"):
        assert report["results"]["int8"][split]["accuracy"] == report["accuracy_by_label_set"]["int8"]["fer2013"][split]


def mismatched(folder, tmp_path, change) -> str:
    lines = (folder / "fer2013new.csv").read_text().splitlines()
    change(lines)
    path = tmp_path / "fer2013new.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_mismatched_votes_are_an_error_naming_the_row(converted, tmp_path):
    from train.data import DatasetError

    folder, _, config = converted
    def relabel(lines):
        lines[7] = lines[7].replace(lines[7].split(",")[0], "PrivateTest" if "Training" in lines[7] else "Training", 1)

    with pytest.raises(DatasetError, match=r"fer2013new.csv row 8: Usage '\w+' but .*fer2013.csv row 8 is 'PublicTest'"):
        convert_and_evaluate(replace(config, ferplus=mismatched(folder, tmp_path, relabel), out_dir=str(tmp_path)))
    with pytest.raises(DatasetError, match="209 rows, but .*fer2013.csv has 210"):
        convert_and_evaluate(replace(config, ferplus=mismatched(folder, tmp_path, lambda lines: lines.pop()), out_dir=str(tmp_path)))
    assert not list(tmp_path.glob("*.tflite"))  # checked before converting anything


def test_image_folder_data_has_no_ferplus_figures_and_says_why(converted, tmp_path):
    from conftest import synthetic_faces, write_folder, zip_folder

    folder, _, config = converted
    archive = zip_folder(write_folder(tmp_path / "images", *synthetic_faces(210)), tmp_path / "fer2013.zip")
    shutil.copy(folder / "fer2013new.csv", tmp_path)  # beside the zip, but the zip is not row-aligned with it
    with pytest.raises(ValueError, match="trained on FER\\+ votes .*image-folder release"):
        convert_and_evaluate(replace(config, data=str(archive), labels="ferplus", out_dir=str(tmp_path)))
    report = convert_and_evaluate(replace(config, data=str(archive), out_dir=str(tmp_path / "out"), float32=False))
    assert report["ferplus"]["votes"] is None and "image-folder release" in report["ferplus"]["note"]
    assert set(report["accuracy_by_label_set"]["int8"]) == {"fer2013"}
    for text in ((tmp_path / "out" / "report.md").read_text(), (tmp_path / "out" / "MODEL_CARD.md").read_text()):
        assert "No FER+ figures: " in text and "FER+ majority |" not in text and "| int8 | FER2013 labels |" in text


def test_class_offsets_are_fitted_on_publictest_recorded_and_applied_by_the_runtime(converted, tmp_path):
    _, _, config = converted
    fitted = replace(config, out_dir=str(tmp_path / "fitted"), float32=False, balance=0.5, balance_max_cost=100.0, class_offsets=True)
    report = convert_and_evaluate(fitted)
    balance = report["balance"]
    offsets = list(balance["class_offsets"].values())
    assert len(offsets) == 7 and abs(sum(offsets)) < 1e-3
    at_tau = next(row for row in balance["sweep_publictest"] if row["tau"] == 0.5)
    # in-sample the fit never does worse than tau alone, and every figure of the report uses it
    assert balance["class_offsets_publictest"]["balanced_accuracy"] >= at_tau["balanced_accuracy"]
    assert balance["class_offsets_publictest"] == {key: report["results"]["int8"]["PublicTest"][key]
                                                   for key in ("accuracy", "balanced_accuracy", "macro_f1")}
    assert set(balance["class_offsets_cross_validated"]) == {"tau", "tau_and_offsets", "folds", "repeats", "seed"}
    int8 = tmp_path / "fitted" / "mini_xception_int8.tflite"
    sidecar = json.loads(sidecar_path(int8).read_text())
    assert sidecar["contract"]["class_offsets"] == offsets and sidecar["contract"]["balance"] == 0.5
    model = EmotionModel(int8)
    assert model.sidecar_verified and model.class_offsets == offsets
    summary = (tmp_path / "fitted" / "report.md").read_text()
    assert "Then per-class log-score offsets (`--class-offsets`), fitted on int8 PublicTest at tau 0.5" in summary
    assert "multiply each score by e to its class's offset" in (tmp_path / "fitted" / "MODEL_CARD.md").read_text()
    # at tau 0 there is nothing to fit them at: said, and none recorded
    plain = convert_and_evaluate(replace(fitted, out_dir=str(tmp_path / "plain"), balance=0.0))
    assert "class_offsets" not in plain["balance"] and "tau is 0" in plain["balance"]["class_offsets_note"]
    assert "class_offsets" not in json.loads((tmp_path / "plain" / "mini_xception_int8.json").read_text())["contract"]
