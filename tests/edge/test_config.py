import tomllib

import pytest
from conftest import ROOT

from edge.config import RunConfig, load_config


def write(tmp_path, text):
    path = tmp_path / "edge.toml"
    path.write_text(text)
    return path


def test_minimal_config_fills_defaults_and_flags_override(tmp_path):
    path = write(tmp_path, '[run]\nsource = "usb:0"\nnum_threads = 2\n')
    config = load_config(path, {"num_threads": 3})
    assert config.source == "usb:0" and config.num_threads == 3 and config.detect_every == RunConfig().detect_every


@pytest.mark.parametrize(
    "text, message",
    [
        ('[run]\nsourc = "usb:0"\n', "unknown key run.sourc"),
        ('[run]\nnum_threads = "two"\n', "run.num_threads must be int"),
        ("[run]\ndisplay = 1\n", "run.display must be bool"),
        ("[run]\nnum_threads = true\n", "run.num_threads must be int"),
        ("[run]\nscale_factor = 0.9\n", "scale_factor = 0.9"),
        ("[run]\nfps = 0\n", "fps = 0"),
        ("[camera]\nfps = 10\n", "unknown table(s) camera"),
        ("[run\n", "not valid TOML"),
        ("run = 5\n", "run must be a table"),
    ],
)
def test_bad_config_names_the_field(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as error:
        load_config(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ValueError, match="config file not found"):
        load_config(tmp_path / "none.toml")
    with pytest.raises(ValueError, match="cannot read the config file"):
        load_config(tmp_path)


def test_float_fields_accept_integers(tmp_path):
    assert load_config(write(tmp_path, "[run]\nstats_interval = 5\n")).stats_interval == 5


def test_the_shipped_pi_config_is_valid():
    path = ROOT / "deploy" / "edge.toml"
    config = load_config(path)
    assert config.source == "picamera2" and set(tomllib.loads(path.read_text())["run"]) <= set(RunConfig.__dataclass_fields__)


def test_model_resolves_a_bundled_name_or_a_path(tmp_path, monkeypatch):
    from edge import config

    assert RunConfig().model_path() == config.BUNDLED_MODEL == config.bundled_model(config.DEFAULT_MODEL)
    assert config.BUNDLED_MODEL.is_file()
    assert RunConfig(model="fer2013").model_path() == config.ASSETS / "fer2013" / "fer2013_int8.tflite"
    assert RunConfig(model=str(tmp_path / "mine.tflite")).model_path() == tmp_path / "mine.tflite"
    assert RunConfig(model="mine.tflite").model_path().name == "mine.tflite"
    monkeypatch.setattr(config, "ASSETS", tmp_path)  # a fresh tree: no model installed yet
    with pytest.raises(ValueError, match=r"bundled model 'ferplus' is not installed .*make convert RUN=runs/ferplus NAME=ferplus"):
        RunConfig(model="ferplus").model_path()
    (tmp_path / "ferplus").mkdir()
    (tmp_path / "ferplus" / "ferplus_int8.tflite").write_bytes(b"")
    assert RunConfig(model="ferplus").model_path() == tmp_path / "ferplus" / "ferplus_int8.tflite"
    with pytest.raises(ValueError, match="'fer2014': not a bundled model .*fer2013, ferplus"):
        RunConfig(model="fer2014").model_path()
    with pytest.raises(ValueError, match="unknown bundled model 'x'"):
        config.bundled_model("x")
