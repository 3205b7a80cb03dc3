import subprocess
import sys
import types

import numpy as np
import pytest
from conftest import ROOT
from picamera2_standin import FakePicamera2

from edge.sources.cameras import Picamera2Source
from edge.sources.frame import SourceError


@pytest.fixture
def fake_picamera2(monkeypatch):
    FakePicamera2.instances = []
    module = types.ModuleType("picamera2")
    module.Picamera2 = FakePicamera2
    monkeypatch.setitem(sys.modules, "picamera2", module)
    return FakePicamera2


def test_picamera2_gray_is_the_lores_y_plane(fake_picamera2):
    source = Picamera2Source(640, 480, 320, 240, fps=15, camera_num=1)
    with source:
        camera = fake_picamera2.instances[0]
        assert camera.camera_num == 1 and camera.started
        assert camera.config == {
            "main": {"size": (640, 480), "format": "RGB888"},
            "lores": {"size": (320, 240), "format": "YUV420"},
            "controls": {"FrameRate": 15.0},
        }
        frame = source.read()
        assert source.read().index == 1
    assert camera.closed and not camera.started
    assert frame.gray.shape == (240, 320) and frame.gray.dtype == np.uint8
    np.testing.assert_array_equal(frame.gray[17], np.arange(320, dtype=np.uint8))
    assert frame.color is None
    assert source.scale_to_main == 2.0 and source.live


def test_picamera2_colour_from_the_same_request(fake_picamera2):
    with Picamera2Source(640, 480, 320, 240, want_color=True) as source:
        frame = source.read()
    assert frame.gray.shape == (240, 320)
    assert frame.color.shape == (480, 640, 3)


def test_picamera2_colour_only_while_asked(fake_picamera2):
    """The live view's way: the main stream is fetched only for frames a viewer will see."""
    watching = [False]
    with Picamera2Source(640, 480, 320, 240) as source:
        source.color_wanted = lambda: watching[0]
        assert source.read().color is None
        watching[0] = True
        assert source.read().color.shape == (480, 640, 3)
        watching[0] = False
        assert source.read().color is None


def test_picamera2_missing_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes `import picamera2` raise ImportError
    with pytest.raises(SourceError, match="sudo apt install python3-picamera2") as error:
        Picamera2Source().open()
    assert "--system-site-packages" in str(error.value)


def test_picamera2_no_camera_is_a_source_error(monkeypatch):
    def no_camera(camera_num=0):
        raise IndexError("list index out of range")

    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=no_camera))
    with pytest.raises(SourceError, match="picamera2 camera 0"):
        Picamera2Source().open()


def test_picamera2_validates_sizes():
    with pytest.raises(ValueError, match="--lores-width"):
        Picamera2Source(320, 240, 640, 480)
    with pytest.raises(ValueError, match="aspect ratio"):
        Picamera2Source(640, 480, 320, 320)
    with pytest.raises(ValueError, match="--fps"):
        Picamera2Source(fps=0)


def test_a_usb_camera_that_does_not_open_says_so_in_one_line_without_opencv_warnings(tmp_path):
    # /dev/video63 exists on no test machine; OpenCV would print its own [ WARN ] lines first.
    result = subprocess.run(
        [sys.executable, "-m", "edge", "run", "--source", "usb:63", "--max-frames", "1", "--log", str(tmp_path / "e.jsonl")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "[ WARN" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: cannot open USB camera 63 (/dev/video63): is it plugged in, and is the user in the `video` group? "
        "(`v4l2-ctl --list-devices` lists cameras)"
    ]
