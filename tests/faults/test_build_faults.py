"""Issue 22, the training / conversion / deployment side: a garbage model must not become the default, shipped
folders are never an output unless asked by name, --resume continues only the same run, and the smaller ones
(make deploy PI quoting, sidecar shift_tta bounds, a sidecar without its digest, a corrupt .keras).

Cases and commands to rerun them: docs/reliability.md (Training, conversion and deployment)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import ROOT, synthetic_faces, synthetic_votes, write_csv, write_ferplus
from typer.testing import CliRunner

from edge.config import BUNDLED_MODEL, DEFAULT_MODEL
from edge.vision.model import EmotionModel, ModelError, sidecar_digest, sidecar_path

SHIPPED_FILES = ("models/mini_xception.keras", "models/class_counts.png", "edge/assets/ferplus/ferplus_int8.tflite",
                 "edge/assets/ferplus/ferplus_int8.json")


def fingerprints() -> dict[str, str]:
    return {name: hashlib.sha256((ROOT / name).read_bytes()).hexdigest() for name in SHIPPED_FILES}


def run_module(args: list[str], cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    faces, labels, splits = synthetic_faces(140)
    write_csv(folder / "fer2013.csv", faces, labels, splits)
    write_ferplus(folder / "fer2013new.csv", synthetic_votes(labels)[0], splits)
    return folder / "fer2013.csv"


# 1. The gate: defaults in one place, --bundle refuses --limit and a missing floor.


def test_the_gate_defaults_live_in_the_convert_settings_and_the_makefile_passes_none():
    from convert.config import ConvertConfig

    config = ConvertConfig(data="fer2013.csv")
    assert (config.max_drop, config.min_accuracy) == (0.3, 60.0)  # README's gate: at most 0.3 points lost, at least 60 %
    for target, bundles in (("convert", False), ("ship", True)):  # make convert gates only; make ship also installs
        result = subprocess.run(["make", "-n", target, "RUN=runs/ferplus", "NAME=ferplus"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        (command,) = [line for line in result.stdout.replace("\\\n", " ").splitlines() if " -m convert " in line]
        assert ("--bundle" in command) == bundles and "--max-drop" not in command and "--min-accuracy" not in command
    assert "MAX_DROP" not in (ROOT / "Makefile").read_text() and "MIN_ACCURACY" not in (ROOT / "Makefile").read_text()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--name", "ferplus", "--limit", "100"], "--limit.*--bundle"),
        (["--name", DEFAULT_MODEL, "--min-accuracy", "0"], f"the default model {DEFAULT_MODEL!r} .*needs --min-accuracy of at least 60"),
        (["--name", DEFAULT_MODEL, "--min-accuracy", "10"], "at least 60"),
        (["--name", "fer2013", "--min-accuracy", "0"], "--bundle installs only a gated model: give --min-accuracy"),
    ],
)
@pytest.mark.tf
def test_bundle_refuses_a_sample_or_a_missing_floor_before_converting(tmp_path, flags, message):
    before = fingerprints()
    result = run_module(["convert", "--data", str(tmp_path / "none.csv"), "--keras-model", str(tmp_path / "none.keras"),
                         "--out-dir", str(tmp_path / "out"), "--bundle", *flags])
    assert result.returncode == 2, result.stderr[-2000:]
    assert re.search(message, result.stderr), result.stderr[-2000:]
    assert "not found" not in result.stderr  # refused on the flags, before looking at any file
    assert fingerprints() == before


@pytest.mark.tf
def test_a_one_epoch_model_is_not_installed_as_the_default(small_data, tmp_path, monkeypatch):
    """The reported case: a barely trained model, `convert --name ferplus --bundle` with the gate's defaults."""
    from convert import cli
    from edge import paths as edge_paths
    from train.model import make_mini_xception

    model_path = tmp_path / "run" / "mini_xception.keras"
    model_path.parent.mkdir()
    make_mini_xception().save(model_path)  # untrained: int8 loses next to nothing against it, yet it is garbage
    monkeypatch.setattr(edge_paths, "ASSETS", tmp_path / "assets")  # where --bundle installs, here a scratch folder
    result = CliRunner().invoke(cli.app, ["--data", str(small_data), "--keras-model", str(model_path), "--out-dir", str(tmp_path / "run"),
                                          "--name", "ferplus", "--bundle", "--calibration-count", "70", "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 1, result.output[-2000:]
    assert "below --min-accuracy 60" in result.output and "nothing installed" in result.output
    assert not (tmp_path / "assets").exists()
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["gate"] == {**report["gate"], "max_drop": 0.3, "min_accuracy": 60.0, "passed": False}


# 4. Shipped folders are never an output unless --allow-shipped-output says so.


def shipped_spellings(tmp_path: Path) -> list[str]:
    link = tmp_path / "link_to_models"
    link.symlink_to(ROOT / "models")
    return ["models", "./models", "models/", "models/stage1", "models/new_run", str(ROOT / "models"), str(link), f"{link}/stage9",
            "edge/assets", "edge/assets/ferplus", "edge/../models"]


def test_train_refuses_a_shipped_out_dir_in_every_spelling(tmp_path, monkeypatch):
    from train.config import TrainConfig

    monkeypatch.chdir(ROOT)
    for out_dir in shipped_spellings(tmp_path):
        with pytest.raises(ValueError, match=r"--out-dir .* shipped .*--allow-shipped-output"):
            TrainConfig(data="fer2013.csv", out_dir=out_dir)
    TrainConfig(data="fer2013.csv", out_dir="models", allow_shipped_output=True)  # said by name: allowed
    TrainConfig(data="fer2013.csv", out_dir=str(tmp_path / "models"))  # a folder that only shares the name
    assert TrainConfig(data="fer2013.csv").run_dir() == Path("runs/fer2013")


@pytest.mark.tf
def test_train_fit_cli_refuses_a_shipped_out_dir_before_reading_data(tmp_path):
    before = fingerprints()
    result = run_module(["train", "fit", "--data", str(tmp_path / "none.csv"), "--out-dir", "models", "--epochs", "1"])
    assert result.returncode == 2 and "--allow-shipped-output" in result.stderr, result.stderr[-2000:]
    assert fingerprints() == before


def test_convert_refuses_a_shipped_out_dir_or_bundle_dir(tmp_path, monkeypatch):
    from convert.config import ConvertConfig

    monkeypatch.chdir(ROOT)
    assert not ConvertConfig(data="fer2013.csv").out_dir.startswith("models")  # the default writes nothing shipped
    for out_dir in shipped_spellings(tmp_path):
        with pytest.raises(ValueError, match=r"--out-dir .* shipped .*--allow-shipped-output"):
            ConvertConfig(data="fer2013.csv", out_dir=out_dir)
    with pytest.raises(ValueError, match=r"--bundle-dir .* shipped"):
        ConvertConfig(data="fer2013.csv", bundle_dir="edge/assets", min_accuracy=60.0)
    ConvertConfig(data="fer2013.csv", out_dir="models", name="fer2013", allow_shipped_output=True)
    ConvertConfig(data="fer2013.csv", bundle_dir="edge/assets/fer2013", name="fer2013")  # what --bundle --name fer2013 installs


def test_train_summary_writes_its_chart_outside_the_shipped_folders(small_data, tmp_path):
    before = fingerprints()
    result = run_module(["train", "summary", "--data", str(small_data), "--cache-dir", str(tmp_path / "c")], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "out" / "class_counts.png").is_file() and not (tmp_path / "models").exists()
    target = ROOT / "models" / "class_counts_issue22.png"
    try:
        refused = run_module(["train", "summary", "--data", str(small_data), "--out", str(target), "--cache-dir", str(tmp_path / "c")])
        assert refused.returncode == 2 and "--allow-shipped-output" in refused.stderr, refused.stderr[-2000:]
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)
    assert fingerprints() == before


# 5. --resume continues only the same run.


def run_fit(data: Path, out_dir: Path, **overrides):
    from train.config import TrainConfig
    from train.fit import fit

    config = dict(data=str(data), out_dir=str(out_dir), epochs=2, batch_size=16, patience=5, verbose=0,
                  cache_dir=str(out_dir.parent / "cache"))
    return fit(TrainConfig(**{**config, **overrides}))


def interrupt_after_first_epoch(run: Path) -> None:
    state = json.loads((run / ".train" / "state.json").read_text())
    state.update(next_epoch=1)
    state.pop("finished", None)
    (run / ".train" / "state.json").write_text(json.dumps(state))
    history = (run / "history.csv").read_text().splitlines()
    (run / "history.csv").write_text("\n".join(history[:2]) + "\n")


@pytest.fixture(scope="module")
def stopped_run(small_data, tmp_path_factory):
    """A FER+ run stopped after its first epoch (its state says so), and other data, votes and a model."""
    folder = tmp_path_factory.mktemp("resume")
    run_fit(small_data, folder / "run", labels="ferplus")
    interrupt_after_first_epoch(folder / "run")
    other = folder / "other"
    other.mkdir()
    faces, labels, splits = synthetic_faces(140, seed=5)
    write_csv(other / "fer2013.csv", faces, labels, splits)
    write_ferplus(other / "fer2013new.csv", synthetic_votes(labels, seed=5)[0], splits)
    return folder


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: {"data": f / "other" / "fer2013.csv", "ferplus": str(f / "other" / "fer2013new.csv")}, "data: other content"),
        (lambda f: {"ferplus": str(f / "other" / "fer2013new.csv")}, "ferplus: other content"),
        (lambda f: {"init_from": str(f / "run" / "mini_xception.keras")}, "init_from: '' -> "),
        (lambda f: {"patience": 7}, "patience 5 -> 7"),
        (lambda f: {"skip_bad": True}, "skip_bad False -> True"),
        (lambda f: {"epochs": 3}, "epochs 2 -> 3"),
    ],
)
@pytest.mark.tf
def test_resume_refuses_other_data_votes_init_or_patience(small_data, stopped_run, change, message):
    state_before = (stopped_run / "run" / ".train" / "state.json").read_text()
    overrides = {"labels": "ferplus", "resume": True, **change(stopped_run)}
    with pytest.raises(ValueError, match=f"--resume continues the same run; changed since it started: .*{message}"):
        run_fit(overrides.pop("data", small_data), stopped_run / "run", **overrides)
    assert (stopped_run / "run" / ".train" / "state.json").read_text() == state_before


