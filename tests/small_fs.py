"""A small tmpfs that fills up (root only), for the disk-full tests."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


@pytest.fixture
def tiny_fs(tmp_path):
    """A 16 KiB tmpfs mounted on tmp_path/tiny, unmounted afterwards. Mounting needs root (CI runs as root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root; these disk-full tests run as root in CI")
    if shutil.which("mount") is None:
        pytest.skip("mount is not installed")
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k,mode=0755", "tmpfs", str(mount_point)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (a container without CAP_SYS_ADMIN?): {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def fill(folder, leave: int = 0) -> None:
    """Fill the file system holding folder, leaving about `leave` bytes free."""
    stat = os.statvfs(folder)
    free = stat.f_bavail * stat.f_frsize
    with open(folder / "filler", "wb") as filler:
        filler.write(b"\0" * max(0, free - leave))
