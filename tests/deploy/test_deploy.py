"""Deployment files: dry runs print the right commands and touch nothing; the unit and config are valid."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from edge.config import BUNDLED_MODEL

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **env}
    return subprocess.run(args, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def tripwire(tmp_path: Path) -> tuple[str, Path]:
    """A PATH whose ssh, scp and rsync fail loudly and leave a mark if anything calls them."""
    bin_dir, mark = tmp_path / "bin", tmp_path / "called"
    bin_dir.mkdir()
    for name in ("ssh", "scp", "rsync"):
        fake = bin_dir / name
        fake.write_text(f'#!/bin/sh\necho "{name} $*" >> "{mark}"\necho "fake {name} must not run" >&2\nexit 97\n')
        fake.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}", mark


def test_deploy_dry_run_prints_rsync_and_ssh_and_contacts_nothing(tripwire):
    path, mark = tripwire
    result = run(["bash", "deploy/deploy.sh", "pi@raspberrypi.local"], DRY_RUN="1", PATH=path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("+ rsync -az") and "pi@raspberrypi.local:fer-edge-bundle/" in line for line in lines)
    assert any(line.startswith("+ ssh") and "install.sh" in line for line in lines)
    assert any("pip wheel --no-deps -w build/bundle ." in line for line in lines)
    default_model = BUNDLED_MODEL.relative_to(ROOT)  # deploy.sh ships the runtime's default model
    for model_file in (default_model, default_model.with_suffix(".json")):
        assert any(line.startswith(f"+ cp {model_file} build/bundle/") for line in lines), model_file
    assert not mark.exists(), mark.read_text()


def test_deploy_bundle_only_stops_before_copying(tripwire):
    path, mark = tripwire
    result = run(["bash", "deploy/deploy.sh", "--bundle-only"], DRY_RUN="1", PATH=path)
    assert result.returncode == 0, result.stderr
    assert "pip wheel" in result.stdout
    assert "rsync" not in result.stdout and "ssh" not in result.stdout
    assert not mark.exists()


def test_deploy_passes_install_options_through(tripwire):
    path, _ = tripwire
    result = run(["bash", "deploy/deploy.sh", "pi@host", "--no-systemd"], DRY_RUN="1", PATH=path)
    assert result.returncode == 0
    (ssh_line,) = [line for line in result.stdout.splitlines() if line.startswith("+ ssh")]
    assert ssh_line.endswith("install.sh\\ --no-systemd")  # one remote command, printed shell-quoted


@pytest.mark.parametrize("args", [[], [""], ["--help"]])
def test_deploy_without_host_is_a_usage_error(tripwire, args):
    path, mark = tripwire
    result = run(["bash", "deploy/deploy.sh", *args], DRY_RUN="1", PATH=path)
    assert result.returncode == 2
    assert "usage" in result.stderr
    assert not mark.exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_deploy_needs_pi(tmp_path):
    makefile = tmp_path / "Makefile"
    makefile.write_text(f"PY := {sys.executable}\ninclude deploy/deploy.mk\n")
    result = run(["make", "-s", "-f", str(makefile), "deploy"])
    assert result.returncode != 0
    assert "PI=user@host" in result.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_deploy_expands_nothing_in_pi(tmp_path):
    """Issue 28: make expanded `$(shell ...)` in PI before deploy.sh could check it."""
    makefile = tmp_path / "Makefile"
    makefile.write_text(f"PY := {sys.executable}\ninclude deploy/deploy.mk\n")
    mark = tmp_path / "pwned"
    result = run(["make", "-s", "-f", str(makefile), "deploy", f"PI=$(shell touch {mark})pi@host", "DRY_RUN=$(shell touch {mark})1"])
    assert result.returncode != 0 and "is not user@host" in result.stderr
    assert not mark.exists()


@pytest.mark.parametrize("flag, value", [
    ("--dir", "/home/pi/my fer"), ("--dir", "/home/pi/a&b"), ("--dir", "/home/pi/x|y"), ("--dir", "/home/pi/a\nb"),
    ("--dir", "relative/dir"), ("--dir", '/home/pi/"q"'), ("--user", "a|b"), ("--user", "a b"), ("--user", "pi\n"),
])
@pytest.mark.parametrize("dry_run", ["0", "1"])
def test_install_refuses_a_dir_or_user_that_would_break_the_unit(tmp_path, flag, value, dry_run):
    """Issue 28: a space gave a unit systemd rejects (and DRY_RUN=1 exited 0), '&' wrote a@VENV@b through sed,
    '|' and newlines failed with a raw sed error."""
    args = ["bash", "deploy/install.sh", flag, value] + (["--user", "nobody"] if flag == "--dir" else [])
    for command in (args, args + ["--print-unit"]):
        result = run(command, DRY_RUN=dry_run, HOME=str(tmp_path))
        assert result.returncode == 2, result.stdout[-1000:]
        assert result.stderr.startswith(f"install.sh: {flag} {value}") and "sed:" not in result.stderr
        assert result.stdout == ""


def test_install_dry_run_prints_each_step_and_changes_nothing(tmp_path):
    result = run(["bash", "deploy/install.sh", "--user", "nobody"], DRY_RUN="1", HOME=str(tmp_path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    app = tmp_path / "fer-edge"
    for expected in (
        "apt-get install -y python3-venv python3-opencv python3-numpy",
        "apt-get install -y python3-picamera2",
        f"python3 -m venv --system-site-packages {app}/venv",
        "--no-deps --force-reinstall",
        "pip install --disable-pip-version-check -c",
        " typer\n",
        " ai-edge-litert\n",
        " tflite-runtime\n",
        "drop_cached_libraries\\ as\\ drop\\;\\ drop\\(sys.argv\\[1\\]\\) " + f"{app}/venv\n",  # printed shell-quoted, before the service starts
        f"install -m 644 {DEPLOY}/mini_xception_int8.tflite {DEPLOY}/mini_xception_int8.json {app}/",
        f"> {app}/edge.toml",
        "/etc/systemd/system/fer-edge.service",
        "systemctl daemon-reload",
        "systemctl enable --now fer-edge.service",
        "rm -f /etc/systemd/system/fer-edge.service.d/network.conf",  # no network unless asked
        f"install -D -m 644 {app}/backoff.conf /etc/systemd/system/fer-edge.service.d/backoff.conf",  # systemd >= 254
    ):
        assert expected in out, expected
    assert "tensorflow" not in out.lower()
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_install_no_systemd_skips_the_service(tmp_path):
    result = run(["bash", "deploy/install.sh", "--no-systemd"], DRY_RUN="1", HOME=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "systemctl" not in result.stdout
    assert "-m edge run --config" in result.stdout


def test_install_rejects_unknown_options():
    result = run(["bash", "deploy/install.sh", "--bogus"], DRY_RUN="1")
    assert result.returncode == 2
    assert "usage" in result.stderr


def test_no_tensorflow_anywhere_in_the_install():
    assert "tensorflow" not in (DEPLOY / "install.sh").read_text().lower()


def render_unit(tmp_path: Path, network: bool = False, web: str = "") -> Path:
    """The unit as install.sh renders it, and with network=True the drop-in --network installs beside it,
    with web=HOST:PORT the one --web installs."""
    app = tmp_path / "app"
    (app / "venv" / "bin").mkdir(parents=True)
    (app / "venv" / "bin" / "python").symlink_to(sys.executable)
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    result = run(["bash", "deploy/install.sh", "--print-unit", "--user", user, "--dir", str(app)])
    assert result.returncode == 0, result.stderr
    unit = tmp_path / "fer-edge.service"
    unit.write_text(result.stdout)
    if network:
        (tmp_path / "fer-edge.service.d").mkdir()
        conf = run(["bash", "deploy/install.sh", "--print-network-conf"]).stdout
        (tmp_path / "fer-edge.service.d" / "network.conf").write_text(conf)
    if web:
        (tmp_path / "fer-edge.service.d").mkdir(exist_ok=True)
        conf = run(["bash", "deploy/install.sh", "--print-web-conf", "--web", web])
        assert conf.returncode == 0, conf.stderr
        (tmp_path / "fer-edge.service.d" / "web.conf").write_text(conf.stdout)
    return unit


def test_rendered_unit_is_filled_in(tmp_path):
    text = render_unit(tmp_path).read_text()
    assert re.search(r"@[A-Z_]+@", text) is None  # every placeholder filled in
    app = tmp_path / "app"
    for line in (
        f"ExecStart={app}/venv/bin/python -m edge run --config {app}/edge.toml",
        f"WorkingDirectory={app}",
        "Restart=on-failure",
        "RestartSec=15",
        "StartLimitIntervalSec=600",
        "StartLimitBurst=5",
        "WantedBy=multi-user.target",
        "SupplementaryGroups=video",
        "UMask=0077",
        "LimitNOFILE=4096",  # an explicit open-file limit: the live view's bound on connections stays well below it
        "IPAddressDeny=any",
        # the cameras stay reachable: V4L2, libcamera's media controller, the Pi camera's buffers
        "DevicePolicy=closed",
        "DeviceAllow=char-video4linux rw",
        "DeviceAllow=char-media rw",
        "DeviceAllow=char-dma_heap rw",
    ):
        assert line in text.splitlines(), line
    settings = [line for line in text.splitlines() if not line.startswith("#")]
    assert not any(line.startswith("PrivateDevices") for line in settings)  # it would hide /dev/video*


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (Debian: apt-get install -y systemd)",
)
@pytest.mark.parametrize("network", [False, True])
def test_rendered_unit_passes_systemd_analyze_verify(tmp_path, network):
    unit = render_unit(tmp_path, network)
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in result.stderr.splitlines() if unit.name in line]
    assert result.returncode == 0, result.stderr
    assert complaints == [], result.stderr


def systemd_version() -> int:
    if shutil.which("systemd-analyze") is None:
        return 0
    out = subprocess.run(["systemd-analyze", "--version"], capture_output=True, text=True).stdout
    match = re.match(r"systemd (\d+)", out)
    return int(match.group(1)) if match else 0


MAX_EXPOSURE = 3.0


@pytest.mark.skipif(systemd_version() < 250, reason="needs systemd-analyze >= 250 for security --offline (Debian: apt-get install -y systemd)")
@pytest.mark.parametrize("network", [False, True])
def test_rendered_unit_is_rated_ok_by_systemd_analyze_security(tmp_path, network):
    unit = render_unit(tmp_path, network)
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)], capture_output=True, text=True, timeout=60
    )
    match = re.search(r"Overall exposure level for fer-edge.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout[-2000:] + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout
    blocks_ip = re.search(r"^✓ IPAddressDeny=\s+Service blocks all IP address ranges", result.stdout, re.MULTILINE)
    assert bool(blocks_ip) is not network, result.stdout


def test_network_is_allowed_only_by_the_drop_in(tmp_path):
    conf = run(["bash", "deploy/install.sh", "--print-network-conf"]).stdout
    assert "IPAddressDeny=\n" in conf and "RestrictAddressFamilies=AF_INET AF_INET6" in conf
    for args, expected in (
        ([], "+ rm -f /etc/systemd/system/fer-edge.service.d/network.conf"),
        (["--network"], "network.conf /etc/systemd/system/fer-edge.service.d/network.conf"),
    ):
        result = run(["bash", "deploy/install.sh", "--user", "nobody", *args], DRY_RUN="1", HOME=str(tmp_path))
        assert result.returncode == 0, result.stderr
        assert expected in result.stdout, args


def test_install_refuses_a_root_service_unless_asked(tmp_path):
    refused = run(["bash", "deploy/install.sh", "--user", "root"], DRY_RUN="1", HOME=str(tmp_path))
    assert refused.returncode == 2 and "refusing to install a service that runs as root" in refused.stderr
    assert "apt-get" not in refused.stdout  # refused before doing anything
    allowed = run(["bash", "deploy/install.sh", "--user", "root", "--allow-root"], DRY_RUN="1", HOME=str(tmp_path))
    assert allowed.returncode == 0 and "systemctl enable --now fer-edge.service" in allowed.stdout
    app_only = run(["bash", "deploy/install.sh", "--user", "root", "--no-systemd"], DRY_RUN="1", HOME=str(tmp_path))
    assert app_only.returncode == 0  # no service, nothing runs as root


MDWE_PROBE = """
import ctypes, mmap, sys
if ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN (Linux >= 6.3)
    sys.exit(77)
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    sys.exit(78)
except OSError:
    pass