@pytest.mark.tf
def test_resume_takes_the_same_data_from_another_path_then_a_finished_run_says_so_once(small_data, stopped_run, tmp_path):
    moved = tmp_path / "fer2013.csv"
    shutil.copy(small_data, moved)
    shutil.copy(small_data.parent / "fer2013new.csv", tmp_path / "fer2013new.csv")
    report = run_fit(moved, stopped_run / "run", labels="ferplus", resume=True)  # same bytes, same run
    assert report["epochs_run"] == 2 and report["data_sha256"] == hashlib.sha256(small_data.read_bytes()).hexdigest()
    for epochs in (2, 4):  # finished: no advice to change --epochs, which resume would then refuse
        with pytest.raises(ValueError) as refused:
            run_fit(small_data, stopped_run / "run", labels="ferplus", resume=True, epochs=epochs)
        text = str(refused.value)
        assert "finished" in text and "nothing to resume" in text and "--init-from" in text and "--epochs" not in text


# 12. The smaller ones.


@pytest.fixture
def tripwire_path(tmp_path) -> str:
    """A PATH whose ssh and rsync fail loudly: nothing may contact a host here."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("ssh", "scp", "rsync"):
        (bin_dir / name).write_text(f"#!/bin/sh\necho 'fake {name} must not run' >&2\nexit 97\n")
        (bin_dir / name).chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


@pytest.mark.parametrize("variable", ["PI=x;touch {mark}", "PI=x$$(touch {mark})", "PI=pi@host DRY_RUN=1;touch {mark}",
                                      "PI=`touch {mark}`"])
def test_make_deploy_runs_nothing_smuggled_in_its_variables(tmp_path, tripwire_path, variable):
    mark = tmp_path / "pwned"
    assignments = variable.format(mark=mark).split(" ")
    if not any(a.startswith("DRY_RUN=") for a in assignments):
        assignments.append("DRY_RUN=1")
    env = {**os.environ, "PATH": tripwire_path}
    printed = subprocess.run(["make", "-n", "deploy", *assignments], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert not mark.exists()
    result = subprocess.run(["make", "deploy", *assignments], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert not mark.exists(), printed.stdout
    assert result.returncode != 0 and "deploy.sh:" in result.stderr, result.stderr[-2000:]


def test_deploy_sh_refuses_a_host_that_is_not_user_at_host(tripwire_path):
    for host in ("x;touch pwned", "pi@host name", "pi@-oProxyCommand=x", "a'b"):
        result = subprocess.run(["bash", "deploy/deploy.sh", host], cwd=ROOT, env={**os.environ, "PATH": tripwire_path, "DRY_RUN": "1"},
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and "not user@host" in result.stderr, (host, result.stderr)
    for host in ("pi@raspberrypi.local", "raspberrypi", "pi@192.168.1.20", "pi@[fe80::1]"):
        result = subprocess.run(["bash", "deploy/deploy.sh", host], cwd=ROOT, env={**os.environ, "PATH": tripwire_path, "DRY_RUN": "1"},
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (host, result.stderr)


def copied_model(tmp_path: Path, change) -> Path:
    """The shipped default model beside a sidecar changed by `change`, its digest re-made (a careful editor)."""
    path = tmp_path / "m.tflite"
    shutil.copy(BUNDLED_MODEL, path)
    sidecar = json.loads(sidecar_path(BUNDLED_MODEL).read_text())
    change(sidecar)
    if "digest" in sidecar:
        sidecar["digest"] = sidecar_digest(sidecar)
    sidecar_path(path).write_text(json.dumps(sidecar))
    return path


@pytest.mark.parametrize("value", [99, -3, 9, 2.5, True, "2"])
def test_a_sidecar_shift_tta_outside_the_flags_bounds_is_refused(tmp_path, value):
    path = copied_model(tmp_path, lambda s: s["contract"].update(shift_tta=value))
    with pytest.raises(ModelError, match=rf"{sidecar_path(path)}: contract.shift_tta must be an integer between 0 and 8, got {value!r}"):
        EmotionModel(path)


def test_a_sidecar_shift_tta_in_bounds_loads(tmp_path):
    assert EmotionModel(copied_model(tmp_path, lambda s: s["contract"].update(shift_tta=8))).shift_tta == 8


def test_a_sidecar_without_its_digest_says_unverified_in_the_start_record_and_edge_info(tmp_path):
    from conftest import grace_hopper_path

    from edge import pipeline
    from edge.config import RunConfig

    path = copied_model(tmp_path, lambda s: s.pop("digest"))
    log = tmp_path / "events.jsonl"
    pipeline.run(RunConfig(source=str(grace_hopper_path()), model=str(path), log=str(log)))
    start = json.loads(log.read_text().splitlines()[0])
    assert start["event"] == "start" and start["sidecar_verified"] is False
    assert "accuracy unverified" in start["sidecar"]
    info = run_module(["edge", "info", str(path)])
    assert info.returncode == 0 and "accuracy unverified" in info.stdout and "written before digests" not in info.stdout
    shipped = run_module(["edge", "info"])
    assert "digest verified" in shipped.stdout


def test_a_shipped_sidecar_start_record_says_verified(tmp_path):
    from conftest import grace_hopper_path

    from edge import pipeline
    from edge.config import RunConfig

    log = tmp_path / "events.jsonl"
    pipeline.run(RunConfig(source=str(grace_hopper_path()), log=str(log)))
    start = json.loads(log.read_text().splitlines()[0])
    assert start["sidecar_verified"] is True and "digest verified" in start["sidecar"]


@pytest.mark.tf
@pytest.mark.parametrize("content", [b"garbage", b"PK\x03\x04" + bytes(200), None, "a zip of something else"])
def test_convert_on_a_corrupt_keras_file_names_it_as_not_a_keras_model(small_data, tmp_path, content):
    bad = tmp_path / "broken.keras"
    if content is None:  # a real model cut short, as by a full disk
        bad.write_bytes((ROOT / "models" / "mini_xception.keras").read_bytes()[:5000])
    elif isinstance(content, str):  # a whole zip archive, but no model in it
        with zipfile.ZipFile(bad, "w") as archive:
            archive.writestr("notes.txt", content)
    else:
        bad.write_bytes(content)
    result = run_module(["convert", "--data", str(small_data), "--keras-model", str(bad), "--out-dir", str(tmp_path / "out"),
                         "--cache-dir", str(tmp_path / "c")])
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"{bad}: not a valid Keras model" in result.stderr and "File not found" not in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_train_init_from_a_corrupt_keras_file_names_it(small_data, tmp_path):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match=f"--init-from .*{bad}: not a valid Keras model"):
        run_fit(small_data, tmp_path / "run", init_from=str(bad))


def test_convert_bundle_dir_rules_apply_through_the_api_too(tmp_path, monkeypatch):
    from convert.config import ConvertConfig

    monkeypatch.chdir(ROOT)
    base = ConvertConfig(data="fer2013.csv", out_dir=str(tmp_path))
    with pytest.raises(ValueError, match="--limit"):
        replace(base, bundle_dir=str(tmp_path / "b"), limit=50)
    with pytest.raises(ValueError, match="at least 60"):
        replace(base, bundle_dir=f"edge/assets/{DEFAULT_MODEL}", name=DEFAULT_MODEL, min_accuracy=20.0)
    assert replace(base, bundle_dir=str(tmp_path / "b"), min_accuracy=None).min_accuracy is None  # a scratch copy: no floor needed
