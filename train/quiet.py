"""Import TensorFlow without its start-up notices: the oneDNN line and absl's pre-initialisation banner come
from native code before TF_CPP_MIN_LOG_LEVEL (set in train/__main__.py) applies. Every other line written
during the import, warnings and errors included, still reaches stderr."""

from __future__ import annotations

import sys

from edge.quiet import notices_filtered

TENSORFLOW_NOTICES = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "port.cc:153] oneDNN custom operations are on.",
)


def import_tensorflow():
    """`import tensorflow` (and Keras on it) without the start-up notices; returns the module."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with notices_filtered(TENSORFLOW_NOTICES):
        import keras  # noqa: F401  (Keras 3 loads its TensorFlow backend here)
        import tensorflow
    return tensorflow
