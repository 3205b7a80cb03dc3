# fer-edge: train mini-Xception on FER2013, convert to full-int8 TFLite, run it on a Raspberry Pi.
# Every target installs what it needs into its own virtual environment first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CSV form: FER+ votes (fer2013new.csv beside it) are row-aligned with it; the image-folder .zip works too, without FER+.
DATA ?= ../shared/data/fer2013.tar.gz
EPOCHS ?= 80
# fer2013: train on the CSV's labels; ferplus: on FER+ vote distributions
LABELS ?= fer2013
# make convert takes the run to ship explicitly (RUN=runs/ferplus) and bundles it as NAME (fer2013 | ferplus).
RUN ?=
NAME ?= $(notdir $(patsubst %/,%,$(RUN)))
OUT ?= out

.PHONY: help demo test lint train convert bench bench-peer summary clean
help:
	@echo "make demo            run the runtime on the bundled clip with the shipped model (no camera)"
	@echo "make demo WEB=1      the same with the live view in the browser: http://127.0.0.1:8080/"
	@echo "make test            lint and run the test suite"
	@echo "make train [LABELS=ferplus] [DATA=...]   train mini-Xception into runs/<labels>/ (never the shipped model)"
	@echo "make convert RUN=runs/ferplus [NAME=ferplus]   full-int8 TFLite, both label sets' report, gate; bundle as NAME"
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

# WEB=1: the live view instead of a video file. The clip plays at its own 30 FPS (--realtime), over and over
# (--loop), until Ctrl-C; open http://127.0.0.1:8080/ (WEB_ADDRESS= to change it; docs/live-view.md).
WEB ?=
WEB_ADDRESS ?= 127.0.0.1:8080
demo: $(VENV)/.edge
ifeq ($(WEB),1)
	$(PY) -m edge run --source sample --web $(WEB_ADDRESS) --realtime --loop --emoji --log $(OUT)/demo-events.jsonl --summary
else
	$(PY) -m edge run --source sample --save-video $(OUT)/demo.mp4 --emoji --summary
endif

test: $(VENV)/.all
	$(PY) -m ruff check .
	$(PY) -m pytest -q

summary: $(VENV)/.all
	$(PY) -m train summary --data $(DATA)

train: $(VENV)/.all
	$(PY) -m train fit --data $(DATA) --labels $(LABELS) --epochs $(EPOCHS)

# Gate, against the label set the run was trained on, with convert's own defaults, defined once in convert/run.py
# (`python -m convert --help` shows them): int8 may lose at most so many PrivateTest points against float and
# must reach an accuracy floor that catches a broken model. On a pass the int8 model, its sidecar, card and
# report are installed as the bundled model NAME (edge/assets/NAME/, `edge run --model NAME`).
# The image-folder release beside the data, when there: its JPEG-decoded faces are what `edge eval --crops` sees.
IMAGES ?= $(wildcard $(dir $(DATA))fer2013.zip)
convert: $(VENV)/.all
	@test -n "$(RUN)" || { echo "make convert: give the run to ship, e.g. RUN=runs/ferplus NAME=ferplus"; exit 2; }
	$(PY) -m convert --data $(DATA) --keras-model $(RUN)/mini_xception.keras --out-dir $(RUN) --name $(NAME) \
		--bundle $(if $(IMAGES),--images-data $(IMAGES))

# Figures land in bench/ as JSON and CSV named after the board; docs/benchmarks.md records this machine's.
bench: $(VENV)/.all
	$(PY) -m edge bench startup
	$(PY) -m edge bench model --threads 1,2 --compare models/fer2013_float32.tflite
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
