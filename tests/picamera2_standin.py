"""A stand-in for picamera2 (which exists only on a Pi), following its documented API: shared by the
source tests and the live-view test."""

import numpy as np


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
