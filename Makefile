# fer-edge: train mini-Xception on FER2013, convert to full-int8 TFLite, run it on a Raspberry Pi.
# Every target installs what it needs into its own virtual environment first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data/fer2013.zip
EPOCHS ?= 80
OUT ?= out

.PHONY: help demo test lint train convert bench bench-peer summary clean
help:
	@echo "make demo            run the runtime on the bundled clip with the shipped model (no camera)"
	@echo "make test            lint and run the test suite"
	@echo "make train DATA=...  train mini-Xception (fer2013.csv, the image-folder .zip or folder)"
	@echo "make convert         full-int8 TFLite + accuracy report and gate"
	@echo "make bench           model and pipeline benchmarks on this machine"
	@echo "make bench-peer      Haar and BlazeFace next to the fer package (its own venv, with TensorFlow)"
	@echo "make deploy PI=user@host [DRY_RUN=1]   install on a Raspberry Pi over SSH"

# The runtime alone: numpy, OpenCV 4, typer and a TFLite interpreter (no TensorFlow).
$(VENV)/.edge: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[litert]"
	touch $@

# Training, conversion and development tools on top.
$(VENV)/.all: $(VENV)/.edge
	$(PY) -m pip install -q -e ".[train,dev]"
	touch $@

demo: $(VENV)/.edge
	$(PY) -m edge run --source sample --save-video $(OUT)/demo.mp4 --emoji --summary

test: $(VENV)/.all
	$(PY) -m ruff check .
	$(PY) -m pytest -q

summary: $(VENV)/.all
	$(PY) -m train summary --data $(DATA)

train: $(VENV)/.all
	$(PY) -m train fit --data $(DATA) --epochs $(EPOCHS)

# Gate: int8 may lose at most 0.5 PrivateTest points and must reach 60% (a floor that catches a broken
# model); on a pass the model, its sidecar and card are bundled into edge/assets.
convert: $(VENV)/.all
	$(PY) -m convert --data $(DATA) --max-drop 0.5 --min-accuracy 60 --bundle-dir edge/assets

# Figures land in bench/ as JSON and CSV named after the board; docs/benchmarks.md records this machine's.
bench: $(VENV)/.all
	$(PY) -m edge bench startup
	$(PY) -m edge bench model --threads 1,2 --compare models/mini_xception_float32.tflite
	$(PY) -m edge bench pipeline
	$(PY) scripts/bench_keras_baseline.py

# The `fer` package (the peer) in a venv of its own: it needs TensorFlow, which the runtime never does.
PEER ?= build/peer-venv
$(PEER)/.fer:
	$(PYTHON) -m venv $(PEER)
	$(PEER)/bin/pip install -q --no-deps fer==25.10.3
	$(PEER)/bin/pip install -q "tensorflow-cpu==2.21.*" "opencv-python-headless>=4.6,<5" pillow requests "setuptools<81"
	touch $@

# Haar and BlazeFace on both clips next to the fer package, one core each, ratios in one table.
bench-peer: $(VENV)/.all $(PEER)/.fer
	$(PY) -m edge bench pipeline --peer $(PEER)/bin/python

clean:
	rm -rf $(OUT) build dist *.egg-info

-include deploy/deploy.mk
