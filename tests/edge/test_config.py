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
        ('[run]\nnum_threads = "two"\n', "run.num_threads) must be int"),
        ("[run]\ndisplay = 1\n", "run.display) must be bool"),
        ("[run]\nnum_threads = true\n", "run.num_threads) must be int"),
        ("[run]\nscale_factor = 0.9\n", "--scale-factor (run.scale_factor) must be > 1 and <= 2, got 0.9"),
        ("[run]\nfps = 0\n", "--fps (run.fps) must be between 1 and 240, got 0"),
        ("[run]\nduration = inf\n", "--duration (run.duration) must be a finite number, got inf"),
        ("[run]\nstats_interval = nan\n", "--stats-interval (run.stats_interval) must be a finite number"),
        ("[run]\nfps = -inf\n", "--fps (run.fps) must be a finite number, got -inf"),
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


def test_every_setting_is_a_flag_a_toml_key_and_documented():
    """One definition: the CLI options, deploy/edge.toml and docs/configuration.md are made from RunConfig."""
    import typer.main

    from edge import cli, config

    command = typer.main.get_command(cli.app).commands["run"]
    flags = {opt for param in command.params for opt in param.opts}
    fields = RunConfig.__dataclass_fields__
    assert {f"--{name.replace('_', '-')}" for name in fields} <= flags
    assert (ROOT / "deploy" / "edge.toml").read_text() == config.pi_toml(), "regenerate: python -m edge settings --toml > deploy/edge.toml"
    assert (ROOT / "docs" / "configuration.md").read_text() == config.settings_markdown(), "regenerate: python -m edge settings --markdown > docs/configuration.md"
    pi = tomllib.loads(config.pi_toml())["run"]
    assert set(pi) == {name for name, f in fields.items() if f.default is not None}  # None (unset) is a comment
    assert {key for key, value in pi.items() if value != fields[key].default} == set(config.PI_VALUES)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"num_threads": 0}, "--num-threads (run.num_threads) must be between 1 and 64, got 0"),
        ({"duration": float("inf")}, "--duration (run.duration) must be a finite number, got inf"),
        ({"stats_interval": float("nan")}, "--stats-interval (run.stats_interval) must be a finite number"),
        ({"iou_threshold": 1.0}, "--iou-threshold (run.iou_threshold) must be > 0 and < 1, got 1.0"),
        ({"detect_width": 20}, "--detect-width (run.detect_width) must be 0 (full size) or between 48 and 8192, got 20"),
        ({"lores_width": 800}, "must fit in --frame-width"),
        ({"min_face": True}, "--min-face (run.min_face) must be int, got True"),
    ],
)
def test_a_bad_setting_names_flag_key_and_range(overrides, message):
    with pytest.raises(ValueError) as error:
        RunConfig(**overrides)
    assert message in str(error.value)


def test_zero_means_no_limit_where_the_setting_says_so():
    config = RunConfig(detect_width=0, max_frames=0, duration=0, log_max_bytes=0)
    assert (config.detect_width, config.max_frames, config.duration, config.log_max_bytes) == (0, 0, 0, 0)


def test_every_bad_setting_is_reported_at_once():
    with pytest.raises(ValueError) as error:
        RunConfig(num_threads=0, fps=float("inf"))
    assert "--num-threads" in str(error.value) and "--fps" in str(error.value)


def test_model_resolves_a_bundled_name_or_a_path(tmp_path, monkeypatch):
    from edge import config, paths

    assert RunConfig().model_path() == config.BUNDLED_MODEL == config.bundled_model(config.DEFAULT_MODEL)
    assert config.BUNDLED_MODEL.is_file()
    assert RunConfig(model="fer2013").model_path() == paths.ASSETS / "fer2013" / "fer2013_int8.tflite"
    assert RunConfig(model=str(tmp_path / "mine.tflite")).model_path() == tmp_path / "mine.tflite"
    assert RunConfig(model="mine.tflite").model_path().name == "mine.tflite"
    monkeypatch.setattr(paths, "ASSETS", tmp_path)  # a fresh tree: no model installed yet
    with pytest.raises(ValueError, match=r"bundled model 'ferplus' is not installed .*make ship RUN=runs/ferplus NAME=ferplus"):
        RunConfig(model="ferplus").model_path()
    (tmp_path / "ferplus").mkdir()
    (tmp_path / "ferplus" / "ferplus_int8.tflite").write_bytes(b"")
    assert RunConfig(model="ferplus").model_path() == tmp_path / "ferplus" / "ferplus_int8.tflite"
    with pytest.raises(ValueError, match="'fer2014': not a bundled model .*fer2013, ferplus"):
        RunConfig(model="fer2014").model_path()
    with pytest.raises(ValueError, match="unknown bundled model 'x'"):
        config.bundled_model("x")


def test_every_setting_sits_in_a_known_panel_and_help_shows_the_panels():
    from typer.testing import CliRunner

    from edge import cli
    from edge.settings import described

    assert {meta.panel for _, meta in described(RunConfig)} == set(RunConfig.PANELS)
    result = CliRunner().invoke(cli.app, ["run", "--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0
    titles = [line.split("─ ", 1)[1].split(" ─")[0] for line in result.output.splitlines() if line.startswith("╭─ ")]
    assert titles == ["Options", *RunConfig.PANELS]
    flip = next(line for line in result.output.splitlines() if "--flip-tta" in line)
    assert "<bool>" not in flip and "--camera-id" not in result.output


def test_settings_prints_tables_and_markdown_only_when_asked():
    from typer.testing import CliRunner

    from edge import cli, config

    plain = CliRunner().invoke(cli.app, ["settings"], env={"COLUMNS": "160"})
    assert plain.exit_code == 0 and "--num-threads" in plain.output
    assert "| key |" not in plain.output and "Generated from" not in plain.output
    markdown = CliRunner().invoke(cli.app, ["settings", "--markdown"])
    assert markdown.output == config.settings_markdown()


def test_camera_id_is_a_deprecated_alias_of_source_usb(monkeypatch):
    from typer.testing import CliRunner

    from edge import cli

    seen = {}
    monkeypatch.setattr("edge.pipeline.run", lambda run_config: seen.setdefault("source", run_config.source) and {})
    result = CliRunner().invoke(cli.app, ["run", "--camera-id", "2"])
    assert seen["source"] == "usb:2"
    assert "--camera-id is deprecated; use --source usb:2" in result.output
    both = CliRunner().invoke(cli.app, ["run", "--camera-id", "2", "--source", "usb:1"])
    assert both.exit_code == 2 and "not both" in both.output
