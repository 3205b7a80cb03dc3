# Deployment targets; the main Makefile does `include deploy/deploy.mk` and defines PY (the venv python).
#   make deploy PI=pi@raspberrypi.local [DRY_RUN=1]   build the bundle, copy it to the Pi, install
#   make pi-sim                                         emulated arm64 Debian install + short run (slow,
#                                                       needs root, debootstrap and qemu-user-static)
PY ?= .venv/bin/python
PI_SIM_DIR ?= build/pi-sim

.PHONY: deploy pi-sim

# Asked before anything is built: a fresh clone should not make a venv only to hear PI is missing.
ifneq ($(filter deploy,$(MAKECMDGOALS)),)
ifeq ($(strip $(value PI)),)
$(error usage: make deploy PI=user@host [DRY_RUN=1])
endif
endif

# PI, DRY_RUN and PY reach deploy.sh through the environment, never through the recipe's shell parsing:
# `make deploy PI='x;touch pwned'` runs no touch; deploy.sh then checks that PI is user@host. $(value ...)
# takes PI and DRY_RUN as typed, so make itself expands nothing in them either (PI='$(shell touch X)...').
# And not exported as they are: make would expand a command-line variable to put it in the environment.
# (The documented $(PI) and $(DRY_RUN), read here by name only.)
unexport PI DRY_RUN
deploy: export DEPLOY_PI := $(value PI)
deploy: export DEPLOY_DRY_RUN := $(value DRY_RUN)
deploy: export DEPLOY_PYTHON := $(PY)
deploy:
	@if [ -z "$$DEPLOY_PI" ]; then echo "usage: make deploy PI=user@host [DRY_RUN=1]" >&2; exit 2; fi
	DRY_RUN="$$DEPLOY_DRY_RUN" PYTHON="$$DEPLOY_PYTHON" bash deploy/deploy.sh "$$DEPLOY_PI"

pi-sim:
	PYTHON=$(PY) bash deploy/pi_sim.sh $(PI_SIM_DIR)
