import pytest

from edge.sources.cameras import Picamera2Source, UsbCameraSource
from edge.sources.frame import SourceError
from edge.sources.spec import open_source


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
