import os

# TensorFlow's and TFLite's start-up INFO lines (CPU features, "Created TensorFlow Lite XNNPACK delegate")
# come before any of ours; 1 hides INFO only, so warnings and errors still show. TF_CPP_MIN_LOG_LEVEL=0 shows all.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from edge.cli import app

app(prog_name="python -m edge")
