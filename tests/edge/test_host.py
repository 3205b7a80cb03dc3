
import os
from pathlib import Path

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


def test_dropping_a_venvs_libraries_from_the_page_cache_asks_for_each_shared_library_only(tmp_path, monkeypatch):
    from edge.host import drop_cached_libraries

    site = tmp_path / "lib" / "site-packages" / "cv2"
    site.mkdir(parents=True)
    for name, size in (("cv2.abi3.so", 3000), ("libavcodec.so.62.28", 2000), ("__init__.py", 100), ("data.json", 50)):
        (site / name).write_bytes(b"x" * size)
    (site / "libavcodec.so").symlink_to(site / "libavcodec.so.62.28")  # the same file: asked once
    asked = []
    real = os.posix_fadvise
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, offset, length, advice: asked.append((os.readlink(f"/proc/self/fd/{fd}"), offset, length, advice)) or real(fd, offset, length, advice))
    assert drop_cached_libraries(tmp_path) == (2, 5000)
    assert sorted(Path(path).name for path, *_ in asked) == ["cv2.abi3.so", "libavcodec.so.62.28"]
    assert {(offset, length, advice) for _, offset, length, advice in asked} == {(0, 0, os.POSIX_FADV_DONTNEED)}  # whole files
    assert all((site / name).exists() for name in ("cv2.abi3.so", "__init__.py"))  # nothing deleted


def test_dropping_a_folder_that_is_not_there_names_it(tmp_path):
    from edge.host import drop_cached_libraries

    with pytest.raises(ValueError, match="nope: no such folder"):
        drop_cached_libraries(tmp_path / "nope")
