import sys
import types

import cv2
import numpy as np
import pytest

from edge.sources import (
    Frame,
    Picamera2Source,
    ReopeningSource,
    SourceError,
    UsbCameraSource,
    VideoSource,
    open_source,
)


def _write_image(path, value=128, size=(40, 30)):
    image = np.full((size[1], size[0], 3), value, np.uint8)
    assert cv2.imwrite(str(path), image)
    return image


def test_video_source_reads_to_the_end(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    assert writer.isOpened()
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()

    with open_source(str(path)) as source:
        assert isinstance(source, VideoSource)
        assert source.fps == pytest.approx(10.0)
        frames = []
        while (frame := source.read()) is not None:
            frames.append(frame)
        assert source.read() is None
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert [f.timestamp for f in frames] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert frames[0].gray.shape == (48, 64)


def test_video_source_cannot_open(tmp_path):
    path = tmp_path / "broken.avi"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="broken.avi"):
        VideoSource(path).open()


@pytest.mark.parametrize("spec", ["/no/such/file.mp4", "usb:x", "webcam"])
def test_bad_spec_names_the_flag(spec):
    with pytest.raises(ValueError, match="--source"):
        open_source(spec)


def test_spec_forms(tmp_path):
    usb = open_source("usb:2", frame_width=320, frame_height=240, fps=15)
    assert isinstance(usb, UsbCameraSource) and usb.index == 2 and usb.live
    camera = open_source("picamera2", want_color=True)
    assert isinstance(camera, Picamera2Source) and camera.want_color and camera.scale_to_main == 2.0


def test_missing_usb_camera():
    with pytest.raises(SourceError, match=r"USB camera 99 \(/dev/video99\)"):
        UsbCameraSource(99).open()


# --- ReopeningSource ---------------------------------------------------------------------------


class FakeLiveSource:
    """Reads follow a script: an int is a frame (inner index), "fail" raises, "none" returns None."""

    live = True
    fps = 30.0
    description = "fake camera"
    scale_to_main = 1.0

    def __init__(self, script, fail_opens=0):
        self.script = list(script)
        self.fail_opens = fail_opens
        self.opens = self.closes = 0

    def open(self):
        if self.opens and self.fail_opens:  # the first open always works
            self.fail_opens -= 1
            self.opens += 1
            raise SourceError("fake camera not there yet")
        self.opens += 1

    def read(self):
        step = self.script.pop(0) if self.script else "none"
        if step == "fail":
            raise SourceError("fake camera unplugged")
        if step == "none":
            return None
        return Frame(step, 0.0, np.zeros((4, 4), np.uint8), None)

    def close(self):
        self.closes += 1


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_reopening_source_recovers_with_backoff():
    # Two frames, then the camera fails twice (read fails, then the first reopen's read fails too),
    # then the second reopen works; the inner source numbers frames from 0 again after each reopen.
    inner = FakeLiveSource([0, 1, "fail", "fail", 0, 1])
    clock = FakeClock()
    gaps = []
    source = ReopeningSource(inner, sleep=clock.sleep, clock=clock, on_gap=lambda *a: gaps.append(a))
    with source:
        frames = [source.read() for _ in range(4)]
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert clock.sleeps == [0.5, 1.0]
    assert gaps == [(1.5, 2, "fake camera unplugged")]
    assert inner.opens == 3


def test_reopening_source_backoff_is_capped_and_counts_failed_opens():
    inner = FakeLiveSource([0, "none", 0], fail_opens=5)
    clock = FakeClock()
    gaps = []
    source = ReopeningSource(inner, max_backoff=4.0, sleep=clock.sleep, clock=clock, on_gap=lambda *a: gaps.append(a))
    with source:
        assert source.read().index == 0
        assert source.read().index == 1
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert gaps[0][1] == 6 and gaps[0][2] == "fake camera not there yet"


def test_reopening_source_stops():
    inner = FakeLiveSource([0, "fail"], fail_opens=1000)
    source = ReopeningSource(inner)
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 3:
            source.stop()

    source._sleep = sleep
    with source:
        assert source.read().index == 0
        assert source.read() is None  # stopped while retrying: the stream ends
    assert len(sleeps) == 3


def test_reopening_source_passes_files_through(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    source = ReopeningSource(VideoSource(path), sleep=lambda s: pytest.fail("no sleeping"))
    with source:
        assert source.read().index == 0
        assert source.read() is None
    assert not source.live


# --- Picamera2Source with a stand-in picamera2 module ------------------------------------------


class FakePicamera2:
    """Follows picamera2's documented API; YUV420 comes back as (h * 3 // 2, stride)."""

    instances = []
    stride_padding = 64

    def __init__(self, camera_num=0):
        self.camera_num = camera_num
        self.config = None
        self.started = self.closed = False
        self.counter = 0
        FakePicamera2.instances.append(self)

    def create_preview_configuration(self, main=None, lores=None, controls=None, **kwargs):
        return {"main": dict(main), "lores": dict(lores), "controls": dict(controls or {})}

    def configure(self, config):
        self.config = config

    def start(self):
        self.started = True

    def _array(self, name):
        self.counter += 1
        width, height = self.config[name]["size"]
        if name == "lores":
            yuv = np.full((height * 3 // 2, width + self.stride_padding), 200, np.uint8)  # chroma + padding
            yuv[:height, :width] = np.arange(width, dtype=np.uint8)[np.newaxis, :]  # the Y plane
            return yuv
        return np.full((height, width, 3), 7, np.uint8)

    def capture_array(self, name="main"):
        return self._array(name)

    def capture_arrays(self, names=("main",)):
        return [self._array(n) for n in names], {"SensorTimestamp": 0}

    def stop(self):
        self.started = False

    def close(self):
        self.closed = True


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
