import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from edge import cli
from edge.config import BUNDLED_MODEL, BUNDLED_MODELS, DEFAULT_MODEL, RunConfig
from edge.measure import bench
from edge.vision.geometry import Box, match_boxes


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "edge", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_info_describes_the_shipped_model():
    result = run_cli("info")
    assert result.returncode == 0, result.stderr
    sidecar = json.loads(BUNDLED_MODEL.with_suffix(".json").read_text())
    assert sidecar["sha256"] in result.stdout and "(verified)" in result.stdout
    assert "angry, disgust, fear, happy, sad, surprise, neutral" in result.stdout
    flip = " (flip TTA)" if sidecar["flip_tta_in_accuracy"] else ""
    assert f"PrivateTest {sidecar['accuracy']['PrivateTest'] * 100:.2f}%{flip}" in result.stdout
    assert f"trained on   {cli.LABEL_SET_NAMES[sidecar['trained_on']]}" in result.stdout
    for label_set, values in sidecar["accuracy_by_label_set"].items():  # both label sets, flip averaging off and on
        line = next(line for line in result.stdout.splitlines() if f"against {cli.ACCURACY_TITLES[label_set]}:" in line)
        assert f"PrivateTest {values['PrivateTest'] * 100:.2f}%," in line
        assert f"PrivateTest {values['PrivateTest_flip_tta'] * 100:.2f}% (flip TTA)" in line
    assert {"fer2013", "ferplus_majority"} <= set(sidecar["accuracy_by_label_set"])
    assert f"tau {sidecar['contract']['balance']:g}: scores divided by the training class prior" in result.stdout
    offsets = sidecar["contract"].get("class_offsets")  # the default's, fitted on PublicTest (convert --class-offsets)
    assert offsets and ("per-class log-score offsets fitted on PublicTest at this tau: "
                        + ", ".join(f"{name} {value:+.2f}" for name, value in zip(sidecar["labels"], offsets, strict=True))) in result.stdout
    assert run_cli("info", DEFAULT_MODEL).stdout == result.stdout  # the default is a bundled model by name
    other = run_cli("info", next(name for name in BUNDLED_MODELS if name != DEFAULT_MODEL))
    assert other.returncode == 0 and other.stdout != result.stdout


def test_info_names_the_bundled_models_for_an_unknown_name():
    result = run_cli("info", "fer2014")
    assert result.returncode == 2 and "not a bundled model (fer2013, ferplus)" in result.stderr


def test_info_refuses_a_missing_model(tmp_path):
    result = run_cli("info", str(tmp_path / "none.tflite"))
    assert result.returncode == 2 and "model file not found" in result.stderr


def test_model_benchmark_statistics_are_ordered():
    row = bench.bench_model(BUNDLED_MODEL, threads=1, xnnpack=True, flip_tta=False, count=50, warmup=5, faces=1)
    assert row["count"] == 50 and row["tensor_batch"] == 1
    assert row["min_us"] <= row["p50_us"] <= row["p90_us"] <= row["p99_us"] <= row["max_us"]
    assert row["min_us"] <= row["avg_us"] <= row["max_us"] and row["init_ms"] > 0
    with_tta = bench.bench_model(BUNDLED_MODEL, threads=1, xnnpack=False, flip_tta=True, count=5, warmup=0, faces=3)
    assert with_tta["tensor_batch"] == 6 and with_tta["xnnpack"] is False


def test_model_benchmark_times_an_ensemble_as_every_models_views():
    from edge.config import bundled_model

    pair = [bundled_model("ferplus"), bundled_model("fer2013")]
    row = bench.bench_model(pair, threads=1, xnnpack=True, flip_tta=True, count=5, warmup=0, faces=2)
    assert row["model"] == "ferplus_int8.tflite+fer2013_int8.tflite" and row["inferences_per_face"] == 2 + 10
    assert row["tensor_batch"] == 24 and row["size_bytes"] == sum(path.stat().st_size for path in pair)
    single = bench.bench_model(pair[:1], threads=1, xnnpack=True, flip_tta=False, count=5, warmup=0, faces=1)
    assert single["model"] == "ferplus_int8.tflite" and single["inferences_per_face"] == 1


