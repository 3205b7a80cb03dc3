"""The built wheel installs into a fresh virtual environment without TensorFlow and runs the bundled clip."""

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile

import pytest
from conftest import ROOT


@pytest.mark.slow
@pytest.mark.service
def test_wheel_installs_without_tensorflow_and_runs_the_sample(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only what the wheel installed
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(ROOT)],
        check=True, capture_output=True, text=True, timeout=600,
    )
    wheel = next((tmp_path / "dist").glob("fer_edge-*.whl"))
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"{wheel}[litert]"],
        check=True, capture_output=True, text=True, timeout=900, cwd=tmp_path, env=env,
    )
    probe = subprocess.run(
        [str(python), "-c", "import importlib.util as u; print(u.find_spec('tensorflow') is None, u.find_spec('keras') is None)"],
        capture_output=True, text=True, check=True, cwd=tmp_path, env=env,
    )
    assert probe.stdout.split() == ["True", "True"]
    run = subprocess.run(
        [str(python), "-m", "edge", "run", "--source", "sample", "--max-frames", "30", "--log", "-"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    records = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert records[0]["event"] == "start" and records[-1]["event"] == "stop"
    assert records[-1]["frames"] == 30 and records[-1]["faces"] >= 50
    assert "site-packages/edge/assets" in records[0]["model"]
    # BlazeFace's models come with the wheel and run on the same interpreter, still without TensorFlow
    blaze = subprocess.run(
        [str(python), "-m", "edge", "run", "--source", "sample", "--max-frames", "10", "--detector", "blazeface", "--log", "-"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )
    assert blaze.returncode == 0, blaze.stderr[-2000:]
    stop = [json.loads(line) for line in blaze.stdout.splitlines() if line.startswith("{")][-1]
    assert stop["event"] == "stop" and stop["frames"] == 10 and stop["faces"] >= 18


def setuptools_is_new_enough() -> bool:
    """pyproject.toml's build requirement (setuptools>=77, for an SPDX license string) is met here."""
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return False
    return int(version.split(".")[0]) >= 77


# Build with this environment's setuptools when it is new enough (no download); else pip fetches it.
OFFLINE_BUILD = ["--no-build-isolation"] if setuptools_is_new_enough() else []
SOURCE_TREE = ("pyproject.toml", "README.md", "edge", "train", "convert")


def listed_assets() -> list[str]:
    """Every file pyproject.toml ships from edge/assets, as a path under it (the bundled models' folders are
    packages of their own: "edge.assets.ferplus" lists ferplus/...)."""
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    return [
        "/".join([*package.split(".")[2:], name])
        for package, names in package_data.items() if package == "edge.assets" or package.startswith("edge.assets.")
        for name in names
    ]


def test_every_asset_folder_is_a_declared_package():
    """setuptools warns about (and will one day drop) a data folder inside a package that is not declared."""
    packages = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {".".join(("edge", "assets", p.name)) for p in (ROOT / "edge" / "assets").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders <= packages, f"declare in pyproject.toml [tool.setuptools] packages: {sorted(folders - packages)}"


def test_the_asset_list_names_every_tracked_asset():
    tracked = subprocess.run(["git", "ls-files", "edge/assets"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip(f"not a git checkout: {tracked.stderr.strip()}")
    tracked_names = {line.removeprefix("edge/assets/") for line in tracked.stdout.splitlines() if not line.endswith(".py")}
    assert sorted(listed_assets()) == sorted(tracked_names), "list new assets in pyproject.toml [tool.setuptools.package-data]"


@pytest.mark.slow
def test_the_wheel_ships_exactly_the_listed_assets_and_no_stray_file(tmp_path):
    tree = tmp_path / "src"
    tree.mkdir()
    for name in SOURCE_TREE:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(source, tree / name)
    for stray in ("api_keys.json", "notes.md", "frame_0001.png"):  # untracked files a developer left there
        (tree / "edge" / "assets" / stray).write_text('{"key": "not-a-real-key"}')
    build = subprocess.run(  # -v: setuptools' own output, which a quiet install must not fill with warnings
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", *OFFLINE_BUILD, "-w", str(tmp_path / "dist"), str(tree)],
        check=True, capture_output=True, text=True, timeout=600,
    )
    complaints = [line for line in (build.stdout + build.stderr).splitlines() if "BuildBackendWarning" in line or "DeprecationWarning" in line]
    assert complaints == [], "\n".join(complaints)
    wheel = next((tmp_path / "dist").glob("fer_edge-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        shipped = sorted(n.removeprefix("edge/assets/") for n in archive.namelist() if n.startswith("edge/assets/") and not n.endswith(".py"))
    assert shipped == sorted(listed_assets())
