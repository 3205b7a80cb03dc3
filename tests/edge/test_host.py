from pathlib import Path

import pytest

from edge import host
from edge.host import decode_throttled, parse_throttled


def test_throttled_decoding():
    assert parse_throttled("throttled=0x50005\n") == 0x50005
    decoded = decode_throttled(0x50005)
    assert decoded["raw"] == "0x50005"
    assert decoded["under_voltage"] and decoded["throttled"]
    assert not decoded["arm_frequency_capped"] and not decoded["soft_temperature_limit"]
    assert decoded["under_voltage_occurred"] and decoded["throttled_occurred"]
    assert not decoded["arm_frequency_capped_occurred"] and not decoded["soft_temperature_limit_occurred"]
    assert not any(v for k, v in decode_throttled(0).items() if k != "raw")
    assert all(v for k, v in decode_throttled(0xF000F).items() if k != "raw")
    with pytest.raises(ValueError, match="garbage"):
        parse_throttled("garbage")


def test_read_throttled_caches_a_missing_vcgencmd(monkeypatch):
    calls = []

    def missing(*args, **kwargs):
        calls.append(args)
        raise FileNotFoundError("vcgencmd")

    monkeypatch.setattr(host, "_vcgencmd_available", True)
    monkeypatch.setattr(host.subprocess, "run", missing)
    assert host.read_throttled() is None
    assert host.read_throttled() is None
    assert len(calls) == 1


def test_cpu_temp(tmp_path):
    zone = tmp_path / "temp"
    zone.write_text("48312\n")
    assert host.cpu_temp_c(zone) == 48.3
    assert host.cpu_temp_c(tmp_path / "absent") is None


def test_anonymous_rss_is_read_from_proc_status_and_none_without_it(tmp_path):
    from edge.host import anonymous_rss_mb

    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmHWM:\t  106000 kB\nRssAnon:\t   47616 kB\nRssFile:\t   50000 kB\n")
    assert anonymous_rss_mb(status) == 46.5
    assert anonymous_rss_mb(tmp_path / "missing") is None
    if Path("/proc/self/status").exists():
        assert 0 < anonymous_rss_mb() < 10_000


def test_the_summary_gives_the_run_s_own_memory_beside_the_peak():
    from edge.cli import memory_line

    assert memory_line({"peak_rss_mb": 103.7, "anonymous_rss_mb": 46.5}) == (
        "peak memory 103.7 MB (46.5 MB of it the run's own, the rest shared libraries)")
    assert memory_line({"peak_rss_mb": 103.7}) == "peak memory 103.7 MB"  # a record from before