def test_latency_stats():
    stats = bench.latency_stats(np.arange(1, 101, dtype=float))
    assert stats["min_us"] == 1 and stats["max_us"] == 100 and stats["p50_us"] == 50.5 and stats["p99_us"] == 99.0


def test_custom_grid_is_every_combination():
    grid = bench.custom_grid({"detect_width": [0, 320], "min_neighbors": [3, 5, 7]})
    assert len(grid) == 6
    assert grid["detect_width 320, min_neighbors 7"] == {"detect_width": 320, "min_neighbors": 7}


def test_truth_matching_is_one_to_one():
    truth = [Box(0, 0, 100, 100), Box(200, 0, 100, 100)]
    assert len(match_boxes([Box(5, 5, 100, 100)], truth, 0.5)) == 1
    assert len(match_boxes([Box(5, 5, 100, 100), Box(0, 0, 100, 100)], truth, 0.5)) == 1  # two boxes, one face
    assert match_boxes([Box(60, 60, 100, 100)], truth, 0.5) == []  # IoU below 0.5


def test_pipeline_benchmark_measures_recall_on_the_sample(tmp_path):
    truth = bench.load_truth(bench.SAMPLE_TRUTH)
    row = bench.bench_pipeline(RunConfig(source="sample", max_frames=60), truth)
    assert row["frames"] == 60 and row["truth_faces"] == sum(len(truth[i]) for i in range(60))
    assert row["recall"] >= 0.9 and row["fps"] > 0
    assert set(row["stage_ms"]) >= {"capture", "detect", "preprocess", "infer", "track"}
    paths = bench.save_results([row | {"setting": "x"}], tmp_path, "pipeline")
    assert [p.suffix for p in paths] == [".json", ".csv"] and bench.board_name().split()[0] in paths[0].read_text()


