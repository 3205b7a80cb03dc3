"""python -m train / convert in a runtime-only venv: one line saying which extra to install, exit 2."""

import os
import subprocess
import sys

import pytest
from conftest import ROOT

from train.extra import training_extra

ABSENT = (
    "import sys\n"
    "class Absent:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('tensorflow', 'keras', 'matplotlib'):\n"
    "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
    "sys.meta_path.insert(0, Absent())\n"
)


@pytest.mark.parametrize("command", [["convert", "--help"], ["train", "fit", "--help"]])
def test_an_entry_point_without_tensorflow_says_which_extra_and_exits_2(tmp_path, command):
    (tmp_path / "sitecustomize.py").write_text(ABSENT)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    result = subprocess.run([sys.executable, "-m", *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if result.returncode == 0:  # this command's help needs no TensorFlow: fine, as long as it said nothing alarming
        assert "Traceback" not in result.stderr
        return
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: python -m {command[0]} needs the training extra") and ".[train]" in line


def test_other_missing_modules_are_not_blamed_on_the_extra():
    with pytest.raises(ModuleNotFoundError), training_extra("python -m convert"):
        raise ModuleNotFoundError("No module named 'nonesuch'", name="nonesuch")


def test_convert_help_is_in_panels_and_installs_a_model_one_way():
    import typer.main

    from convert.cli import app
    from convert.config import ConvertConfig
    from edge.settings import described

    assert {meta.panel for _, meta in described(ConvertConfig)} == set(ConvertConfig.PANELS)
    flags = {opt for param in typer.main.get_command(app).params for opt in param.opts}
    assert "--bundle" in flags and "--bundle-dir" not in flags  # `make ship` runs --bundle; no second way


def test_train_fit_help_is_in_panels():
    from edge.settings import described
    from train.config import TrainConfig

    assert {meta.panel for _, meta in described(TrainConfig)} == set(TrainConfig.PANELS)