from edge.config import RunConfig
from edge.pipeline import run
summary = run(RunConfig(source="sample", log=sys.argv[1], max_frames=10, save_video=sys.argv[2]))
print(summary["frames"], summary["faces"])
"""


def test_the_runtime_runs_under_memory_deny_write_execute(tmp_path):
    """MemoryDenyWriteExecute= in the unit: the kernel's MDWE prctl applies the same rule to this process."""
    result = subprocess.run(
        [sys.executable, "-c", MDWE_PROBE, str(tmp_path / "e.jsonl"), str(tmp_path / "v.mp4")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    if result.returncode == 77:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux >= 6.3)")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["10", "20"]


def test_edge_toml_has_exactly_the_run_keys():
    from edge.config import RunConfig

    config = tomllib.loads((DEPLOY / "edge.toml").read_text())
    assert list(config) == ["run"]
    run_table = config["run"]
    assert set(run_table) == {name for name, f in RunConfig.__dataclass_fields__.items() if f.default is not None}
    assert run_table["source"] == "picamera2" and run_table["model"] == ""
    assert run_table["log"] == "/home/pi/fer-edge/logs/events.jsonl"
    assert isinstance(run_table["stats_interval"], float) and isinstance(run_table["scale_factor"], float)
    assert run_table["display"] is False and run_table["emoji"] is False


SECRET_PATTERNS = [
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    r"\b(password|passwd|passphrase|secret|token|api_key)\s*[:=]\s*\S",
    r"\bssh-(rsa|ed25519|dss) AAAA",
    r"\bAKIA[0-9A-Z]{16}\b",
    r"\bsshpass\b",
    r"PasswordAuthentication",
    r"StrictHostKeyChecking\s*=?\s*no",
]


def test_no_credentials_in_deploy_files():
    files = [p for p in DEPLOY.iterdir() if p.is_file()]
    assert files
    for path in files:
        text = path.read_text()
        for pattern in SECRET_PATTERNS:
            assert not re.search(pattern, text, re.IGNORECASE), f"{path.name} matches {pattern}"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_scripts_pass_shellcheck():
    scripts = sorted(str(p) for p in DEPLOY.glob("*.sh"))
    result = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


def test_scripts_parse():
    for script in DEPLOY.glob("*.sh"):
        assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0, script.name


def test_edge_toml_loads_with_the_runtime_loader():
    config_module = pytest.importorskip("edge.config")
    config = config_module.load_config(DEPLOY / "edge.toml")
    assert config.source == "picamera2" and config.model == ""


# -- MQTT: settings in edge.toml (off until set), a login only in mqtt.env on the Pi ---------------------
def test_edge_toml_has_mqtt_off_and_no_login():
    run_table = tomllib.loads((DEPLOY / "edge.toml").read_text())["run"]
    assert run_table["mqtt"] == "" and run_table["device_id"] == "" and run_table["mqtt_credentials_file"] == ""
    assert not {key for key in run_table if "user" in key or "password" in key}


def test_install_with_mqtt_sets_the_config_and_keeps_the_login_out_of_sight(tmp_path):
    password = "pw-Zx81-never-shown"
    result = run(
        ["bash", "deploy/install.sh", "--allow-root", "--mqtt", "mqtts://broker.lan:8883", "--device-id", "kitchen"],
        DRY_RUN="1", HOME=str(tmp_path), FER_MQTT_USERNAME="pi", FER_MQTT_PASSWORD=password,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "paho-mqtt" in out
    assert 'mqtt\\ =\\ \\"mqtts://broker.lan:8883\\"' in out and 'device_id\\ =\\ \\"kitchen\\"' in out
    assert f"> {tmp_path}/fer-edge/mqtt.env" in out and "umask 077" in out
    assert "/etc/systemd/system/fer-edge.service.d/network.conf" in out  # the unit denies IP otherwise
    assert password not in out + result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [["--mqtt", "mqtt://user:pw@host"], ["--mqtt", "http://host"], ["--device-id", "a/b"]])
def test_install_rejects_a_bad_mqtt_url_or_device_id(args, tmp_path):
    result = run(["bash", "deploy/install.sh", *args], DRY_RUN="1", HOME=str(tmp_path))
    assert result.returncode == 2 and "install.sh: --" in result.stderr
    assert "pw" not in result.stdout


def test_rendered_unit_reads_the_optional_login_file(tmp_path):
    text = render_unit(tmp_path).read_text()
    assert f"EnvironmentFile=-{tmp_path / 'app'}/mqtt.env" in text.splitlines()


def test_deploy_refuses_a_login_in_edge_toml_and_never_bundles_mqtt_env(tmp_path, tripwire):
    path, mark = tripwire
    result = run(["bash", "deploy/deploy.sh", "pi@host"], DRY_RUN="1", PATH=path)
    assert result.returncode == 0 and "mqtt.env" not in result.stdout
    copy = tmp_path / "project"
    shutil.copytree(DEPLOY, copy / "deploy")
    toml = copy / "deploy" / "edge.toml"
    for line in ('mqtt = "mqtt://pi:hunter2@broker"', 'password = "hunter2"', 'FER_WEB_TOKEN = "hunter2-hunter2-hunter2"'):
        toml.write_text((DEPLOY / "edge.toml").read_text() + line + "\n")
        result = run(["bash", str(copy / "deploy" / "deploy.sh"), "pi@host"], DRY_RUN="1", PATH=path)
        assert result.returncode == 1 and "holds a broker login" in result.stderr
        assert "pip wheel" not in result.stdout
    assert not mark.exists()


# -- the live view (--web): the unit may listen only when asked, on loopback unless told otherwise ----------
@pytest.mark.skipif(systemd_version() < 250, reason="needs systemd-analyze >= 250 for security --offline (Debian: apt-get install -y systemd)")
@pytest.mark.parametrize("web", ["127.0.0.1:8080", "0.0.0.0:8080"])
def test_the_web_drop_in_keeps_the_unit_rated_ok(tmp_path, web):
    unit = render_unit(tmp_path, web=web)
    verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and not [line for line in verify.stderr.splitlines() if unit.name in line], verify.stderr
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)], capture_output=True, text=True, timeout=60
    )
    match = re.search(r"Overall exposure level for fer-edge.service: (\d+\.\d+)", result.stdout)
    assert match and float(match.group(1)) <= MAX_EXPOSURE, result.stdout
    loopback_only = re.search(r"^. IPAddressDeny=\s+Service defines IP address allow list with only localhost entries", result.stdout, re.MULTILINE)
    assert bool(loopback_only) is web.startswith("127."), result.stdout


