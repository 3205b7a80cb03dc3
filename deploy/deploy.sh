#!/usr/bin/env bash
# Build the fer-edge bundle here and install it on a Raspberry Pi over ssh.
#
#   deploy/deploy.sh user@host [install.sh options, e.g. --no-systemd]
#   DRY_RUN=1 deploy/deploy.sh user@host   # print every command; build nothing, contact nothing
#   deploy/deploy.sh --bundle-only          # only build build/bundle/ (used by deploy/pi_sim.sh)
#
# The bundle (build/bundle/): the project wheel, the int8 model with its sidecar (and model card),
# edge.toml, install.sh and the systemd unit. It is rsynced to ~/fer-edge-bundle/ on the Pi and
# install.sh runs there (it asks for your sudo password on the Pi for apt and systemd).
# ssh and rsync use your own ssh config and agent; nothing here stores or asks for credentials.
# PYTHON picks the Python that builds the wheel (default: python3); MODEL another .tflite to ship
# (its sidecar .json next to it), installed under the standard name.
set -euo pipefail

usage() {
    echo "usage: deploy/deploy.sh user@host [install.sh options] | --bundle-only   (DRY_RUN=1: print only)" >&2
}

BUNDLE_ONLY=0
if [ "${1:-}" = --bundle-only ]; then
    BUNDLE_ONLY=1
    PI=
elif [ $# -lt 1 ] || [ -z "$1" ] || [[ "$1" == -* ]]; then
    usage
    exit 2
else
    PI=$1
    # [user@]host, or an IPv6 address in brackets: ssh and rsync must never see an option or shell text here.
    if ! [[ "$PI" =~ ^([A-Za-z0-9_][A-Za-z0-9._-]*@)?([A-Za-z0-9][A-Za-z0-9._-]*|\[[0-9A-Fa-f:.]+\])$ ]]; then
        echo "deploy.sh: PI '$PI' is not user@host (letters, digits, '.', '_', '-'; an IPv6 address in [ ])" >&2
        exit 2
    fi
fi
shift
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
DRY_RUN=${DRY_RUN:-0}
if [ "$DRY_RUN" != 0 ] && [ "$DRY_RUN" != 1 ]; then
    echo "deploy.sh: DRY_RUN must be 0 or 1, got '$DRY_RUN'" >&2
    exit 2
fi
BUNDLE=build/bundle
REMOTE_DIR=fer-edge-bundle # relative to the remote home
MODEL=${MODEL:-edge/assets/ferplus/ferplus_int8.tflite}  # the default bundled model (edge/config.py DEFAULT_MODEL); installed only when its gate passed
SIDECAR=${MODEL%.tflite}.json

run() { # run a command; with DRY_RUN=1 only print it
    if [ "$DRY_RUN" = 1 ]; then
        printf '+'; printf ' %q' "$@"; printf '\n'
    else
        "$@"
    fi
}

cd "$ROOT"
# A broker login never travels in the bundle: it lives only in ~/fer-edge/mqtt.env on the Pi; the live
# view's token only in ~/fer-edge/web.env.
if grep -nE '^[^#]*(mqtts?://[^"/ ]*@|(username|password)[[:space:]]*=|FER_MQTT_PASSWORD[[:space:]]*=|FER_WEB_TOKEN[[:space:]]*=)' deploy/edge.toml >&2; then
    echo "deploy.sh: deploy/edge.toml holds a broker login or the live view's token (above); remove it and set" \
        "FER_MQTT_USERNAME and FER_MQTT_PASSWORD (or FER_WEB_TOKEN) when running install.sh on the Pi (they go" \
        "to ~/fer-edge/mqtt.env and web.env, mode 600)" >&2
    exit 1
fi
if [ "$DRY_RUN" != 1 ]; then
    for f in "$MODEL" "$SIDECAR"; do
        if [ ! -f "$f" ]; then
            echo "deploy.sh: $f is missing; train and convert the model first" >&2
            exit 1
        fi
    done
fi

echo "==> bundle in $BUNDLE"
run rm -rf "$BUNDLE" build/lib # build/lib: setuptools would put stale files from it into the wheel
run mkdir -p "$BUNDLE"
run "$PYTHON" -m pip wheel --no-deps -w "$BUNDLE" .
run cp "$MODEL" "$BUNDLE/mini_xception_int8.tflite"
run cp "$SIDECAR" "$BUNDLE/mini_xception_int8.json"
if [ -f "$(dirname "$MODEL")/MODEL_CARD.md" ]; then
    run cp "$(dirname "$MODEL")/MODEL_CARD.md" "$BUNDLE/"
fi
run cp deploy/edge.toml deploy/install.sh deploy/fer-edge.service "$BUNDLE/"

if [ "$BUNDLE_ONLY" = 1 ]; then
    exit 0
fi

echo "==> copy to $PI:~/$REMOTE_DIR/ and install"
run rsync -az --delete "$BUNDLE/" "$PI:$REMOTE_DIR/"
# -t: a terminal, so sudo on the Pi can ask for the password.
remote="bash ~/$REMOTE_DIR/install.sh"
for arg in "$@"; do remote+=" $(printf '%q' "$arg")"; done
run ssh -t "$PI" "$remote"
