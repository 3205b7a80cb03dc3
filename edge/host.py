"""What the runtime reads about the machine it runs on: board, SoC temperature, throttling, memory."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
from pathlib import Path

THERMAL_PATH = Path("/sys/class/thermal/thermal_zone0/temp")
# `vcgencmd get_throttled` bits, from the Raspberry Pi documentation.
THROTTLED_BITS = {
    0: "under_voltage",
    1: "arm_frequency_capped",
    2: "throttled",
    3: "soft_temperature_limit",
    16: "under_voltage_occurred",
    17: "arm_frequency_capped_occurred",
    18: "throttled_occurred",
    19: "soft_temperature_limit_occurred",
}


def cpu_temp_c(path: Path = THERMAL_PATH) -> float | None:
    """SoC temperature in degrees C, None where the thermal zone is not there."""
    try:
        return round(int(path.read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


def decode_throttled(value: int) -> dict:
    """`vcgencmd get_throttled` value -> {"raw": "0x50000", "under_voltage": False, ...}."""
    decoded: dict = {"raw": hex(value)}
    decoded.update({name: bool(value >> bit & 1) for bit, name in THROTTLED_BITS.items()})
    return decoded


def parse_throttled(text: str) -> int:
    """'throttled=0x50005' -> 0x50005; ValueError names the text otherwise."""
    _, sep, number = text.strip().partition("=")
    try:
        if not sep:
            raise ValueError
        return int(number, 16)
    except ValueError:
        raise ValueError(f"unexpected `vcgencmd get_throttled` output {text!r}") from None


_vcgencmd_available = True  # flipped once vcgencmd is missing or fails: not worth a fork every interval


def read_throttled() -> dict | None:
    """Decoded throttling state on a Raspberry Pi, None where vcgencmd is not available."""
    global _vcgencmd_available
    if not _vcgencmd_available:
        return None
    try:
        result = subprocess.run(["vcgencmd", "get_throttled"], capture_output=True, text=True, timeout=2, check=True)
        return decode_throttled(parse_throttled(result.stdout))
    except (OSError, subprocess.SubprocessError, ValueError):
        _vcgencmd_available = False
        return None


def pi_health() -> dict:
    return {"cpu_temp_c": cpu_temp_c(), "throttled": read_throttled()}


def drop_cached_libraries(folder: Path) -> tuple[int, int]:
    """Ask the kernel to drop the page cache of the shared libraries under `folder` (a venv just installed), as a
    reboot would; returns (files, bytes). Pages pip has just written stay cached, and a process mapping a library
    gets the cached pages around each page it touches too (the kernel's fault-around):
    `make demo` right after an install peaked at 159 MB resident against 111 MB once these were dropped (OpenCV's
    library alone 41 against 14 MB), the same allocations either way. Each file is written back first (dirty
    pages are not dropped); pages a running process maps stay; nothing is deleted, what is needed is read again."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such folder (the virtual environment to drop from the page cache)")
    files = size = 0
    if not hasattr(os, "posix_fadvise"):  # macOS: no such call, and no large folios to drop
        return files, size
    for path in folder.rglob("*.so*"):
        if not path.is_file() or path.is_symlink():
            continue
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(descriptor)  # pages not yet written back are not dropped
            os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(descriptor)
        files, size = files + 1, size + path.stat().st_size
    return files, size


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux reports KiB


def resident_parts_mb(status: Path = Path("/proc/self/status")) -> dict[str, float]:
    """This process's resident memory now, split as Linux counts it: `rss_anon_mb` (what it allocated: the heap,
    the interpreter's and the models' buffers) and `rss_file_mb` (pages of mapped files, such as OpenCV's and
    LiteRT's libraries, which the page cache may or may not hold and which depend on the install). Empty where
    /proc is absent. Anonymous memory is seldom given back, so at the end of a run it is about its peak."""
    try:
        text = status.read_text()
    except OSError:
        return {}
    fields = {"RssAnon": "rss_anon_mb", "RssFile": "rss_file_mb"}
    parts = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in fields and value.strip().endswith("kB"):
            parts[fields[key]] = round(int(value.split()[0]) / 1024, 1)
    return parts


def board_name() -> str:
    """/proc/device-tree/model on a Pi, else the CPU model name."""
    model_file = Path("/proc/device-tree/model")
    if model_file.exists():
        return model_file.read_text(errors="ignore").strip("\x00 \n")
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="ignore").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()
