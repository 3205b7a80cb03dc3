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
# make train writes $(RUNS)/$(LABELS)/; make convert converts, reports and gates that run (RUN) in its own
# folder; make ship installs a run as the bundled model NAME (fer2013 | ferplus), explicitly.
RUNS ?= runs
RUN ?= $(RUNS)/$(LABELS)
NAME ?= $(notdir $(patsubst %/,%,$(RUN)))
# Smoke runs: at most LIMIT faces per split (empty: all), and any further flags of python -m train fit / convert.
LIMIT ?=
TRAIN_FLAGS ?=
CONVERT_FLAGS ?=
OUT ?= out
# GPU=1: TensorFlow's CUDA build (the train-gpu extra) instead of tensorflow-cpu, in the same venv.
GPU ?=
ALL := $(VENV)/.all$(if $(filter 1,$(GPU)),-gpu)
# The network make train trains: mini_xception (the student, what convert ships), vgg13 or resnet18 (teachers).
ARCH ?=
# Tests that make check leaves to make test: slow ones, TensorFlow, external services (pyproject.toml's markers).
QUICK ?= not slow and not tf and not service

.PHONY: help demo check test lint venv train convert ship bench bench-peer summary clean
help:
	@echo "make demo            run the runtime on the bundled clip with the shipped model (no camera)"
	@echo "make demo WEB=1      the same with the live view in the browser: http://127.0.0.1:8080/"
	@echo "make check           lint and the quick tests (no TensorFlow, no services), about a minute"
	@echo "make test            lint and the whole test suite, in parallel"
	@echo "make train [LABELS=ferplus] [DATA=...] [EPOCHS=...]   train mini-Xception into runs/<labels>/ (never the shipped model)"
	@echo "make train GPU=1 [ARCH=vgg13] [TRAIN_FLAGS=--mixed-precision]   on a GPU; docs/training-at-scale.md"
	@echo "make convert [RUN=runs/<labels>]   full-int8 TFLite, report and gate in the run folder (bundles nothing)"
	@echo "make ship RUN=runs/ferplus NAME=ferplus   convert and gate that run again and, on a pass, install it as the bundled model NAME"
	@echo "make bench           model and pipeline benchmarks on this machine"
	@echo "make bench-peer      Haar, BlazeFace and YuNet next to the fer package (its own venv, with TensorFlow)"
	@echo "make deploy PI=user@host [DRY_RUN=1]   install on a Raspberry Pi over SSH"

# pip, quietly: setuptools's "Editable installation" notice reaches the terminal as a warning even with -q.
PIP = PYTHONWARNINGS=ignore::UserWarning $(PY) -m pip install -q

# Freshly written libraries leave the page cache (edge.host.drop_cached_libraries: as after a reboot): mapped
# straight after pip wrote them they count ~50 MB more resident memory in the runs that follow (docs/benchmarks.md).
DROP_CACHE = $(PY) -c 'import sys; from edge.host import drop_cached_libraries as drop; drop(sys.argv[1])' $(VENV)

# The runtime alone: numpy, OpenCV 4, typer and a TFLite interpreter (no TensorFlow).
$(VENV)/.edge: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e ".[litert]"
	$(DROP_CACHE)
	touch $@

# Training, conversion and development tools on top: tensorflow-cpu, or with GPU=1 the CUDA build. The two
# provide the same `tensorflow` package, so switching uninstalls the other first.
$(VENV)/.all: $(VENV)/.edge
	$(if $(wildcard $(VENV)/.all-gpu),$(PY) -m pip uninstall -q -y tensorflow && rm -f $(VENV)/.all-gpu)
	$(PIP) -e ".[train,dev]"
	$(DROP_CACHE)
	touch $@

$(VENV)/.all-gpu: $(VENV)/.edge
	$(if $(wildcard $(VENV)/.all),$(PY) -m pip uninstall -q -y tensorflow-cpu && rm -f $(VENV)/.all)
	$(PIP) -e ".[train-gpu,dev]"
	$(DROP_CACHE)
	touch $@

