#!/usr/bin/env bash
# Install fer-edge on a Raspberry Pi from the bundle this script sits in (deploy/deploy.sh copies
# the bundle to ~/fer-edge-bundle). Run it as the user who will own the service; sudo is used only
# for apt and systemd. The runtime needs numpy, OpenCV and a TFLite interpreter (ai-edge-litert,
# or tflite-runtime where LiteRT has no wheel), nothing heavier.
#
#   bash ~/fer-edge-bundle/install.sh [--no-systemd] [--dir DIR] [--user USER] [--network] [--allow-root]
#       [--mqtt URL] [--device-id NAME] [--web HOST:PORT]
#   FER_MQTT_USERNAME=... FER_MQTT_PASSWORD=... bash install.sh --mqtt mqtts://broker:8883   # a broker login
#   bash install.sh --web 127.0.0.1:8080      # the live view, reached with ssh -L 8080:127.0.0.1:8080 pi@HOST
#   FER_WEB_TOKEN=... bash install.sh --web 0.0.0.0:8080   # on the network: a token (made for you if not given)
#   bash install.sh --print-unit [--dir DIR] [--user USER]   # print the rendered systemd unit
#   DRY_RUN=1 bash install.sh                                 # print each command, run none
#   bash install.sh --uninstall [--delete-logs]               # remove the service and the app (asks about logs)
set -euo pipefail

