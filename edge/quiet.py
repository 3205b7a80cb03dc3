"""Start-up notices that native code writes straight to stderr (file descriptor 2), where no log level
reaches them: filtered line by line, everything else (warnings, errors) passed on unchanged."""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager

# LiteRT/TFLite says this once a process, at the first interpreter; TF_CPP_MIN_LOG_LEVEL does not reach it.
TFLITE_NOTICES = ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",)
# OpenCV's own lines when a USB camera index does not open; our error that follows says it better.
OPENCV_CAMERA_NOTICES = (
    "can't be used to capture by index",
    "can't open camera by index",
    "Camera index out of range",
)


@contextmanager
def notices_filtered(notices: tuple[str, ...] = TFLITE_NOTICES):
    """Collect what native code and Python write to file descriptor 2 inside the block, then write it back
    to stderr without the lines that hold one of `notices` (exact phrases, nothing broader)."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all (a daemon that closed it): nothing to keep quiet
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not any(notice in line for notice in notices)))
            sys.stderr.flush()
