"""notebooks/train.ipynb runs top to bottom unchanged on a CPU: teacher, distilled student, int8, the download."""

import json
import stat
import sys
import zipfile

import nbformat
import pytest
from conftest import ROOT, synthetic_faces, synthetic_votes, write_csv, write_ferplus
from nbclient import NotebookClient


def venv_of_this_python(folder):
    """A venv folder the Makefile takes as installed (its markers newer than pyproject.toml) whose python is this
    one: the notebook's `make venv` is then a no-op instead of an install."""
    (folder / "bin").mkdir(parents=True)
    python = folder / "bin" / "python"
    python.write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    for marker in (".edge", ".all"):
        (folder / marker).touch()
    return folder


@pytest.mark.slow
@pytest.mark.tf
def test_the_training_notebook_runs_top_to_bottom_on_a_cpu(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    images, labels, splits = synthetic_faces(600)
    write_csv(data_dir / "fer2013.csv", images, labels, splits)
    write_ferplus(data_dir / "fer2013new.csv", synthetic_votes(labels)[0], splits)
    settings = {"DATA_DIR": data_dir, "LABELS": "ferplus", "TEACHER_ARCH": "vgg13", "EPOCHS": "1", "MIN_ACCURACY": "0",
                "MAX_DROP": "100", "RUNS": tmp_path / "runs", "VENV": venv_of_this_python(tmp_path / "venv"), "GPU": "0",
                "REPO_DIR": ROOT, "XDG_CACHE_HOME": tmp_path / "cache", "HOME": tmp_path}
    for name, value in settings.items():
        monkeypatch.setenv(name, str(value))
    notebook = nbformat.read(ROOT / "notebooks" / "train.ipynb", as_version=4)
    NotebookClient(notebook, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    runs = tmp_path / "runs"
    teacher = json.loads((runs / "vgg13-ferplus" / "train_report.json").read_text())
    assert teacher["arch"] == "vgg13" and teacher["compute"]["precision"] == "float32"  # no GPU: no mixed precision
    student = json.loads((runs / "ferplus" / "train_report.json").read_text())
    assert student["parameters"] == 58_423 and student["config"]["teacher"].endswith("vgg13.keras")
    with zipfile.ZipFile(runs / "ferplus_int8.zip") as archive:
        assert {"ferplus_int8.tflite", "ferplus_int8.json", "MODEL_CARD.md", "train_report.json"} <= set(archive.namelist())
        archive.extractall(tmp_path / "download")
    from edge.vision.model import EmotionModel

    model = EmotionModel(tmp_path / "download" / "ferplus_int8.tflite")  # the sidecar beside it is what it checks
    assert model.classify(images[:2]).shape == (2, 7)
