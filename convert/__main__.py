import os

# TensorFlow's and TFLite's start-up INFO lines (CPU features, "Created TensorFlow Lite XNNPACK delegate")
# come before any of ours; 1 hides INFO only, so warnings and errors still show. TF_CPP_MIN_LOG_LEVEL=0 shows all.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from train.extra import training_extra  # noqa: E402

with training_extra("python -m convert"):  # a runtime-only venv: one line naming the extra, exit 2
    from train.quiet import import_tensorflow

    import_tensorflow()  # convert.cli imports it (convert.quantize): first here, without its start-up notices
    from convert.cli import app

    app(prog_name="python -m convert")
