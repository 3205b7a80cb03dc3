# Deployment targets; the main Makefile does `include deploy/deploy.mk` and defines PY (the venv python).
#   make deploy PI=pi@raspberrypi.local [DRY_RUN=1]   build the bundle, copy it to the Pi, install
#   make pi-sim                                         emulated arm64 Debian install + short run (slow,
#                                                       needs root, debootstrap and qemu-user-static)
PY ?= .venv/bin/python
PI_SIM_DIR ?= build/pi-sim

.PHONY: deploy pi-sim

deploy:
	@if [ -z "$(PI)" ]; then echo "usage: make deploy PI=user@host [DRY_RUN=1]" >&2; exit 2; fi
	DRY_RUN=$(DRY_RUN) PYTHON=$(PY) bash deploy/deploy.sh $(PI)

pi-sim:
	PYTHON=$(PY) bash deploy/pi_sim.sh $(PI_SIM_DIR)
