"""Store-and-forward to a real mosquitto on loopback: nothing lost across broker outages, rotation and kills."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import ROOT, folder_deleter
from mqtt_broker import Broker, Subscriber, make_certificates, needs_mosquitto, wait_until

from edge import pipeline
from edge.addresses import parse_broker_url
from edge.config import RunConfig, load_config
from edge.events.log import EventLog
from edge.events.records import record_key
from edge.events.tail import log_files
from edge.fleet.broker import BrokerSettings, broker_settings, read_credentials
from edge.fleet.forwarder import Forwarder, RepeatLimiter, cursor_path
from edge.fleet.topics import SequencedLog, Topics

PASSWORD = "s3cret-Pa55word-xyzzy"
USER = "pi-user-qwerty"


def log_lines(path):
    """Every line of the log and its backups, oldest first (the cursor and its lock are not backups)."""
    return b"".join(p.read_bytes() for p in log_files(path)).splitlines()


def keys(payloads):
    return [record_key(json.loads(p)) for p in payloads]


def forwarder(path, broker, device="pi1", reports=None, discovery=""):
    reports = reports if reports is not None else []
    return Forwarder(path, broker_settings(broker.url), Topics("fer-edge", device), discovery_prefix=discovery, report=reports.append)


@pytest.fixture
def subscriber_factory():
    made = []

    def make(broker, topic="fer-edge/#", **credentials):
        made.append(Subscriber(broker, topic, **credentials))
        return made[-1]

    yield make
    for subscriber in made:
        subscriber.close()


# -- settings: no broker needed -------------------------------------------------------------------------
def test_broker_url_forms():
    assert parse_broker_url("mqtt://broker.local") == ("broker.local", 1883, False)
    assert parse_broker_url("mqtts://broker.local") == ("broker.local", 8883, True)
    assert parse_broker_url("mqtt://10.0.0.2:1884/") == ("10.0.0.2", 1884, False)
    for bad in ("http://x", "mqtt://", "mqtt://x:99999", "mqtt://x/topic", "x:1883"):
        with pytest.raises(ValueError, match="mqtt"):
            parse_broker_url(bad)


def test_credentials_in_the_url_are_refused_with_the_way_to_give_them():
    with pytest.raises(ValueError, match="FER_MQTT_USERNAME") as error:
        parse_broker_url(f"mqtt://{USER}:{PASSWORD}@host")
    assert PASSWORD not in str(error.value)


def test_credentials_come_from_the_environment_or_a_file_and_never_show(tmp_path):
    env = {"FER_MQTT_USERNAME": USER, "FER_MQTT_PASSWORD": PASSWORD}
    settings = broker_settings("mqtt://h", environ=env)
    assert (settings.username, settings.password) == (USER, PASSWORD)
    assert PASSWORD not in repr(settings) and USER not in repr(settings) and PASSWORD not in settings.describe()
    file = tmp_path / "mqtt.env"
    file.write_text(f"# broker login\nFER_MQTT_USERNAME={USER}\nFER_MQTT_PASSWORD='{PASSWORD}'\n")
    file.chmod(0o600)
    assert broker_settings("mqtt://h", credentials_file=str(file), environ={}).password == PASSWORD
    assert broker_settings("mqtt://h", credentials_file=str(file), environ={"FER_MQTT_USERNAME": "env"}).username == "env"
    file.write_text("password: x\n")
    with pytest.raises(ValueError, match=r"mqtt.env, line 1"):
        read_credentials(file)
    with pytest.raises(ValueError, match="mqtt_credentials_file"):
        read_credentials(tmp_path / "missing.env")
    with pytest.raises(ValueError, match="FER_MQTT_USERNAME is not"):
        broker_settings("mqtt://h", environ={"FER_MQTT_PASSWORD": PASSWORD})


@pytest.mark.parametrize("url", ["mqtt://[S3cretPW", "mqtts://[S3cretPW]x", "mqtt://h[S3cretPW"])
def test_an_unreadable_broker_url_names_the_setting_and_never_its_secret(url):
    """Issue 28: `mqtt://[S3cretPW` gave a bare "Invalid IPv6 URL" that named no setting."""
    with pytest.raises(ValueError) as error:
        parse_broker_url(url)
    assert str(error.value).startswith("mqtt = mqtt") and "S3cretPW" not in str(error.value), error.value


def test_a_malformed_broker_url_never_shows_its_secret_part():
    for url in ("mqtt://host:S3cretPW", "mqtts://host:S3cretPW/x", "mqtt://host/S3cretPW", "mqtt://host?S3cretPW"):
        with pytest.raises(ValueError, match="mqtt") as error:
            parse_broker_url(url)
        assert "S3cretPW" not in str(error.value), error.value
        assert "host" in str(error.value)
    result = subprocess.run(
        [sys.executable, "-m", "edge", "run", "--mqtt", "mqtt://host:S3cretPW", "--log", "e.jsonl"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2 and "the port must be a number" in result.stderr
    assert "S3cretPW" not in result.stderr + result.stdout


def test_a_binary_credentials_file_or_a_garbage_ca_file_is_an_error_naming_it(tmp_path):
    binary = tmp_path / "mqtt.env"
    binary.write_bytes(bytes(range(256)) * 4)
    binary.chmod(0o600)
    with pytest.raises(ValueError, match=rf"mqtt_credentials_file {binary}: not a text file"):
        broker_settings("mqtt://h", credentials_file=str(binary), environ={})
    binary.write_bytes(b"FER_MQTT_USERNAME=a\0b\n")
    with pytest.raises(ValueError, match=rf"mqtt_credentials_file {binary}: not a text file \(it holds NUL bytes\)"):
        broker_settings("mqtt://h", credentials_file=str(binary), environ={})
    for garbage in (b"not a certificate\n", os.urandom(2048)):
        ca = tmp_path / "ca.pem"
        ca.write_bytes(garbage)
        with pytest.raises(ValueError, match=rf"mqtt_ca_file {ca}: not a CA certificate file"):
            broker_settings("mqtts://h", ca_file=str(ca))


def test_config_checks_mqtt_settings_up_front(tmp_path):
    with pytest.raises(ValueError, match=r"--mqtt needs --log \(run.log\) to be a file"):
        RunConfig(mqtt="mqtt://h")
    with pytest.raises(ValueError, match="mqtt://"):
        RunConfig(mqtt="tcp://h", log="e.jsonl")
    with pytest.raises(ValueError, match="device_id"):
        RunConfig(device_id="kitchen/pi")
    toml = tmp_path / "edge.toml"
    toml.write_text('[run]\nlog = "e.jsonl"\nmqtt = "mqtt://user:pw@h"\n')
    with pytest.raises(ValueError, match=r"edge.toml: mqtt: the broker URL must not hold credentials"):
        load_config(toml)
    with pytest.raises(ValueError, match="mqtt_ca_file"):
        broker_settings("mqtt://h", ca_file=str(toml))  # a CA file needs mqtts://


# -- a real broker ---------------------------------------------------------------------------------------
@needs_mosquitto
def test_published_events_match_the_log_one_to_one_across_rotation(tmp_path, broker, subscriber_factory):
    broker.start()
    sub = subscriber_factory(broker)
    path = tmp_path / "logs" / "events.jsonl"
    log = SequencedLog(EventLog(path, max_bytes=4000, backups=100), "pi1")
    reports = []
    sender = forwarder(path, broker, reports=reports).start()
    for n in range(400):
        kind = ("new", "update", "end", "stats", "image", "source_gap")[n % 6]
        log.write({"event": kind, "track": n, "label": "happy", "score": 0.5, "processing_fps": 9.5})
    log.close()
    event_topics = ("/track", "/stats", "/image", "/run")

    def received():
        with sub.lock:
            return [(t, p) for t, p, _ in sub.messages if t.endswith(event_topics)]

    wait_until(lambda: len(received()) >= 400, 30, "400 events at the subscriber")
    counts = sender.stop()
    lines = log_lines(path)
    assert len(log_files(path)) > 5  # the log rotated while being sent
    assert [payload for _, payload in received()] == lines  # same bytes, same order, each once
    for topic, payload in received():
        assert topic == Topics("fer-edge", "pi1").for_record(json.loads(payload))
    assert counts["delivered"] == 400 and counts["dropped"] == 0 and counts["unreadable"] == 0
    assert sub.on("/availability")[-1] == b"offline"  # said on a clean stop, retained
    state = json.loads(sub.on("/state")[-1])
    assert state["fps"] == 9.5
    saved = json.loads(cursor_path(path).read_text())
    assert saved["key"][2] == 400
    assert any("delivered 400 events, dropped 0" in line for line in reports)


@needs_mosquitto
def test_broker_down_at_start_then_started_gets_everything(tmp_path, broker, subscriber_factory):
    broker.start()
    sub = subscriber_factory(broker)
    broker.stop()  # saves the subscriber's session: it misses nothing sent while it reconnects later
    path = tmp_path / "events.jsonl"
    log = SequencedLog(EventLog(path), "pi1")
    reports = []
    sender = forwarder(path, broker, reports=reports).start()
    for n in range(50):
        log.write({"event": "new", "track": n})
    time.sleep(0.5)  # the forwarder tries and fails meanwhile
    assert any("unreachable" in line for line in reports)
    broker.start()
    for n in range(50, 80):
        log.write({"event": "end", "track": n})
    wait_until(lambda: len(sub.on("/track")) >= 80, 30, "80 events after the broker came up")
    sender.stop()
    log.close()
    assert sub.on("/track") == log_lines(path)


@needs_mosquitto
def test_broker_killed_mid_run_and_restarted_loses_nothing(tmp_path, broker, subscriber_factory):
    broker.start()
    sub = subscriber_factory(broker)
    path = tmp_path / "events.jsonl"
    log = SequencedLog(EventLog(path, max_bytes=3000, backups=100), "pi1")
    reports = []
    sender = forwarder(path, broker, reports=reports).start()
    writing, written = threading.Event(), []

    def writer():
        while writing.is_set():
            log.write({"event": "update", "track": len(written)})
            written.append(1)
            time.sleep(0.002)

    thread = threading.Thread(target=writer)
    writing.set()
    thread.start()
    try:
        wait_until(lambda: len(sub.on("/track")) >= 100, 30, "events before the kill")
        writing.clear()  # let the subscriber catch up, so the broker holds nothing undelivered when it dies
        thread.join()
        wait_until(lambda: len(sub.on("/track")) >= len(written), 30, "the subscriber to catch up")
        # the test's subscriber must not miss what is sent while it reconnects: its session survives
        broker.save()
        broker.kill()
        before_outage = len(written)
        thread = threading.Thread(target=writer)
        writing.set()  # the runtime writes on while the broker is gone
        thread.start()
        wait_until(lambda: len(written) >= before_outage + 150 and any("will reconnect" in r for r in reports), 30, "the outage")
        broker.start()
        wait_until(lambda: len(written) >= before_outage + 300, 30, "writing after the restart")
    finally:
        writing.clear()
        thread.join()
    log.close()
    total = len(written)
    try:
        seen = wait_until(
            lambda: (got := {k[2] for k in keys(sub.on("/track"))}) >= set(range(1, total + 1)) and got, 30,
            f"all {total} events at the subscriber",
        )
    except AssertionError:
        missing = sorted(set(range(1, total + 1)) - {k[2] for k in keys(sub.on("/track"))})
        raise AssertionError(f"missing {missing[:20]}... ({len(missing)}), before outage {before_outage}, "
                             f"forwarder {sender.counts}, reports {reports}, db {list(broker.folder.iterdir())}") from None
    counts = sender.stop()
    assert seen == set(range(1, total + 1))  # no gaps in the sequence numbers
    first_seen = list(dict.fromkeys(k[2] for k in keys(sub.on("/track"))))
    assert first_seen == sorted(first_seen)  # in the log's order; a repeat is only ever a resend
    assert counts["connects"] >= 2 and counts["dropped"] == 0
    assert len(log_files(path)) > 3


def run_edge(*args, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "edge", *args], cwd=ROOT, env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.slow
@needs_mosquitto
def test_runtime_sigkilled_and_restarted_resumes_at_the_cursor(tmp_path, broker, subscriber_factory):
    broker.start()
    sub = subscriber_factory(broker)
    path = tmp_path / "events.jsonl"
    common = ["--log", str(path), "--mqtt", broker.url, "--device-id", "pi1", "--stats-interval", "0.05"]
    runtime = run_edge("run", "--source", "sample", "--loop", *common)  # looping: killed mid-run on any CPU

    def saved_seq():
        try:
            return json.loads(cursor_path(path).read_text())["key"][2]
        except (OSError, ValueError, TypeError):
            return 0

    try:
        wait_until(lambda: saved_seq() >= 5, 60, "the runtime's first events acknowledged")
    finally:
        runtime.send_signal(signal.SIGKILL)
        runtime.communicate(timeout=30)
    wait_until(lambda: sub.on("/availability")[-1:] == [b"offline"], 30, "the last will after the kill")
    first = log_lines(path)
    run1 = json.loads(first[0])["run"]
    assert json.loads(first[-1])["event"] != "stop"  # killed mid-run: no stop record
    cursor = json.loads(cursor_path(path).read_text())["key"]
    assert cursor[1] == run1 and 5 <= cursor[2] <= len(first)
    wait_until(lambda: {k[2] for k in keys(sub.on("/stats") + sub.on("/run") + sub.on("/track"))} >= set(range(1, cursor[2] + 1)),
               10, "everything up to the cursor at the subscriber")
    received_before = len(sub.messages)

    again = run_edge("run", "--source", "sample", "--max-frames", "5", *common)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    lines = log_lines(path)
    run2 = json.loads(lines[-1])["run"]
    assert run2 != run1 and json.loads(lines[-1])["event"] == "stop"
    event_topics = ("/track", "/stats", "/image", "/run")
    with sub.lock:
        after = [p for t, p, _ in sub.messages[received_before:] if t.endswith(event_topics)]
        everything = [p for t, p, _ in sub.messages if t.endswith(event_topics)]
    assert set(everything) == set(lines)  # every event of both runs delivered at least once
    resent = [k for k in keys(after) if k[1] == run1]
    assert all(k[2] > cursor[2] for k in resent)  # nothing up to the cursor went out again
    assert sorted({k[2] for k in resent}) == list(range(cursor[2] + 1, len(first) + 1))  # all the rest
    duplicates = len(everything) - len(set(everything))
    assert duplicates == len(everything) - len({record_key(json.loads(p)) for p in everything})  # same bytes, same id


@needs_mosquitto
def test_credentials_never_reach_the_log_the_start_record_or_stderr(tmp_path, subscriber_factory, monkeypatch, capfd):
    folder = tmp_path / "broker"
    folder.mkdir()
    server = Broker(folder, users={USER: PASSWORD}).start()
    try:
        sub = subscriber_factory(server, username=USER, password=PASSWORD)
        monkeypatch.setenv("FER_MQTT_USERNAME", USER)
        monkeypatch.setenv("FER_MQTT_PASSWORD", PASSWORD)
        path = tmp_path / "events.jsonl"
        pipeline.run(RunConfig(source="sample", max_frames=10, log=str(path), mqtt=server.url, device_id="pi1"))
        wait_until(lambda: len(sub.on("/run")) >= 2, 15, "start and stop at the broker")  # it logged in
        text = path.read_text()
        start = json.loads(text.splitlines()[0])
        assert start["event"] == "start" and start["config"]["mqtt"] == server.url
        captured = capfd.readouterr()
        for secret in (PASSWORD, USER):
            assert secret not in text and secret not in json.dumps(start)
            assert secret not in captured.out + captured.err
        assert "connected to" in captured.err
        # a wrong password is reported, without the password, and the run still completes
        monkeypatch.setenv("FER_MQTT_PASSWORD", "wrong-" + PASSWORD)
        pipeline.run(RunConfig(source="sample", max_frames=3, log=str(tmp_path / "other.jsonl"), mqtt=server.url))
        captured = capfd.readouterr()
        assert "refused" in captured.err and "Not authorized" in captured.err
        assert PASSWORD not in captured.err and PASSWORD not in (tmp_path / "other.jsonl").read_text()
    finally:
        server.stop()


@needs_mosquitto
def test_home_assistant_discovery_is_retained_and_republished_when_ha_comes_online(tmp_path, broker, subscriber_factory):
    broker.start()
    path = tmp_path / "events.jsonl"
    log = SequencedLog(EventLog(path), "pi1")
    log.write({"event": "new", "track": 1, "label": "happy", "score": 0.8})
    early = subscriber_factory(broker, "homeassistant/#")
    sender = forwarder(path, broker, discovery="homeassistant").start()
    wait_until(lambda: len(early.messages) >= 5, 15, "discovery configs")
    late = subscriber_factory(broker, "homeassistant/#")  # subscribes after: gets the retained configs
    wait_until(lambda: len(late.messages) >= 5, 15, "retained discovery configs")
    with late.lock:
        first = list(late.messages)
    assert all(retained for _, _, retained in first)
    configs = {topic: json.loads(payload) for topic, payload, _ in first}
    assert len({c["unique_id"] for c in configs.values()}) == len(configs) == 5
    home_assistant = subscriber_factory(broker, "homeassistant/status")
    home_assistant.client.publish("homeassistant/status", "online", qos=1).wait_for_publish(5)
    wait_until(lambda: sum(t.endswith("/config") for t in late.topics()) >= 10, 15, "discovery sent again after HA's birth message")
    with late.lock:
        republished = [topic for topic, _, _ in late.messages[5:] if topic.endswith("/config")]
    assert sorted(republished) == sorted(configs)
    state = subscriber_factory(broker, "fer-edge/pi1/state")
    wait_until(lambda: state.messages, 10, "the retained state")
    assert json.loads(state.messages[-1][1])["faces"] == 1 and json.loads(state.messages[-1][1])["dominant"] == "happy"
    sender.stop()
    log.close()


@needs_mosquitto
def test_events_rotated_away_before_delivery_are_counted_and_reported(tmp_path, broker, subscriber_factory):
    path = tmp_path / "events.jsonl"
    log = SequencedLog(EventLog(path, max_bytes=2000, backups=2), "pi1")  # a queue of about 60 lines
    for n in range(500):  # written while no broker is reachable
        log.write({"event": "update", "track": n})
    log.close()
    kept = keys(log_lines(path))
    broker.start()
    sub = subscriber_factory(broker)
    reports = []
    sender = forwarder(path, broker, reports=reports).start()
    wait_until(lambda: len(sub.on("/track")) >= len(kept), 15, "what the log kept")
    counts = sender.stop()
    assert keys(sub.on("/track")) == kept
    assert counts["dropped"] == kept[0][2] - 1 and counts["delivered"] + counts["dropped"] == 500
    assert any(f"DROPPED {kept[0][2] - 1} events" in line for line in reports)
    assert json.loads(sub.on("/forwarder")[-1])["dropped"] == counts["dropped"]


@needs_mosquitto
def test_logrotate_copytruncate_loses_nothing_and_reports_no_drop(tmp_path, broker, subscriber_factory):
    """Issue 28: logrotate's copytruncate (copy to .1, cut the live file to 0) mid-run made the forwarder
    report "DROPPED 43 events" and an unreadable line though every record was on disk."""
    path = tmp_path / "events.jsonl"
    log = SequencedLog(EventLog(path, max_bytes=0), "pi1")
    broker.start()
    sub = subscriber_factory(broker)
    reports = []
    sender = forwarder(path, broker, reports=reports).start()
    for n in range(30):
        log.write({"event": "update", "track": n})
    wait_until(lambda: len(sub.on("/track")) >= 20, 15, "the first events")
    path.with_name(path.name + ".1").write_bytes(path.read_bytes())  # copy ...
    os.truncate(path, 0)  # ... and truncate, as logrotate does
    for n in range(30, 71):
        log.write({"event": "update", "track": n})
    log.close()
    wait_until(lambda: len({key for key in keys(sub.on("/track"))}) >= 71, 15, "all 71 events")
    counts = sender.stop()
    assert sorted(set(keys(sub.on("/track")))) == [("pi1", log.run, seq) for seq in range(1, 72)]
    assert counts["dropped"] == 0 and counts["unreadable"] == 0, (counts, reports)
    assert not any("DROPPED" in line or "skipped an unreadable" in line for line in reports), reports


@needs_mosquitto
def test_a_second_forwarder_on_the_same_log_is_refused(tmp_path, broker):
    path = tmp_path / "events.jsonl"
    SequencedLog(EventLog(path), "pi1").write({"event": "start"})
    first = forwarder(path, broker)
    first.open()
    try:
        with pytest.raises(ValueError, match="another forwarder"):
            forwarder(path, broker).open()
    finally:
        first.cursor.unlock()


@pytest.mark.slow
def test_run_with_mqtt_and_stdout_log_is_a_clear_cli_error():
    result = subprocess.run(
        [sys.executable, "-m", "edge", "run", "--mqtt", "mqtt://127.0.0.1:1", "--log", "-"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2 and "--mqtt needs --log (run.log) to be a file" in result.stderr


def test_settings_repr_hides_credentials():
    settings = BrokerSettings("h", 1883, username=USER, password=PASSWORD)
    assert USER not in repr(settings) and PASSWORD not in repr(settings)


@pytest.mark.slow
@needs_mosquitto
def test_forward_command_sends_a_log_and_stops_cleanly_on_sigterm(tmp_path, broker, subscriber_factory):
    broker.start()
    sub = subscriber_factory(broker, "#")  # everything, discovery included
    path = tmp_path / "events.jsonl"
    log = SequencedLog(EventLog(path), "pi9")
    for n in range(20):
        log.write({"event": "new", "track": n})
    log.close()
    sender = run_edge("forward", "--log", str(path), "--mqtt", broker.url, "--device-id", "pi9", "--no-mqtt-discovery")
    try:
        wait_until(lambda: len(sub.on("pi9/track")) >= 20, 60, "the forwarded log")
    finally:
        sender.send_signal(signal.SIGTERM)
        out, err = sender.communicate(timeout=30)
    assert sender.returncode == 0, err
    assert sub.on("pi9/track") == log_lines(path)
    assert "delivered 20 events, dropped 0" in err
    assert json.loads(cursor_path(path).read_text())["key"] == ["pi9", log.run, 20]
    assert "fer-edge/pi9/availability" in sub.topics()
    assert not [t for t in sub.topics() if t.startswith("homeassistant/")]  # --no-mqtt-discovery


@needs_mosquitto
@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed (it makes the test certificates)")
def test_mqtts_with_a_ca_file_delivers_and_an_unknown_ca_is_refused(tmp_path):
    folder = tmp_path / "broker"
    folder.mkdir()
    ca, cert, key = make_certificates(folder)
    server = Broker(folder, tls=(ca, cert, key)).start()
    try:
        path = tmp_path / "events.jsonl"
        log = SequencedLog(EventLog(path), "pi1")
        for n in range(10):
            log.write({"event": "new", "track": n})
        log.close()
        reports = []
        sender = Forwarder(path, broker_settings(server.url, ca_file=str(ca)), Topics("fer-edge", "pi1"), report=reports.append).start()
        wait_until(lambda: sender.counts["delivered"] == 10, 30, "10 events over TLS")
        sender.stop()
        assert server.url.startswith("mqtts://") and sender.counts["connects"] == 1
        # the system's CAs do not know this one: the handshake fails, said plainly, nothing is sent
        other = tmp_path / "other.jsonl"
        SequencedLog(EventLog(other), "pi2").write({"event": "start"})
        refused = []
        stranger = Forwarder(other, broker_settings(server.url), Topics("fer-edge", "pi2"), report=refused.append).start()
        wait_until(lambda: any("unreachable" in line for line in refused), 30, "the TLS refusal")
        stranger.stop()
        assert stranger.counts["delivered"] == 0 and any("CERTIFICATE_VERIFY_FAILED" in line or "certificate" in line for line in refused)
    finally:
        server.stop()


# -- issue 22: a cursor is data, repeated problems are rate-limited ----------------------------------------
def offline_forwarder(path, reports):
    """A forwarder that is opened (cursor read, reader placed) but never connects."""
    return Forwarder(path, BrokerSettings("127.0.0.1", 1), Topics("fer-edge", "pi1"), report=reports.append)


def sequenced_events(path, count):
    log = SequencedLog(EventLog(path), "pi1")
    for n in range(count):
        log.write({"event": "update", "track": n, "pad": "x" * 150})
    log.close()
    return log


@pytest.mark.parametrize("cursor", [
    {"inode": 1, "offset": 5, "key": ["a"]},  # IndexError traceback before
    {"inode": "INODE", "offset": -500, "key": None},  # "Invalid argument" before
    {"inode": "INODE", "offset": 30000, "key": None},  # mid-line: skipped events, blamed rotation before
    {"inode": "INODE", "offset": 10**9, "key": None},  # past the end of the file
    {"inode": "INODE", "offset": 7, "key": ["pi1", "r", True]},
    [1, 2, 3],
    {"inode": 1.5, "offset": 0, "key": None},
])
def test_an_invalid_cursor_is_reported_once_and_everything_is_sent_again(tmp_path, cursor):
    path = tmp_path / "events.jsonl"
    log = sequenced_events(path, 178)
    if isinstance(cursor, dict) and cursor["inode"] == "INODE":
        cursor = {**cursor, "inode": os.stat(path).st_ino}
    cursor_path(path).write_text(json.dumps(cursor))
    reports = []
    sender = offline_forwarder(path, reports)
    sender.open()
    try:
        first = sender.tail.read()
    finally:
        sender.tail.close()
        sender.cursor.unlock()
    assert json.loads(first[0])["seq"] == 1 and log.seq == 178  # from the oldest line: duplicates, not losses
    said = [line for line in reports if "cursor" in line]
    assert len(said) == 1 and str(cursor_path(path)) in said[0] and "oldest" in said[0], reports


def test_a_cursor_past_the_end_of_its_file_but_with_a_known_line_id_resumes_after_that_line(tmp_path):
    path = tmp_path / "events.jsonl"
    log = sequenced_events(path, 50)
    cursor_path(path).write_text(json.dumps({"inode": os.stat(path).st_ino, "offset": 10**9, "key": ["pi1", log.run, 20]}))
    reports = []
    sender = offline_forwarder(path, reports)
    sender.open()
    try:
        assert json.loads(sender.tail.read()[0])["seq"] == 21 and sender.tail.resumed == "cursor (found by id)"
    finally:
        sender.tail.close()
        sender.cursor.unlock()


def test_a_repeated_problem_is_said_once_a_minute_with_a_count():
    said, now = [], [0.0]
    limiter = RepeatLimiter(said.append, every_s=60, clock=lambda: now[0])
    for step in range(369):  # 369 failures in 10 s, as a full disk gave
        now[0] = step * 10 / 369
        limiter("cursor", "cannot save the cursor c: [Errno 28] No space left on device")
    limiter("other", "another problem")
    assert said == ["cannot save the cursor c: [Errno 28] No space left on device", "another problem"]
    now[0] = 61.0
    limiter("cursor", "cannot save the cursor c: [Errno 28] No space left on device")
    assert said[-1] == "cannot save the cursor c: [Errno 28] No space left on device (and 368 more times in the last 61 s)"
    limiter("cursor", "cannot save the cursor c: again")
    limiter.flush()
    assert said[-1] == "cannot save the cursor c: again (1 more times since it was last said)"


@needs_mosquitto
def test_a_cursor_that_cannot_be_saved_is_said_once_not_hundreds_of_times(tmp_path, broker, subscriber_factory):
    broker.start()
    path = tmp_path / "events.jsonl"
    sequenced_events(path, 20)
    cursor_path(path).mkdir()  # the cursor's path is a folder: every save fails
    sub = subscriber_factory(broker)
    reports = []
    sender = forwarder(path, broker, reports=reports).start()
    wait_until(lambda: len(sub.on("/track")) >= 20, 15, "the events")
    time.sleep(2.0)  # idle: it tries to save the cursor on every pass (several a second)
    sender.stop()
    failures = [line for line in reports if line.startswith("cannot save the cursor")]
    assert len(failures) == 2, reports  # once when it happened, once at stop with the count
    assert "more times since it was last said" in failures[1] and int(failures[1].split("(")[-1].split()[0]) >= 5


@needs_mosquitto
def test_a_run_whose_log_folder_is_deleted_delivers_every_event(tmp_path, broker, subscriber_factory):
    """Before: the forwarder thread died (IndexError) and the runtime went on writing into the unlinked
    file; 57 of ~600 events were sent."""
    broker.start()
    sub = subscriber_factory(broker, "fer-edge/pi1/#")
    path = tmp_path / "logs" / "events.jsonl"
    summary = pipeline.run(
        RunConfig(source="sample", log=str(path), mqtt=broker.url, device_id="pi1", stats_interval=0.1, mqtt_discovery=False),
        observer=folder_deleter(path.parent, after_frames=30),
    )
    written = [json.loads(line) for line in path.read_text().splitlines()]  # what the reopened log holds
    assert written[0]["event"] == "log_reopened" and written[-1]["event"] == "stop" and summary["frames"] == 150
    last = written[-1]["seq"]
    arrived = lambda: {k[2] for k in keys(sub.on("/track") + sub.on("/stats") + sub.on("/run"))}  # noqa: E731
    wait_until(lambda: arrived() >= set(range(1, last + 1)), 20, "every event, before and after the folder went")


@needs_mosquitto
def test_an_unexpected_error_in_the_forwarder_is_said_and_delivery_goes_on(tmp_path, broker, subscriber_factory):
    broker.start()
    path = tmp_path / "events.jsonl"
    sequenced_events(path, 10)
    sub = subscriber_factory(broker)
    reports = []
    sender = forwarder(path, broker, reports=reports)
    real_read, failures = sender.tail.read, []

    def read_failing_once():
        if not failures:
            failures.append(True)
            raise OSError(5, "Input/output error")
        return real_read()

    sender.tail.read = read_failing_once
    sender.start()
    wait_until(lambda: len(sub.on("/track")) >= 10, 15, "the events after the error")
    sender.stop()
    assert any("forwarder error, retrying in 1 s: OSError: [Errno 5] Input/output error" in line for line in reports)
    assert keys(sub.on("/track")) == keys(log_lines(path))
