
import pytest

from edge import host
from edge.host import decode_throttled, parse_throttled, resident_parts_mb


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


def test_resident_parts_split_what_the_run_allocated_from_mapped_files(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmHWM:\t  110000 kB\nVmRSS:\t  102400 kB\nRssAnon:\t   40960 kB\nRssFile:\t   61440 kB\nRssShmem:\t       0 kB\n")
    assert resident_parts_mb(status) == {"rss_anon_mb": 40.0, "rss_file_mb": 60.0}
    assert resident_parts_mb(tmp_path / "absent") == {}
    here = resident_parts_mb()  # this process, on Linux
    assert here["rss_anon_mb"] > 1 and here["rss_file_mb"] > 1