def test_bench_cli_writes_table_json_and_csv(tmp_path):
    result = run_cli("bench", "model", "--model", "ferplus,fer2013", "--count", "20", "--warmup", "2", "--out-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "ferplus_int8.tflite+fer2013_int8.tflite" in result.stdout and " 12 " in result.stdout  # the pair's 2 + 10 views
    assert "p50" in result.stdout and "peak resident memory" in result.stdout
    assert len(list(tmp_path.glob("*_model_*.json"))) == 1 and len(list(tmp_path.glob("*_model_*.csv"))) == 1


def test_startup_benchmark_imports_no_tensorflow():
    row = bench.bench_startup(BUNDLED_MODEL, repeat=1)
    assert row["tensorflow_imported"] is False and row["import_ms"] > 0
    assert row["rss_after_load_mb"] >= row["rss_after_import_mb"] > 0


def test_false_detections_skip_ignored_regions():
    truth = [Box(0, 0, 100, 100)]
    predicted = [Box(2, 2, 100, 100), Box(300, 300, 50, 50), Box(600, 10, 40, 40)]
    assert bench.false_detections(predicted, truth) == 2
    # a face half out of the frame at the right edge: finding it is neither a hit nor a false detection
    assert bench.false_detections(predicted, truth, [Box(590, 0, 50, 60)]) == 1
    assert bench.false_detections([Box(0, 0, 100, 100), Box(1, 1, 100, 100)], truth) == 1  # a duplicate is false


def test_hard_truth_has_ignored_regions_and_sample_truth_none():
    hard = bench.load_ignored(bench.HARD_TRUTH)
    assert len(hard) == len(bench.load_truth(bench.HARD_TRUTH)) >= 300
    assert any(hard.values()) and not any(bench.load_ignored(bench.SAMPLE_TRUTH).values())


def test_peer_ratio_is_per_clip():
    rows = [{"clip": "sample", "fps": 80.0}, {"clip": "hard", "fps": 30.0}, {"clip": "other", "fps": 5.0}]
    out = bench.add_peer_ratio(rows, {"sample": {"fps": 8.0}, "hard": {"fps": 5.0}})
    assert [r.get("x_peer_fps") for r in out] == [10.0, 6.0, None]


def test_the_peer_runs_as_often_as_our_settings_and_its_fastest_run_counts(tmp_path):
    fake = tmp_path / "python"  # stands in for the fer venv's interpreter: each run reads the next CPU FPS
    fake.write_text('#!/bin/sh\nn=$(cat "$0.runs" 2>/dev/null || echo 0); echo $((n + 1)) > "$0.runs"\n'
                    'set -- 5 9 7; eval fps=\\${$((n + 1))}\necho "{\\"clip\\": \\"sample\\", \\"cpu_fps\\": $fps}"\n')
    fake.chmod(0o755)
    assert bench.bench_peer(fake, "sample", repeat=3) == {"clip": "sample", "cpu_fps": 9}
    assert (tmp_path / "python.runs").read_text().strip() == "3"


@pytest.mark.slow
def test_peer_failure_is_reported_with_its_command():
    # this interpreter has no `fer` package, so the peer script fails; the error says what was run
    with pytest.raises(RuntimeError, match="bench_peer.py"):
        bench.bench_peer(sys.executable, "sample", max_frames=2)
    with pytest.raises(ValueError, match="--peer /no/such/python"):
        bench.bench_peer("/no/such/python", "sample")


def test_pipeline_benchmark_runs_blazeface_on_the_hard_clip():
    rows = bench.bench_pipelines("hard", None, {"bf": {"detector": "blazeface"}}, "", 1, max_frames=40)
    (row,) = rows
    assert row["clip"] == "hard" and row["detector"] == "blazeface" and row["frames"] == 40
    assert row["truth_faces"] == sum(len(bench.load_truth(bench.HARD_TRUTH)[i]) for i in range(40))
    assert row["recall"] >= 0.9 and row["false_per_100_frames"] <= 5


def test_the_hard_scene_setting_the_docs_recommend_finds_the_hard_clips_faces():
    """docs/runtime.md's line for a room (YuNet at full resolution, following faces between its windows): the
    benchmark grid's row, on the whole hard clip against its truth (measured 98.6% and no false detection)."""
    (name,) = [name for name in bench.DETECTOR_GRID if name.endswith("(hard scenes)")]
    (row,) = bench.bench_pipelines("hard", None, {name: bench.DETECTOR_GRID[name]}, "", 1)
    assert row["detector"] == "yunet" and row["detect_width"] == 0 and row["confirm_every"] > 1
    assert row["recall"] >= 0.95 and row["false_detections"] <= 1
    assert row["label_agreement"] >= 0.95  # per-track classification says what classifying every frame says


def test_bench_pipeline_cli_compares_detectors(tmp_path):
    result = run_cli("bench", "pipeline", "--source", "sample", "--detector", "haar,blazeface", "--max-frames", "10",
                     "--all-cores", "--out-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "detector haar" in result.stdout and "detector blazeface" in result.stdout
    rows = json.loads(next(tmp_path.glob("*_pipeline_*.json")).read_text())["rows"]
    assert [r["detector"] for r in rows] == ["haar", "blazeface"] and all(r["frames"] == 10 for r in rows)
    bad = run_cli("bench", "pipeline", "--grid", "nope", "--out-dir", str(tmp_path))
    assert bad.returncode == 2 and "--grid must be one of detectors, haar-levers" in bad.stderr


def test_bench_pipeline_cli_compares_the_motion_gate_on_and_off(tmp_path):
    result = run_cli("bench", "pipeline", "--source", "sample", "--motion-threshold", "0,12", "--still-detect-every", "60",
                     "--max-frames", "40", "--all-cores", "--out-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    rows = json.loads(next(tmp_path.glob("*_pipeline_*.json")).read_text())["rows"]
    assert [(r["motion_threshold"], r["still_detect_every"]) for r in rows] == [(0, 60), (12, 60)]
    ungated, gated = (r["full_detections"] for r in rows)
    assert ungated == 8 and gated < ungated  # every 5th of 40 frames; the gate: where something moved only


def test_a_folder_with_a_corrupt_file_exits_0_and_reports_it(tmp_path):
    """Documented: an unreadable image is an error record, counted; the folder run goes on and exits 0."""
    import cv2

    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    cv2.imwrite(str(folder / "a.png"), np.full((60, 80, 3), 100, np.uint8))
    cv2.imwrite(str(folder / "sub" / "b.TIFF"), np.full((60, 80, 3), 150, np.uint8))
    (folder / "c.jpg").write_bytes(b"corrupt")
    result = run_cli("run", "--source", str(folder), "--summary")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["event"], r.get("image")) for r in records[1:-1]] == [("image", "a.png"), ("error", "c.jpg"), ("image", "sub/b.TIFF")]
    assert records[-1]["images"] == 2 and records[-1]["errors"] == 1
    assert "2 images" in result.stderr and "1 unreadable" in result.stderr


def test_info_gives_both_label_sets_side_by_side_from_the_convert_report():
    for name in BUNDLED_MODELS:
        result = run_cli("info", name)
        assert result.returncode == 0, result.stderr
        report = json.loads((BUNDLED_MODEL.parent.parent / name / "report.json").read_text())
        accuracy, balanced = report["accuracy_by_label_set"]["int8"], report["balanced_by_label_set"]["int8"]["balanced_accuracy"]
        for split in ("PublicTest", "PrivateTest"):
            key = split + "_flip_tta"  # both bundled models run with flip averaging, as their figures were measured
            values = [accuracy["fer2013"][key], balanced["fer2013"][key], accuracy["ferplus_majority"][key], balanced["ferplus_majority"][key]]
            line = next(line for line in result.stdout.splitlines() if line.strip().startswith(split + " "))
            assert [float(cell.rstrip("%")) for cell in line.split()[1:]] == pytest.approx(
                [round(v * 100, 2) for v in values] + [round((values[1] + values[3]) / 2 * 100, 2)], abs=0.006)
        assert f"CK+48        {report['ckplus48']['accuracy'] * 100:.2f}% accuracy" in result.stdout


def test_info_shows_no_label_set_table_from_a_report_of_another_conversion(tmp_path):
    import shutil

    from edge.vision.model import sidecar_path

    mine = tmp_path / "mine.tflite"
    shutil.copy(BUNDLED_MODEL, mine)
    shutil.copy(sidecar_path(BUNDLED_MODEL), sidecar_path(mine))
    assert "balanced accuracy on both: not recorded (no convert report.json" in run_cli("info", str(mine)).stdout
    report = json.loads((BUNDLED_MODEL.parent / "report.json").read_text())
    report["accuracy_by_label_set"]["int8"]["fer2013"]["PrivateTest_flip_tta"] = 0.99  # another conversion's report
    (tmp_path / "report.json").write_text(json.dumps(report))
    assert "balanced accuracy on both: not recorded" in run_cli("info", str(mine)).stdout
    report["accuracy_by_label_set"]["int8"]["fer2013"]["PrivateTest_flip_tta"] = json.loads(sidecar_path(mine).read_text())[
        "accuracy_by_label_set"]["fer2013"]["PrivateTest_flip_tta"]
    (tmp_path / "report.json").write_text(json.dumps(report))
    assert "mean of the" in run_cli("info", str(mine)).stdout


def test_info_on_several_models_describes_each_and_their_average():
    result = run_cli("info", "ferplus,fer2013")
    assert result.returncode == 0, result.stderr
    blocks = result.stdout.split("\n\n")
    assert len(blocks) == 3 and blocks[0] == run_cli("info", "ferplus").stdout.rstrip("\n")
    assert blocks[1] == run_cli("info", "fer2013").stdout.rstrip("\n")
    assert "inferences   2 a face" in blocks[0] and "inferences   10 a face" in blocks[1]
    assert blocks[2].startswith("ensemble     ferplus_int8 + fer2013_int8: class probabilities averaged")
    assert "inferences   12 a face (2 + 10)" in blocks[2]
    measured = json.loads((BUNDLED_MODEL.parent.parent / "ensembles.json").read_text())["ensembles"][0]
    private = measured["PrivateTest"]
    row = next(line for line in blocks[2].splitlines() if line.strip().startswith("PrivateTest "))
    assert [float(cell.rstrip("%")) for cell in row.split()[1:]] == pytest.approx([
        private["fer2013"]["accuracy"] * 100, private["fer2013"]["balanced_accuracy"] * 100, private["ferplus_majority"]["accuracy"] * 100,
        private["ferplus_majority"]["balanced_accuracy"] * 100, private["mean_balanced_accuracy"] * 100], abs=0.006)
    assert f"CK+48        {measured['ckplus48']['accuracy'] * 100:.2f}% accuracy" in blocks[2]
    refused = run_cli("info", "ferplus,ferplus")
    assert refused.returncode == 2 and "twice" in refused.stderr


def test_info_on_an_ensemble_of_other_files_says_it_was_not_measured(tmp_path, monkeypatch):
    from edge import paths
    from edge.config import bundled_model
    from edge.vision.ensemble import ModelEnsemble
    from edge.vision.model import EmotionModel

    pair = ModelEnsemble([EmotionModel(bundled_model("ferplus")), EmotionModel(bundled_model("fer2013"))])
    assert "mean of the" in "\n".join(cli.ensemble_lines(pair))
    entries = json.loads((paths.ASSETS / cli.ENSEMBLE_FIGURES).read_text())
    unshifted = ModelEnsemble([EmotionModel(bundled_model("ferplus")), EmotionModel(bundled_model("fer2013"), shift_tta=0)])
    (four,) = [entry for entry in entries["ensembles"] if entry["inferences_per_face"] == 4]  # measured too: its own figures
    private = f"PrivateTest  {four['PrivateTest']['fer2013']['accuracy'] * 100:.2f}%"
    assert private in "\n".join(cli.ensemble_lines(unshifted)) and private not in "\n".join(cli.ensemble_lines(pair))
    unflipped = ModelEnsemble([EmotionModel(bundled_model("ferplus")), EmotionModel(bundled_model("fer2013"), flip_tta=False)])
    assert "accuracy     not measured for these files" in "\n".join(cli.ensemble_lines(unflipped))  # other views, other figures
    entries["ensembles"][0]["sha256"] = entries["ensembles"][0]["sha256"][::-1]  # measured in the other order
    (tmp_path / cli.ENSEMBLE_FIGURES).write_text(json.dumps(entries))
    monkeypatch.setattr(paths, "ASSETS", tmp_path)
    assert "accuracy     not measured for these files" in "\n".join(cli.ensemble_lines(pair))


def test_pipeline_benchmark_states_agreement_with_classifying_every_frame():
    grid = {"per track": {"classify_every": 5}, "every frame": {"classify_every": 1}}
    per_track, every_frame = bench.bench_pipelines("sample", None, grid, "", 1, max_frames=30)
    assert per_track["label_agreement"] == 1.0 and per_track["updates_every_frame"] == per_track["updates"] == 0
    assert per_track["classified"] < every_frame["classified"] == every_frame["faces"]
    assert "label_agreement" not in every_frame and "labels" not in per_track  # the per-frame labels stay internal
    assert per_track["rss_anon_mb"] > 0


def test_label_agreement_counts_the_reference_faces_given_the_same_label():
    reference = {(0, 1): 3, (1, 1): 3, (1, 2): 6, (2, 1): 4}
    assert bench.label_agreement({(0, 1): 3, (1, 1): 3, (1, 2): 6, (2, 1): 3}, reference) == 0.75
    assert bench.label_agreement({}, {}) is None
