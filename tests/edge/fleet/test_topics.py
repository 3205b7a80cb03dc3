"""Event ids, topics, a device's state and Home Assistant discovery: plain values, no broker."""

import json

import pytest

from edge.addresses import check_topic_prefix, check_topic_word
from edge.events.log import EventLog
from edge.events.records import record_key
from edge.fleet.topics import (
    DeviceState,
    SequencedLog,
    Topics,
    default_device_id,
    discovery_configs,
    new_run_id,
    parse_topic,
)


def test_sequenced_log_stamps_device_run_and_a_gapless_sequence(tmp_path):
    path = tmp_path / "e.jsonl"
    log = SequencedLog(EventLog(path), "pi-1", "run-a")
    record = {"event": "start"}
    log.write(record)
    for track in range(3):
        log.write({"event": "new", "track": track})
    log.close()
    assert record == {"event": "start", "device": "pi-1", "run": "run-a", "seq": 1}  # the caller sees the id too
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [record_key(r) for r in lines] == [("pi-1", "run-a", n) for n in (1, 2, 3, 4)]


def test_run_ids_differ_between_starts_and_device_ids_are_topic_safe():
    assert new_run_id() != new_run_id()
    assert check_topic_word(default_device_id(), "device_id")


@pytest.mark.parametrize("bad", ["", "a/b", "a+b", "a#", "x" * 65, "pi kitchen"])
def test_topic_words_reject_wildcards_separators_and_spaces(bad):
    with pytest.raises(ValueError, match="device_id"):
        check_topic_word(bad, "device_id")


def test_topic_prefix_may_have_levels_but_no_empty_ones():
    assert check_topic_prefix("home/fer-edge", "mqtt_prefix") == "home/fer-edge"
    for bad in ("home//x", "/x", "x/", "home/#"):
        with pytest.raises(ValueError, match="mqtt_prefix"):
            check_topic_prefix(bad, "mqtt_prefix")


def test_record_key_needs_all_three_parts():
    assert record_key({"device": "d", "run": "r", "seq": 3}) == ("d", "r", 3)
    assert record_key({"device": "d", "run": "r"}) is None
    assert record_key({"device": "d", "run": "r", "seq": True}) is None


def test_topics_per_record_kind():
    topics = Topics("fer-edge", "pi1")
    assert [topics.for_record({"event": e}) for e in ("new", "update", "end", "stats", "image", "start", "stop", "source_gap")] == [
        "fer-edge/pi1/track", "fer-edge/pi1/track", "fer-edge/pi1/track", "fer-edge/pi1/stats", "fer-edge/pi1/image",
        "fer-edge/pi1/run", "fer-edge/pi1/run", "fer-edge/pi1/run",
    ]
    assert topics.availability == "fer-edge/pi1/availability"
    assert parse_topic("fer-edge/pi1/track", "fer-edge") == ("pi1", "track")
    assert parse_topic("other/pi1/track", "fer-edge") is None
    assert parse_topic("fer-edge/pi1/a/b", "fer-edge") is None


def test_device_state_follows_tracks_stats_and_runs():
    state = DeviceState()
    assert state.summary() == {"faces": 0, "dominant": "none", "fps": None}
    state.apply({"event": "new", "track": 1, "label": "happy", "score": 0.6})
    state.apply({"event": "new", "track": 2, "label": "sad", "score": 0.9})
    assert state.dominant() == "sad"  # one each: the higher score wins the tie
    state.apply({"event": "new", "track": 3, "label": "happy", "score": 0.5})
    state.apply({"event": "stats", "processing_fps": 14.5})
    assert state.summary() == {"faces": 3, "dominant": "happy", "fps": 14.5}
    state.apply({"event": "update", "track": 3, "label": "sad", "score": 0.7})
    state.apply({"event": "end", "track": 1})
    assert state.summary() == {"faces": 2, "dominant": "sad", "fps": 14.5}
    assert state.apply({"event": "source_gap"}) is False
    state.apply({"event": "image", "faces": [{"label": "fear", "score": 0.5}, {"label": "fear", "score": 0.4}]})
    assert state.summary() == {"faces": 2, "dominant": "fear", "fps": 14.5}  # a still's faces replace the tracks
    state.apply({"event": "stop"})
    assert state.summary() == {"faces": 0, "dominant": "none", "fps": 0.0}


def test_discovery_configs_are_valid_json_with_unique_ids_and_one_device():
    configs = discovery_configs(Topics("fer-edge", "pi1"), "homeassistant", "0.1.0")
    texts = {topic: json.dumps(config) for topic, config in configs.items()}
    parsed = {topic: json.loads(text) for topic, text in texts.items()}
    assert all(topic.startswith("homeassistant/") and topic.endswith("/config") for topic in parsed)
    components = sorted(topic.split("/")[1] for topic in parsed)
    assert components == ["event", "sensor", "sensor", "sensor", "sensor"]
    ids = [config["unique_id"] for config in parsed.values()]
    assert len(ids) == len(set(ids)) == 5
    devices = {json.dumps(config["device"], sort_keys=True) for config in parsed.values()}
    assert len(devices) == 1 and parsed[next(iter(parsed))]["device"]["identifiers"] == ["fer-edge-pi1"]
    for config in parsed.values():
        assert config["availability_topic"] == "fer-edge/pi1/availability"
        assert config["state_topic"].startswith("fer-edge/pi1/")
    event = next(c for t, c in parsed.items() if t.startswith("homeassistant/event/"))
    assert event["event_types"] == ["new", "update", "end"] and event["state_topic"] == "fer-edge/pi1/track"
    names = {c["name"] for c in parsed.values()}
    assert {"Dominant expression", "Faces in view", "FPS"} <= names
    # a second device gets ids of its own
    other = discovery_configs(Topics("fer-edge", "pi2"), "homeassistant")
    assert not set(ids) & {config["unique_id"] for config in other.values()}
