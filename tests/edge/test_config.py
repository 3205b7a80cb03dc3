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
        ("[run]\nscale_factor = 0.9\n", "scale_factor (--scale-factor) must be above 1.0 and at most 2.0, got 0.9"),
        ("[run]\nfps = 0\n", "fps (--fps) must be from 1 to 240, got 0"),
        ("[run]\nduration = inf\n", "duration (--duration) must be from 0 (no limit) to 31536000 (a year), got inf"),
        ("[run]\nstats_interval = nan\n", "stats_interval (--stats-interval) must be above 0"),
        ("[run]\nfps = -inf\n", "fps (--fps) must be from 1 to 240, got -inf"),
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


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"num_threads": 0}, "num_threads (--num-threads) must be from 1 to 64, got 0"),
        ({"duration": float("inf")}, "duration (--duration) must be from 0 (no limit) to 31536000 (a year), got inf"),
        ({"iou_threshold": float("nan")}, "iou_threshold (--iou-threshold) must be between 0 and 1, exclusive, got nan"),
        ({"lores_width": 700}, "lores_width (--lores-width) must be from 16 to frame_width, got 700"),
    ],
)
def test_bounds_errors_name_the_flag_and_the_range(settings, message):
    with pytest.raises(ValueError) as error:
        RunConfig(**settings)
    assert message in str(error.value)


def test_every_bad_setting_is_reported_at_once():
    with pytest.raises(ValueError) as error:
        RunConfig(num_threads=0, fps=float("inf"))
    assert "--num-threads" in str(error.value) and "--fps" in str(error.value)
