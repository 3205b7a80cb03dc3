"""The training extra (TensorFlow, Keras, matplotlib) is not in a runtime-only venv (`make demo`'s): the
train and convert entry points say in one line what to install, and exit 2, instead of a traceback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

# What `pip install -e '.[train]'` brings that the runtime does not have.
TRAINING_MODULES = frozenset({"tensorflow", "keras", "tf_keras", "matplotlib", "h5py", "ml_dtypes", "tensorboard"})


@contextmanager
def training_extra(command: str) -> Iterator[None]:
    """Inside the block, a missing training module ends the program with one line naming the extra."""
    try:
        yield
    except ModuleNotFoundError as error:
        missing = (error.name or "").split(".")[0]
        if missing not in TRAINING_MODULES:
            raise
        print(f"error: {command} needs the training extra ({missing} is not installed here): "
              "pip install -e '.[train]', or `make venv`", file=sys.stderr)
        raise SystemExit(2) from None
