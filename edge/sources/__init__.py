"""Where frames come from: the Raspberry Pi camera, a USB webcam, a video file, photos."""
