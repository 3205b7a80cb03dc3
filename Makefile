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
MAX_DROP ?= 0.3
MIN_ACCURACY ?= 60
OUT ?= out
# GPU=1: TensorFlow's CUDA build (the train-gpu extra) instead of tensorflow-cpu, in the same venv.
GPU ?=
ALL := $(VENV)/.all$(if $(filter 1,$(GPU)),-gpu)
# make train: ARCH (mini_xception | vgg13 | resnet18), RUN (the run folder, default runs/<labels>), LIMIT (faces per
# split, smoke runs) and any other `python -m train fit` flags in TRAIN_FLAGS, e.g. "--mixed-precision --distribute mirrored".
ARCH ?=
LIMIT ?=
TRAIN_FLAGS ?=
# make convert: BUNDLE=0 leaves edge/assets alone (the int8 model stays in RUN); CONVERT_FLAGS, e.g. "--limit 200".
BUNDLE ?= 1
CONVERT_FLAGS ?=

.PHONY: help demo test lint venv train convert bench bench-peer summary clean
help:
	@echo "make demo            run the runtime on the bundled clip with the shipped model (no camera)"
	@echo "make test            lint and run the test suite"
	@echo "make train [LABELS=ferplus] [DATA=...]   train mini-Xception into runs/<labels>/ (never the shipped model)"
	@echo "make train GPU=1 [ARCH=vgg13] [TRAIN_FLAGS=--mixed-precision]   on a GPU; docs/training-at-scale.md"
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

# Training, conversion and development tools on top: tensorflow-cpu, or with GPU=1 the CUDA build. The two
# provide the same `tensorflow` package, so switching uninstalls the other first.
$(VENV)/.all: $(VENV)/.edge
	$(if $(wildcard $(VENV)/.all-gpu),$(PY) -m pip uninstall -q -y tensorflow && rm -f $(VENV)/.all-gpu)
	$(PY) -m pip install -q -e ".[train,dev]"
	touch $@

$(VENV)/.all-gpu: $(VENV)/.edge
	$(if $(wildcard $(VENV)/.all),$(PY) -m pip uninstall -q -y tensorflow-cpu && rm -f $(VENV)/.all)
	$(PY) -m pip install -q -e ".[train-gpu,dev]"
	touch $@

venv: $(ALL)

demo: $(VENV)/.edge
	$(PY) -m edge run --source sample --save-video $(OUT)/demo.mp4 --emoji --summary

test: $(ALL)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

summary: $(ALL)
	$(PY) -m train summary --data $(DATA)

train: $(ALL)
	$(PY) -m train fit --data $(DATA) --labels $(LABELS) --epochs $(EPOCHS) $(if $(ARCH),--arch $(ARCH)) \
		$(if $(RUN),--out-dir $(RUN)) $(if $(LIMIT),--limit $(LIMIT)) $(TRAIN_FLAGS)

# Gate, against the label set the run was trained on: int8 may lose at most MAX_DROP PrivateTest points and
# must reach MIN_ACCURACY % (a floor that catches a broken model). On a pass the int8 model, its sidecar, card
# and report are installed as the bundled model NAME (edge/assets/NAME/, `edge run --model NAME`).
# The image-folder release beside the data, when there: its JPEG-decoded faces are what `edge eval --crops` sees.
IMAGES ?= $(wildcard $(dir $(DATA))fer2013.zip)
convert: $(ALL)
	@test -n "$(RUN)" || { echo "make convert: give the run to ship, e.g. RUN=runs/ferplus NAME=ferplus"; exit 2; }
	$(PY) -m convert --data $(DATA) --keras-model $(RUN)/mini_xception.keras --out-dir $(RUN) --name $(NAME) \
		--max-drop $(MAX_DROP) --min-accuracy $(MIN_ACCURACY) $(if $(filter 1,$(BUNDLE)),--bundle) \
		$(if $(IMAGES),--images-data $(IMAGES)) $(CONVERT_FLAGS)

# Figures land in bench/ as JSON and CSV named after the board; docs/benchmarks.md records this machine's.
bench: $(ALL)
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
bench-peer: $(ALL) $(PEER)/.fer
	$(PY) -m edge bench pipeline --peer $(PEER)/bin/python

clean:
	rm -rf $(OUT) build dist *.egg-info

-include deploy/deploy.mk