usage() {
    cat <<EOF
usage: install.sh [--no-systemd] [--dir DIR] [--user USER] [--network] [--allow-root] [--print-unit]
  --no-systemd   install the app but no systemd service (containers, emulated runs)
  --dir DIR      where the app goes (default: \$HOME/fer-edge)
  --user USER    the user the service runs as (default: you)
  --network      let the service use the network (for MQTT; on by itself when edge.toml sets mqtt)
  --allow-root   install a service that runs as root (refused otherwise: use --user pi)
  --mqtt URL     send events to this MQTT broker (mqtt://host[:port] or mqtts://host[:port]); sets mqtt
                 in a new edge.toml and lets the service use the network
  --device-id N  this Pi's name in event ids and MQTT topics (default: its host name)
  --web HOST:PORT  serve the live view there (sets web in a new edge.toml); the service may then listen on
                 loopback only, or on the network when HOST is not loopback (which needs a token)
  --print-unit   print the rendered systemd unit and exit
  --uninstall    remove the service (unit and drop-ins) and the app folder; asks before deleting the
                 event logs (kept when nobody can be asked), --delete-logs deletes them too
  --print-network-conf   print the drop-in that --network installs and exit
  --print-web-conf       print the drop-in that --web HOST:PORT installs and exit
  DRY_RUN=1      print each command instead of running it
  FER_MQTT_USERNAME, FER_MQTT_PASSWORD   a broker login: written to DIR/mqtt.env (mode 600) for the
                 service, never to edge.toml or the bundle
  FER_WEB_TOKEN  the live view's token for a --web address other than loopback: written to DIR/web.env
                 (mode 600); when not given and there is no web.env yet, one is made there
EOF
}

BUNDLE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
APP_DIR="$HOME/fer-edge"
SERVICE_USER=$(id -un)
SYSTEMD=1
PRINT_UNIT=0
PRINT_NETWORK=0
PRINT_WEB=0
WEB=
NETWORK=0
ALLOW_ROOT=0
MQTT_URL=
DEVICE_ID=
UNINSTALL=0
DELETE_LOGS=0
DRY_RUN=${DRY_RUN:-0}
SYSTEMD_DIR=${FER_SYSTEMD_DIR:-/etc/systemd/system}  # a scratch folder in tests
while [ $# -gt 0 ]; do
    case "$1" in
        --no-systemd) SYSTEMD=0 ;;
        --dir) APP_DIR=${2:?--dir needs a folder}; shift ;;
        --user) SERVICE_USER=${2:?--user needs a name}; shift ;;
        --print-unit) PRINT_UNIT=1 ;;
        --print-network-conf) PRINT_NETWORK=1 ;;
        --print-web-conf) PRINT_WEB=1 ;;
        --web) WEB=${2:?--web needs HOST:PORT}; shift ;;
        --network) NETWORK=1 ;;
        --allow-root) ALLOW_ROOT=1 ;;
        --mqtt) MQTT_URL=${2:?--mqtt needs a broker URL}; NETWORK=1; shift ;;
        --device-id) DEVICE_ID=${2:?--device-id needs a name}; shift ;;
        --uninstall) UNINSTALL=1 ;;
        --delete-logs) DELETE_LOGS=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [ -n "$MQTT_URL" ] && ! [[ "$MQTT_URL" =~ ^mqtts?://[A-Za-z0-9._-]+(:[0-9]{1,5})?/?$ ]]; then
    echo "install.sh: --mqtt $MQTT_URL: expected mqtt://host[:port] or mqtts://host[:port] (no login in the URL)" >&2
    exit 2
fi
if [ -n "$DEVICE_ID" ] && ! [[ "$DEVICE_ID" =~ ^[A-Za-z0-9._-]{1,64}$ ]]; then
    echo "install.sh: --device-id $DEVICE_ID: use 1-64 letters, digits, '.', '_' or '-'" >&2
    exit 2
fi
if [ -n "$WEB" ] && ! [[ "$WEB" =~ ^([A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$ ]]; then
    echo "install.sh: --web $WEB: expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080" >&2
    exit 2
fi
# Both end up in the systemd unit and in sed replacements: a space (systemd splits ExecStart there), '&' or
# '|' (sed), a quote or a newline would write a broken unit or config. Refused, naming the flag.
if ! [[ "$APP_DIR" =~ ^/[A-Za-z0-9._/+@,:~-]+$ ]]; then
    echo "install.sh: --dir $APP_DIR: expected an absolute folder of letters, digits and . _ / + @ , : ~ - (no spaces," \
        "quotes, '&', '|' or newlines: the path goes into the systemd unit)" >&2
    exit 2
fi
if ! [[ "$SERVICE_USER" =~ ^[a-z_][a-z0-9_-]{0,31}$ ]]; then
    echo "install.sh: --user $SERVICE_USER: expected a user name (lower-case letters, digits, '_', '-'; 32 at most)" >&2
    exit 2
fi
VENV="$APP_DIR/venv"
SERVICE_GROUP=$(id -gn "$SERVICE_USER" 2>/dev/null || echo "$SERVICE_USER")
MODEL=mini_xception_int8.tflite
SIDECAR=mini_xception_int8.json
UNIT=fer-edge.service
if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check)

say() { printf '==> %s\n' "$*"; }

run() { # run a command; with DRY_RUN=1 only print it
    if [ "$DRY_RUN" = 1 ]; then
        printf '+'; printf ' %q' "$@"; printf '\n'
    else
        "$@"
    fi
}

write_to() { # write_to FILE COMMAND...: the command's output into FILE (printed under DRY_RUN)
    local dest=$1; shift
    if [ "$DRY_RUN" = 1 ]; then
        printf '+'; printf ' %q' "$@"; printf ' > %q\n' "$dest"
    else
        "$@" >"$dest"
    fi
}

uninstall() { # the service, its unit and drop-ins, the app folder; the logs only when asked
    say "removing the $UNIT service"
    if [ -f "$SYSTEMD_DIR/$UNIT" ] || [ "$DRY_RUN" = 1 ]; then
        run "${SUDO[@]}" systemctl disable --now "$UNIT" || true
        run "${SUDO[@]}" rm -f "$SYSTEMD_DIR/$UNIT"
        run "${SUDO[@]}" rm -rf "$SYSTEMD_DIR/$UNIT.d"
        run "${SUDO[@]}" systemctl daemon-reload
    else
        echo "    no $SYSTEMD_DIR/$UNIT: no service to remove"
    fi
    if [ "$DELETE_LOGS" != 1 ] && [ -d "$APP_DIR/logs" ] && [ -n "$(ls -A "$APP_DIR/logs" 2>/dev/null)" ]; then
        if [ -t 0 ]; then
            read -r -p "delete the event logs in $APP_DIR/logs too? [y/N] " answer
            case "$answer" in [yY]*) DELETE_LOGS=1 ;; esac
        else
            echo "    nobody to ask (no terminal): the event logs stay (--delete-logs deletes them)"
        fi
    fi
    say "removing $APP_DIR"
    if [ "$DELETE_LOGS" = 1 ] || [ ! -d "$APP_DIR/logs" ]; then
        run rm -rf "$APP_DIR"
    else
        run find "$APP_DIR" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} +
        say "kept $APP_DIR/logs"
    fi
    echo "    apt's python3-opencv, python3-numpy and python3-picamera2 stay (other programs may use them)"
}

if [ "$UNINSTALL" = 1 ]; then
    uninstall
    exit 0
fi

unit_sed=(sed -e "s|@USER@|$SERVICE_USER|g" -e "s|@GROUP@|$SERVICE_GROUP|g"
    -e "s|@VENV@|$VENV|g" -e "s|@APP_DIR@|$APP_DIR|g" "$BUNDLE/$UNIT")
if [ "$PRINT_UNIT" = 1 ]; then
    "${unit_sed[@]}"
    exit 0
fi

network_conf() { # the drop-in that lets the service reach an MQTT broker (the unit denies all IP)
    printf '%s\n' '# installed by install.sh --network (or because edge.toml sets mqtt): MQTT needs IP' \
        '[Service]' 'IPAddressDeny=' 'RestrictAddressFamilies=AF_INET AF_INET6'
}
backoff_conf() { # systemd >= 254: restart delays grow from 15 s towards 5 min, spreading the tries out
    printf '%s\n' '# installed by install.sh where systemd >= 254 knows RestartSteps=' \
        '[Service]' 'RestartSteps=5' 'RestartMaxDelaySec=300'
}
web_is_loopback() { # the live view's address, HOST:PORT, is loopback (127.x, ::1, localhost)
    local host=${1%:*}
    [[ "$host" =~ ^(127\.[0-9.]+|localhost|\[::1\])$ ]]
}
web_conf() { # the drop-in that lets the service listen for the live view: loopback only unless asked
    local address=$1
    printf '%s\n' "# installed by install.sh --web $address (or because edge.toml sets web)" '[Service]' \
        'RestrictAddressFamilies=AF_INET AF_INET6'
    if web_is_loopback "$address"; then
        printf '%s\n' '# loopback only: IPAddressDeny=any stays, localhost is let through' 'IPAddressAllow=localhost'
    else
        printf '%s\n' '# an address other than loopback: viewers on the network (the runtime demands a token)' 'IPAddressDeny='
    fi
}
if [ "$PRINT_NETWORK" = 1 ]; then
    network_conf
    exit 0
fi
if [ "$PRINT_WEB" = 1 ]; then
    web_conf "${WEB:?--print-web-conf needs --web HOST:PORT}"
    exit 0
fi

if [ "$SYSTEMD" = 1 ]; then
    if ! service_uid=$(id -u "$SERVICE_USER" 2>/dev/null) && [ "$DRY_RUN" != 1 ]; then
        echo "install.sh: no user $SERVICE_USER on this machine (give --user NAME)" >&2
        exit 2
    fi
    if [ "${service_uid:-}" = 0 ] && [ "$ALLOW_ROOT" != 1 ]; then
        echo "install.sh: refusing to install a service that runs as root (you ran this as root and gave no" \
            "--user). Give --user NAME (e.g. --user pi, who owns the camera through the video group), or" \
            "--allow-root if you really mean it." >&2
        exit 2
    fi
fi

say "system packages (apt)"
run "${SUDO[@]}" apt-get update
run "${SUDO[@]}" apt-get install -y python3-venv python3-opencv python3-numpy
if [ "$DRY_RUN" = 1 ]; then
    echo "# only if apt-cache finds python3-picamera2:"
    run "${SUDO[@]}" apt-get install -y python3-picamera2
elif apt-cache show python3-picamera2 >/dev/null 2>&1; then
    run "${SUDO[@]}" apt-get install -y python3-picamera2
else
    echo "picamera2 is not available from apt here (it comes from Raspberry Pi's archive); the Pi camera" \
        "source will not work, USB cameras and files still do"
fi

say "virtual environment in $VENV (sees apt's numpy, OpenCV and picamera2)"
run mkdir -p "$APP_DIR/logs"
run python3 -m venv --system-site-packages "$VENV"

shopt -s nullglob
wheels=("$BUNDLE"/fer_edge-*.whl)
shopt -u nullglob
if [ ${#wheels[@]} -eq 1 ]; then
    WHEEL=${wheels[0]}
elif [ "$DRY_RUN" = 1 ]; then
    WHEEL="$BUNDLE/fer_edge-VERSION-py3-none-any.whl"
else
    echo "install.sh: expected one fer_edge-*.whl in $BUNDLE, found ${#wheels[@]}" >&2
    exit 1
fi
# Keep apt's numpy: OpenCV from apt is built against it, so pip must not replace it.
write_to "$APP_DIR/constraints.txt" "$VENV/bin/python" -c 'import numpy; print("numpy==" + numpy.__version__)'
# --no-deps: numpy and OpenCV come from apt, not from PyPI's opencv-python-headless.
run "${PIP[@]}" --no-deps --force-reinstall "$WHEEL"
run "${PIP[@]}" -c "$APP_DIR/constraints.txt" typer
if [ -n "$MQTT_URL" ] || { [ -f "$APP_DIR/edge.toml" ] && grep -Eq '^[[:space:]]*mqtt[[:space:]]*=[[:space:]]*"[^"]+"' "$APP_DIR/edge.toml"; }; then
    run "${PIP[@]}" -c "$APP_DIR/constraints.txt" "paho-mqtt>=2.0,<3"
fi
if [ "$DRY_RUN" = 1 ]; then
    run "${PIP[@]}" -c "$APP_DIR/constraints.txt" ai-edge-litert
    echo "# only if ai-edge-litert has no wheel here:"
    run "${PIP[@]}" -c "$APP_DIR/constraints.txt" tflite-runtime
elif ! run "${PIP[@]}" -c "$APP_DIR/constraints.txt" ai-edge-litert; then
    say "ai-edge-litert has no wheel for $(uname -m) / $(python3 -V); trying tflite-runtime"
    run "${PIP[@]}" -c "$APP_DIR/constraints.txt" tflite-runtime
fi
run "$VENV/bin/python" -c 'import cv2, numpy, edge
try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:
    from tflite_runtime.interpreter import Interpreter
print("fer-edge ready: OpenCV", cv2.__version__, "numpy", numpy.__version__, "interpreter", Interpreter.__module__)'
# The libraries pip just wrote leave the page cache, as after a reboot: mapped straight away they count tens of MB
# more resident memory for the service started below (edge.host.drop_cached_libraries).
run "$VENV/bin/python" -c 'import sys; from edge.host import drop_cached_libraries as drop; drop(sys.argv[1])' "$VENV"

say "model and configuration in $APP_DIR"
config_sed=(sed -e "s|/home/pi/fer-edge|$APP_DIR|g")
if [ -f "$BUNDLE/$MODEL" ] || [ "$DRY_RUN" = 1 ]; then
    if [ ! -f "$BUNDLE/$SIDECAR" ] && [ "$DRY_RUN" != 1 ]; then
        echo "install.sh: $BUNDLE/$MODEL has no sidecar $SIDECAR next to it" >&2
        exit 1
    fi
    run install -m 644 "$BUNDLE/$MODEL" "$BUNDLE/$SIDECAR" "$APP_DIR/"
    config_sed+=(-e "s|^model = \"\"|model = \"$APP_DIR/$MODEL\"|")
else
    say "no $MODEL in the bundle: the configuration keeps the model bundled with fer-edge"
fi
if [ -n "$MQTT_URL" ]; then
    config_sed+=(-e "s|^mqtt = \"\"|mqtt = \"$MQTT_URL\"|")
fi
if [ -n "$DEVICE_ID" ]; then
    config_sed+=(-e "s|^device_id = \"\"|device_id = \"$DEVICE_ID\"|")
fi
if [ -n "$WEB" ]; then
    config_sed+=(-e "s|^web = \"\"|web = \"$WEB\"|")
fi
if [ -n "${FER_MQTT_USERNAME:-}" ]; then
    # The login goes to a file only the service user can read; the unit loads it as environment.
    # Printed under DRY_RUN without the values.
    if [ "$DRY_RUN" = 1 ]; then
        echo "+ (umask 077; write FER_MQTT_USERNAME and FER_MQTT_PASSWORD) > $APP_DIR/mqtt.env"
    else
        (umask 077 && printf 'FER_MQTT_USERNAME=%s\nFER_MQTT_PASSWORD=%s\n' "$FER_MQTT_USERNAME" "${FER_MQTT_PASSWORD:-}" >"$APP_DIR/mqtt.env")
    fi
fi
# The live view: --web, else what an edge.toml already there sets.
SERVE_WEB=$WEB
if [ -z "$SERVE_WEB" ] && [ -f "$APP_DIR/edge.toml" ]; then
    SERVE_WEB=$(sed -nE 's/^[[:space:]]*web[[:space:]]*=[[:space:]]*"([^"]+)".*/\1/p' "$APP_DIR/edge.toml" | head -n 1)
fi
if [ -n "${FER_WEB_TOKEN:-}" ] || { [ -n "$SERVE_WEB" ] && ! web_is_loopback "$SERVE_WEB" && [ ! -f "$APP_DIR/web.env" ]; }; then
    # The live view's token, like the broker login: a file only the service user reads, loaded as environment.
    if [ "$DRY_RUN" = 1 ]; then
        echo "+ (umask 077; write FER_WEB_TOKEN, given or made with python3 secrets) > $APP_DIR/web.env"
    else
        web_token_value=${FER_WEB_TOKEN:-$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')}
        (umask 077 && printf 'FER_WEB_TOKEN=%s\n' "$web_token_value" >"$APP_DIR/web.env")
        [ -n "${FER_WEB_TOKEN:-}" ] || say "made a live-view token, kept in $APP_DIR/web.env (docs/live-view.md says how a browser uses it)"
    fi
fi
if [ -f "$BUNDLE/MODEL_CARD.md" ]; then
    run install -m 644 "$BUNDLE/MODEL_CARD.md" "$APP_DIR/"
fi
CONFIG="$APP_DIR/edge.toml"
if [ -f "$CONFIG" ] && [ "$DRY_RUN" != 1 ]; then
    write_to "$CONFIG.new" "${config_sed[@]}" "$BUNDLE/edge.toml"
    if cmp -s "$CONFIG" "$CONFIG.new"; then
        rm -f "$CONFIG.new"
    else
        say "kept your $CONFIG; the bundle's version is in $CONFIG.new"
        if [ -n "$MQTT_URL$DEVICE_ID" ]; then
            echo "    (--mqtt/--device-id went into $CONFIG.new only: copy those lines into your edge.toml)"
        fi
    fi
else
    write_to "$CONFIG" "${config_sed[@]}" "$BUNDLE/edge.toml"
fi

if [ "$SYSTEMD" = 0 ]; then
    say "no systemd service (--no-systemd); run it by hand:"
    echo "    $VENV/bin/python -m edge run --config $CONFIG"
    exit 0
fi

say "systemd service $UNIT (runs as $SERVICE_USER)"
was_active=0
if [ "$DRY_RUN" != 1 ] && systemctl is-active --quiet "$UNIT"; then was_active=1; fi
write_to "$APP_DIR/$UNIT" "${unit_sed[@]}"
run "${SUDO[@]}" install -m 644 "$APP_DIR/$UNIT" "/etc/systemd/system/$UNIT"
DROP_IN="/etc/systemd/system/$UNIT.d/network.conf"
if [ "$NETWORK" = 0 ] && [ -f "$CONFIG" ] && grep -Eq '^[[:space:]]*mqtt[[:space:]]*=[[:space:]]*"[^"]+"' "$CONFIG"; then
    NETWORK=1
    say "$CONFIG sets mqtt: the service may use the network"
fi
if [ "$NETWORK" = 1 ]; then
    write_to "$APP_DIR/network.conf" network_conf
    run "${SUDO[@]}" install -D -m 644 "$APP_DIR/network.conf" "$DROP_IN"
else
    say "no network for the service (no mqtt in $CONFIG; --network allows it)"
    run "${SUDO[@]}" rm -f "$DROP_IN"
fi
WEB_DROP_IN="/etc/systemd/system/$UNIT.d/web.conf"
if [ -n "$SERVE_WEB" ]; then
    write_to "$APP_DIR/web.conf" web_conf "$SERVE_WEB"
    run "${SUDO[@]}" install -D -m 644 "$APP_DIR/web.conf" "$WEB_DROP_IN"
    if web_is_loopback "$SERVE_WEB"; then
        say "live view on $SERVE_WEB: from your computer, ssh -L ${SERVE_WEB##*:}:$SERVE_WEB $SERVICE_USER@THIS-PI, then open http://localhost:${SERVE_WEB##*:}/"
    else
        say "live view on $SERVE_WEB: open http://THIS-PI:${SERVE_WEB##*:}/ with the token kept in $APP_DIR/web.env (docs/live-view.md)"
    fi
else
    run "${SUDO[@]}" rm -f "$WEB_DROP_IN"
fi
systemd_version=$(systemctl --version 2>/dev/null | awk 'NR == 1 { print $2 }')
if [ "$DRY_RUN" = 1 ] || [ "${systemd_version:-0}" -ge 254 ] 2>/dev/null; then
    if [ "$DRY_RUN" = 1 ]; then echo "# only with systemd >= 254 (older ones keep RestartSec=15 and the start limit):"; fi
    write_to "$APP_DIR/backoff.conf" backoff_conf
    run "${SUDO[@]}" install -D -m 644 "$APP_DIR/backoff.conf" "/etc/systemd/system/$UNIT.d/backoff.conf"
fi
run "${SUDO[@]}" systemctl daemon-reload
# A service whose camera cannot open would only fail and stay failed: say what to do instead of enabling it.
if [ "$DRY_RUN" != 1 ] && grep -Eq '^[[:space:]]*source[[:space:]]*=[[:space:]]*"picamera2"' "$CONFIG" \
    && ! "$VENV/bin/python" -c 'import picamera2' >/dev/null 2>&1; then
    say "not enabling $UNIT: $CONFIG sets source = \"picamera2\", which this system cannot import"
    echo "    on Raspberry Pi OS: sudo apt install python3-picamera2, then run this installer again"
    if compgen -G '/dev/video*' >/dev/null; then
        echo "    a USB webcam is here (/dev/video*): set source = \"usb:0\" in $CONFIG, then: sudo systemctl enable --now $UNIT"
    fi
    exit 0
fi
if [ "$DRY_RUN" = 1 ]; then echo "# only if edge.toml's camera source can open (picamera2 imports, or another source):"; fi
run "${SUDO[@]}" systemctl enable --now "$UNIT"
if [ "$was_active" = 1 ]; then
    run "${SUDO[@]}" systemctl restart "$UNIT" # pick up the new code and configuration
fi
say "done: journalctl -u fer-edge -f   (events: the log file named in $CONFIG)"