venv: $(ALL)

# The events go to a file, fresh each run (DEMO_LOG=- streams them to stdout); the summary on stderr says where
# they and the video went. OpenCV's pip wheel writes MPEG-4 Part 2: DEMO_VIDEO=out/demo.webm for a browser.
DEMO_LOG ?= $(OUT)/demo.jsonl
DEMO_VIDEO ?= $(OUT)/demo.mp4
# WEB=1: the live view instead of a video file. The clip plays at its own 30 FPS (--realtime), over and over
# (--loop), until Ctrl-C; open http://127.0.0.1:8080/ (WEB_ADDRESS= to change it; docs/live-view.md).
WEB ?=
WEB_ADDRESS ?= 127.0.0.1:8080
demo: $(VENV)/.edge
	$(if $(filter-out -,$(DEMO_LOG)),rm -f $(DEMO_LOG))
ifeq ($(WEB),1)
	$(PY) -m edge run --source sample --web $(WEB_ADDRESS) --realtime --loop --emoji --log $(DEMO_LOG) --summary
else
	$(PY) -m edge run --source sample --save-video $(DEMO_VIDEO) --log $(DEMO_LOG) --emoji --summary
endif

check: $(ALL)
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n auto -m "$(QUICK)"

# Parallel across the cores; tests that share a broker, a port or a file run in one worker (xdist_group).
test: $(ALL)
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n auto --dist loadgroup

summary: $(ALL)
	$(PY) -m train summary --data $(DATA)

LIMIT_FLAG = $(if $(LIMIT),--limit $(LIMIT))
train: $(ALL)
	$(PY) -m train fit --data $(DATA) --labels $(LABELS) --epochs $(EPOCHS) --out-dir $(RUN) $(if $(ARCH),--arch $(ARCH)) \
		$(LIMIT_FLAG) $(TRAIN_FLAGS)

# Gate, against the label set the run was trained on, with the convert CLI's own limits (python -m convert
# --help: the most int8 may lose against float, the least it must reach); exits non-zero when it fails.
# The int8 model, its sidecar, report and card stay in the run folder: nothing is bundled.
# The image-folder release beside the data, when there: its JPEG-decoded faces are what `edge eval --crops` sees.
IMAGES ?= $(wildcard $(dir $(DATA))fer2013.zip)
# CK+48 beside the data, when there: posed faces from another lab, reported (never used to choose anything).
CKPLUS ?= $(wildcard $(dir $(DATA))ckplus48.zip)
CONVERT = $(PY) -m convert --data $(DATA) --keras-model $(RUN)/mini_xception.keras --out-dir $(RUN) --name $(NAME) \
	$(if $(IMAGES),--images-data $(IMAGES)) $(if $(CKPLUS),--ckplus-data $(CKPLUS)) $(LIMIT_FLAG) $(CONVERT_FLAGS)
# `make train convert` (even with -j) converts the run only once it is trained.
convert: $(ALL) $(filter train,$(MAKECMDGOALS))
	$(CONVERT)

# Installing a model is a step of its own: the same conversion and gate, and on a pass the int8 model, its
# sidecar, card and report become the bundled model NAME (edge/assets/NAME/, `edge run --model NAME`).
ship: $(ALL)
	$(CONVERT) --bundle

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

# Haar, BlazeFace and YuNet on both clips next to the fer package, one core each, ratios in one table.
# Runs of each setting and of the fer package: the fastest counts on both sides (one run is +-15% on a shared VM).
BENCH_REPEAT ?= 3
bench-peer: $(ALL) $(PEER)/.fer
	$(PY) -m edge bench pipeline --peer $(PEER)/bin/python --repeat $(BENCH_REPEAT)

clean:
	rm -rf $(OUT) build dist *.egg-info

# From a fresh clone too: the runtime's venv builds the bundle's wheel (deploy.mk alone has no venv rule).
deploy pi-sim: $(VENV)/.edge
-include deploy/deploy.mk