def test_web_conf_allows_loopback_only_unless_the_address_is_another(tmp_path):
    loopback = run(["bash", "deploy/install.sh", "--print-web-conf", "--web", "127.0.0.1:8080"]).stdout
    assert "IPAddressAllow=localhost" in loopback and "IPAddressDeny=\n" not in loopback
    assert "RestrictAddressFamilies=AF_INET AF_INET6" in loopback
    network = run(["bash", "deploy/install.sh", "--print-web-conf", "--web", "0.0.0.0:8080"]).stdout
    assert "IPAddressDeny=\n" in network and "IPAddressAllow" not in network


def test_install_with_web_sets_the_config_and_the_drop_in(tmp_path):
    result = run(["bash", "deploy/install.sh", "--user", "nobody", "--web", "127.0.0.1:8080"], DRY_RUN="1", HOME=str(tmp_path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert 'web\\ =\\ \\"127.0.0.1:8080\\"' in out
    assert "install -D -m 644 " + str(tmp_path / "fer-edge" / "web.conf") + " /etc/systemd/system/fer-edge.service.d/web.conf" in out
    assert "web.env" not in out  # loopback needs no token
    assert "ssh -L 8080:127.0.0.1:8080" in out
    without = run(["bash", "deploy/install.sh", "--user", "nobody"], DRY_RUN="1", HOME=str(tmp_path)).stdout
    assert "rm -f /etc/systemd/system/fer-edge.service.d/web.conf" in without  # no listening unless asked
    assert list(tmp_path.iterdir()) == []


def test_install_with_web_on_the_network_keeps_the_token_out_of_sight(tmp_path):
    token = "tok-Zx81-never-shown-anywhere"
    result = run(["bash", "deploy/install.sh", "--user", "nobody", "--web", "0.0.0.0:8080"], DRY_RUN="1", HOME=str(tmp_path),
                 FER_WEB_TOKEN=token)
    assert result.returncode == 0, result.stderr
    assert f"> {tmp_path}/fer-edge/web.env" in result.stdout and "umask 077" in result.stdout
    assert token not in result.stdout + result.stderr
    made = run(["bash", "deploy/install.sh", "--user", "nobody", "--web", "0.0.0.0:8080"], DRY_RUN="1", HOME=str(tmp_path))
    assert "made with python3 secrets" in made.stdout  # none given: one is made, in web.env only
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("address", ["8080", "host:port", "a b:80", "http://host:80"])
def test_install_rejects_a_bad_web_address(address, tmp_path):
    result = run(["bash", "deploy/install.sh", "--web", address], DRY_RUN="1", HOME=str(tmp_path))
    assert result.returncode == 2 and "install.sh: --web" in result.stderr


def test_edge_toml_has_the_live_view_off_and_no_token():
    run_table = tomllib.loads((DEPLOY / "edge.toml").read_text())["run"]
    assert run_table["web"] == "" and run_table["web_token_file"] == ""
    settings = [line for line in (DEPLOY / "edge.toml").read_text().splitlines() if not line.startswith("#")]
    assert not [line for line in settings if "FER_WEB_TOKEN" in line or "token =" in line]


def uninstall_world(tmp_path: Path) -> tuple[dict, Path, Path, Path]:
    """A home with an installed app and logs, a systemd folder with the unit and drop-ins, and a
    systemctl that records its calls."""
    home, units, bin_dir = tmp_path / "home", tmp_path / "systemd", tmp_path / "bin"
    app = home / "fer-edge"
    (app / "logs").mkdir(parents=True)
    (app / "logs" / "events.jsonl").write_text('{"event":"start"}\n')
    (app / "venv" / "bin").mkdir(parents=True)
    (app / "edge.toml").write_text("[run]\n")
    (units / "fer-edge.service.d").mkdir(parents=True)
    (units / "fer-edge.service").write_text("[Unit]\n")
    (units / "fer-edge.service.d" / "network.conf").write_text("[Service]\n")
    bin_dir.mkdir()
    calls = tmp_path / "systemctl.calls"
    for name in ("systemctl", "sudo"):
        fake = bin_dir / name
        body = f'echo "$*" >> "{calls}"' if name == "systemctl" else 'exec "$@"'
        fake.write_text(f"#!/bin/sh\n{body}\n")
        fake.chmod(0o755)
    env = {"HOME": str(home), "FER_SYSTEMD_DIR": str(units), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    return env, app, units, calls


def test_uninstall_removes_the_service_and_the_app_and_keeps_the_logs_unless_asked(tmp_path):
    env, app, units, calls = uninstall_world(tmp_path)
    result = subprocess.run(["bash", "deploy/install.sh", "--uninstall"], cwd=ROOT, env={**os.environ, **env},
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert not (units / "fer-edge.service").exists() and not (units / "fer-edge.service.d").exists()
    assert calls.read_text().splitlines() == ["disable --now fer-edge.service", "daemon-reload"]
    assert sorted(p.name for p in app.iterdir()) == ["logs"] and (app / "logs" / "events.jsonl").exists()
    assert "the event logs stay" in result.stdout
    again = subprocess.run(["bash", "deploy/install.sh", "--uninstall", "--delete-logs"], cwd=ROOT, env={**os.environ, **env},
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and not app.exists() and "no service to remove" in again.stdout


def test_install_enables_the_service_only_when_its_camera_can_open(tmp_path):
    result = run(["bash", "deploy/install.sh", "--user", "nobody"], DRY_RUN="1", HOME=str(tmp_path))
    lines = result.stdout.splitlines()
    enable = next(i for i, line in enumerate(lines) if "systemctl enable --now fer-edge.service" in line)
    assert "camera source can open" in lines[enable - 1]
    assert "picamera2" in (DEPLOY / "install.sh").read_text().split("systemctl enable --now", 1)[0].rsplit("daemon-reload", 1)[1]
